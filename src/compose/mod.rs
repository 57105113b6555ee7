//! Compose: a project's services, networks and volumes from compose files, for `wharf
//! compose`. Loading (`load`) gives the Compose Specification's model (compose_spec);
//! planning (here) turns each service into the typed [`CreateRequest`] `wharf run` makes
//! too, so a compose container is made by exactly the code that makes any other
//! container, and into the order and conditions `up` follows; [`converge`] brings the
//! containers in line with the plan (`up`, `down`, one-off runs).

pub mod converge;
mod interpolate;
mod load;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sha2::Digest;

use crate::lifecycle::CreateRequest;
use crate::run::options::{HealthConfig, Network, parse_cpus, parse_size, parse_swap};

pub use interpolate::{interpolate, parse_dotenv};

/// The labels compose puts on what it makes (Docker Compose's).
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_WORKDIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";

/// The names Compose looks for, in order.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{}: line {line}, column {column}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", file.display())]
    Invalid { file: PathBuf, message: String },
    #[error("service {service:?}: {message}")]
    Service { service: String, message: String },
    #[error(
        "no compose file: none of {} in {} (or pass -f FILE)",
        DEFAULT_FILES.join(", "),
        dir.display()
    )]
    NoFile { dir: PathBuf },
    #[error("no such service: {0}")]
    NoService(String),
    #[error("services depend on each other in a cycle: {0}")]
    Cycle(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lifecycle(#[from] crate::lifecycle::LifecycleError),
    /// The project could not be brought in line with its plan.
    #[error("{0}")]
    Converge(String),
}

/// How to find and read a project.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f`: the files, in order (empty: the first of [`DEFAULT_FILES`] in `dir`).
    pub files: Vec<PathBuf>,
    /// `-p`: the project's name.
    pub project_name: Option<String>,
    /// `--profile`: profiles to enable (also `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    /// `--env-file`: instead of `.env`.
    pub env_files: Vec<PathBuf>,
    /// Where to look for files (the current directory by default).
    pub dir: Option<PathBuf>,
    /// `--project-directory`: where relative paths and `.env` are (default: the first
    /// file's directory), and where the files are looked for when no `-f` is given.
    pub project_directory: Option<PathBuf>,
}

/// A dependency's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

/// What `up` makes of one service.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub name: String,
    pub image: String,
    /// Containers to run (`scale`, `deploy.replicas`).
    pub replicas: u32,
    /// `container_name`, for a service of one container.
    pub container_name: Option<String>,
    /// The container each replica is made from (detached; no name, none of compose's
    /// labels): the same typed request `wharf run` makes.
    pub request: CreateRequest,
    /// Networks beyond the first: (network, aliases).
    pub more_networks: Vec<(String, Vec<String>)>,
    pub depends_on: Vec<(String, Condition, bool)>,
    /// Fingerprint of the configuration: a changed service is recreated.
    pub hash: String,
    /// `build:`: how its image is made (tagged `image`).
    pub build: Option<BuildPlan>,
}

/// A service's `build:` (a context path, or context, dockerfile, args, target, labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The context, absolute (relative ones are the project directory's).
    pub context: PathBuf,
    /// The Dockerfile, relative to the context (default: the builder's).
    pub dockerfile: Option<PathBuf>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The network RUN steps get (`network:`; default none).
    pub network: Option<String>,
}

/// A network the project uses.
#[derive(Debug, Clone)]
pub struct NetworkPlan {
    /// The key in the file.
    pub key: String,
    /// The wharf network: `<project>_<key>` unless `name:` or external.
    pub name: String,
    pub external: bool,
    pub internal: bool,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// A named volume the project uses.
#[derive(Debug, Clone)]
pub struct VolumePlan {
    pub key: String,
    pub name: String,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
}

/// A loaded project.
pub struct Project {
    pub name: String,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub compose: compose_spec::Compose,
    /// The model as JSON (compose_spec's canonical forms), which planning reads.
    model: Json,
    pub warnings: Vec<String>,
    pub profiles: Vec<String>,
    /// The variables the files were interpolated with (the process's over `.env`).
    env: BTreeMap<String, String>,
}

fn project_name_from(s: &str) -> String {
    let n: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    n.trim_start_matches(['_', '-']).to_string()
}

impl Project {
    pub fn load(opts: &LoadOptions) -> Result<Project, ComposeError> {
        let cwd = match &opts.dir {
            Some(d) => d.clone(),
            None => std::env::current_dir().map_err(|source| ComposeError::Io {
                path: PathBuf::from("."),
                source,
            })?,
        };
        let project_directory = opts
            .project_directory
            .as_ref()
            .map(|d| std::path::absolute(cwd.join(d)).unwrap_or_else(|_| d.clone()));
        let files: Vec<PathBuf> = if opts.files.is_empty() {
            let look = project_directory.clone().unwrap_or_else(|| cwd.clone());
            let found = DEFAULT_FILES
                .iter()
                .map(|f| look.join(f))
                .find(|p| p.is_file())
                .ok_or(ComposeError::NoFile { dir: look.clone() })?;
            vec![found]
        } else {
            opts.files
                .iter()
                .map(|f| std::path::absolute(cwd.join(f)).unwrap_or_else(|_| f.clone()))
                .collect()
        };
        let dir =
            project_directory.unwrap_or_else(|| files[0].parent().unwrap_or(&cwd).to_path_buf());
        let env = load::environment(&dir, &opts.env_files)?;
        let loaded = load::load(&files, env.clone())?;
        let mut warnings = loaded.warnings;
        let name_in_file = loaded
            .value
            .get("name")
            .and_then(|v| v.as_str())
            .map(String::from);
        let compose = compose_spec::Compose::options()
            .apply_merge(true)
            .from_yaml_value(loaded.value)
            .map_err(|e| ComposeError::Invalid {
                file: files[0].clone(),
                message: e.to_string(),
            })?;
        compose.validate_all().map_err(|e| ComposeError::Invalid {
            file: files[0].clone(),
            message: e.to_string(),
        })?;
        let model = serde_json::to_value(&compose).map_err(|e| ComposeError::Invalid {
            file: files[0].clone(),
            message: e.to_string(),
        })?;
        let name = opts
            .project_name
            .clone()
            .or_else(|| env.get("COMPOSE_PROJECT_NAME").cloned())
            .or(name_in_file)
            .map(|n| project_name_from(&n))
            .unwrap_or_else(|| {
                project_name_from(&dir.file_name().unwrap_or_default().to_string_lossy())
            });
        if name.is_empty() {
            return Err(ComposeError::Invalid {
                file: files[0].clone(),
                message: "the project name is empty: pass -p NAME".into(),
            });
        }
        let mut profiles = opts.profiles.clone();
        if profiles.is_empty()
            && let Some(p) = env.get("COMPOSE_PROFILES")
        {
            profiles = p.split(',').map(|s| s.trim().to_string()).collect();
        }
        for (svc, def) in model["services"].as_object().into_iter().flatten() {
            for key in UNSUPPORTED {
                if def.get(*key).is_some_and(|v| !v.is_null()) {
                    warnings.push(format!(
                        "service {svc:?}: {key:?} is not supported by wharf and is ignored"
                    ));
                }
            }
        }
        Ok(Project {
            name,
            dir,
            files,
            compose,
            model,
            warnings,
            profiles,
            env,
        })
    }

