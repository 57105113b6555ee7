//! `wharf-runtime`: runc's command-line contract (`create`, `start`, `state`, `kill`,
//! `delete`, …) for engines that drive a runtime binary: Docker, Podman (conmon) and
//! containerd's shims. A door onto `wharf::runtime`; nothing of the lifecycle lives here.
//!
//! Shared by two executables: the small `wharf-runtime` (no wasm engine), and `wharf`
//! itself when started under the name `wharf-runtime` (with the engine). The small one
//! hands a wasm bundle's `create`/`run` to a sealed copy of the `wharf` installed beside
//! it, under that name.

#[cfg(target_os = "linux")]
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// wharf's OCI runtime (runc's command line).
#[derive(Debug, Parser)]
#[command(name = "wharf-runtime", version, about, max_term_width = 100)]
struct Cli {
    /// State directory of the runtime's containers.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Also write errors to this file.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// The log file's format: text, or json lines {"level","msg","time"}.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Accepted for compatibility: cgroups are managed through cgroupfs.
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Run another process in a running container.
    Exec(ExecArgs),
    /// Create, start and wait for a container; exit with its code.
    Run(CreateArgs),
    /// Print a container's state (runtime-spec JSON).
    State { id: String },
    /// Send a signal (default TERM) to a container's first process, or all of them.
    Kill {
        /// Every process in the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Remove a stopped container (--force: any, and a missing one is not an error).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Ids only.
        #[arg(short, long)]
        quiet: bool,
    },
    /// The processes of a container.
    Ps {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        id: String,
    },
    /// Freeze a container's processes.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change a container's resource limits.
    Update {
        /// A LinuxResources JSON file, or - for stdin.
        #[arg(short, long, value_name = "FILE")]
        resources: PathBuf,
        id: String,
    },
    /// Resource usage (--stats: one event, then exit).
    Events {
        #[arg(long)]
        stats: bool,
        /// Seconds between events when streaming.
        #[arg(long, default_value = "5")]
        interval: String,
        id: String,
    },
    /// What this runtime supports (runtime-spec features JSON).
    Features,
    /// Write a starting config.json in the current directory.
    Spec {
        #[arg(short, long)]
        bundle: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// A runtime-spec process JSON file (else the command after the id).
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(short, long)]
    detach: bool,
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Working directory (with a command).
    #[arg(long)]
    cwd: Option<String>,
    /// KEY=VALUE (with a command).
    #[arg(short, long)]
    env: Vec<String>,
    /// Accepted for compatibility.
    #[arg(long)]
    preserve_fds: Option<u32>,
    /// The container's id, then the command and its arguments (options end at the id, as
    /// runc's do).
    #[arg(
        value_name = "ID",
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    argv: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The bundle directory (config.json and the root filesystem).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's pid here.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master side to (process.terminal).
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Accepted for compatibility (wharf always uses pivot_root).
    #[arg(long)]
    no_pivot: bool,
    /// Keep the caller's session keyring (else the container gets one of its own).
    #[arg(long)]
    no_new_keyring: bool,
    /// Accepted for compatibility.
    #[arg(long)]
    preserve_fds: Option<u32>,
    id: String,
}

/// The command line's entry point; `engine` is the wasm engine, when this executable has
/// one.
#[cfg(target_os = "linux")]
pub fn main(engine: Option<wharf::runtime::guest::Engine>) -> ExitCode {
    // Before anything enters a container: run from a sealed, anonymous copy of this binary,
    // so that a container reaching it through /proc/PID/exe (an entrypoint whose
    // interpreter is `#!/proc/self/exe`, CVE-2019-5736) finds a file nobody can write,
    // never the host's binary. (Re-executes once; the copy sees itself sealed.)
    if let Err(e) = wharf::backend::native::seal::ensure_sealed() {
        eprintln!("wharf-runtime: cannot run from a sealed copy of itself: {e}");
        return ExitCode::from(1);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // runc exits 1 for usage errors too (clap's own help/version: 0).
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    // Opened first: `exec` ends up inside a container's mount namespace, where the host's
    // paths are not.
    let log = cli.log.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let json = cli.log_format == "json";
    match run(cli, engine) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("wharf-runtime: {msg}");
            if let Some(mut f) = log {
                let line = if json {
                    serde_json::json!({"level": "error", "msg": msg, "time": chrono::Utc::now().to_rfc3339()}).to_string()
                } else {
                    format!("{} error: {msg}", chrono::Utc::now().to_rfc3339())
                };
                let _ = writeln!(f, "{line}");
            }
            ExitCode::from(1)
        }
    }
}

/// A wasm bundle and no engine here: run this very command line in a sealed copy of the
/// `wharf` binary installed beside this one (it carries the engine), as `wharf-runtime`.
#[cfg(target_os = "linux")]
fn hand_to_engine(bundle: &std::path::Path, why: &str) -> anyhow::Error {
    let me = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .unwrap_or_default();
    let me = if me.components().count() > 1 {
        me
    } else {
        std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(&me))
                    .find(|c| c.is_file())
            })
            .unwrap_or(me)
    };
    let wharf = me.with_file_name("wharf");
    if let Err(e) = std::fs::metadata(&wharf) {
        return anyhow::anyhow!(
            "bundle {} is WebAssembly ({why}): it needs the wharf binary beside wharf-runtime ({}): {e}",
            bundle.display(),
            wharf.display()
        );
    }
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let e = wharf::backend::native::seal::exec_sealed(&wharf, "wharf-runtime".as_ref(), args);
    anyhow::anyhow!("starting a sealed {}: {e}", wharf.display())
}

