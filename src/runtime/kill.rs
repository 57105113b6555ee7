//! `kill`: a signal to the container's first process, or with `--all` to every process in
//! its cgroup.

use super::{Runtime, RuntimeError, Status};
use crate::backend::native::cgroups::Cgroup;

/// `kill [--all] ID SIGNAL`.
pub fn kill(rt: &Runtime, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
    let s = rt.load(id)?;
    let status = rt.status(&s);
    if status == Status::Exited && !all {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status,
            why: "there is no process to signal",
        });
    }
    let pids = if all {
        Cgroup::from_dirs(s.cgroup_dirs).procs()
    } else {
        vec![s.pid]
    };
    for pid in pids {
        // The first process only while its pid still has its recorded start time.
        if !all && crate::sys::process_start_time(pid) != Some(s.start_time) {
            continue;
        }
        crate::sys::send_signal(pid, signal).map_err(|source| RuntimeError::Io {
            path: format!("/proc/{pid}").into(),
            source,
        })?;
    }
    Ok(())
}
