//! `wharf start [-a] CONTAINER...` and `wharf create`: start created or stopped containers
//! under a monitor (detached), or make one without starting it.

use std::process::ExitCode;

use wharf::container::Containers;
use wharf::lifecycle::LifecycleError;

use super::Session;
use super::run as run_cmd;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Attach: print the container's output until it ends, and exit with its code.
    #[arg(short, long)]
    attach: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Start container `id` unless it runs already: `Some((code, why))` if it did not start.
pub fn start_one(
    ctx: &Session,
    containers: &Containers,
    id: &str,
) -> anyhow::Result<Option<(u8, String)>> {
    match wharf::lifecycle::start(ctx, containers, id) {
        Ok(()) => Ok(None),
        Err(LifecycleError::Failed { code, message }) => Ok(Some((code, message))),
        Err(e) => Err(e.into()),
    }
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    let containers = ctx.containers();
    if args.attach {
        if args.containers.len() != 1 {
            anyhow::bail!("start -a takes one container");
        }
        let id = containers.find(&args.containers[0])?;
        let since = chrono::Utc::now();
        if let Some((code, message)) = start_one(ctx, &containers, &id)? {
            eprintln!("wharf: {message}");
            return Ok(ExitCode::from(code));
        }
        let path = {
            let l = containers.lock(&id)?;
            wharf::container::logs::path(l.dir(), &id)
        };
        let opts = wharf::container::logs::ReadOptions {
            tail: None,
            since: Some(since),
            follow: true,
        };
        super::logs::print(&containers, &id, &path, &opts, false)?;
        let code = wharf::lifecycle::stop::wait(&containers, &id)?;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)));
    }
    let mut result = ExitCode::SUCCESS;
    for n in &args.containers {
        let outcome = containers
            .find(n)
            .map_err(anyhow::Error::from)
            .and_then(|id| start_one(ctx, &containers, &id));
        match outcome {
            Ok(None) => outln!("{n}"),
            Ok(Some((code, message))) => {
                eprintln!("wharf: {n}: {message}");
                result = ExitCode::from(code);
            }
            Err(e) => {
                eprintln!("wharf: {e:#}");
                result = ExitCode::from(super::EXIT_WHARF_FAILED);
            }
        }
    }
    Ok(result)
}

/// `wharf create`: `run`'s flags, recorded but not started.
pub fn create(ctx: &Session, args: run_cmd::Args) -> anyhow::Result<ExitCode> {
    if !wharf::container::supported() {
        anyhow::bail!("container records need a Linux or Windows host");
    }
    match run_cmd::create(ctx, &args, true)? {
        Ok((record, _)) => {
            outln!("{}", record.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}
