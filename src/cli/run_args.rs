//! The flags of `wharf run` and `wharf create` (the container-making half of Docker's
//! `run`), and the typed [`CreateRequest`] they say, the one compose's plans make too.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use wharf::container::{LogConfig, RestartPolicy};
use wharf::image::platform::PlatformSpec;
use wharf::lifecycle::CreateRequest;
use wharf::run::options::{
    DeviceMapping, HealthConfig, Limits, NamespaceMode, NativeOptions, Network, PortMapping,
    RunOptions, Ulimit, Volume, parse_cpus, parse_duration, parse_env, parse_env_file,
    parse_namespace_mode, parse_size, parse_swap,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run in the background: print the container's id; a monitor keeps its log.
    #[arg(short, long)]
    pub(crate) detach: bool,
    /// Name the container (else one is made up).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Remove the container when it ends.
    #[arg(long)]
    pub(crate) rm: bool,
    /// Restart policy of a detached container: no, on-failure[:N], always.
    #[arg(long, default_value = "no", value_name = "POLICY")]
    pub(crate) restart: RestartPolicy,
    /// Signal `stop` sends first (default: the image's StopSignal, else SIGTERM).
    #[arg(long, value_name = "SIGNAL")]
    pub(crate) stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) stop_timeout: Option<u64>,
    /// Log options: max-size=SIZE (default 20m), max-file=N (default 5).
    #[arg(long, value_name = "OPT=VALUE")]
    pub(crate) log_opt: Vec<String>,
    /// Replace the image's entrypoint (for wasm, `file.wasm#export` calls another export).
    #[arg(long, value_name = "CMD")]
    pub(crate) entrypoint: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass wharf's own value).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines).
    #[arg(long, value_name = "FILE")]
    pub(crate) env_file: Vec<PathBuf>,
    /// Working directory inside the container (wasm: passed as PWD).
    #[arg(short = 'w', long, value_name = "DIR")]
    pub(crate) workdir: Option<String>,
    /// Bind a host directory: HOST:CONTAINER[:ro|:rw] (read-write unless :ro).
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub(crate) volumes: Vec<Volume>,
    /// Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp] (IP defaults to 127.0.0.1;
    /// no host port: a free one).
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:CONTAINER")]
    pub(crate) publish: Vec<PortMapping>,
    /// Publish every port the image exposes on free loopback ports (a bridge network).
    #[arg(short = 'P', long)]
    pub(crate) publish_all: bool,
    /// Network: none (default; wasm sockets denied), host, or a network's name (`wharf network
    /// ls`; `bridge` is the default one).
    #[arg(long, alias = "net", default_value = "none", value_name = "NETWORK")]
    pub(crate) network: Network,
    /// Another name for the container on its --network.
    #[arg(long, alias = "net-alias", value_name = "NAME")]
    pub(crate) network_alias: Vec<String>,
    /// The container's IPv4 address on its --network.
    #[arg(long, value_name = "IP")]
    pub(crate) ip: Option<std::net::Ipv4Addr>,
    /// Memory limit (e.g. 64m): native: the cgroup's; wasm: linear memories and tables.
    #[arg(short = 'm', long, value_parser = parse_size, value_name = "BYTES")]
    pub(crate) memory: Option<u64>,
    /// Wall-clock limit (e.g. 10s, 500ms): the guest is stopped with exit code 137.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) timeout: Option<Duration>,
    /// wasm fuel budget (roughly, instructions): exhausted → exit code 152.
    #[arg(long, value_name = "UNITS")]
    pub(crate) fuel: Option<u64>,
    /// Longest a wasm module may take to compile (default: 2 minutes, and 3 s more per MiB of
    /// module).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) compile_timeout: Option<Duration>,
    /// Keep stdin open and connect it.
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Allocate a terminal (wasm: guest output passes through unsanitised).
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Run as this user: name, uid, name:group or uid:gid (native).
    #[arg(short = 'u', long, value_name = "USER")]
    pub(crate) user: Option<String>,
    /// Container hostname (native).
    #[arg(long, value_name = "NAME")]
    pub(crate) hostname: Option<String>,
    /// Mount the root filesystem read-only (native).
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Add a capability (native; ALL for every one).
    #[arg(long, value_name = "CAP")]
    pub(crate) cap_add: Vec<String>,
    /// Drop a capability (native; ALL for every one).
    #[arg(long, value_name = "CAP")]
    pub(crate) cap_drop: Vec<String>,
    /// Every capability, no seccomp, no masked paths: the container can do what root on the
    /// host can (native).
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Security options: seccomp=unconfined (native).
    #[arg(long, value_name = "OPT")]
    pub(crate) security_opt: Vec<String>,
    /// Most processes the container may have (native, cgroup pids.max).
    #[arg(long, value_name = "N")]
    pub(crate) pids_limit: Option<i64>,
    /// CPU limit in cores, e.g. 0.5 (native, cgroup CPU quota).
    #[arg(long, value_parser = parse_cpus, value_name = "CORES")]
    pub(crate) cpus: Option<f64>,
    /// Mount a tmpfs at PATH, with mount options after a colon (`/run:size=16m,mode=755`;
    /// default rw,nosuid,nodev,noexec,size=64m) (native).
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    pub(crate) tmpfs: Vec<String>,
    /// A mount, Docker's syntax: type=bind|volume|tmpfs,source=…,target=…[,readonly]
    /// [,tmpfs-size=…][,tmpfs-mode=…].
    #[arg(long, value_name = "SPEC")]
    pub(crate) mount: Vec<String>,
    /// Size of /dev/shm, e.g. 256m (native; default 64m).
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    pub(crate) shm_size: Option<u64>,
    /// A namespaced kernel parameter KEY=VALUE (net.*, kernel.shm*, kernel.msg*, kernel.sem,
    /// fs.mqueue.*; native).
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) sysctl: Vec<String>,
    /// Another supplementary group for the process (name or number; native).
    #[arg(long, value_name = "GROUP")]
    pub(crate) group_add: Vec<String>,
    /// CPUs the container may run on, e.g. 0-1,3 (native).
    #[arg(long, value_name = "CPUS")]
    pub(crate) cpuset_cpus: Option<String>,
    /// Memory nodes the container may use, e.g. 0 (native).
    #[arg(long, value_name = "NODES")]
    pub(crate) cpuset_mems: Option<String>,
    /// Memory plus swap, e.g. 128m; -1: unlimited swap (native; needs --memory).
    #[arg(long, value_parser = parse_swap, value_name = "BYTES", allow_hyphen_values = true)]
    pub(crate) memory_swap: Option<i64>,
    /// Memory soft limit, e.g. 32m (native).
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    pub(crate) memory_reservation: Option<u64>,
    /// Another /etc/hosts entry NAME:IP (native).
    #[arg(long, value_name = "NAME:IP")]
    pub(crate) add_host: Vec<String>,
    /// A name server for /etc/resolv.conf, replacing the default ones (native).
    #[arg(long, value_name = "IP")]
    pub(crate) dns: Vec<std::net::IpAddr>,
    /// A search domain for /etc/resolv.conf (native).
    #[arg(long, value_name = "DOMAIN")]
    pub(crate) dns_search: Vec<String>,
    /// A resolver option for /etc/resolv.conf, e.g. ndots:2 (native).
    #[arg(long, alias = "dns-opt", value_name = "OPTION")]
    pub(crate) dns_option: Vec<String>,
    /// IPC namespace: private (default), host, or container:NAME (another running
    /// container's, joined at each start) (native).
    #[arg(long, value_parser = |s: &str| parse_namespace_mode("ipc", s), value_name = "MODE")]
    pub(crate) ipc: Option<NamespaceMode>,
    /// PID namespace: private (default), host, or container:NAME (native).
    #[arg(long, value_parser = |s: &str| parse_namespace_mode("pid", s), value_name = "MODE")]
    pub(crate) pid: Option<NamespaceMode>,
    /// User namespace: host (the default, as Docker without userns-remap).
    #[arg(long, value_name = "MODE")]
    pub(crate) userns: Option<String>,
    /// Run a small init as pid 1 that reaps zombies and forwards signals (native).
    #[arg(long)]
    pub(crate) init: bool,
    /// Resource limit NAME=SOFT[:HARD], e.g. nofile=1024:2048 (native).
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub(crate) ulimit: Vec<Ulimit>,
    /// A host device in the container: HOST[:CONTAINER[:PERMISSIONS]], PERMISSIONS of rwm
    /// (native).
    #[arg(long, value_name = "HOST[:CONTAINER[:PERMS]]")]
    pub(crate) device: Vec<DeviceMapping>,
    /// Health check run inside the container by `sh -c` (a wasm container: a command naming
    /// an http:// URL, which is fetched), by its monitor (-d).
    #[arg(long, value_name = "COMMAND")]
    pub(crate) health_cmd: Option<String>,
    /// Health check as a JSON list, Docker's form: `["CMD", "/healthz"]` runs the program
    /// itself (no shell), `["CMD-SHELL", "..."]` through `sh -c` (compose uses this).
    #[arg(long, value_name = "JSON", conflicts_with = "health_cmd")]
    pub(crate) health_test: Option<String>,
    /// Time between health checks (default 30s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) health_interval: Option<Duration>,
    /// Longest a health check may run (default 30s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) health_timeout: Option<Duration>,
    /// Failures in a row that make it unhealthy (default 3).
    #[arg(long, value_name = "N")]
    pub(crate) health_retries: Option<u32>,
    /// Failures before this much time has passed do not count (default 0s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) health_start_period: Option<Duration>,
    /// A label KEY=VALUE (`ps -f label=KEY[=VALUE]` finds it).
    #[arg(short = 'l', long, value_name = "KEY=VALUE")]
    pub(crate) label: Vec<String>,
    /// Call one export of a wasm module or component and print its results, as `wasmtime
    /// run --invoke`: `'name(arg, ...)'` (numbers, bools, 'c', "strings"), or `name` with the
    /// arguments after the image.
    #[arg(long, value_name = "EXPR")]
    pub(crate) invoke: Option<String>,
    /// Print how wharf decided to run the image, and why, before running it.
    #[arg(long)]
    pub(crate) explain: bool,
    /// Print the OCI runtime spec (config.json) wharf would run, and exit.
    #[arg(long)]
    pub(crate) print_spec: bool,
    /// Platform of a multi-platform image.
    #[arg(long)]
    pub(crate) platform: Option<PlatformSpec>,
    /// Pull the image first: missing (default), always, never.
    #[arg(long, default_value = "missing", value_parser = ["missing", "always", "never"])]
    pub(crate) pull: String,
    /// Which images the pull lets in (containers-policy.json), as Podman's `run` takes it.
    #[command(flatten)]
    pub(crate) trust: super::pull::TrustArgs,
    /// The image (or a .wasm/.wat file), then the command and its arguments (they replace
    /// the image's cmd). wharf's options end at IMAGE: what follows goes to the program, as
    /// Docker's do.
    #[arg(
        value_name = "IMAGE",
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    pub(crate) argv: Vec<String>,
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
            log: LogConfig::from_options(&self.log_opt).map_err(anyhow::Error::msg)?,
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
        };
        match self.userns.as_deref() {
            None | Some("" | "host") => {}
            Some(other) => anyhow::bail!(
                "--userns {other}: wharf runs containers as root in the host's user namespace (Docker's `host`; it offers no other mode without a daemon-wide userns-remap): remapped users need image layers owned by the mapped ids, which wharf does not make (wharf-runtime runs bundles with linux.uidMappings)"
            ),
        }
        let mut mount_volumes = Vec::new();
        let mut tmpfs = self.tmpfs.clone();
        for m in &self.mount {
            match parse_mount(m)? {
                Mounted::Volume(v) => mount_volumes.push(v),
                Mounted::Tmpfs(t) => tmpfs.push(t),
            }
        }
        let mut opts = RunOptions {
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
                .chain(&mount_volumes)
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
            names: wharf::run::options::NameOptions {
                extra_hosts: self
                    .add_host
                    .iter()
                    .map(|h| wharf::run::options::NameOptions::parse_host(h))
                    .collect::<Result<_, _>>()
                    .map_err(anyhow::Error::msg)?,
                dns: self.dns.clone(),
                dns_search: self.dns_search.clone(),
                dns_options: self.dns_option.clone(),
            },
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
                tmpfs,
                init: self.init,
                ulimits: self.ulimit.clone(),
                devices: self.device.clone(),
                shm_size: self.shm_size,
                sysctls: self
                    .sysctl
                    .iter()
                    .map(|s| {
                        s.split_once('=')
                            .filter(|(k, _)| !k.is_empty())
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .ok_or_else(|| {
                                anyhow::anyhow!("invalid --sysctl {s:?}: expected KEY=VALUE")
                            })
                    })
                    .collect::<anyhow::Result<_>>()?,
                group_add: self.group_add.clone(),
                cpuset_cpus: self.cpuset_cpus.clone(),
                cpuset_mems: self.cpuset_mems.clone(),
                memory_swap: self.memory_swap,
                memory_reservation: self.memory_reservation,
                ..NativeOptions::default()
            },
        };
        if let Some(mode) = &self.ipc {
            opts.native.set_namespace_mode("ipc", mode.clone());
        }
        if let Some(mode) = &self.pid {
            opts.native.set_namespace_mode("pid", mode.clone());
        }
        Ok(opts)
    }
}

