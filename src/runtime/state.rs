//! `state`, `list` and `ps`: what the runtime knows of its containers.

use super::{Runtime, RuntimeError, state_json};
use crate::backend::native::cgroups::Cgroup;

/// `state ID`: the runtime-spec state document.
pub fn state(rt: &Runtime, id: &str) -> Result<serde_json::Value, RuntimeError> {
    let s = rt.load(id)?;
    let status = rt.status(&s);
    Ok(state_json(&s, status))
}

/// `list`: every container's state (runc's `list --format json` fields).
pub fn list(rt: &Runtime) -> Vec<serde_json::Value> {
    rt.ids()
        .iter()
        .filter_map(|id| rt.load(id).ok())
        .map(|s| {
            let status = rt.status(&s);
            state_json(&s, status)
        })
        .collect()
}

/// `ps ID`: the host pids of the container's processes (from its cgroup).
pub fn ps(rt: &Runtime, id: &str) -> Result<Vec<i32>, RuntimeError> {
    let s = rt.load(id)?;
    Ok(Cgroup::from_dirs(s.cgroup_dirs).procs())
}
