//! `wharf run [OPTIONS] IMAGE [COMMAND] [ARG...]`: run an image (or a `.wasm`/`.wat` file)
//! in the foreground, with Docker's flags and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use wharf::backend::Exit;
use wharf::container::{self, LogConfig, Record, RestartPolicy};
use wharf::dispatch::Decision;
use wharf::image::platform::PlatformSpec;
use wharf::lifecycle::{self, CreateRequest, LifecycleError};
use wharf::run::options::{
    HealthConfig, Limits, NativeOptions, Network, PortMapping, RunOptions, Ulimit, Volume,
    parse_cpus, parse_duration, parse_env, parse_env_file, parse_size,
};
use wharf::run::{self, Prepared};

use super::{EXIT_WHARF_FAILED, Session};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run in the background: print the container's id; a monitor keeps its log.
    #[arg(short, long)]
    detach: bool,
    /// Name the container (else one is made up).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Remove the container when it ends.
    #[arg(long)]
    rm: bool,
    /// Restart policy of a detached container: no, on-failure[:N], always.
    #[arg(long, default_value = "no", value_name = "POLICY")]
    restart: RestartPolicy,
    /// Signal `stop` sends first (default: the image's StopSignal, else SIGTERM).
    #[arg(long, value_name = "SIGNAL")]
    stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[arg(long, value_name = "SECONDS")]
    stop_timeout: Option<u64>,
    /// Log options: max-size=SIZE (default 20m), max-file=N (default 5).
    #[arg(long, value_name = "OPT=VALUE")]
    log_opt: Vec<String>,
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
    /// Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp] (IP defaults to 127.0.0.1;
    /// no host port: a free one).
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:CONTAINER")]
    publish: Vec<PortMapping>,
    /// Publish every port the image exposes on free loopback ports (a bridge network).
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// Network: none (default; wasm sockets denied), host, or a network's name (`wharf network
    /// ls`; `bridge` is the default one).
    #[arg(long, alias = "net", default_value = "none", value_name = "NETWORK")]
    network: Network,
    /// Another name for the container on its --network.
    #[arg(long, alias = "net-alias", value_name = "NAME")]
    network_alias: Vec<String>,
    /// The container's IPv4 address on its --network.
    #[arg(long, value_name = "IP")]
    ip: Option<std::net::Ipv4Addr>,
    /// Memory limit (e.g. 64m): wasm linear memories and tables.
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    memory: Option<u64>,
    /// Wall-clock limit (e.g. 10s, 500ms): the guest is stopped with exit code 137.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    timeout: Option<Duration>,
    /// wasm fuel budget (roughly, instructions): exhausted → exit code 152.
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,
    /// Longest a wasm module may take to compile (default: 2 minutes, and 3 s more per MiB of
    /// module).
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
    #[arg(long, value_parser = parse_cpus, value_name = "CORES")]
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
    /// Health check run inside the container by `sh -c` (a wasm container: a command naming
    /// an http:// URL, which is fetched), by its monitor (-d).
    #[arg(long, value_name = "COMMAND")]
    health_cmd: Option<String>,
    /// Health check as a JSON list, Docker's form: `["CMD", "/healthz"]` runs the program
    /// itself (no shell), `["CMD-SHELL", "..."]` through `sh -c` (compose uses this).
    #[arg(long, value_name = "JSON", conflicts_with = "health_cmd")]
    health_test: Option<String>,
    /// Time between health checks (default 30s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    health_interval: Option<Duration>,
    /// Longest a health check may run (default 30s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    health_timeout: Option<Duration>,
    /// Failures in a row that make it unhealthy (default 3).
    #[arg(long, value_name = "N")]
    health_retries: Option<u32>,
    /// Failures before this much time has passed do not count (default 0s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    health_start_period: Option<Duration>,
    /// A label KEY=VALUE (`ps -f label=KEY[=VALUE]` finds it).
    #[arg(short = 'l', long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Call one export of a wasm module or component and print its results, as `wasmtime
    /// run --invoke`: `'name(arg, ...)'` (numbers, bools, 'c', "strings"), or `name` with the
    /// arguments after the image.
    #[arg(long, value_name = "EXPR")]
    invoke: Option<String>,
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
    /// The image (or a .wasm/.wat file), then the command and its arguments (they replace
    /// the image's cmd). wharf's options end at IMAGE: what follows goes to the program, as
    /// Docker's do.
    #[arg(
        value_name = "IMAGE",
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    argv: Vec<String>,
}

