//! The monitor: one small process per detached container, as Podman's conmon. It runs
//! detached (its own session on Unix; no console and its own process group on Windows),
//! starts the container's supervisor (a freshly exec'd `wharf`, so native containers are
//! still cloned from a single-threaded process), holds its stdio, writes the log, records
//! how a run ended when the supervisor could not, and keeps the restart policy. Killing the
//! monitor kills the supervisor (parent-death signal on Linux, a kill-on-close job object
//! on Windows) and with it the container, so nothing runs unaccounted for. The
//! OS-specific parts are in `sys`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::container::{ContainerError, Containers, Proc, Status, logs};

/// Environment variable naming the pipe a started process reports readiness on: `r` once
/// the workload runs; closed without it when the start failed (see `sys::pass_to_child`).
pub const READY_ENV: &str = "WHARF_READY_FD";

/// The word of [`supervisor_args`] that makes a wharf executable a supervisor.
pub const SUPERVISE_VERB: &str = "container-run";
/// The word that makes a wharf executable a monitor (when no `wharf-monitor` is installed
/// beside it).
pub const MONITOR_VERB: &str = "container-monitor";

/// What a wharf process started by the lifecycle (not by a user) is to be: read from its
/// command line by [`Protocol::from_args`] before any user command is parsed, so these are
/// no commands of the CLI. The format is the one [`supervisor_args`] and [`spawn`] write
/// (and earlier wharf versions wrote: a monitor that outlives an upgrade still restarts its
/// container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// Supervise container `id` under `root`: run it in this process and record its end
    /// (`remove`: a foreground `run --rm`; the record goes at the end).
    Supervise {
        root: std::path::PathBuf,
        log_level: Option<String>,
        id: String,
        remove: bool,
    },
    /// Be container `id`'s monitor ([`run`]).
    Monitor {
        root: std::path::PathBuf,
        log_level: Option<String>,
        id: String,
    },
}

impl Protocol {
    /// The protocol `args` (a process's arguments, its program first) speak, if they are
    /// the lifecycle's: `EXE --root ROOT [--log-level L] container-run ID [--rm]` or
    /// `EXE --root ROOT [--log-level L] container-monitor ID`. Anything else is a user's.
    pub fn from_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Option<Protocol> {
        let args: Vec<std::ffi::OsString> = args.into_iter().skip(1).collect();
        let word = |i: usize| args.get(i).and_then(|a| a.to_str());
        if word(0) != Some("--root") {
            return None;
        }
        let root = std::path::PathBuf::from(args.get(1)?);
        let (log_level, at) = match word(2) {
            Some("--log-level") => (Some(word(3)?.to_string()), 4),
            _ => (None, 2),
        };
        let id = word(at + 1)?.to_string();
        let rest = &args[at + 2..];
        match word(at)? {
            SUPERVISE_VERB if rest.is_empty() || rest == ["--rm"] => Some(Protocol::Supervise {
                root,
                log_level,
                id,
                remove: !rest.is_empty(),
            }),
            MONITOR_VERB if rest.is_empty() => Some(Protocol::Monitor {
                root,
                log_level,
                id,
            }),
            _ => None,
        }
    }

    /// The log level the starting process had, if it passed one.
    pub fn log_level(&self) -> Option<&str> {
        match self {
            Protocol::Supervise { log_level, .. } | Protocol::Monitor { log_level, .. } => {
                log_level.as_deref()
            }
        }
    }
}

/// The arguments that make a wharf executable supervise container `id` under `root`
/// (`remove`: a foreground `run --rm`, the record goes at the end): the process protocol
/// between a monitor (or a sealed re-execution) and the supervisor.
pub fn supervisor_args(
    root: &Path,
    log_level: Option<&str>,
    id: &str,
    remove: bool,
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["--root".into(), root.into()];
    if let Some(level) = log_level {
        args.extend(["--log-level".into(), level.into()]);
    }
    args.extend([SUPERVISE_VERB.into(), id.into()]);
    if remove {
        args.push("--rm".into());
    }
    args
}

