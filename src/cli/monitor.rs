//! The hidden commands a detached container runs as: `container-monitor ID` (the monitor)
//! and `container-run ID` (the supervisor the monitor starts): the library's process
//! protocol (`wharf::lifecycle::monitor`), routed back to it. Not for users.

use std::process::ExitCode;

use super::Session;
use wharf::lifecycle::{self, monitor};

#[derive(Debug, clap::Args)]
pub struct Args {
    id: String,
    /// (`container-run`) A foreground `wharf run --rm`: remove the record at the end.
    #[arg(long)]
    rm: bool,
}

pub fn monitor(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    let ready = monitor::ready_fd_from_env();
    wharf::sys::ignore_hangup();
    let exe = std::env::current_exe()?;
    match monitor::run(&ctx.containers(), &args.id, &exe, ctx.roots.data(), ready) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            tracing::error!(container = %args.id, error = %e, "monitor failed");
            Ok(ExitCode::from(super::EXIT_WHARF_FAILED))
        }
    }
}

pub fn supervise(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    let ready = monitor::ready_fd_from_env();
    let events = super::Printer { explain: false };
    let exit = lifecycle::supervise(
        ctx,
        &ctx.containers(),
        &args.id,
        None,
        ready,
        args.rm,
        &events,
    );
    Ok(super::run::report(&exit))
}
