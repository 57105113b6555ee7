//! `create`: a typed request checked once, the image prepared, the container recorded
//! (status created, or running for a foreground run that goes on in this process).

use std::time::Duration;

use super::{Events, LifecycleError, Session};
use crate::container::{self, LogConfig, Record, RestartPolicy, State, Status};
use crate::dispatch::Kind;
use crate::image::Store;
use crate::image::platform::PlatformSpec;
use crate::image::store::InUse;
use crate::run::options::{HealthConfig, Network, RunOptions};
use crate::run::{self, Prepared};

/// Everything `wharf run`/`wharf create` and a compose service can say about a new
/// container. [`CreateRequest::validate`] checks what can be checked without the image.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// The image reference, or a `.wasm`/`.wat` file.
    pub image: String,
    /// How it runs (the command is `options.args`).
    pub options: RunOptions,
    /// Its name (none: one is made up).
    pub name: Option<String>,
    pub platform: Option<PlatformSpec>,
    pub restart: RestartPolicy,
    /// `--rm`: the record goes when the container ends.
    pub auto_remove: bool,
    /// Run under a monitor (`-d`, `wharf create`, compose) rather than in this process.
    pub detached: bool,
    pub log: LogConfig,
    /// Seconds `stop` waits before SIGKILL.
    pub stop_timeout: Option<u64>,
    /// Longest a wasm module may take to compile.
    pub compile_timeout: Option<Duration>,
}

impl CreateRequest {
    /// Check the request as a whole, before anything is made or pulled: how it runs
    /// ([`CreateRequest::validate_run`]) and what is recorded of the container (its name,
    /// restart policy, stop signal).
    pub fn validate(&self) -> Result<(), LifecycleError> {
        let bad = |m: String| Err(LifecycleError::Invalid(m));
        if self.restart != RestartPolicy::No && !self.detached {
            return bad(
                "--restart needs -d: a detached container's monitor keeps the policy".into(),
            );
        }
        if self.restart != RestartPolicy::No && self.auto_remove {
            return bad("--restart and --rm cannot be used together".into());
        }
        // An empty name asks for a made-up one, as none does (Docker's `--name ""`).
        if let Some(name) = self.name.as_deref().filter(|n| !n.is_empty())
            && let Err(e) = container::names::validate(name)
        {
            return Err(e.into());
        }
        if let Some(sig) = &self.options.stop_signal
            && crate::sys::parse_signal(sig).is_none()
        {
            return bad(format!(
                "invalid --stop-signal {sig:?}: expected a signal name or number"
            ));
        }
        self.validate_run()
    }

    /// Check how the request runs (user, names on the network, the network, the health
    /// check): what also applies to a run that records no container (`--print-spec`,
    /// `--invoke`).
    pub fn validate_run(&self) -> Result<(), LifecycleError> {
        let bad = |m: String| Err(LifecycleError::Invalid(m));
        let o = &self.options;
        if let Some(u) = &o.native.user
            && let Err(e) = crate::run::options::validate_user(u)
        {
            return bad(format!("-u: {e}"));
        }
        if let Some(bad_name) = o
            .network_aliases
            .iter()
            .chain(&o.native.hostname)
            .find(|a| !crate::network::is_dns_name(a))
        {
            return bad(format!(
                "invalid name {bad_name:?}: letters, digits, '-', '_' and '.' only"
            ));
        }
        if o.network.named().is_none() {
            if !o.network_aliases.is_empty() || o.ip.is_some() || o.publish_all {
                return bad(
                    "--network-alias, --ip and -P need a bridge network (--network NAME)".into(),
                );
            }
        } else if let Some(why) = crate::network::unsupported() {
            return bad(format!("--network {}: {why}", o.network));
        }
        if let Some(test) = o.health.as_ref().map(|h| &h.test)
            && !matches!(
                test.first().map(String::as_str),
                Some("CMD" | "CMD-SHELL" | "NONE")
            )
        {
            return bad(format!(
                "invalid health check {test:?}: it starts with CMD, CMD-SHELL or NONE"
            ));
        }
        Ok(())
    }
}

