//! Native Linux containers from wharf's own code (no runc underneath): namespaces (mount,
//! pid, uts, ipc, net, cgroup), an overlay root with `pivot_root`, the standard mounts with
//! masked and read-only paths, capabilities, `no_new_privs`, seccomp, cgroup limits, and
//! signals forwarded to the container's pid 1.
//!
//! Process model: the container is cloned straight from the `wharf` process, which has no
//! threads at that point (checked, not assumed); the child only sets up and execs. The
//! parent waits, forwards signals, reports the exit (128+N for signal N, 137 with a message
//! for an OOM kill) and removes the cgroup and the container's directory. Mounts live only
//! in the container's mount namespace, so nothing is left on the host when it ends.

pub mod cgroups;
mod child;
pub mod create;
pub mod exec;
pub mod init;
mod launch;
pub mod seal;

pub use child::Overrides;
mod mounts;
pub use mounts::{hide_root, show_root_read_only, show_stopped_root};
mod seccomp;
mod tty;
mod user;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sched::CloneFlags;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use super::Exit;
use crate::bundle;
use crate::image::unpack::{LayerDir, WhiteoutFormat};

/// Why a native container could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error(
        "wharf has {0} threads; native containers are cloned only from a single-threaded process"
    )]
    Threads(usize),
    /// (The cause is in the message, not a source: callers print a chain.)
    #[error("cgroup {path}: {cause}")]
    Cgroup {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the {0} cgroup controller is not available")]
    NoController(&'static str),
    #[error("preparing {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("clone: {0}")]
    Clone(#[source] nix::Error),
    #[error("{message}")]
    Child { code: u8, message: String },
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error(transparent)]
    Sysctl(#[from] crate::bundle::sysctl::SysctlError),
    #[error(
        "refusing to start a process inside a container from an executable a container could rewrite through /proc/self/exe (CVE-2019-5736): run from a sealed executable first (backend::native::seal::ensure_sealed)"
    )]
    Unsealed,
}

impl NativeError {
    /// Docker's exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            NativeError::Child { code, .. } => *code,
            _ => 125,
        }
    }
}

/// A failure inside the child before exec (reported through the error pipe).
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("container setup failed: {0}")]
    Setup(String),
    #[error("{0}")]
    User(String),
    #[error("exec: {0}: no such file or directory in the container")]
    NotFound(String),
    #[error("exec: {0}")]
    CannotInvoke(String),
}

impl ChildError {
    fn exit_code(&self) -> u8 {
        match self {
            ChildError::Setup(_) => 125,
            ChildError::User(_) | ChildError::CannotInvoke(_) => 126,
            ChildError::NotFound(_) => 127,
        }
    }
}

/// One native container run.
pub struct NativeRun<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub layers: &'a [LayerDir],
    pub layers_dir: &'a Path,
    /// Where compiled seccomp filters are kept between runs (none: compiled every run).
    pub cache_dir: Option<&'a Path>,
    /// The container's directory (`ROOT/containers/<id>`): its upper directory persists
    /// there between runs; runtime files are rewritten each run.
    pub state_dir: &'a Path,
    /// `-i`: the container reads wharf's stdin (else `/dev/null`, as Docker).
    pub interactive: bool,
    /// `-t`: the container's stdio is a pseudo-terminal wharf relays.
    pub tty: bool,
    /// Not root: a user namespace maps the caller's uid to 0; cgroup limits are skipped; the
    /// image is copied when its layers cannot be stacked with overlayfs.
    pub rootless: bool,
    /// Called with the container's first pid (as the host sees it) once its process runs.
    pub started: &'a dyn Fn(i32),
}

/// The spec's seccomp profile compiled to BPF, before clone or fork: the child then loads
/// it with one system call per filter instead of building it (building allocates, and takes
/// milliseconds). Kept in `cache` keyed by the profile, so later runs only read it.
fn compile_seccomp(spec: &Spec, cache: Option<&Path>) -> Result<Option<seccomp::Bpf>, NativeError> {
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    seccomp::compile_cached(profile, cache)
        .map(Some)
        .map_err(|e| NativeError::Child {
            code: 125,
            message: e.to_string(),
        })
}

