//! `wharf exec`: another process in a running native container. wharf (single-threaded,
//! checked) joins the container's cgroup and namespaces (user if it has its own, cgroup,
//! ipc, uts, net, pid, and mount last), then forks: the child is inside the container's pid
//! namespace and takes the same path as the container's first process (user, capabilities,
//! `no_new_privs`, seccomp) before it execs. wharf stays outside the pid namespace, not
//! dumpable, relaying the terminal and forwarding signals until the process ends.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::ForkResult;
use oci_spec::runtime::Spec;

use super::child::{Overrides, become_process};
use super::{
    ChildError, Exit, NativeError, await_child, cgroups, exit_of, forward_signals_to, pipe,
    threads, tty,
};

/// One `exec`.
pub struct ExecRun<'a> {
    pub id: &'a str,
    /// The container's first process, as the host sees it.
    pub pid: i32,
    /// The container's runtime spec (its capabilities, seccomp, user, environment).
    pub spec: &'a Spec,
    pub overrides: Overrides,
    pub tty: bool,
    pub interactive: bool,
    /// The container's cgroup directories, when they are not `wharf/<id>`
    /// (`wharf-runtime`: the spec's `cgroupsPath`).
    pub cgroup_dirs: Option<Vec<std::path::PathBuf>>,
    /// `wharf-runtime exec --console-socket`: the terminal's master side is sent over it
    /// instead of being relayed.
    pub console: Option<std::os::fd::OwnedFd>,
    /// `wharf-runtime exec --detach`: the process outlives this one (no parent-death signal).
    pub detached: bool,
}

/// A process started by [`spawn`]: running (or failed: its error is in `errors`).
pub struct Spawned {
    pub pid: nix::unistd::Pid,
    errors: std::os::fd::OwnedFd,
    master: Option<std::os::fd::OwnedFd>,
    interactive: bool,
}

impl Spawned {
    /// Wait until the process has exec'd (or failed to), without waiting for its end
    /// (`exec --detach`).
    pub fn confirm(self) -> Result<i32, NativeError> {
        let mut report = Vec::new();
        let _ = std::io::Read::read_to_end(&mut File::from(self.errors), &mut report);
        if let Some((code, msg)) = report.split_first() {
            let _ = waitpid(self.pid, None);
            return Err(NativeError::Child {
                code: *code,
                message: String::from_utf8_lossy(msg).into_owned(),
            });
        }
        Ok(self.pid.as_raw())
    }

    /// Relay its terminal (if it has one here), forward signals, and wait for its end.
    pub fn wait(self) -> Result<Exit, NativeError> {
        forward_signals_to(self.pid);
        let relay = self.master.map(|m| tty::Relay::start(m, self.interactive));
        await_child(self.pid, self.errors, relay, || {}).map(exit_of)
    }
}

const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

fn state_err(path: String, source: std::io::Error) -> NativeError {
    NativeError::State {
        path: path.into(),
        source,
    }
}

/// Run the process to its end inside the container; returns how it ended.
pub fn exec(r: ExecRun) -> Result<Exit, NativeError> {
    spawn(r)?.wait()
}