/// Check `req` ([`CreateRequest::validate`]) and what it names under `session` (its
/// network exists and may be used here), naming its network as recorded. A door calls it
/// before it pulls; [`create`] calls it again.
pub fn settle(session: &Session, req: &mut CreateRequest) -> Result<(), LifecycleError> {
    req.validate()?;
    let opts = &mut req.options;
    if let Some(net) = opts.network.named() {
        if !crate::sys::is_root() {
            return Err(LifecycleError::Invalid(format!(
                "--network {net}: bridge networks need root (netavark makes bridges and firewall rules); a rootless container can use --network pasta"
            )));
        }
        // Recorded by name (an id prefix given here may name another network later).
        let net = crate::network::Networks::new(&session.roots).get(net)?;
        opts.network = Network::Named(net.name);
    }
    Ok(())
}

/// Give each named volume of `options` its directory: made on first use when `make`, else
/// only named (`--print-spec` shows a run without making anything).
pub fn resolve_volumes(
    session: &Session,
    options: &mut RunOptions,
    make: bool,
) -> Result<(), LifecycleError> {
    let volumes = crate::volume::Volumes::new(&session.roots);
    for v in &mut options.volumes {
        if let Some(name) = &v.named {
            v.host = if make {
                volumes.create(name, &Default::default())?.mountpoint
            } else {
                volumes.mountpoint(name)?
            };
        }
    }
    Ok(())
}

/// Create the container `req` describes from an image already in `store` (the door pulls
/// first: pulling starts threads). Its record says created, or running in this process
/// when `req.detached` is false (the caller goes on to [`super::supervise()`]).
pub fn create(
    session: &Session,
    store: &Store,
    mut req: CreateRequest,
    events: &dyn Events,
) -> Result<(Record, Prepared), LifecycleError> {
    settle(session, &mut req)?;
    let opts = &mut req.options;
    resolve_volumes(session, opts, true)?;
    let prepared = run::prepare(store, &req.image, opts, req.platform.as_ref())?;
    events.decided(&prepared.name, &prepared.decision);
    // No health check given: the image's own (Docker's HEALTHCHECK), if it has one.
    if opts.health.is_none() {
        opts.health = image_health_check(&prepared);
    }
    if prepared.decision.kind == Kind::Wasm
        && let Some(h) = &opts.health
    {
        container::health::check_for_wasm(h).map_err(LifecycleError::Invalid)?;
    }
    let target = match &prepared.image_digest {
        Some(d) => d.clone(),
        None => std::fs::canonicalize(&req.image)
            .map_err(|cause| LifecycleError::Io {
                what: format!("resolving {}", req.image),
                cause,
            })?
            .display()
            .to_string(),
    };
    let annotation = |key: &str| {
        prepared
            .spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(key).cloned())
    };
    let record = Record {
        id: crate::id::new_id(),
        name: req.name.clone().unwrap_or_default(),
        created: chrono::Utc::now(),
        image: req.image.clone(),
        target,
        image_digest: prepared.image_digest.clone(),
        platform: req.platform.as_ref().map(|p| p.to_string()),
        kind: prepared.decision.kind,
        reason: prepared.decision.reason.clone(),
        signals: prepared
            .decision
            .signals
            .iter()
            .map(|s| s.to_string())
            .collect(),
        command: prepared
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default(),
        options: req.options,
        restart: req.restart,
        auto_remove: req.auto_remove,
        detached: req.detached,
        log: req.log,
        compile_timeout_ms: req.compile_timeout.map(|d| d.as_millis() as u64),
        stop_signal: annotation(crate::bundle::ANNOTATION_STOP_SIGNAL),
        stop_timeout: req.stop_timeout,
        // A foreground container runs in this very process from the start.
        state: if req.detached {
            State::default()
        } else {
            running_state(prepared.decision.kind)
        },
    };
    let pins = InUse {
        image: prepared.image_digest.clone(),
        diff_ids: prepared.layers.iter().map(|l| l.diff_id.clone()).collect(),
    };
    let record = session.containers().create(record, &pins)?;
    Ok((record, prepared))
}

