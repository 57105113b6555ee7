//! The one native process path: what `wharf run` (through [`super::run`]) and
//! `wharf-runtime create` (through [`super::create::create`]) both do to start a
//! container's first process, so they cannot disagree on namespaces or confinement. The
//! checks before anything is made ([`preflight`]), the namespaces a spec asks for
//! ([`namespaces`]), whether it is privileged, and the launch itself ([`launch`]): clone the
//! child plan into its namespaces (born in a pod's pid namespace if the spec names one),
//! let the caller put it in its cgroup (and, rootless, write its id maps), then let it go.
//! What differs between the two doors is only where the root filesystem comes from
//! (image layers or a bundle), the exec FIFO `create` leaves the process waiting on, and
//! who waits for it.

use std::os::fd::OwnedFd;

use nix::fcntl::{OFlag, open};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use super::{NativeError, child, clone_child, pipe, threads};
use crate::bundle;

/// A refusal of something the spec asks that wharf does not do (never silently skipped).
pub(super) fn unsupported(what: String) -> NativeError {
    NativeError::Child {
        code: 125,
        message: what,
    }
}

/// Before anything of a container is made: wharf is single-threaded (a clone from a
/// threaded process could inherit a held lock), runs from a sealed executable
/// (CVE-2019-5736), and the spec asks nothing that would change the host (sysctls
/// outside the container's namespaces) or that wharf does not do.
pub(super) fn preflight(spec: &Spec) -> Result<(), NativeError> {
    let n = threads();
    if n > 1 {
        return Err(NativeError::Threads(n));
    }
    super::seal::require_protected()?;
    bundle::sysctl::check(spec)?;
    let linux = spec.linux().as_ref();
    let new_userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let has = |m: Option<&Vec<LinuxIdMapping>>| m.is_some_and(|m| !m.is_empty());
    let (uids, gids) = (
        has(linux.and_then(|l| l.uid_mappings().as_ref())),
        has(linux.and_then(|l| l.gid_mappings().as_ref())),
    );
    if new_userns && !(uids && gids) {
        return Err(unsupported(
            "a new user namespace needs linux.uidMappings and linux.gidMappings".into(),
        ));
    }
    if !new_userns && (uids || gids) {
        return Err(unsupported(
            "linux.uidMappings/gidMappings are given, but linux.namespaces makes no user namespace"
                .into(),
        ));
    }
    for d in devices(spec) {
        super::mounts::check_device(d).map_err(unsupported)?;
    }
    super::mounts::rootfs_propagation(spec).map_err(unsupported)?;
    Ok(())
}

/// The spec's `linux.devices`: nodes made in the container (and allowed by its cgroup).
pub(super) fn devices(spec: &Spec) -> &[oci_spec::runtime::LinuxDevice] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default()
}

/// Whether the spec grants every capability (`--privileged`): its cgroup then allows
/// every device.
pub(super) fn is_privileged(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.len() >= bundle::security::ALL_CAPABILITIES.len())
}

/// The namespaces a spec asks for.
pub(super) struct Namespaces {
    /// New namespaces, as clone flags (the cgroup namespace is made by the child once it
    /// is in its cgroup, so it is not among them).
    pub flags: CloneFlags,
    /// Namespaces to join, by the spec's `path`s (entered by the child first).
    pub joins: Vec<(OwnedFd, CloneFlags)>,
    /// A pid namespace to be born in (a pod's): a process enters one only when made.
    pub pid: Option<OwnedFd>,
    /// A network namespace other than the host's (made, or joined by path): sysfs is
    /// mounted afresh and loopback brought up; on the host's, /sys is the host's, read-only.
    pub private_network: bool,
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

/// The namespaces `spec` asks for; `rootless` adds a user namespace of wharf's own (made
/// first, owning the others), which maps the caller to root.
pub(super) fn namespaces(spec: &Spec, rootless: bool) -> Result<Namespaces, NativeError> {
    let mut ns = Namespaces {
        flags: CloneFlags::empty(),
        joins: Vec::new(),
        pid: None,
        private_network: false,
    };
    for n in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        let flag = ns_flag(n.typ());
        if flag.is_empty() {
            return Err(unsupported(format!(
                "the {:?} namespace is not supported here",
                n.typ()
            )));
        }
        ns.private_network |= n.typ() == LinuxNamespaceType::Network;
        match n.path() {
            None => ns.flags |= flag,
            Some(path) => {
                if n.typ() == LinuxNamespaceType::User {
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
                if n.typ() == LinuxNamespaceType::Mount && same_file(&fd, "/proc/self/ns/mnt") {
                    return Err(unsupported(format!(
                        "{} is wharf's own mount namespace: a container's root file system would be mounted over the host's",
                        path.display()
                    )));
                }
                if n.typ() == LinuxNamespaceType::Pid {
                    ns.pid = Some(fd);
                } else {
                    ns.joins.push((fd, flag));
                }
            }
        }
    }
    // A mount namespace made or joined by path (then the root filesystem is set up in the
    // joined one, as runc does); never the host's own.
    if !ns.flags.contains(CloneFlags::CLONE_NEWNS)
        && !ns.joins.iter().any(|(_, f)| *f == CloneFlags::CLONE_NEWNS)
    {
        return Err(unsupported(
            "a container needs a mount namespace (linux.namespaces has no \"mount\")".into(),
        ));
    }
    ns.flags.remove(CloneFlags::CLONE_NEWCGROUP);
    if rootless {
        ns.flags |= CloneFlags::CLONE_NEWUSER;
    }
    Ok(ns)
}

/// Whether the spec makes a user namespace with its own id maps (which the parent
/// writes once the child is cloned, [`write_id_maps`]; the child waits for them).
pub(super) fn maps_ids(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.uid_mappings().as_ref())
        .is_some_and(|m| !m.is_empty())
}

