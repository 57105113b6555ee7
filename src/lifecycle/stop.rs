//! `stop`, `kill` and `wait`: signals to a container's workload, and waiting for the record
//! to say it ended. For a native container the workload is its first process; for a wasm
//! container it is the wharf process running the guest, which turns SIGTERM into an
//! interrupt at the guest's next epoch check (a server stops gracefully).

use std::time::{Duration, Instant};

use crate::container::{ContainerError, Containers, Locked, Proc, Status};

/// How often the record is re-read while waiting.
const POLL: Duration = Duration::from_millis(20);
/// How long a SIGKILLed container may take to be accounted for.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// Wait until container `id` is no longer running (or was removed), up to `timeout`
/// (`None`: forever). True if it ended.
pub fn wait_inactive(
    containers: &Containers,
    id: &str,
    timeout: Option<Duration>,
) -> Result<bool, ContainerError> {
    let until = timeout.map(|t| Instant::now() + t);
    loop {
        match containers.lock(id) {
            Ok(l) if !l.record.state.is_active() => return Ok(true),
            Ok(_) => {}
            Err(ContainerError::NotFound(_)) => return Ok(true),
            Err(e) => return Err(e),
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

/// Wait for container `id` to end and return its exit code (`wharf wait`).
pub fn wait(containers: &Containers, id: &str) -> Result<i32, ContainerError> {
    wait_inactive(containers, id, None)?;
    let l = containers.lock(id)?;
    Ok(l.record.state.exit_code.unwrap_or(0))
}

/// What a stop needs: the workload's pid, its supervisor and monitor, the stop signal and
/// the container's own grace period.
struct Stopping {
    pid: i32,
    procs: Vec<Proc>,
    signal: i32,
    timeout: Option<Duration>,
}

/// Mark container `id` as stopped on purpose (no restart follows) and say what to signal:
/// `forced`, else its stop signal. `None` if it is not running.
fn request_stop(
    containers: &Containers,
    id: &str,
    forced: Option<i32>,
) -> Result<Option<Stopping>, ContainerError> {
    let mut l = containers.lock(id)?;
    if !l.record.state.is_active() {
        return Ok(None);
    }
    if l.record.state.status == Status::Paused {
        // A frozen process cannot act on a signal: thaw it first (as Docker's stop). Best
        // effort: SIGKILL reaches a stopped process, and a cgroup's removal thaws it.
        if let Err(e) = thaw(&mut l) {
            tracing::warn!(container = %id, error = %e, "thawing before stop");
            l.record.state.status = Status::Running;
        }
    }
    let st = &mut l.record.state;
    st.stop_requested = true;
    let pid = st.workload().unwrap_or(0);
    let procs: Vec<Proc> = [st.supervisor, st.monitor].into_iter().flatten().collect();
    // A wasm guest's process turns SIGTERM into an interrupt; another signal would end it
    // without a record of how.
    let signal = forced.unwrap_or_else(|| match l.record.kind {
        crate::dispatch::Kind::Wasm => crate::sys::SIGTERM,
        crate::dispatch::Kind::Native => l
            .record
            .stop_signal
            .as_deref()
            .and_then(crate::sys::parse_signal)
            .unwrap_or(crate::sys::SIGTERM),
    });
    let timeout = l.record.stop_timeout.map(Duration::from_secs);
    l.save()?;
    l.event("kill", &[("signal", signal.to_string())]);
    Ok(Some(Stopping {
        pid,
        procs,
        signal,
        timeout,
    }))
}

/// How long `stop` waits by default before SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

fn signal(pid: i32, sig: i32) {
    if pid > 0 {
        // ESRCH: it ended meanwhile, which is what we want.
        let _ = crate::sys::send_signal(pid, sig);
    }
}

/// `wharf stop`: the stop signal (SIGTERM unless the image or `--stop-signal` says
/// otherwise), then SIGKILL after `timeout` (else the container's `--stop-timeout`, else
/// 10 s). Returns false if it was not running.
pub fn stop(
    containers: &Containers,
    id: &str,
    timeout: Option<Duration>,
) -> Result<bool, ContainerError> {
    let Some(Stopping {
        pid,
        procs,
        signal: first,
        timeout: own,
    }) = request_stop(containers, id, None)?
    else {
        return Ok(false);
    };
    let timeout = timeout.or(own).unwrap_or(DEFAULT_STOP_TIMEOUT);
    signal(pid, first);
    if wait_inactive(containers, id, Some(timeout))? {
        stopped(containers, id);
        return Ok(true);
    }
    // Re-read: a restarting container may have a new workload by now.
    let pid = containers
        .lock(id)
        .map(|l| l.record.state.pid)
        .unwrap_or(pid);
    signal(pid, crate::sys::SIGKILL);
    if let Ok(l) = containers.lock(id) {
        l.event("kill", &[("signal", crate::sys::SIGKILL.to_string())]);
    }
    if wait_inactive(containers, id, Some(KILL_GRACE))? {
        stopped(containers, id);
        return Ok(true);
    }
    // The supervisor does not answer: end it and its monitor; the record is then refreshed
    // from their absence.
    kill_all(&procs);
    if wait_inactive(containers, id, Some(KILL_GRACE))? {
        stopped(containers, id);
        Ok(true)
    } else {
        Err(ContainerError::StopFailed(id.to_string()))
    }
}

/// Record that `stop` stopped container `id` (after its `die`).
fn stopped(containers: &Containers, id: &str) {
    if let Ok(l) = containers.lock(id) {
        l.event("stop", &[]);
    }
}

/// SIGKILL `procs` and wait (briefly) until they are gone.
pub fn kill_all(procs: &[Proc]) {
    for p in procs {
        if p.alive() {
            signal(p.pid, crate::sys::SIGKILL);
        }
    }
    let until = Instant::now() + KILL_GRACE;
    while procs.iter().any(Proc::alive) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `wharf kill`: send `sig` to the workload. SIGKILL also cancels the restart policy.
pub fn kill(containers: &Containers, id: &str, sig: i32) -> Result<(), ContainerError> {
    let mut l = containers.lock(id)?;
    let st = &mut l.record.state;
    let name = &l.record.name;
    st.status
        .reach()
        .map_err(|why| ContainerError::refused(name, why))?;
    let pid = st
        .workload()
        .ok_or_else(|| ContainerError::NotRunning(name.clone()))?;
    if sig == crate::sys::SIGKILL {
        st.stop_requested = true;
        l.save()?;
    }
    crate::sys::send_signal(pid, sig).map_err(|source| ContainerError::Io {
        path: format!("pid {pid}").into(),
        source,
    })?;
    l.event("kill", &[("signal", sig.to_string())]);
    Ok(())
}

/// `wharf rm`: remove container `id`; a running one only with `force` (then killed first).
pub fn remove(containers: &Containers, id: &str, force: bool) -> Result<(), ContainerError> {
    let l = containers.lock(id)?;
    let status = l.record.state.status;
    status
        .remove(force)
        .map_err(|why| ContainerError::refused(&l.record.name, why))?;
    if !status.is_active() {
        return containers.remove(l);
    }
    drop(l);
    if let Some(Stopping { pid, procs, .. }) =
        request_stop(containers, id, Some(crate::sys::SIGKILL))?
    {
        // Killed with the lock held: no monitor or supervisor is killed half-way through
        // writing the record and its events (they wait for the lock, and die waiting).
        let mut l = match containers.lock(id) {
            Ok(l) => l,
            Err(ContainerError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        signal(pid, crate::sys::SIGKILL);
        // The monitor first: its supervisor and container die with it.
        let mut order = procs;
        order.reverse();
        kill_all(&order);
        if crate::container::refresh(&mut l.record.state) {
            (containers.clean_up())(&l.record.id, l.dir());
            l.save()?;
        }
        return containers.remove(l);
    }
    match containers.lock(id) {
        Ok(l) => containers.remove(l),
        Err(ContainerError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn thaw(l: &mut Locked) -> Result<(), ContainerError> {
    match l.record.state.workload() {
        Some(pid) => set_paused(l, pid, false),
        None => {
            l.record.state.status = Status::Running;
            l.save()
        }
    }
}

/// Freeze or thaw the workload `pid` of the locked container and record it.
fn set_paused(l: &mut Locked, pid: i32, frozen: bool) -> Result<(), ContainerError> {
    let r = &l.record;
    crate::backend::set_paused(&r.id, r.kind, pid, frozen).map_err(|reason| {
        ContainerError::Pause {
            id: r.name.clone(),
            reason,
        }
    })?;
    let status = l.record.state.status;
    l.record.state.status = if frozen {
        status.pause()
    } else {
        status.unpause()
    }
    .map_err(|why| ContainerError::refused(&l.record.name, why))?;
    l.save()
}

/// `wharf pause`: freeze a running container.
pub fn pause(containers: &Containers, id: &str) -> Result<(), ContainerError> {
    let mut l = containers.lock(id)?;
    let r = &l.record;
    r.state
        .status
        .pause()
        .map_err(|why| ContainerError::refused(&r.name, why))?;
    let pid = r
        .state
        .workload()
        .ok_or_else(|| ContainerError::NotRunning(r.name.clone()))?;
    if r.kind == crate::dispatch::Kind::Wasm && !r.detached {
        // Its guest runs inside the `wharf run` attached to a terminal: stopping that
        // process would hand the terminal back to the shell.
        return Err(ContainerError::Pause {
            id: r.name.clone(),
            reason: "a wasm container runs inside its foreground `wharf run`; pause works on detached (-d) ones".into(),
        });
    }
    set_paused(&mut l, pid, true)
}

/// `wharf unpause`: thaw a paused container.
pub fn unpause(containers: &Containers, id: &str) -> Result<(), ContainerError> {
    let mut l = containers.lock(id)?;
    l.record
        .state
        .status
        .unpause()
        .map_err(|why| ContainerError::refused(&l.record.name, why))?;
    thaw(&mut l)
}
