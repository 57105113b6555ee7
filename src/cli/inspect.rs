//! `wharf inspect IMAGE`: manifest, config and the dispatch decision, as JSON, or with
//! `--explain` the decision and every signal behind it.

use serde_json::json;
use wharf::dispatch;
use wharf::image::platform::PlatformSpec;
use wharf::image::resolved::ResolvedImage;
use wharf::image::{Manifest, media, read_manifest};

use super::Context_;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image (name, name:tag, id or digest).
    image: String,
    /// Platform of a multi-platform image (os/arch[/variant]).
    #[arg(long)]
    platform: Option<PlatformSpec>,
    /// Print how wharf would run the image, and why.
    #[arg(long)]
    explain: bool,
}

pub fn run(ctx: &Context_, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let record = store.resolve(&args.image)?;
    let index = match read_manifest(&store, &record.descriptor)? {
        Manifest::Index(i) => Some(i),
        Manifest::Image(_) => None,
    };
    let image = ResolvedImage::new(&store, record, args.platform.as_ref())?;
    let decision = dispatch::decide(&image.facts());
    if args.explain {
        explain(&args.image, &image, &decision);
        return decision.map(drop).map_err(Into::into);
    }
    let raw_config: serde_json::Value = serde_json::from_slice(&store.read_blob_capped(
        image.manifest.config(),
        "config",
        media::MAX_CONFIG_BYTES,
    )?)?;
    let out = json!({
        "Id": image.record.digest().to_string(),
        "RepoTags": image.record.name.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "MediaType": image.record.descriptor.media_type().to_string(),
        "Platforms": image.platforms,
        "Size": image.size(),
        "Index": index,
        "ManifestDigest": image.manifest_desc.digest().to_string(),
        "Manifest": image.manifest,
        "Config": raw_config,
        "Kind": decision.as_ref().map(|d| d.kind.to_string()).unwrap_or_else(|_| "conflict".into()),
        "Dispatch": match &decision {
            Ok(d) => json!(d),
            Err(c) => json!({"error": c.to_string(), "signals": c.signals}),
        },
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn explain(
    name: &str,
    image: &ResolvedImage,
    decision: &Result<dispatch::Decision, Box<dispatch::Conflict>>,
) {
    println!("image:    {name} ({})", image.record.digest());
    println!("platform: {}", image.config.platform());
    let signals = match decision {
        Ok(d) => {
            println!("decision: {} ({})", d.kind, d.reason);
            &d.signals
        }
        Err(c) => {
            println!("decision: none: {c}");
            &c.signals
        }
    };
    println!("signals:");
    if signals.is_empty() {
        println!("  (none)");
    }
    for s in signals {
        println!("  {s}");
    }
}
