//! `run`: create, start, wait for the first process, delete.

use super::{CreateOptions, Runtime, RuntimeError, create};

/// `run ID`: create, start, wait for the first process, delete; returns its exit code.
pub fn run(rt: &Runtime, id: &str, o: &CreateOptions) -> Result<u8, RuntimeError> {
    let saved = create(rt, id, o)?;
    // We are the container's parent here (it was cloned from us): wait for it directly.
    super::start::start(rt, id)?;
    let pid = nix::unistd::Pid::from_raw(saved.pid);
    let code = loop {
        match nix::sys::wait::waitpid(pid, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => break c as u8,
            Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => break 128 + s as u8,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => break 255,
        }
    };
    super::delete::delete(rt, id, true)?;
    Ok(code)
}
