//! `wharf compose`: multi-container apps, native and wasm, from compose files. Each
//! container is made from its service's `wharf run` line (the library's `compose` module
//! plans it), by the same code as `wharf run -d`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use wharf::compose::converge::{self, of_services};
use wharf::compose::{ComposeError, LoadOptions, Project};
use wharf::container::Containers;

use super::{EXIT_WHARF_FAILED, Session};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Compose file (repeat to merge; default compose.yaml, compose.yml, docker-compose.y[a]ml).
    #[arg(short, long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Project name (default: `name:` in the file, COMPOSE_PROJECT_NAME, else the
    /// directory's name).
    #[arg(short = 'p', long, value_name = "NAME")]
    project_name: Option<String>,
    /// Enable a profile.
    #[arg(long, value_name = "PROFILE")]
    profile: Vec<String>,
    /// Variables for interpolation, instead of `.env`.
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Where relative paths and `.env` are (default: the first file's directory).
    #[arg(long, value_name = "DIR")]
    project_directory: Option<PathBuf>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Create and start the services' containers in dependency order (a changed service is
    /// recreated, an unchanged one left as it is).
    Up {
        /// In the background (else follow their output; Ctrl-C stops them).
        #[arg(short, long)]
        detach: bool,
        /// Build the images of services with `build:` first, even if they exist.
        #[arg(long)]
        build: bool,
        /// Do not start the services' dependencies.
        #[arg(long)]
        no_deps: bool,
        /// Remove containers of services no longer in the file.
        #[arg(long)]
        remove_orphans: bool,
        /// Seconds to wait for dependencies' conditions.
        #[arg(long, default_value = "300", value_name = "SECONDS")]
        wait_timeout: u64,
        services: Vec<String>,
    },
    /// Stop and remove the project's containers and networks (-v: and its volumes).
    Down {
        #[arg(short, long)]
        volumes: bool,
        #[arg(long)]
        remove_orphans: bool,
        /// Seconds to wait before killing.
        #[arg(short, long, value_name = "SECONDS")]
        timeout: Option<u64>,
    },
    /// List the project's containers.
    Ps {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        quiet: bool,
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
        services: Vec<String>,
    },
    /// Show the services' output, one stream, each line prefixed by its container.
    Logs {
        #[arg(short, long)]
        follow: bool,
        #[arg(short = 'n', long, value_name = "N")]
        tail: Option<usize>,
        #[arg(short, long)]
        timestamps: bool,
        /// No colours even on a terminal.
        #[arg(long)]
        no_color: bool,
        services: Vec<String>,
    },
    /// Stop the services' containers.
    Stop {
        #[arg(short, long, value_name = "SECONDS")]
        timeout: Option<u64>,
        services: Vec<String>,
    },
    /// Start the services' existing containers.
    Start { services: Vec<String> },
    /// Restart the services' containers.
    Restart {
        #[arg(short, long, value_name = "SECONDS")]
        timeout: Option<u64>,
        services: Vec<String>,
    },
    /// Remove the services' stopped containers (-s: stop them first).
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(short, long)]
        stop: bool,
        services: Vec<String>,
    },
    /// Run a command in a service's running (native) container.
    Exec {
        /// Which container of the service (default 1).
        #[arg(long, default_value = "1")]
        index: u32,
        #[arg(short = 'T', long)]
        no_tty: bool,
        #[arg(short, long, value_name = "USER")]
        user: Option<String>,
        #[arg(short, long, value_name = "KEY=VALUE")]
        env: Vec<String>,
        #[arg(short, long, value_name = "DIR")]
        workdir: Option<String>,
        /// The service, then the command and its arguments (options end at SERVICE).
        #[arg(
            value_name = "SERVICE",
            required = true,
            num_args = 2..,
            trailing_var_arg = true
        )]
        argv: Vec<String>,
    },
    /// Run a one-off container of a service (its dependencies are started first).
    Run {
        #[arg(long)]
        rm: bool,
        #[arg(short, long, value_name = "KEY=VALUE")]
        env: Vec<String>,
        #[arg(long, value_name = "CMD")]
        entrypoint: Option<String>,
        #[arg(short, long, value_name = "USER")]
        user: Option<String>,
        #[arg(short, long, value_name = "DIR")]
        workdir: Option<String>,
        #[arg(long)]
        no_deps: bool,
        #[arg(short = 'T', long)]
        no_tty: bool,
        /// The service, then the command and its arguments (options end at SERVICE).
        #[arg(
            value_name = "SERVICE",
            required = true,
            num_args = 1..,
            trailing_var_arg = true
        )]
        argv: Vec<String>,
    },
    /// Pull the services' images.
    Pull { services: Vec<String> },
    /// Build the images of the services that have `build:` (all, or those named).
    Build { services: Vec<String> },
    /// Print the resolved model (interpolated, merged) as YAML.
    Config {
        /// Service names only.
        #[arg(long)]
        services: bool,
        /// Volume names only.
        #[arg(long)]
        volumes: bool,
        /// Only check it.
        #[arg(short, long)]
        quiet: bool,
    },
    /// List projects (from their containers' labels).
    Ls {
        /// Also projects whose containers all stopped.
        #[arg(short, long)]
        all: bool,
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
}

