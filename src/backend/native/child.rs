//! The container's first process, between clone and exec: joins its cgroup namespace,
//! builds and enters its root filesystem, sets hostname and network, then drops to the
//! configured user and capabilities, closes every descriptor but stdio, sets
//! `no_new_privs`, loads seccomp last, and execs. Failures are written to the error pipe
//! for the parent to report; a successful exec closes it.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use caps::{CapSet, Capability as Cap};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid, sethostname, setresgid, setresuid};
use oci_spec::runtime::{Capability, PosixRlimitType, Spec};

use super::mounts::{self, RootfsPlan};
use super::{ChildError, seccomp, user};
use crate::bundle;

/// What the child needs, prepared before clone.
pub struct ChildPlan<'a> {
    pub rootfs: RootfsPlan<'a>,
    pub spec: &'a Spec,
    pub hostname: String,
    pub interactive: bool,
    /// In a user namespace where `setgroups` is denied.
    pub rootless: bool,
    /// `-t`: a socket to send the pseudo-terminal's master side to the parent; the child
    /// opens it from the container's own devpts and makes the slave its stdio and
    /// controlling terminal.
    pub tty: Option<OwnedFd>,
    /// `--init`: pid 1 stays a reaper and the workload runs as its child.
    pub init: bool,
    /// Read end of the "go" pipe: the parent writes once the child is in its cgroup.
    pub go: OwnedFd,
    /// Write end of the error pipe (close-on-exec).
    pub errors: OwnedFd,
    /// The spec's seccomp profile, compiled before clone.
    pub seccomp: Option<seccomp::Bpf>,
    /// `wharf-runtime create`: the process that cloned us exits once we are set up, so no
    /// parent-death signal, and the caller's stdio is left as it is.
    pub detached: bool,

    /// `wharf-runtime create`: the read end of the exec FIFO (non-blocking). Once set up we
    /// say so on the error pipe (one NUL byte) and wait here until `start` writes to it.
    pub gate: Option<OwnedFd>,
    /// Namespaces to join (a spec's namespace `path`s), entered first.
    pub joins: Vec<(OwnedFd, CloneFlags)>,
    /// A wasm bundle: run this in place of exec'ing the entrypoint (the engine), then exit
    /// with its code.
    pub in_place: Option<&'a (dyn Fn() -> u8 + 'a)>,
    /// The session keyring to join ([`session_keyring_name`]); none: keep the caller's
    /// (`wharf-runtime create --no-new-keyring`).
    pub keyring: Option<String>,
}

/// The name of container `id`'s own session keyring: its processes (the first one and
/// those `exec` adds) join it, so no key of theirs lands in the host's session keyring, and
/// none of the host's is theirs (runc's `_ses.<id>`).
pub fn session_keyring_name(id: &str) -> String {
    format!("_ses.{id}")
}

