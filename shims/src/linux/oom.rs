//! TaskOOM while a container runs, not only when it ends: cgroup v1's OOM notification (an
//! eventfd registered in the memory cgroup's `cgroup.event_control` against
//! `memory.oom_control`), one small blocked thread per container, as runc's shim does with
//! its epoll. On cgroup v2 hosts the OOM-kill count is checked when the container exits.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The v1 memory cgroup directory of process `pid`, from `/proc/PID/cgroup`.
fn memory_cgroup(pid: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    memory_cgroup_in(&text)
}

fn memory_cgroup_in(proc_cgroup: &str) -> Option<PathBuf> {
    proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')))
    })
}

/// Calls `on_oom` for every OOM event of `pid`'s memory cgroup, from a thread that ends when
/// the cgroup is removed. Nothing is watched where there is no v1 memory cgroup.
pub fn watch(pid: u32, name: &str, on_oom: impl Fn() + Send + 'static) -> Result<(), String> {
    let dir = memory_cgroup(pid).ok_or("no cgroup v1 memory controller")?;
    let control = File::open(dir.join("memory.oom_control")).map_err(|e| e.to_string())?;
    // SAFETY: eventfd takes an initial value and flags, and returns a new descriptor.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if efd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: eventfd just returned this descriptor; nothing else owns it.
    let efd = File::from(unsafe { OwnedFd::from_raw_fd(efd) });
    std::fs::write(
        dir.join("cgroup.event_control"),
        format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
    )
    .map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name(format!("oom {name}"))
        .spawn(move || {
            let _control = control;
            let mut efd = efd;
            let mut count = [0u8; 8];
            // The kernel also signals the eventfd when the cgroup goes away.
            while efd.read_exact(&mut count).is_ok() {
                if !dir.join("memory.oom_control").exists() {
                    break;
                }
                on_oom();
            }
        })
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_memory_hierarchy() {
        let text = "12:pids:/k8s.io/abc\n7:memory:/k8s.io/abc\n3:cpu,cpuacct:/k8s.io/abc\n0::/\n";
        assert_eq!(
            memory_cgroup_in(text),
            Some(PathBuf::from("/sys/fs/cgroup/memory/k8s.io/abc"))
        );
        assert_eq!(memory_cgroup_in("0::/system.slice/x\n"), None);
    }
}