/// Be what `p` says, in this process: a supervisor (what it has to say goes to `events`;
/// returns how the container ended) or a monitor (returns when the container has ended for
/// good). The readiness pipe, if the starter passed one, is taken from the environment.
pub fn serve(p: Protocol, events: &dyn super::Events) -> crate::backend::Exit {
    let ready = ready_fd_from_env();
    match p {
        Protocol::Supervise {
            root,
            log_level,
            id,
            remove,
        } => {
            let session = super::Session {
                roots: crate::paths::Roots::new(root),
                log_level: log_level.unwrap_or_else(|| "warn".into()),
            };
            let containers = session.containers();
            super::supervise(&session, &containers, &id, None, ready, remove, events)
        }
        Protocol::Monitor { root, id, .. } => {
            crate::sys::ignore_hangup();
            let roots = crate::paths::Roots::new(root);
            let failed = |message: String| crate::backend::Exit {
                code: super::EXIT_WHARF_FAILED,
                message: Some(message),
            };
            let exe = match crate::sys::own_exe() {
                Ok(e) => e,
                Err(e) => return failed(format!("finding wharf's own executable: {e}")),
            };
            match run(&super::containers(&roots), &id, &exe, roots.data(), ready) {
                Ok(()) => crate::backend::Exit::code(0),
                Err(e) => {
                    tracing::error!(container = %id, error = %e, "monitor failed");
                    failed(e.to_string())
                }
            }
        }
    }
}

/// First delay before a restart; doubles up to [`MAX_BACKOFF`], back to the start after a
/// run that lasted [`STABLE`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const STABLE: Duration = Duration::from_secs(10);

fn pipe() -> Result<(std::io::PipeReader, std::io::PipeWriter), ContainerError> {
    std::io::pipe().map_err(|source| ContainerError::Io {
        path: "pipe".into(),
        source,
    })
}

/// Wait for the ready byte on `r`: true if the workload started.
fn wait_ready(mut r: std::io::PipeReader) -> bool {
    let mut b = [0u8; 1];
    matches!(r.read(&mut b), Ok(1) if b[0] == b'r')
}

/// How a detached start went.
#[derive(Debug)]
pub enum Started {
    Running,
    /// It did not start: the exit code to report and why.
    Failed {
        code: u8,
        message: String,
    },
}

/// The readiness pipe the monitor's parent passed (see [`READY_ENV`]), if it did and it is
/// open.
pub fn ready_fd_from_env() -> Option<std::fs::File> {
    crate::sys::inherited_from_env(READY_ENV)
}

/// The small monitor binary beside `exe` (`wharf`), if installed.
fn monitor_binary(exe: &Path) -> std::path::PathBuf {
    exe.with_file_name(format!("wharf-monitor{}", std::env::consts::EXE_SUFFIX))
}

