//! What a user asks of one container run, validated: the library's side of `wharf run`'s
//! flags. Shared by both backends; each says which parts it cannot honour.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A flag value that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("invalid size {0:?}: expected a number with an optional unit b, k, m or g (e.g. 64m)")]
    Size(String),
    #[error("invalid size {0:?}: larger than {MAX_SIZE} bytes (8 EiB), the largest limit there is")]
    SizeTooLarge(String),
    #[error("invalid duration {0:?}: expected e.g. 500ms, 10s, 2m or a number of seconds")]
    Duration(String),
    #[error("invalid --cpus {value}: expected a number of CPUs from 0.01 to {available}")]
    Cpus { value: String, available: usize },
    #[error(
        "invalid volume {0:?}: expected HOST:CONTAINER[:ro|:rw] with an absolute container path"
    )]
    Volume(String),
    #[error("invalid port mapping {0:?}: expected [IP:]HOST_PORT:CONTAINER_PORT[/tcp]")]
    Port(String),
    #[error("invalid environment variable {0:?}: the name must not be empty")]
    Env(String),
    #[error("invalid network {0:?}: expected none, host, pasta or a network's name")]
    Network(String),
    #[error("invalid ulimit {0:?}: expected NAME=SOFT[:HARD], e.g. nofile=1024:2048")]
    Ulimit(String),
    #[error("invalid device {0:?}: {1}")]
    Device(String, &'static str),
    #[error("invalid --{0} {1:?}: expected private, host or container:NAME")]
    NamespaceMode(&'static str, String),
}

/// How a container gets one of its namespaces (`--ipc`, `--pid`), as Docker's modes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceMode {
    /// Its own (Docker's `private`, and `shareable` for IPC).
    Private,
    /// The host's.
    Host,
    /// Another container's (by name or id): joined when this one starts.
    Container(String),
}

/// `--ipc`/`--pid MODE` (`which` names the flag): private, shareable (IPC), host, or
/// container:NAME.
pub fn parse_namespace_mode(which: &'static str, s: &str) -> Result<NamespaceMode, OptionError> {
    match s {
        "" | "private" => Ok(NamespaceMode::Private),
        "shareable" if which == "ipc" => Ok(NamespaceMode::Private),
        "host" => Ok(NamespaceMode::Host),
        _ => match s.strip_prefix("container:") {
            Some(name) if !name.is_empty() => Ok(NamespaceMode::Container(name.to_string())),
            _ => Err(OptionError::NamespaceMode(which, s.to_string())),
        },
    }
}

/// A byte count as Docker's flags spell it (`64m`, `1g`, `512k`, `1024`).
/// `--memory-swap` (compose `memswap_limit`): a size, or -1 for unlimited swap.
pub fn parse_swap(s: &str) -> Result<i64, OptionError> {
    if s == "-1" {
        return Ok(-1);
    }
    parse_size(s).map(|b| b as i64)
}

pub fn parse_size(s: &str) -> Result<u64, OptionError> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').filter(|r| !r.is_empty()).unwrap_or(&t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| OptionError::Size(s.to_string()))?;
    if !n.is_finite() || n <= 0.0 {
        return Err(OptionError::Size(s.to_string()));
    }
    // Not saturated to "unlimited": a limit the kernel cannot hold (cgroup limits are
    // signed 64-bit) is refused.
    let bytes = n * mult as f64;
    if bytes >= MAX_SIZE as f64 {
        return Err(OptionError::SizeTooLarge(s.to_string()));
    }
    Ok(bytes as u64)
}

/// The largest size a limit takes (`i64::MAX`, cgroups' own bound).
pub const MAX_SIZE: u64 = i64::MAX as u64;

/// `--cpus`: a number of CPUs, from 0.01 to the CPUs this machine has (Docker's range).
pub fn parse_cpus(s: &str) -> Result<f64, OptionError> {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let err = || OptionError::Cpus {
        value: s.to_string(),
        available,
    };
    let n: f64 = s.trim().parse().map_err(|_| err())?;
    if !n.is_finite() || n < 0.01 || n > available as f64 {
        return Err(err());
    }
    Ok(n)
}

