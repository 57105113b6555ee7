//! Convergence: bring a project's containers in line with its plan. `up` makes what is
//! missing, recreates what changed, starts what stopped, waits on dependencies'
//! conditions and scales down; `down` removes the project; a one-off (`compose run`) is a
//! container of a service with the caller's changes. Every container is made and started
//! by the lifecycle, from the plan's typed [`CreateRequest`]: exactly what `wharf run`
//! does.
//!
//! What to do with one service's containers is decided by [`plan_service`], a pure
//! function of the plan and the containers there are; [`up`] then does it.

use std::time::{Duration, Instant};

use super::{ComposeError, Condition, LABEL_HASH, LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT};
use super::{LABEL_SERVICE, Project, ServicePlan};
use crate::container::health::HealthStatus;
use crate::container::{Containers, Record, Status};
use crate::lifecycle::{self, CreateRequest, Events, LifecycleError, Session};

/// The project's containers, oldest first.
pub fn project_containers(project: &Project, containers: &Containers) -> Vec<Record> {
    let mut list: Vec<Record> = containers
        .list()
        .into_iter()
        .filter(|r| r.options.labels.get(LABEL_PROJECT) == Some(&project.name))
        .collect();
    list.sort_by_key(|r| r.created);
    list
}

/// The service a compose container belongs to.
pub fn service_of(r: &Record) -> &str {
    r.options
        .labels
        .get(LABEL_SERVICE)
        .map_or("", String::as_str)
}

/// A one-off container (`compose run`).
pub fn is_oneoff(r: &Record) -> bool {
    r.options.labels.get(LABEL_ONEOFF).map(String::as_str) == Some("True")
}

