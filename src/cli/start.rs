//! `wharf start [-a] CONTAINER...` and `wharf create`: start created or stopped containers
//! under a monitor (detached), or make one without starting it.

use std::process::ExitCode;

use wharf::container::Containers;

use super::Context_;
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
    ctx: &Context_,
    containers: &Containers,
    id: &str,
) -> anyhow::Result<Option<(u8, String)>> {
    // A monitor that has just recorded its container's end (`stop`, then `restart`) may
    // still be finishing its log: wait for it to go rather than take it for a start under
    // way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let l = containers.lock(id)?;
        let finishing = !l.record.state.is_active()
            && l.record.state.finished_at.is_some()
            && l.record.state.monitor.is_some_and(|m| m.alive());
        if !finishing || std::time::Instant::now() > deadline {
            break;
        }
        drop(l);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    {
        let mut l = containers.lock(id)?;
        let starting = l.record.state.monitor.is_some_and(|m| m.alive());
        if l.record.state.is_active() || starting {
            return Ok(None);
        }
        // (`run -d` creates it so: no write needed then.)
        if !l.record.detached || l.record.state.stop_requested {
            l.record.detached = true;
            l.record.state.stop_requested = false;
            l.save()?;
        }
    }
    let exe = std::env::current_exe()?;
    use wharf::container::monitor::{self, Started};
    Ok(match monitor::spawn(&exe, ctx.roots.data(), id)? {
        Started::Running => None,
        Started::Failed { code, message } => Some((code, message)),
    })
}

pub fn run(ctx: &Context_, args: Args) -> anyhow::Result<ExitCode> {
    let containers = Containers::new(&ctx.roots);
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
        let code = wharf::container::stop::wait(&containers, &id)?;
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
pub fn create(ctx: &Context_, args: run_cmd::Args) -> anyhow::Result<ExitCode> {
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
