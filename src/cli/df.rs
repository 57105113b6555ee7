//! `wharf system df [-v]`: the disk wharf uses, as Docker's columns (TYPE, TOTAL, ACTIVE,
//! SIZE, RECLAIMABLE): images (active: a container uses it), containers (their own files:
//! a native container's writable layer, logs), local volumes (active: a container mounts
//! it), the unpacked layer cache and the compiled wasm code cache.

use std::collections::HashSet;
use std::path::Path;

use serde_json::json;
use wharf::image::Store;
use wharf::image::resolved::ResolvedImage;

use super::Session;
use super::format::{human_size, table};

pub fn run(ctx: &Session, store: &Store, verbose: bool, format: &str) -> anyhow::Result<()> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let records = containers.list();
    let used_images: HashSet<String> = records
        .iter()
        .filter_map(|r| r.image_digest.clone())
        .collect();
    // Images: their content (a blob two images share counts once in the total).
    let mut images = Vec::new();
    for record in store.images()? {
        let digest = record.digest().to_string();
        let name = record
            .name
            .as_ref()
            .map_or("<none>".to_string(), |n| n.to_string());
        let size = ResolvedImage::new(store, record, None)
            .map(|i| i.content_size(store))
            .unwrap_or(0);
        images.push((name, digest.clone(), size, used_images.contains(&digest)));
    }
    let images_size = dir_size(&ctx.roots.store());
    let active_images = images.iter().filter(|i| i.3).count();
    let reclaimable_images: u64 = images.iter().filter(|i| !i.3).map(|i| i.2).sum();
    // Containers: what each one's directory holds.
    let conts: Vec<(String, String, u64, bool)> = records
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.short_id().to_string(),
                dir_size(&containers.dir_of(&r.id)),
                r.state.is_active(),
            )
        })
        .collect();
    let conts_size: u64 = conts.iter().map(|c| c.2).sum();
    let conts_reclaimable: u64 = conts.iter().filter(|c| !c.3).map(|c| c.2).sum();
    // Volumes.
    let vols: Vec<(String, u64, usize)> = wharf::volume::Volumes::new(&ctx.roots)
        .list()
        .into_iter()
        .map(|v| {
            let users = containers.volume_users(&v.name).len();
            (v.name, dir_size(&v.mountpoint), users)
        })
        .collect();
    let vols_size: u64 = vols.iter().map(|v| v.1).sum();
    let vols_reclaimable: u64 = vols.iter().filter(|v| v.2 == 0).map(|v| v.1).sum();
    let layers = dir_size(&ctx.roots.layers());
    let code = dir_size(&ctx.roots.wasm_cache());
    let pct = |part: u64, whole: u64| {
        if whole == 0 {
            "0B".to_string()
        } else {
            format!(
                "{} ({}%)",
                human_size(part),
                (part as f64 / whole as f64 * 100.0).round() as u64
            )
        }
    };
    let rows = [
        json!({"Type": "Images", "TotalCount": images.len(), "Active": active_images, "Size": human_size(images_size), "Reclaimable": pct(reclaimable_images.min(images_size), images_size), "Bytes": images_size}),
        json!({"Type": "Containers", "TotalCount": conts.len(), "Active": conts.iter().filter(|c| c.3).count(), "Size": human_size(conts_size), "Reclaimable": pct(conts_reclaimable, conts_size), "Bytes": conts_size}),
        json!({"Type": "Local Volumes", "TotalCount": vols.len(), "Active": vols.iter().filter(|v| v.2 > 0).count(), "Size": human_size(vols_size), "Reclaimable": pct(vols_reclaimable, vols_size), "Bytes": vols_size}),
        json!({"Type": "Layer Cache", "TotalCount": count_entries(&ctx.roots.layers()), "Active": "", "Size": human_size(layers), "Reclaimable": "", "Bytes": layers}),
        json!({"Type": "Wasm Code Cache", "TotalCount": count_entries(&ctx.roots.wasm_cache()), "Active": "", "Size": human_size(code), "Reclaimable": pct(code, code), "Bytes": code}),
    ];
    match format {
        "table" => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    ["Type", "TotalCount", "Active", "Size", "Reclaimable"]
                        .iter()
                        .map(|k| match &r[k] {
                            serde_json::Value::String(s) => s.clone(),
                            v => v.to_string(),
                        })
                        .collect()
                })
                .collect();
            let mut out = std::io::stdout().lock();
            table(
                &mut out,
                &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                &cells,
            )?;
            if verbose {
                outln!("\nImages space usage:\n");
                let cells: Vec<Vec<String>> = images
                    .iter()
                    .map(|(name, digest, size, used)| {
                        vec![
                            name.clone(),
                            digest.chars().skip(7).take(12).collect(),
                            human_size(*size),
                            if *used { "1" } else { "0" }.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &mut out,
                    &["REPOSITORY:TAG", "IMAGE ID", "SIZE", "CONTAINERS"],
                    &cells,
                )?;
                outln!("\nContainers space usage:\n");
                let cells: Vec<Vec<String>> = conts
                    .iter()
                    .map(|(name, id, size, active)| {
                        vec![
                            id.clone(),
                            name.clone(),
                            human_size(*size),
                            if *active { "running" } else { "stopped" }.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &mut out,
                    &["CONTAINER ID", "NAMES", "SIZE", "STATE"],
                    &cells,
                )?;
                outln!("\nLocal Volumes space usage:\n");
                let cells: Vec<Vec<String>> = vols
                    .iter()
                    .map(|(name, size, users)| {
                        vec![name.clone(), users.to_string(), human_size(*size)]
                    })
                    .collect();
                table(&mut out, &["VOLUME NAME", "LINKS", "SIZE"], &cells)?;
            }
        }
        "json" => {
            for r in &rows {
                outln!("{r}");
            }
        }
        t => {
            let f = super::template::Format::parse(t)?;
            for r in &rows {
                outln!("{}", f.render(r)?);
            }
        }
    }
    Ok(())
}

/// Bytes of the regular files under `dir`, each counted once (hard links), never
/// following a symlink; walked with a list, not recursion (a 10 000-deep tree is fine).
fn dir_size(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                todo.push(e.path());
            } else if m.is_file() && seen.insert(wharf::sys::file_identity(&m)) {
                total += m.len();
            }
        }
    }
    total
}

fn count_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}
