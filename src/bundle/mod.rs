//! Image config + run options → an OCI runtime spec: the one shape every way of running
//! meets at (`wharf run`, later the runtime CLI and the containerd shim). Docker's rules for
//! entrypoint, cmd, env and working directory apply; wasm-only limits travel as annotations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::collections::HashSet;

use oci_spec::runtime::{
    Capability, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, Spec,
};

pub mod security;
pub mod sysctl;

use crate::image::content::ImageConfig;
use crate::run::options::{Network, RunOptions};

/// Annotation carrying `-u` (resolved inside the container's own /etc/passwd).
/// The image's StopSignal (or `--stop-signal`), as the OCI image spec's conversion carries it.
pub const ANNOTATION_STOP_SIGNAL: &str = "org.opencontainers.image.stopSignal";
pub const ANNOTATION_USER: &str = "dev.wharf.user";
/// Annotation asking for the init reaper as pid 1.
pub const ANNOTATION_INIT: &str = "dev.wharf.init";
/// `--add-host`/`--dns*` (JSON of `NameOptions`): applied to the container's /etc/hosts and
/// /etc/resolv.conf once wharf has written them.
pub const ANNOTATION_NAMES: &str = "dev.wharf.names";
/// `--group-add`: more supplementary groups, comma-separated names or numbers, resolved in
/// the container's /etc/group.
pub const ANNOTATION_GROUP_ADD: &str = "dev.wharf.group-add";

/// Annotation carrying the wasm run-time limit in milliseconds.
pub const ANNOTATION_TIMEOUT_MS: &str = "dev.wharf.wasm.timeout-ms";
/// Annotation carrying the wasm fuel budget.
pub const ANNOTATION_FUEL: &str = "dev.wharf.wasm.fuel";
/// Named volumes' mount points (JSON list): an empty volume gets the image's files there
/// first (native).
pub const ANNOTATION_COPY_UP: &str = "dev.wharf.copy-up";
/// The image's own health check (its config's `Healthcheck`, JSON), for a container that
/// sets none.
pub const ANNOTATION_IMAGE_HEALTHCHECK: &str = "dev.wharf.image-healthcheck";
/// `--network pasta`: the published ports (JSON) pasta forwards.
pub const ANNOTATION_PASTA: &str = "dev.wharf.network.pasta";
/// The image's exposed ports (`80/tcp,53/udp`), for `-P`.
pub const ANNOTATION_EXPOSED_PORTS: &str = "dev.wharf.exposed-ports";

/// Why a spec could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("no command specified: the image has no entrypoint or cmd, and none was given")]
    NoCommand,
    #[error("building the runtime spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error(transparent)]
    Capability(#[from] security::UnknownCapability),
    #[error("--device {path}: {why}")]
    Device { path: String, why: String },
    #[error("{0}")]
    Invalid(String),
}