/// A duration (`500ms`, `10s`, `2m`, `1h`, or seconds).
pub fn parse_duration(s: &str) -> Result<Duration, OptionError> {
    let t = s.trim();
    let err = || OptionError::Duration(s.to_string());
    let (num, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let n: f64 = num.parse().map_err(|_| err())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(err());
    }
    // (A duration beyond Duration's range is refused, not a panic.)
    Duration::try_from_secs_f64(n * unit).map_err(|_| err())
}

/// `-v HOST:CONTAINER[:ro|:rw]`, or `-v NAME:CONTAINER[:ro|:rw]` for a named volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// The host directory (a named volume's once it is resolved).
    pub host: PathBuf,
    pub container: String,
    pub read_only: bool,
    /// The named volume (`wharf volume ls`), if it is one.
    #[serde(default)]
    pub named: Option<String>,
}

/// Whether `name` is a named volume's name (`-v NAME:/path`) rather than a host path:
/// letters, digits, `_`, `.` and `-`, starting with a letter or digit, at most 128, no `..`.
pub fn is_volume_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !name.contains("..")
}

impl FromStr for Volume {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || OptionError::Volume(s.to_string());
        // On Windows a drive letter (`C:\data:/data`, or as a long path
        // `\\?\C:\data:/data`) has a colon of its own; elsewhere `c:/data` is volume `c`.
        let prefix = if cfg!(windows) && s.starts_with(r"\\?\") {
            4
        } else {
            0
        };
        let (host, rest) = match s.as_bytes()[prefix..] {
            [d, b':', b'\\' | b'/', ..] if cfg!(windows) && d.is_ascii_alphabetic() => {
                let i = s[prefix + 2..].find(':').ok_or_else(err)? + prefix + 2;
                (&s[..i], &s[i + 1..])
            }
            _ => s.split_once(':').ok_or_else(err)?,
        };
        let (container, mode) = match rest.rsplit_once(':') {
            Some((c, m)) if m == "ro" || m == "rw" => (c, m),
            _ => (rest, "rw"),
        };
        if host.is_empty() || !container.starts_with('/') {
            return Err(err());
        }
        let named = is_volume_name(host).then(|| host.to_string());
        Ok(Volume {
            host: if named.is_some() {
                PathBuf::new()
            } else {
                PathBuf::from(host)
            },
            named,
            container: container.to_string(),
            read_only: mode == "ro",
        })
    }
}

/// `-p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`, or `-p CONTAINER_PORT` (a free host port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: IpAddr,
    /// 0: any free port, chosen when the container starts.
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default)]
    pub protocol: Protocol,
}

/// A published port's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl FromStr for PortMapping {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || OptionError::Port(s.to_string());
        let (spec, protocol) = if let Some(p) = s.strip_suffix("/tcp") {
            (p, Protocol::Tcp)
        } else if let Some(p) = s.strip_suffix("/udp") {
            (p, Protocol::Udp)
        } else {
            (s, Protocol::Tcp)
        };
        let port = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(err);
        let Some((rest, container)) = spec.rsplit_once(':') else {
            // `-p 80`: a free host port on loopback.
            return Ok(PortMapping {
                host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                host_port: 0,
                container_port: port(spec)?,
                protocol,
            });
        };
        let container_port = port(container)?;
        let (ip, host) = match rest.rsplit_once(':') {
            Some((ip, host)) => {
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                (ip.parse::<IpAddr>().map_err(|_| err())?, host)
            }
            // Published ports listen on loopback unless an address is given.
            None => (IpAddr::V4(Ipv4Addr::LOCALHOST), rest),
        };
        let host_port = if host.is_empty() { 0 } else { port(host)? };
        Ok(PortMapping {
            host_ip: ip,
            host_port,
            container_port,
            protocol,
        })
    }
}

impl std::fmt::Display for PortMapping {
    /// As `ps` shows it: `127.0.0.1:8080->80/tcp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = match self.host_ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        write!(
            f,
            "{ip}:{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// `--network`: none, host, or a network's name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// No network access (wasm: wasi-sockets denied; native: a private namespace with `lo`).
    #[default]
    None,
    /// The host's network.
    Host,
    /// Its own namespace connected to the host's network by pasta (rootless too).
    Pasta,
    /// A bridge network (`wharf network ls`): its own namespace, an address, names.
    Named(String),
}

impl Network {
    /// The network's name, for a bridge network.
    pub fn named(&self) -> Option<&str> {
        match self {
            Network::Named(n) => Some(n),
            _ => None,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Network::None => "none",
            Network::Host => "host",
            Network::Pasta => "pasta",
            Network::Named(n) => n,
        })
    }
}

