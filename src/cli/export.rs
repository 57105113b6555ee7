//! `wharf export [-o FILE] CONTAINER` (its root filesystem as a tar stream) and `wharf diff
//! CONTAINER` (what it changed against its image: `A`, `C`, `D` lines, as Docker).

use std::io::Write;
use std::path::PathBuf;

use super::Session;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to this file (default: standard output, which must not be a terminal).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The container (name or id).
    container: String,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The container (name or id).
    container: String,
}

pub fn export(ctx: &Session, args: ExportArgs) -> anyhow::Result<()> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let id = containers.find(&args.container)?;
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed: no half-written archive is left.
            let tmp = path.with_extension("wharf-export.tmp");
            let mut f = std::fs::File::create(&tmp)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", tmp.display()))?;
            let done = wharf::lifecycle::export::export(ctx, &id, &mut f)
                .map_err(anyhow::Error::from)
                .and_then(|_| f.sync_all().map_err(Into::into))
                .and_then(|()| std::fs::rename(&tmp, path).map_err(Into::into));
            if done.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            done
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                anyhow::bail!(
                    "refusing to write a tar stream to a terminal: use -o FILE or redirect"
                );
            }
            let mut out = std::io::stdout().lock();
            wharf::lifecycle::export::export(ctx, &id, &mut out)?;
            out.flush()?;
            Ok(())
        }
    }
}

pub fn diff(ctx: &Session, args: DiffArgs) -> anyhow::Result<()> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let id = containers.find(&args.container)?;
    for (kind, path) in wharf::lifecycle::export::diff(ctx, &id)? {
        outln!("{kind} {path}");
    }
    Ok(())
}
