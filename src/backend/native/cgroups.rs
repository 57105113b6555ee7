//! Resource limits through cgroups: v2 where the unified hierarchy has controllers, v1
//! otherwise (the memory, pids and cpu hierarchies). One cgroup per container under
//! `wharf/<id>`, removed when the container is gone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

use super::NativeError;

const ROOT: &str = "/sys/fs/cgroup";
/// cpuacct is its own hierarchy on some hosts, a link to `cpu,cpuacct` on others.
const V1_CONTROLLERS: [&str; 11] = [
    "memory", "pids", "cpu", "cpuacct", "devices", "freezer", "cpuset", "blkio", "hugetlb",
    "net_cls", "net_prio",
];

/// The devices a container may use (Docker's default list): any node may be created, only
/// these opened. Without this a container with CAP_MKNOD could open the host's disks.
const ALLOWED_DEVICES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// A device rule as the devices controller reads it: `c 1:3 rwm`, `a *:* rwm`.
fn device_rule(rule: &oci_spec::runtime::LinuxDeviceCgroup) -> String {
    let number = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    // The controller knows a, b and c; an unbuffered character device is a c.
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => "a",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::P => "p",
    };
    let access = rule
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    if typ == "a" {
        return format!("a *:* {access}");
    }
    format!(
        "{typ} {}:{} {access}",
        number(rule.major()),
        number(rule.minor())
    )
}

/// A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and no process can
/// join it: each directory from the hierarchy's root down to `rel` takes its parent's
/// where it has none.
fn inherit_cpuset(hierarchy: &Path, rel: &Path) -> Result<(), NativeError> {
    let mut parent = hierarchy.to_path_buf();
    for c in rel.components() {
        let dir = parent.join(c);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = fs::read_to_string(dir.join(file)).map_err(|e| err(&dir.join(file), e))?;
            if own.trim().is_empty() {
                let from = fs::read_to_string(parent.join(file))
                    .map_err(|e| err(&parent.join(file), e))?;
                write(&dir.join(file), from.trim())?;
            }
        }
        parent = dir;
    }
    Ok(())
}

/// A container's cgroup(s).
#[derive(Debug)]
pub struct Cgroup {
    /// One directory on v2; one per controller on v1.
    dirs: Vec<PathBuf>,
    v2: bool,
}

fn err(path: &Path, e: io::Error) -> NativeError {
    NativeError::Cgroup {
        path: path.to_path_buf(),
        cause: e,
    }
}

fn write(path: &Path, value: &str) -> Result<(), NativeError> {
    fs::write(path, value).map_err(|e| {
        err(
            path,
            io::Error::new(e.kind(), format!("writing {value:?}: {e}")),
        )
    })
}

/// Whether this host's unified hierarchy has the controllers wharf needs.
pub fn is_v2() -> bool {
    fs::read_to_string(Path::new(ROOT).join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"))
}

/// A cgroup path made safe to join under a hierarchy: relative, with no `..` or empty
/// components (a spec's `cgroupsPath` is input).
pub fn clean_relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c),
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

impl Cgroup {
    /// Create the cgroup for container `id` and apply `resources`.
    pub fn create(
        id: &str,
        resources: Option<&LinuxResources>,
        privileged: bool,
    ) -> Result<Cgroup, NativeError> {
        Self::create_at(&Path::new("wharf").join(id), resources, privileged)
    }

