//! `pause`, `resume`, `update` and `events`: the container's cgroup.

use oci_spec::runtime::LinuxResources;

use super::{Runtime, RuntimeError, Status};
use crate::backend::native::cgroups::Cgroup;

/// The container's cgroup, if `transition` allows the change from its status.
fn cgroup_for(
    rt: &Runtime,
    id: &str,
    transition: fn(Status) -> Result<Status, crate::status::Refused>,
    why: &'static str,
) -> Result<Cgroup, RuntimeError> {
    let s = rt.load(id)?;
    let status = rt.status(&s);
    if transition(status).is_err() {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status,
            why,
        });
    }
    Ok(Cgroup::from_dirs(s.cgroup_dirs))
}

/// `pause ID`: freeze every process of the container.
pub fn pause(rt: &Runtime, id: &str) -> Result<(), RuntimeError> {
    let why = "only a running container can be paused";
    Ok(cgroup_for(rt, id, Status::pause, why)?.set_frozen(true)?)
}

/// `resume ID`.
pub fn resume(rt: &Runtime, id: &str) -> Result<(), RuntimeError> {
    let why = "only a paused container can be resumed";
    Ok(cgroup_for(rt, id, Status::unpause, why)?.set_frozen(false)?)
}

/// `update --resources JSON ID`: memory, pids and cpu limits applied to the running cgroup.
pub fn update(rt: &Runtime, id: &str, resources: &[u8]) -> Result<(), RuntimeError> {
    let r: LinuxResources = serde_json::from_slice(resources).map_err(|e| {
        RuntimeError::Unsupported(format!("--resources: not a LinuxResources document: {e}"))
    })?;
    let s = rt.load(id)?;
    Ok(Cgroup::from_dirs(s.cgroup_dirs).apply(&r)?)
}

/// `events --stats ID`: one stats event (runc's shape: type, id, data).
pub fn events(rt: &Runtime, id: &str) -> Result<serde_json::Value, RuntimeError> {
    let s = rt.load(id)?;
    let stats = Cgroup::from_dirs(s.cgroup_dirs).stats();
    Ok(serde_json::json!({"type": "stats", "id": id, "data": stats}))
}