/// Which replica of its service a container is (0 for a one-off).
pub fn number_of(r: &Record) -> u32 {
    r.options
        .labels
        .get(LABEL_NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The project's containers of `services` (all when empty), in dependency order.
pub fn of_services(
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

/// Make the project's networks and volumes that do not exist yet; an external one must.
pub fn ensure_networks_and_volumes(
    session: &Session,
    project: &Project,
    events: &dyn Events,
) -> Result<(), ComposeError> {
    let failed = |m: String| ComposeError::Converge(m);
    #[cfg(target_os = "linux")]
    {
        use crate::network::{CreateOptions, NetworkError, Networks, parse_subnet};
        let nets = Networks::new(&session.roots);
        for n in project.networks() {
            match nets.get(&n.name) {
                Ok(_) => {}
                Err(_) if n.external => {
                    return Err(failed(format!(
                        "network {} is external but does not exist",
                        n.name
                    )));
                }
                Err(_) => {
                    let subnet = n
                        .subnet
                        .as_deref()
                        .map(parse_subnet)
                        .transpose()
                        .map_err(LifecycleError::from)?;
                    let gateway = n
                        .gateway
                        .as_deref()
                        .map(|g| {
                            g.parse()
                                .map_err(|_| failed(format!("invalid gateway {g:?}")))
                        })
                        .transpose()?;
                    let opts = CreateOptions {
                        subnet,
                        gateway,
                        internal: n.internal,
                        disable_dns: false,
                        labels: n.labels.clone(),
                    };
                    match nets.create(&n.name, &opts) {
                        Ok(_) => events.progress(&format!("network {} created", n.name)),
                        // Made meanwhile by another `up`.
                        Err(NetworkError::Exists(_)) => {}
                        Err(e) => return Err(LifecycleError::from(e).into()),
                    }
                }
            }
        }
    }
    let vols = crate::volume::Volumes::new(&session.roots);
    for v in project.volumes() {
        if v.external {
            vols.get(&v.name).map_err(|e| {
                failed(format!(
                    "volume {} is external but does not exist: {e}",
                    v.name
                ))
            })?;
        } else if vols.get(&v.name).is_err() {
            vols.create(&v.name, &v.labels)
                .map_err(LifecycleError::from)?;
            events.progress(&format!("volume {} created", v.name));
        }
    }
    Ok(())
}

/// Make every image the services need present (pulled when missing, as `run` does).
pub fn pull_missing(
    session: &Session,
    plans: &[ServicePlan],
    events: &dyn Events,
) -> Result<(), ComposeError> {
    let store = session.store()?;
    for p in plans.iter().filter(|p| p.build.is_none()) {
        if matches!(
            store.resolve(&p.image),
            Err(crate::image::StoreError::NotFound(_))
        ) {
            events.progress(&format!("pulling {} for {}", p.image, p.name));
            if !lifecycle::pull::pull_in_child(session, &p.image, None, &Default::default())? {
                return Err(ComposeError::Converge(format!(
                    "service {}: image {} could not be pulled",
                    p.name, p.image
                )));
            }
        }
    }
    Ok(())
}

/// Build the images of the services in `plans` that have `build:` (`always`: even those
/// whose image exists), tagged with the service's image name. The caller runs sealed
/// (`wharf build`'s rule: RUN steps are native containers).
pub fn build(
    session: &Session,
    plans: &[ServicePlan],
    always: bool,
    events: &dyn Events,
) -> Result<(), ComposeError> {
    let store = session.store()?;
    for p in plans {
        let Some(b) = &p.build else {
            continue;
        };
        if !always && store.resolve(&p.image).is_ok() {
            continue;
        }
        let fail = |message: String| ComposeError::Service {
            service: p.name.clone(),
            message,
        };
        let tag = crate::image::reference::Reference::parse(&p.image)
            .map_err(|e| fail(format!("image {:?}: {e}", p.image)))?;
        events.progress(&format!("building {} for {}", p.image, p.name));
        let network = match &b.network {
            Some(n) => n
                .parse()
                .map_err(|e| fail(format!("build: network {n:?}: {e}")))?,
            None => crate::run::options::Network::None,
        };
        let opts = crate::build::BuildOptions {
            network,
            context: b.context.clone(),
            file: b.dockerfile.as_ref().map(|f| b.context.join(f)),
            tags: vec![tag],
            build_args: b.args.clone(),
            target: b.target.clone(),
            labels: b.labels.clone(),
            ..Default::default()
        };
        crate::build::build(session, &opts, events).map_err(|e| fail(format!("build: {e}")))?;
    }
    Ok(())
}

/// Create (not start) container `number` of a service from `req` (the plan's request, or a
/// one-off's, named), with compose's labels; its extra networks are recorded so they are
/// joined when it starts.
fn create(
    session: &Session,
    store: &crate::image::Store,
    project: &Project,
    plan: &ServicePlan,
    number: u32,
    mut req: CreateRequest,
    events: &dyn Events,
) -> Result<Record, ComposeError> {
    // The service's own labels win over compose's, as on a `run` line after them.
    for (k, v) in project.container_labels(&plan.name, number, &plan.hash) {
        req.options.labels.entry(k).or_insert(v);
    }
    req.options
        .connected
        .extend(
            plan.more_networks
                .iter()
                .map(|(net, aliases)| crate::run::options::Connection {
                    network: net.clone(),
                    aliases: aliases.clone(),
                    ip: None,
                }),
        );
    let (record, _) = lifecycle::create(session, store, req, events)?;
    Ok(record)
}

/// What [`up`] does with one container of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make replica `number`, named `name`, and start it.
    Create { number: u32, name: String },
    /// Its configuration changed: remove container `id` and make replica `number` anew.
    Recreate {
        id: String,
        number: u32,
        name: String,
    },
    /// Start container `id` (created or stopped, configuration unchanged).
    Start { id: String },
    /// Scaled down: stop and remove container `id`.
    Remove { id: String },
}

/// What `up` must do to bring service `plan`'s containers in line: `existing` are the
/// project's containers (any service). Running containers whose configuration is the
/// plan's, and one-shot jobs that completed, are left alone, so a second `up` does
/// nothing.
pub fn plan_service(project: &Project, plan: &ServicePlan, existing: &[Record]) -> Vec<Action> {
    let mine: Vec<&Record> = existing
        .iter()
        .filter(|r| service_of(r) == plan.name && !is_oneoff(r))
        .collect();
    let mut actions = Vec::new();
    for number in 1..=plan.replicas {
        let name = project.container_name(plan, number);
        let current = mine
            .iter()
            .find(|r| number_of(r) == number || r.name == name);
        match current {
            Some(r) if r.options.labels.get(LABEL_HASH) == Some(&plan.hash) => {
                let st = &r.state;
                let completed =
                    st.status == Status::Exited && st.exit_code == Some(0) && !st.stop_requested;
                if !st.is_active() && !completed {
                    actions.push(Action::Start { id: r.id.clone() });
                }
            }
            Some(r) => actions.push(Action::Recreate {
                id: r.id.clone(),
                number,
                name,
            }),
            None => actions.push(Action::Create { number, name }),
        }
    }
    for r in mine.iter().filter(|r| number_of(r) > plan.replicas) {
        actions.push(Action::Remove { id: r.id.clone() });
    }
    actions
}

/// How `up` is asked to run.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// The services (empty: all active ones), with their dependencies unless `no_deps`.
    pub services: Vec<String>,
    pub no_deps: bool,
    /// Remove containers of services no longer in the file.
    pub remove_orphans: bool,
    /// Longest wait for a dependency's condition.
    pub wait: Duration,
    /// `--build`: build the services that have `build:` even if their image exists.
    pub build: bool,
}

/// Bring the project's services up (see the module's documentation).
pub fn up(
    session: &Session,
    project: &Project,
    containers: &Containers,
    opts: &UpOptions,
    events: &dyn Events,
) -> Result<(), ComposeError> {
    let order = if opts.no_deps && !opts.services.is_empty() {
        opts.services.clone()
    } else {
        project.order(&opts.services)?
    };
    let mut plans: Vec<ServicePlan> = order
        .iter()
        .map(|s| project.service(s))
        .collect::<Result<_, _>>()?;
    build(session, &plans, opts.build, events)?;
    pull_missing(session, &plans, events)?;
    // A new image under the same name (pulled, loaded) changes the service too.
    let store = session.store()?;
    for p in &mut plans {
        if let Ok(image) = store.resolve(&p.image) {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(p.hash.as_bytes());
            h.update(image.digest().to_string().as_bytes());
            p.hash = hex::encode(h.finalize());
        }
    }
    ensure_networks_and_volumes(session, project, events)?;
    let existing = project_containers(project, containers);
    let stop_and_remove = |id: &str| -> Result<(), ComposeError> {
        lifecycle::stop::stop(containers, id, None).map_err(LifecycleError::from)?;
        lifecycle::stop::remove(containers, id, true).map_err(LifecycleError::from)?;
        Ok(())
    };
    if opts.remove_orphans {
        let all = project.all_services();
        for r in existing
            .iter()
            .filter(|r| !all.iter().any(|s| s == service_of(r)))
        {
            lifecycle::stop::remove(containers, &r.id, true).map_err(LifecycleError::from)?;
            events.progress(&format!("removed orphan {}", r.name));
        }
    }
    let name_of = |id: &str| {
        existing
            .iter()
            .find(|r| r.id == id)
            .map_or_else(|| id.to_string(), |r| r.name.clone())
    };
    for plan in &plans {
        for (dep, condition, required) in &plan.depends_on {
            if opts.no_deps && !order.contains(dep) {
                continue;
            }
            if let Err(e) = wait_for(project, containers, dep, *condition, opts.wait) {
                if *required {
                    return Err(ComposeError::Converge(format!(
                        "service {} cannot start: {e}",
                        plan.name
                    )));
                }
                events.warning(&format!(
                    "warning: {e} (an optional dependency of {})",
                    plan.name
                ));
            }
        }
        for action in plan_service(project, plan, &existing) {
            let (id, name) = match action {
                Action::Start { id } => {
                    let name = name_of(&id);
                    (id, name)
                }
                Action::Recreate { id, number, name } => {
                    events.progress(&format!(
                        "recreating {} (its service changed)",
                        name_of(&id)
                    ));
                    stop_and_remove(&id)?;
                    let r = create_replica(session, &store, project, plan, number, &name, events)?;
                    (r.id, name)
                }
                Action::Create { number, name } => {
                    let r = create_replica(session, &store, project, plan, number, &name, events)?;
                    (r.id, name)
                }
                Action::Remove { id } => {
                    stop_and_remove(&id)?;
                    events.progress(&format!("removed {} (scaled down)", name_of(&id)));
                    continue;
                }
            };
            if let Err(e) = lifecycle::start(session, containers, &id) {
                return Err(ComposeError::Converge(format!(
                    "service {}: {name} did not start: {e}",
                    plan.name
                )));
            }
            events.progress(&format!("started {name}"));
        }
    }
    Ok(())
}

fn create_replica(
    session: &Session,
    store: &crate::image::Store,
    project: &Project,
    plan: &ServicePlan,
    number: u32,
    name: &str,
    events: &dyn Events,
) -> Result<Record, ComposeError> {
    let mut req = plan.request.clone();
    req.name = Some(name.to_string());
    create(session, store, project, plan, number, req, events)
        .map_err(|e| ComposeError::Converge(format!("service {}: creating {name}: {e}", plan.name)))
}

/// Wait until service `service`'s containers meet `condition`.
pub fn wait_for(
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
                        Some(HealthStatus::Healthy) => {}
                        Some(HealthStatus::Unhealthy) => {
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

/// What `compose run` changes in a service's container.
#[derive(Debug, Clone, Default)]
pub struct OneOff {
    /// `--rm`: the record goes when it ends.
    pub rm: bool,
    /// `-e`, after the service's (later wins).
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// Replaces the service's command when given (or with an entrypoint).
    pub command: Vec<String>,
    /// `--no-deps`: the service's dependencies are not started first.
    pub no_deps: bool,
}

/// The request of a one-off container of `plan`: the service's, with the one-off's own
/// settings, in the foreground, publishing no ports (they belong to the service's
/// containers) and without the service's restart policy (as Compose's `run`).
pub fn one_off_request(plan: &ServicePlan, one: &OneOff) -> CreateRequest {
    let mut req = plan.request.clone();
    let o = &mut req.options;
    o.ports.clear();
    o.publish_all = false;
    o.env.extend(one.env.iter().cloned());
    if let Some(u) = &one.user {
        o.native.user = Some(u.clone());
    }
    if let Some(w) = &one.workdir {
        o.workdir = Some(w.clone());
    }
    if let Some(ep) = &one.entrypoint {
        o.entrypoint = Some(ep.clone());
    }
    if !one.command.is_empty() || one.entrypoint.is_some() {
        o.args = one.command.clone();
    }
    req.auto_remove = one.rm;
    req.detached = false;
    req.restart = Default::default();
    req
}

/// Create a one-off container of `plan` (`compose run`), its dependencies up first unless
/// `one.no_deps`, recorded as running in this process: the caller goes on to
/// [`lifecycle::supervise()`].
pub fn one_off(
    session: &Session,
    project: &Project,
    containers: &Containers,
    plan: &ServicePlan,
    one: &OneOff,
    events: &dyn Events,
) -> Result<Record, ComposeError> {
    if one.no_deps {
        ensure_networks_and_volumes(session, project, events)?;
    } else {
        one_off_dependencies(session, project, containers, plan, events)?;
    }
    let name = format!(
        "{}-{}-run-{}",
        project.name,
        plan.name,
        &crate::id::new_id()[..12]
    );
    let mut req = one_off_request(plan, one);
    req.options
        .labels
        .insert(LABEL_ONEOFF.into(), "True".into());
    // (The service's labels win over compose's in `create`: this one stays a one-off.)
    req.name = Some(name);
    create(session, &session.store()?, project, plan, 0, req, events)
}

/// How `down` is asked to run.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// Remove the project's named volumes too.
    pub volumes: bool,
    /// Remove containers of services no longer in the file.
    pub remove_orphans: bool,
    /// Seconds `stop` waits before SIGKILL.
    pub timeout: Option<u64>,
}

/// Stop and remove the project's containers (dependents first), then its networks, and
/// with `volumes` its volumes.
pub fn down(
    session: &Session,
    project: &Project,
    containers: &Containers,
    opts: &DownOptions,
    events: &dyn Events,
) -> Result<(), ComposeError> {
    let services = project.all_services();
    let mut list: Vec<Record> = project_containers(project, containers)
        .into_iter()
        .filter(|r| {
            opts.remove_orphans || services.iter().any(|s| s == service_of(r)) || is_oneoff(r)
        })
        .collect();
    // Dependents first.
    let order = project.order(&[]).unwrap_or_else(|_| services.clone());
    list.sort_by_key(|r| std::cmp::Reverse(order.iter().position(|s| s == service_of(r))));
    for r in &list {
        if r.state.is_active() {
            lifecycle::stop::stop(containers, &r.id, opts.timeout.map(Duration::from_secs))
                .map_err(LifecycleError::from)?;
        }
        lifecycle::stop::remove(containers, &r.id, true).map_err(LifecycleError::from)?;
        events.progress(&format!("removed {}", r.name));
    }
    let left = project_containers(project, containers);
    if !left.is_empty() {
        let names: Vec<&str> = left.iter().map(|r| r.name.as_str()).collect();
        events.progress(&format!(
            "containers of services no longer in the file remain: {} (--remove-orphans)",
            names.join(", ")
        ));
    }
    #[cfg(target_os = "linux")]
    {
        let nets = crate::network::Networks::new(&session.roots);
        for n in project.networks().into_iter().filter(|n| !n.external) {
            let ours = nets
                .get(&n.name)
                .is_ok_and(|d| d.labels.get(LABEL_PROJECT) == Some(&project.name));
            if ours {
                match nets.remove(&n.name, &|n| containers.network_users(n)) {
                    Ok(_) => events.progress(&format!("network {} removed", n.name)),
                    Err(e) => events.warning(&e.to_string()),
                }
            }
        }
    }
    if opts.volumes {
        let vols = crate::volume::Volumes::new(&session.roots);
        for v in project.volumes().into_iter().filter(|v| !v.external) {
            match vols.get(&v.name) {
                Ok(found) if found.labels.get(LABEL_PROJECT) == Some(&project.name) => {
                    vols.remove(&v.name, &|v| containers.volume_users(v))
                        .map_err(LifecycleError::from)?;
                    events.progress(&format!("volume {} removed", v.name));
                }
                Ok(_) => events.progress(&format!(
                    "volume {} was not made by project {}: kept",
                    v.name, project.name
                )),
                Err(_) => {}
            }
        }
    }
    Ok(())
}

/// Stop the project's containers of `services` (all when empty), dependents first.
pub fn stop(
    project: &Project,
    containers: &Containers,
    services: &[String],
    timeout: Option<u64>,
    events: &dyn Events,
) -> Result<(), ComposeError> {
    let mut list = of_services(project, containers, services, false);
    list.reverse();
    for r in list {
        lifecycle::stop::stop(containers, &r.id, timeout.map(Duration::from_secs))
            .map_err(LifecycleError::from)?;
        events.progress(&format!("stopped {}", r.name));
    }
    Ok(())
}

/// Start the project's containers of `services` (all when empty), dependencies first;
/// with `restart`, each is stopped first. The first that does not start ends it (its code
/// in a [`LifecycleError::Failed`]).
pub fn start(
    session: &Session,
    project: &Project,
    containers: &Containers,
    services: &[String],
    restart: Option<Option<u64>>,
    events: &dyn Events,
) -> Result<(), ComposeError> {
    for r in of_services(project, containers, services, true) {
        if let Some(timeout) = restart {
            lifecycle::stop::stop(containers, &r.id, timeout.map(Duration::from_secs))
                .map_err(LifecycleError::from)?;
        }
        match lifecycle::start(session, containers, &r.id) {
            Ok(()) => {}
            Err(LifecycleError::Failed { code, message }) => {
                return Err(LifecycleError::Failed {
                    code,
                    message: format!("{}: {message}", r.name),
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        let verb = if restart.is_some() {
            "restarted"
        } else {
            "started"
        };
        events.progress(&format!("{verb} {}", r.name));
    }
    Ok(())
}

/// Remove the project's stopped containers of `services` (all when empty), and with
/// `stop` the running ones after stopping them (else they are named and kept). Returns
/// the names removed.
pub fn remove(
    project: &Project,
    containers: &Containers,
    services: &[String],
    stop: bool,
    events: &dyn Events,
) -> Result<Vec<String>, ComposeError> {
    let mut removed = Vec::new();
    for r in of_services(project, containers, services, true) {
        if r.state.is_active() {
            if !stop {
                events.warning(&format!("{} is running (stop it first, or -s)", r.name));
                continue;
            }
            lifecycle::stop::stop(containers, &r.id, None).map_err(LifecycleError::from)?;
        }
        lifecycle::stop::remove(containers, &r.id, false).map_err(LifecycleError::from)?;
        removed.push(r.name);
    }
    Ok(removed)
}

/// Before a one-off of `plan`: its dependencies up and their conditions met (an optional
/// one that fails is a warning), the project's networks and volumes made.
fn one_off_dependencies(
    session: &Session,
    project: &Project,
    containers: &Containers,
    plan: &ServicePlan,
    events: &dyn Events,
) -> Result<(), ComposeError> {
    const WAIT: Duration = Duration::from_secs(300);
    let deps: Vec<String> = plan.depends_on.iter().map(|d| d.0.clone()).collect();
    if !deps.is_empty() {
        let opts = UpOptions {
            services: deps,
            wait: WAIT,
            ..Default::default()
        };
        up(session, project, containers, &opts, events)?;
    }
    for (dep, condition, required) in &plan.depends_on {
        if let Err(e) = wait_for(project, containers, dep, *condition, WAIT) {
            if *required {
                return Err(ComposeError::Converge(format!(
                    "service {} cannot run: {e}",
                    plan.name
                )));
            }
            events.warning(&format!("warning: {e}"));
        }
    }
    ensure_networks_and_volumes(session, project, events)
}

/// One project as `compose ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSummary {
    pub name: String,
    /// How many containers are in each state: `running(2), exited(1)`.
    pub status: String,
    pub config_files: String,
    /// Whether any of its containers runs.
    pub running: bool,
}

/// Every project that has containers under this root, by name.
pub fn projects(containers: &Containers) -> Vec<ProjectSummary> {
    use std::collections::BTreeMap;
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, String)> = BTreeMap::new();
    for r in containers.list() {
        let Some(p) = r.options.labels.get(LABEL_PROJECT) else {
            continue;
        };
        let e = projects.entry(p.clone()).or_default();
        *e.0.entry(r.state.status.to_string()).or_default() += 1;
        if let Some(f) = r.options.labels.get(super::LABEL_FILES) {
            e.1 = f.clone();
        }
    }
    projects
        .into_iter()
        .map(|(name, (states, config_files))| ProjectSummary {
            running: states.contains_key(&Status::Running.to_string()),
            status: states
                .iter()
                .map(|(s, n)| format!("{s}({n})"))
                .collect::<Vec<_>>()
                .join(", "),
            name,
            config_files,
        })
        .collect()
}

/// Pull the images of `services` (all active ones when empty): whether all were pulled.
pub fn pull(
    session: &Session,
    project: &Project,
    services: &[String],
    events: &dyn Events,
) -> Result<bool, ComposeError> {
    let wanted = if services.is_empty() {
        project.active_services()
    } else {
        services.to_vec()
    };
    let mut all = true;
    for s in wanted {
        let plan = project.service(&s)?;
        if plan.build.is_some() {
            // Its image is made by `build:` (Docker Compose's `--ignore-buildable`).
            events.progress(&format!("skipping {s}: its image is built (compose build)"));
            continue;
        }
        events.progress(&format!("pulling {s} ({})", plan.image));
        all &= lifecycle::pull::pull_in_child(session, &plan.image, None, &Default::default())?;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{Proc, State};
    use crate::paths::Roots;

    const FILE: &str = "services:
  web:
    image: web.wasm
    environment: {MODE: prod}
    depends_on: [db]
  db:
    image: db.wasm
    deploy: {replicas: 2}
  job:
    image: job.wasm
";

    fn load(dir: &std::path::Path, yaml: &str) -> Project {
        std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
        Project::load(&super::super::LoadOptions {
            dir: Some(dir.to_path_buf()),
            project_name: Some("demo".into()),
            ..Default::default()
        })
        .unwrap()
    }

    /// What `up` would have left: container `number` of `plan`, recorded under
    /// `containers` with compose's labels, in `state`.
    fn made(
        containers: &Containers,
        project: &Project,
        plan: &ServicePlan,
        number: u32,
        state: State,
    ) -> Record {
        let mut options = plan.request.options.clone();
        for (k, v) in project.container_labels(&plan.name, number, &plan.hash) {
            options.labels.entry(k).or_insert(v);
        }
        let record = Record {
            id: crate::id::new_id(),
            name: project.container_name(plan, number),
            created: chrono::Utc::now(),
            image: plan.image.clone(),
            target: plan.image.clone(),
            image_digest: None,
            platform: None,
            kind: crate::dispatch::Kind::Wasm,
            reason: String::new(),
            signals: Vec::new(),
            command: Vec::new(),
            options,
            restart: plan.request.restart,
            auto_remove: false,
            detached: true,
            log: Default::default(),
            compile_timeout_ms: None,
            stop_signal: None,
            stop_timeout: None,
            state,
        };
        containers.create(record, &Default::default()).unwrap()
    }

    /// Running: supervised by this very process (so a refresh keeps it running).
    fn running() -> State {
        State {
            status: Status::Running,
            supervisor: Proc::current(),
            ..State::default()
        }
    }

    fn exited(code: i32) -> State {
        State {
            status: Status::Exited,
            exit_code: Some(code),
            ..State::default()
        }
    }

    fn plans(p: &Project) -> Vec<ServicePlan> {
        p.order(&[])
            .unwrap()
            .iter()
            .map(|s| p.service(s).unwrap())
            .collect()
    }

    #[test]
    fn a_second_up_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let containers = Containers::new(&Roots::new(dir.path().join("root")), |_, _| {});
        let project = load(dir.path(), FILE);
        let all = plans(&project);
        // Nothing yet: every replica is made.
        let first: Vec<Vec<Action>> = all.iter().map(|p| plan_service(&project, p, &[])).collect();
        let names: Vec<String> = first
            .iter()
            .flatten()
            .map(|a| match a {
                Action::Create { name, .. } => name.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            ["demo-db-1", "demo-db-2", "demo-job-1", "demo-web-1"]
        );
        // As the first `up` left them (the one-shot job done): a second changes nothing.
        for p in &all {
            for n in 1..=p.replicas {
                let state = if p.name == "job" {
                    exited(0)
                } else {
                    running()
                };
                made(&containers, &project, p, n, state);
            }
        }
        let existing = project_containers(&project, &containers);
        assert_eq!(existing.len(), 4);
        for p in &all {
            assert_eq!(plan_service(&project, p, &existing), [], "{}", p.name);
        }
        // The same file loaded again plans the same containers.
        let again = load(dir.path(), FILE);
        for p in plans(&again) {
            assert_eq!(plan_service(&again, &p, &existing), [], "{}", p.name);
        }
    }

    #[test]
    fn a_changed_service_is_recreated_alone_and_a_stopped_one_started() {
        let dir = tempfile::tempdir().unwrap();
        let containers = Containers::new(&Roots::new(dir.path().join("root")), |_, _| {});
        let project = load(dir.path(), FILE);
        let mut ids = std::collections::BTreeMap::new();
        for p in plans(&project) {
            for n in 1..=p.replicas {
                let state = match p.name.as_str() {
                    "job" => exited(1),
                    _ => running(),
                };
                ids.insert(
                    (p.name.clone(), n),
                    made(&containers, &project, &p, n, state).id,
                );
            }
        }
        let changed = load(dir.path(), &FILE.replace("MODE: prod", "MODE: debug"));
        let existing = project_containers(&changed, &containers);
        for p in plans(&changed) {
            let actions = plan_service(&changed, &p, &existing);
            match p.name.as_str() {
                "web" => assert_eq!(
                    actions,
                    [Action::Recreate {
                        id: ids[&("web".to_string(), 1)].clone(),
                        number: 1,
                        name: "demo-web-1".into()
                    }]
                ),
                // A job that failed (not one that completed) runs again.
                "job" => assert_eq!(
                    actions,
                    [Action::Start {
                        id: ids[&("job".to_string(), 1)].clone()
                    }]
                ),
                _ => assert_eq!(actions, [], "{}", p.name),
            }
        }
    }

    #[test]
    fn scaling_down_removes_the_highest_replicas_and_one_offs_are_not_replicas() {
        let dir = tempfile::tempdir().unwrap();
        let containers = Containers::new(&Roots::new(dir.path().join("root")), |_, _| {});
        let project = load(dir.path(), &FILE.replace("replicas: 2", "replicas: 3"));
        let db = project.service("db").unwrap();
        let ids: Vec<String> = (1..=3)
            .map(|n| made(&containers, &project, &db, n, running()).id)
            .collect();
        // A one-off of db (`compose run db`) is none of its replicas.
        let one = one_off_request(&db, &OneOff::default());
        let mut oneoff = db.clone();
        oneoff.request = one;
        oneoff
            .request
            .options
            .labels
            .insert(LABEL_ONEOFF.into(), "True".into());
        made(&containers, &project, &oneoff, 0, running());
        let smaller = load(dir.path(), &FILE.replace("replicas: 2", "replicas: 1"));
        let db = smaller.service("db").unwrap();
        let existing = project_containers(&smaller, &containers);
        assert_eq!(existing.len(), 4);
        // The scale is not part of the configuration: replica 1 stays as it is.
        assert_eq!(
            plan_service(&smaller, &db, &existing),
            [
                Action::Remove { id: ids[1].clone() },
                Action::Remove { id: ids[2].clone() }
            ]
        );
    }

    #[test]
    fn a_one_off_takes_the_callers_settings_and_no_ports_or_restart() {
        let dir = tempfile::tempdir().unwrap();
        let project = load(
            dir.path(),
            "services:\n  a:\n    image: a.wasm\n    ports: ['8080:80']\n    restart: always\n    user: app\n    command: [serve]\n",
        );
        let plan = project.service("a").unwrap();
        assert_eq!(plan.request.options.ports.len(), 1);
        let keep = one_off_request(&plan, &OneOff::default());
        assert!(keep.options.ports.is_empty() && !keep.detached);
        assert_eq!(keep.restart, Default::default());
        assert_eq!(keep.options.args, ["serve"], "the service's command");
        let one = OneOff {
            rm: true,
            env: vec![("X".into(), "1".into())],
            user: Some("root".into()),
            command: vec!["sh".into()],
            ..Default::default()
        };
        let r = one_off_request(&plan, &one);
        assert!(r.auto_remove);
        assert_eq!(r.options.native.user.as_deref(), Some("root"));
        assert_eq!(r.options.args, ["sh"]);
        assert_eq!(
            r.options.env.last().unwrap(),
            &("X".to_string(), "1".to_string())
        );
        // An entrypoint without a command runs with no arguments, as Compose's.
        let ep = OneOff {
            entrypoint: Some("/bin/true".into()),
            ..Default::default()
        };
        assert!(one_off_request(&plan, &ep).options.args.is_empty());
    }
}