    /// The project as YAML (`compose config`), reusable as a compose file: every `$` left
    /// after interpolation is written `$$` again (as Docker Compose does), so reading the
    /// output back gives the same model instead of interpolating it a second time.
    pub fn to_yaml(&self) -> String {
        fn escape(v: &mut serde_yaml::Value) {
            match v {
                serde_yaml::Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
                serde_yaml::Value::Sequence(items) => items.iter_mut().for_each(escape),
                serde_yaml::Value::Mapping(m) => m.iter_mut().for_each(|(_, v)| escape(v)),
                serde_yaml::Value::Tagged(t) => escape(&mut t.value),
                _ => {}
            }
        }
        let mut value = serde_yaml::to_value(&self.compose).unwrap_or_default();
        escape(&mut value);
        serde_yaml::to_string(&value).unwrap_or_default()
    }

    /// Every service in the file, in file order.
    pub fn all_services(&self) -> Vec<String> {
        self.model["services"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Services enabled by the profiles (those without profiles always are).
    pub fn active_services(&self) -> Vec<String> {
        self.all_services()
            .into_iter()
            .filter(|s| {
                let p = &self.model["services"][s]["profiles"];
                p.as_array().is_none_or(|list| {
                    list.is_empty()
                        || list.iter().any(|x| {
                            x.as_str()
                                .is_some_and(|x| self.profiles.iter().any(|p| p == x || p == "*"))
                        })
                })
            })
            .collect()
    }

    /// `wanted` (or every active service) with what they depend on, dependencies first.
    pub fn order(&self, wanted: &[String]) -> Result<Vec<String>, ComposeError> {
        let all = self.all_services();
        for w in wanted {
            if !all.contains(w) {
                return Err(ComposeError::NoService(w.clone()));
            }
        }
        let roots = if wanted.is_empty() {
            self.active_services()
        } else {
            wanted.to_vec()
        };
        let mut out = Vec::new();
        let mut visiting = Vec::new();
        for r in &roots {
            self.visit(r, &mut out, &mut visiting)?;
        }
        Ok(out)
    }

    fn visit(
        &self,
        s: &str,
        out: &mut Vec<String>,
        visiting: &mut Vec<String>,
    ) -> Result<(), ComposeError> {
        if out.iter().any(|o| o == s) {
            return Ok(());
        }
        if let Some(i) = visiting.iter().position(|v| v == s) {
            let mut cycle = visiting[i..].to_vec();
            cycle.push(s.to_string());
            return Err(ComposeError::Cycle(cycle.join(" -> ")));
        }
        visiting.push(s.to_string());
        for (dep, _, _) in self.depends_on(s)? {
            self.visit(&dep, out, visiting)?;
        }
        visiting.pop();
        out.push(s.to_string());
        Ok(())
    }

    /// Service `s`'s dependencies: (service, condition, required).
    pub fn depends_on(&self, s: &str) -> Result<Vec<(String, Condition, bool)>, ComposeError> {
        let all = self.all_services();
        let d = &self.model["services"][s]["depends_on"];
        let mut out = Vec::new();
        match d {
            Json::Array(list) => {
                for dep in list.iter().filter_map(Json::as_str) {
                    out.push((dep.to_string(), Condition::Started, true));
                }
            }
            Json::Object(map) => {
                for (dep, spec) in map {
                    let condition = match spec["condition"].as_str() {
                        Some("service_healthy") => Condition::Healthy,
                        Some("service_completed_successfully") => Condition::CompletedSuccessfully,
                        _ => Condition::Started,
                    };
                    let required = spec["required"].as_bool().unwrap_or(true);
                    out.push((dep.clone(), condition, required));
                }
            }
            _ => {}
        }
        for (dep, _, _) in &out {
            if !all.contains(dep) {
                return Err(ComposeError::Service {
                    service: s.into(),
                    message: format!("depends on {dep:?}, which is not defined"),
                });
            }
        }
        Ok(out)
    }

    /// The project's networks: those its services use (`default` unless every service says
    /// otherwise) and those it declares.
    pub fn networks(&self) -> Vec<NetworkPlan> {
        let declared = self.model["networks"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut keys: BTreeSet<String> = declared.keys().cloned().collect();
        for s in self.all_services() {
            keys.extend(self.service_networks(&s).into_iter().map(|(k, _, _)| k));
        }
        keys.into_iter()
            .map(|key| {
                let d = declared.get(&key).cloned().unwrap_or(Json::Null);
                let external =
                    d["external"].as_bool().unwrap_or(false) || d["external"].is_object();
                // An external network is named by its key, as it exists.
                let name = d["name"].as_str().map(String::from).unwrap_or_else(|| {
                    if external {
                        key.clone()
                    } else {
                        format!("{}_{key}", self.name)
                    }
                });
                let config = &d["ipam"]["config"][0];
                let mut labels: BTreeMap<String, String> = labels_of(&d["labels"]);
                labels.insert(LABEL_PROJECT.into(), self.name.clone());
                labels.insert(LABEL_NETWORK.into(), key.clone());
                NetworkPlan {
                    key,
                    name,
                    external,
                    internal: d["internal"].as_bool().unwrap_or(false),
                    subnet: config["subnet"].as_str().map(String::from),
                    gateway: config["gateway"].as_str().map(String::from),
                    labels,
                }
            })
            .collect()
    }

    /// The project's named volumes (declared at the top level).
    pub fn volumes(&self) -> Vec<VolumePlan> {
        self.model["volumes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, d)| {
                let mut labels = labels_of(&d["labels"]);
                labels.insert(LABEL_PROJECT.into(), self.name.clone());
                labels.insert(LABEL_VOLUME.into(), key.clone());
                let external =
                    d["external"].as_bool().unwrap_or(false) || d["external"].is_object();
                VolumePlan {
                    key: key.clone(),
                    name: d["name"].as_str().map(String::from).unwrap_or_else(|| {
                        if external {
                            key.clone()
                        } else {
                            format!("{}_{key}", self.name)
                        }
                    }),
                    external,
                    labels,
                }
            })
            .collect()
    }

    /// Service `s`'s networks: (key, aliases, ipv4 address), `default` if it names none;
    /// none at all with `network_mode`.
    fn service_networks(&self, s: &str) -> Vec<(String, Vec<String>, Option<String>)> {
        let svc = &self.model["services"][s];
        if svc.get("network_mode").is_some_and(|v| !v.is_null()) {
            return Vec::new();
        }
        match &svc["networks"] {
            Json::Array(list) => list
                .iter()
                .filter_map(Json::as_str)
                .map(|n| (n.to_string(), Vec::new(), None))
                .collect(),
            Json::Object(map) => map
                .iter()
                .map(|(n, c)| {
                    let aliases = c["aliases"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Json::as_str)
                        .map(String::from)
                        .collect();
                    (
                        n.clone(),
                        aliases,
                        c["ipv4_address"].as_str().map(String::from),
                    )
                })
                .collect(),
            _ => vec![("default".into(), Vec::new(), None)],
        }
    }

    /// The plan for service `s`.
    pub fn service(&self, s: &str) -> Result<ServicePlan, ComposeError> {
        let svc = self.model["services"]
            .get(s)
            .ok_or_else(|| ComposeError::NoService(s.into()))?;
        let err = |message: String| ComposeError::Service {
            service: s.into(),
            message,
        };
        // A value parsed by the vocabulary `wharf run` uses, its error naming the key.
        fn parsed<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e| format!("{key}: {e}"))
        }
        let build = build_plan(&self.dir, &svc["build"]).map_err(err)?;
        // A service that is built without an image name gets `<project>-<service>`, as
        // Docker Compose names it.
        let image = match (svc["image"].as_str(), &build) {
            (Some(i), _) => i.to_string(),
            (None, Some(_)) => format!("{}-{s}", self.name),
            (None, None) => return Err(err("no image and no build: give one".into())),
        };
        let mut req = CreateRequest {
            image: image.clone(),
            detached: true,
            ..Default::default()
        };
        let o = &mut req.options;
        // Networks: the first as the container's network, the others connected before the
        // start. The service's name is an alias on each, as in Compose.
        let nets = self.networks();
        let net_name = |key: &str| {
            nets.iter()
                .find(|n| n.key == key)
                .map_or_else(|| format!("{}_{key}", self.name), |n| n.name.clone())
        };
        let mut more_networks = Vec::new();
        match svc["network_mode"].as_str() {
            Some(mode @ ("host" | "none")) => {
                o.network = parsed("network_mode", mode).map_err(err)?
            }
            Some(other) => {
                return Err(err(format!(
                    "network_mode {other:?} is not supported (host, none, or networks:)"
                )));
            }
            None => {
                for (i, (key, mut aliases, ip)) in self.service_networks(s).into_iter().enumerate()
                {
                    if !aliases.iter().any(|x| x == s) {
                        aliases.insert(0, s.to_string());
                    }
                    if i == 0 {
                        o.network = Network::Named(net_name(&key));
                        o.network_aliases = aliases;
                        if let Some(ip) = ip {
                            o.ip = Some(parsed("ipv4_address", &ip).map_err(err)?);
                        }
                    } else {
                        more_networks.push((net_name(&key), aliases));
                    }
                }
            }
        }
        // Environment: env_file first, then environment (which wins).
        // env_file in .env's format (quotes, `export`, comments), its values in the plan
        // (so a changed file changes the service).
        for (path, required) in env_files(&svc["env_file"]) {
            let p = self.dir.join(&path);
            match crate::sys::read_text_file(&p, load::MAX_FILE_BYTES) {
                Ok(text) => {
                    let vars = parse_dotenv(&text)
                        .map_err(|m| err(format!("env_file {}: {m}", p.display())))?;
                    o.env.extend(vars);
                }
                Err(_) if !required => {}
                Err(e) => return Err(err(format!("env_file {}: {e}", p.display()))),
            }
        }
        if let Some(env) = svc["environment"].as_object() {
            for (k, v) in env {
                // `KEY` alone: the project's value (the environment or .env), else unset.
                if let Some(v) = scalar(v).or_else(|| self.env.get(k).cloned()) {
                    if k.is_empty() {
                        return Err(err("environment: an empty variable name".into()));
                    }
                    o.env.push((k.clone(), v));
                }
            }
        }
        for p in svc["ports"].as_array().into_iter().flatten() {
            o.ports
                .push(parsed("ports", &port(p).map_err(err)?).map_err(err)?);
        }
        let vols = self.volumes();
        for v in svc["volumes"].as_array().into_iter().flatten() {
            match volume(v, &self.dir, &vols, &self.name).map_err(err)? {
                VolumeArg::Mount(m) => o.volumes.push(parsed("volumes", &m).map_err(err)?),
                VolumeArg::Tmpfs(t) => o.native.tmpfs.push(t),
            }
        }
        o.native.tmpfs.extend(strings(&svc["tmpfs"]));
        if let Some(h) = svc.get("healthcheck").filter(|h| !h.is_null()) {
            o.health = health(h).map_err(err)?;
        }
        if let Some(r) = svc["restart"].as_str() {
            req.restart = parsed("restart", r).map_err(err)?;
        }
        let o = &mut req.options;
        o.native.user = scalar(&svc["user"]);
        o.workdir = scalar(&svc["working_dir"]);
        o.native.hostname = scalar(&svc["hostname"]);
        o.stop_signal = scalar(&svc["stop_signal"]);
        if let Some(p) = scalar(&svc["platform"]) {
            req.platform = Some(parsed("platform", &p).map_err(err)?);
        }
        if let Some(g) = scalar(&svc["stop_grace_period"]) {
            let d = duration(&g).map_err(|e| err(format!("stop_grace_period: {e}")))?;
            req.stop_timeout = Some(d.as_secs_f64().ceil() as u64);
        }
        let o = &mut req.options;
        let limits = &svc["deploy"]["resources"]["limits"];
        if let Some(m) = scalar(&limits["memory"]).or_else(|| scalar(&svc["mem_limit"])) {
            o.limits.memory = Some(parse_size(&m).map_err(|e| err(format!("memory: {e}")))?);
        }
        if let Some(c) = scalar(&limits["cpus"]).or_else(|| scalar(&svc["cpus"])) {
            o.native.cpus = Some(parse_cpus(&c).map_err(|e| err(format!("cpus: {e}")))?);
        }
        if let Some(p) = scalar(&limits["pids"]).or_else(|| scalar(&svc["pids_limit"])) {
            o.native.pids_limit = Some(parsed("pids_limit", &p).map_err(err)?);
        }
        for h in strings(&svc["extra_hosts"]).into_iter().chain(
            svc["extra_hosts"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}:{}", scalar(v).unwrap_or_default())),
        ) {
            let h = crate::run::options::NameOptions::parse_host(&h)
                .map_err(|e| err(format!("extra_hosts: {e}")))?;
            o.names.extra_hosts.push(h);
        }
        for d in strings(&svc["dns"]) {
            o.names.dns.push(
                d.parse()
                    .map_err(|_| err(format!("dns: {d:?} is not an IP address")))?,
            );
        }
        o.names.dns_search = strings(&svc["dns_search"]);
        o.names.dns_options = strings(&svc["dns_opt"]);
        if let Some(s) = scalar(&svc["shm_size"]) {
            o.native.shm_size = Some(parse_size(&s).map_err(|e| err(format!("shm_size: {e}")))?);
        }
        o.native.sysctls = labels_of(&svc["sysctls"]);
        o.native.group_add = strings(&svc["group_add"]);
        o.native.cpuset_cpus = scalar(&svc["cpuset"]);
        if let Some(r) = scalar(&svc["mem_reservation"])
            .or_else(|| scalar(&svc["deploy"]["resources"]["reservations"]["memory"]))
        {
            o.native.memory_reservation =
                Some(parse_size(&r).map_err(|e| err(format!("mem_reservation: {e}")))?);
        }
        if let Some(s) = scalar(&svc["memswap_limit"]) {
            o.native.memory_swap =
                Some(parse_swap(&s).map_err(|e| err(format!("memswap_limit: {e}")))?);
        }
        for key in ["ipc", "pid"] {
            if let Some(mode) = scalar(&svc[key]) {
                if mode.starts_with("service:") {
                    return Err(err(format!(
                        "{key}: {mode:?}: name the service's container instead (container:NAME)"
                    )));
                }
                let mode = crate::run::options::parse_namespace_mode(key, &mode)
                    .map_err(|e| err(e.to_string()))?;
                o.native.set_namespace_mode(key, mode);
            }
        }
        o.labels = labels_of(&svc["labels"]);
        o.native.cap_add = strings(&svc["cap_add"]);
        o.native.cap_drop = strings(&svc["cap_drop"]);
        for d in strings(&svc["devices"]) {
            o.native
                .devices
                .push(d.parse().map_err(|e| err(format!("devices: {e}")))?);
        }
        o.native.seccomp_unconfined = strings(&svc["security_opt"])
            .iter()
            .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined");
        for (name, v) in svc["ulimits"].as_object().into_iter().flatten() {
            let (soft, hard) = match v {
                Json::Object(m) => (scalar(&m["soft"]), scalar(&m["hard"])),
                other => (scalar(other), scalar(other)),
            };
            if let (Some(soft), Some(hard)) = (soft, hard) {
                o.native
                    .ulimits
                    .push(parsed("ulimits", &format!("{name}={soft}:{hard}")).map_err(err)?);
            }
        }
        o.native.init = svc["init"].as_bool() == Some(true);
        o.native.read_only = svc["read_only"].as_bool() == Some(true);
        o.native.privileged = svc["privileged"].as_bool() == Some(true);
        let entrypoint = command(&svc["entrypoint"]);
        if let Some(ep) = &entrypoint {
            o.entrypoint = Some(ep.first().cloned().unwrap_or_default());
            o.args.extend(ep.iter().skip(1).cloned());
        }
        if let Some(c) = command(&svc["command"]) {
            o.args.extend(c);
        }
        let replicas = svc["deploy"]["replicas"]
            .as_u64()
            .or_else(|| svc["scale"].as_u64())
            .unwrap_or(1) as u32;
        let container_name = svc["container_name"].as_str().map(String::from);
        if container_name.is_some() && replicas > 1 {
            return Err(err(
                "container_name names one container: it cannot be scaled".into(),
            ));
        }
        // The fingerprint: everything the container is made from.
        let fingerprint = serde_json::to_vec(&(
            &image,
            &req.options,
            req.restart.to_string(),
            req.stop_timeout,
            req.platform.as_ref().map(|p| p.to_string()),
            &more_networks,
        ))
        .expect("a plan serialises");
        Ok(ServicePlan {
            name: s.to_string(),
            image,
            replicas,
            container_name,
            request: req,
            more_networks,
            depends_on: self.depends_on(s)?,
            hash: hex::encode(sha2::Sha256::digest(&fingerprint)),
            build,
        })
    }

