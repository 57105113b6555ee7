//! `wharf package FILE.wasm -t NAME[:TAG]`: wrap a wasm binary as an OCI image.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use wharf::backend::wasm::signed;
use wharf::image::Reference;
use wharf::image::package::{self, MAX_WASM_BYTES, PackageOptions};
use wharf::run::WasmModule;

use super::Session;

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
    /// Also compile the module for another host (a target triple such as
    /// aarch64-unknown-linux-musl, repeatable) into signed artifacts that `wharf load
    /// --precompile --precompiled` takes there instead of compiling.
    #[arg(long, value_name = "TARGET", requires = "sign_key")]
    precompile: Vec<String>,
    /// The ed25519 private key (PEM, `openssl genpkey -algorithm ed25519`) that signs them.
    #[arg(long, value_name = "PEM", requires = "precompile")]
    sign_key: Option<PathBuf>,
    /// Where the signed artifacts go.
    #[arg(long, value_name = "DIR", default_value = ".", requires = "precompile")]
    precompiled_dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
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
    // Every target and the key are checked before anything is written.
    let key = args
        .sign_key
        .as_deref()
        .map(signed::signing_key)
        .transpose()?;
    let targets = args
        .precompile
        .iter()
        .map(|t| signed::parse_target(t))
        .collect::<Result<Vec<_>, _>>()?;
    let store = ctx.store()?;
    let opts = PackageOptions {
        compat: args.compat,
        cmd,
        env: args.env,
        created: None,
    };
    let done = package::package(&store, &bytes, &name, &opts)
        .with_context(|| format!("packaging {}", args.file.display()))?;
    let artifacts = match &key {
        Some(key) => signed::export(
            &WasmModule::from_bytes(bytes, None)?,
            &targets,
            key,
            &args.precompiled_dir,
            &ctx.roots.wasm_cache(),
        )
        .with_context(|| {
            format!(
                "compiling {} for {}",
                args.file.display(),
                args.precompile.join(", ")
            )
        })?,
        None => Vec::new(),
    };
    if args.json {
        let mut v = serde_json::to_value(&done)?;
        if !artifacts.is_empty() {
            v["Precompiled"] = serde_json::to_value(&artifacts)?;
        }
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(
            "{} ({}, WASI {}, {})",
            done.reference,
            done.os,
            done.wasi.number(),
            done.digest
        );
        for a in &artifacts {
            outln!(
                "signed {} code for {}: {} ({} bytes)",
                match a.variant {
                    signed::Variant::Command => "command",
                    signed::Variant::Serving => "wasi:http serving",
                },
                a.target,
                a.path.display(),
                a.bytes
            );
        }
    }
    Ok(())
}