/// Writes the spec's uid and gid maps for the child `pid`'s new user namespace (as root:
/// any ranges, `setgroups` left allowed).
pub(super) fn write_id_maps(spec: &Spec, pid: Pid) -> Result<(), NativeError> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let text: String = maps
            .iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = std::path::PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, text).map_err(|source| NativeError::State { path, source })?;
    }
    Ok(())
}

/// Whether `fd` is the file at `path` (same device and inode).
fn same_file(fd: &OwnedFd, path: &str) -> bool {
    match (nix::sys::stat::fstat(fd), nix::sys::stat::stat(path)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// A launched first process: its pid, and the read end of its error pipe (closed by its
/// exec; what is in it is a setup failure: a code, then the message).
pub(super) struct Launched {
    pub pid: Pid,
    pub errors: OwnedFd,
}

/// Clone `plan` into `ns` (its `go` and `errors` are the child's ends of the pipes whose
/// other ends are given here), then `place` it (its cgroup; rootless, its id maps; a
/// network's wiring) and let it go. If placing fails the child is killed and reaped and
/// nothing of it runs. `stack` is the child's stack size.
pub(super) fn launch(
    plan: &child::ChildPlan<'_>,
    ns: &Namespaces,
    go: OwnedFd,
    errors: OwnedFd,
    stack: usize,
    place: impl FnOnce(Pid) -> Result<(), NativeError>,
) -> Result<Launched, NativeError> {
    let pid = match &ns.pid {
        None => clone_child(plan, ns.flags, stack)?,
        Some(target) => in_pid_namespace(target, || clone_child(plan, ns.flags, stack))?,
    };
    if let Err(e) = place(pid) {
        // Its "go" pipe closes unwritten: the child gives up; it is killed to be sure.
        drop(go);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    let _ = nix::unistd::write(&go, b"g");
    Ok(Launched { pid, errors })
}

/// A pipe's (read, write) ends.
pub(super) type Pipe = (OwnedFd, OwnedFd);

/// The two pipes of a launch: "go" and errors.
pub(super) fn pipes() -> Result<(Pipe, Pipe), NativeError> {
    Ok((pipe()?, pipe()?))
}

/// Runs `clone` with this process's children made in the pid namespace `target`, then
/// points them back at its own (hooks and helpers started later stay on the host).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        let mut base = serde_json::to_value(Spec::default()).unwrap();
        base["linux"]["namespaces"] = json;
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn the_spec_says_which_namespaces() {
        let s = spec(serde_json::json!([
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "cgroup"}
        ]));
        let ns = namespaces(&s, false).unwrap();
        assert_eq!(
            ns.flags,
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWNS,
            "the cgroup namespace is the child's to make"
        );
        assert!(ns.private_network && ns.joins.is_empty() && ns.pid.is_none());
        let rootless = namespaces(&s, true).unwrap();
        assert!(rootless.flags.contains(CloneFlags::CLONE_NEWUSER));
        // The host's network: no network namespace.
        let host = spec(serde_json::json!([{"type": "mount"}, {"type": "pid"}]));
        assert!(!namespaces(&host, false).unwrap().private_network);
    }

    #[test]
    fn namespaces_are_joined_by_path_and_a_mount_namespace_is_required() {
        let s = spec(serde_json::json!([
            {"type": "mount"}, {"type": "network", "path": "/proc/self/ns/net"}
        ]));
        let ns = namespaces(&s, false).unwrap();
        assert_eq!(ns.joins.len(), 1);
        assert_eq!(ns.joins[0].1, CloneFlags::CLONE_NEWNET);
        assert!(ns.private_network, "a joined network is not the host's");
        assert!(!ns.flags.contains(CloneFlags::CLONE_NEWNET));
        let Err(e) = namespaces(&spec(serde_json::json!([{"type": "pid"}])), false) else {
            panic!("no mount namespace accepted");
        };
        assert!(e.to_string().contains("mount namespace"), "{e}");
        let Err(e) = namespaces(
            &spec(serde_json::json!([{"type": "mount"}, {"type": "network", "path": "/nope"}])),
            false,
        ) else {
            panic!("a missing namespace path accepted");
        };
        assert!(e.to_string().contains("/nope"), "{e}");
    }
}
