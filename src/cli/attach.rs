//! `wharf attach [--no-stdin] [--detach-keys KEYS] [--sig-proxy=false] CONTAINER`: a running
//! detached container's output, live (stdout to stdout, stderr to stderr), and for a `-i`
//! container our stdin to its stdin (through its monitor, see
//! [`wharf::lifecycle::attach`]), until it ends; then wharf exits with its exit code, as
//! `docker attach` does. SIGINT or SIGTERM to wharf is passed to the container
//! (`--sig-proxy`, Docker's default), which then ends as it chooses. With a terminal (`-t`)
//! our terminal is raw and the detach keys (Docker's Ctrl-P Ctrl-Q) leave it running.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wharf::container::logs;
use wharf::lifecycle::attach::{DEFAULT_DETACH_KEYS, Escape, parse_detach_keys};

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pass SIGINT and SIGTERM to the container (Docker's default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    sig_proxy: bool,
    /// Do not attach standard input.
    #[arg(long)]
    no_stdin: bool,
    /// The keys that detach from a container with a terminal, leaving it running
    /// (Docker's spelling: ctrl-p,ctrl-q by default).
    #[arg(long, value_name = "KEYS")]
    detach_keys: Option<String>,
    /// The container (name or id).
    container: String,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let id = containers.find(&args.container)?;
    let (dir, detached, active, interactive, tty, run) = {
        let l = containers.lock(&id)?;
        (
            l.dir().to_path_buf(),
            l.record.detached,
            l.record.state.is_active(),
            l.record.options.interactive,
            l.record.options.tty,
            l.record.state.started_at,
        )
    };
    let keys = parse_detach_keys(args.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH_KEYS))
        .map_err(anyhow::Error::msg)?;
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
    // Output from now on: taken before our stdin can reach the container, so that what it
    // answers to our first line is never older than the point we read from.
    let opts = logs::ReadOptions {
        tail: None,
        since: Some(chrono::Utc::now()),
        follow: true,
    };
    let detach = Arc::new(AtomicBool::new(false));
    // Raw for as long as we are attached to a terminal container's stdin.
    let mut _raw = None;
    if interactive && !args.no_stdin {
        let mut conn = wharf::lifecycle::attach::connect(&dir).map_err(|e| {
            anyhow::anyhow!("cannot reach the standard input of {}: {e}", args.container)
        })?;
        if tty {
            _raw = wharf::sys::raw_terminal();
        }
        let mut escape = Escape::new(if tty { keys } else { Vec::new() });
        let detach = detach.clone();
        std::thread::Builder::new()
            .name("attach-stdin".into())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                let mut buf = [0u8; 8192];
                let mut out = Vec::with_capacity(buf.len());
                loop {
                    let n = match stdin.read(&mut buf) {
                        Ok(0) | Err(_) => return, // our stdin ended: theirs stays open
                        Ok(n) => n,
                    };
                    out.clear();
                    let detached = escape.feed(&buf[..n], &mut out);
                    if conn.write_all(&out).and_then(|()| conn.flush()).is_err() {
                        return;
                    }
                    if detached {
                        detach.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            })?;
    }
    let path = logs::path(&dir, &id);
    let mut passed = false;
    let mut running = || {
        if detach.load(Ordering::SeqCst) {
            return false;
        }
        if let Some(sig) = wharf::sys::termination_requested() {
            if !args.sig_proxy {
                return false;
            }
            if !passed {
                passed = true;
                let _ = wharf::lifecycle::stop::kill(&containers, &id, sig);
            }
        }
        // Attached to this run: it ends when the run does, a restart included (as Docker's
        // attach ends when the container stops).
        containers.lock(&id).is_ok_and(|l| {
            let st = &l.record.state;
            st.status == wharf::container::Status::Running && st.started_at == run
                || st.status == wharf::container::Status::Paused
        })
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    logs::read(&path, &opts, &mut running, &mut |e| {
        let out: &mut dyn Write = if e.stream == "stderr" {
            &mut stderr
        } else {
            &mut stdout
        };
        out.write_all(e.log.as_bytes())?;
        out.flush()
    })?;
    if detach.load(Ordering::SeqCst)
        || wharf::sys::termination_requested().is_some() && !args.sig_proxy
    {
        // Left alone: it goes on running.
        return Ok(ExitCode::SUCCESS);
    }
    // The run's exit code: at once if it is restarting (its next run is another attach's).
    let restarting = containers.lock(&id).map(|l| {
        l.record
            .state
            .is_active()
            .then_some(l.record.state.exit_code)
    })?;
    let code = match restarting {
        Some(code) => code.unwrap_or(0),
        None => wharf::lifecycle::stop::wait(&containers, &id)?,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