/// The process arguments Docker would run: `--entrypoint` replaces the image's entrypoint and
/// drops its cmd; trailing arguments replace the cmd.
pub fn argv(config: &ImageConfig, opts: &RunOptions) -> Vec<String> {
    let run = config.config.as_ref();
    let entrypoint: Vec<String> = match &opts.entrypoint {
        Some(e) => vec![e.clone()],
        None => run.and_then(|c| c.entrypoint.clone()).unwrap_or_default(),
    };
    let cmd: Vec<String> = if !opts.args.is_empty() {
        opts.args.clone()
    } else if opts.entrypoint.is_some() {
        Vec::new()
    } else {
        run.and_then(|c| c.cmd.clone()).unwrap_or_default()
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// The environment: the image's, then `-e`/`--env-file` in order, later keys replacing
/// earlier ones in place.
pub fn env(config: &ImageConfig, opts: &RunOptions) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let image_env = config
        .config
        .as_ref()
        .and_then(|c| c.env.clone())
        .unwrap_or_default();
    let pairs = image_env
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .chain(opts.env.iter().cloned());
    // Where each key is in `out` (a lookup, not a scan: 200 000 variables from an env file
    // took over a minute with one).
    let mut at: HashMap<String, usize> = HashMap::new();
    for (k, v) in pairs {
        match at.get(&k) {
            Some(&i) => out[i].1 = v,
            None => {
                at.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Build the runtime spec for `argv` (already decided, see `argv`).
pub fn spec(
    config: &ImageConfig,
    opts: &RunOptions,
    argv: Vec<String>,
    annotations: HashMap<String, String>,
) -> Result<Spec, BundleError> {
    if argv.is_empty() {
        return Err(BundleError::NoCommand);
    }
    let mut spec = Spec::default();
    let cwd = opts
        .workdir
        .clone()
        .or_else(|| config.config.as_ref().and_then(|c| c.working_dir.clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_string());
    if let Some(process) = spec.process_mut() {
        process.set_args(Some(argv));
        process.set_env(Some(env(config, opts)));
        process.set_cwd(PathBuf::from(cwd));
        process.set_terminal(Some(opts.tty));
    }
    let mut mounts: Vec<Mount> = spec.mounts().clone().unwrap_or_default();
    for v in &opts.volumes {
        mounts.push(
            MountBuilder::default()
                .destination(PathBuf::from(&v.container))
                .typ("bind")
                .source(v.host.clone())
                .options(vec![
                    "rbind".to_string(),
                    if v.read_only { "ro" } else { "rw" }.to_string(),
                ])
                .build()?,
        );
    }
    spec.set_mounts(Some(mounts));
    let mut annotations = annotations;
    let stop_signal = opts
        .stop_signal
        .clone()
        .or_else(|| config.config.as_ref().and_then(|c| c.stop_signal.clone()));
    if let Some(sig) = stop_signal {
        annotations.insert(ANNOTATION_STOP_SIGNAL.into(), sig);
    }
    let exposed: Vec<&str> = config
        .config
        .as_ref()
        .and_then(|c| c.exposed_ports.as_ref())
        .into_iter()
        .flat_map(|m| m.keys().map(String::as_str))
        .collect();
    if !exposed.is_empty() {
        annotations.insert(ANNOTATION_EXPOSED_PORTS.into(), exposed.join(","));
    }
    if let Some(h) = config.config.as_ref().and_then(|c| c.healthcheck.as_ref()) {
        annotations.insert(ANNOTATION_IMAGE_HEALTHCHECK.into(), h.to_string());
    }
    let copy_up: Vec<&str> = opts
        .volumes
        .iter()
        .filter(|v| v.named.is_some())
        .map(|v| v.container.as_str())
        .collect();
    if !copy_up.is_empty() {
        annotations.insert(
            ANNOTATION_COPY_UP.into(),
            serde_json::to_string(&copy_up).expect("paths serialise"),
        );
    }
    if opts.network == Network::Pasta {
        annotations.insert(
            ANNOTATION_PASTA.into(),
            serde_json::to_string(&opts.ports).expect("ports serialise"),
        );
    }
    if let Some(t) = opts.limits.timeout {
        annotations.insert(ANNOTATION_TIMEOUT_MS.into(), t.as_millis().to_string());
    }
    if let Some(f) = opts.limits.fuel {
        annotations.insert(ANNOTATION_FUEL.into(), f.to_string());
    }
    spec.set_annotations(Some(annotations));
    if let Some(linux) = spec.linux_mut() {
        if let Some(limit) = opts.limits.memory {
            let memory = LinuxMemoryBuilder::default().limit(limit as i64).build()?;
            linux.set_resources(Some(
                LinuxResourcesBuilder::default().memory(memory).build()?,
            ));
        }
        if opts.network == Network::Host
            && let Some(ns) = linux.namespaces_mut()
        {
            ns.retain(|n| n.typ() != LinuxNamespaceType::Network);
        }
    }
    apply_native(&mut spec, opts)?;
    // No `-u`: the image's USER (Docker's rule; an empty one is root).
    let image_user = config
        .config
        .as_ref()
        .and_then(|c| c.user.as_deref())
        .filter(|u| !u.is_empty());
    if opts.native.user.is_none()
        && let Some(user) = image_user
    {
        let mut annotations = spec.annotations().clone().unwrap_or_default();
        annotations.insert(ANNOTATION_USER.into(), user.to_string());
        spec.set_annotations(Some(annotations));
    }
    Ok(spec)
}

/// The capability set `--cap-add`, `--cap-drop` and `--privileged` ask for.
pub fn capabilities(opts: &RunOptions) -> Result<Vec<Capability>, BundleError> {
    let n = &opts.native;
    if n.privileged {
        return Ok(security::ALL_CAPABILITIES.to_vec());
    }
    // As Docker: `--cap-drop ALL` empties the set first, then adds apply, then the other
    // drops (a capability both added and dropped is dropped).
    let is_all = |c: &String| c.eq_ignore_ascii_case("ALL");
    let mut caps: Vec<Capability> = if n.cap_drop.iter().any(is_all) {
        Vec::new()
    } else {
        security::DEFAULT_CAPABILITIES.to_vec()
    };
    if n.cap_add.iter().any(is_all) {
        caps = security::ALL_CAPABILITIES.to_vec();
    }
    for add in n.cap_add.iter().filter(|c| !is_all(c)) {
        let c = security::parse_capability(add)?;
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    for drop in n.cap_drop.iter().filter(|c| !is_all(c)) {
        let c = security::parse_capability(drop)?;
        caps.retain(|x| *x != c);
    }
    Ok(caps)
}

/// What only a native container uses: capabilities, seccomp, no_new_privs, the read-only
/// root, cgroup limits beyond memory, tmpfs mounts, rlimits, user and hostname.
fn apply_native(spec: &mut Spec, opts: &RunOptions) -> Result<(), BundleError> {
    let n = &opts.native;
    let caps = capabilities(opts)?;
    if let Some(hostname) = &n.hostname {
        spec.set_hostname(Some(hostname.clone()));
    } else {
        spec.set_hostname(None);
    }
    if let Some(process) = spec.process_mut() {
        let set: HashSet<Capability> = caps.iter().copied().collect();
        let capabilities = LinuxCapabilitiesBuilder::default()
            .bounding(set.clone())
            .effective(set.clone())
            .permitted(set)
            .inheritable(HashSet::new())
            .ambient(HashSet::new())
            .build()?;
        process.set_capabilities(Some(capabilities));
        process.set_no_new_privileges(Some(!n.privileged));
        let mut rlimits = process.rlimits().clone().unwrap_or_default();
        // Open files: Podman's default, not runc's 1024 (see `sys::container_nofile`).
        let nofile = crate::sys::container_nofile();
        rlimits.retain(|r| r.typ() != PosixRlimitType::RlimitNofile);
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(nofile)
                .hard(nofile)
                .build()?,
        );
        for u in &n.ulimits {
            let typ: PosixRlimitType = serde_json::from_value(serde_json::Value::String(format!(
                "RLIMIT_{}",
                u.name.to_ascii_uppercase()
            )))
            .expect("ulimit names are validated against the RLIMIT_ list");
            rlimits.retain(|r| r.typ() != typ);
            rlimits.push(
                PosixRlimitBuilder::default()
                    .typ(typ)
                    .soft(u.soft)
                    .hard(u.hard)
                    .build()?,
            );
        }
        process.set_rlimits(Some(rlimits));
    }
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(n.read_only));
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for t in &n.tmpfs {
        let (path, options) = tmpfs_options(t)?;
        mounts.push(
            MountBuilder::default()
                .destination(PathBuf::from(path))
                .typ("tmpfs")
                .source(PathBuf::from("tmpfs"))
                .options(options)
                .build()?,
        );
    }
    if let Some(size) = n.shm_size {
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
        {
            let mut options: Vec<String> = m
                .options()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| !o.starts_with("size="))
                .collect();
            options.push(format!("size={}k", size.div_ceil(1024)));
            m.set_options(Some(options));
        }
    }
    spec.set_mounts(Some(mounts));
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    if let Some(user) = &n.user {
        annotations.insert(ANNOTATION_USER.into(), user.clone());
    }
    if n.init {
        annotations.insert(ANNOTATION_INIT.into(), "true".into());
    }
    if !n.group_add.is_empty() {
        annotations.insert(ANNOTATION_GROUP_ADD.into(), n.group_add.join(","));
    }
    if !opts.names.is_empty() {
        annotations.insert(
            ANNOTATION_NAMES.into(),
            serde_json::to_string(&opts.names).expect("names serialise"),
        );
    }
    spec.set_annotations(Some(annotations));
    if let Some(linux) = spec.linux_mut() {
        if !n.privileged && !n.seccomp_unconfined {
            linux.set_seccomp(Some(security::default_seccomp(&caps)));
        }
        if n.privileged {
            linux.set_masked_paths(Some(vec![]));
            linux.set_readonly_paths(Some(vec![]));
        }
        if !n.sysctls.is_empty() {
            linux.set_sysctl(Some(n.sysctls.clone().into_iter().collect()));
        }
        if let Some(ns) = linux.namespaces_mut() {
            ns.retain(|x| {
                !(n.ipc_host && x.typ() == LinuxNamespaceType::Ipc
                    || n.pid_host && x.typ() == LinuxNamespaceType::Pid)
            });
        }
        let mut resources = linux.resources().clone().unwrap_or_default();
        if n.memory_swap.is_some() || n.memory_reservation.is_some() {
            let mut memory = (*resources.memory()).unwrap_or_default();
            if let Some(swap) = n.memory_swap {
                memory.set_swap(Some(swap));
            }
            if let Some(r) = n.memory_reservation {
                memory.set_reservation(Some(r as i64));
            }
            resources.set_memory(Some(memory));
        }
        if let Some(pids) = n.pids_limit {
            resources.set_pids(Some(LinuxPidsBuilder::default().limit(pids).build()?));
        }
        if let Some(cpus) = n.cpus {
            let period = 100_000u64;
            resources.set_cpu(Some(
                LinuxCpuBuilder::default()
                    .period(period)
                    .quota((cpus * period as f64) as i64)
                    .build()?,
            ));
        }
        if n.cpuset_cpus.is_some() || n.cpuset_mems.is_some() {
            let mut cpu = resources.cpu().clone().unwrap_or_default();
            cpu.set_cpus(n.cpuset_cpus.clone());
            cpu.set_mems(n.cpuset_mems.clone());
            resources.set_cpu(Some(cpu));
        }
        add_devices(linux, &mut resources, &n.devices)?;
        linux.set_resources(Some(resources));
    }
    Ok(())
}

/// `--tmpfs PATH[:OPTIONS]` as Docker reads it: the path, and mount options (`size=64m`,
/// `mode=1777`, `ro`, `exec`, ...) over the defaults `rw,nosuid,nodev,noexec,size=65536k`.
pub fn tmpfs_options(flag: &str) -> Result<(&str, Vec<String>), BundleError> {
    let (path, extra) = flag.split_once(':').unwrap_or((flag, ""));
    if !path.starts_with('/') {
        return Err(BundleError::Invalid(format!(
            "--tmpfs {flag:?}: the path must be absolute"
        )));
    }
    let mut options: Vec<String> = ["rw", "nosuid", "nodev", "noexec", "size=65536k"]
        .map(String::from)
        .to_vec();
    for o in extra.split(',').filter(|o| !o.is_empty()) {
        let key = o.split_once('=').map_or(o, |(k, _)| k);
        let opposite = match key {
            "ro" => Some("rw"),
            "rw" => Some("ro"),
            "exec" => Some("noexec"),
            "noexec" => Some("exec"),
            "suid" => Some("nosuid"),
            "nosuid" => Some("suid"),
            "dev" => Some("nodev"),
            "nodev" => Some("dev"),
            _ => None,
        };
        if !matches!(
            key,
            "ro" | "rw"
                | "exec"
                | "noexec"
                | "suid"
                | "nosuid"
                | "dev"
                | "nodev"
                | "size"
                | "mode"
                | "uid"
                | "gid"
                | "nr_inodes"
                | "noatime"
                | "nodiratime"
        ) {
            return Err(BundleError::Invalid(format!(
                "--tmpfs {flag:?}: unknown option {o:?}"
            )));
        }
        if key == "size" {
            let v = &o[5..];
            let bytes = crate::run::options::parse_size(v).map_err(|_| {
                BundleError::Invalid(format!("--tmpfs {flag:?}: invalid size {v:?}"))
            })?;
            options.retain(|x| !x.starts_with("size="));
            options.push(format!("size={}k", bytes.div_ceil(1024)));
            continue;
        }
        options.retain(|x| Some(x.as_str()) != opposite && x.split('=').next() != Some(key));
        options.push(o.to_string());
    }
    Ok((path, options))
}

/// `--device`: each host node made in the container with the host's numbers, mode and
/// owner, and allowed in its devices cgroup with the permissions given (Docker's way).
fn add_devices(
    linux: &mut oci_spec::runtime::Linux,
    resources: &mut oci_spec::runtime::LinuxResources,
    devices: &[crate::run::options::DeviceMapping],
) -> Result<(), BundleError> {
    use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType};
    if devices.is_empty() {
        return Ok(());
    }
    let mut nodes = linux.devices().clone().unwrap_or_default();
    let mut rules = resources.devices().clone().unwrap_or_default();
    for d in devices {
        let node = crate::sys::device_node(std::path::Path::new(&d.host)).map_err(|e| {
            BundleError::Device {
                path: d.host.clone(),
                why: e.to_string(),
            }
        })?;
        let typ = match node.kind {
            crate::sys::NodeKind::Block => LinuxDeviceType::B,
            _ => LinuxDeviceType::C,
        };
        nodes.retain(|n| n.path() != std::path::Path::new(&d.container));
        nodes.push(
            LinuxDeviceBuilder::default()
                .path(PathBuf::from(&d.container))
                .typ(typ)
                .major(i64::from(node.major))
                .minor(i64::from(node.minor))
                .file_mode(node.mode)
                .uid(node.uid)
                .gid(node.gid)
                .build()?,
        );
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(typ)
                .major(i64::from(node.major))
                .minor(i64::from(node.minor))
                .access(d.permissions.clone())
                .build()?,
        );
    }
    linux.set_devices(Some(nodes));
    resources.set_devices(Some(rules));
    Ok(())
}

/// Whether the spec gives the container a network namespace of its own (no host network).
pub fn has_private_network(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network))
}

