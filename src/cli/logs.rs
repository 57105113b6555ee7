//! `wharf logs [-f] [--tail N] [--since T] [-t] CONTAINER`: a detached container's output,
//! stdout to stdout and stderr to stderr.

use std::io::Write;

use std::sync::{Arc, Mutex};

use wharf::container::{Containers, Record, logs};

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing new output until the container ends.
    #[arg(short, long)]
    follow: bool,
    /// Only the last N lines ("all" for every line).
    #[arg(short = 'n', long, value_name = "N")]
    tail: Option<String>,
    /// Only output since a time (RFC 3339, Unix seconds, or a duration back: 10m).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Prefix each line with its time.
    #[arg(short, long)]
    timestamps: bool,
    container: String,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let id = containers.find(&args.container)?;
    let (dir, detached) = {
        let l = containers.lock(&id)?;
        (l.dir().to_path_buf(), l.record.detached)
    };
    let path = logs::path(&dir, &id);
    if !detached && !path.exists() {
        anyhow::bail!(
            "container {} ran attached: its output went to the terminal, not to a log (run it with -d to keep a log)",
            args.container
        );
    }
    let tail = match args.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("invalid --tail {n:?}: expected a number or all"))?,
        ),
    };
    let since = match &args.since {
        Some(s) => Some(logs::parse_since(s).ok_or_else(|| {
            anyhow::anyhow!("invalid --since {s:?}: expected a time or a duration")
        })?),
        None => None,
    };
    let opts = logs::ReadOptions {
        tail,
        since,
        follow: args.follow,
    };
    print(&containers, &id, &path, &opts, args.timestamps)?;
    Ok(())
}

/// Print container `id`'s log at `path`: stdout entries to stdout, stderr to stderr
/// (following while it runs, with `opts.follow`).
pub fn print(
    containers: &Containers,
    id: &str,
    path: &std::path::Path,
    opts: &logs::ReadOptions,
    timestamps: bool,
) -> std::io::Result<()> {
    let mut running = || {
        containers
            .lock(id)
            .is_ok_and(|l| l.record.state.is_active())
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    logs::read(path, opts, &mut running, &mut |e| {
        let out: &mut dyn Write = if e.stream == "stderr" {
            &mut stderr
        } else {
            &mut stdout
        };
        if timestamps {
            write!(out, "{} ", e.time)?;
        }
        out.write_all(e.log.as_bytes())?;
        out.flush()
    })
}

const COLOURS: &[&str] = &["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

/// The containers' logs as one stream, each line prefixed `name  | ` (coloured on a
/// terminal), following while they run with `follow`, until `stop()`.
pub fn merged(
    containers: &Containers,
    list: &[Record],
    follow: bool,
    tail: Option<usize>,
    timestamps: bool,
    no_color: bool,
    stop: impl Fn() -> bool + Sync,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let colour = !no_color && std::io::stdout().is_terminal();
    let width = list.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let out = Arc::new(Mutex::new(()));
    std::thread::scope(|s| {
        for (i, r) in list.iter().enumerate() {
            let out = out.clone();
            let stop = &stop;
            s.spawn(move || {
                let path = wharf::container::logs::path(&containers.dir_of(&r.id), &r.id);
                let prefix = if colour {
                    format!(
                        "\x1b[{}m{:<width$} |\x1b[0m ",
                        COLOURS[i % COLOURS.len()],
                        r.name
                    )
                } else {
                    format!("{:<width$} | ", r.name)
                };
                let opts = wharf::container::logs::ReadOptions {
                    tail,
                    since: None,
                    follow,
                };
                let mut running = || {
                    !stop()
                        && containers
                            .lock(&r.id)
                            .is_ok_and(|l| l.record.state.is_active())
                };
                let _ = wharf::container::logs::read(&path, &opts, &mut running, &mut |e| {
                    let _guard = out.lock();
                    let mut stdout = std::io::stdout().lock();
                    for line in e.log.split_inclusive('\n') {
                        stdout.write_all(prefix.as_bytes())?;
                        if timestamps {
                            write!(stdout, "{} ", e.time)?;
                        }
                        stdout.write_all(line.as_bytes())?;
                        if !line.ends_with('\n') {
                            stdout.write_all(b"\n")?;
                        }
                    }
                    stdout.flush()
                });
            });
        }
    });
    Ok(())
}