#[cfg(target_os = "linux")]
fn run(cli: Cli, engine: Option<wharf::runtime::guest::Engine>) -> anyhow::Result<ExitCode> {
    use wharf::runtime::{self, CreateOptions, Runtime};
    let rt = Runtime::new(cli.root.clone().unwrap_or_else(Runtime::default_root));
    let opts = |a: &CreateArgs| CreateOptions {
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        engine,
        no_new_keyring: a.no_new_keyring,
    };
    if engine.is_none()
        && let Command::Create(a) | Command::Run(a) = &cli.command
        && let Some(why) = runtime::needs_engine(&a.bundle)
    {
        return Err(hand_to_engine(&a.bundle, &why));
    }
    let print = |v: &serde_json::Value| -> anyhow::Result<()> {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(v)?
        )?;
        Ok(())
    };
    match cli.command {
        Command::Create(a) => {
            runtime::create(&rt, &a.id, &opts(&a))?;
        }
        Command::Run(a) => {
            let code = runtime::run(&rt, &a.id, &opts(&a))?;
            return Ok(ExitCode::from(code));
        }
        Command::Start { id } => runtime::start(&rt, &id)?,
        Command::Exec(a) => {
            let o = runtime::ExecOptions {
                process: a.process,
                args: a.argv[1..].to_vec(),
                detach: a.detach,
                pid_file: a.pid_file,
                console_socket: a.console_socket,
                tty: a.tty,
                cwd: a.cwd,
                env: a.env,
            };
            if let Some(code) = runtime::exec(&rt, &a.argv[0], &o)? {
                return Ok(ExitCode::from(code));
            }
        }
        Command::State { id } => print(&runtime::state(&rt, &id)?)?,
        Command::Kill { all, id, signal } => {
            // A name with or without SIG, or a number, as runc takes it.
            let sig = wharf::sys::parse_signal(&signal)
                .ok_or_else(|| anyhow::anyhow!("unknown signal {signal:?}"))?;
            runtime::kill(&rt, &id, sig, all)?;
        }
        Command::Delete { force, id } => runtime::delete(&rt, &id, force)?,
        Command::List { format, quiet } => {
            let all = runtime::list(&rt);
            let mut out = std::io::stdout().lock();
            if quiet {
                for c in &all {
                    writeln!(out, "{}", c["id"].as_str().unwrap_or_default())?;
                }
            } else if format == "json" {
                writeln!(out, "{}", serde_json::to_string(&all)?)?;
            } else {
                writeln!(
                    out,
                    "{:<20} {:<8} {:<10} {:<40} {:<30} OWNER",
                    "ID", "PID", "STATUS", "BUNDLE", "CREATED"
                )?;
                for c in &all {
                    writeln!(
                        out,
                        "{:<20} {:<8} {:<10} {:<40} {:<30} {}",
                        c["id"].as_str().unwrap_or_default(),
                        c["pid"],
                        c["status"].as_str().unwrap_or_default(),
                        c["bundle"].as_str().unwrap_or_default(),
                        c["created"].as_str().unwrap_or_default(),
                        c["owner"].as_str().unwrap_or_default()
                    )?;
                }
            }
        }
        Command::Ps { format, id } => {
            let pids = runtime::ps(&rt, &id)?;
            let mut out = std::io::stdout().lock();
            if format == "json" {
                writeln!(out, "{}", serde_json::to_string(&pids)?)?;
            } else {
                writeln!(out, "{:<8} CMD", "PID")?;
                for p in pids {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    let cmd: Vec<String> = cmd
                        .split(|&b| b == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    writeln!(out, "{p:<8} {}", cmd.join(" "))?;
                }
            }
        }
        Command::Pause { id } => runtime::pause(&rt, &id)?,
        Command::Resume { id } => runtime::resume(&rt, &id)?,
        Command::Update { resources, id } => {
            let bytes = if resources.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
                b
            } else {
                std::fs::read(&resources)?
            };
            runtime::update(&rt, &id, &bytes)?;
        }
        Command::Events {
            stats,
            interval,
            id,
        } => {
            let every = wharf::run::options::parse_duration(&interval)
                .or_else(|_| interval.parse::<u64>().map(std::time::Duration::from_secs))
                .map_err(|_| anyhow::anyhow!("invalid --interval {interval:?}"))?;
            loop {
                let e = runtime::events(&rt, &id)?;
                writeln!(std::io::stdout().lock(), "{e}")?;
                if stats {
                    break;
                }
                std::thread::sleep(every);
                if runtime::state(&rt, &id)?["status"] == "stopped" {
                    break;
                }
            }
        }
        Command::Features => print(&runtime::features())?,
        Command::Spec { bundle } => {
            let dir = bundle.unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                anyhow::bail!("File {} exists. Remove it first", path.display());
            }
            std::fs::write(&path, serde_json::to_vec_pretty(&runtime::default_spec())?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(target_os = "linux"))]
pub fn main(_: Option<()>) -> ExitCode {
    let _ = Cli::parse;
    eprintln!("wharf-runtime: an OCI runtime needs a Linux host");
    ExitCode::from(1)
}
