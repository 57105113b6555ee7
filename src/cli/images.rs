//! `wharf images`: list the store.

use std::io::Write;

use serde::Serialize;
use wharf::dispatch;
use wharf::image::resolved::ResolvedImage;

use super::Session;
use super::format::{ago, human_size, table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: table, json (an array) or a Go template over Docker's fields
    /// (`{{.Repository}}:{{.Tag}}`, `{{json .}}`; `table ...` for headed columns).
    #[arg(long, default_value = "table")]
    format: String,
    /// Only show image ids.
    #[arg(short, long)]
    quiet: bool,
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
    match args.format.as_str() {
        "json" => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        "table" => {
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
        template => {
            let f = super::template::Format::parse(template)?;
            let rows: Vec<_> = rows.iter().map(Row::docker).collect();
            f.write_rows(&mut out, HEADERS, &rows)?;
        }
    }
    Ok(())
}

/// Docker's column headers for `images --format 'table ...'`.
const HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("VirtualSize", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
    ("Kind", "KIND"),
    ("Platform", "PLATFORM"),
];

impl Row {
    /// The row with Docker's `images --format '{{json .}}'` fields (sizes in its units;
    /// what wharf does not count, N/A as Docker says), and wharf's Kind and Platform.
    fn docker(&self) -> serde_json::Value {
        let created = self
            .created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| {
                t.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M:%S %z UTC")
                    .to_string()
            })
            .unwrap_or_default();
        serde_json::json!({
            "Containers": "N/A",
            "CreatedAt": created,
            "CreatedSince": ago(self.created.as_deref()),
            "Digest": self.digest,
            "ID": self.id,
            "Repository": self.repository,
            "SharedSize": "N/A",
            "Size": human_size(self.size),
            "Tag": self.tag,
            "UniqueSize": "N/A",
            "VirtualSize": human_size(self.size),
            "Kind": self.kind,
            "Platform": self.platform,
        })
    }
}
