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
    Limits, NativeOptions, Network, PortMapping, RunOptions, Ulimit, Volume, parse_duration,
    parse_env, parse_env_file, parse_size,
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
    /// Run as this user: name, uid, name:group or uid:gid (native).
    #[arg(short = 'u', long, value_name = "USER")]
    user: Option<String>,
    /// Container hostname (native).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// Mount the root filesystem read-only (native).
    #[arg(long)]
    read_only: bool,
    /// Add a capability (native; ALL for every one).
    #[arg(long, value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop a capability (native; ALL for every one).
    #[arg(long, value_name = "CAP")]
    cap_drop: Vec<String>,
    /// Every capability, no seccomp, no masked paths: the container can do what root on the
    /// host can (native).
    #[arg(long)]
    privileged: bool,
    /// Security options: seccomp=unconfined (native).
    #[arg(long, value_name = "OPT")]
    security_opt: Vec<String>,
    /// Most processes the container may have (native, cgroup pids.max).
    #[arg(long, value_name = "N")]
    pids_limit: Option<i64>,
    /// CPU limit in cores, e.g. 0.5 (native, cgroup CPU quota).
    #[arg(long, value_name = "CORES")]
    cpus: Option<f64>,
    /// Mount a tmpfs at this path (native).
    #[arg(long, value_name = "PATH")]
    tmpfs: Vec<String>,
    /// Run a small init as pid 1 that reaps zombies and forwards signals (native).
    #[arg(long)]
    init: bool,
    /// Resource limit NAME=SOFT[:HARD], e.g. nofile=1024:2048 (native).
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    ulimit: Vec<Ulimit>,
    /// Print how wharf decided to run the image, and why, before running it.
    #[arg(long)]
    explain: bool,
    /// Print the OCI runtime spec (config.json) wharf would run, and exit.
    #[arg(long)]
    print_spec: bool,
    /// Platform of a multi-platform image.
    #[arg(long)]
    platform: Option<PlatformSpec>,
    /// Pull the image first: missing (default), always, never.
    #[arg(long, default_value = "missing", value_parser = ["missing", "always", "never"])]
    pull: String,
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
            native: NativeOptions {
                user: self.user.clone(),
                hostname: self.hostname.clone(),
                read_only: self.read_only,
                cap_add: self.cap_add.clone(),
                cap_drop: self.cap_drop.clone(),
                privileged: self.privileged,
                seccomp_unconfined: self
                    .security_opt
                    .iter()
                    .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined"),
                pids_limit: self.pids_limit,
                cpus: self.cpus,
                tmpfs: self.tmpfs.clone(),
                init: self.init,
                ulimits: self.ulimit.clone(),
            },
        })
    }
}

/// How the workload ended: its message (if any) on stderr, its code as ours.
fn report(exit: &wharf::backend::Exit) -> ExitCode {
    if let Some(m) = &exit.message {
        eprintln!("wharf: {m}");
    }
    ExitCode::from(exit.code)
}

fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("wharf: {e:#}");
    ExitCode::from(code)
}

pub fn run(ctx: &Context_, args: Args) -> anyhow::Result<ExitCode> {
    let opts = args.options()?;
    let store = ctx.store()?;
    let is_file = std::path::Path::new(&args.image).is_file();
    let missing = !is_file
        && matches!(
            store.resolve(&args.image),
            Err(wharf::image::StoreError::NotFound(_))
        );
    if !is_file && (args.pull == "always" || (args.pull == "missing" && missing)) {
        // In a child process: pulling starts threads, and a native container must be cloned
        // from a single-threaded wharf.
        let mut pull = std::process::Command::new(std::env::current_exe()?);
        pull.arg("--root")
            .arg(ctx.roots.data())
            .args(["pull", "-q"]);
        if let Some(p) = &args.platform {
            pull.arg("--platform").arg(p.to_string());
        }
        let status = pull
            .arg(&args.image)
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            return Ok(ExitCode::from(EXIT_WHARF_FAILED));
        }
    }
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
    if args.print_spec {
        println!("{}", serde_json::to_string_pretty(&prepared.spec)?);
        return Ok(ExitCode::SUCCESS);
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
            Ok(match result {
                Ok(exit) => report(&exit),
                Err(e) => fail(e.exit_code(), &e),
            })
        }
        Kind::Native => run_native(ctx, &prepared, &store, opts.interactive),
    }
}

#[cfg(target_os = "linux")]
fn run_native(
    ctx: &Context_,
    p: &run::Prepared,
    store: &wharf::image::Store,
    interactive: bool,
) -> anyhow::Result<ExitCode> {
    use wharf::backend::native::{self, NativeRun};

    let id = container_id();
    let result = native::run(NativeRun {
        id: &id,
        spec: &p.spec,
        layers: &p.layers,
        layers_dir: store.layers_dir(),
        containers_dir: &ctx.roots.containers(),
        interactive,
        image_digest: p.image_digest.as_deref(),
        tty: p
            .spec
            .process()
            .as_ref()
            .and_then(|pr| pr.terminal())
            .unwrap_or(false),
        rootless: !wharf::sys::is_root(),
    });
    Ok(match result {
        Ok(exit) => report(&exit),
        Err(e) => fail(e.exit_code(), &e),
    })
}

#[cfg(not(target_os = "linux"))]
fn run_native(
    _: &Context_,
    p: &run::Prepared,
    _: &wharf::image::Store,
    _: bool,
) -> anyhow::Result<ExitCode> {
    Ok(fail(EXIT_WHARF_FAILED, native_unavailable(p)))
}

/// A fresh container id: 64 hex digits, as Docker's.
#[cfg(target_os = "linux")]
fn container_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = Vec::new();
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.write_u32(std::process::id());
        bytes.extend_from_slice(&h.finish().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a native image cannot run here.
#[cfg(not(target_os = "linux"))]
fn native_unavailable(p: &run::Prepared) -> String {
    {
        format!(
            "{} is a native Linux image ({}): it needs a Linux host; on this system wharf runs wasm images only",
            p.name, p.decision.reason
        )
    }
}

fn explain(name: &str, d: &Decision) {
    eprintln!("wharf: {name}: runs as {} ({})", d.kind, d.reason);
    for s in &d.signals {
        eprintln!("wharf:   {s}");
    }
}
