//! `wharf load -i PATH`: import images from an OCI layout directory, an oci-archive or a
//! docker-archive (each possibly gzip- or zstd-compressed), detected from content.

use std::path::PathBuf;

use anyhow::Context;
use wharf::image::archive;

use super::Context_;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archive file or layout directory.
    #[arg(short, long, value_name = "PATH")]
    input: PathBuf,
    /// Print only the loaded references.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(ctx: &Context_, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    if !args.input.exists() {
        anyhow::bail!("{}: no such file or directory", args.input.display());
    }
    let loaded = archive::load(&store, &args.input)
        .with_context(|| format!("loading {}", args.input.display()))?;
    for l in loaded {
        match (&l.name, args.quiet) {
            (Some(n), false) => println!("Loaded image: {n}"),
            (None, false) => println!("Loaded image ID: {}", l.digest),
            (Some(n), true) => println!("{n}"),
            (None, true) => println!("{}", l.digest),
        }
    }
    Ok(())
}