/// What a `--mount` adds: a volume or bind mount (as `-v`), or a tmpfs (as `--tmpfs`).
enum Mounted {
    Volume(Volume),
    Tmpfs(String),
}

/// Docker's `--mount` syntax: comma-separated `key=value`s (`type`, `source`/`src`,
/// `target`/`destination`/`dst`, `readonly`/`ro`, `tmpfs-size`, `tmpfs-mode`).
fn parse_mount(s: &str) -> anyhow::Result<Mounted> {
    let bad = |why: &str| anyhow::anyhow!("invalid --mount {s:?}: {why}");
    let (mut typ, mut source, mut target, mut ro) = ("volume", None, None, false);
    let (mut size, mut mode) = (None, None);
    for field in s.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => typ = v,
            "source" | "src" => source = Some(v),
            "target" | "destination" | "dst" => target = Some(v),
            "readonly" | "ro" => ro = matches!(v, "" | "true" | "1"),
            "tmpfs-size" => size = Some(v),
            "tmpfs-mode" => mode = Some(v),
            "bind-propagation" | "consistency" | "volume-nocopy" => {}
            other => return Err(bad(&format!("unknown key {other:?}"))),
        }
    }
    let target = target.ok_or_else(|| bad("it needs target=PATH"))?;
    if !target.starts_with('/') {
        return Err(bad("the target must be an absolute path"));
    }
    let ro = if ro { ":ro" } else { "" };
    match typ {
        "bind" => {
            let src = source.ok_or_else(|| bad("a bind mount needs source=PATH"))?;
            if !std::path::Path::new(src).is_absolute() {
                return Err(bad("a bind mount's source must be an absolute path"));
            }
            if !std::path::Path::new(src).exists() {
                return Err(bad(&format!("bind source path does not exist: {src}")));
            }
            Ok(Mounted::Volume(format!("{src}:{target}{ro}").parse()?))
        }
        "volume" => {
            let name = source.ok_or_else(|| {
                bad("a volume mount needs source=NAME (wharf makes no anonymous volumes)")
            })?;
            if !wharf::run::options::is_volume_name(name) {
                return Err(bad(&format!("{name:?} is not a volume name")));
            }
            Ok(Mounted::Volume(format!("{name}:{target}{ro}").parse()?))
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(bad("a tmpfs mount takes no source"));
            }
            let mut options = Vec::new();
            if let Some(sz) = size {
                options.push(format!("size={sz}"));
            }
            if let Some(m) = mode {
                options.push(format!("mode={m}"));
            }
            if !ro.is_empty() {
                options.push("ro".into());
            }
            Ok(Mounted::Tmpfs(if options.is_empty() {
                target.to_string()
            } else {
                format!("{target}:{}", options.join(","))
            }))
        }
        other => Err(bad(&format!(
            "type {other:?}: wharf mounts bind, volume and tmpfs"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_read_as_dockers() {
        let Mounted::Volume(v) = parse_mount("type=volume,source=data,target=/d,readonly").unwrap()
        else {
            panic!("a volume");
        };
        assert_eq!(
            (v.named.as_deref(), v.container.as_str(), v.read_only),
            (Some("data"), "/d", true)
        );
        let Mounted::Volume(v) = parse_mount("type=bind,src=/tmp,dst=/t").unwrap() else {
            panic!("a bind");
        };
        assert_eq!(
            (v.host.as_path(), v.read_only),
            (std::path::Path::new("/tmp"), false)
        );
        let Mounted::Tmpfs(t) =
            parse_mount("type=tmpfs,target=/run,tmpfs-size=16m,tmpfs-mode=1770").unwrap()
        else {
            panic!("a tmpfs");
        };
        assert_eq!(t, "/run:size=16m,mode=1770");
        for bad in [
            "type=bind,source=rel,target=/x",
            "type=volume,target=/x",
            "type=npipe,target=/x",
            "type=tmpfs,target=rel",
            "type=bind,source=/nonexistent-wharf,target=/x",
            "target=/x,colour=red",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_swap("-1").unwrap(), -1);
        assert_eq!(parse_swap("128m").unwrap(), 128 << 20);
    }
}
