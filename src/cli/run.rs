//! `wharf run [OPTIONS] IMAGE [COMMAND] [ARG...]`: run an image (or a `.wasm`/`.wat` file)
//! in the foreground, with Docker's flags and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use wharf::backend::wasm::{self, StdioOptions, WasmRun};
use wharf::container::{self, Containers, LogConfig, Record, RestartPolicy, State, Status};
use wharf::dispatch::{Decision, Kind};
use wharf::image::platform::PlatformSpec;
use wharf::image::store::InUse;
use wharf::run::options::{
    HealthConfig, Limits, NativeOptions, Network, PortMapping, RunOptions, Ulimit, Volume,
    parse_cpus, parse_duration, parse_env, parse_env_file, parse_size,
};
use wharf::run::{self, Prepared, RunError};

use super::{Context_, EXIT_WHARF_FAILED};

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

    fn options(&self, ctx: &Context_) -> anyhow::Result<RunOptions> {
        let mut env = Vec::new();
        for f in &self.env_file {
            let text = wharf::sys::read_text_file(f, ENV_FILE_MAX)
                .with_context(|| format!("reading --env-file {}", f.display()))?;
            env.extend(parse_env_file(&text)?);
        }
        for e in &self.env {
            env.extend(parse_env(e)?);
        }
        if let Some(u) = &self.user {
            wharf::run::options::validate_user(u).map_err(|e| anyhow::anyhow!("-u: {e}"))?;
        }
        if let Some(bad) = self
            .network_alias
            .iter()
            .chain(&self.hostname)
            .find(|a| !wharf::network::is_dns_name(a))
        {
            anyhow::bail!("invalid name {bad:?}: letters, digits, '-', '_' and '.' only");
        }
        if self.network.named().is_none() {
            if !self.network_alias.is_empty() || self.ip.is_some() || self.publish_all {
                anyhow::bail!(
                    "--network-alias, --ip and -P need a bridge network (--network NAME)"
                );
            }
        } else if let Some(why) = wharf::network::unsupported() {
            anyhow::bail!("--network {}: {why}", self.network);
        }
        Ok(RunOptions {
            entrypoint: self.entrypoint.clone(),
            args: self.command().to_vec(),
            env,
            workdir: self.workdir.clone(),
            // Relative host paths mean the caller's directory, which the container's helpers
            // (and a native child after it changes directory) do not share: make them absolute.
            // A named volume is made on first use (not by --print-spec, which only shows).
            volumes: self
                .volumes
                .iter()
                .map(|v| {
                    let volumes = wharf::volume::Volumes::new(&ctx.roots);
                    let host = match &v.named {
                        Some(name) if self.print_spec => volumes.mountpoint(name)?,
                        Some(name) => volumes.create(name, &Default::default())?.mountpoint,
                        None if v.host.has_root() => v.host.clone(),
                        None => std::path::absolute(&v.host).unwrap_or_else(|_| v.host.clone()),
                    };
                    Ok(wharf::run::options::Volume { host, ..v.clone() })
                })
                .collect::<anyhow::Result<_>>()?,
            ports: self.publish.clone(),
            network: self.network.clone(),
            publish_all: self.publish_all,
            network_aliases: self.network_alias.clone(),
            ip: self.ip,
            connected: Vec::new(),
            labels: super::labels(&self.label),
            health: match (&self.health_cmd, &self.health_test) {
                (Some(cmd), _) => Some(vec!["CMD-SHELL".to_string(), cmd.to_string()]),
                (None, Some(json)) => {
                    let test: Vec<String> = serde_json::from_str(json).map_err(|_| {
                        anyhow::anyhow!(
                            "invalid --health-test {json:?}: expected a JSON list such as [\"CMD\", \"/healthz\"]"
                        )
                    })?;
                    if !matches!(
                        test.first().map(String::as_str),
                        Some("CMD" | "CMD-SHELL" | "NONE")
                    ) {
                        anyhow::bail!(
                            "invalid --health-test {json:?}: it starts with CMD, CMD-SHELL or NONE"
                        );
                    }
                    Some(test)
                }
                (None, None) => None,
            }
            .map(|test| {
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
}

impl Args {
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

/// The exit code for a failed preparation.
fn prepare_failure(e: RunError) -> (u8, String) {
    let code = match e {
        RunError::EntrypointNotFound { .. } => 127,
        RunError::NotWasm { .. } | RunError::Package(_) => 126,
        _ => EXIT_WHARF_FAILED,
    };
    (code, format!("{:#}", anyhow::Error::from(e)))
}

/// Pull `image` first if `--pull` asks for it (in a child: pulling starts threads, and a
/// native container must be cloned from a single-threaded wharf).
fn pull_if_needed(
    ctx: &Context_,
    args: &Args,
    store: &wharf::image::Store,
) -> anyhow::Result<bool> {
    let is_file =
        std::path::Path::new(args.image()).is_file() || wharf::run::names_a_file(args.image());
    let missing = !is_file
        && matches!(
            store.resolve(args.image()),
            Err(wharf::image::StoreError::NotFound(_))
        );
    if is_file || !(args.pull == "always" || (args.pull == "missing" && missing)) {
        return Ok(true);
    }
    pull_in_child(ctx, args.image(), args.platform.as_ref())
}

/// `wharf pull -q IMAGE` in a child (pulling starts threads; the caller may clone a native
/// container later, which needs a single-threaded wharf): whether it succeeded.
pub fn pull_in_child(
    ctx: &Context_,
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

/// Pull, prepare and record a new container (status created); `Err` carries the exit code.
pub fn create(
    ctx: &Context_,
    args: &Args,
    detached: bool,
) -> anyhow::Result<Result<(Record, Prepared), ExitCode>> {
    if args.restart != RestartPolicy::No && !detached {
        anyhow::bail!("--restart needs -d: a detached container's monitor keeps the policy");
    }
    if args.restart != RestartPolicy::No && args.rm {
        anyhow::bail!("--restart and --rm cannot be used together");
    }
    let mut opts = args.options(ctx)?;
    let log = args.log_config()?;
    if let Some(sig) = &args.stop_signal
        && wharf::sys::parse_signal(sig).is_none()
    {
        anyhow::bail!("invalid --stop-signal {sig:?}: expected a signal name or number");
    }
    if let Some(net) = opts.network.named() {
        if !wharf::sys::is_root() {
            anyhow::bail!(
                "--network {net}: bridge networks need root (netavark makes bridges and firewall rules); a rootless container can use --network pasta"
            );
        }
        // Recorded by name (an id prefix given here may name another network later).
        let net = wharf::network::Networks::new(&ctx.roots).get(net)?;
        opts.network = Network::Named(net.name);
    }
    let store = ctx.store()?;
    if !pull_if_needed(ctx, args, &store)? {
        return Ok(Err(ExitCode::from(EXIT_WHARF_FAILED)));
    }
    let prepared = match run::prepare(&store, args.image(), &opts, args.platform.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            let (code, message) = prepare_failure(e);
            return Ok(Err(fail(code, message)));
        }
    };
    if args.explain {
        explain(&prepared.name, &prepared.decision);
    }
    // No health check given: the image's own (Docker's HEALTHCHECK), if it has one.
    if opts.health.is_none()
        && let Some(h) = prepared
            .spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(wharf::bundle::ANNOTATION_IMAGE_HEALTHCHECK))
            .and_then(|j| serde_json::from_str(j).ok())
            .and_then(|v| HealthConfig::from_image(&v))
    {
        opts.health = Some(h);
    }
    if prepared.decision.kind == Kind::Wasm
        && let Some(h) = &opts.health
        && let Err(why) = wharf::container::health::check_for_wasm(h)
    {
        return Ok(Err(fail(EXIT_WHARF_FAILED, why)));
    }
    let target = match &prepared.image_digest {
        Some(d) => d.clone(),
        None => std::fs::canonicalize(args.image())
            .with_context(|| format!("resolving {}", args.image()))?
            .display()
            .to_string(),
    };
    let record = Record {
        id: container::new_id(),
        name: args.name.clone().unwrap_or_default(),
        created: chrono::Utc::now(),
        image: args.image().to_owned(),
        target,
        image_digest: prepared.image_digest.clone(),
        platform: args.platform.as_ref().map(|p| p.to_string()),
        kind: prepared.decision.kind,
        reason: prepared.decision.reason.clone(),
        signals: prepared
            .decision
            .signals
            .iter()
            .map(|s| s.to_string())
            .collect(),
        command: prepared
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default(),
        options: opts,
        restart: args.restart,
        auto_remove: args.rm,
        detached,
        log,
        compile_timeout_ms: args.compile_timeout.map(|d| d.as_millis() as u64),
        stop_signal: prepared
            .spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(wharf::bundle::ANNOTATION_STOP_SIGNAL).cloned()),
        stop_timeout: args.stop_timeout,
        // A foreground container runs in this very process from the start.
        state: if detached {
            State::default()
        } else {
            running_state(prepared.decision.kind)
        },
    };
    let pins = InUse {
        image: prepared.image_digest.clone(),
        diff_ids: prepared.layers.iter().map(|l| l.diff_id.clone()).collect(),
    };
    let record = Containers::new(&ctx.roots).create(record, &pins)?;
    Ok(Ok((record, prepared)))
}

pub fn run(ctx: &Context_, args: Args) -> anyhow::Result<ExitCode> {
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
    let containers = Containers::new(&ctx.roots);
    if args.detach {
        drop(prepared);
        return Ok(
            match super::start::start_one(ctx, &containers, &record.id)? {
                None => {
                    outln!("{}", record.id);
                    ExitCode::SUCCESS
                }
                Some((code, message)) => fail(code, message),
            },
        );
    }
    let id = record.id.clone();
    Ok(supervise(
        ctx,
        &containers,
        &id,
        Some((record, prepared)),
        None,
        args.rm,
    ))
}

/// Run container `id` in this process (the foreground `wharf run`, or the helper a monitor
/// starts): mark it running, run it, record how it ended. `ready` is told once it runs.
///
/// A foreground run passes its freshly created record (already marked running by this
/// process) with what it prepared, and `remove` for `--rm`: fewer record writes.
// Off Linux the network hold is empty: dropping it is only for the order on Linux.
#[cfg_attr(not(target_os = "linux"), allow(clippy::drop_non_drop))]
pub fn supervise(
    ctx: &Context_,
    containers: &Containers,
    id: &str,
    fresh: Option<(Record, Prepared)>,
    ready: Option<std::fs::File>,
    remove: bool,
) -> ExitCode {
    let ready = std::cell::RefCell::new(ready);
    let signal_ready = || {
        if let Some(mut f) = ready.borrow_mut().take() {
            let _ = std::io::Write::write_all(&mut f, b"r");
        }
    };
    // Under a monitor, the monitor marks the end once it has logged all the output, so a
    // `wait` that returns sees the whole log.
    let under_monitor = ready.borrow().is_some();
    let dir = containers.dir_of(id);
    let end = |code: u8, message: Option<String>| {
        // The network goes first, whatever way the run ended.
        #[cfg(target_os = "linux")]
        if let Err(e) = wharf::network::detach(&ctx.roots, &dir) {
            eprintln!("wharf: taking down the container's network: {e}");
        }
        if remove {
            // `--rm`: the record goes now; nothing needs to know how it ended.
            if let Ok(l) = containers.lock(id) {
                let _ = containers.remove(l);
            }
        } else if let Ok(mut l) = containers.lock(id) {
            let st = &mut l.record.state;
            if !under_monitor {
                st.status = Status::Exited;
            }
            st.exit_code = Some(i32::from(code));
            st.oom_killed = message.as_deref() == Some(wharf::backend::OOM_KILLED);
            st.error = message.clone();
            st.pid = 0;
            st.pid_start_time = None;
            st.finished_at = Some(chrono::Utc::now());
            let _ = l.save();
        }
        if let Some(m) = &message {
            eprintln!("wharf: {m}");
        }
        ExitCode::from(code)
    };
    let (record, mut prepared) = match fresh {
        Some((r, p)) => (r, p),
        None => {
            let record = match containers.lock(id) {
                Ok(l) => l.record,
                Err(e) => return fail(EXIT_WHARF_FAILED, e),
            };
            let platform = record.platform.as_deref().and_then(|p| p.parse().ok());
            let store = match ctx.store() {
                Ok(s) => s,
                Err(e) => return end(EXIT_WHARF_FAILED, Some(format!("{e:#}"))),
            };
            match run::prepare(&store, &record.target, &record.options, platform.as_ref()) {
                Ok(mut p) => {
                    // Messages name the image as the user did, not by its digest.
                    p.name = record.image.clone();
                    if let Err(e) = mark_running(containers, id, p.decision.kind) {
                        return end(EXIT_WHARF_FAILED, Some(e.to_string()));
                    }
                    (record, p)
                }
                Err(e) => {
                    let (code, message) = prepare_failure(e);
                    return end(code, Some(message));
                }
            }
        }
    };
    #[cfg(target_os = "linux")]
    if prepared.decision.kind == Kind::Native
        && let Err(e) = continue_sealed(ctx, id, remove, ready.borrow().as_ref())
    {
        return end(EXIT_WHARF_FAILED, Some(e));
    }
    let opts = &record.options;
    let (net, serve_ports) = match network_up(ctx, &record, &dir, &mut prepared) {
        Ok(n) => n,
        Err(e) => return end(EXIT_WHARF_FAILED, Some(e)),
    };
    match prepared.decision.kind {
        Kind::Wasm => {
            let timeout = record.compile_timeout_ms.map(Duration::from_millis);
            let opts = RunOptions {
                ports: serve_ports,
                ..opts.clone()
            };
            let (code, message) = run_wasm(ctx, &prepared, &opts, timeout, &signal_ready);
            drop(net);
            end(code, message)
        }
        Kind::Native => {
            // `exec` reads the runtime spec of a running native container.
            if let Err(e) = std::fs::write(
                dir.join("config.json"),
                serde_json::to_vec(&prepared.spec).unwrap_or_default(),
            ) {
                return end(
                    EXIT_WHARF_FAILED,
                    Some(format!("writing the runtime spec: {e}")),
                );
            }
            let started = |pid: i32| {
                if let Ok(mut l) = containers.lock(id) {
                    l.record.state.pid = pid;
                    l.record.state.pid_start_time = wharf::sys::process_start_time(pid);
                    let _ = l.save();
                }
                signal_ready();
            };
            let (code, message) = run_native(ctx, id, &dir, &prepared, opts.interactive, &started);
            drop(net);
            end(code, message)
        }
    }
}

/// Before a native container is cloned from this process: go on from a sealed wharf (see
/// `backend::native::seal`), as `container-run ID` (this process keeps its pid, stdio and
/// readiness pipe, so to the monitor, the record and the user nothing changes). Returns at
/// once when this process already runs sealed (the re-executed one); otherwise only if it
/// could not be done.
#[cfg(target_os = "linux")]
fn continue_sealed(
    ctx: &Context_,
    id: &str,
    remove: bool,
    ready: Option<&std::fs::File>,
) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    if wharf::backend::native::seal::is_protected() {
        return Ok(());
    }
    if let Some(r) = ready {
        // SAFETY: F_SETFD on a descriptor this process owns; only its close-on-exec flag
        // changes, so the re-executed process inherits it (under the same number, which
        // the environment still names).
        unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFD, 0) };
    }
    let mut args: Vec<std::ffi::OsString> = vec![
        "--root".into(),
        ctx.roots.data().into(),
        "--log-level".into(),
        ctx.log_level.clone().into(),
        "container-run".into(),
        id.into(),
    ];
    if remove {
        args.push("--rm".into());
    }
    wharf::backend::native::seal::ensure_sealed_as(args)
        .map_err(|e| format!("cannot run from a sealed copy of wharf: {e}"))
}

