//! `wharf stop`, `wharf kill`, `wharf restart`, `wharf wait` and `wharf rm`: the verbs that
//! end, wait for or remove containers (names and id prefixes accepted).

use std::process::ExitCode;
use std::time::Duration;

use wharf::container::Containers;
use wharf::lifecycle::stop;

use super::Session;

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before SIGKILL (default: the container's
    /// --stop-timeout, else 10).
    #[arg(short = 't', long = "time")]
    time: Option<u64>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Kill and remove running containers too.
    #[arg(short, long)]
    force: bool,
    /// Also remove anonymous volumes (wharf creates none: bind mounts are the user's).
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Run `f` on each named container, printing the name as given on success (as Docker);
/// errors are reported and make the command fail at the end.
fn each(
    ctx: &Session,
    names: &[String],
    print: bool,
    mut f: impl FnMut(&Containers, &str) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let mut failed = 0;
    for n in names {
        let r = containers
            .find(n)
            .map_err(anyhow::Error::from)
            .and_then(|id| f(&containers, &id));
        match r {
            Ok(()) if print => outln!("{n}"),
            Ok(()) => {}
            Err(e) => {
                eprintln!("wharf: {e:#}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_WHARF_FAILED)
    })
}

pub fn stop(ctx: &Session, args: StopArgs) -> anyhow::Result<ExitCode> {
    each(ctx, &args.containers, true, |c, id| {
        stop::stop(c, id, args.time.map(Duration::from_secs))?;
        Ok(())
    })
}

pub fn kill(ctx: &Session, args: KillArgs) -> anyhow::Result<ExitCode> {
    let sig = wharf::sys::parse_signal(&args.signal)
        .ok_or_else(|| anyhow::anyhow!("invalid signal {:?}", args.signal))?;
    each(ctx, &args.containers, true, |c, id| {
        Ok(stop::kill(c, id, sig)?)
    })
}

pub fn wait(ctx: &Session, args: WaitArgs) -> anyhow::Result<ExitCode> {
    each(ctx, &args.containers, false, |c, id| {
        outln!("{}", stop::wait(c, id)?);
        Ok(())
    })
}

pub fn rm(ctx: &Session, args: RmArgs) -> anyhow::Result<ExitCode> {
    let _ = args.volumes;
    each(ctx, &args.containers, true, |c, id| {
        Ok(stop::remove(c, id, args.force)?)
    })
}

#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn pause(ctx: &Session, args: PauseArgs) -> anyhow::Result<ExitCode> {
    each(ctx, &args.containers, true, |c, id| Ok(stop::pause(c, id)?))
}

pub fn unpause(ctx: &Session, args: PauseArgs) -> anyhow::Result<ExitCode> {
    each(ctx, &args.containers, true, |c, id| {
        Ok(stop::unpause(c, id)?)
    })
}

pub fn restart(ctx: &Session, args: StopArgs) -> anyhow::Result<ExitCode> {
    each(ctx, &args.containers, true, |c, id| {
        stop::stop(c, id, args.time.map(Duration::from_secs))?;
        match super::start::start_one(ctx, c, id)? {
            None => Ok(()),
            Some((code, message)) => anyhow::bail!("{message} (exit code {code})"),
        }
    })
}