/// The child's entry point; returns only on failure, with the exit code to use.
pub fn main(plan: &ChildPlan<'_>) -> isize {
    let err = match setup_and_exec(plan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let code = err.exit_code();
    let mut f = std::fs::File::from(plan.errors.try_clone().expect("dup of the error pipe"));
    let _ = write!(f, "{}{}", code as char, err);
    code as isize
}

fn setup_and_exec(plan: &ChildPlan<'_>) -> Result<Infallible, ChildError> {
    // In a user namespace whose maps the parent writes (rootless, or the spec's own).
    let mapped = plan.rootless || super::launch::maps_ids(plan.spec);
    if !mapped {
        // Until its exec, this process is wharf (its memory, its environment, its
        // descriptors: a host log file, the exec FIFO): a sibling in a shared pid namespace
        // (a pod's) must not ptrace it or reach it through /proc/PID/{mem,environ,fd}.
        // Rootless, the parent writes our uid/gid maps first, which needs us dumpable:
        // then once they are written (below).
        set_non_dumpable();
    }
    if !plan.detached {
        // Die with wharf: a container must not outlive its supervisor unnoticed.
        // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number has no memory effects.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        // (A parent that died before the signal was armed closed the "go" pipe: the read
        // below then sees end of file and the child gives up.)
    }
    for (fd, kind) in &plan.joins {
        nix::sched::setns(fd, *kind)
            .map_err(|e| ChildError::Setup(format!("joining a {kind:?} namespace: {e}")))?;
    }
    // The parent moves us into the container's cgroup meanwhile (and, rootless, writes our
    // uid/gid maps first). On cgroup v1 the first write to a cgroup.procs waits for an RCU
    // grace period (milliseconds), and nothing in the mount setup depends on it (the
    // container's cgroups are bind mounts of host directories), so the mounts are made
    // while the parent writes. On v2 the cgroup2 mount needs the new cgroup namespace, and
    // in a user namespace every mount needs the maps: then we wait first. Either way,
    // nothing of the container runs before it is in its cgroup.
    let join_cgroup = || -> Result<(), ChildError> {
        let mut b = [0u8; 1];
        let n = nix::unistd::read(&plan.go, &mut b)
            .map_err(|e| ChildError::Setup(format!("waiting for the parent: {e}")))?;
        // End of file, not "g": the parent is gone (or failed to move us into the cgroup).
        // Never run outside the container's cgroup.
        if n != 1 {
            return Err(ChildError::Setup(
                "the parent went away before joining us to the container's cgroup".into(),
            ));
        }
        // Our maps are written (rootless): nothing of the parent's needs us dumpable.
        set_non_dumpable();
        // In our cgroup now: a new cgroup namespace makes it the container's root.
        unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| ChildError::Setup(format!("cgroup namespace: {e}")))?;
        Ok(())
    };
    let overlap = !plan.rootfs.cgroup_v2 && !mapped;
    if !overlap {
        join_cgroup()?;
    }
    if mapped && !plan.rootless {
        // The maps are written, but this process is still the host's root, which the
        // spec's maps need not map: become the namespace's root (as runc).
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).map_err(|e| {
            ChildError::Setup(format!("becoming root in the user namespace: setgid: {e}"))
        })?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).map_err(|e| {
            ChildError::Setup(format!("becoming root in the user namespace: setuid: {e}"))
        })?;
    }
    nix::unistd::setsid().map_err(|e| ChildError::Setup(format!("setsid: {e}")))?;

    mounts::setup(&plan.rootfs)?;
    if overlap {
        join_cgroup()?;
    }
    if let Some(domain) = plan.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: the pointer and length describe `domain`'s bytes, alive for the call.
        if unsafe { libc::setdomainname(domain.as_ptr().cast(), domain.len()) } != 0 {
            return Err(ChildError::Setup(format!(
                "setdomainname: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    if let Some(adj) = plan.spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| ChildError::Setup(format!("oomScoreAdj {adj}: {e}")))?;
    }
    // No hostname in the spec: the new UTS namespace keeps the one it was made with, as
    // runc leaves it.
    if !plan.hostname.is_empty() {
        sethostname(&plan.hostname).map_err(|e| ChildError::Setup(format!("sethostname: {e}")))?;
    }
    if let Some(socket) = &plan.tty {
        let e = |e: nix::Error| ChildError::Setup(format!("terminal: {e}"));
        let (master, slave) = super::tty::open_inside().map_err(e)?;
        super::tty::send_fd(socket, &master).map_err(e)?;
        drop(master);
        super::tty::inherit_size(&slave);
        nix::unistd::dup2_stdin(&slave).map_err(e)?;
        nix::unistd::dup2_stdout(&slave).map_err(e)?;
        nix::unistd::dup2_stderr(&slave).map_err(e)?;
        // SAFETY: TIOCSCTTY on stdin (now the pty slave) with argument 0; no memory is passed.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
            return Err(ChildError::Setup(format!(
                "controlling terminal: {}",
                std::io::Error::last_os_error()
            )));
        }
    } else if !plan.interactive && !plan.detached {
        let null = std::fs::File::open("/dev/null")
            .map_err(|e| ChildError::Setup(format!("/dev/null: {e}")))?;
        nix::unistd::dup2_stdin(&null).map_err(|e| ChildError::Setup(format!("stdin: {e}")))?;
    }
    if plan.rootfs.private_network {
        loopback_up()?;
    }
    let plan_init = plan.init;
    become_process(
        plan.spec,
        &Overrides::default(),
        plan.rootless,
        plan_init,
        &plan.errors,
        LastSteps {
            seccomp: plan.seccomp.as_ref(),
            gate: plan.gate.as_ref(),
            in_place: plan.in_place,
            keyring: plan.keyring.as_deref(),
        },
    )
}

/// Not dumpable: only a process with CAP_SYS_PTRACE over our user namespace can ptrace us or
/// open our /proc files (mem, environ, fd/*). An exec of the workload makes it dumpable
/// again, as any program.
fn set_non_dumpable() {
    // SAFETY: prctl with PR_SET_DUMPABLE and an integer has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong) };
}

/// Join (creating it the first time) the session keyring `name`, searchable by its owner so
/// that processes `exec` adds find it by name, as runc does. A kernel without keyrings
/// (ENOSYS) leaves the caller's.
fn join_session_keyring(name: &str) -> Result<(), ChildError> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    const KEYCTL_SETPERM: libc::c_int = 5;
    // Possessor: everything; owner: view, read, search, link (the kernel's default for a
    // joined keyring, plus search).
    const PERM: libc::c_ulong = 0x3f00_0000 | 0x0001_0000 | 0x0002_0000 | 0x0008_0000 | 0x0010_0000;
    let name = cstring(name)?;
    // SAFETY: keyctl with a NUL-terminated name that outlives the call; returns a serial.
    let serial =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if serial < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOSYS) {
            return Ok(());
        }
        return Err(ChildError::Setup(format!(
            "joining a session keyring of its own: {e}"
        )));
    }
    // SAFETY: keyctl with integer arguments only.
    if unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, serial, PERM) } < 0 {
        return Err(ChildError::Setup(format!(
            "session keyring permissions: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Close every descriptor above stdio but `keep`: what a created container waits with holds
/// nothing of its runtime's (a log file, a console socket, namespace descriptors).
fn close_all_but(keep: &[i32]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&fd| fd > 2)
        .map(|&fd| fd as u32)
        .collect();
    keep.sort_unstable();
    let mut from = 3u32;
    for fd in keep {
        if fd > from {
            // SAFETY: close_range with a flag of 0 closes descriptors none of which is
            // used after (only the kept ones are).
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32) };
        }
        from = fd + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

/// The last steps before the workload runs.
#[derive(Default)]
pub struct LastSteps<'a> {
    /// The compiled seccomp filter, if the spec has one.
    pub seccomp: Option<&'a seccomp::Bpf>,
    /// `wharf-runtime create`: the exec FIFO to wait on until `start`.
    pub gate: Option<&'a OwnedFd>,
    /// A wasm bundle: the engine, run in place of exec.
    pub in_place: Option<&'a dyn Fn() -> u8>,
    /// The session keyring to join, by name (none: keep the caller's).
    pub keyring: Option<&'a str>,
}

/// What `exec` changes from the container's own process settings.
#[derive(Debug, Default)]
pub struct Overrides {
    /// The command (else the container's).
    pub args: Option<Vec<String>>,
    /// Extra `KEY=VALUE` entries (later ones win).
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// `-u` (else the container's user).
    pub user: Option<String>,
}

/// From inside the container's namespaces and root: set rlimits, become the user, set the
/// capabilities, environment and working directory, close descriptors, set `no_new_privs`,
/// load seccomp last, and exec. Shared by a container's first process and `exec`.
pub fn become_process(
    spec: &Spec,
    over: &Overrides,
    rootless: bool,
    init: bool,
    errors: &OwnedFd,
    last: LastSteps<'_>,
) -> Result<Infallible, ChildError> {
    let LastSteps {
        seccomp: bpf,
        gate,
        in_place,
        keyring,
    } = last;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| ChildError::Setup("the spec has no process".into()))?;
    if let Some(name) = keyring {
        join_session_keyring(name)?;
    }
    for r in process.rlimits().iter().flatten() {
        set_rlimit(r.typ(), r.soft(), r.hard())?;
    }
    // Without no_new_privs the filter can only be loaded with CAP_SYS_ADMIN, so it is loaded
    // now, before the capabilities are dropped (as runc does); with it, last, before exec.
    let nnp = process.no_new_privileges().unwrap_or(false);
    if !nnp && let Some(bpf) = bpf {
        seccomp::load(bpf, false)?;
    }

    let user_spec = over.user.as_ref().or_else(|| {
        spec.annotations()
            .as_ref()
            .and_then(|a| a.get(bundle::ANNOTATION_USER))
    });
    let spec_user = process.user();
    let user = match user_spec {
        Some(u) => user::resolve(u)?,
        // A runtime spec's numeric user (`wharf-runtime`: Docker's `-u`, a shim's exec):
        // its home from the image's passwd, its groups as given.
        None if spec_user.uid() != 0
            || spec_user.gid() != 0
            || spec_user
                .additional_gids()
                .as_ref()
                .is_some_and(|g| !g.is_empty()) =>
        {
            let (uid, gid) = (spec_user.uid(), spec_user.gid());
            let mut resolved = user::resolve(&format!("{uid}:{gid}"))?;
            if let Some(extra) = spec_user.additional_gids() {
                for g in extra {
                    crate::run::options::check_id((*g).into(), "group")
                        .map_err(ChildError::User)?;
                }
                let mut groups = vec![gid];
                for g in extra {
                    if !groups.contains(g) {
                        groups.push(*g);
                    }
                }
                resolved.groups = groups;
            }
            resolved
        }
        None => user::User {
            uid: 0,
            gid: 0,
            groups: vec![0],
            home: "/root".into(),
        },
    };
    let mut user = user;
    if let Some(extra) = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(bundle::ANNOTATION_GROUP_ADD))
    {
        for g in user::extra_groups(extra)? {
            if !user.groups.contains(&g) {
                user.groups.push(g);
            }
        }
    }
    let caps = process.capabilities().clone().unwrap_or_default();
    let bounding: Vec<Cap> = caps
        .bounding()
        .iter()
        .flatten()
        .filter_map(to_cap)
        .collect();
    // Bounding set first: it can only shrink, and needs CAP_SETPCAP, which we still have.
    for c in caps::all() {
        if !bounding.contains(&c) {
            caps::drop(None, CapSet::Bounding, c).map_err(|e| {
                ChildError::Setup(format!("dropping {c} from the bounding set: {e}"))
            })?;
        }
    }
    // Keep permitted capabilities across the uid change, then set them exactly.
    // SAFETY: prctl with PR_SET_KEEPCAPS and an integer has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1 as libc::c_ulong) };
    if !rootless {
        // In a user namespace with one mapped id, setgroups is denied.
        let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups)
            .map_err(|e| ChildError::Setup(format!("setgroups: {e}")))?;
    }
    setresgid(
        Gid::from_raw(user.gid),
        Gid::from_raw(user.gid),
        Gid::from_raw(user.gid),
    )
    .map_err(|e| ChildError::Setup(unmapped("setgid", user.gid, rootless, e)))?;
    setresuid(
        Uid::from_raw(user.uid),
        Uid::from_raw(user.uid),
        Uid::from_raw(user.uid),
    )
    .map_err(|e| ChildError::Setup(unmapped("setuid", user.uid, rootless, e)))?;
    // The spec's sets, exactly (a non-root user's spec from `wharf run` has no inheritable
    // or ambient capabilities, so, as under Docker, its exec leaves it none).
    let set_of = |set: &Option<oci_spec::runtime::Capabilities>| -> std::collections::HashSet<Cap> {
        set.iter().flatten().filter_map(to_cap).collect()
    };
    let fail = |set: &str, e: caps::errors::CapsError| {
        ChildError::Setup(format!("capabilities ({set} set): {e}"))
    };
    // Inheritable first, while every capability is still permitted; effective before
    // permitted, since it must stay a subset at every step; ambient last (each one must be
    // permitted and inheritable).
    caps::set(None, CapSet::Inheritable, &set_of(caps.inheritable()))
        .map_err(|e| fail("inheritable", e))?;
    caps::set(None, CapSet::Effective, &set_of(caps.effective()))
        .map_err(|e| fail("effective", e))?;
    caps::set(None, CapSet::Permitted, &set_of(caps.permitted()))
        .map_err(|e| fail("permitted", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| fail("ambient", e))?;
    for c in set_of(caps.ambient()) {
        caps::raise(None, CapSet::Ambient, c).map_err(|e| fail("ambient", e))?;
    }

    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !over.env.is_empty() {
        // `exec -e`: later keys replace earlier ones (one pass, not one per variable).
        let key = |e: &str| e.split('=').next().unwrap_or_default().to_string();
        let replaced: std::collections::HashSet<String> = over.env.iter().map(|e| key(e)).collect();
        env.retain(|x| !replaced.contains(&key(x)));
        let mut last: std::collections::HashMap<String, usize> = Default::default();
        for (i, e) in over.env.iter().enumerate() {
            last.insert(key(e), i);
        }
        env.extend(
            over.env
                .iter()
                .enumerate()
                .filter(|(i, e)| last.get(&key(e)) == Some(i))
                .map(|(_, e)| e.clone()),
        );
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let cwd = over
        .cwd
        .as_deref()
        .map_or_else(|| process.cwd().clone(), std::path::PathBuf::from);
    let cwd = cwd.as_path();
    nix::unistd::chdir(cwd)
        .map_err(|e| ChildError::Setup(format!("working directory {}: {e}", cwd.display())))?;
    // The working directory must be inside the new root (CVE-2024-21626: a leaked
    // descriptor could otherwise point it at the host).
    let here = nix::unistd::getcwd().map_err(|e| ChildError::Setup(format!("getcwd: {e}")))?;
    if !here.starts_with("/") || here.to_string_lossy().contains("(unreachable)") {
        return Err(ChildError::Setup(format!(
            "working directory {} is outside the container",
            here.display()
        )));
    }
    close_fds(errors.as_raw_fd());
    if nnp {
        // SAFETY: prctl with PR_SET_NO_NEW_PRIVS and integers has no memory effects.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(ChildError::Setup(format!(
                "no_new_privs: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    let args: Vec<String> = match &over.args {
        Some(a) => a.clone(),
        None => process.args().clone().unwrap_or_default(),
    };
    if args.is_empty() {
        return Err(ChildError::Setup("no command to run".into()));
    }
    let argv: Vec<CString> = args.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?;
    let program = find_program(&args[0], &env)?;
    if let Some(fifo) = gate {
        // Before waiting for `start`: a program that is not there fails `create`, as runc's.
        if let Err(e) = nix::unistd::access(program.as_c_str(), nix::unistd::AccessFlags::F_OK) {
            return Err(match e {
                nix::errno::Errno::ENOENT => ChildError::NotFound(args[0].clone()),
                other => ChildError::CannotInvoke(format!("{}: {other}", args[0])),
            });
        }
        close_all_but(&[errors.as_raw_fd(), fifo.as_raw_fd()]);
        wait_for_start(errors, fifo)?;
    }
    if nnp && let Some(bpf) = bpf {
        seccomp::load(bpf, true)?;
    }
    default_signals();
    if init {
        // pid 1 becomes the reaper; the workload runs as its child. Named wharf-init
        // before the fork, so the workload never sees it under wharf's own name.
        super::init::retitle();
        // SAFETY: single-threaded (the clone child); the forked child only execs or exits.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Parent { child }) => super::init::reap(child),
            Ok(nix::unistd::ForkResult::Child) => {}
            Err(e) => return Err(ChildError::Setup(format!("fork for --init: {e}"))),
        }
    }
    if let Some(engine) = in_place {
        // Nothing of the runtime's stays open in the container's process: only stdio.
        // SAFETY: close_range with a flag of 0 closes descriptors; none is used after.
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
        let code = engine();
        // SAFETY: _exit ends this process without running the parent's atexit handlers.
        unsafe { libc::_exit(i32::from(code)) }
    }
    let e = nix::unistd::execve(&program, &argv, &envp).unwrap_err();
    Err(match e {
        nix::errno::Errno::ENOENT => ChildError::NotFound(args[0].clone()),
        other => ChildError::CannotInvoke(format!("{}: {other}", args[0])),
    })
}

