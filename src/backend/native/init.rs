//! `--init`: pid 1 stays a small reaper (forked from the container's first process, never
//! re-executed, so it needs nothing from the image) that reaps zombies and forwards signals
//! to the workload, exiting with its status. It is made non-dumpable and drops every
//! capability, so a process in the container cannot open `/proc/1/exe` or `/proc/1/mem`
//! (the CVE-2019-5736 route to the host's wharf binary) or borrow its privileges.

use caps::CapSet;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// Be pid 1 for `workload` until it ends; exit with its status.
pub fn reap(workload: Pid) -> ! {
    let pid = workload.as_raw();
    // Hold nothing of wharf's: the error pipe must close when the workload execs.
    // SAFETY: close_range on descriptors this process owns; none is used afterwards.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    // SAFETY: prctl with PR_SET_DUMPABLE and an integer has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong) };
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        let _ = caps::clear(None, set);
    }
    super::forward_signals_to(workload);
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => std::process::exit(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                std::process::exit(128 + sig as i32)
            }
            Err(nix::errno::Errno::ECHILD) => std::process::exit(0),
            _ => {} // a zombie reaped
        }
    }
}
