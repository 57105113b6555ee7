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
    /// Compile the wasm images now, so their first run does not (fills wharf's cache).
    #[arg(long)]
    precompile: bool,
}

pub fn run(ctx: &Context_, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    if !args.input.exists() {
        anyhow::bail!("{}: no such file or directory", args.input.display());
    }
    let loaded = archive::load(&store, &args.input)
        .with_context(|| format!("loading {}", args.input.display()))?;
    for l in &loaded {
        match (&l.name, args.quiet) {
            (Some(n), false) => outln!("Loaded image: {n}"),
            (None, false) => outln!("Loaded image ID: {}", l.digest),
            (Some(n), true) => outln!("{n}"),
            (None, true) => outln!("{}", l.digest),
        }
    }
    if args.precompile {
        for l in &loaded {
            precompile(ctx, &store, &l.digest)?;
        }
    }
    Ok(())
}

/// Compile one loaded image's module if it is a wasm image.
pub fn precompile(ctx: &Context_, store: &wharf::image::Store, image: &str) -> anyhow::Result<()> {
    let record = store.resolve(image)?;
    let resolved = wharf::image::resolved::ResolvedImage::new(store, record, None)?;
    let says_wasm = wharf::dispatch::decide(&resolved.facts())
        .is_ok_and(|d| d.kind == wharf::dispatch::Kind::Wasm);
    if !says_wasm {
        return Ok(());
    }
    let opts = wharf::run::options::RunOptions::default();
    let prepared = wharf::run::prepare(store, image, &opts, None)
        .with_context(|| format!("preparing {image} for compilation"))?;
    if let Some(module) = &prepared.wasm {
        let n = wharf::backend::wasm::precompile(module, ctx.roots.wasm_cache())
            .with_context(|| format!("compiling {image}"))?;
        tracing::info!(image, compiled = n, "precompiled");
    }
    Ok(())
}