/// Start the process inside the container (see [`Spawned`]).
pub fn spawn(r: ExecRun) -> Result<Spawned, NativeError> {
    let n = threads();
    if n > 1 {
        return Err(NativeError::Threads(n));
    }
    super::seal::require_protected()?;
    // Open every namespace first: /proc paths mean the host's /proc only until we move.
    let mut joins = Vec::new();
    let mut own_userns = false;
    let same = |name: &str| -> Result<bool, NativeError> {
        let target = format!("/proc/{}/ns/{name}", r.pid);
        let theirs = std::fs::metadata(&target).map_err(|e| state_err(target.clone(), e))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .map_err(|e| state_err(format!("/proc/self/ns/{name}"), e))?;
        Ok(theirs.ino() == ours.ino() && theirs.dev() == ours.dev())
    };
    // A container always has its own mount namespace: sharing ours means the pid is no
    // longer the container's (it ended and the pid was reused).
    if same("mnt")? {
        return Err(NativeError::State {
            path: format!("/proc/{}", r.pid).into(),
            source: std::io::Error::other("the container's process is gone"),
        });
    }
    for (name, flag) in NAMESPACES {
        if same(name)? {
            continue;
        }
        let target = format!("/proc/{}/ns/{name}", r.pid);
        if name == "user" {
            own_userns = true;
        }
        let f = File::open(&target).map_err(|e| state_err(target.clone(), e))?;
        joins.push((name, flag, f));
    }
    // Not dumpable: the container cannot reach this process (or the wharf binary behind
    // /proc/PID/exe) through /proc while it lives. A child's exec resets it.
    // SAFETY: prctl with PR_SET_DUMPABLE and integers has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong) };
    // The container's cgroup, on the host's paths (inside, /sys/fs/cgroup is its own view).
    let cgroup_procs = match &r.cgroup_dirs {
        Some(dirs) => cgroups::procs_files_in(dirs)?,
        None => cgroups::procs_files(r.id)?,
    };
    for (name, flag, f) in &joins {
        nix::sched::setns(f, *flag).map_err(|e| NativeError::State {
            path: format!("/proc/{}/ns/{name}", r.pid).into(),
            source: std::io::Error::from(e),
        })?;
    }
    drop(joins);
    // Inside the container's mount namespace: /dev/ptmx is the container's own devpts.
    let pty = if r.tty {
        Some(nix::pty::openpty(None, None).map_err(NativeError::Clone)?)
    } else {
        None
    };
    let (master, slave) = match pty {
        Some(p) => (Some(p.master), Some(p.slave)),
        None => (None, None),
    };
    let (err_r, err_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let bpf = super::compile_seccomp(r.spec, None)?;
    // SAFETY: single-threaded (checked above); the child only sets up and execs or exits.
    let child = match unsafe { nix::unistd::fork() }.map_err(NativeError::Clone)? {
        ForkResult::Child => {
            drop(go_w);
            // Wait until the parent has moved us into the container's cgroup.
            let mut b = [0u8; 1];
            let moved = matches!(nix::unistd::read(&go_r, &mut b), Ok(1));
            let result = if moved {
                child_main(&r, slave.as_ref(), &err_w, own_userns, bpf.as_ref())
            } else {
                Err(ChildError::Setup(
                    "joining the container's cgroup failed".into(),
                ))
            };
            let e = match result {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let code = e.exit_code();
            let _ = nix::unistd::write(&err_w, format!("{}{e}", code as char).as_bytes());
            // SAFETY: _exit in the forked child skips the parent's atexit handlers.
            unsafe { libc::_exit(i32::from(code)) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(err_w);
    drop(slave);
    drop(go_r);
    // Only the exec'd process joins the container's cgroup, not this relay: the container
    // ending kills what runs inside it, and wharf reports that.
    let joined = cgroups::join(&cgroup_procs, child.as_raw());
    drop(cgroup_procs);
    if joined.is_ok() {
        let _ = nix::unistd::write(&go_w, b"g");
    }
    drop(go_w);
    if let Err(e) = joined {
        let _ = waitpid(child, None);
        return Err(e);
    }
    // --console-socket: the caller relays the terminal.
    let master = match (master, &r.console) {
        (Some(m), Some(socket)) => {
            tty::send_fd(socket, &m).map_err(NativeError::Clone)?;
            None
        }
        (m, _) => m,
    };
    Ok(Spawned {
        pid: child,
        errors: err_r,
        master,
        interactive: r.interactive,
    })
}

fn child_main(
    r: &ExecRun,
    slave: Option<&std::os::fd::OwnedFd>,
    errors: &std::os::fd::OwnedFd,
    rootless: bool,
    bpf: Option<&super::seccomp::Bpf>,
) -> Result<std::convert::Infallible, ChildError> {
    if !r.detached {
        // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number has no memory effects.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    }
    let setup = |what: &str| {
        let what = what.to_string();
        move |e: nix::Error| ChildError::Setup(format!("{what}: {e}"))
    };
    // A session of its own, with or without -t: never the caller's controlling terminal
    // (TIOCSTI could type into the user's shell).
    nix::unistd::setsid().map_err(setup("setsid"))?;
    if let Some(slave) = slave {
        super::tty::inherit_size(slave);
        nix::unistd::dup2_stdin(slave).map_err(setup("terminal"))?;
        nix::unistd::dup2_stdout(slave).map_err(setup("terminal"))?;
        nix::unistd::dup2_stderr(slave).map_err(setup("terminal"))?;
        // SAFETY: TIOCSCTTY on stdin (now the pty slave) with argument 0; no memory is passed.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
            return Err(ChildError::Setup(format!(
                "controlling terminal: {}",
                std::io::Error::last_os_error()
            )));
        }
    } else if !r.interactive {
        let null =
            File::open("/dev/null").map_err(|e| ChildError::Setup(format!("/dev/null: {e}")))?;
        nix::unistd::dup2_stdin(&null).map_err(setup("stdin"))?;
    }
    let _ = errors.as_raw_fd();
    become_process(
        r.spec,
        &r.overrides,
        rootless,
        false,
        errors,
        super::child::LastSteps {
            seccomp: bpf,
            keyring: Some(&super::child::session_keyring_name(r.id)),
            ..Default::default()
        },
    )
}