impl FromStr for Network {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Network::None),
            "host" => Ok(Network::Host),
            "pasta" => Ok(Network::Pasta),
            "" | "slirp4netns" => Err(OptionError::Network(s.to_string())),
            name => Ok(Network::Named(name.to_string())),
        }
    }
}

impl Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A network a container joins besides its `--network` (`network connect`), kept across
/// restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub network: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ip: Option<std::net::Ipv4Addr>,
}

/// Resource limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes (wasm: linear memories and tables of the store; native: the cgroup).
    pub memory: Option<u64>,
    /// Wall-clock run time (wasm: epoch deadline).
    pub timeout: Option<Duration>,
    /// wasm fuel (instructions, roughly).
    pub fuel: Option<u64>,
}

/// `--ulimit NAME=SOFT[:HARD]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// `nofile`, `nproc`, `core`, … (without the `RLIMIT_` prefix).
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

const ULIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

impl FromStr for Ulimit {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || OptionError::Ulimit(s.to_string());
        let (name, values) = s.split_once('=').ok_or_else(err)?;
        if !ULIMITS.contains(&name) {
            return Err(err());
        }
        let parse = |v: &str| -> Result<u64, OptionError> {
            if v == "-1" || v == "unlimited" {
                Ok(u64::MAX)
            } else {
                v.parse().map_err(|_| err())
            }
        };
        let (soft, hard) = match values.split_once(':') {
            Some((s, h)) => (parse(s)?, parse(h)?),
            None => (parse(values)?, parse(values)?),
        };
        if soft > hard {
            return Err(err());
        }
        Ok(Ulimit {
            name: name.to_string(),
            soft,
            hard,
        })
    }
}

/// A health check (`--health-cmd`, compose's `healthcheck`), run by a detached container's
/// monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// `["CMD", arg...]`, `["CMD-SHELL", "command"]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failures in a row that make it unhealthy.
    pub retries: u32,
    /// Failures before this much time has passed do not count.
    pub start_period: Duration,
}

impl HealthConfig {
    /// Docker's defaults for a test.
    pub fn new(test: Vec<String>) -> Self {
        HealthConfig {
            test,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            retries: 3,
            start_period: Duration::ZERO,
        }
    }

    /// An image's `Healthcheck` (Docker's config: `Test`, and `Interval`, `Timeout`,
    /// `StartPeriod` in nanoseconds, `Retries`; zero means the default).
    pub fn from_image(v: &serde_json::Value) -> Option<Self> {
        let test: Vec<String> = v
            .get("Test")
            .or_else(|| v.get("test"))?
            .as_array()?
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
        let mut h = HealthConfig::new(test);
        let ns = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_u64)
                .filter(|n| *n > 0)
                .map(Duration::from_nanos)
        };
        h.interval = ns("Interval").unwrap_or(h.interval);
        h.timeout = ns("Timeout").unwrap_or(h.timeout);
        h.start_period = ns("StartPeriod").unwrap_or(h.start_period);
        if let Some(r) = v
            .get("Retries")
            .and_then(serde_json::Value::as_u64)
            .filter(|r| *r > 0)
        {
            h.retries = r as u32;
        }
        Some(h)
    }

    /// `NONE`: no checks.
    pub fn disabled(&self) -> bool {
        self.test.first().is_none_or(|t| t == "NONE")
    }
}

/// Settings only native containers honour (the wasm backend has no users, capabilities or
/// cgroups; its own limits are in `Limits`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NativeOptions {
    /// `-u name|uid|uid:gid`, resolved in the container's own /etc/passwd and /etc/group.
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// `--read-only`: the root filesystem is mounted read-only.
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--privileged`: every capability, no seccomp, no masked paths.
    pub privileged: bool,
    /// `--security-opt seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    pub pids_limit: Option<i64>,
    pub cpus: Option<f64>,
    /// `--tmpfs PATH`.
    pub tmpfs: Vec<String>,
    /// `--init`: a small reaper runs as pid 1.
    pub init: bool,
    pub ulimits: Vec<Ulimit>,
    /// `--device HOST[:CONTAINER[:PERMISSIONS]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceMapping>,
    /// `--shm-size`: the size of /dev/shm (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// `--sysctl KEY=VALUE`: namespaced kernel parameters only (checked at start).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// `--group-add GROUP`: more supplementary groups (names from the container's
    /// /etc/group, or numbers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// `--cpuset-cpus`, `--cpuset-mems`: the CPUs and memory nodes it may use (`0-1,3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    /// `--memory-swap`: memory plus swap (-1: unlimited swap), as Docker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// `--memory-reservation`: the soft limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u64>,
    /// `--ipc host`: the host's IPC namespace (else a private one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipc_host: bool,
    /// `--pid host`: the host's PID namespace (else a private one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pid_host: bool,
    /// `--ipc container:NAME`: that container's IPC namespace, joined at each start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_container: Option<String>,
    /// `--pid container:NAME`: that container's PID namespace, joined at each start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_container: Option<String>,
}

