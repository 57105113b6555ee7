//! `wharf system check [--repair]`, `wharf system df [-v]` and `wharf system prune`.

use std::collections::HashSet;

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Verify every blob and image; exit non-zero if anything is broken.
    Check {
        /// Remove what is broken (corrupt blobs, images missing blobs, leftovers).
        #[arg(long)]
        repair: bool,
    },
    /// Show the disk wharf uses: images, containers, volumes, the layer and code caches.
    Df {
        /// Also list each image, container and volume.
        #[arg(short, long)]
        verbose: bool,
        /// table, json (one object per line) or a Go template.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Remove stopped containers, then blobs and unpacked layers that nothing uses.
    Prune {
        /// Also remove every image no container uses.
        #[arg(short, long)]
        all: bool,
    },
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    match args.command {
        Command::Check { repair } => {
            let mut report = store.check(repair)?;
            let containers = wharf::lifecycle::containers(&ctx.roots);
            let names = containers.check_names();
            if repair && !names.is_empty() {
                containers.rebuild_names()?;
            }
            report.problems.extend(names);
            for p in &report.problems {
                outln!("{}{p}", if repair { "removed: " } else { "" });
            }
            outln!(
                "checked {} blobs: {} problems",
                report.blobs_checked,
                report.problems.len()
            );
            if !report.problems.is_empty() && !repair {
                anyhow::bail!(
                    "the store has {} problems (run `wharf system check --repair`)",
                    report.problems.len()
                );
            }
        }
        Command::Df { verbose, format } => super::df::run(ctx, &store, verbose, &format)?,
        Command::Prune { all } => {
            let containers = wharf::lifecycle::containers(&ctx.roots);
            let mut removed = 0;
            for r in containers.list() {
                if r.state.is_active() {
                    continue;
                }
                if let Ok(l) = containers.lock(&r.id)
                    && !l.record.state.is_active()
                {
                    containers.remove(l)?;
                    removed += 1;
                }
            }
            containers.remove_leftovers()?;
            outln!("Deleted {removed} stopped containers");
            if all {
                let images = super::image::unused(&store, true)?;
                for d in &images {
                    store.remove(d, false)?;
                }
                outln!("Deleted {} unused images", images.len());
            }
            let gc = store.gc(&HashSet::new())?;
            outln!(
                "Deleted {} blobs ({} bytes) and {} layers",
                gc.blobs,
                gc.bytes,
                gc.layers
            );
        }
    }
    Ok(())
}
