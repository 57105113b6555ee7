//! `wharf compose`: multi-container apps, native and wasm, from compose files. Each
//! container is made from its service's `wharf run` line (the library's `compose` module
//! plans it), by the same code as `wharf run -d`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use wharf::compose::{self, Condition, LoadOptions, Project, ServicePlan};
use wharf::container::{Containers, Record, Status};

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
        /// Building images is out of scope: refused.
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

/// A `wharf run` line, parsed by run's own flags.
#[derive(Debug, Parser)]
#[command(name = "run", no_binary_name = true)]
struct RunLine {
    #[command(flatten)]
    args: super::run::Args,
}

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
            if *build {
                anyhow::bail!(
                    "--build: building images is out of scope for wharf: give each service an image (wharf package, load or pull)"
                );
            }
            up(
                ctx,
                &project,
                &containers,
                services,
                *no_deps,
                *remove_orphans,
                Duration::from_secs(*wait_timeout),
            )?;
            if *detach {
                return Ok(ExitCode::SUCCESS);
            }
            attach(ctx, &project, &containers, services)
        }
        Verb::Down {
            volumes,
            remove_orphans,
            timeout,
        } => down(
            ctx,
            &project,
            &containers,
            *volumes,
            *remove_orphans,
            *timeout,
        ),
        Verb::Ps {
            all,
            quiet,
            format,
            services,
        } => ps(&project, &containers, *all, *quiet, format, services),
        Verb::Logs {
            follow,
            tail,
            timestamps,
            no_color,
            services,
        } => {
            let list = of_services(&project, &containers, services, true);
            logs(
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
        Verb::Stop { timeout, services } => {
            let mut list = of_services(&project, &containers, services, false);
            // Dependents first.
            list.reverse();
            for r in list {
                wharf::lifecycle::stop::stop(&containers, &r.id, timeout.map(Duration::from_secs))?;
                eprintln!("wharf: stopped {}", r.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Start { services } => {
            for r in of_services(&project, &containers, services, true) {
                if let Some((code, why)) = super::start::start_one(ctx, &containers, &r.id)? {
                    eprintln!("wharf: {}: {why}", r.name);
                    return Ok(ExitCode::from(code));
                }
                eprintln!("wharf: started {}", r.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Restart { timeout, services } => {
            for r in of_services(&project, &containers, services, true) {
                wharf::lifecycle::stop::stop(&containers, &r.id, timeout.map(Duration::from_secs))?;
                if let Some((code, why)) = super::start::start_one(ctx, &containers, &r.id)? {
                    eprintln!("wharf: {}: {why}", r.name);
                    return Ok(ExitCode::from(code));
                }
                eprintln!("wharf: restarted {}", r.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Rm {
            force,
            stop,
            services,
        } => {
            let _ = force;
            for r in of_services(&project, &containers, services, true) {
                if r.state.is_active() {
                    if !*stop {
                        eprintln!("wharf: {} is running (stop it first, or -s)", r.name);
                        continue;
                    }
                    wharf::lifecycle::stop::stop(&containers, &r.id, None)?;
                }
                wharf::lifecycle::stop::remove(&containers, &r.id, false)?;
                outln!("{}", r.name);
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
            let mut line: Vec<String> = vec!["exec".into()];
            if let Some(u) = user {
                line.extend(["-u".into(), u.clone()]);
            }
            for e in env {
                line.extend(["-e".into(), e.clone()]);
            }
            if let Some(w) = workdir {
                line.extend(["-w".into(), w.clone()]);
            }
            line.push(name);
            line.extend(command.iter().cloned());
            #[derive(Parser)]
            struct ExecLine {
                #[command(flatten)]
                args: super::exec::Args,
            }
            let parsed = ExecLine::try_parse_from(&line)?;
            super::exec::run(ctx, parsed.args)
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
            if !*no_deps {
                let deps: Vec<String> = plan.depends_on.iter().map(|d| d.0.clone()).collect();
                if !deps.is_empty() {
                    up(
                        ctx,
                        &project,
                        &containers,
                        &deps,
                        false,
                        false,
                        Duration::from_secs(300),
                    )?;
                }
                for (dep, condition, required) in &plan.depends_on {
                    if let Err(e) = wait_for(
                        &project,
                        &containers,
                        dep,
                        *condition,
                        Duration::from_secs(300),
                    ) {
                        if *required {
                            anyhow::bail!("service {} cannot run: {e}", plan.name);
                        }
                        eprintln!("wharf: warning: {e}");
                    }
                }
            }
            ensure_networks_and_volumes(ctx, &project)?;
            one_off(
                ctx,
                &project,
                &plan,
                *rm,
                env,
                entrypoint.as_deref(),
                user.as_deref(),
                workdir.as_deref(),
                command,
            )
        }
        Verb::Pull { services } => {
            let wanted = if services.is_empty() {
                project.active_services()
            } else {
                services.clone()
            };
            let mut status = ExitCode::SUCCESS;
            for s in wanted {
                let plan = project.service(&s)?;
                eprintln!("wharf: pulling {s} ({})", plan.image);
                if !super::run::pull_in_child(ctx, &plan.image, None)? {
                    status = ExitCode::from(EXIT_WHARF_FAILED);
                }
            }
            Ok(status)
        }
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

/// The project's containers (optionally of some services only), oldest first.
fn project_containers(project: &Project, containers: &Containers) -> Vec<Record> {
    let mut list: Vec<Record> = containers
        .list()
        .into_iter()
        .filter(|r| r.options.labels.get(compose::LABEL_PROJECT) == Some(&project.name))
        .collect();
    list.sort_by_key(|r| r.created);
    list
}

fn service_of(r: &Record) -> &str {
    r.options
        .labels
        .get(compose::LABEL_SERVICE)
        .map_or("", String::as_str)
}

/// A one-off container (`compose run`).
fn is_oneoff(r: &Record) -> bool {
    r.options
        .labels
        .get(compose::LABEL_ONEOFF)
        .map(String::as_str)
        == Some("True")
}

fn number_of(r: &Record) -> u32 {
    r.options
        .labels
        .get(compose::LABEL_NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The project's containers of `services` (all when empty), in dependency order.
fn of_services(
    project: &Project,
    containers: &Containers,
    services: &[String],
    with_oneoffs: bool,
) -> Vec<Record> {
    let order = project
        .order(&[])
        .unwrap_or_else(|_| project.all_services());
    let mut list: Vec<Record> = project_containers(project, containers)
        .into_iter()
        .filter(|r| services.is_empty() || services.iter().any(|s| s == service_of(r)))
        .filter(|r| with_oneoffs || !is_oneoff(r))
        .collect();
    list.sort_by_key(|r| {
        (
            order
                .iter()
                .position(|s| s == service_of(r))
                .unwrap_or(usize::MAX),
            number_of(r),
        )
    });
    list
}

fn ensure_networks_and_volumes(ctx: &Session, project: &Project) -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let nets = wharf::network::Networks::new(&ctx.roots);
        for n in project.networks() {
            match nets.get(&n.name) {
                Ok(_) => {}
                Err(_) if n.external => {
                    anyhow::bail!("network {} is external but does not exist", n.name)
                }
                Err(_) => {
                    let subnet = n
                        .subnet
                        .as_deref()
                        .map(wharf::network::parse_subnet)
                        .transpose()?;
                    let gateway = n
                        .gateway
                        .as_deref()
                        .map(|g| g.parse().with_context(|| format!("invalid gateway {g:?}")))
                        .transpose()?;
                    match nets.create(
                        &n.name,
                        &wharf::network::CreateOptions {
                            subnet,
                            gateway,
                            internal: n.internal,
                            disable_dns: false,
                            labels: n.labels.clone(),
                        },
                    ) {
                        Ok(_) => eprintln!("wharf: network {} created", n.name),
                        // Made meanwhile by another `up`.
                        Err(wharf::network::NetworkError::Exists(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }
    let vols = wharf::volume::Volumes::new(&ctx.roots);
    for v in project.volumes() {
        if v.external {
            vols.get(&v.name)
                .with_context(|| format!("volume {} is external but does not exist", v.name))?;
        } else if vols.get(&v.name).is_err() {
            vols.create(&v.name, &v.labels)?;
            eprintln!("wharf: volume {} created", v.name);
        }
    }
    Ok(())
}

/// Make every image the services need present (pulled when missing, as `run` does).
fn pull_missing(ctx: &Session, plans: &[ServicePlan]) -> anyhow::Result<()> {
    let store = ctx.store()?;
    for p in plans {
        if matches!(
            store.resolve(&p.image),
            Err(wharf::image::StoreError::NotFound(_))
        ) {
            eprintln!("wharf: pulling {} for {}", p.image, p.name);
            if !super::run::pull_in_child(ctx, &p.image, None)? {
                anyhow::bail!("service {}: image {} could not be pulled", p.name, p.image);
            }
        }
    }
    Ok(())
}

/// Create (not start) container `name` for a service from its run line; its extra
/// networks are recorded so they are joined when it starts.
fn create(
    ctx: &Session,
    project: &Project,
    plan: &ServicePlan,
    number: u32,
    name: &str,
    detached: bool,
    extra: &[String],
) -> anyhow::Result<Result<Record, ExitCode>> {
    let mut line: Vec<String> = vec!["--name".into(), name.into()];
    if detached {
        line.insert(0, "-d".into());
    }
    for (k, v) in project.container_labels(&plan.name, number, &plan.hash) {
        line.push("--label".into());
        line.push(format!("{k}={v}"));
    }
    line.extend(extra.iter().cloned());
    line.extend(plan.run_args.iter().cloned());
    let parsed = RunLine::try_parse_from(&line)
        .map_err(|e| anyhow::anyhow!("service {}: {e}", plan.name))?;
    let (record, prepared) = match super::run::create(ctx, &parsed.args, detached)? {
        Ok(r) => r,
        Err(code) => return Ok(Err(code)),
    };
    drop(prepared);
    if plan.more_networks.is_empty() {
        return Ok(Ok(record));
    }
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let mut l = containers.lock(&record.id)?;
    for (net, aliases) in &plan.more_networks {
        l.record
            .options
            .connected
            .push(wharf::run::options::Connection {
                network: net.clone(),
                aliases: aliases.clone(),
                ip: None,
            });
    }
    l.save()?;
    Ok(Ok(l.record))
}

fn up(
    ctx: &Session,
    project: &Project,
    containers: &Containers,
    services: &[String],
    no_deps: bool,
    remove_orphans: bool,
    wait: Duration,
) -> anyhow::Result<()> {
    let order = if no_deps && !services.is_empty() {
        services.to_vec()
    } else {
        project.order(services)?
    };
    let mut plans: Vec<ServicePlan> = order
        .iter()
        .map(|s| project.service(s))
        .collect::<Result<_, _>>()?;
    pull_missing(ctx, &plans)?;
    // A new image under the same name (pulled, loaded) changes the service too.
    let store = ctx.store()?;
    for p in &mut plans {
        if let Ok(image) = store.resolve(&p.image) {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(p.hash.as_bytes());
            h.update(image.digest().to_string().as_bytes());
            p.hash = hex::encode(h.finalize());
        }
    }
    ensure_networks_and_volumes(ctx, project)?;
    let existing = project_containers(project, containers);
    if remove_orphans {
        let all = project.all_services();
        for r in existing
            .iter()
            .filter(|r| !all.iter().any(|s| s == service_of(r)))
        {
            wharf::lifecycle::stop::remove(containers, &r.id, true)?;
            eprintln!("wharf: removed orphan {}", r.name);
        }
    }
    for plan in &plans {
        for (dep, condition, required) in &plan.depends_on {
            if no_deps && !order.contains(dep) {
                continue;
            }
            if let Err(e) = wait_for(project, containers, dep, *condition, wait) {
                if *required {
                    anyhow::bail!("service {} cannot start: {e}", plan.name);
                }
                eprintln!(
                    "wharf: warning: {e} (an optional dependency of {})",
                    plan.name
                );
            }
        }
        let mine: Vec<&Record> = existing
            .iter()
            .filter(|r| service_of(r) == plan.name)
            .filter(|r| !is_oneoff(r))
            .collect();
        for number in 1..=plan.replicas {
            let name = project.container_name(plan, number);
            let current = mine
                .iter()
                .find(|r| number_of(r) == number || r.name == name);
            let id = match current {
                Some(r) if r.options.labels.get(compose::LABEL_HASH) == Some(&plan.hash) => {
                    // Running, or a one-shot job that completed: nothing to do.
                    if r.state.is_active()
                        || (r.state.status == Status::Exited
                            && r.state.exit_code == Some(0)
                            && !r.state.stop_requested)
                    {
                        continue;
                    }
                    r.id.clone()
                }
                Some(r) => {
                    eprintln!("wharf: recreating {} (its service changed)", r.name);
                    wharf::lifecycle::stop::stop(containers, &r.id, None)?;
                    wharf::lifecycle::stop::remove(containers, &r.id, true)?;
                    match create(ctx, project, plan, number, &name, true, &[])? {
                        Ok(r) => r.id,
                        Err(_) => anyhow::bail!("service {}: creating {name} failed", plan.name),
                    }
                }
                None => match create(ctx, project, plan, number, &name, true, &[])? {
                    Ok(r) => r.id,
                    Err(_) => anyhow::bail!("service {}: creating {name} failed", plan.name),
                },
            };
            if let Some((_, why)) = super::start::start_one(ctx, containers, &id)? {
                anyhow::bail!("service {}: {name} did not start: {why}", plan.name);
            }
            eprintln!("wharf: started {name}");
        }
        // Scaled down: the extra containers go.
        for r in mine.iter().filter(|r| number_of(r) > plan.replicas) {
            wharf::lifecycle::stop::stop(containers, &r.id, None)?;
            wharf::lifecycle::stop::remove(containers, &r.id, true)?;
            eprintln!("wharf: removed {} (scaled down)", r.name);
        }
    }
    Ok(())
}

/// Wait until service `service`'s containers meet `condition`.
fn wait_for(
    project: &Project,
    containers: &Containers,
    service: &str,
    condition: Condition,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mine: Vec<Record> = project_containers(project, containers)
            .into_iter()
            .filter(|r| service_of(r) == service)
            .filter(|r| !is_oneoff(r))
            .collect();
        if mine.is_empty() {
            return Err(format!("service {service} has no container"));
        }
        let mut done = true;
        for r in &mine {
            let st = &r.state;
            match condition {
                Condition::Started => {}
                Condition::Healthy => {
                    if r.options.health.as_ref().is_none_or(|h| h.disabled()) {
                        return Err(format!(
                            "service {service} has no healthcheck to be healthy by"
                        ));
                    }
                    match st.health.as_ref().map(|h| h.status) {
                        Some(wharf::container::health::HealthStatus::Healthy) => {}
                        Some(wharf::container::health::HealthStatus::Unhealthy) => {
                            let last = st
                                .health
                                .as_ref()
                                .and_then(|h| h.log.last())
                                .map(|p| p.output.trim().to_string())
                                .unwrap_or_default();
                            return Err(format!(
                                "service {service} is unhealthy ({}: {last})",
                                r.name
                            ));
                        }
                        _ if !st.is_active() => {
                            return Err(format!(
                                "service {service} exited ({}, exit code {}) before it was healthy",
                                r.name,
                                st.exit_code.unwrap_or(0)
                            ));
                        }
                        _ => done = false,
                    }
                }
                Condition::CompletedSuccessfully => match (st.status, st.exit_code) {
                    (Status::Exited, Some(0)) => {}
                    (Status::Exited, code) => {
                        return Err(format!(
                            "service {service} did not complete successfully ({} exited with code {})",
                            r.name,
                            code.unwrap_or(255)
                        ));
                    }
                    _ => done = false,
                },
            }
        }
        if done {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "service {service} did not become {} within {timeout:?}",
                match condition {
                    Condition::Healthy => "healthy",
                    _ => "complete",
                }
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
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
    logs(containers, &list, true, None, false, false, || {
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

const COLOURS: &[&str] = &["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

/// The containers' logs as one stream, each line prefixed `name  | ` (coloured on a
/// terminal), following while they run with `follow`, until `stop()`.
fn logs(
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

#[allow(clippy::too_many_arguments)]
fn one_off(
    ctx: &Session,
    project: &Project,
    plan: &ServicePlan,
    rm: bool,
    env: &[String],
    entrypoint: Option<&str>,
    user: Option<&str>,
    workdir: Option<&str>,
    command: &[String],
) -> anyhow::Result<ExitCode> {
    let mut plan = plan.clone();
    let extra: Vec<String> = Vec::new();
    // The run line is FLAGS --pull never IMAGE [COMMAND]: the one-off's own flags replace
    // the service's (-u, -w, --entrypoint), come after its -e (later wins), and it
    // publishes no ports (they belong to the service's containers).
    let pull = plan
        .run_args
        .iter()
        .position(|a| a == "--pull")
        .expect("a service's run line has --pull");
    let (flags, tail) = plan.run_args.split_at(pull);
    let replaced: &[&str] = &[
        "-p",
        if user.is_some() { "-u" } else { "" },
        if workdir.is_some() { "-w" } else { "" },
        if entrypoint.is_some() {
            "--entrypoint"
        } else {
            ""
        },
    ];
    let mut line: Vec<String> = Vec::new();
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        if replaced.contains(&f.as_str()) {
            it.next();
            continue;
        }
        line.push(f.clone());
    }
    if rm {
        line.push("--rm".into());
    }
    for e in env {
        line.extend(["-e".into(), e.clone()]);
    }
    if let Some(u) = user {
        line.extend(["-u".into(), u.into()]);
    }
    if let Some(w) = workdir {
        line.extend(["-w".into(), w.into()]);
    }
    if let Some(ep) = entrypoint {
        line.extend(["--entrypoint".into(), ep.into()]);
    }
    // --pull never IMAGE, then the command: the one-off's if it gives one.
    line.extend(tail[..3].iter().cloned());
    if command.is_empty() && entrypoint.is_none() {
        line.extend(tail[3..].iter().cloned());
    } else {
        line.extend(command.iter().cloned());
    }
    plan.run_args = line;
    let n = rand_suffix();
    let name = format!("{}-{}-run-{n}", project.name, plan.name);
    let record = match create(ctx, project, &plan, 0, &name, false, &extra)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let containers = wharf::lifecycle::containers(&ctx.roots);
    {
        let mut l = containers.lock(&record.id)?;
        l.record
            .options
            .labels
            .insert(compose::LABEL_ONEOFF.into(), "True".into());
        l.save()?;
    }
    let events = super::Printer { explain: false };
    let exit = wharf::lifecycle::supervise(ctx, &containers, &record.id, None, None, rm, &events);
    Ok(super::run::report(&exit))
}

fn rand_suffix() -> String {
    wharf::id::new_id()[..12].to_string()
}

fn down(
    ctx: &Session,
    project: &Project,
    containers: &Containers,
    volumes: bool,
    remove_orphans: bool,
    timeout: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let services = project.all_services();
    let mut list: Vec<Record> = project_containers(project, containers)
        .into_iter()
        .filter(|r| remove_orphans || services.iter().any(|s| s == service_of(r)) || is_oneoff(r))
        .collect();
    // Dependents first.
    let order = project.order(&[]).unwrap_or_else(|_| services.clone());
    list.sort_by_key(|r| std::cmp::Reverse(order.iter().position(|s| s == service_of(r))));
    for r in &list {
        if r.state.is_active() {
            wharf::lifecycle::stop::stop(containers, &r.id, timeout.map(Duration::from_secs))?;
        }
        wharf::lifecycle::stop::remove(containers, &r.id, true)?;
        eprintln!("wharf: removed {}", r.name);
    }
    let left = project_containers(project, containers);
    if !left.is_empty() {
        let names: Vec<&str> = left.iter().map(|r| r.name.as_str()).collect();
        eprintln!(
            "wharf: containers of services no longer in the file remain: {} (--remove-orphans)",
            names.join(", ")
        );
    }
    #[cfg(target_os = "linux")]
    {
        let nets = wharf::network::Networks::new(&ctx.roots);
        for n in project.networks().into_iter().filter(|n| !n.external) {
            let ours = nets
                .get(&n.name)
                .is_ok_and(|d| d.labels.get(compose::LABEL_PROJECT) == Some(&project.name));
            if ours {
                match nets.remove(&n.name, &|n| containers.network_users(n)) {
                    Ok(_) => eprintln!("wharf: network {} removed", n.name),
                    Err(e) => eprintln!("wharf: {e}"),
                }
            }
        }
    }
    if volumes {
        let vols = wharf::volume::Volumes::new(&ctx.roots);
        for v in project.volumes().into_iter().filter(|v| !v.external) {
            match vols.get(&v.name) {
                Ok(found) if found.labels.get(compose::LABEL_PROJECT) == Some(&project.name) => {
                    vols.remove(&v.name, &|v| containers.volume_users(v))?;
                    eprintln!("wharf: volume {} removed", v.name);
                }
                Ok(_) => eprintln!(
                    "wharf: volume {} was not made by project {}: kept",
                    v.name, project.name
                ),
                Err(_) => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ps(
    project: &Project,
    containers: &Containers,
    all: bool,
    quiet: bool,
    format: &str,
    services: &[String],
) -> anyhow::Result<ExitCode> {
    let list: Vec<Record> = of_services(project, containers, services, true)
        .into_iter()
        .filter(|r| all || r.state.is_active())
        .collect();
    if quiet {
        for r in &list {
            outln!("{}", r.id);
        }
    } else if format == "json" {
        let v: Vec<_> = list
            .iter()
            .map(|r| {
                serde_json::json!({
                    "ID": r.id,
                    "Name": r.name,
                    "Service": service_of(r),
                    "Project": project.name,
                    "Image": r.image,
                    "Kind": r.kind.to_string(),
                    "State": r.state.status.to_string(),
                    "Health": r.state.health.as_ref().map(|h| h.status.to_string()).unwrap_or_default(),
                    "Status": super::ps::status(r),
                    "ExitCode": r.state.exit_code.unwrap_or(0),
                    "Publishers": super::ps::ports(containers, r),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.image.clone(),
                    r.kind.to_string(),
                    service_of(r).to_string(),
                    super::ps::status(r),
                    super::ps::ports(containers, r),
                ]
            })
            .collect();
        super::format::table(
            &mut std::io::stdout().lock(),
            &["NAME", "IMAGE", "KIND", "SERVICE", "STATUS", "PORTS"],
            &rows,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn ls(ctx: &Session, all: bool, format: &str) -> anyhow::Result<ExitCode> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, String)> = BTreeMap::new();
    for r in containers.list() {
        let Some(p) = r.options.labels.get(compose::LABEL_PROJECT) else {
            continue;
        };
        let e = projects.entry(p.clone()).or_default();
        *e.0.entry(r.state.status.to_string()).or_default() += 1;
        if let Some(f) = r.options.labels.get(compose::LABEL_FILES) {
            e.1 = f.clone();
        }
    }
    let rows: Vec<(String, String, String)> = projects
        .into_iter()
        .filter(|(_, (states, _))| all || states.contains_key("running"))
        .map(|(name, (states, files))| {
            let status = states
                .iter()
                .map(|(s, n)| format!("{s}({n})"))
                .collect::<Vec<_>>()
                .join(", ");
            (name, status, files)
        })
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