impl NativeOptions {
    /// Set `--ipc` (`which` = "ipc") or `--pid` from its mode.
    pub fn set_namespace_mode(&mut self, which: &'static str, mode: NamespaceMode) {
        let (host, container) = if which == "ipc" {
            (&mut self.ipc_host, &mut self.ipc_container)
        } else {
            (&mut self.pid_host, &mut self.pid_container)
        };
        *host = mode == NamespaceMode::Host;
        *container = match mode {
            NamespaceMode::Container(c) => Some(c),
            _ => None,
        };
    }

    /// The `--ipc`/`--pid` mode as Docker's inspect spells it (`""` for private).
    pub fn namespace_mode(&self, which: &str) -> String {
        let (host, container) = if which == "ipc" {
            (self.ipc_host, &self.ipc_container)
        } else {
            (self.pid_host, &self.pid_container)
        };
        match (host, container) {
            (true, _) => "host".into(),
            (false, Some(c)) => format!("container:{c}"),
            (false, None) => String::new(),
        }
    }
}

/// `--device HOST[:CONTAINER[:PERMISSIONS]]`: the host's device node at `host` made at
/// `container` in the container, and usable there with `permissions` (of `rwm`), as Docker's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    pub host: String,
    pub container: String,
    pub permissions: String,
}

impl FromStr for DeviceMapping {
    type Err = OptionError;
    /// Docker's reading: `HOST`, `HOST:CONTAINER`, `HOST:PERMISSIONS` (a second part made of
    /// r, w and m only), `HOST:CONTAINER:PERMISSIONS`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| OptionError::Device(s.to_string(), why);
        let is_mode = |m: &str| {
            !m.is_empty() && m.len() <= 3 && m.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (host, container, permissions) = match parts[..] {
            [h] => (h, h, "rwm"),
            [h, m] if is_mode(m) => (h, h, m),
            [h, c] => (h, c, "rwm"),
            [h, c, m] if is_mode(m) => (h, c, m),
            [_, _, _] => return Err(err("the permissions are letters of rwm")),
            _ => return Err(err("expected HOST[:CONTAINER[:PERMISSIONS]]")),
        };
        for p in [host, container] {
            if !p.starts_with('/') || p == "/" {
                return Err(err("a device is an absolute path of a file"));
            }
        }
        Ok(DeviceMapping {
            host: host.to_string(),
            container: container.to_string(),
            permissions: permissions.to_string(),
        })
    }
}

/// One `wharf run`, validated.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunOptions {
    /// `--entrypoint`: replaces the image's entrypoint (and drops its cmd).
    pub entrypoint: Option<String>,
    /// Trailing arguments: replace the image's cmd.
    pub args: Vec<String>,
    /// `-e`/`--env-file`, in order; later entries win.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub volumes: Vec<Volume>,
    pub ports: Vec<PortMapping>,
    pub network: Network,
    /// `-P`: publish every port the image exposes, on free host ports.
    #[serde(default)]
    pub publish_all: bool,
    /// `--network-alias`: more names on the `--network`.
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// `--ip`: this address on the `--network`.
    #[serde(default)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// `network connect`: more networks.
    #[serde(default)]
    pub connected: Vec<Connection>,
    /// `--health-cmd` and friends.
    #[serde(default)]
    pub health: Option<HealthConfig>,
    /// `--label KEY=VALUE` (compose marks its containers with these).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    pub limits: Limits,
    /// `-i`: keep stdin open and connect it.
    pub interactive: bool,
    /// `-t`: the user asked for a terminal (output passes through unsanitised).
    pub tty: bool,
    /// `--stop-signal`: what `stop` sends first (else the image's StopSignal, else SIGTERM).
    #[serde(default)]
    pub stop_signal: Option<String>,
    pub native: NativeOptions,
    /// `--add-host`, `--dns`, `--dns-search`, `--dns-option`.
    #[serde(default)]
    pub names: NameOptions,
}