/// What a run holds on its network: the host ports it published.
#[cfg(target_os = "linux")]
type NetworkHold = Option<wharf::network::HeldPorts>;
#[cfg(not(target_os = "linux"))]
type NetworkHold = Option<NoHold>;

/// Nothing is held off Linux (bridge networks are refused there).
#[cfg(not(target_os = "linux"))]
pub struct NoHold;

/// Set up container `record`'s bridge network, if it asked for one: the spec then names
/// the network's namespace, and a wasm supervisor (this process) has joined it. Returns
/// what to hold while it runs and the ports a wasm server listens on (inside the
/// container's namespace on a network; on the host otherwise).
fn network_up(
    ctx: &Context_,
    record: &Record,
    dir: &std::path::Path,
    prepared: &mut Prepared,
) -> Result<(NetworkHold, Vec<PortMapping>), String> {
    let opts = &record.options;
    if opts.network == Network::Pasta && prepared.decision.kind == Kind::Wasm {
        return Err(
            "--network pasta is for native containers: a wasm container uses the host's network with --network host (rootless too), or a bridge network".into(),
        );
    }
    let Some(network) = opts.network.named() else {
        return Ok((None, opts.ports.clone()));
    };
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (ctx, dir, prepared, network);
        Err(wharf::network::unsupported()
            .unwrap_or_default()
            .to_string())
    }
    #[cfg(target_os = "linux")]
    {
        use wharf::run::options::Protocol;
        let mut ports = opts.ports.clone();
        let wasm = prepared.decision.kind == Kind::Wasm;
        if opts.publish_all {
            let exposed = prepared
                .spec
                .annotations()
                .as_ref()
                .and_then(|a| a.get(wharf::bundle::ANNOTATION_EXPOSED_PORTS).cloned())
                .unwrap_or_else(|| {
                    if wasm {
                        "8080/tcp".into()
                    } else {
                        String::new()
                    }
                });
            for e in exposed.split(',').filter(|e| !e.is_empty()) {
                let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
                let Ok(container_port) = port.parse::<u16>() else {
                    continue;
                };
                ports.push(PortMapping {
                    host_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                    host_port: 0,
                    container_port,
                    protocol: if proto == "udp" {
                        Protocol::Udp
                    } else {
                        Protocol::Tcp
                    },
                });
            }
        }
        let hostname = prepared
            .spec
            .hostname()
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| record.id.chars().take(12).collect());
        let req = wharf::network::Request {
            id: &record.id,
            name: &record.name,
            hostname: &hostname,
            network,
            aliases: &opts.network_aliases,
            ip: opts.ip,
            connected: &opts.connected,
            ports: &ports,
        };
        let (att, held) =
            wharf::network::attach(&ctx.roots, dir, &req).map_err(|e| e.to_string())?;
        wharf::bundle::set_network_namespace(&mut prepared.spec, &att.netns);
        // A wasm server listens inside the namespace, on the container ports (8080 if
        // none is published); netavark forwards the host's.
        let mut serve: Vec<PortMapping> = Vec::new();
        for p in &att.ports {
            let inner = PortMapping {
                host_ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
                host_port: p.container_port,
                ..*p
            };
            if p.protocol == Protocol::Tcp && !serve.contains(&inner) {
                serve.push(inner);
            }
        }
        if serve.is_empty() {
            serve.push("0.0.0.0:8080:8080".parse().expect("a valid mapping"));
        }
        if wasm {
            wharf::network::enter(&att, dir).map_err(|e| e.to_string())?;
        }
        Ok((Some(held), serve))
    }
}

