//! What a running container uses and which processes it has, for `wharf stats` and `wharf
//! top`: a native container's cgroup and network namespace counters, or, for a wasm
//! container, the guest's memory (as the engine's limiter counts it, against `--memory`)
//! and the CPU time and storage I/O of the one process that runs it.

use crate::container::Record;
#[cfg(target_os = "linux")]
use crate::dispatch::Kind;

/// One reading of a container's use of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// CPU time used since it started, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, in bytes (native: the cgroup's, less inactive file cache; wasm: the
    /// guest's linear memories and tables).
    pub memory: u64,
    /// The memory limit (native: the cgroup's; wasm: `--memory`), if any.
    pub memory_limit: Option<u64>,
    /// Processes (wasm: the one running the guest).
    pub pids: u64,
    /// Bytes received and sent on its own network namespace (none for the host's network
    /// or a wasm guest, which uses the host's sockets).
    pub net_rx: u64,
    pub net_tx: u64,
    /// Bytes read from and written to block devices.
    pub block_read: u64,
    pub block_write: u64,
    /// wasi:http requests a wasm server answered (none for other containers).
    pub requests: Option<u64>,
    /// Fuel a metered (`--fuel`) wasm command has burnt so far.
    pub fuel: Option<u64>,
}

/// Why a container's usage cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("reading what containers use is supported on Linux only")]
    Unsupported,
}

/// What container `r` (its record refreshed) under `roots` uses now.
pub fn usage(roots: &crate::paths::Roots, r: &Record) -> Result<Usage, StatsError> {
    let pid = r
        .state
        .workload()
        .filter(|_| r.state.is_active())
        .ok_or_else(|| StatsError::NotRunning(r.shown_name().to_string()))?;
    read_usage(roots, r, pid)
}

/// The host pids of container `r`'s processes (wasm: the process running the guest).
pub fn processes(r: &Record) -> Result<Vec<i32>, StatsError> {
    let pid = r
        .state
        .workload()
        .filter(|_| r.state.is_active())
        .ok_or_else(|| StatsError::NotRunning(r.shown_name().to_string()))?;
    list_processes(r, pid)
}

fn list_processes(r: &Record, pid: i32) -> Result<Vec<i32>, StatsError> {
    #[cfg(target_os = "linux")]
    if r.kind == Kind::Native {
        let procs = crate::backend::native::cgroups::Cgroup::of_container(&r.id).procs();
        if !procs.is_empty() {
            return Ok(procs);
        }
    }
    let _ = r;
    Ok(vec![pid])
}

fn read_usage(roots: &crate::paths::Roots, r: &Record, pid: i32) -> Result<Usage, StatsError> {
    #[cfg(target_os = "linux")]
    if r.kind == Kind::Native {
        return Ok(native_usage(r, pid));
    }
    // wasm: the guest's own memory as its process publishes it (that process's resident
    // memory, engine and code included, until it has); its CPU time and storage I/O.
    let published = crate::backend::wasm::limits::gauge::read(
        &crate::lifecycle::containers(roots)
            .dir_of(&r.id)
            .join(super::supervise::GUEST_MEMORY),
    );
    #[cfg(target_os = "linux")]
    let ((block_read, block_write), cpu_ns, rss) = (
        linux::process_io(pid),
        linux::process_cpu_ns(pid),
        linux::process_rss(pid),
    );
    #[cfg(windows)]
    let ((block_read, block_write), cpu_ns, rss) =
        ((0, 0), crate::sys::process_cpu_ns(pid).unwrap_or(0), 0);
    #[cfg(not(any(target_os = "linux", windows)))]
    let ((block_read, block_write), cpu_ns, rss) = {
        let _ = pid;
        return Err(StatsError::Unsupported);
    };
    Ok(Usage {
        cpu_ns,
        memory: published.map_or(rss, |p| p.memory),
        requests: published
            .map(|p| p.requests)
            .filter(|_| !r.options.ports.is_empty()),
        fuel: published.and_then(|p| p.fuel),
        memory_limit: r.options.limits.memory,
        pids: 1,
        net_rx: 0,
        net_tx: 0,
        block_read,
        block_write,
    })
}

