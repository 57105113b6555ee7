//! The hidden commands a detached container runs as: `container-monitor ID` (the monitor)
//! and `container-run ID` (the supervisor the monitor starts). Not for users.

use std::process::ExitCode;

use super::{Context_, run};

#[derive(Debug, clap::Args)]
pub struct Args {
    id: String,
    /// (`container-run`) A foreground `wharf run --rm`: remove the record at the end.
    #[arg(long)]
    rm: bool,
}

pub fn monitor(ctx: &Context_, args: Args) -> anyhow::Result<ExitCode> {
    let ready = wharf::container::monitor::ready_fd_from_env();
    wharf::sys::ignore_hangup();
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

pub fn supervise(ctx: &Context_, args: Args) -> anyhow::Result<ExitCode> {
    let ready = wharf::container::monitor::ready_fd_from_env();
    let containers = wharf::container::Containers::new(&ctx.roots);
    Ok(run::supervise(
        ctx,
        &containers,
        &args.id,
        None,
        ready,
        args.rm,
    ))
}
