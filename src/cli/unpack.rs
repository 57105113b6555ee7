//! `wharf unpack IMAGE [--to DIR]`: unpack an image's layers into the shared layer cache
//! (what a native container's overlay mounts), and with `--to` also flatten them into a
//! directory (as `umoci unpack` makes a rootfs).

use std::path::PathBuf;

use anyhow::Context;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use wharf::image::platform::PlatformSpec;
use wharf::image::resolved::ResolvedImage;
use wharf::image::unpack::{self, Limits, UnpackOptions};

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image.
    image: String,
    /// Also write the merged root filesystem into this directory (created; must be empty).
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,
    /// Platform of a multi-platform image.
    #[arg(long)]
    platform: Option<PlatformSpec>,
    /// Largest uncompressed size of one layer, in bytes (a guard against decompression bombs;
    /// default WHARF_MAX_LAYER_SIZE, else 16 GiB).
    #[arg(long, value_name = "BYTES")]
    max_layer_size: Option<u64>,
    /// Largest uncompressed size of all the image's layers together (default
    /// WHARF_MAX_IMAGE_SIZE, else 32 GiB).
    #[arg(long, value_name = "BYTES")]
    max_image_size: Option<u64>,
    /// Most entries in one layer.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_entries)]
    max_layer_entries: u64,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let record = store.resolve(&args.image)?;
    let image = ResolvedImage::new(&store, record, args.platform.as_ref())?;
    let mut opts = UnpackOptions::from_env()?;
    opts.limits.max_entries = args.max_layer_entries;
    if let Some(n) = args.max_layer_size {
        opts.limits.max_bytes = n;
    }
    if let Some(n) = args.max_image_size {
        opts.limits.max_image_bytes = n;
    }
    let _guard = store.lock_shared()?;
    let layers = unpack::ensure_layers(&store, &image.manifest, &image.config, &opts)
        .with_context(|| format!("unpacking {}", args.image))?;
    for l in &layers {
        tracing::info!(diff_id = %l.diff_id, path = %l.root.display(), "layer ready");
    }
    if let Some(to) = &args.to {
        let created = !to.exists();
        std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
        if !created && std::fs::read_dir(to)?.next().is_some() {
            anyhow::bail!("{} is not empty", to.display());
        }
        let dest = Dir::open_ambient_dir(to, ambient_authority())
            .with_context(|| format!("opening {}", to.display()))?;
        if let Err(e) = unpack::flatten(&layers, &dest) {
            if created {
                let _ = wharf::image::store::remove_tree(to);
            }
            return Err(e)
                .with_context(|| format!("writing the root filesystem to {}", to.display()));
        }
    }
    let size = super::format::human_size(image.content_size(&store));
    let plural = if layers.len() == 1 { "" } else { "s" };
    match &args.to {
        Some(to) => outln!(
            "Unpacked {}: {} layer{plural} ({size}) in wharf's layer cache, root filesystem in {}",
            args.image,
            layers.len(),
            to.display()
        ),
        None => outln!(
            "Unpacked {}: {} layer{plural} ({size}) in wharf's layer cache",
            args.image,
            layers.len()
        ),
    }
    Ok(())
}
