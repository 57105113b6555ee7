//! `wharf import [-c CHANGE]... [-m MESSAGE] [--platform OS/ARCH] FILE|- [REPOSITORY[:TAG]]`:
//! a root filesystem tarball (plain, gzip or zstd; `export`'s output) as a one-layer image.

use std::collections::HashSet;
use std::path::PathBuf;

use wharf::image::import::{ImportOptions, host_architecture, import};
use wharf::image::reference::Reference;

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A Dockerfile instruction for how it runs: CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER,
    /// EXPOSE, STOPSIGNAL.
    #[arg(short, long, value_name = "CHANGE")]
    change: Vec<String>,
    /// The history entry's comment.
    #[arg(short, long)]
    message: Option<String>,
    /// The image's platform, os/arch (default linux/this host's architecture).
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,
    /// The archive (`-`: standard input).
    file: PathBuf,
    /// Its name.
    reference: Option<String>,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let name = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let (os, architecture) = match args.platform.as_deref() {
        None => ("linux".to_string(), host_architecture().to_string()),
        Some(p) => {
            let (os, arch) = p
                .split_once('/')
                .ok_or_else(|| anyhow::anyhow!("invalid --platform {p:?}: expected OS/ARCH"))?;
            (os.to_string(), arch.to_string())
        }
    };
    let opts = ImportOptions {
        message: args.message,
        changes: args.change,
        os,
        architecture,
    };
    let store = ctx.store()?;
    let done = if args.file.as_os_str() == "-" {
        import(&store, &mut std::io::stdin().lock(), name.as_ref(), &opts)
    } else {
        let mut f = std::fs::File::open(&args.file)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", args.file.display()))?;
        import(&store, &mut f, name.as_ref(), &opts)
    };
    match done {
        Ok(digest) => {
            outln!("{digest}");
            Ok(())
        }
        Err(e) => {
            // What was stored of it belongs to no image: collected now.
            let _ = store.gc(&HashSet::new());
            Err(e.into())
        }
    }
}