/// What a native container's /etc/hosts and /etc/resolv.conf get besides wharf's own
/// entries: `--add-host NAME:IP` lines, and `--dns`/`--dns-search`/`--dns-option`, which
/// replace the name servers, search domains and options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameOptions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<(String, IpAddr)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
}

impl NameOptions {
    /// Whether any is set.
    pub fn is_empty(&self) -> bool {
        self == &NameOptions::default()
    }

    /// `--add-host NAME:IP` (Docker's; `NAME=IP` too). An IPv6 address may be in brackets.
    pub fn parse_host(s: &str) -> Result<(String, IpAddr), String> {
        let (name, ip) = s
            .split_once('=')
            .or_else(|| s.split_once(':'))
            .ok_or_else(|| format!("invalid --add-host {s:?}: expected NAME:IP"))?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let dns_name = name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if name.is_empty() || !dns_name {
            return Err(format!(
                "invalid --add-host {s:?}: {name:?} is not a host name"
            ));
        }
        let ip: IpAddr = ip.parse().map_err(|_| {
            format!("invalid --add-host {s:?}: {ip:?} is not an IP address (host-gateway is not supported)")
        })?;
        Ok((name.to_string(), ip))
    }

    /// `hosts` with the extra entries added, and `resolv` with the name servers, search
    /// domains and options replaced where any is given.
    pub fn apply(&self, hosts: &str, resolv: &str) -> (String, String) {
        let mut h = hosts.to_string();
        if !h.is_empty() && !h.ends_with('\n') {
            h.push('\n');
        }
        for (name, ip) in &self.extra_hosts {
            h.push_str(&format!("{ip}\t{name}\n"));
        }
        let mut r = String::new();
        for line in resolv.lines() {
            let key = line.split_whitespace().next().unwrap_or_default();
            let replaced = (key == "nameserver" && !self.dns.is_empty())
                || ((key == "search" || key == "domain") && !self.dns_search.is_empty())
                || (key == "options" && !self.dns_options.is_empty());
            if !replaced {
                r.push_str(line);
                r.push('\n');
            }
        }
        for ip in &self.dns {
            r.push_str(&format!("nameserver {ip}\n"));
        }
        if !self.dns_search.is_empty() {
            r.push_str(&format!("search {}\n", self.dns_search.join(" ")));
        }
        if !self.dns_options.is_empty() {
            r.push_str(&format!("options {}\n", self.dns_options.join(" ")));
        }
        (h, r)
    }

    /// Apply to the `hosts` and `resolv.conf` files in `dir` (a container's).
    pub fn apply_to(&self, dir: &std::path::Path) -> std::io::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_default();
        let (hosts, resolv) = self.apply(&read("hosts"), &read("resolv.conf"));
        std::fs::write(dir.join("hosts"), hosts)?;
        std::fs::write(dir.join("resolv.conf"), resolv)
    }
}

/// The largest id a process may take: `(uid_t)-1` means "leave unchanged" to
/// setresuid/setresgid, so asking for it would silently keep the caller's id (root).
pub const MAX_ID: u32 = u32::MAX - 1;

/// Check one id: in range for setresuid/setresgid/setgroups.
pub fn check_id(id: u64, what: &str) -> Result<u32, String> {
    u32::try_from(id)
        .ok()
        .filter(|&i| i <= MAX_ID)
        .ok_or_else(|| format!("{what} id {id} is out of range (0 to {MAX_ID})"))
}

/// A numeric id in `-u`: `Ok(None)` for a name, an error for a number out of range.
fn numeric_id(part: &str, what: &str) -> Result<Option<u32>, String> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match part.parse::<u64>() {
        Ok(n) => check_id(n, what).map(Some),
        Err(_) => Err(format!("{what} id {part} is out of range (0 to {MAX_ID})")),
    }
}