/// A convergence's outcome as the command's: a lifecycle failure exits with its code.
fn done(r: Result<(), ComposeError>) -> anyhow::Result<ExitCode> {
    match r {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(ComposeError::Lifecycle(e)) => Ok(super::run::lifecycle_failure(e)),
        Err(e) => Err(e.into()),
    }
}

/// What compose prints as it goes.
const PRINTER: super::Printer = super::Printer { explain: false };

fn load(args: &Args) -> anyhow::Result<Project> {
    let p = Project::load(&LoadOptions {
        files: args.files.clone(),
        project_name: args.project_name.clone(),
        profiles: args.profile.clone(),
        env_files: args.env_file.clone(),
        dir: None,
        project_directory: args.project_directory.clone(),
    })?;
    for w in &p.warnings {
        eprintln!("wharf: warning: {w}");
    }
    Ok(p)
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    if let Verb::Ls { all, format } = &args.verb {
        return ls(ctx, *all, format);
    }
    let project = load(&args)?;
    // Building runs RUN steps as native containers cloned from this process: it goes on
    // from a sealed copy of wharf first (as `wharf build` does), when anything may be built.
    #[cfg(target_os = "linux")]
    if matches!(
        args.verb,
        Verb::Up { .. } | Verb::Build { .. } | Verb::Run { .. }
    ) && project
        .all_services()
        .iter()
        .any(|s| project.service(s).is_ok_and(|p| p.build.is_some()))
    {
        wharf::backend::native::seal::ensure_sealed()
            .map_err(|e| anyhow::anyhow!("cannot run from a sealed copy of wharf: {e}"))?;
    }
    let containers = wharf::lifecycle::containers(&ctx.roots);
    match &args.verb {
        Verb::Up {
            detach,
            build,
            no_deps,
            remove_orphans,
            wait_timeout,
            services,
        } => {
            let opts = converge::UpOptions {
                services: services.clone(),
                no_deps: *no_deps,
                remove_orphans: *remove_orphans,
                wait: Duration::from_secs(*wait_timeout),
                build: *build,
            };
            converge::up(ctx, &project, &containers, &opts, &PRINTER)?;
            if *detach {
                return Ok(ExitCode::SUCCESS);
            }
            attach(ctx, &project, &containers, services)
        }
        Verb::Down {
            volumes,
            remove_orphans,
            timeout,
        } => {
            let opts = converge::DownOptions {
                volumes: *volumes,
                remove_orphans: *remove_orphans,
                timeout: *timeout,
            };
            converge::down(ctx, &project, &containers, &opts, &PRINTER)?;
            Ok(ExitCode::SUCCESS)
        }
        Verb::Ps {
            all,
            quiet,
            format,
            services,
        } => super::ps::compose(&project, &containers, *all, *quiet, format, services),
        Verb::Logs {
            follow,
            tail,
            timestamps,
            no_color,
            services,
        } => {
            let list = of_services(&project, &containers, services, true);
            super::logs::merged(
                &containers,
                &list,
                *follow,
                *tail,
                *timestamps,
                *no_color,
                || false,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Verb::Stop { timeout, services } => done(converge::stop(
            &project,
            &containers,
            services,
            *timeout,
            &PRINTER,
        )),
        Verb::Start { services } => done(converge::start(
            ctx,
            &project,
            &containers,
            services,
            None,
            &PRINTER,
        )),
        Verb::Restart { timeout, services } => done(converge::start(
            ctx,
            &project,
            &containers,
            services,
            Some(*timeout),
            &PRINTER,
        )),
        Verb::Rm {
            force: _,
            stop,
            services,
        } => {
            for name in converge::remove(&project, &containers, services, *stop, &PRINTER)? {
                outln!("{name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Exec {
            index,
            no_tty: _,
            user,
            env,
            workdir,
            argv,
        } => {
            let (service, command) = argv.split_first().expect("clap requires SERVICE");
            let plan = project.service(service)?;
            let name = project.container_name(&plan, *index);
            let mut argv = vec![name];
            argv.extend(command.iter().cloned());
            let exec = super::exec::Args {
                interactive: false,
                tty: false,
                user: user.clone(),
                env: env.clone(),
                workdir: workdir.clone(),
                argv,
            };
            super::exec::run(ctx, exec)
        }
        Verb::Run {
            rm,
            env,
            entrypoint,
            user,
            workdir,
            no_deps,
            no_tty: _,
            argv,
        } => {
            let (service, command) = argv.split_first().expect("clap requires SERVICE");
            let plan = project.service(service)?;
            // Its image, if it is built and missing (as `up` builds it).
            if let Err(e) = converge::build(ctx, std::slice::from_ref(&plan), false, &PRINTER) {
                return done(Err(e));
            }
            let mut one = converge::OneOff {
                rm: *rm,
                entrypoint: entrypoint.clone(),
                user: user.clone(),
                workdir: workdir.clone(),
                command: command.to_vec(),
                no_deps: *no_deps,
                ..Default::default()
            };
            for e in env {
                one.env.extend(wharf::run::options::parse_env(e)?);
            }
            let record = match converge::one_off(ctx, &project, &containers, &plan, &one, &PRINTER)
            {
                Ok(r) => r,
                Err(e) => return done(Err(e)),
            };
            let exit = wharf::lifecycle::supervise(
                ctx,
                &containers,
                &record.id,
                None,
                None,
                *rm,
                &PRINTER,
            );
            Ok(super::run::report(&exit))
        }
        Verb::Build { services } => {
            let names = if services.is_empty() {
                project.active_services()
            } else {
                services.clone()
            };
            let plans = names
                .iter()
                .map(|s| project.service(s))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(p) = plans
                .iter()
                .find(|p| p.build.is_none() && services.contains(&p.name))
            {
                anyhow::bail!("service {:?} has no build:", p.name);
            }
            converge::build(ctx, &plans, true, &PRINTER)?;
            Ok(ExitCode::SUCCESS)
        }
        Verb::Pull { services } => Ok(match converge::pull(ctx, &project, services, &PRINTER)? {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(EXIT_WHARF_FAILED),
        }),
        Verb::Config {
            services,
            volumes,
            quiet,
        } => {
            if *services {
                for s in project.all_services() {
                    outln!("{s}");
                }
            } else if *volumes {
                for v in project.volumes() {
                    outln!("{}", v.key);
                }
            } else if !*quiet {
                let mut out = std::io::stdout().lock();
                write!(out, "{}", project.to_yaml())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Ls { .. } => unreachable!("handled above"),
    }
}

/// `up` without -d: the services' output until they all end or Ctrl-C (which stops them).
fn attach(
    ctx: &Session,
    project: &Project,
    containers: &Containers,
    services: &[String],
) -> anyhow::Result<ExitCode> {
    let _ = ctx;
    wharf::sys::catch_termination();
    let list = of_services(project, containers, services, false);
    super::logs::merged(containers, &list, true, None, false, false, || {
        wharf::sys::termination_requested().is_some()
    })?;
    if wharf::sys::termination_requested().is_some() {
        eprintln!("wharf: stopping {}", project.name);
        for r in list.iter().rev() {
            let _ = wharf::lifecycle::stop::stop(containers, &r.id, None);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ls(ctx: &Session, all: bool, format: &str) -> anyhow::Result<ExitCode> {
    let rows: Vec<(String, String, String)> = converge::projects(&ctx.containers())
        .into_iter()
        .filter(|p| all || p.running)
        .map(|p| (p.name, p.status, p.config_files))
        .collect();
    if format == "json" {
        let v: Vec<_> = rows
            .iter()
            .map(|(n, s, f)| serde_json::json!({"Name": n, "Status": s, "ConfigFiles": f}))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let rows: Vec<Vec<String>> = rows.into_iter().map(|(n, s, f)| vec![n, s, f]).collect();
        super::format::table(
            &mut std::io::stdout().lock(),
            &["NAME", "STATUS", "CONFIG FILES"],
            &rows,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
