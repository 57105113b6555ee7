//! `update`: change a container's limits and restart policy. A running native container's
//! cgroup takes the new limits at once (or the update fails and nothing changes); what the
//! record says is what every later start applies. A wasm guest's engine limits (`--memory`,
//! `--timeout`, `--fuel`) are fixed while it runs: they apply from its next start.

use super::LifecycleError;
use crate::container::{Containers, RestartPolicy};
use crate::dispatch::Kind;

/// What `update` changes (`None`: left as it is).
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub memory: Option<u64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<u64>,
    pub cpus: Option<f64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart: Option<RestartPolicy>,
    pub timeout: Option<std::time::Duration>,
    pub fuel: Option<u64>,
}

/// How an update went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The running container has the new limits now.
    Now,
    /// Recorded: the container takes them at its next start (not running, or a wasm guest).
    NextStart,
}

/// Apply `u` to container `id`.
pub fn update(containers: &Containers, id: &str, u: &Update) -> Result<Applied, LifecycleError> {
    let mut l = containers.lock(id)?;
    let before = l.record.options.clone();
    let r = &mut l.record;
    if r.auto_remove && u.restart.is_some_and(|p| p != RestartPolicy::No) {
        return Err(LifecycleError::Invalid(
            "a restart policy cannot be set on a container started with --rm".into(),
        ));
    }
    let o = &mut r.options;
    let n = &mut o.native;
    if let Some(m) = u.memory {
        o.limits.memory = Some(m);
    }
    n.memory_swap = u.memory_swap.or(n.memory_swap);
    n.memory_reservation = u.memory_reservation.or(n.memory_reservation);
    n.cpus = u.cpus.or(n.cpus);
    n.cpuset_cpus = u.cpuset_cpus.clone().or(n.cpuset_cpus.take());
    n.cpuset_mems = u.cpuset_mems.clone().or(n.cpuset_mems.take());
    n.pids_limit = u.pids_limit.or(n.pids_limit);
    if let Some(t) = u.timeout {
        o.limits.timeout = Some(t);
    }
    if let Some(f) = u.fuel {
        o.limits.fuel = Some(f);
    }
    if let Some(p) = u.restart {
        r.restart = p;
    }
    let running = r.state.is_active() && r.state.workload().is_some();
    let live = running && r.kind == Kind::Native;
    if live && let Err(e) = apply_live(&r.id, &r.options) {
        // The cgroup takes one file at a time: what was written before the refusal goes
        // back to what the record (unchanged) says.
        let _ = apply_live(&r.id, &before);
        return Err(e);
    }
    if let Err(e) = l.save() {
        if live {
            let _ = apply_live(&l.record.id, &before);
        }
        return Err(e.into());
    }
    let applied = if live {
        Applied::Now
    } else {
        Applied::NextStart
    };
    l.event("update", &[]);
    Ok(applied)
}

#[cfg(target_os = "linux")]
fn apply_live(id: &str, o: &crate::run::options::RunOptions) -> Result<(), LifecycleError> {
    use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPidsBuilder, LinuxResources};
    let n = &o.native;
    let mut res = LinuxResources::default();
    let mut memory = LinuxMemory::default();
    memory.set_limit(o.limits.memory.map(|m| m as i64));
    memory.set_swap(n.memory_swap);
    memory.set_reservation(n.memory_reservation.map(|r| r as i64));
    res.set_memory(Some(memory));
    let mut cpu = LinuxCpu::default();
    if let Some(c) = n.cpus {
        cpu.set_period(Some(100_000));
        cpu.set_quota(Some((c * 100_000.0) as i64));
    }
    cpu.set_cpus(n.cpuset_cpus.clone());
    cpu.set_mems(n.cpuset_mems.clone());
    res.set_cpu(Some(cpu));
    if let Some(p) = n.pids_limit {
        let pids = LinuxPidsBuilder::default()
            .limit(p)
            .build()
            .map_err(|e| LifecycleError::Invalid(e.to_string()))?;
        res.set_pids(Some(pids));
    }
    crate::backend::native::cgroups::Cgroup::of_container(id)
        .apply(&res)
        .map_err(|e| LifecycleError::Invalid(format!("updating the container's cgroup: {e}")))
}

#[cfg(not(target_os = "linux"))]
fn apply_live(_: &str, _: &crate::run::options::RunOptions) -> Result<(), LifecycleError> {
    Ok(())
}
