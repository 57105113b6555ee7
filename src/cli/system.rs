//! `wharf system check [--repair]` and `wharf system prune`.

use std::collections::HashSet;

use super::Context_;

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
    /// Remove blobs and unpacked layers that no image uses.
    Prune,
}

pub fn run(ctx: &Context_, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    match args.command {
        Command::Check { repair } => {
            let report = store.check(repair)?;
            for p in &report.problems {
                println!("{}{p}", if repair { "removed: " } else { "" });
            }
            println!(
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
        Command::Prune => {
            let gc = store.gc(&HashSet::new())?;
            println!(
                "Deleted {} blobs ({} bytes) and {} layers",
                gc.blobs, gc.bytes, gc.layers
            );
        }
    }
    Ok(())
}
