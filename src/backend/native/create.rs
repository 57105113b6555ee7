//! `wharf-runtime create` for a native bundle: set the container up completely (its
//! namespaces, cgroup, root filesystem, mounts, user, capabilities) and leave its first
//! process waiting on the exec FIFO until `start`. Unlike `run`, nothing here waits for the
//! container: once the child says it is set up, the pid is returned and the caller (a
//! subreaper: conmon, containerd's shim) becomes its parent when `create` exits.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use super::{NativeError, cgroups, child, compile_seccomp, launch, mounts};

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
    cgroups::clean_relative(&rel).ok_or_else(|| {
        launch::unsupported(format!("cgroupsPath {rel:?} is not a usable cgroup path"))
    })
}

/// Create the container; returns once its first process waits for `start`.
pub fn create(c: NativeCreate<'_>) -> Result<Created, NativeError> {
    let spec = c.spec;
    launch::preflight(spec)?;
    let ns = launch::namespaces(spec, false)?;
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let cgroup = cgroups::Cgroup::create_at(
        &cgroup_path(spec, c.id)?,
        resources,
        launch::is_privileged(spec),
    )?;
    match clone_waiting(&c, &cgroup, ns) {
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

fn clone_waiting(
    c: &NativeCreate<'_>,
    cgroup: &cgroups::Cgroup,
    mut ns: launch::Namespaces,
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
    let ((go_r, go_w), (err_r, err_w)) = launch::pipes()?;
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
            private_network: ns.private_network,
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
        joins: std::mem::take(&mut ns.joins),
        in_place: c.in_place,
        keyring: c.new_keyring.then(|| child::session_keyring_name(c.id)),
    };
    // The engine (a wasm bundle) runs on the child's stack: room for its deepest guest stack.
    let stack = if c.in_place.is_some() {
        8 << 20
    } else {
        1 << 20
    };
    let launched = launch::launch(&plan, &ns, go_w, err_r, stack, |pid| {
        if launch::maps_ids(c.spec) {
            launch::write_id_maps(c.spec, pid)?;
        }
        cgroup.add(pid.as_raw())
    })?;
    drop(plan);
    let pid = launched.pid;
    let kill = || {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    };
    // One NUL byte: set up and waiting. Anything else: the child's error (code, message).
    let mut report = Vec::new();
    let mut file = std::fs::File::from(launched.errors);
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
