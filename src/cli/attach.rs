//! `wharf attach [--sig-proxy=false] CONTAINER`: a running detached container's output,
//! live (stdout to stdout, stderr to stderr), until it ends; then wharf exits with its exit
//! code, as `docker attach` does. SIGINT or SIGTERM to wharf is passed to the container
//! (`--sig-proxy`, Docker's default), which then ends as it chooses.
//!
//! Output only: the monitor keeps a `-i` container's stdin, which is not reachable from
//! another process yet; so there are no detach keys to read either (Ctrl-C with
//! `--sig-proxy=false` leaves the container running).

use std::process::ExitCode;

use wharf::container::logs;

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pass SIGINT and SIGTERM to the container (Docker's default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    sig_proxy: bool,
    /// The container (name or id).
    container: String,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let id = containers.find(&args.container)?;
    let (dir, detached, active) = {
        let l = containers.lock(&id)?;
        (
            l.dir().to_path_buf(),
            l.record.detached,
            l.record.state.is_active(),
        )
    };
    if !active {
        anyhow::bail!("you cannot attach to a stopped container, start it first");
    }
    if !detached {
        anyhow::bail!(
            "container {} runs in the foreground of another wharf: its output goes there",
            args.container
        );
    }
    wharf::sys::catch_termination();
    let path = logs::path(&dir, &id);
    let opts = logs::ReadOptions {
        tail: None,
        since: Some(chrono::Utc::now()),
        follow: true,
    };
    let mut passed = false;
    let mut running = || {
        if let Some(sig) = wharf::sys::termination_requested() {
            if !args.sig_proxy {
                return false;
            }
            if !passed {
                passed = true;
                let _ = wharf::lifecycle::stop::kill(&containers, &id, sig);
            }
        }
        containers
            .lock(&id)
            .is_ok_and(|l| l.record.state.is_active())
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    logs::read(&path, &opts, &mut running, &mut |e| {
        use std::io::Write;
        let out: &mut dyn Write = if e.stream == "stderr" {
            &mut stderr
        } else {
            &mut stdout
        };
        out.write_all(e.log.as_bytes())?;
        out.flush()
    })?;
    if wharf::sys::termination_requested().is_some() && !args.sig_proxy {
        // Left alone: it goes on running.
        return Ok(ExitCode::SUCCESS);
    }
    let code = wharf::lifecycle::stop::wait(&containers, &id)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