/// `run --invoke`: one export called through the plugin API (the same loading, cache,
/// grants and limits a plugin host has), its results printed one a line.
fn invoke(ctx: &Context_, args: &Args, expr: &str) -> anyhow::Result<ExitCode> {
    use wharf::plugin::{Grants, Host, HostOptions, Output, Preopen};
    if args.detach {
        anyhow::bail!("--invoke runs in the foreground: it cannot be used with -d");
    }
    let opts = args.options(ctx)?;
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

/// The state of a container that starts running in this process.
fn running_state(kind: Kind) -> State {
    let me = container::Proc::current();
    State {
        status: Status::Running,
        supervisor: me,
        pid: match kind {
            Kind::Wasm => std::process::id() as i32,
            Kind::Native => 0,
        },
        pid_start_time: match kind {
            Kind::Wasm => me.map(|p| p.start_time),
            Kind::Native => None,
        },
        started_at: Some(chrono::Utc::now()),
        ..State::default()
    }
}

/// Mark container `id` running in this process (keeping its monitor and restart count).
fn mark_running(
    containers: &Containers,
    id: &str,
    kind: Kind,
) -> Result<(), container::ContainerError> {
    let mut l = containers.lock(id)?;
    let st = &l.record.state;
    l.record.state = State {
        restart_count: st.restart_count,
        monitor: st.monitor,
        // A `stop` that came while it was restarting still applies.
        stop_requested: st.stop_requested,
        ..running_state(kind)
    };
    l.save()
}

/// `wharf run` where containers are not recorded (Windows for now), or `--print-spec`.
fn run_unrecorded(ctx: &Context_, args: Args) -> anyhow::Result<ExitCode> {
    let opts = args.options(ctx)?;
    let store = ctx.store()?;
    if !pull_if_needed(ctx, &args, &store)? {
        return Ok(ExitCode::from(EXIT_WHARF_FAILED));
    }
    let prepared = match run::prepare(&store, args.image(), &opts, args.platform.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            let (code, message) = prepare_failure(e);
            return Ok(fail(code, message));
        }
    };
    if args.explain {
        explain(&prepared.name, &prepared.decision);
    }
    if args.print_spec {
        outln!("{}", serde_json::to_string_pretty(&prepared.spec)?);
        return Ok(ExitCode::SUCCESS);
    }
    match prepared.decision.kind {
        Kind::Wasm => {
            let timeout = args.compile_timeout;
            let (code, message) = run_wasm(ctx, &prepared, &opts, timeout, &|| {});
            Ok(report(&wharf::backend::Exit { code, message }))
        }
        Kind::Native => Ok(fail(EXIT_WHARF_FAILED, native_unavailable(&prepared))),
    }
}

