//! `delete`: remove a stopped (or created) container's cgroup and state, then run its
//! `poststop` hooks; `--force` kills a running one first and succeeds for a missing one
//! (containerd's shim calls it again after every task).

use std::time::{Duration, Instant};

use super::{Runtime, RuntimeError, Status, state_json};
use crate::backend::native::cgroups::Cgroup;

/// `delete [--force] ID`.
pub fn delete(rt: &Runtime, id: &str, force: bool) -> Result<(), RuntimeError> {
    let dir = rt.dir(id)?;
    let saved = match rt.load(id) {
        Ok(s) => s,
        Err(RuntimeError::NotFound(_)) if force => {
            // A directory without a state file (a create that died half-way) goes too.
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(());
        }
        Err(RuntimeError::NotFound(_)) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let status = rt.status(&saved);
    if status.remove(force).is_err() {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status,
            why: "cannot delete a container that is not stopped (use --force)",
        });
    }
    let cgroup = Cgroup::from_dirs(saved.cgroup_dirs.clone());
    if status != Status::Exited {
        // A created container's waiting process, or a forced running one: kill it (and
        // everything in its cgroup), and wait until it is gone.
        let _ = cgroup.set_frozen(false);
        let _ = crate::sys::send_signal(saved.pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::sys::process_start_time(saved.pid) == Some(saved.start_time)
            && Instant::now() < deadline
        {
            // Reap it if it is ours (`run`); otherwise its parent does.
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(saved.pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    cgroup.destroy();
    std::fs::remove_dir_all(&dir).map_err(super::io(&dir))?;
    if let Ok(spec) = super::spec::read_spec(&saved.bundle)
        && let Some(hooks) = spec.hooks()
        && let Err(e) = super::hooks::run_hooks(
            hooks.poststop().as_ref(),
            &state_json(&saved, Status::Exited),
            "poststop",
        )
    {
        tracing::warn!(error = %e, "poststop hook failed");
    }
    Ok(())
}
