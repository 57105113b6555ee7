//! `wharf history [--no-trunc] [-q] [--format table|json|TEMPLATE] IMAGE`: how an image was
//! made, newest step first, from its config's `history` (Docker's columns). A step that made
//! a layer shows that layer's size (as stored, compressed); an image whose config has no
//! history (a wasm artifact, an image made by hand) shows one line per layer.

use serde_json::json;
use wharf::image::media;
use wharf::image::resolved::ResolvedImage;

use super::Session;
use super::format::{ago, human_size, table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image (name, name:tag, id or digest).
    image: String,
    /// Do not shorten CREATED BY.
    #[arg(long)]
    no_trunc: bool,
    /// Only the image id.
    #[arg(short, long)]
    quiet: bool,
    /// table, json (one object per line) or a Go template (`{{.CreatedBy}}`).
    #[arg(long, default_value = "table")]
    format: String,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let record = store.resolve(&args.image)?;
    let image = ResolvedImage::new(&store, record, None)?;
    let config: serde_json::Value = serde_json::from_slice(&store.read_blob_capped(
        image.manifest.config(),
        "config",
        media::MAX_CONFIG_BYTES,
    )?)?;
    let mut layers = image.manifest.layers().iter().map(|l| l.size());
    let steps: Vec<serde_json::Value> = match config.get("history").and_then(|h| h.as_array()) {
        Some(h) if !h.is_empty() => h
            .iter()
            .map(|step| {
                let empty = step.get("empty_layer").and_then(|e| e.as_bool()) == Some(true);
                let size = if empty {
                    0
                } else {
                    layers.next().unwrap_or(0)
                };
                json!({
                    "CreatedAt": step.get("created"),
                    "CreatedBy": step.get("created_by").and_then(|c| c.as_str()).unwrap_or(""),
                    "Size": size,
                    "Comment": step.get("comment").and_then(|c| c.as_str()).unwrap_or(""),
                })
            })
            .collect(),
        _ => layers
            .map(|size| {
                json!({"CreatedAt": config.get("created"), "CreatedBy": "", "Size": size, "Comment": ""})
            })
            .collect(),
    };
    let id = image.record.short_id();
    let mut steps: Vec<serde_json::Value> = steps.into_iter().rev().collect();
    for (i, s) in steps.iter_mut().enumerate() {
        s["ID"] = json!(if i == 0 {
            id.clone()
        } else {
            "<missing>".into()
        });
        s["CreatedSince"] = json!(ago(s["CreatedAt"].as_str()));
    }
    if args.quiet {
        outln!("{id}");
        return Ok(());
    }
    match args.format.as_str() {
        "table" => {
            let rows: Vec<Vec<String>> = steps
                .iter()
                .map(|s| {
                    let by = s["CreatedBy"].as_str().unwrap_or_default();
                    let by = if args.no_trunc || by.chars().count() <= 45 {
                        by.to_string()
                    } else {
                        format!("{}…", by.chars().take(44).collect::<String>())
                    };
                    vec![
                        s["ID"].as_str().unwrap_or_default().to_string(),
                        s["CreatedSince"].as_str().unwrap_or_default().to_string(),
                        by,
                        human_size(s["Size"].as_u64().unwrap_or(0)),
                        s["Comment"].as_str().unwrap_or_default().to_string(),
                    ]
                })
                .collect();
            table(
                &mut std::io::stdout().lock(),
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &rows,
            )?;
        }
        "json" => {
            for s in &steps {
                outln!("{}", docker_shape(s));
            }
        }
        t => {
            let f = super::template::Format::parse(t)?;
            for s in &steps {
                outln!("{}", f.render(&docker_shape(s))?);
            }
        }
    }
    Ok(())
}

/// A step as Docker's `history --format '{{json .}}'` prints it: the size in its units, the
/// time to the second.
fn docker_shape(step: &serde_json::Value) -> serde_json::Value {
    let mut s = step.clone();
    s["Size"] = json!(human_size(step["Size"].as_u64().unwrap_or(0)));
    if let Some(t) = step["CreatedAt"]
        .as_str()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
    {
        s["CreatedAt"] = json!(
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        );
    }
    s
}