fn cstring(s: &str) -> Result<CString, ChildError> {
    CString::new(s).map_err(|_| ChildError::Setup(format!("{s:?} contains a NUL byte")))
}

/// `wharf-runtime create` is done with us: say so (one NUL byte on the error pipe, which
/// `create` reads before it exits), then wait until `start` writes to the exec FIFO.
fn wait_for_start(errors: &OwnedFd, fifo: &OwnedFd) -> Result<(), ChildError> {
    use std::os::fd::AsFd;
    nix::unistd::write(errors, b"\0")
        .map_err(|e| ChildError::Setup(format!("reporting readiness: {e}")))?;
    loop {
        let mut fds = [nix::poll::PollFd::new(
            fifo.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ChildError::Setup(format!("waiting for start: {e}"))),
            Ok(_) => {}
        }
        let mut b = [0u8; 1];
        match nix::unistd::read(fifo, &mut b) {
            Ok(1) => return Ok(()),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            // A writer came and went without a byte: not a start.
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(e) => return Err(ChildError::Setup(format!("waiting for start: {e}"))),
        }
    }
}

/// Every signal back to its default action. An ignored signal stays ignored across exec,
/// and wharf (as every Rust program) ignores SIGPIPE: without this, `yes | head -1` in a
/// container would never end `yes` by SIGPIPE (runc and Docker start workloads with no
/// signal ignored: `SigIgn: 0000000000000000`).
fn default_signals() {
    // The kernel's sigaction for SIG_DFL: handler, flags, restorer and mask all zero.
    // (glibc's `signal` refuses 32 and 33, which it reserves for itself; the raw call does
    // not, and a container must not inherit those ignored either.)
    let act = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `act` is a valid kernel sigaction (all zero: SIG_DFL, no flags, empty
        // mask) of the size passed; no old action is read back. The process is
        // single-threaded here (the clone child, or exec's forked child).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                act.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
}

/// Find the program on the container's PATH, as execvp would.
fn find_program(name: &str, env: &[String]) -> Result<CString, ChildError> {
    if name.contains('/') {
        return cstring(name);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{dir}/{name}");
        if nix::unistd::access(candidate.as_str(), nix::unistd::AccessFlags::X_OK).is_ok() {
            return cstring(&candidate);
        }
    }
    Err(ChildError::NotFound(name.to_string()))
}

/// Mark every descriptor above stdio close-on-exec (the error pipe already is).
fn close_fds(_keep: i32) {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        for fd in 3..1024 {
            // SAFETY: setting FD_CLOEXEC on a possibly closed descriptor is harmless.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

fn to_cap(c: &Capability) -> Option<Cap> {
    serde_json::to_value(c).ok()?.as_str()?.parse::<Cap>().ok()
}

fn set_rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> Result<(), ChildError> {
    let name = serde_json::to_value(typ)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let resource = match name.as_str() {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return Err(ChildError::Setup(format!("unknown rlimit {name}"))),
    };
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(ChildError::Setup(format!(
            "setrlimit {name}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Bring up `lo` in the new network namespace.
fn loopback_up() -> Result<(), ChildError> {
    let err = |what: &str| {
        ChildError::Setup(format!(
            "bringing up lo: {what}: {}",
            std::io::Error::last_os_error()
        ))
    };
    // SAFETY: a plain socket call; the descriptor is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(err("socket"));
    }
    // SAFETY: ifreq is plain data; zeroed is a valid starting state.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo\0".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming "lo"; SIOCGIFFLAGS fills its flags.
    let r = unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut req) };
    if r < 0 {
        // SAFETY: closing the socket we opened.
        unsafe { libc::close(sock) };
        return Err(err("SIOCGIFFLAGS"));
    }
    // SAFETY: the union's flags member was just filled by the kernel.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS reads `req`.
    let r = unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &req) };
    // SAFETY: closing the socket we opened.
    unsafe { libc::close(sock) };
    if r < 0 {
        return Err(err("SIOCSIFFLAGS"));
    }
    Ok(())
}

/// Why switching to id `id` failed; rootless, an id the user namespace does not map (only
/// the caller's own without /etc/subuid and /etc/subgid ranges) is said as such.
fn unmapped(call: &str, id: u32, rootless: bool, e: nix::Error) -> String {
    if rootless && e == nix::Error::EINVAL {
        format!(
            "{call} {id}: the id is not mapped in this rootless container's user namespace (give your user ranges in /etc/subuid and /etc/subgid, or run it with -u 0)"
        )
    } else {
        format!("{call} {id}: {e}")
    }
}
