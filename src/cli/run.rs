//! `wharf run [OPTIONS] IMAGE [COMMAND] [ARG...]`: run an image (or a `.wasm`/`.wat` file)
//! in the foreground, with Docker's flags and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use wharf::backend::wasm::{self, StdioOptions, WasmRun};
use wharf::dispatch::{Decision, Kind};
use wharf::image::platform::PlatformSpec;
use wharf::run::options::{
    Limits, Network, PortMapping, RunOptions, Volume, parse_duration, parse_env, parse_env_file,
    parse_size,
};
use wharf::run::{self, RunError};

use super::{Context_, EXIT_WHARF_FAILED};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Replace the image's entrypoint (for wasm, `file.wasm#export` calls another export).
    #[arg(long, value_name = "CMD")]
    entrypoint: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass wharf's own value).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines).
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container (wasm: passed as PWD).
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// Bind a host directory: HOST:CONTAINER[:ro|:rw] (read-write unless :ro).
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    volumes: Vec<Volume>,
    /// Publish a port: [IP:]HOST_PORT:CONTAINER_PORT (IP defaults to 127.0.0.1).
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:CONTAINER")]
    publish: Vec<PortMapping>,
    /// Network: none (default; wasm sockets denied) or host.
    #[arg(long, default_value = "none")]
    network: Network,
    /// Memory limit (e.g. 64m): wasm linear memories and tables.
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    memory: Option<u64>,
    /// Wall-clock limit (e.g. 10s, 500ms): the guest is stopped with exit code 137.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    timeout: Option<Duration>,
    /// wasm fuel budget (roughly, instructions): exhausted → exit code 152.
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,
    /// Longest a wasm module may take to compile.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    compile_timeout: Option<Duration>,
    /// Keep stdin open and connect it.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a terminal (wasm: guest output passes through unsanitised).
    #[arg(short, long)]
    tty: bool,
    /// Print how wharf decided to run the image, and why, before running it.
    #[arg(long)]
    explain: bool,
    /// Platform of a multi-platform image.
    #[arg(long)]
    platform: Option<PlatformSpec>,
    /// The image, or a .wasm/.wat file.
    image: String,
    /// Command and arguments (replace the image's cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

impl Args {
    fn options(&self) -> anyhow::Result<RunOptions> {
        let mut env = Vec::new();
        for f in &self.env_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading --env-file {}", f.display()))?;
            env.extend(parse_env_file(&text)?);
        }
        for e in &self.env {
            env.extend(parse_env(e)?);
        }
        Ok(RunOptions {
            entrypoint: self.entrypoint.clone(),
            args: self.command.clone(),
            env,
            workdir: self.workdir.clone(),
            volumes: self.volumes.clone(),
            ports: self.publish.clone(),
            network: self.network,
            limits: Limits {
                memory: self.memory,
                timeout: self.timeout,
                fuel: self.fuel,
            },
            interactive: self.interactive,
            tty: self.tty,
        })
    }
}

fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("wharf: {e:#}");
    ExitCode::from(code)
}

pub fn run(ctx: &Context_, args: Args) -> anyhow::Result<ExitCode> {
    let opts = args.options()?;
    let store = ctx.store()?;
    let prepared = match run::prepare(&store, &args.image, &opts, args.platform.as_ref()) {
        Ok(p) => p,
        Err(e @ RunError::EntrypointNotFound { .. }) => {
            return Ok(fail(127, anyhow::Error::from(e)));
        }
        Err(e @ (RunError::NotWasm { .. } | RunError::Package(_))) => {
            return Ok(fail(126, anyhow::Error::from(e)));
        }
        Err(e) => return Ok(fail(EXIT_WHARF_FAILED, anyhow::Error::from(e))),
    };
    if args.explain {
        explain(&prepared.name, &prepared.decision);
    }
    match prepared.decision.kind {
        Kind::Wasm => {
            let module = prepared
                .wasm
                .as_ref()
                .expect("a wasm decision carries a module");
            let result = wasm::run(WasmRun {
                name: &prepared.name,
                module,
                spec: &prepared.spec,
                rootfs: prepared.rootfs.as_deref(),
                ports: &opts.ports,
                stdio: StdioOptions {
                    interactive: opts.interactive,
                    tty: opts.tty,
                },
                cache_dir: ctx.roots.wasm_cache(),
                compile_timeout: args
                    .compile_timeout
                    .unwrap_or(wasm::DEFAULT_COMPILE_TIMEOUT),
            });
            match result {
                Ok(exit) => {
                    if let Some(m) = &exit.message {
                        eprintln!("wharf: {m}");
                    }
                    Ok(ExitCode::from(exit.code))
                }
                Err(e) => Ok(fail(e.exit_code(), &e)),
            }
        }
        Kind::Native => Ok(fail(
            EXIT_WHARF_FAILED,
            format!(
                "{} is a native Linux image ({}); the native backend is not built yet",
                prepared.name, prepared.decision.reason
            ),
        )),
    }
}

fn explain(name: &str, d: &Decision) {
    eprintln!("wharf: {name}: runs as {} ({})", d.kind, d.reason);
    for s in &d.signals {
        eprintln!("wharf:   {s}");
    }
}