/// Start the monitor of container `id` detached (its own session on Unix; no console and
/// its own process group on Windows), and wait until the container runs or failed to
/// start. The monitor is `wharf-monitor` beside `exe` (`wharf`), else `wharf
/// container-monitor`.
pub fn spawn(exe: &Path, root: &Path, id: &str) -> Result<Started, ContainerError> {
    let (mut ready_r, ready_w) = pipe()?;
    let small = monitor_binary(exe);
    let mut cmd = if small.is_file() {
        let mut c = Command::new(&small);
        c.arg("--root").arg(root).arg("--wharf").arg(exe).arg(id);
        c
    } else {
        let mut c = Command::new(exe);
        c.arg("--root").arg(root).args([MONITOR_VERB, id]);
        c
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    crate::sys::pass_to_child(&mut cmd, &ready_w, READY_ENV);
    crate::sys::detach(&mut cmd);
    let child = cmd.spawn().map_err(|source| ContainerError::Io {
        path: exe.to_path_buf(),
        source,
    })?;
    drop(ready_w);
    // The monitor is not waited for: it outlives this command (init reaps it).
    drop(child);
    let mut answer = Vec::new();
    let _ = ready_r.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    if answer.starts_with('r') {
        return Ok(Started::Running);
    }
    let (code, message) = match answer.strip_prefix('f').and_then(|a| a.split_once('\n')) {
        Some((code, why)) => (code.parse::<i32>().unwrap_or(125), why.to_string()),
        None => (
            125,
            "the container's monitor ended before it started".to_string(),
        ),
    };
    Ok(Started::Failed {
        code: u8::try_from(code).unwrap_or(125),
        message,
    })
}

/// Start `wharf container-run ID` with its stdio piped to us, tied to us so that it (and
/// its container) cannot outlive this monitor: a parent-death signal on Linux, a
/// kill-on-close job object on Windows.
fn start_supervisor(
    exe: &Path,
    root: &Path,
    id: &str,
    interactive: bool,
    ready: &std::io::PipeWriter,
) -> Result<(std::process::Child, crate::sys::Tie), ContainerError> {
    let mut cmd = Command::new(exe);
    cmd.args(supervisor_args(root, None, id, false))
        .stdin(if interactive {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A static build's mimalloc (src/main.rs) commits arenas lazily in a long-lived
    // supervisor: an idle server then keeps about as much resident as with glibc's malloc
    // (22 MB, not 35; bench/static.sh). Ignored by other allocators.
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        cmd.env("MIMALLOC_ARENA_EAGER_COMMIT", "0");
    }
    crate::sys::tie_to_parent(&mut cmd);
    crate::sys::pass_to_child(&mut cmd, ready, READY_ENV);
    let io = |source| ContainerError::Io {
        path: exe.to_path_buf(),
        source,
    };
    let mut child = crate::sys::retry_transient(|| cmd.spawn()).map_err(io)?;
    match crate::sys::tie_spawned(&child) {
        Ok(tie) => Ok((child, tie)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(io(e))
        }
    }
}

/// The monitor's life: run the container until it ends for good.
pub fn run(
    containers: &Containers,
    id: &str,
    exe: &Path,
    root: &Path,
    mut ready_to_caller: Option<std::fs::File>,
) -> Result<(), ContainerError> {
    let (config, interactive, log_path, health) = {
        let mut l = containers.lock(id)?;
        let me = Proc::current();
        if let Some(other) = l.record.state.monitor
            && other.alive()
            && Some(other) != me
        {
            // Another `start` won: its monitor keeps the container.
            if let Some(mut fd) = ready_to_caller.take() {
                let _ = fd
                    .write_all(format!("f125\ncontainer {id} is already being started").as_bytes());
            }
            return Ok(());
        }
        l.record.state.monitor = me;
        l.record.state.stop_requested = false;
        l.record.state.error = None;
        l.save()?;
        (
            l.record.log,
            l.record.options.interactive,
            logs::path(l.dir(), id),
            l.record.options.health.clone().filter(|h| !h.disabled()),
        )
    };
    let log = Arc::new(Mutex::new(logs::Writer::open(&log_path, config).map_err(
        |source| ContainerError::Io {
            path: log_path.clone(),
            source,
        },
    )?));
    let mut backoff = FIRST_BACKOFF;
    let mut first = true;
    loop {
        let began = Instant::now();
        let began_at = Utc::now();
        // A new run has no health yet: the last run's must not be read as this one's.
        if let Ok(mut l) = containers.lock(id) {
            l.record.state.health = health
                .as_ref()
                .map(|_| crate::container::health::Health::default());
            let _ = l.save();
        }
        let (ready_r, ready_w) = pipe()?;
        let (mut child, _tie) = match start_supervisor(exe, root, id, interactive, &ready_w) {
            Ok(c) => c,
            Err(e) => {
                record_failure(containers, id, &e.to_string());
                return Err(e);
            }
        };
        drop(ready_w);
        // -i: stdin stays open until the run ends, served to `wharf attach`.
        let stdin = child
            .stdin
            .take()
            .map(|s| super::attach::StdinRelay::serve(&containers.dir_of(id), s));
        let copiers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|s| ("stdout", Box::new(s) as Box<dyn Read + Send>)),
            child
                .stderr
                .take()
                .map(|s| ("stderr", Box::new(s) as Box<dyn Read + Send>)),
        ]
        .into_iter()
        .flatten()
        .filter_map(|(stream, from)| {
            let log = log.clone();
            std::thread::Builder::new()
                .name(format!("log-{stream}"))
                .stack_size(64 << 10)
                .spawn(move || logs::copy(from, stream, &log))
                .ok()
        })
        .collect();
        let started = wait_ready(ready_r);
        if started && let Some(mut fd) = ready_to_caller.take() {
            let _ = fd.write_all(b"r");
        }
        // Health checks run while it does.
        let stop_checks = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checker = health.as_ref().filter(|_| started).and_then(|h| {
            let (containers, id, exe, root) = (
                containers.clone(),
                id.to_string(),
                exe.to_path_buf(),
                root.to_path_buf(),
            );
            let (h, stop) = (h.clone(), stop_checks.clone());
            std::thread::Builder::new()
                .name("health".into())
                .stack_size(256 << 10)
                .spawn(move || {
                    crate::container::health::watch(&containers, &id, &exe, &root, &h, stop)
                })
                .ok()
        });
        let status = child.wait();
        stop_checks.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(c) = checker {
            let _ = c.join();
        }
        drop(stdin);
        for c in copiers {
            let _ = c.join();
        }
        let mut l = match containers.lock(id) {
            Ok(l) => l,
            // Removed (`rm -f`) while it ran: nothing left to keep.
            Err(ContainerError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let st = &mut l.record.state;
        let child_pid = child.id() as i32;
        let ours = st.supervisor.is_some_and(|s| s.pid == child_pid);
        let ended_now = st.finished_at.is_some_and(|f| f >= began_at) && st.exit_code.is_some();
        if matches!(st.status, Status::Exited | Status::Dead) {
            // Recorded already (removed and re-created, or refreshed).
        } else if ended_now && (ours || st.status != Status::Running) {
            // The supervisor recorded the end; the output is all logged now.
            st.status = st.status.exit();
        } else {
            // The supervisor ended without recording the end: say what we know.
            let code = status.as_ref().map_or(255, crate::sys::exit_code);
            st.status = st.status.exit();
            st.exit_code = Some(code);
            st.pid = 0;
            st.finished_at = Some(Utc::now());
            if !st.stop_requested {
                st.error = Some(format!(
                    "the container's supervisor ended abnormally (exit status {code})"
                ));
            }
            // It could not remove the container's cgroup.
            crate::backend::clean_up_after(id, &containers.dir_of(id));
        }
        l.save()?;
        let st = &mut l.record.state;
        let code = st.exit_code.unwrap_or(255);
        if let Some(mut fd) = ready_to_caller.take() {
            // It never started: tell `run -d` / `start` why, with the code to exit with.
            let why = st.error.clone().unwrap_or_default();
            let _ = fd.write_all(format!("f{code}\n{why}").as_bytes());
        }
        let again = !st.stop_requested
            && (started || !first)
            && l.record.restart.restarts(code, st.restart_count);
        first = false;
        if !again {
            let auto_remove = l.record.auto_remove;
            if auto_remove {
                return containers.remove(l);
            }
            return Ok(());
        }
        // (A run that just ended can always wait for the next.)
        st.status = st.status.restart().unwrap_or(Status::Restarting);
        st.restart_count += 1;
        l.save()?;
        drop(l);
        if began.elapsed() >= STABLE {
            backoff = FIRST_BACKOFF;
        }
        if !sleep_unless_stopped(containers, id, backoff) {
            return Ok(());
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sleep `d` before a restart, watching for `stop`: false if stopped (the record then says
/// exited) or removed.
fn sleep_unless_stopped(containers: &Containers, id: &str, d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        match containers.lock(id) {
            Ok(mut l) if l.record.state.stop_requested => {
                l.record.state.status = l.record.state.status.exit();
                l.record.state.finished_at = Some(Utc::now());
                let _ = l.save();
                return false;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

fn record_failure(containers: &Containers, id: &str, message: &str) {
    if let Ok(mut l) = containers.lock(id) {
        let st = &mut l.record.state;
        st.status = st.status.exit();
        st.exit_code = Some(125);
        st.error = Some(message.to_string());
        st.finished_at = Some(Utc::now());
        let _ = l.save();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<std::ffi::OsString> {
        std::iter::once("wharf")
            .chain(words.iter().copied())
            .map(Into::into)
            .collect()
    }

    #[test]
    fn the_protocol_reads_back_what_it_writes() {
        for (level, remove) in [(None, false), (Some("debug"), true)] {
            let mut written = vec![std::ffi::OsString::from("/usr/bin/wharf")];
            written.extend(supervisor_args(
                Path::new("/var/lib/w"),
                level,
                "abc",
                remove,
            ));
            assert_eq!(
                Protocol::from_args(written),
                Some(Protocol::Supervise {
                    root: "/var/lib/w".into(),
                    log_level: level.map(String::from),
                    id: "abc".into(),
                    remove,
                })
            );
        }
        // What a monitor of an earlier wharf writes, and the monitor's own line.
        assert!(matches!(
            Protocol::from_args(args(&["--root", "/r", "container-run", "id"])),
            Some(Protocol::Supervise { remove: false, .. })
        ));
        assert_eq!(
            Protocol::from_args(args(&["--root", "/r", "container-monitor", "id"])),
            Some(Protocol::Monitor {
                root: "/r".into(),
                log_level: None,
                id: "id".into()
            })
        );
    }

    #[test]
    fn a_users_command_line_is_not_the_protocol() {
        for line in [
            &["run", "--rm", "busybox"][..],
            &["--root", "/r", "run", "busybox"],
            &["--root", "/r", "container-run"],
            &["--root", "/r", "container-run", "id", "--rm", "extra"],
            &["--root", "/r", "container-monitor", "id", "--rm"],
            &["container-run", "id"],
            &[],
        ] {
            assert_eq!(Protocol::from_args(args(line)), None, "{line:?}");
        }
    }
}
