//! `wharf-runtime create` for a native bundle: set the container up completely (its
//! namespaces, cgroup, root filesystem, mounts, user, capabilities) and leave its first
//! process waiting on the exec FIFO until `start`. Unlike `run`, nothing here waits for the
//! container: once the child says it is set up, the pid is returned and the caller (a
//! subreaper: conmon, containerd's shim) becomes its parent when `create` exits.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::{NativeError, cgroups, child, clone_child, compile_seccomp, mounts, pipe, threads};
use crate::bundle;

/// One container to create from a bundle.
pub struct NativeCreate<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    /// The bundle's root filesystem (absolute, checked to be a directory).
    pub rootfs: &'a Path,
    /// The runtime's state directory for this container (holds `exec.fifo`).
    pub state_dir: &'a Path,
    /// `--console-socket`: connected; the pseudo-terminal's master side is sent over it.
    pub console: Option<OwnedFd>,
    /// Where compiled seccomp filters are kept between calls.
    pub cache_dir: Option<&'a Path>,
    /// A wasm bundle: the engine, run in the container's first process in place of exec.
    pub in_place: Option<&'a (dyn Fn() -> u8 + 'a)>,
    /// Give the container a session keyring of its own (not: `--no-new-keyring`).
    pub new_keyring: bool,
}

/// What `create` made.
#[derive(Debug)]
pub struct Created {
    /// The container's first process, as the host sees it.
    pub pid: i32,
    /// Its cgroup directories (one per v1 controller, or the v2 one).
    pub cgroup_dirs: Vec<PathBuf>,
}

fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Time => CloneFlags::empty(),
    }
}

fn unsupported(what: String) -> NativeError {
    NativeError::Child {
        code: 125,
        message: what,
    }
}

/// The cgroup a spec asks for: `cgroupsPath` (`/a/b`, or systemd's `slice:prefix:name`,
/// kept as the same place under cgroupfs), else `wharf-runtime/<id>`.
fn cgroup_path(spec: &Spec, id: &str) -> Result<PathBuf, NativeError> {
    let asked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    let rel = match asked.as_deref() {
        None | Some("") => format!("wharf-runtime/{id}"),
        Some(p) if !p.starts_with('/') && p.matches(':').count() == 2 => {
            let mut parts = p.splitn(3, ':');
            let (slice, prefix, name) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let slice = if slice.is_empty() {
                "system.slice"
            } else {
                slice
            };
            format!("{slice}/{prefix}-{name}.scope")
        }
        Some(p) => p.to_string(),
    };
    cgroups::clean_relative(&rel)
        .ok_or_else(|| unsupported(format!("cgroupsPath {rel:?} is not a usable cgroup path")))
}

/// Create the container; returns once its first process waits for `start`.
pub fn create(c: NativeCreate<'_>) -> Result<Created, NativeError> {
    let n = threads();
    if n > 1 {
        return Err(NativeError::Threads(n));
    }
    super::seal::require_protected()?;
    let spec = c.spec;
    bundle::sysctl::check(spec)?;
    let linux = spec.linux().as_ref();
    if linux
        .and_then(|l| l.uid_mappings().as_ref())
        .is_some_and(|m| !m.is_empty())
    {
        return Err(unsupported(
            "user namespaces with uid/gid mappings are not supported by wharf-runtime yet".into(),
        ));
    }
    // What is not done yet is refused, never skipped.
    if linux
        .and_then(|l| l.devices().as_ref())
        .is_some_and(|d| !d.is_empty())
    {
        return Err(unsupported(
            "linux.devices (extra device nodes) are not supported by wharf-runtime yet".into(),
        ));
    }
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_deref())
        && !matches!(p, "" | "private" | "rprivate")
    {
        return Err(unsupported(format!(
            "rootfsPropagation {p:?} is not supported by wharf-runtime yet (private only)"
        )));
    }
    let mut flags = CloneFlags::empty();
    let mut joins = Vec::new();
    let mut pid_ns = None;
    let mut private_network = false;
    for ns in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        let flag = ns_flag(ns.typ());
        if flag.is_empty() {
            return Err(unsupported(format!(
                "the {:?} namespace is not supported here",
                ns.typ()
            )));
        }
        match ns.path() {
            None => {
                flags |= flag;
                private_network |= ns.typ() == LinuxNamespaceType::Network;
            }
            Some(path) => {
                if ns.typ() == LinuxNamespaceType::User {
                    return Err(unsupported(format!(
                        "joining an existing user namespace ({}) is not supported yet",
                        path.display()
                    )));
                }
                let fd =
                    open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
                        NativeError::State {
                            path: path.clone(),
                            source: e.into(),
                        }
                    })?;
                // A process enters a pid namespace only when it is made: the parent
                // points its children there before the clone (a CRI pod sharing one).
                if ns.typ() == LinuxNamespaceType::Pid {
                    pid_ns = Some(fd);
                } else {
                    joins.push((fd, flag));
                }
            }
        }
    }
    if !flags.contains(CloneFlags::CLONE_NEWNS) {
        return Err(unsupported(
            "a container needs a mount namespace of its own".into(),
        ));
    }
    // The child makes its own cgroup namespace once it is in its cgroup.
    flags.remove(CloneFlags::CLONE_NEWCGROUP);

    let resources = linux.and_then(|l| l.resources().as_ref());
    let privileged = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.len() >= bundle::security::ALL_CAPABILITIES.len());
    let cgroup = cgroups::Cgroup::create_at(&cgroup_path(spec, c.id)?, resources, privileged)?;
    let result = match &pid_ns {
        None => clone_waiting(&c, &cgroup, flags, joins, private_network),
        Some(target) => in_pid_namespace(target, || {
            clone_waiting(&c, &cgroup, flags, joins, private_network)
        }),
    };
    match result {
        Ok(pid) => Ok(Created {
            pid,
            cgroup_dirs: cgroup.dirs().to_vec(),
        }),
        Err(e) => {
            cgroup.destroy();
            Err(e)
        }
    }
}

