//! `wharf package FILE.wasm -t NAME[:TAG]`: wrap a wasm binary as an OCI image.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use wharf::image::Reference;
use wharf::image::package::{self, MAX_WASM_BYTES, PackageOptions};

use super::Context_;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The .wasm file (a core module or a component).
    file: PathBuf,
    /// Name of the image to create.
    #[arg(short, long, value_name = "NAME[:TAG]")]
    tag: String,
    /// Make an ordinary image with the module at /app.wasm (Docker+Wasm / crun shape)
    /// instead of a CNCF Wasm OCI artifact.
    #[arg(long)]
    compat: bool,
    /// Default arguments (repeat, or give a JSON array).
    #[arg(long, value_name = "ARG")]
    cmd: Vec<String>,
    /// Default environment variable KEY=VALUE (repeatable).
    #[arg(short, long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context_, args: Args) -> anyhow::Result<()> {
    let name = Reference::parse(&args.tag).context("parsing --tag")?;
    let mut bytes = Vec::new();
    std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?
        .take(MAX_WASM_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let cmd = match args.cmd.as_slice() {
        [] => None,
        [one] if one.trim_start().starts_with('[') => Some(
            serde_json::from_str::<Vec<String>>(one).context("parsing --cmd as a JSON array")?,
        ),
        many => Some(many.to_vec()),
    };
    let store = ctx.store()?;
    let opts = PackageOptions {
        compat: args.compat,
        cmd,
        env: args.env,
        created: None,
    };
    let done = package::package(&store, &bytes, &name, &opts)
        .with_context(|| format!("packaging {}", args.file.display()))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&done)?);
    } else {
        outln!("{} ({}, {})", done.reference, done.os, done.digest);
    }
    Ok(())
}