/// The pid signals are forwarded to (0: none yet).
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; pid is our child's.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 and SIGWINCH to `pid` (wharf to the
/// container's pid 1; `--init` to the workload).
fn forward_signals_to(pid: Pid) {
    CHILD.store(pid.as_raw(), Ordering::SeqCst);
    let handler = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        // SAFETY: `forward` only reads an atomic and calls kill, both async-signal-safe.
        let _ = unsafe { sigaction(sig, &handler) };
    }
}

pub(crate) use crate::sys::thread_count as threads;

/// Run the container in the foreground; returns how it ended.
pub fn run(r: NativeRun<'_>) -> Result<Exit, NativeError> {
    launch::preflight(r.spec)?;
    let state_dir = r.state_dir;
    for d in ["rootfs", "upper", "work"] {
        std::fs::create_dir_all(state_dir.join(d)).map_err(|source| NativeError::State {
            path: state_dir.join(d),
            source,
        })?;
    }
    run_in(&r, state_dir)
}

/// Freeze or thaw container `id` (`pause`, `unpause`).
pub fn freeze(id: &str, frozen: bool) -> Result<(), NativeError> {
    cgroups::freeze(id, frozen)
}

/// Remove what a container whose supervisor was killed left on the host: its cgroup (its
/// mounts lived in its own mount namespace and went with it).
pub fn clean_up(id: &str) {
    cgroups::remove_stale(id);
}

fn run_in(r: &NativeRun<'_>, state_dir: &Path) -> Result<Exit, NativeError> {
    let spec = r.spec;
    let ns = launch::namespaces(spec, r.rootless)?;
    let private_network = ns.private_network;
    let hostname = spec
        .hostname()
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| r.id.chars().take(12).collect());
    // A network's namespace comes with its hosts and resolv.conf, written by the network
    // module; others get Docker's defaults.
    let joined_network = bundle::network_namespace_path(spec).is_some();
    let etc = if joined_network {
        mounts::write_hostname(state_dir, &hostname)
    } else if bundle::pasta_ports(spec).is_some() {
        // pasta copies the host's addresses and routes: the host's name servers work too.
        mounts::write_etc_files(state_dir, &hostname, false).and_then(|()| {
            std::fs::write(
                state_dir.join("resolv.conf"),
                crate::network::host_resolv_conf(),
            )
        })
    } else {
        mounts::write_etc_files(state_dir, &hostname, !private_network)
    };
    // `--add-host`, `--dns*`: over what was written (a network's files carry them already).
    let names: Option<crate::run::options::NameOptions> = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(bundle::ANNOTATION_NAMES))
        .and_then(|j| serde_json::from_str(j).ok());
    let etc = etc.and_then(|()| match names.filter(|_| !joined_network) {
        Some(n) => n.apply_to(state_dir),
        None => Ok(()),
    });
    etc.map_err(|source| NativeError::State {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let cgroup = if r.rootless {
        if resources.is_some_and(has_limits) {
            eprintln!(
                "wharf: warning: cgroup limits skipped: cgroups are not delegated to this user"
            );
        }
        None
    } else {
        // Left by a supervisor that was killed before it could remove it.
        cgroups::remove_stale(r.id);
        Some(cgroups::Cgroup::create(
            r.id,
            resources,
            launch::is_privileged(spec),
        )?)
    };
    let copy_root = r
        .layers
        .iter()
        .any(|l| l.whiteouts != WhiteoutFormat::Overlay);
    let copied = std::fs::read_dir(state_dir.join("rootfs")).is_ok_and(|mut d| d.next().is_some());
    if copy_root && !copied {
        eprintln!(
            "wharf: note: layers unpacked without privilege cannot be stacked with overlayfs; copying the image into the container"
        );
        let dest = state_dir.join("rootfs");
        let dir = cap_std::fs::Dir::open_ambient_dir(&dest, cap_std::ambient_authority()).map_err(
            |source| NativeError::State {
                path: dest.clone(),
                source,
            },
        )?;
        crate::image::unpack::flatten(r.layers, &dir).map_err(|e| NativeError::State {
            path: dest.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    let result = supervise(r, state_dir, cgroup.as_ref(), hostname, ns, copy_root);
    if let Some(cg) = &cgroup {
        cg.destroy();
    }
    result
}

fn has_limits(r: &oci_spec::runtime::LinuxResources) -> bool {
    r.memory().as_ref().and_then(|m| m.limit()).is_some() || r.pids().is_some() || r.cpu().is_some()
}

/// Map the caller's uid and gid to 0 in the child's user namespace: through newuidmap and
/// newgidmap with the caller's subordinate ranges when it has them, else the single id,
/// with `setgroups` denied first (an unprivileged writer must, CVE-2014-8989).
fn map_ids(pid: Pid) -> Result<(), NativeError> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let write = |file: &str, value: String| {
        std::fs::write(proc.join(file), value).map_err(|source| NativeError::State {
            path: proc.join(file),
            source,
        })
    };
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let range = |file: &str| -> Option<(u32, u32)> {
        let name = user.as_deref()?;
        std::fs::read_to_string(file).ok()?.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() == 3 && (f[0] == name || f[0] == uid.to_string()) {
                Some((f[1].parse().ok()?, f[2].parse().ok()?))
            } else {
                None
            }
        })
    };
    let helpers = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"]
        .iter()
        .all(|p| Path::new(p).exists());
    if let (true, Some((us, uc)), Some((gs, gc))) =
        (helpers, range("/etc/subuid"), range("/etc/subgid"))
    {
        for (tool, id, start, count) in [
            ("/usr/bin/newuidmap", uid, us, uc),
            ("/usr/bin/newgidmap", gid, gs, gc),
        ] {
            let ok = std::process::Command::new(tool)
                .args([
                    pid.to_string(),
                    "0".into(),
                    id.to_string(),
                    "1".into(),
                    "1".into(),
                    start.to_string(),
                    count.to_string(),
                ])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(NativeError::State {
                    path: PathBuf::from(tool),
                    source: std::io::Error::other("mapping ids failed"),
                });
            }
        }
        return Ok(());
    }
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {uid} 1\n"))?;
    write("gid_map", format!("0 {gid} 1\n"))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), NativeError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(NativeError::Clone)
}