/// Whether the container may use sockets: the host's network, or a network namespace
/// someone made for it (a wharf network, a CRI pod's); not a private one with only `lo`.
pub fn network_access(spec: &Spec) -> bool {
    !has_private_network(spec) || network_namespace_path(spec).is_some()
}

/// The network namespace the container joins (a path in the spec), if it joins one
/// rather than getting a new one or the host's.
pub fn network_namespace_path(spec: &Spec) -> Option<&std::path::Path> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)?
        .path()
        .as_deref()
}

/// The ports pasta publishes, if the container runs with `--network pasta`.
pub fn pasta_ports(spec: &Spec) -> Option<Vec<crate::run::options::PortMapping>> {
    let a = spec.annotations().as_ref()?.get(ANNOTATION_PASTA)?;
    serde_json::from_str(a).ok()
}

/// Point the spec's network namespace at `path` (a network's namespace, made for it).
pub fn set_network_namespace(spec: &mut Spec, path: &std::path::Path) {
    set_namespace_path(spec, LinuxNamespaceType::Network, path);
}

/// Make the spec join the namespace at `path` (`/proc/PID/ns/...`) for its `typ` one.
pub fn set_namespace_path(spec: &mut Spec, typ: LinuxNamespaceType, path: &std::path::Path) {
    if let Some(ns) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    {
        for n in ns.iter_mut() {
            if n.typ() == typ {
                n.set_path(Some(path.to_path_buf()));
            }
        }
    }
}