/// The largest `--env-file` read.
const ENV_FILE_MAX: u64 = 64 << 20;

impl Args {
    /// The image (or file) to run.
    pub(crate) fn image(&self) -> &str {
        &self.argv[0]
    }

    /// The command and arguments after the image.
    pub(crate) fn command(&self) -> &[String] {
        &self.argv[1..]
    }

    /// What this command line says, parsed (files read, relative paths made absolute);
    /// the library checks it as a whole ([`CreateRequest::validate`]).
    pub(crate) fn request(&self, detached: bool) -> anyhow::Result<CreateRequest> {
        Ok(CreateRequest {
            image: self.image().to_owned(),
            options: self.options()?,
            name: self.name.clone(),
            platform: self.platform.clone(),
            restart: self.restart,
            auto_remove: self.rm,
            detached,
            log: self.log_config()?,
            stop_timeout: self.stop_timeout,
            compile_timeout: self.compile_timeout,
        })
    }

    fn options(&self) -> anyhow::Result<RunOptions> {
        let mut env = Vec::new();
        for f in &self.env_file {
            let text = wharf::sys::read_text_file(f, ENV_FILE_MAX)
                .with_context(|| format!("reading --env-file {}", f.display()))?;
            env.extend(parse_env_file(&text)?);
        }
        for e in &self.env {
            env.extend(parse_env(e)?);
        }
        let health = match (&self.health_cmd, &self.health_test) {
            (Some(cmd), _) => Some(vec!["CMD-SHELL".to_string(), cmd.to_string()]),
            (None, Some(json)) => Some(serde_json::from_str(json).map_err(|_| {
                anyhow::anyhow!(
                    "invalid --health-test {json:?}: expected a JSON list such as [\"CMD\", \"/healthz\"]"
                )
            })?),
            (None, None) => None,
        };
        Ok(RunOptions {
            entrypoint: self.entrypoint.clone(),
            args: self.command().to_vec(),
            env,
            workdir: self.workdir.clone(),
            // Relative host paths mean the caller's directory, which the container's helpers
            // (and a native child after it changes directory) do not share: make them
            // absolute. A named volume gets its directory from the library.
            volumes: self
                .volumes
                .iter()
                .map(|v| match &v.named {
                    None if !v.host.has_root() => Volume {
                        host: std::path::absolute(&v.host).unwrap_or_else(|_| v.host.clone()),
                        ..v.clone()
                    },
                    _ => v.clone(),
                })
                .collect(),
            ports: self.publish.clone(),
            network: self.network.clone(),
            publish_all: self.publish_all,
            network_aliases: self.network_alias.clone(),
            ip: self.ip,
            connected: Vec::new(),
            labels: super::labels(&self.label),
            health: health.map(|test| {
                let mut h = HealthConfig::new(test);
                h.interval = self.health_interval.unwrap_or(h.interval);
                h.timeout = self.health_timeout.unwrap_or(h.timeout);
                h.retries = self.health_retries.unwrap_or(h.retries);
                h.start_period = self.health_start_period.unwrap_or(h.start_period);
                h
            }),
            limits: Limits {
                memory: self.memory,
                timeout: self.timeout,
                fuel: self.fuel,
            },
            interactive: self.interactive,
            tty: self.tty,
            stop_signal: self.stop_signal.clone(),
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

    fn log_config(&self) -> anyhow::Result<LogConfig> {
        let mut c = LogConfig::default();
        for o in &self.log_opt {
            match o.split_once('=') {
                Some(("max-size", v)) => {
                    c.max_size =
                        parse_size(v).with_context(|| format!("invalid --log-opt {o:?}"))?
                }
                Some(("max-file", v)) => {
                    c.max_files = v.parse().ok().filter(|n| *n > 0).with_context(|| {
                        format!("invalid --log-opt {o:?}: max-file must be a positive number")
                    })?
                }
                _ => anyhow::bail!("invalid --log-opt {o:?}: expected max-size=SIZE or max-file=N"),
            }
        }
        Ok(c)
    }
}

/// How the workload ended: its message (if any) on stderr, its code as ours.
pub fn report(exit: &Exit) -> ExitCode {
    if let Some(m) = &exit.message {
        eprintln!("wharf: {m}");
    }
    ExitCode::from(exit.code)
}

fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("wharf: {e:#}");
    ExitCode::from(code)
}

/// A lifecycle error as the exit code and message of a failed command.
pub fn lifecycle_failure(e: LifecycleError) -> ExitCode {
    fail(e.exit_code(), anyhow::Error::from(e))
}

/// Pull `req`'s image first if `--pull` asks for it (in a child: pulling starts threads, and
/// a native container must be cloned from a single-threaded wharf).
fn pull_if_needed(
    ctx: &Session,
    req: &CreateRequest,
    pull: &str,
    store: &wharf::image::Store,
) -> anyhow::Result<bool> {
    let image = req.image.as_str();
    let is_file = std::path::Path::new(image).is_file() || wharf::run::names_a_file(image);
    let missing = !is_file
        && matches!(
            store.resolve(image),
            Err(wharf::image::StoreError::NotFound(_))
        );
    if is_file || !(pull == "always" || (pull == "missing" && missing)) {
        return Ok(true);
    }
    pull_in_child(ctx, image, req.platform.as_ref())
}

/// `wharf pull -q IMAGE` in a child (pulling starts threads; the caller may clone a native
/// container later, which needs a single-threaded wharf): whether it succeeded.
pub fn pull_in_child(
    ctx: &Session,
    image: &str,
    platform: Option<&PlatformSpec>,
) -> anyhow::Result<bool> {
    let mut pull = std::process::Command::new(std::env::current_exe()?);
    pull.arg("--root")
        .arg(ctx.roots.data())
        .arg("--log-level")
        .arg(&ctx.log_level)
        .args(["pull", "-q"]);
    if let Some(p) = platform {
        pull.arg("--platform").arg(p.to_string());
    }
    let status = pull
        .arg(image)
        .stdout(std::process::Stdio::null())
        .status()?;
    Ok(status.success())
}

/// Pull if asked, then create the container `args` describe: `Err` carries the exit code
/// (the message is printed).
pub fn create(
    ctx: &Session,
    args: &Args,
    detached: bool,
) -> anyhow::Result<Result<(Record, Prepared), ExitCode>> {
    let mut req = args.request(detached)?;
    if let Err(e) = lifecycle::create::settle(ctx, &mut req) {
        return Ok(Err(lifecycle_failure(e)));
    }
    let store = ctx.store()?;
    if !pull_if_needed(ctx, &req, &args.pull, &store)? {
        return Ok(Err(ExitCode::from(EXIT_WHARF_FAILED)));
    }
    let events = super::Printer {
        explain: args.explain,
    };
    Ok(lifecycle::create(ctx, &store, req, &events).map_err(lifecycle_failure))
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(expr) = &args.invoke {
        return invoke(ctx, &args, expr);
    }
    if args.print_spec || !container::supported() {
        if args.detach {
            anyhow::bail!("detached containers (-d) need a Linux or Windows host");
        }
        return run_unrecorded(ctx, args);
    }
    let (record, prepared) = match create(ctx, &args, args.detach)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let containers = ctx.containers();
    if args.detach {
        drop(prepared);
        return Ok(match lifecycle::start(ctx, &containers, &record.id) {
            Ok(()) => {
                outln!("{}", record.id);
                ExitCode::SUCCESS
            }
            Err(e) => lifecycle_failure(e),
        });
    }
    let id = record.id.clone();
    let events = super::Printer { explain: false };
    let exit = lifecycle::supervise(
        ctx,
        &containers,
        &id,
        Some((record, prepared)),
        None,
        args.rm,
        &events,
    );
    Ok(report(&exit))
}

/// `run --invoke`: one export called through the plugin API (the same loading, cache,
/// grants and limits a plugin host has), its results printed one a line.
fn invoke(ctx: &Session, args: &Args, expr: &str) -> anyhow::Result<ExitCode> {
    use wharf::plugin::{Grants, Host, HostOptions, Output, Preopen};
    if args.detach {
        anyhow::bail!("--invoke runs in the foreground: it cannot be used with -d");
    }
    let mut req = args.request(false)?;
    if let Err(e) = req
        .validate()
        .and_then(|()| lifecycle::create::resolve_volumes(ctx, &mut req.options, true))
    {
        return Ok(lifecycle_failure(e));
    }
    let opts = req.options;
    if !matches!(opts.network, Network::None | Network::Host) || !opts.ports.is_empty() {
        anyhow::bail!(
            "--invoke calls an export in this process: --network none or host only, no -p"
        );
    }
    let (name, call_args) =
        wharf::plugin::parse_invocation(expr, args.command()).map_err(anyhow::Error::msg)?;
    let grants = Grants {
        dirs: opts
            .volumes
            .iter()
            .map(|v| Preopen {
                host: v.host.clone(),
                guest: v.container.clone(),
                read_only: v.read_only,
            })
            .collect(),
        env: opts.env.clone(),
        args: vec![args.image().to_owned()],
        stdout: Output::Inherit,
        stderr: Output::Inherit,
        network: if opts.network == Network::Host {
            vec!["0.0.0.0/0".parse()?, "::/0".parse()?]
        } else {
            Vec::new()
        },
        dns: opts.network == Network::Host,
        memory: opts.limits.memory,
        fuel: opts.limits.fuel,
        timeout: opts.limits.timeout,
    };
    let host = Host::open(
        &ctx.roots,
        HostOptions {
            pooling: false,
            fuel: opts.limits.fuel.is_some(),
        },
    )?;
    let plugin = match host.load(args.image(), grants) {
        Ok(p) => p,
        Err(e) => return Ok(fail(EXIT_WHARF_FAILED, e)),
    };
    match plugin.invoke(&name, &call_args) {
        Ok(results) => {
            for r in results {
                outln!("{r}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(wharf::plugin::PluginError::Guest { code, message }) => Ok(fail(code, message)),
        Err(e @ wharf::plugin::PluginError::MissingExport { .. }) => Ok(fail(127, e)),
        Err(e) => Ok(fail(EXIT_WHARF_FAILED, e)),
    }
}

/// `wharf run` where containers are not recorded (Windows for now), or `--print-spec`.
fn run_unrecorded(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    let mut req = args.request(false)?;
    if let Err(e) = req
        .validate()
        .and_then(|()| lifecycle::create::resolve_volumes(ctx, &mut req.options, !args.print_spec))
    {
        return Ok(lifecycle_failure(e));
    }
    let store = ctx.store()?;
    if !pull_if_needed(ctx, &req, &args.pull, &store)? {
        return Ok(ExitCode::from(EXIT_WHARF_FAILED));
    }
    let prepared = match run::prepare(&store, args.image(), &req.options, args.platform.as_ref()) {
        Ok(p) => p,
        Err(e) => return Ok(lifecycle_failure(e.into())),
    };
    if args.explain {
        explain(&prepared.name, &prepared.decision);
    }
    if args.print_spec {
        outln!("{}", serde_json::to_string_pretty(&prepared.spec)?);
        return Ok(ExitCode::SUCCESS);
    }
    let exit =
        lifecycle::supervise::run_unrecorded(ctx, &prepared, &req.options, args.compile_timeout);
    Ok(report(&exit))
}

pub fn explain(name: &str, d: &Decision) {
    eprintln!("wharf: {name}: runs as {} ({})", d.kind, d.reason);
    for s in &d.signals {
        eprintln!("wharf:   {s}");
    }
}
