//! `--init`: pid 1 stays a small reaper (forked from the container's first process, never
//! re-executed, so it needs nothing from the image) that reaps zombies and forwards signals
//! to the workload, exiting with its status. It is made non-dumpable and drops every
//! capability, so a process in the container cannot open `/proc/1/exe` or `/proc/1/mem`
//! (the CVE-2019-5736 route to the host's wharf binary) or borrow its privileges.

use caps::CapSet;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// The name `ps` shows for pid 1 (as Docker's shows `docker-init`).
const TITLE: &[u8] = b"wharf-init";

/// Show as `wharf-init` in the container's `ps`, not as the host's wharf with its path and
/// command line: the name (comm), and the argument area rewritten in place. With the area's
/// last byte not NUL, the kernel reads it as a process title: up to the first NUL.
pub(super) fn retitle() {
    let _ = nix::sys::prctl::set_name(c"wharf-init");
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the name's closing parenthesis start at field 3; arg_start and arg_end
    // are fields 48 and 49.
    let Some(rest) = stat.rfind(") ").map(|i| &stat[i + 2..]) else {
        return;
    };
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<usize>().ok());
    let (Some(start), Some(end)) = (field(48), field(49)) else {
        return;
    };
    if end <= start + TITLE.len() + 1 || end - start > 1 << 20 {
        return;
    }
    let len = end - start;
    // SAFETY: [arg_start, arg_end) is this process's own argument area, mapped writable on
    // its stack; this single-threaded process never reads its arguments again.
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, len) };
    area.fill(b' ');
    area[..TITLE.len()].copy_from_slice(TITLE);
    area[TITLE.len()] = 0;
}

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