#[cfg(target_os = "linux")]
fn native_usage(r: &Record, pid: i32) -> Usage {
    use crate::backend::native::cgroups::Cgroup;
    use crate::run::options::Network;
    let cg = Cgroup::of_container(&r.id);
    let (memory, memory_limit) = cg.memory();
    let (block_read, block_write) = cg.block_io();
    let (net_rx, net_tx) = if matches!(r.options.network, Network::Host) {
        (0, 0)
    } else {
        linux::net_dev(pid)
    };
    // One read of the cgroup's figures for CPU time and processes (`pids.current`, else
    // counted).
    let figures = cg.stats();
    let pids = figures["pids"]["current"]
        .as_u64()
        .filter(|n| *n > 0)
        .unwrap_or_else(|| cg.procs().len() as u64);
    Usage {
        cpu_ns: figures["cpu"]["usage"]["total"].as_u64().unwrap_or(0),
        memory,
        memory_limit,
        pids,
        net_rx,
        net_tx,
        block_read,
        block_write,
        requests: None,
        fuel: None,
    }
}

/// The host's memory, which Docker shows as the limit of a container that has none.
pub fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(target_os = "linux")]
mod linux {
    use nix::unistd::{SysconfVar, sysconf};

    /// utime + stime of process `pid`, in nanoseconds.
    pub fn process_cpu_ns(pid: i32) -> u64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return 0;
        };
        // Fields after the command name (which may hold spaces) start at the last ')':
        // state is field 3, utime 14 and stime 15.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            return 0;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let hz = sysconf(SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|h| *h > 0)
            .unwrap_or(100) as u64;
        (ticks(11) + ticks(12)) * (1_000_000_000 / hz)
    }

    /// Resident memory of process `pid`, in bytes.
    pub fn process_rss(pid: i32) -> u64 {
        let pages = std::fs::read_to_string(format!("/proc/{pid}/statm"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
        let page = sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .filter(|p| *p > 0)
            .unwrap_or(4096) as u64;
        pages * page
    }

    /// Bytes process `pid` read from and wrote to storage (`/proc/PID/io`).
    pub fn process_io(pid: i32) -> (u64, u64) {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/io")) else {
            return (0, 0);
        };
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        (field("read_bytes:"), field("write_bytes:"))
    }

    /// Bytes received and sent on every interface but `lo` of the network namespace that
    /// process `pid` is in.
    pub fn net_dev(pid: i32) -> (u64, u64) {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
            return (0, 0);
        };
        parse_net_dev(&text)
    }

    pub fn parse_net_dev(text: &str) -> (u64, u64) {
        let (mut rx, mut tx) = (0, 0);
        for line in text.lines().skip(2) {
            let Some((name, counters)) = line.split_once(':') else {
                continue;
            };
            if name.trim() == "lo" {
                continue;
            }
            let c: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            if c.len() >= 9 {
                rx += c[0];
                tx += c[8];
            }
        }
        (rx, tx)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn net_dev_counts_all_but_loopback() {
            let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:    2048      20    0    0    0     0          0         0      512       5    0    0    0     0       0          0
  eth1:      10       1    0    0    0     0          0         0        6       1    0    0    0     0       0          0
";
            assert_eq!(super::parse_net_dev(text), (2058, 518));
        }

        #[test]
        fn this_process_has_cpu_time_and_memory() {
            let me = std::process::id() as i32;
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_millis(50) {
                std::hint::black_box(0u64.wrapping_add(1));
            }
            assert!(super::process_cpu_ns(me) > 0);
            assert!(super::process_rss(me) > 1 << 20);
        }
    }
}