    /// Create the cgroup `rel` (relative to each hierarchy's root) and apply `resources`.
    pub fn create_at(
        rel: &Path,
        resources: Option<&LinuxResources>,
        privileged: bool,
    ) -> Result<Cgroup, NativeError> {
        let v2 = is_v2();
        let cg = if v2 {
            let dir = Path::new(ROOT).join(rel);
            // Enable the controllers for our subtree (harmless if already on).
            let mut parent = Path::new(ROOT).to_path_buf();
            for c in rel.parent().into_iter().flat_map(|p| p.components()) {
                let _ = fs::write(parent.join("cgroup.subtree_control"), "+memory +pids +cpu");
                parent.push(c);
                fs::create_dir_all(&parent).map_err(|e| err(&parent, e))?;
            }
            let _ = fs::write(parent.join("cgroup.subtree_control"), "+memory +pids +cpu");
            fs::create_dir(&dir).map_err(|e| err(&dir, e))?;
            Cgroup {
                dirs: vec![dir],
                v2,
            }
        } else {
            let mut dirs = Vec::new();
            let mut seen = Vec::new();
            for c in V1_CONTROLLERS {
                let hierarchy = Path::new(ROOT).join(c);
                // Missing, or the same hierarchy under another name.
                let Ok(real) = fs::canonicalize(&hierarchy) else {
                    continue;
                };
                if seen.contains(&real) {
                    continue;
                }
                seen.push(real);
                let dir = hierarchy.join(rel);
                fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
                if c == "cpuset" {
                    inherit_cpuset(&hierarchy, rel)?;
                }
                dirs.push(dir);
            }
            Cgroup { dirs, v2 }
        };
        // Another container's cgroup (a reused path): never share it.
        let busy = cg.procs();
        if !busy.is_empty() {
            return Err(err(
                &cg.dirs[0],
                io::Error::other(format!(
                    "the cgroup is in use by other processes ({busy:?}): another container has this cgroup path"
                )),
            ));
        }
        if let Some(r) = resources
            && let Err(e) = cg.apply(r)
        {
            cg.destroy();
            return Err(e);
        }
        if let Err(e) = cg.restrict_devices(privileged, resources) {
            cg.destroy();
            return Err(e);
        }
        Ok(cg)
    }

    fn dir_for(&self, controller: &str) -> Option<&Path> {
        if self.v2 {
            return self.dirs.first().map(PathBuf::as_path);
        }
        self.dirs
            .iter()
            .find(|d| d.starts_with(Path::new(ROOT).join(controller)))
            .map(PathBuf::as_path)
    }

    /// The cgroup `wharf run` made for container `id` (the directories that exist).
    pub fn of_container(id: &str) -> Cgroup {
        if is_v2() {
            Cgroup {
                dirs: vec![Path::new(ROOT).join("wharf").join(id)],
                v2: true,
            }
        } else {
            Cgroup {
                dirs: V1_CONTROLLERS
                    .iter()
                    .map(|c| Path::new(ROOT).join(c).join("wharf").join(id))
                    .filter(|d| d.exists())
                    .collect(),
                v2: false,
            }
        }
    }

