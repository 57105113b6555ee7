//! `wharf load -i PATH`: import images from an OCI layout directory, an oci-archive or a
//! docker-archive (each possibly gzip- or zstd-compressed), detected from content.

use std::path::PathBuf;

use anyhow::Context;
use wharf::backend::wasm::signed;
use wharf::image::archive;

use super::Session;

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
    /// Longest one module may take to compile (default: 2 minutes, and 3 s more per MiB).
    #[arg(long, value_parser = wharf::run::options::parse_duration, value_name = "DURATION", requires = "precompile")]
    compile_timeout: Option<std::time::Duration>,
    /// Take compiled code from signed artifacts (`wharf package --precompile`) instead of
    /// compiling: a file, or a directory of `*.wharf-cwasm` files (repeatable). Only files
    /// signed by a trusted key, for this module, wasmtime and target are taken.
    #[arg(long, value_name = "PATH", requires = "precompile")]
    precompiled: Vec<PathBuf>,
    /// A public key (PEM, ed25519) whose signed artifacts are trusted (repeatable); the
    /// keys in `<root>/trusted-keys/*.pem` are trusted too.
    #[arg(long, value_name = "PEM", requires = "precompiled")]
    trust_key: Vec<PathBuf>,
    /// The signature policy to obey instead of ROOT/policy.json,
    /// ~/.config/containers/policy.json or /etc/containers/policy.json.
    #[arg(long, value_name = "FILE")]
    signature_policy: Option<PathBuf>,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    if !args.input.exists() {
        anyhow::bail!("{}: no such file or directory", args.input.display());
    }
    // Checked before anything is loaded.
    let signed = Signed {
        files: signed::candidates(&args.precompiled)?,
        trusted: trusted_keys(ctx, &args.trust_key)?,
    };
    let trust = wharf::trust::TrustOptions {
        policy: args.signature_policy.clone(),
        registries_d: None,
    };
    let loaded = archive::load(&store, &args.input, &trust)
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
        // Every image is tried: one that does not compile in time leaves the others' code.
        let mut failed = Vec::new();
        for l in &loaded {
            let name = l.name.as_deref().unwrap_or(&l.digest);
            let limit = args.compile_timeout;
            if let Err(e) = precompile(ctx, &store, &l.digest, name, &signed, limit, args.quiet) {
                eprintln!("wharf: {e:#}");
                failed.push(name.to_owned());
            }
        }
        if !failed.is_empty() {
            anyhow::bail!(
                "{} of {} loaded images could not be precompiled ({}): they are loaded, and compile when they first run",
                failed.len(),
                loaded.len(),
                failed.join(", ")
            );
        }
    }
    Ok(())
}

/// Signed artifacts offered with `--precompiled`, and the keys trusted to sign them.
#[derive(Default)]
pub struct Signed {
    files: Vec<PathBuf>,
    trusted: Vec<ed25519_dalek::VerifyingKey>,
}

/// The `--trust-key` files and `<root>/trusted-keys/*.pem`.
fn trusted_keys(
    ctx: &Session,
    flags: &[PathBuf],
) -> anyhow::Result<Vec<ed25519_dalek::VerifyingKey>> {
    let mut paths = flags.to_vec();
    if let Ok(entries) = std::fs::read_dir(ctx.roots.trusted_keys()) {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        found.sort();
        paths.extend(found);
    }
    paths
        .iter()
        .map(|p| signed::verifying_key(p).map_err(anyhow::Error::from))
        .collect()
}

/// Compile one loaded image's module if it is a wasm image (or take its code from a signed
/// artifact).
pub fn precompile(
    ctx: &Session,
    store: &wharf::image::Store,
    image: &str,
    name: &str,
    signed: &Signed,
    limit: Option<std::time::Duration>,
    quiet: bool,
) -> anyhow::Result<()> {
    let record = store.resolve(image)?;
    let resolved = wharf::image::resolved::ResolvedImage::new(store, record, None)?;
    let says_wasm = wharf::dispatch::decide(&wharf::dispatch::Facts::of_image(&resolved))
        .is_ok_and(|d| d.kind == wharf::dispatch::Kind::Wasm);
    if !says_wasm {
        return Ok(());
    }
    let opts = wharf::run::options::RunOptions::default();
    let prepared = wharf::run::prepare(store, image, &opts, None)
        .with_context(|| format!("preparing {image} for compilation"))?;
    let Some(module) = &prepared.wasm else {
        return Ok(());
    };
    let mut taken = 0;
    let mine: Vec<&PathBuf> = signed
        .files
        .iter()
        .filter(|f| signed::is_for(f, module))
        .collect();
    for file in &mine {
        match signed::import(file, module, &signed.trusted, &ctx.roots.wasm_cache()) {
            Ok(i) => {
                taken += 1;
                tracing::info!(file = %file.display(), variant = ?i.variant, key = i.key, "took signed compiled code");
            }
            Err(e) => eprintln!("wharf: warning: not used: {e}"),
        }
    }
    // Whatever no artifact provided is compiled here.
    let compiled = wharf::backend::wasm::precompile(module, ctx.roots.wasm_cache(), limit)
        .with_context(|| format!("compiling {image}"))?;
    if !quiet {
        let why = if mine.is_empty() && !signed.files.is_empty() {
            format!(
                " (none of the {} artifacts offered is for this module on {})",
                signed.files.len(),
                wharf::backend::wasm::engine::target()
            )
        } else {
            String::new()
        };
        outln!("Precompiled {name}: {taken} from signed artifacts, {compiled} compiled here{why}");
    }
    Ok(())
}