fn supervise(
    r: &NativeRun<'_>,
    state_dir: &Path,
    cgroup: Option<&cgroups::Cgroup>,
    hostname: String,
    mut ns: launch::Namespaces,
    copy_root: bool,
) -> Result<Exit, NativeError> {
    let ((go_r, go_w), (err_r, err_w)) = launch::pipes()?;
    let wants_init = r
        .spec
        .annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key(bundle::ANNOTATION_INIT));
    // -t: the child opens the terminal inside the container (its own devpts, so
    // /dev/pts/N names it there) and sends the master side back over this socket.
    let (tty_parent, tty_child) = if r.tty {
        let (p, c) = tty::socketpair().map_err(NativeError::Clone)?;
        (Some(p), Some(c))
    } else {
        (None, None)
    };
    let seccomp = compile_seccomp(r.spec, r.cache_dir)?;
    let plan = child::ChildPlan {
        rootfs: mounts::RootfsPlan {
            spec: r.spec,
            layers: r.layers,
            layers_dir: r.layers_dir,
            state_dir,
            cgroup_dirs: cgroup.map_or(&[], |c| c.dirs()),
            cgroup_v2: cgroup.is_some_and(|c| c.is_v2()),
            private_network: ns.private_network,
            copy_root,
            bundle_rootfs: None,
        },
        spec: r.spec,
        hostname,
        interactive: r.interactive,
        rootless: r.rootless,
        tty: tty_child,
        init: wants_init,
        go: go_r,
        errors: err_w,
        seccomp,
        detached: false,
        gate: None,
        joins: std::mem::take(&mut ns.joins),
        in_place: None,
        keyring: Some(child::session_keyring_name(r.id)),
    };
    // Orphans of the container (its pid 1 gone) are reparented to wharf, which reaps them:
    // a zombie would otherwise keep the cgroup from being removed.
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER and an integer has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) };
    // `--network pasta`: the namespace is wired before the workload runs, and unwired
    // (pasta stopped) when this returns.
    let mut pasta = None;
    let launched = launch::launch(&plan, &ns, go_w, err_r, 1 << 20, |pid| {
        forward_signals_to(pid);
        if let Some(cg) = cgroup {
            cg.add(pid.as_raw())?;
        }
        if r.rootless {
            map_ids(pid)?;
        } else if launch::maps_ids(r.spec) {
            launch::write_id_maps(r.spec, pid)?;
        }
        if let Some(ports) = bundle::pasta_ports(r.spec) {
            let ports = crate::network::pasta::choose_ports(&ports);
            pasta = Some(crate::network::pasta::start(
                pid.as_raw(),
                r.rootless,
                &ports,
                &state_dir.join(crate::network::pasta::PID_FILE),
            )?);
        }
        Ok(())
    });
    drop(plan);
    let launched = launched.inspect_err(|_| CHILD.store(0, Ordering::SeqCst))?;
    let pid = launched.pid;
    // Nothing comes if the child failed first: its error is in the error pipe.
    let relay = tty_parent
        .and_then(|s| tty::receive_fd(&s))
        .map(|m| tty::Relay::start(m, r.interactive));
    let status = await_child(pid, launched.errors, relay, || (r.started)(pid.as_raw()))?;
    drop(pasta);
    Ok(match status {
        Ok(WaitStatus::Signaled(_, Signal::SIGKILL, _))
            if cgroup.is_some_and(|c| c.oom_killed()) =>
        {
            Exit {
                code: 137,
                message: Some(super::OOM_KILLED.into()),
            }
        }
        other => exit_of(other),
    })
}

