//! Command-line types: one file per command. Flags are parsed here and turned into the
//! library's validated types; the library never sees clap.

/// `println!` that hands a write error back (`?`) instead of panicking: with a closed pipe
/// (`wharf images | head -1`) wharf then ends quietly (see `main`), as other CLIs do.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod attach;
mod build;
mod completion;
mod compose;
mod cp;
mod df;
mod events;
mod exec;
mod export;
mod format;
mod history;
mod image;
mod images;
mod import;
mod info;
mod inspect;
mod load;
mod logs;
pub mod monitor;
mod network;
mod package;
mod port;
mod ps;
mod pull;
mod rename;
mod rmi;
mod run;
mod run_args;
#[cfg(target_os = "linux")]
pub mod runtime;
mod save;
mod start;
mod stats;
mod stop;
mod system;
mod tag;
mod template;
mod top;
mod unpack;
mod update;
mod version;
mod volume;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wharf::paths::Roots;

/// `--label KEY=VALUE` flags as a map (a bare KEY has an empty value).
pub fn labels(flags: &[String]) -> std::collections::BTreeMap<String, String> {
    flags
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Docker's exit code when the tool itself fails.
pub use wharf::lifecycle::EXIT_WHARF_FAILED;

/// wharf runs OCI images holding Linux root filesystems or WebAssembly.
#[derive(Debug, Parser)]
#[command(name = "wharf", version, about, max_term_width = 100)]
pub struct Cli {
    /// Root directory of wharf's state (images, layers, containers).
    #[arg(long, global = true, env = "WHARF_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,
    /// Log filter (error, warn, info, debug, trace, or tracing directives).
    #[arg(long, global = true, env = "WHARF_LOG", default_value = "warn")]
    pub(crate) log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List images.
    Images(images::Args),
    /// Remove images.
    Rmi(rmi::Args),
    /// Run an image (native or wasm) or a .wasm/.wat file (-d: in the background).
    #[command(override_usage = "wharf run [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Run(Box<run::Args>),
    /// Create a container without starting it.
    #[command(override_usage = "wharf create [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Create(Box<run::Args>),
    /// Start created or stopped containers.
    Start(start::Args),
    /// List containers.
    Ps(ps::Args),
    /// Show a container's output.
    Logs(logs::Args),
    /// Stop containers: SIGTERM, then SIGKILL after a grace period.
    Stop(stop::StopArgs),
    /// Send a signal to containers.
    Kill(stop::KillArgs),
    /// Stop and start containers.
    Restart(stop::StopArgs),
    /// Freeze containers' processes (native: the cgroup freezer; wasm: the guest's process).
    Pause(stop::PauseArgs),
    /// Resume paused containers.
    Unpause(stop::PauseArgs),
    /// Wait for containers to end and print their exit codes.
    Wait(stop::WaitArgs),
    /// Remove containers.
    Rm(stop::RmArgs),
    /// Run a command in a running native container.
    #[command(override_usage = "wharf exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    Exec(exec::Args),
    /// Show a container's state and configuration, or an image's manifest, config and how
    /// it would run.
    Inspect(inspect::Args),
    /// Show what containers use: CPU, memory, network and block I/O, PIDs (native and
    /// wasm).
    Stats(stats::Args),
    /// Show a container's processes (`ps` options; default -ef).
    #[command(override_usage = "wharf top CONTAINER [ps OPTIONS]")]
    Top(top::Args),
    /// Show what happens to containers, images, networks and volumes (past and live).
    Events(events::Args),
    /// Follow a running detached container's output until it ends, and exit with its code.
    Attach(attach::Args),
    /// Show a container's published ports.
    Port(port::Args),
    /// Copy files between a container and the host.
    Cp(cp::Args),
    /// Show what a container changed against its image (A added, C changed, D deleted).
    Diff(export::DiffArgs),
    /// Write a container's root filesystem as a tar archive.
    Export(export::ExportArgs),
    /// Make a one-layer image from a root filesystem tarball.
    Import(import::Args),
    /// Build an image from a Dockerfile or Containerfile.
    Build(build::Args),
    /// Give a container another name.
    Rename(rename::Args),
    /// Change containers' limits and restart policy (a running native one's at once).
    Update(update::Args),
    /// Show wharf's version, its wasmtime and the WASI versions it runs.
    Version(version::Args),
    /// Show what wharf keeps and what this host offers it (kernel features, engine).
    Info(info::Args),
    /// Show how an image was made, newest step first.
    History(history::Args),
    /// Manage images: prune, history, ls, rm.
    Image(image::Args),
    /// Give an image another name.
    Tag(tag::Args),
    /// Load images from an OCI layout, oci-archive or docker-archive.
    Load(load::Args),
    /// Save images to an oci-archive or docker-archive.
    Save(save::Args),
    /// Pull an image from a registry.
    Pull(pull::PullArgs),
    /// Push an image to a registry.
    Push(pull::PushArgs),
    /// Save credentials for a registry (Docker's config.json).
    Login(pull::LoginArgs),
    /// Forget the credentials for a registry.
    Logout(pull::LogoutArgs),
    /// Wrap a .wasm file as an OCI image.
    Package(package::Args),
    /// Unpack an image's layers (into the shared layer cache, and optionally a directory).
    Unpack(unpack::Args),
    /// Store maintenance.
    System(system::Args),
    /// Bridge networks: containers reach each other by name, and publish ports.
    Network(network::Args),
    /// Named volumes: directories wharf keeps for containers (`-v NAME:/path`).
    Volume(volume::Args),
    /// Multi-container apps (native and wasm) from compose files.
    Compose(compose::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completion(completion::CompletionArgs),
    /// Write man pages for wharf and each of its commands into a directory.
    Man(completion::ManArgs),
}

/// Set up `tracing` on stderr at `level` (`--log-level`).
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Run the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let roots = cli.root.map_or_else(Roots::default_for_host, Roots::new);
    let ctx = Session {
        roots,
        log_level: cli.log_level,
    };
    match cli.command {
        Command::Images(a) => images::run(&ctx, a),
        Command::Rmi(a) => rmi::run(&ctx, a),
        Command::Run(a) => return run::run(&ctx, *a),
        Command::Create(a) => return start::create(&ctx, *a),
        Command::Start(a) => return start::run(&ctx, a),
        Command::Ps(a) => ps::run(&ctx, a),
        Command::Logs(a) => logs::run(&ctx, a),
        Command::Stop(a) => return stop::stop(&ctx, a),
        Command::Kill(a) => return stop::kill(&ctx, a),
        Command::Restart(a) => return stop::restart(&ctx, a),
        Command::Pause(a) => return stop::pause(&ctx, a),
        Command::Unpause(a) => return stop::unpause(&ctx, a),
        Command::Wait(a) => return stop::wait(&ctx, a),
        Command::Rm(a) => return stop::rm(&ctx, a),
        Command::Exec(a) => return exec::run(&ctx, a),
        Command::Inspect(a) => inspect::run(&ctx, a),
        Command::Stats(a) => stats::run(&ctx, a),
        Command::Top(a) => top::run(&ctx, a),
        Command::Events(a) => events::run(&ctx, a),
        Command::Attach(a) => return attach::run(&ctx, a),
        Command::Port(a) => port::run(&ctx, a),
        Command::Cp(a) => cp::run(&ctx, a),
        Command::Diff(a) => export::diff(&ctx, a),
        Command::Export(a) => export::export(&ctx, a),
        Command::Import(a) => import::run(&ctx, a),
        Command::Build(a) => return build::run(&ctx, a),
        Command::Rename(a) => rename::run(&ctx, a),
        Command::Update(a) => update::run(&ctx, a),
        Command::Version(a) => version::run(a),
        Command::Info(a) => info::run(&ctx, a),
        Command::History(a) => history::run(&ctx, a),
        Command::Image(a) => image::run(&ctx, a),
        Command::Tag(a) => tag::run(&ctx, a),
        Command::Load(a) => load::run(&ctx, a),
        Command::Save(a) => save::run(&ctx, a),
        Command::Package(a) => package::run(&ctx, a),
        Command::Pull(a) => pull::pull(&ctx, a),
        Command::Push(a) => pull::push(&ctx, a),
        Command::Login(a) => pull::login(a),
        Command::Logout(a) => pull::logout(a),
        Command::Unpack(a) => unpack::run(&ctx, a),
        Command::System(a) => system::run(&ctx, a),
        Command::Network(a) => return network::run(&ctx, a),
        Command::Volume(a) => return volume::run(&ctx, a),
        Command::Compose(a) => return compose::run(&ctx, a),
        Command::Completion(a) => completion::completion(a),
        Command::Man(a) => completion::man(a),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// What every command gets: the roots and log level (the library's lifecycle session).
pub use wharf::lifecycle::Session;

/// The lifecycle's events as the CLI prints them: warnings always, the decision with
/// `--explain`.
pub struct Printer {
    pub explain: bool,
}

impl wharf::lifecycle::Events for Printer {
    fn decided(&self, name: &str, decision: &wharf::dispatch::Decision) {
        if self.explain {
            run::explain(name, decision);
        }
    }

    fn progress(&self, message: &str) {
        eprintln!("wharf: {message}");
    }

    fn warning(&self, message: &str) {
        eprintln!("wharf: {message}");
    }
}
