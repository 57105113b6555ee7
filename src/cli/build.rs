//! `wharf build [-t NAME[:TAG]]... [-f FILE] [--build-arg K=V]... [--target STAGE] ... CONTEXT`:
//! a Dockerfile or Containerfile made into an image in wharf's store (Docker's flags; every
//! failure exits 1, as `docker build`'s do).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use wharf::build::{BuildOptions, PullPolicy};
use wharf::image::reference::Reference;
use wharf::run::options::Network;

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name the image (more than once for more names).
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    tag: Vec<String>,
    /// The Dockerfile (default CONTEXT/Dockerfile, else CONTEXT/Containerfile; `-`: stdin).
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// A build-time variable for the Dockerfile's ARGs (`KEY` alone: from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_arg: Vec<String>,
    /// Build this stage and the ones it needs, not the last.
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// The platform of the images FROM names, os/arch[/variant].
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,
    /// Run every step, using no cached result.
    #[arg(long)]
    no_cache: bool,
    /// When to pull FROM images: missing (default), always, never (`--pull` alone: always).
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "missing",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "always"
    )]
    pull: String,
    /// The network RUN steps get: none (default), host, pasta or a network's name.
    #[arg(long, value_name = "NETWORK", default_value = "none")]
    network: String,
    /// A label on the image.
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Write the image id to this file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Print nothing but the image id.
    #[arg(short, long)]
    quiet: bool,
    /// Every time written (files, history, config) at these seconds since the epoch, for
    /// the same image from the same input (default $SOURCE_DATE_EPOCH, if set).
    #[arg(long, value_name = "SECONDS")]
    timestamp: Option<u64>,
    #[command(flatten)]
    trust: super::pull::TrustArgs,
    /// The build context: a directory.
    context: PathBuf,
}

/// Progress as buildah prints it (to stderr, so stdout holds only the id), or nothing.
struct Progress {
    quiet: bool,
}

impl wharf::lifecycle::Events for Progress {
    fn progress(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }
    fn warning(&self, message: &str) {
        eprintln!("wharf: {message}");
    }
}

fn pairs(what: &str, list: &[String], from_env: bool) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in list {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env && !kv.is_empty() => {
                if let Ok(v) = std::env::var(kv) {
                    out.insert(kv.clone(), v);
                }
            }
            _ => anyhow::bail!("invalid {what} {kv:?}: expected KEY=VALUE"),
        }
    }
    Ok(out)
}

fn options(args: &Args) -> anyhow::Result<BuildOptions> {
    let tags = args
        .tag
        .iter()
        .map(|t| Reference::parse(t).map_err(|e| anyhow::anyhow!("invalid -t {t:?}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pull = match args.pull.as_str() {
        "missing" | "false" => PullPolicy::Missing,
        "always" | "true" => PullPolicy::Always,
        "never" => PullPolicy::Never,
        other => anyhow::bail!("invalid --pull {other:?}: missing, always or never"),
    };
    let network: Network = args
        .network
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid --network: {e}"))?;
    let timestamp = match args.timestamp {
        Some(t) => Some(t),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.is_empty() => Some(v.parse().map_err(|_| {
                anyhow::anyhow!("invalid SOURCE_DATE_EPOCH {v:?}: seconds since the epoch")
            })?),
            _ => None,
        },
    };
    Ok(BuildOptions {
        context: args.context.clone(),
        file: args.file.clone(),
        tags,
        build_args: pairs("--build-arg", &args.build_arg, true)?,
        target: args.target.clone(),
        platform: args
            .platform
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        no_cache: args.no_cache,
        pull,
        network,
        labels: pairs("--label", &args.label, false)?,
        timestamp,
        trust: args.trust.options(),
    })
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    // RUN steps are native containers, cloned from this process: it goes on from a sealed
    // copy of wharf first (as a foreground `wharf run` does), before anything is read.
    #[cfg(target_os = "linux")]
    if let Err(e) = wharf::backend::native::seal::ensure_sealed() {
        eprintln!("wharf: cannot run from a sealed copy of wharf: {e}");
        return Ok(ExitCode::from(1));
    }
    let opts = match options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wharf: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    let progress = Progress { quiet: args.quiet };
    // `-q`: the steps' own output (RUN's) is not shown either; this process's output is
    // put back for the id, or the error.
    #[cfg(target_os = "linux")]
    let saved = args.quiet.then(quiet_output).flatten();
    let built = wharf::build::build(ctx, &opts, &progress);
    #[cfg(target_os = "linux")]
    if let Some((out, err)) = saved {
        let _ = nix::unistd::dup2_stdout(&out);
        let _ = nix::unistd::dup2_stderr(&err);
    }
    match built {
        Ok(built) => {
            if let Some(f) = &args.iidfile
                && let Err(e) = std::fs::write(f, &built.digest)
            {
                eprintln!("wharf: writing --iidfile {}: {e}", f.display());
                return Ok(ExitCode::from(1));
            }
            if !args.quiet {
                for t in &opts.tags {
                    eprintln!("Successfully tagged {t}");
                }
                eprintln!("{} steps, {} from the cache", built.steps, built.cached);
            }
            println!("{}", built.digest);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("wharf: build failed: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Standard output and error sent to /dev/null; the originals, to put back.
#[cfg(target_os = "linux")]
fn quiet_output() -> Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .ok()?;
    let out = nix::unistd::dup(std::io::stdout()).ok()?;
    let err = nix::unistd::dup(std::io::stderr()).ok()?;
    nix::unistd::dup2_stdout(&null).ok()?;
    nix::unistd::dup2_stderr(&null).ok()?;
    Some((out, err))
}