    /// Bytes read and written by the cgroup's processes on block devices (v1
    /// `blkio.throttle.io_service_bytes`, v2 `io.stat`), as Docker's BLOCK I/O column.
    pub fn block_io(&self) -> (u64, u64) {
        let (mut read, mut write) = (0, 0);
        if self.v2 {
            let Some(text) = self
                .dir_for("io")
                .or_else(|| self.dirs.first().map(PathBuf::as_path))
                .and_then(|d| fs::read_to_string(d.join("io.stat")).ok())
            else {
                return (0, 0);
            };
            for field in text.split_whitespace() {
                if let Some(n) = field
                    .strip_prefix("rbytes=")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    read += n;
                } else if let Some(n) = field
                    .strip_prefix("wbytes=")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    write += n;
                }
            }
        } else if let Some(text) = self
            .dir_for("blkio")
            .and_then(|d| fs::read_to_string(d.join("blkio.throttle.io_service_bytes")).ok())
        {
            for line in text.lines() {
                let mut f = line.split_whitespace();
                match (
                    f.next(),
                    f.next(),
                    f.next().and_then(|n| n.parse::<u64>().ok()),
                ) {
                    (Some(_dev), Some("Read"), Some(n)) => read += n,
                    (Some(_dev), Some("Write"), Some(n)) => write += n,
                    _ => {}
                }
            }
        }
        (read, write)
    }

    /// Memory in use as Docker counts it: usage less the inactive file cache (v1
    /// `total_inactive_file`, v2 `inactive_file`), and the limit (none: unlimited).
    pub fn memory(&self) -> (u64, Option<u64>) {
        let Some(d) = self.dir_for("memory") else {
            return (0, None);
        };
        let num =
            |f: &str| -> Option<u64> { fs::read_to_string(d.join(f)).ok()?.trim().parse().ok() };
        let stat = |key: &str| -> Option<u64> {
            fs::read_to_string(d.join("memory.stat"))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        };
        let (usage, limit, inactive) = if self.v2 {
            (
                num("memory.current"),
                num("memory.max"),
                stat("inactive_file "),
            )
        } else {
            (
                num("memory.usage_in_bytes"),
                num("memory.limit_in_bytes"),
                stat("total_inactive_file "),
            )
        };
        let usage = usage.unwrap_or(0);
        // v1 writes "no limit" as a page-rounded i64::MAX; v2 as "max" (which does not parse).
        let limit = limit.filter(|l| *l < (1 << 62));
        (usage.saturating_sub(inactive.unwrap_or(0)), limit)
    }

    /// The cgroup whose directories are `dirs` (as recorded when it was made).
    pub fn from_dirs(dirs: Vec<PathBuf>) -> Cgroup {
        let v2 = dirs.len() == 1 && !dirs[0].starts_with(Path::new(ROOT).join("memory"));
        Cgroup {
            dirs,
            v2: v2 && is_v2(),
        }
    }

    /// Apply `r` (`update --resources`): every limit the runtime spec defines that this
    /// host's cgroups have a file for. A limit whose controller is missing is an error
    /// naming it; a value the kernel refuses is an error naming the file.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), NativeError> {
        let put = |controller: &'static str, file: &str, value: String| {
            let dir = self
                .dir_for(controller)
                .ok_or(NativeError::NoController(controller))?;
            write(&dir.join(file), &value)
        };
        if let Some(m) = r.memory() {
            self.apply_memory(m)?;
        }
        if let Some(pids) = r.pids().as_ref().map(|p| p.limit()).filter(|l| *l > 0) {
            put("pids", "pids.max", pids.to_string())?;
        }
        if let Some(cpu) = r.cpu() {
            if self.v2 {
                if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
                    // runc's conversion of v1 shares [2, 262144] to v2 weight [1, 10000].
                    let weight = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
                    put("cpu", "cpu.weight", weight.to_string())?;
                }
                if cpu.quota().is_some() || cpu.period().is_some() {
                    let quota = cpu
                        .quota()
                        .filter(|q| *q > 0)
                        .map_or("max".to_string(), |q| q.to_string());
                    let period = cpu.period().unwrap_or(100_000);
                    put("cpu", "cpu.max", format!("{quota} {period}"))?;
                }
            } else {
                if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
                    put("cpu", "cpu.shares", shares.to_string())?;
                }
                if let Some(period) = cpu.period().filter(|p| *p > 0) {
                    put("cpu", "cpu.cfs_period_us", period.to_string())?;
                }
                if let Some(quota) = cpu.quota().filter(|q| *q != 0) {
                    put("cpu", "cpu.cfs_quota_us", quota.to_string())?;
                }
                if let Some(period) = cpu.realtime_period().filter(|p| *p > 0) {
                    put("cpu", "cpu.rt_period_us", period.to_string())?;
                }
                if let Some(runtime) = cpu.realtime_runtime().filter(|r| *r != 0) {
                    put("cpu", "cpu.rt_runtime_us", runtime.to_string())?;
                }
            }
            if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
                put("cpuset", "cpuset.cpus", cpus.to_string())?;
            }
            if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
                put("cpuset", "cpuset.mems", mems.to_string())?;
            }
        }
        if let Some(b) = r.block_io() {
            if self.v2 {
                if let Some(w) = b.weight().filter(|w| *w > 0) {
                    put("io", "io.weight", format!("default {w}"))?;
                }
            } else {
                if let Some(w) = b.weight().filter(|w| *w > 0) {
                    put("blkio", "blkio.weight", w.to_string())?;
                }
                if let Some(w) = b.leaf_weight().filter(|w| *w > 0) {
                    put("blkio", "blkio.leaf_weight", w.to_string())?;
                }
                for d in b.weight_device().iter().flatten() {
                    if let Some(w) = d.weight() {
                        let v = format!("{}:{} {w}", d.major(), d.minor());
                        put("blkio", "blkio.weight_device", v)?;
                    }
                    if let Some(w) = d.leaf_weight() {
                        let v = format!("{}:{} {w}", d.major(), d.minor());
                        put("blkio", "blkio.leaf_weight_device", v)?;
                    }
                }
            }
            for (list, v1, v2) in [
                (
                    b.throttle_read_bps_device(),
                    "blkio.throttle.read_bps_device",
                    "rbps",
                ),
                (
                    b.throttle_write_bps_device(),
                    "blkio.throttle.write_bps_device",
                    "wbps",
                ),
                (
                    b.throttle_read_iops_device(),
                    "blkio.throttle.read_iops_device",
                    "riops",
                ),
                (
                    b.throttle_write_iops_device(),
                    "blkio.throttle.write_iops_device",
                    "wiops",
                ),
            ] {
                for d in list.iter().flatten() {
                    if self.v2 {
                        let v = format!("{}:{} {v2}={}", d.major(), d.minor(), d.rate());
                        put("io", "io.max", v)?;
                    } else {
                        put(
                            "blkio",
                            v1,
                            format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                        )?;
                    }
                }
            }
        }
        for h in r.hugepage_limits().iter().flatten() {
            let file = if self.v2 {
                format!("hugetlb.{}.max", h.page_size())
            } else {
                format!("hugetlb.{}.limit_in_bytes", h.page_size())
            };
            put("hugetlb", &file, h.limit().to_string())?;
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                put("net_cls", "net_cls.classid", id.to_string())?;
            }
            for p in n.priorities().iter().flatten() {
                let v = format!("{} {}", p.name(), p.priority());
                put("net_prio", "net_prio.ifpriomap", v)?;
            }
        }
        Ok(())
    }

    fn apply_memory(&self, m: &oci_spec::runtime::LinuxMemory) -> Result<(), NativeError> {
        let dir = || {
            self.dir_for("memory")
                .ok_or(NativeError::NoController("memory"))
        };
        let limit = m.limit().filter(|l| *l != 0);
        let swap = m.swap().filter(|s| *s != 0);
        if self.v2 {
            if let Some(limit) = limit {
                let v = if limit < 0 {
                    "max".into()
                } else {
                    limit.to_string()
                };
                write(&dir()?.join("memory.max"), &v)?;
            }
            // v1's swap is memory + swap; v2's swap.max is the swap alone. No swap unless
            // asked: a container over its limit is OOM-killed, as Docker's default.
            match (limit, swap) {
                (Some(l), Some(s)) if l > 0 && s > 0 => {
                    write(&dir()?.join("memory.swap.max"), &(s - l).max(0).to_string())?
                }
                (_, Some(s)) if s < 0 => write(&dir()?.join("memory.swap.max"), "max")?,
                (Some(_), None) => {
                    let _ = fs::write(dir()?.join("memory.swap.max"), "0");
                }
                _ => {}
            }
            if let Some(r) = m.reservation().filter(|r| *r > 0) {
                write(&dir()?.join("memory.low"), &r.to_string())?;
            }
            return Ok(());
        }
        if let Some(limit) = limit {
            let dir = dir()?;
            let memsw = swap.unwrap_or(limit);
            // memsw must stay at or above the limit at every step: when the limit cannot
            // be raised first, raise memsw first.
            if write(&dir.join("memory.limit_in_bytes"), &limit.to_string()).is_err() {
                let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), memsw.to_string());
                write(&dir.join("memory.limit_in_bytes"), &limit.to_string())?;
            }
            match swap {
                Some(s) => write(&dir.join("memory.memsw.limit_in_bytes"), &s.to_string())?,
                // No swap accounting on some hosts: then there is nothing to limit.
                None => {
                    let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), memsw.to_string());
                }
            }
        } else if let Some(s) = swap {
            write(&dir()?.join("memory.memsw.limit_in_bytes"), &s.to_string())?;
        }
        if let Some(r) = m.reservation().filter(|r| *r != 0) {
            write(&dir()?.join("memory.soft_limit_in_bytes"), &r.to_string())?;
        }
        if let Some(k) = m.kernel().filter(|k| *k != 0) {
            write(&dir()?.join("memory.kmem.limit_in_bytes"), &k.to_string())?;
        }
        if let Some(k) = m.kernel_tcp().filter(|k| *k != 0) {
            write(
                &dir()?.join("memory.kmem.tcp.limit_in_bytes"),
                &k.to_string(),
            )?;
        }
        match m.swappiness() {
            Some(s) if s <= 100 => write(&dir()?.join("memory.swappiness"), &s.to_string())?,
            Some(s) => {
                return Err(err(
                    &dir()?.join("memory.swappiness"),
                    io::Error::other(format!("swappiness {s} is not between 0 and 100")),
                ));
            }
            None if limit.is_some() => {
                let _ = fs::write(dir()?.join("memory.swappiness"), "0");
            }
            None => {}
        }
        if m.disable_oom_killer() == Some(true) {
            write(&dir()?.join("memory.oom_control"), "1")?;
        }
        Ok(())
    }

    /// v1: deny every device, then apply the spec's rules (in order) and allow the standard
    /// nodes; privileged containers keep all. A `linux.devices` node is made, not allowed:
    /// as under runc, its use needs a rule (engines write one beside it). On v2 device
    /// control needs an eBPF program, which wharf does not load yet.
    fn restrict_devices(
        &self,
        privileged: bool,
        resources: Option<&LinuxResources>,
    ) -> Result<(), NativeError> {
        if self.v2 || privileged {
            return Ok(());
        }
        let Some(dir) = self.dir_for("devices") else {
            return Ok(());
        };
        write(&dir.join("devices.deny"), "a")?;
        for rule in resources
            .and_then(|r| r.devices().as_ref())
            .into_iter()
            .flatten()
        {
            let file = if rule.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write(&dir.join(file), &device_rule(rule))?;
        }
        for rule in ALLOWED_DEVICES {
            write(&dir.join("devices.allow"), rule)?;
        }
        Ok(())
    }

    /// Move `pid` into every hierarchy of this cgroup.
    pub fn add(&self, pid: i32) -> Result<(), NativeError> {
        for d in &self.dirs {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The directories, for bind-mounting read-only into the container (v1: by controller).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// Whether the kernel OOM-killed a process of this cgroup.
    pub fn oom_killed(&self) -> bool {
        self.oom_kills() > 0
    }

    /// How many processes of this cgroup the kernel OOM-killed.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = self.dir_for("memory") else {
            return 0;
        };
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                })
            })
            .unwrap_or(0)
    }

    /// Every process in the cgroup (host pids).
    pub fn procs(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for d in &self.dirs {
            if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
                out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Kill anything left and remove the directories.
    pub fn destroy(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let procs = self.procs();
            if procs.is_empty() || Instant::now() > deadline {
                break;
            }
            // Frozen processes cannot die: thaw (again: a `pause` may have raced us).
            let _ = set_frozen(&self.dirs, self.v2, false);
            for p in procs {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            reap();
            std::thread::sleep(Duration::from_millis(5));
        }
        for d in &self.dirs {
            for _ in 0..100 {
                match fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}

impl Cgroup {
    /// Freeze or thaw every process in it.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), NativeError> {
        let dirs: Vec<PathBuf> = if self.v2 {
            self.dirs.clone()
        } else {
            self.dir_for("freezer")
                .map(Path::to_path_buf)
                .into_iter()
                .collect()
        };
        if dirs.is_empty() {
            return Err(NativeError::NoController("freezer"));
        }
        set_frozen(&dirs, self.v2, frozen)
    }

    /// Whether the freezer holds its processes.
    pub fn is_frozen(&self) -> bool {
        if self.v2 {
            return self.dirs.first().is_some_and(|d| {
                fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
            });
        }
        self.dir_for("freezer").is_some_and(|d| {
            fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
        })
    }

    /// Memory, pids and cpu figures (`events --stats`): whatever the hierarchy reports.
    pub fn stats(&self) -> serde_json::Value {
        let read = |c: &str, f: &str| -> Option<u64> {
            let d = self.dir_for(c)?;
            fs::read_to_string(d.join(f))
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        // cpu.stat (v2) in microseconds, as nanoseconds.
        let cpu_stat = |key: &str| -> Option<u64> {
            fs::read_to_string(self.dir_for("cpu")?.join("cpu.stat"))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .map(|u| u * 1000)
        };
        // cpuacct (v1) is mounted with cpu on most hosts, alone on some.
        let cpuacct = |f: &str| -> Option<u64> { read("cpuacct", f).or_else(|| read("cpu", f)) };
        let (mem, mem_limit, cpu, user, kernel) = if self.v2 {
            (
                read("memory", "memory.current"),
                read("memory", "memory.max"),
                cpu_stat("usage_usec "),
                cpu_stat("user_usec "),
                cpu_stat("system_usec "),
            )
        } else {
            (
                read("memory", "memory.usage_in_bytes"),
                read("memory", "memory.limit_in_bytes"),
                cpuacct("cpuacct.usage"),
                cpuacct("cpuacct.usage_user"),
                cpuacct("cpuacct.usage_sys"),
            )
        };
        serde_json::json!({
            "cgroup_version": if self.v2 { 2 } else { 1 },
            "cpu": {"usage": {"total": cpu.unwrap_or(0), "user": user.unwrap_or(0), "kernel": kernel.unwrap_or(0)}},
            "memory": {"usage": {"usage": mem.unwrap_or(0), "limit": mem_limit.unwrap_or(0)}, "oom_kill": self.oom_kills()},
            "pids": {"current": read("pids", "pids.current").unwrap_or(0), "limit": read("pids", "pids.max").unwrap_or(0)},
        })
    }
}

/// Reap exited children: wharf is the subreaper of its container's orphans, and a zombie
/// still counts as a member of its cgroup.
fn reap() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while let Ok(status) = waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Remove the cgroup of container `id` if it is still there (after a crash).
pub fn remove_stale(id: &str) {
    Cgroup::of_container(id).destroy();
}

/// Container `id`'s `cgroup.procs` files, opened for writing (`exec` opens them on the
/// host's paths before it enters the container, and moves its child in later).
pub fn procs_files(id: &str) -> Result<Vec<(PathBuf, fs::File)>, NativeError> {
    let dirs: Vec<PathBuf> = if is_v2() {
        vec![Path::new(ROOT).join("wharf").join(id)]
    } else {
        V1_CONTROLLERS
            .iter()
            .map(|c| Path::new(ROOT).join(c).join("wharf").join(id))
            .collect()
    };
    procs_files_in(&dirs)
}

/// The `cgroup.procs` files of the cgroup whose directories are `dirs`, opened for writing.
pub fn procs_files_in(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, fs::File)>, NativeError> {
    dirs.iter()
        .filter(|d| d.exists())
        .map(|d| {
            let p = d.join("cgroup.procs");
            fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .map(|f| (p.clone(), f))
                .map_err(|e| err(&p, e))
        })
        .collect()
}

/// Move `pid` into the cgroups whose `cgroup.procs` files are `files`.
pub fn join(files: &[(PathBuf, fs::File)], pid: i32) -> Result<(), NativeError> {
    for (p, f) in files {
        io::Write::write_all(&mut &*f, pid.to_string().as_bytes()).map_err(|e| err(p, e))?;
    }
    Ok(())
}

/// Freeze (`pause`) or thaw (`unpause`) container `id`'s processes: the v1 freezer, or v2's
/// `cgroup.freeze`. Returns once the kernel says they are frozen (or thawed).
pub fn freeze(id: &str, frozen: bool) -> Result<(), NativeError> {
    let v2 = is_v2();
    let dirs = if v2 {
        vec![Path::new(ROOT).join("wharf").join(id)]
    } else {
        vec![Path::new(ROOT).join("freezer").join("wharf").join(id)]
    };
    if !dirs[0].exists() {
        return Err(NativeError::NoController("freezer"));
    }
    set_frozen(&dirs, v2, frozen)
}

fn set_frozen(dirs: &[PathBuf], v2: bool, frozen: bool) -> Result<(), NativeError> {
    let (file, value, done) = match (v2, frozen) {
        (true, true) => ("cgroup.freeze", "1", "frozen 1"),
        (true, false) => ("cgroup.freeze", "0", "frozen 0"),
        (false, true) => ("freezer.state", "FROZEN", "FROZEN"),
        (false, false) => ("freezer.state", "THAWED", "THAWED"),
    };
    let Some(dir) = dirs.iter().find(|d| d.join(file).exists()) else {
        return Ok(());
    };
    write(&dir.join(file), value)?;
    // v1 passes through FREEZING; v2 reports in cgroup.events.
    let (check, deadline) = (
        if v2 { "cgroup.events" } else { "freezer.state" },
        Instant::now() + Duration::from_secs(5),
    );
    while Instant::now() < deadline {
        let now = fs::read_to_string(dir.join(check)).unwrap_or_default();
        if now.lines().any(|l| l.trim() == done) {
            return Ok(());
        }
        if !v2 && frozen {
            // Retry: a fork in flight can leave the cgroup FREEZING.
            let _ = fs::write(dir.join(file), value);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(err(
        &dir.join(check),
        io::Error::other(format!("the cgroup did not become {value}")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: serde_json::Value) -> oci_spec::runtime::LinuxDeviceCgroup {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn device_rules_read_as_the_controller_reads_them() {
        let all = rule(serde_json::json!({"allow": false, "access": "rwm"}));
        assert_eq!(device_rule(&all), "a *:* rwm");
        let null = rule(serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3}));
        assert_eq!(device_rule(&null), "c 1:3 rwm", "no access means rwm");
        let any_minor =
            rule(serde_json::json!({"allow": true, "type": "b", "major": 8, "access": "r"}));
        assert_eq!(device_rule(&any_minor), "b 8:* r");
        let unbuffered =
            rule(serde_json::json!({"allow": true, "type": "u", "major": 4, "minor": 1}));
        assert_eq!(device_rule(&unbuffered), "c 4:1 rwm");
    }
}
