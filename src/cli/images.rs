//! `wharf images`: list the store.

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;
use wharf::dispatch;
use wharf::image::resolved::ResolvedImage;

use super::Session;
use super::format::{ago, human_size, table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Only show image ids.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    repository: String,
    tag: String,
    id: String,
    digest: String,
    kind: String,
    platform: String,
    size: u64,
    created: Option<String>,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let mut rows = Vec::new();
    for record in store.images()? {
        let (repository, tag) = match &record.name {
            Some(n) => (n.familiar_name(), n.tag().unwrap_or("<none>").to_string()),
            None => ("<none>".to_string(), "<none>".to_string()),
        };
        let id = record.short_id();
        let digest = record.digest().to_string();
        let row = match ResolvedImage::new(&store, record, None) {
            Ok(img) => Row {
                kind: dispatch::decide(&dispatch::Facts::of_image(&img))
                    .map_or_else(|_| "conflict".to_string(), |d| d.kind.to_string()),
                platform: img.platforms.join(","),
                size: img.content_size(&store),
                created: img.config.created.clone(),
                repository,
                tag,
                id,
                digest,
            },
            Err(e) => {
                tracing::warn!(image = %digest, error = %e, "cannot read image");
                Row {
                    repository,
                    tag,
                    id,
                    digest,
                    kind: "broken".into(),
                    platform: String::new(),
                    size: 0,
                    created: None,
                }
            }
        };
        rows.push(row);
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for r in &rows {
            writeln!(out, "{}", r.id)?;
        }
        return Ok(());
    }
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.repository.clone(),
                        r.tag.clone(),
                        r.id.clone(),
                        r.kind.clone(),
                        r.platform.clone(),
                        human_size(r.size),
                        ago(r.created.as_deref()),
                    ]
                })
                .collect();
            table(
                &mut out,
                &[
                    "REPOSITORY",
                    "TAG",
                    "IMAGE ID",
                    "KIND",
                    "PLATFORM",
                    "SIZE",
                    "CREATED",
                ],
                &cells,
            )?;
        }
    }
    Ok(())
}