/// The image's own health check (Docker's HEALTHCHECK), if it has one.
fn image_health_check(prepared: &Prepared) -> Option<HealthConfig> {
    prepared
        .spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(crate::bundle::ANNOTATION_IMAGE_HEALTHCHECK))
        .and_then(|j| serde_json::from_str(j).ok())
        .and_then(|v| HealthConfig::from_image(&v))
}

/// The state of a container that starts running in this process.
pub(super) fn running_state(kind: Kind) -> State {
    let me = container::Proc::current();
    State {
        status: Status::Running,
        supervisor: me,
        pid: match kind {
            Kind::Wasm => std::process::id() as i32,
            Kind::Native => 0,
        },
        pid_start_time: match kind {
            Kind::Wasm => me.map(|p| p.start_time),
            Kind::Native => None,
        },
        started_at: Some(chrono::Utc::now()),
        ..State::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CreateRequest {
        CreateRequest {
            image: "busybox".into(),
            detached: true,
            ..Default::default()
        }
    }

    fn refused(req: CreateRequest, needle: &str) {
        match req.validate() {
            Err(LifecycleError::Invalid(m)) => assert!(m.contains(needle), "{m}"),
            Err(LifecycleError::Container(e)) => {
                assert!(e.to_string().contains(needle), "{e}")
            }
            other => panic!("{needle}: {other:?}"),
        }
    }

    #[test]
    fn a_plain_request_is_valid() {
        request().validate().unwrap();
        let mut r = request();
        r.restart = RestartPolicy::Always;
        r.name = Some("web-1".into());
        r.options.stop_signal = Some("SIGQUIT".into());
        r.options.health = Some(HealthConfig::new(vec!["CMD".into(), "/healthz".into()]));
        r.validate().unwrap();
    }

    #[test]
    fn an_empty_name_is_none_and_a_run_without_record_ignores_record_settings() {
        let mut r = request();
        r.name = Some(String::new());
        r.validate().unwrap();
        // `--print-spec --restart always`: nothing is recorded, so nothing to refuse.
        r.restart = RestartPolicy::Always;
        r.detached = false;
        r.options.stop_signal = Some("SIGNOPE".into());
        r.validate_run().unwrap();
        assert!(r.validate().is_err());
    }

    #[test]
    fn restart_needs_a_monitor_and_excludes_rm() {
        let mut r = request();
        r.restart = RestartPolicy::Always;
        r.detached = false;
        refused(r.clone(), "--restart needs -d");
        r.detached = true;
        r.auto_remove = true;
        refused(r, "--restart and --rm");
    }

    #[test]
    fn names_users_signals_and_health_checks_are_checked() {
        let mut r = request();
        r.name = Some("-bad".into());
        refused(r, "invalid container name");
        let mut r = request();
        r.options.native.user = Some("1:99999999999".into());
        refused(r, "-u:");
        let mut r = request();
        r.options.native.hostname = Some("a b".into());
        refused(r, "invalid name \"a b\"");
        let mut r = request();
        r.options.stop_signal = Some("SIGNOPE".into());
        refused(r, "--stop-signal");
        let mut r = request();
        r.options.health = Some(HealthConfig::new(vec!["curl".into()]));
        refused(r, "CMD, CMD-SHELL or NONE");
    }

    #[test]
    fn bridge_only_options_need_a_bridge() {
        for set in [
            |r: &mut CreateRequest| r.options.publish_all = true,
            |r: &mut CreateRequest| r.options.ip = Some([10, 0, 0, 2].into()),
            |r: &mut CreateRequest| r.options.network_aliases = vec!["db".into()],
        ] {
            let mut r = request();
            set(&mut r);
            refused(r, "need a bridge network");
        }
    }

    #[test]
    fn the_exit_code_follows_docker() {
        let e = LifecycleError::Invalid("x".into());
        assert_eq!(e.exit_code(), 125);
        let e = LifecycleError::Prepare(crate::run::RunError::NoSuchFile("x.wasm".into()));
        assert_eq!(e.exit_code(), 125);
    }
}
