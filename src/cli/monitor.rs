//! The hidden commands a detached container runs as: `container-monitor ID` (the monitor)
//! and `container-run ID` (the supervisor the monitor starts). Not for users.

use std::process::ExitCode;

use super::{Context_, run};

#[derive(Debug, clap::Args)]
pub struct Args {
    id: String,
}

/// The readiness descriptor our parent passed, if it did (and it is open).
#[cfg(target_os = "linux")]
fn ready_fd() -> Option<std::os::fd::OwnedFd> {
    wharf::container::monitor::ready_fd_from_env()
}

#[cfg(target_os = "linux")]
pub fn monitor(ctx: &Context_, args: Args) -> anyhow::Result<ExitCode> {
    let ready = ready_fd();
    // SAFETY: ignoring SIGHUP and SIGINT (no handler code runs).
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let exe = std::env::current_exe()?;
    let containers = wharf::container::Containers::new(&ctx.roots);
    match wharf::container::monitor::run(&containers, &args.id, &exe, ctx.roots.data(), ready) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            tracing::error!(container = %args.id, error = %e, "monitor failed");
            Ok(ExitCode::from(super::EXIT_WHARF_FAILED))
        }
    }
}

#[cfg(target_os = "linux")]
pub fn supervise(ctx: &Context_, args: Args) -> anyhow::Result<ExitCode> {
    let ready = ready_fd().map(std::fs::File::from);
    let containers = wharf::container::Containers::new(&ctx.roots);
    Ok(run::supervise(
        ctx,
        &containers,
        &args.id,
        None,
        ready,
        false,
    ))
}

#[cfg(not(target_os = "linux"))]
pub fn monitor(_: &Context_, _: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("container monitors need a Unix host")
}

#[cfg(not(target_os = "linux"))]
pub fn supervise(_: &Context_, _: Args) -> anyhow::Result<ExitCode> {
    let _ = run::supervise;
    anyhow::bail!("container monitors need a Unix host")
}