/// The bind mounts the user asked for (volumes), as (host, container, read-only).
pub fn volumes(spec: &Spec) -> Vec<(PathBuf, String, bool)> {
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| m.typ().as_deref() == Some("bind"))
        .filter_map(|m| {
            let ro = m.options().iter().flatten().any(|o| o == "ro");
            Some((
                m.source().clone()?,
                m.destination().to_string_lossy().into_owned(),
                ro,
            ))
        })
        .collect()
}

/// The memory limit the spec sets, in bytes.
pub fn memory_limit(spec: &Spec) -> Option<u64> {
    spec.linux()
        .as_ref()?
        .resources()
        .as_ref()?
        .memory()
        .as_ref()?
        .limit()
        .and_then(|l| u64::try_from(l).ok())
        .filter(|l| *l > 0)
}

/// An annotation parsed as a number.
pub fn annotation_u64(spec: &Spec, key: &str) -> Option<u64> {
    spec.annotations().as_ref()?.get(key)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::content::RunConfig;

    fn config() -> ImageConfig {
        ImageConfig {
            config: Some(RunConfig {
                entrypoint: Some(vec!["/bin/app".into()]),
                cmd: Some(vec!["--serve".into()]),
                env: Some(vec!["PATH=/bin".into(), "MODE=prod".into()]),
                working_dir: Some("/srv".into()),
                ..RunConfig::default()
            }),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn tmpfs_options_override_dockers_defaults() {
        let (p, o) = tmpfs_options("/run:size=16m,mode=1770,exec").unwrap();
        assert_eq!(p, "/run");
        assert_eq!(
            o,
            ["rw", "nosuid", "nodev", "size=16384k", "mode=1770", "exec"]
        );
        let (_, o) = tmpfs_options("/t").unwrap();
        assert_eq!(o, ["rw", "nosuid", "nodev", "noexec", "size=65536k"]);
        let (_, o) = tmpfs_options("/t:ro").unwrap();
        assert!(o.contains(&"ro".to_string()) && !o.contains(&"rw".to_string()));
        assert!(tmpfs_options("rel").is_err());
        assert!(tmpfs_options("/t:bogus=1").is_err());
        assert!(tmpfs_options("/t:size=lots").is_err());
    }

    #[test]
    fn docker_rules_for_argv() {
        let c = config();
        assert_eq!(argv(&c, &RunOptions::default()), ["/bin/app", "--serve"]);
        let o = RunOptions {
            args: vec!["x".into()],
            ..RunOptions::default()
        };
        assert_eq!(argv(&c, &o), ["/bin/app", "x"]);
        let o = RunOptions {
            entrypoint: Some("/bin/sh".into()),
            ..RunOptions::default()
        };
        assert_eq!(argv(&c, &o), ["/bin/sh"]);
    }

    #[test]
    fn env_overrides_in_place() {
        let o = RunOptions {
            env: vec![("MODE".into(), "dev".into()), ("NEW".into(), "".into())],
            ..RunOptions::default()
        };
        assert_eq!(env(&config(), &o), ["PATH=/bin", "MODE=dev", "NEW="]);
    }

    #[test]
    fn spec_carries_limits_volumes_and_network() {
        let o = RunOptions {
            volumes: vec!["/h:/data:ro".parse().unwrap()],
            limits: crate::run::options::Limits {
                memory: Some(64 << 20),
                timeout: Some(std::time::Duration::from_secs(2)),
                fuel: None,
            },
            network: Network::Host,
            ..RunOptions::default()
        };
        let s = spec(&config(), &o, vec!["/bin/app".into()], HashMap::new()).unwrap();
        assert_eq!(memory_limit(&s), Some(64 << 20));
        assert_eq!(annotation_u64(&s, ANNOTATION_TIMEOUT_MS), Some(2000));
        assert_eq!(
            volumes(&s),
            vec![(PathBuf::from("/h"), "/data".to_string(), true)]
        );
        assert!(!has_private_network(&s));
        assert_eq!(s.process().as_ref().unwrap().cwd(), &PathBuf::from("/srv"));
        let s = spec(
            &config(),
            &RunOptions::default(),
            vec!["a".into()],
            HashMap::new(),
        )
        .unwrap();
        assert!(has_private_network(&s));
        assert!(matches!(
            spec(&config(), &RunOptions::default(), vec![], HashMap::new()),
            Err(BundleError::NoCommand)
        ));
    }

    #[test]
    fn the_stop_signal_comes_from_the_image_unless_overridden() {
        let mut c = config();
        c.config.as_mut().unwrap().stop_signal = Some("SIGQUIT".into());
        let argv = vec!["x".to_string()];
        let s = spec(&c, &RunOptions::default(), argv.clone(), HashMap::new()).unwrap();
        let a = s.annotations().clone().unwrap();
        assert_eq!(a[ANNOTATION_STOP_SIGNAL], "SIGQUIT");
        let opts = RunOptions {
            stop_signal: Some("USR1".into()),
            ..RunOptions::default()
        };
        let s = spec(&c, &opts, argv.clone(), HashMap::new()).unwrap();
        assert_eq!(
            s.annotations().clone().unwrap()[ANNOTATION_STOP_SIGNAL],
            "USR1"
        );
        let s = spec(&config(), &RunOptions::default(), argv, HashMap::new()).unwrap();
        assert!(
            !s.annotations()
                .clone()
                .unwrap()
                .contains_key(ANNOTATION_STOP_SIGNAL)
        );
    }

    #[test]
    fn the_user_comes_from_the_image_unless_overridden() {
        let mut c = config();
        c.config.as_mut().unwrap().user = Some("1000:1000".into());
        let argv = vec!["x".to_string()];
        let user = |c: &ImageConfig, opts: &RunOptions| {
            spec(c, opts, argv.clone(), HashMap::new())
                .unwrap()
                .annotations()
                .clone()
                .unwrap()
                .get(ANNOTATION_USER)
                .cloned()
        };
        assert_eq!(
            user(&c, &RunOptions::default()).as_deref(),
            Some("1000:1000")
        );
        let mut opts = RunOptions::default();
        opts.native.user = Some("0".into());
        assert_eq!(user(&c, &opts).as_deref(), Some("0"));
        c.config.as_mut().unwrap().user = Some(String::new());
        assert_eq!(
            user(&c, &RunOptions::default()),
            None,
            "an empty USER is root"
        );
    }
}