    /// Labels compose puts on container `number` of service `s`.
    pub fn container_labels(&self, s: &str, number: u32, hash: &str) -> Vec<(String, String)> {
        vec![
            (LABEL_PROJECT.into(), self.name.clone()),
            (LABEL_SERVICE.into(), s.into()),
            (LABEL_NUMBER.into(), number.to_string()),
            (LABEL_HASH.into(), hash.into()),
            (LABEL_ONEOFF.into(), "False".into()),
            (
                LABEL_WORKDIR.into(),
                self.dir.to_string_lossy().into_owned(),
            ),
            (
                LABEL_FILES.into(),
                self.files
                    .iter()
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]
    }

    /// Container `number` of service `s`: `<project>-<service>-<n>`, or its container_name.
    pub fn container_name(&self, plan: &ServicePlan, number: u32) -> String {
        plan.container_name
            .clone()
            .unwrap_or_else(|| format!("{}-{}-{number}", self.name, plan.name))
    }
}

/// Keys of the specification wharf does not apply (said when a file uses them).
const UNSUPPORTED: &[&str] = &[
    "configs",
    "secrets",
    "links",
    "external_links",
    "logging",
    "volumes_from",
    "userns_mode",
    "cgroup_parent",
    "mac_address",
    "develop",
    "blkio_config",
    "cpu_shares",
    "cpu_quota",
    "cpu_period",
    "oom_score_adj",
    "runtime",
    "storage_opt",
    "isolation",
    "credential_spec",
];

fn scalar(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::Array(list) => list.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// `build:`: a context path, or a mapping with context, dockerfile, args, target and labels.
fn build_plan(dir: &Path, v: &Json) -> Result<Option<BuildPlan>, String> {
    let (context, m) = match v {
        Json::Null => return Ok(None),
        Json::String(c) => (c.clone(), None),
        Json::Object(m) => (
            m.get("context")
                .and_then(Json::as_str)
                .unwrap_or(".")
                .to_string(),
            Some(m),
        ),
        _ => return Err("build: a context path or a mapping".into()),
    };
    if context.contains("://") || context.starts_with("git@") {
        return Err(format!(
            "build: context {context:?}: remote contexts are not supported (a directory only)"
        ));
    }
    for key in m.into_iter().flat_map(|m| m.keys()) {
        if !matches!(
            key.as_str(),
            "context" | "dockerfile" | "args" | "target" | "labels" | "network"
        ) {
            return Err(format!(
                "build: {key:?} is not supported (context, dockerfile, args, target, labels, network)"
            ));
        }
    }
    let get = |k: &str| m.and_then(|m| m.get(k)).cloned().unwrap_or(Json::Null);
    Ok(Some(BuildPlan {
        context: dir.join(&context),
        dockerfile: get("dockerfile").as_str().map(PathBuf::from),
        args: build_args(&get("args")),
        target: get("target").as_str().map(String::from),
        labels: labels_of(&get("labels")),
        network: get("network").as_str().map(String::from),
    }))
}

/// `build.args`: a mapping or a `KEY=VALUE` list; a key without a value (`KEY`, or `KEY:`
/// with nothing) takes it from the environment, and is left out if it is not set there.
fn build_args(v: &Json) -> BTreeMap<String, String> {
    let from_env = |k: &str| std::env::var(k).ok().map(|v| (k.to_string(), v));
    match v {
        Json::Object(m) => m
            .iter()
            .filter_map(|(k, v)| match v {
                Json::Null => from_env(k),
                v => Some((k.clone(), scalar(v).unwrap_or_default())),
            })
            .collect(),
        Json::Array(list) => list
            .iter()
            .filter_map(Json::as_str)
            .filter_map(|s| match s.split_once('=') {
                Some((k, v)) => Some((k.to_string(), v.to_string())),
                None => from_env(s),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn labels_of(v: &Json) -> BTreeMap<String, String> {
    match v {
        Json::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), scalar(v).unwrap_or_default()))
            .collect(),
        Json::Array(list) => list
            .iter()
            .filter_map(Json::as_str)
            .map(|s| {
                let (k, v) = s.split_once('=').unwrap_or((s, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// `env_file`: a path, a list of paths, or a list of {path, required}.
fn env_files(v: &Json) -> Vec<(String, bool)> {
    match v {
        Json::String(s) => vec![(s.clone(), true)],
        Json::Array(list) => list
            .iter()
            .filter_map(|e| match e {
                Json::String(s) => Some((s.clone(), true)),
                Json::Object(m) => Some((
                    m.get("path")?.as_str()?.to_string(),
                    m.get("required").and_then(Json::as_bool).unwrap_or(true),
                )),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `command`/`entrypoint`: a list, or a string split as a shell would (no shell runs it).
fn command(v: &Json) -> Option<Vec<String>> {
    match v {
        Json::Array(list) => Some(list.iter().filter_map(scalar).collect()),
        Json::String(s) => Some(shell_split(s)),
        _ => None,
    }
}

/// Split words as a POSIX shell does with quotes (`'a b'`, `"a b"`, `\ `).
pub fn shell_split(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                cur.push(n);
                            }
                        }
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// A port: compose_spec's short form (a string) or long form (a mapping), as `-p`.
fn port(v: &Json) -> Result<String, String> {
    match v {
        Json::String(s) => {
            if s.contains('-') && !s.starts_with('[') {
                return Err(format!("port ranges ({s}) are not supported"));
            }
            Ok(s.clone())
        }
        Json::Number(n) => Ok(n.to_string()),
        Json::Object(m) => {
            let target = m
                .get("target")
                .and_then(scalar)
                .ok_or("a port needs a target")?;
            let mut out = String::new();
            if let Some(ip) = m.get("host_ip").and_then(Json::as_str) {
                out.push_str(ip);
                out.push(':');
            }
            match m.get("published").and_then(scalar) {
                Some(p) if p.contains('-') => {
                    return Err(format!("port ranges ({p}) are not supported"));
                }
                Some(p) => {
                    out.push_str(&p);
                    out.push(':');
                }
                None if !out.is_empty() => out.push(':'),
                None => {}
            }
            out.push_str(&target);
            if let Some(proto) = m.get("protocol").and_then(Json::as_str) {
                out.push('/');
                out.push_str(proto);
            }
            Ok(out)
        }
        other => Err(format!("unreadable port {other}")),
    }
}

enum VolumeArg {
    Mount(String),
    Tmpfs(String),
}

/// A service volume: bind (paths relative to the project directory), named (the project's
/// volume), or tmpfs.
fn volume(
    v: &Json,
    dir: &Path,
    declared: &[VolumePlan],
    project: &str,
) -> Result<VolumeArg, String> {
    let (kind, source, target, read_only) = match v {
        Json::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [target] => ("volume", String::new(), target.to_string(), false),
                [src, target] => (kind_of(src), src.to_string(), target.to_string(), false),
                [src, target, mode, ..] => (
                    kind_of(src),
                    src.to_string(),
                    target.to_string(),
                    mode.split(',').any(|m| m == "ro"),
                ),
                [] => return Err("an empty volume".into()),
            }
        }
        Json::Object(m) => (
            match m.get("type").and_then(Json::as_str).unwrap_or("volume") {
                "bind" => "bind",
                "tmpfs" => "tmpfs",
                "volume" => "volume",
                other => return Err(format!("volume type {other:?} is not supported")),
            },
            m.get("source").and_then(scalar).unwrap_or_default(),
            m.get("target")
                .and_then(scalar)
                .ok_or("a volume needs a target")?,
            m.get("read_only").and_then(Json::as_bool).unwrap_or(false),
        ),
        other => return Err(format!("unreadable volume {other}")),
    };
    let mode = if read_only { ":ro" } else { "" };
    match kind {
        "tmpfs" => Ok(VolumeArg::Tmpfs(target)),
        "bind" => {
            let src = if let Some(rest) = source.strip_prefix("~/") {
                std::env::var_os("HOME")
                    .map_or_else(|| PathBuf::from(&source), |h| PathBuf::from(h).join(rest))
            } else {
                dir.join(&source)
            };
            let src = std::path::absolute(&src).unwrap_or(src);
            Ok(VolumeArg::Mount(format!(
                "{}:{target}{mode}",
                src.display()
            )))
        }
        _ => {
            if source.is_empty() {
                return Err(format!(
                    "anonymous volume at {target}: give it a name (wharf keeps named volumes only)"
                ));
            }
            let name = declared
                .iter()
                .find(|d| d.key == source)
                .map(|d| d.name.clone())
                .ok_or_else(|| {
                    format!("volume {source:?} is not declared in the top-level volumes (of project {project})")
                })?;
            Ok(VolumeArg::Mount(format!("{name}:{target}{mode}")))
        }
    }
}

fn kind_of(src: &str) -> &'static str {
    if src.starts_with('/') || src.starts_with('.') || src.starts_with('~') {
        "bind"
    } else {
        "volume"
    }
}

/// Compose durations: `1m30s`, `1.5s`, `300ms`, `10us`, `2h`.
pub fn duration(s: &str) -> Result<std::time::Duration, String> {
    let mut total = 0.0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("an empty duration".into());
    }
    while !rest.is_empty() {
        let n_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(n_len);
        let num: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        total += num
            * match unit {
                "h" => 3600.0,
                "m" => 60.0,
                "s" | "" => 1.0,
                "ms" => 0.001,
                "us" | "µs" => 0.000_001,
                "ns" => 0.000_000_001,
                _ => return Err(format!("invalid duration {s:?}")),
            };
        rest = next;
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// A compose duration of a health check, in whole milliseconds (at least one).
fn health_duration(v: &Json, key: &str) -> Result<Option<std::time::Duration>, String> {
    match scalar(v) {
        None => Ok(None),
        Some(s) => {
            let d = duration(&s).map_err(|e| format!("healthcheck {key}: {e}"))?;
            Ok(Some(std::time::Duration::from_millis(
                (d.as_millis() as u64).max(1),
            )))
        }
    }
}

/// `healthcheck:` as the health check wharf runs (none when disabled).
fn health(h: &Json) -> Result<Option<HealthConfig>, String> {
    if h["disable"].as_bool() == Some(true) {
        return Ok(None);
    }
    // Docker's list form, as is: CMD runs the program itself (no shell in the image
    // needed), CMD-SHELL through sh -c.
    let test: Vec<String> = match &h["test"] {
        Json::Array(list) => {
            let words: Vec<String> = list.iter().filter_map(scalar).collect();
            match words.first().map(String::as_str) {
                Some("NONE") => return Ok(None),
                Some("CMD" | "CMD-SHELL") => words,
                _ => vec!["CMD-SHELL".into(), words.join(" ")],
            }
        }
        Json::String(s) => vec!["CMD-SHELL".into(), s.clone()],
        _ => return Err("healthcheck has no test".into()),
    };
    let mut c = HealthConfig::new(test);
    c.interval = health_duration(&h["interval"], "interval")?.unwrap_or(c.interval);
    c.timeout = health_duration(&h["timeout"], "timeout")?.unwrap_or(c.timeout);
    c.start_period = health_duration(&h["start_period"], "start_period")?.unwrap_or(c.start_period);
    if let Some(r) = scalar(&h["retries"]) {
        c.retries = r
            .parse()
            .map_err(|_| format!("healthcheck retries: {r:?} is not a count"))?;
    }
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(
        yaml: &str,
        files: &[(&str, &str)],
    ) -> (tempfile::TempDir, Result<Project, ComposeError>) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("compose.yaml"), yaml).unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        let p = Project::load(&LoadOptions {
            dir: Some(d.path().to_path_buf()),
            project_name: Some("demo".into()),
            ..Default::default()
        });
        (d, p)
    }

    #[test]
    fn config_output_reads_back_as_the_same_project() {
        let (_d, p) = project(
            "services:
  db:
    image: 'db:${TAG:-15}'
    environment: {PGDATA: '$$PGDATA/x', PRICE: '$$5'}
    command: [sh, -c, 'echo $${HOME}']
",
            &[],
        );
        let first = p.unwrap();
        let yaml = first.to_yaml();
        assert!(yaml.contains("$$PGDATA/x"), "{yaml}");
        assert!(!yaml.contains("${TAG"), "interpolated once: {yaml}");
        let (_d2, again) = project(&yaml, &[]);
        let again = again.unwrap();
        assert_eq!(again.to_yaml(), yaml, "a fixed point");
        assert_eq!(
            again.model["services"]["db"]["environment"]["PGDATA"],
            "$PGDATA/x"
        );
        assert_eq!(again.model["services"]["db"]["command"][2], "echo ${HOME}");
    }

    #[test]
    fn words_split_as_a_shell_splits_them() {
        assert_eq!(
            shell_split(r#"sh -c 'echo "a b"' x\ y "q\"t""#),
            ["sh", "-c", "echo \"a b\"", "x y", "q\"t"]
        );
        assert_eq!(duration("1m30s").unwrap().as_secs(), 90);
        assert_eq!(duration("250ms").unwrap().as_millis(), 250);
        assert!(duration("5 parsecs").is_err());
    }

    #[test]
    fn kernel_and_resource_keys_reach_the_run_options() {
        let (_d, p) = project(
            "services:
  db:
    image: postgres:16
    shm_size: 256m
    sysctls: {net.core.somaxconn: 1024}
    group_add: [wheel, '4242']
    cpuset: '0'
    mem_reservation: 32m
    memswap_limit: -1
    ipc: host
    extra_hosts: ['db:10.0.0.5']
    dns: 1.1.1.1
    dns_search: [corp.example]
    dns_opt: [ndots:2]
",
            &[],
        );
        let p = p.unwrap();
        let n = &p.service("db").unwrap().request.options.native;
        assert_eq!(n.shm_size, Some(256 << 20));
        assert_eq!(n.sysctls["net.core.somaxconn"], "1024");
        assert_eq!(n.group_add, ["wheel", "4242"]);
        assert_eq!(n.cpuset_cpus.as_deref(), Some("0"));
        assert_eq!(n.memory_reservation, Some(32 << 20));
        assert_eq!(n.memory_swap, Some(-1));
        assert!(n.ipc_host && !n.pid_host);
        let names = &p.service("db").unwrap().request.options.names;
        assert_eq!(
            names.extra_hosts,
            [("db".to_string(), "10.0.0.5".parse().unwrap())]
        );
        assert_eq!(names.dns, ["1.1.1.1".parse::<std::net::IpAddr>().unwrap()]);
        assert_eq!(names.dns_search, ["corp.example"]);
        assert_eq!(names.dns_options, ["ndots:2"]);
        let (_d, bad) = project("services:\n  x:\n    image: x\n    pid: 'service:y'\n", &[]);
        let e = bad.unwrap().service("x").err().unwrap().to_string();
        assert!(e.contains("pid"), "{e}");
        let (_d, joined) = project(
            "services:\n  x:\n    image: x\n    pid: 'container:owner'\n",
            &[],
        );
        let n = joined.unwrap().service("x").unwrap().request.options.native;
        assert_eq!(n.pid_container.as_deref(), Some("owner"));
        assert!(!n.pid_host && n.ipc_container.is_none());
    }

    #[test]
    fn services_become_create_requests_in_dependency_order() {
        let (_d, p) = project(
            "services:
  web:
    image: web:1
    ports: ['8080:80', {target: 81, published: 9081, host_ip: 0.0.0.0}]
    environment: {MODE: '${MODE:-prod}', EMPTY: }
    depends_on:
      db: {condition: service_healthy}
    volumes: [data:/srv, ./conf:/etc/conf:ro, {type: tmpfs, target: /cache}]
    command: serve --port 80
    healthcheck: {test: [CMD, wget, -q, 'http://localhost:80/'], interval: 1s, retries: 2}
  db:
    image: db:1
    deploy: {replicas: 2, resources: {limits: {memory: 64m}}}
    networks: {back: {aliases: [database]}, default: }
    devices: ['/dev/fuse:/dev/fuse', '/dev/kmsg:/dev/log:r']
volumes:
  data:
networks:
  back: {internal: true}
",
            &[],
        );
        let p = p.unwrap();
        assert_eq!(p.order(&[]).unwrap(), ["db", "web"]);
        let web = p.service("web").unwrap();
        let o = &web.request.options;
        assert_eq!(o.network, Network::Named("demo_default".into()));
        assert_eq!(o.network_aliases, ["web"]);
        let ports: Vec<String> = o.ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(ports, ["127.0.0.1:8080->80/tcp", "0.0.0.0:9081->81/tcp"]);
        assert_eq!(o.env, [("MODE".to_string(), "prod".to_string())]);
        assert_eq!(o.volumes[0].named.as_deref(), Some("demo_data"));
        assert_eq!(o.volumes[0].container, "/srv");
        assert!(o.volumes[1].host.ends_with("conf") && o.volumes[1].read_only);
        assert_eq!(o.native.tmpfs, ["/cache"]);
        let h = o.health.as_ref().unwrap();
        assert_eq!(h.test, ["CMD", "wget", "-q", "http://localhost:80/"]);
        assert_eq!((h.interval.as_millis(), h.retries), (1000, 2));
        assert_eq!(web.request.image, "web:1");
        assert_eq!(o.args, ["serve", "--port", "80"]);
        assert!(web.request.detached);
        assert_eq!(
            web.depends_on,
            [("db".to_string(), Condition::Healthy, true)]
        );
        let db = p.service("db").unwrap();
        assert_eq!(db.replicas, 2);
        let o = &db.request.options;
        assert_eq!(o.network, Network::Named("demo_back".into()));
        assert_eq!(o.network_aliases, ["db", "database"]);
        assert_eq!(o.limits.memory, Some(64 << 20));
        let devices: Vec<(&str, &str, &str)> = o
            .native
            .devices
            .iter()
            .map(|d| {
                (
                    d.host.as_str(),
                    d.container.as_str(),
                    d.permissions.as_str(),
                )
            })
            .collect();
        assert_eq!(
            devices,
            [
                ("/dev/fuse", "/dev/fuse", "rwm"),
                ("/dev/kmsg", "/dev/log", "r")
            ]
        );
        assert_eq!(
            db.more_networks,
            [("demo_default".to_string(), vec!["db".to_string()])]
        );
        let nets: Vec<String> = p.networks().into_iter().map(|n| n.name).collect();
        assert_eq!(nets, ["demo_back", "demo_default"]);
        assert!(p.networks()[0].internal);
    }

    #[test]
    fn cycles_missing_services_and_anonymous_volumes_are_refused() {
        let (_d, p) = project(
            "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n",
            &[],
        );
        let e = p.unwrap().order(&[]).unwrap_err().to_string();
        assert!(e.contains("cycle") && e.contains("a -> b -> a"), "{e}");
        let (_d, p) = project("services:\n  a: {image: x, depends_on: [nope]}\n", &[]);
        assert!(
            p.unwrap()
                .order(&[])
                .unwrap_err()
                .to_string()
                .contains("\"nope\"")
        );
        let (_d, p) = project("services:\n  a: {image: x, volumes: [/data]}\n", &[]);
        assert!(
            p.unwrap()
                .service("a")
                .unwrap_err()
                .to_string()
                .contains("anonymous volume")
        );
    }

    #[test]
    fn merge_keys_external_resources_and_env_files() {
        let (_d, p) = project(
            "x-common: &common
  image: busybox
  environment: {FROM_ANCHOR: yes}
services:
  a:
    <<: *common
    env_file: [app.env]
    volumes: [ext:/data]
    networks: [outside]
volumes:
  ext: {external: true}
networks:
  outside: {external: true}
",
            &[(
                "app.env",
                "export QUOTED=\"two words\" # comment\nPLAIN=1\n",
            )],
        );
        let p = p.unwrap();
        let a = p.service("a").unwrap();
        let env: Vec<String> = a
            .request
            .options
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(env, ["QUOTED=two words", "PLAIN=1", "FROM_ANCHOR=yes"]);
        assert_eq!(
            a.request.options.volumes[0].named.as_deref(),
            Some("ext"),
            "external volumes keep their name"
        );
        assert_eq!(a.request.options.network, Network::Named("outside".into()));
        assert!(p.volumes()[0].external && p.networks()[0].external);
    }

    #[test]
    fn the_project_directory_holds_env_and_relative_paths() {
        let d = tempfile::tempdir().unwrap();
        let files = d.path().join("files");
        let proj = d.path().join("proj");
        std::fs::create_dir_all(&files).unwrap();
        std::fs::create_dir_all(&proj).unwrap();
        std::fs::write(
            files.join("app.yaml"),
            "services:\n  a: {image: 'x:${TAG}', volumes: ['./data:/data']}\n",
        )
        .unwrap();
        std::fs::write(proj.join(".env"), "TAG=from-project-dir\n").unwrap();
        let p = Project::load(&LoadOptions {
            dir: Some(d.path().to_path_buf()),
            files: vec!["files/app.yaml".into()],
            project_directory: Some("proj".into()),
            project_name: Some("p".into()),
            ..Default::default()
        })
        .unwrap();
        let a = p.service("a").unwrap();
        assert_eq!(a.request.image, "x:from-project-dir");
        assert_eq!(a.request.options.volumes[0].host, proj.join("data"));
    }

    #[test]
    fn profiles_dotenv_and_required_variables() {
        let (_d, p) = project(
            "services:\n  a: {image: 'x:${TAG}'}\n  dbg: {image: y, profiles: [debug]}\n",
            &[(".env", "TAG=2\n")],
        );
        let p = p.unwrap();
        assert_eq!(p.active_services(), ["a"]);
        assert_eq!(p.service("a").unwrap().request.image, "x:2");
        let (_d, p) = project("services:\n  a: {image: 'x:${NOPE:?set NOPE}'}\n", &[]);
        let e = p.err().unwrap().to_string();
        assert!(e.contains("NOPE") && e.contains("set NOPE"), "{e}");
    }
}
