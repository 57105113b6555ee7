//! `start`: a created or stopped container started under its monitor.

use std::time::{Duration, Instant};

use super::monitor::{self, Started};
use super::{LifecycleError, Session};
use crate::container::Containers;

/// Start container `id` under a monitor unless it runs already, and wait until it runs
/// (`Err(Failed)` with the code and message when it could not start).
pub fn start(session: &Session, containers: &Containers, id: &str) -> Result<(), LifecycleError> {
    // A monitor that has just recorded its container's end (`stop`, then `restart`) may
    // still be finishing its log: wait for it to go rather than take it for a start under
    // way.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let l = containers.lock(id)?;
        let finishing = !l.record.state.is_active()
            && l.record.state.finished_at.is_some()
            && l.record.state.monitor.is_some_and(|m| m.alive());
        if !finishing || Instant::now() > deadline {
            break;
        }
        drop(l);
        std::thread::sleep(Duration::from_millis(10));
    }
    {
        let mut l = containers.lock(id)?;
        // Running already, or being started by a live monitor: done (Docker's `start`).
        let starting = l.record.state.monitor.is_some_and(|m| m.alive());
        if l.record.state.status.run().is_err() || starting {
            return Ok(());
        }
        // (`run -d` creates it so: no write needed then.)
        if !l.record.detached || l.record.state.stop_requested {
            l.record.detached = true;
            l.record.state.stop_requested = false;
            l.save()?;
        }
    }
    let exe = crate::sys::own_exe().map_err(|cause| LifecycleError::Io {
        what: "finding wharf's own executable".into(),
        cause,
    })?;
    match monitor::spawn(&exe, session.roots.data(), id)? {
        Started::Running => Ok(()),
        Started::Failed { code, message } => Err(LifecycleError::Failed { code, message }),
    }
}