/// Check the numeric parts of a `-u` value (`wharf run`, `exec`, a runtime spec's user) before anything starts (names are resolved
/// later, in the container's own files).
pub fn validate_user(spec: &str) -> Result<(), String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if u.is_empty() {
        return Err(format!("invalid user {spec:?}: no user before the colon"));
    }
    numeric_id(u, "user")?;
    if let Some(g) = g {
        if g.is_empty() {
            return Err(format!("invalid user {spec:?}: no group after the colon"));
        }
        numeric_id(g, "group")?;
    }
    Ok(())
}

/// Parse `KEY=VALUE` (or `KEY`, taking the value from this process's environment, as Docker
/// does; `None` if unset there).
pub fn parse_env(s: &str) -> Result<Option<(String, String)>, OptionError> {
    match s.split_once('=') {
        Some(("", _)) => Err(OptionError::Env(s.to_string())),
        Some((k, v)) => Ok(Some((k.to_string(), v.to_string()))),
        None if s.is_empty() => Err(OptionError::Env(s.to_string())),
        None => Ok(std::env::var(s).ok().map(|v| (s.to_string(), v))),
    }
}

/// Parse an env file: `KEY=VALUE` lines, `#` comments and blank lines skipped.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, OptionError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(kv) = parse_env(line)? {
            out.push(kv);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {

    #[test]
    fn device_mappings_read_as_docker_reads_them() {
        let d = |s: &str| s.parse::<DeviceMapping>();
        let m = |h: &str, c: &str, p: &str| DeviceMapping {
            host: h.into(),
            container: c.into(),
            permissions: p.into(),
        };
        assert_eq!(d("/dev/fuse").unwrap(), m("/dev/fuse", "/dev/fuse", "rwm"));
        assert_eq!(d("/dev/fuse:r").unwrap(), m("/dev/fuse", "/dev/fuse", "r"));
        assert_eq!(
            d("/dev/fuse:/dev/f").unwrap(),
            m("/dev/fuse", "/dev/f", "rwm")
        );
        assert_eq!(
            d("/dev/fuse:/dev/f:mw").unwrap(),
            m("/dev/fuse", "/dev/f", "mw")
        );
        for bad in [
            "",
            "fuse",
            "/dev/fuse:f",
            "/dev/fuse:/dev/f:x",
            "/a:/b:r:w",
            "/",
        ] {
            assert!(d(bad).is_err(), "{bad:?} accepted");
        }
    }

    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512K").unwrap(), 512 << 10);
        assert_eq!(parse_size("100mb").unwrap(), 100 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1m").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
        // Too large for the kernel: refused, not saturated to "unlimited" (or a panic).
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(OptionError::SizeTooLarge(_))
        ));
        assert!(parse_size("8589934592g").is_err());
        assert!(parse_size("nan").is_err() && parse_size("inf").is_err());
        assert!(parse_duration("1e300s").is_err());
        for bad in ["NaN", "inf", "-1", "0", "0.001", "100000"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_cpus("0.5").unwrap(), 0.5);
    }

    #[test]
    fn volumes() {
        let v: Volume = "/srv/data:/data:ro".parse().unwrap();
        assert_eq!(
            (v.host.to_str().unwrap(), v.container.as_str(), v.read_only),
            ("/srv/data", "/data", true)
        );
        let v: Volume = "/srv/data:/data".parse().unwrap();
        assert!(!v.read_only);
        if cfg!(windows) {
            let v: Volume = r"C:\data:/data:ro".parse().unwrap();
            assert_eq!(
                (v.host.to_str().unwrap(), v.container.as_str(), v.read_only),
                (r"C:\data", "/data", true)
            );
            let v: Volume = r"\\?\D:\very\long\path:/data".parse().unwrap();
            assert_eq!(
                (v.host.to_str().unwrap(), v.container.as_str(), v.read_only),
                (r"\\?\D:\very\long\path", "/data", false)
            );
            let v: Volume = r"d:/data:/data:rw".parse().unwrap();
            assert_eq!(v.host.to_str().unwrap(), "d:/data");
        } else {
            // No drive letters off Windows: `d:/data` is the named volume d.
            let v: Volume = r"d:/data:rw".parse().unwrap();
            assert_eq!(
                (v.named.as_deref(), v.container.as_str(), v.read_only),
                (Some("d"), "/data", false)
            );
        }
        assert!("/a".parse::<Volume>().is_err());
        assert!("/a:relative".parse::<Volume>().is_err());
    }

    #[test]
    fn ports() {
        let p: PortMapping = "8080:80".parse().unwrap();
        assert_eq!(p.host_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((p.host_port, p.container_port), (8080, 80));
        let p: PortMapping = "0.0.0.0:9000:8080/tcp".parse().unwrap();
        assert_eq!(p.host_ip.to_string(), "0.0.0.0");
        let p: PortMapping = "[::1]:9000:8080".parse().unwrap();
        assert_eq!(p.host_ip.to_string(), "::1");
        let p: PortMapping = "80".parse().unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p: PortMapping = "127.0.0.1::53/udp".parse().unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (0, 53, Protocol::Udp)
        );
        assert_eq!(p.to_string(), "127.0.0.1:0->53/udp");
        assert!("x:80".parse::<PortMapping>().is_err());
        assert!("8080:0".parse::<PortMapping>().is_err());
        assert!("8080:80/sctp".parse::<PortMapping>().is_err());
    }

    #[test]
    fn an_images_healthcheck_reads_as_dockers() {
        let h = HealthConfig::from_image(&serde_json::json!({
            "Test": ["CMD-SHELL", "curl -f http://localhost/"],
            "Interval": 5_000_000_000u64, "Timeout": 0, "Retries": 2
        }))
        .unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "curl -f http://localhost/"]);
        assert_eq!(
            (h.interval, h.timeout, h.retries),
            (Duration::from_secs(5), Duration::from_secs(30), 2)
        );
        assert!(
            HealthConfig::from_image(&serde_json::json!({"Test": ["NONE"]}))
                .unwrap()
                .disabled()
        );
        assert!(HealthConfig::from_image(&serde_json::json!({})).is_none());
    }

    #[test]
    fn ulimits() {
        let u: Ulimit = "nofile=1024:2048".parse().unwrap();
        assert_eq!((u.soft, u.hard), (1024, 2048));
        let u: Ulimit = "core=0".parse().unwrap();
        assert_eq!((u.soft, u.hard), (0, 0));
        assert!("nofile=10:5".parse::<Ulimit>().is_err());
        assert!("bogus=1".parse::<Ulimit>().is_err());
    }

    #[test]
    fn user_ids_out_of_range_are_refused() {
        // (uid_t)-1 means "unchanged" to setresuid: it would leave the process root.
        for bad in [
            "4294967295",
            "0:4294967295",
            "4294967296",
            "99999999999999999999",
            "app:",
            ":0",
        ] {
            assert!(validate_user(bad).is_err(), "{bad}");
        }
        for good in ["0", "4294967294", "app", "app:wheel", "1000:1000"] {
            assert!(validate_user(good).is_ok(), "{good}");
        }
        assert!(
            check_id(u64::from(u32::MAX), "user")
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn names_add_hosts_and_replace_resolvers() {
        let n = NameOptions {
            extra_hosts: vec![
                NameOptions::parse_host("db:10.0.0.5").unwrap(),
                NameOptions::parse_host("v6=[::1]").unwrap(),
            ],
            dns: vec!["1.1.1.1".parse().unwrap()],
            dns_search: vec!["corp.example".into()],
            dns_options: vec!["ndots:2".into()],
        };
        let (h, r) = n.apply(
            "127.0.0.1\tlocalhost",
            "# written\nnameserver 8.8.8.8\nsearch home\noptions edns0\n",
        );
        assert_eq!(h, "127.0.0.1\tlocalhost\n10.0.0.5\tdb\n::1\tv6\n");
        assert_eq!(
            r,
            "# written\nnameserver 1.1.1.1\nsearch corp.example\noptions ndots:2\n"
        );
        for bad in [
            "nohost",
            "x:notanip",
            ":1.2.3.4",
            "bad name:1.2.3.4",
            "gw:host-gateway",
        ] {
            assert!(NameOptions::parse_host(bad).is_err(), "{bad}");
        }
        assert!(NameOptions::default().is_empty());
    }

    #[test]
    fn env() {
        assert_eq!(
            parse_env("A=b=c").unwrap(),
            Some(("A".into(), "b=c".into()))
        );
        assert_eq!(parse_env("E=").unwrap(), Some(("E".into(), "".into())));
        assert!(parse_env("=x").is_err());
        let f = parse_env_file("# c\n\nA=1\n  B=two words\n").unwrap();
        assert_eq!(
            f,
            vec![("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
    }
}