/// Run a prepared wasm container in this process: its exit code and what to say.
fn run_wasm(
    ctx: &Context_,
    p: &Prepared,
    opts: &RunOptions,
    compile_timeout: Option<Duration>,
    started: &dyn Fn(),
) -> (u8, Option<String>) {
    let module = p.wasm.as_ref().expect("a wasm decision carries a module");
    let result = wasm::run(WasmRun {
        name: &p.name,
        module,
        spec: &p.spec,
        rootfs: p.rootfs.as_deref(),
        ports: &opts.ports,
        stdio: StdioOptions {
            interactive: opts.interactive,
            tty: opts.tty,
        },
        cache_dir: ctx.roots.wasm_cache(),
        compile_timeout,
        preloaded: Vec::new(),
        started,
    });
    match result {
        Ok(exit) => (exit.code, exit.message),
        Err(e) => (e.exit_code(), Some(e.to_string())),
    }
}

#[cfg(target_os = "linux")]
fn run_native(
    ctx: &Context_,
    id: &str,
    dir: &std::path::Path,
    p: &Prepared,
    interactive: bool,
    started: &dyn Fn(i32),
) -> (u8, Option<String>) {
    use wharf::backend::native::{self, NativeRun};

    // The store was opened to prepare the run; only its layers directory is needed here.
    let layers_dir = ctx.roots.layers();
    let cache_dir = ctx.roots.seccomp_cache();
    let result = native::run(NativeRun {
        id,
        spec: &p.spec,
        layers: &p.layers,
        layers_dir: &layers_dir,
        cache_dir: Some(&cache_dir),
        state_dir: dir,
        interactive,
        tty: p
            .spec
            .process()
            .as_ref()
            .and_then(|pr| pr.terminal())
            .unwrap_or(false),
        rootless: !wharf::sys::is_root(),
        started,
    });
    match result {
        Ok(exit) => (exit.code, exit.message),
        Err(e) => (e.exit_code(), Some(e.to_string())),
    }
}

#[cfg(not(target_os = "linux"))]
fn run_native(
    _: &Context_,
    _: &str,
    _: &std::path::Path,
    p: &Prepared,
    _: bool,
    _: &dyn Fn(i32),
) -> (u8, Option<String>) {
    (EXIT_WHARF_FAILED, Some(native_unavailable(p)))
}

/// Why a native image cannot run here.
fn native_unavailable(p: &run::Prepared) -> String {
    if cfg!(target_os = "linux") {
        format!(
            "{} is a native Linux image: run it without --print-spec",
            p.name
        )
    } else {
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
