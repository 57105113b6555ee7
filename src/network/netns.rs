//! Persistent network namespaces (`/run/wharf/<root>/netns/<id>`, a bind mount of the namespace, as
//! `ip netns add` makes), and entering one from a wasm supervisor.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use super::NetworkError;

fn err(what: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> NetworkError {
    let what = what.into();
    move |e| NetworkError::Setup {
        what,
        reason: e.desc().to_string(),
    }
}

/// Make `dir` a shared mount point (once), so a namespace mounted in it and unmounted later
/// also goes from the copies other mount namespaces made meanwhile (a wasm supervisor's).
fn shared_dir(dir: &Path) -> Result<(), NetworkError> {
    fs::create_dir_all(dir).map_err(|source| NetworkError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let shared = |d: &Path| {
        mount(
            None::<&str>,
            d,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if is_mount_point(dir) {
        return shared(dir).map_err(err(format!("sharing {}", dir.display())));
    }
    mount(
        Some(dir),
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(err(format!("binding {}", dir.display())))?;
    shared(dir).map_err(err(format!("sharing {}", dir.display())))
}

fn is_mount_point(dir: &Path) -> bool {
    let (Ok(me), Some(Ok(parent))) = (fs::metadata(dir), dir.parent().map(fs::metadata)) else {
        return false;
    };
    use std::os::unix::fs::MetadataExt;
    if me.dev() != parent.dev() {
        return true;
    }
    // A bind mount of a directory onto itself keeps the device: ask mountinfo.
    let Ok(canonical) = fs::canonicalize(dir) else {
        return false;
    };
    fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(4) == canonical.to_str()))
}

/// Whether `path` is a mounted network namespace (not a leftover file after a reboot).
pub fn is_netns(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// Hold the lock on `dir`'s parent (wharf's own directory under /run) while the namespace
/// directory is mounted, filled, or emptied and unmounted: a creation never sees its
/// directory unmounted under it.
fn lock_parent(dir: &Path) -> Option<fs::File> {
    let parent = dir.parent()?;
    let _ = fs::create_dir_all(parent);
    fs::File::open(parent).ok().filter(|f| f.lock().is_ok())
}

/// Make a new network namespace and keep it at `path` (the file is created).
pub fn create(path: &Path) -> Result<(), NetworkError> {
    let dir = path.parent().expect("a namespace file has a directory");
    let lock = lock_parent(dir);
    shared_dir(dir)?;
    // One left by a run that was killed before recording it.
    if is_netns(path) {
        let _ = umount2(path, MntFlags::MNT_DETACH);
    }
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|source| NetworkError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    // The file keeps the directory from being unmounted by a `remove` now.
    drop(lock);
    // A child makes the namespace and mounts it over the file: the caller's own namespace
    // never changes, whatever threads it has.
    // SAFETY: the child only makes system calls (unshare, mount, _exit) and touches no lock
    // or allocation another thread could hold.
    let pid = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let ok = unshare(CloneFlags::CLONE_NEWNET).is_ok()
                && mount(
                    Some("/proc/self/ns/net"),
                    path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .is_ok();
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(e) => {
            let _ = fs::remove_file(path);
            return Err(err("forking to make a network namespace")(e));
        }
    };
    let ok = loop {
        match nix::sys::wait::waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => break true,
            _ => break false,
        }
    };
    if ok && is_netns(path) {
        Ok(())
    } else {
        let _ = fs::remove_file(path);
        Err(NetworkError::Setup {
            what: format!("making a network namespace at {}", path.display()),
            reason: "unshare or mount failed (wharf needs CAP_SYS_ADMIN for bridge networks)"
                .into(),
        })
    }
}

/// Unmount and remove the namespace at `path` (gone already is fine); the last one also
/// takes its directory's mount and the directory away (nothing stays mounted under /run
/// once no container has a network).
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = fs::remove_file(path);
    let Some(dir) = path.parent() else {
        return;
    };
    let _lock = lock_parent(dir);
    let empty = fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    if empty {
        if is_mount_point(dir) {
            let _ = umount2(dir, MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir(dir);
    }
}

/// The host's namespaces, kept by a process that entered a container's network: helpers it
/// starts (netavark, for teardown) go back to them.
static HOST: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();

/// Move this process into the network namespace at `netns`, in a mount namespace of its own
/// where `/etc/resolv.conf` and `/etc/hosts` are the container's (`etc`'s `resolv.conf` and
/// `hosts`), so libc's name lookups see the container's view. The process must be
/// single-threaded (a thread spawned earlier would stay in the host's namespace).
pub fn enter(netns: &Path, etc: &Path) -> Result<(), NetworkError> {
    let threads = crate::sys::thread_count();
    if threads > 1 {
        return Err(NetworkError::Setup {
            what: "joining the container's network".into(),
            reason: format!("wharf already runs {threads} threads (a bug: it must join first)"),
        });
    }
    let open = |p: &str| -> Result<OwnedFd, NetworkError> {
        fs::File::open(p)
            .map(OwnedFd::from)
            .map_err(|source| NetworkError::Io {
                path: PathBuf::from(p),
                source,
            })
    };
    let host = (open("/proc/self/ns/net")?, open("/proc/self/ns/mnt")?);
    let ns = open(&netns.display().to_string())?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(err("joining the network namespace"))?;
    let _ = HOST.set(host);
    unshare(CloneFlags::CLONE_NEWNS).map_err(err("making a mount namespace"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(err("making / a slave mount"))?;
    for name in ["resolv.conf", "hosts"] {
        let target = Path::new("/etc").join(name);
        if target.exists() {
            mount(
                Some(&etc.join(name)),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(err(format!("binding the container's {name}")))?;
        }
    }
    Ok(())
}

/// For a helper about to exec (after fork, before exec): go back to the host's network and
/// mount namespaces if this process left them.
pub fn back_to_host() -> std::io::Result<()> {
    if let Some((net, mnt)) = HOST.get() {
        setns(net.as_fd(), CloneFlags::CLONE_NEWNET)?;
        setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS)?;
    }
    Ok(())
}