/// Clone the container's first process into `flags`' new namespaces, on a stack of
/// `stack_size` bytes; it runs `child::main(plan)`. The caller is single-threaded (checked
/// by `run` and `create`).
fn clone_child(
    plan: &child::ChildPlan<'_>,
    flags: CloneFlags,
    stack_size: usize,
) -> Result<Pid, NativeError> {
    let mut stack = vec![0u8; stack_size];
    // SAFETY: the caller is single-threaded, so the child's copy of the address space has no
    // lock held by another thread; the child only sets up and execs (or runs the wasm engine
    // and exits) and never returns into the parent's frames.
    unsafe {
        nix::sched::clone(
            Box::new(|| child::main(plan)),
            &mut stack,
            flags,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(NativeError::Clone)
}

/// Follow a child cloned or forked to exec: its error pipe closes on exec (anything in it
/// is a setup failure, returned as the error); `started` is called once it exec'd; then
/// wait for it (signals stop being forwarded) and let the terminal relay finish.
fn await_child(
    pid: Pid,
    errors: OwnedFd,
    relay: Option<tty::Relay>,
    started: impl FnOnce(),
) -> Result<nix::Result<WaitStatus>, NativeError> {
    let mut report = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::fs::File::from(errors), &mut report);
    if report.is_empty() {
        started();
    }
    // The terminal is relayed on this thread until the container's side closes (its last
    // process gone), then the process is reaped.
    if let Some(relay) = relay {
        relay.finish(pid);
    }
    let status = loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    CHILD.store(0, Ordering::SeqCst);
    if let Some((&code, message)) = report.split_first() {
        return Err(NativeError::Child {
            code,
            message: String::from_utf8_lossy(message).into_owned(),
        });
    }
    Ok(status)
}

/// Docker's exit code for how a process ended: its own code, or 128+N for signal N.
fn exit_of(status: nix::Result<WaitStatus>) -> Exit {
    match status {
        Ok(WaitStatus::Exited(_, code)) => Exit::code((code & 0xff) as u8),
        Ok(WaitStatus::Signaled(_, sig, _)) => Exit::code(128 + sig as u8),
        other => Exit {
            code: 125,
            message: Some(format!("waiting for the process: {other:?}")),
        },
    }
}