/// Runs `clone` with this process's children made in the pid namespace `target`, then points
/// them back at its own (hooks and helpers started later stay on the host).
fn in_pid_namespace<T>(
    target: &OwnedFd,
    clone: impl FnOnce() -> Result<T, NativeError>,
) -> Result<T, NativeError> {
    let state = |path: &str, e: nix::Error| NativeError::State {
        path: path.into(),
        source: e.into(),
    };
    let own = open(
        "/proc/self/ns/pid",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| state("/proc/self/ns/pid", e))?;
    nix::sched::setns(target, CloneFlags::CLONE_NEWPID)
        .map_err(|e| state("the pid namespace to join", e))?;
    let result = clone();
    nix::sched::setns(&own, CloneFlags::CLONE_NEWPID).map_err(|e| state("/proc/self/ns/pid", e))?;
    result
}

fn clone_waiting(
    c: &NativeCreate<'_>,
    cgroup: &cgroups::Cgroup,
    flags: CloneFlags,
    joins: Vec<(OwnedFd, CloneFlags)>,
    private_network: bool,
) -> Result<i32, NativeError> {
    let fifo_path = c.state_dir.join("exec.fifo");
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o600)).map_err(|e| {
        NativeError::State {
            path: fifo_path.clone(),
            source: e.into(),
        }
    })?;
    // Opened before clone, read-only and non-blocking: the child inherits it and waits for
    // a byte; `start` opens the write side (ENXIO if the child is gone).
    let fifo = open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| NativeError::State {
        path: fifo_path.clone(),
        source: e.into(),
    })?;
    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let seccomp = compile_seccomp(c.spec, c.cache_dir)?;
    let hostname = c.spec.hostname().clone().unwrap_or_default();
    let console = match &c.console {
        Some(fd) => Some(fd.try_clone().map_err(|e| NativeError::State {
            path: "console socket".into(),
            source: e,
        })?),
        None => None,
    };
    let plan = child::ChildPlan {
        rootfs: mounts::RootfsPlan {
            spec: c.spec,
            layers: &[],
            layers_dir: c.state_dir,
            state_dir: c.state_dir,
            cgroup_dirs: cgroup.dirs(),
            cgroup_v2: cgroup.is_v2(),
            private_network,
            copy_root: false,
            bundle_rootfs: Some(c.rootfs),
        },
        spec: c.spec,
        hostname,
        interactive: true,
        rootless: false,
        tty: console,
        init: false,
        go: go_r,
        errors: err_w,
        seccomp,
        detached: true,
        gate: Some(fifo),
        joins,
        in_place: c.in_place,
        keyring: c.new_keyring.then(|| child::session_keyring_name(c.id)),
    };
    // The engine (a wasm bundle) runs on the child's stack: room for its deepest guest stack.
    let stack = if c.in_place.is_some() {
        8 << 20
    } else {
        1 << 20
    };
    let pid = clone_child(&plan, flags, stack)?;
    drop(plan);
    let kill = || {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    };
    if let Err(e) = cgroup.add(pid.as_raw()) {
        kill();
        return Err(e);
    }
    let _ = nix::unistd::write(&go_w, b"g");
    drop(go_w);
    // One NUL byte: set up and waiting. Anything else: the child's error (code, message).
    let mut report = Vec::new();
    let mut file = std::fs::File::from(err_r);
    let mut first = [0u8; 1];
    let got = std::io::Read::read(&mut file, &mut first).unwrap_or(0);
    if got == 1 && first[0] == 0 {
        return Ok(pid.as_raw());
    }
    report.extend_from_slice(&first[..got]);
    let _ = std::io::Read::read_to_end(&mut file, &mut report);
    kill();
    let (code, message) = match report.split_first() {
        Some((code, msg)) => (*code, String::from_utf8_lossy(msg).into_owned()),
        None => (
            125,
            "the container's first process died while being set up".into(),
        ),
    };
    Err(NativeError::Child { code, message })
}

/// The start half: release the waiting process of a created container by writing to its
/// exec FIFO (then removed, so the container no longer counts as created).
pub fn start(state_dir: &Path) -> Result<(), NativeError> {
    let fifo_path = state_dir.join("exec.fifo");
    let fd = open(
        &fifo_path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        let source = if e == nix::errno::Errno::ENXIO {
            std::io::Error::other("the container's first process is gone")
        } else {
            e.into()
        };
        NativeError::State {
            path: fifo_path.clone(),
            source,
        }
    })?;
    let _ = std::fs::remove_file(&fifo_path);
    nix::unistd::write(&fd, b"s").map_err(|e| NativeError::State {
        path: fifo_path.clone(),
        source: e.into(),
    })?;
    let _ = fd.as_raw_fd();
    Ok(())
}
