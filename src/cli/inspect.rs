//! `wharf inspect CONTAINER|IMAGE`: a container's state and configuration (containers are
//! looked up first, as Docker), or an image's manifest, config and dispatch decision, as
//! JSON; with `--explain` the decision and every signal behind it.

use serde_json::json;
use wharf::dispatch;
use wharf::image::platform::PlatformSpec;
use wharf::image::resolved::ResolvedImage;
use wharf::image::{Manifest, media, read_manifest};

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Containers (name or id) or images (name, name:tag, id or digest).
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Print each object through a Go template (`{{.State.Status}}`, `{{json .Mounts}}`), as
    /// Docker's `--format`.
    #[arg(short, long)]
    format: Option<String>,
    /// Only this kind of object: container or image.
    #[arg(long = "type", value_parser = ["container", "image"])]
    kind: Option<String>,
    /// Platform of a multi-platform image (os/arch[/variant]).
    #[arg(long)]
    platform: Option<PlatformSpec>,
    /// Print how wharf would run the image, and why.
    #[arg(long)]
    explain: bool,
}

/// The objects as a JSON array (Docker's shape), or each through `--format`; every name is
/// tried, and a name that is neither a container nor an image is an error after the rest.
pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    if args.explain {
        let [name] = &args.names[..] else {
            anyhow::bail!("--explain takes one image");
        };
        return explain_image(ctx, name, args.platform.as_ref());
    }
    let format = args
        .format
        .as_deref()
        .map(super::template::Format::parse)
        .transpose()?;
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let mut objects = Vec::new();
    let mut missing = 0;
    for name in &args.names {
        let found = if args.kind.as_deref() != Some("image")
            && let Ok(id) = containers.find(name)
        {
            container(ctx, &containers, &id)
        } else if args.kind.as_deref() == Some("container") {
            Err(anyhow::anyhow!("no such container: {name}"))
        } else {
            image(ctx, name, args.platform.as_ref())
        };
        match found {
            Ok(v) => objects.push(v),
            Err(e) if args.names.len() == 1 => return Err(e),
            Err(e) => {
                eprintln!("Error: {e:#}");
                missing += 1;
            }
        }
    }
    match &format {
        Some(f) => {
            for o in &objects {
                outln!("{}", f.render(o)?);
            }
        }
        None => outln!("{}", serde_json::to_string_pretty(&objects)?),
    }
    if missing > 0 {
        anyhow::bail!("{missing} of {} names were not found", args.names.len());
    }
    Ok(())
}

fn explain_image(ctx: &Session, name: &str, platform: Option<&PlatformSpec>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let record = store.resolve(name)?;
    let image = ResolvedImage::new(&store, record, platform)?;
    let decision = dispatch::decide(&dispatch::Facts::of_image(&image));
    explain(name, &image, &decision)?;
    if matches!(&decision, Ok(d) if d.kind == dispatch::Kind::Wasm) {
        explain_wasi(&store, name, platform)?;
    }
    decision.map(drop).map_err(Into::into)
}

/// An image as Docker shows it (Id, RepoTags, RepoDigests, Created, Os, Architecture,
/// Config, RootFS, Size), plus what wharf knows: the manifest, index, platforms and dispatch.
fn image(
    ctx: &Session,
    name: &str,
    platform: Option<&PlatformSpec>,
) -> anyhow::Result<serde_json::Value> {
    let store = ctx.store()?;
    let record = store.resolve(name)?;
    let index = match read_manifest(&store, &record.descriptor)? {
        Manifest::Index(i) => Some(i),
        Manifest::Image(_) => None,
    };
    let image = ResolvedImage::new(&store, record, platform)?;
    let decision = dispatch::decide(&dispatch::Facts::of_image(&image));
    let raw_config: serde_json::Value = serde_json::from_slice(&store.read_blob_capped(
        image.manifest.config(),
        "config",
        media::MAX_CONFIG_BYTES,
    )?)?;
    let repo_digests: Vec<String> = image
        .record
        .name
        .iter()
        .map(|n| format!("{}@{}", n.familiar_name(), image.record.digest()))
        .collect();
    Ok(json!({
        "Id": image.record.digest().to_string(),
        "RepoTags": image.record.name.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "RepoDigests": repo_digests,
        "Created": raw_config.get("created"),
        "Author": raw_config.get("author"),
        "Os": raw_config.get("os"),
        "Architecture": raw_config.get("architecture"),
        "Variant": raw_config.get("variant"),
        "Config": raw_config.get("config").cloned().unwrap_or_else(|| json!({})),
        "RootFS": raw_config.get("rootfs"),
        "MediaType": image.record.descriptor.media_type().to_string(),
        "Platforms": image.platforms,
        "Size": image.content_size(&store),
        "Index": index,
        "ManifestDigest": image.manifest_desc.digest().to_string(),
        "Manifest": image.manifest,
        "ImageConfig": raw_config,
        "Kind": decision.as_ref().map(|d| d.kind.to_string()).unwrap_or_else(|_| "conflict".into()),
        "Dispatch": match &decision {
            Ok(d) => json!(d),
            Err(c) => json!({"error": c.to_string(), "signals": c.signals}),
        },
    }))
}

fn explain(
    name: &str,
    image: &ResolvedImage,
    decision: &Result<dispatch::Decision, Box<dispatch::Conflict>>,
) -> std::io::Result<()> {
    outln!("image:    {name} ({})", image.record.digest());
    outln!("platform: {}", image.config.platform());
    let signals = match decision {
        Ok(d) => {
            outln!("decision: {} ({})", d.kind, d.reason);
            &d.signals
        }
        Err(c) => {
            outln!("decision: none: {c}");
            &c.signals
        }
    };
    outln!("signals:");
    if signals.is_empty() {
        outln!("  (none)");
    }
    for s in signals {
        outln!("  {s}");
    }
    Ok(())
}

/// Which WASI version the image's wasm targets, read from the wasm itself (an image's
/// config may say nothing, or be wrong).
fn explain_wasi(
    store: &wharf::image::Store,
    name: &str,
    platform: Option<&PlatformSpec>,
) -> std::io::Result<()> {
    let options = wharf::run::options::RunOptions::default();
    let found = wharf::run::prepare(store, name, &options, platform)
        .map_err(|e| e.to_string())
        .and_then(|p| p.wasm.ok_or_else(|| "no wasm entrypoint".to_string()))
        .and_then(|m| {
            m.wasm_bytes()
                .map(|b| b.into_owned())
                .map_err(|e| e.to_string())
        });
    match found {
        Ok(bytes) => match wharf::image::package::WasiVersion::of_bytes(&bytes) {
            Some((version, why)) => outln!("wasi:     {version}: {why}"),
            None => outln!("wasi:     unknown (the entrypoint is not WebAssembly)"),
        },
        Err(e) => outln!("wasi:     unknown ({e})"),
    }
    Ok(())
}

/// Published ports as Docker's `PortBindings` and `NetworkSettings.Ports` show them:
/// `{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}` (an unchosen host port is "").
fn port_map(ports: &[wharf::run::options::PortMapping]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for p in ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let binding = json!({
            "HostIp": if p.host_ip.is_unspecified() { String::new() } else { p.host_ip.to_string() },
            "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() },
        });
        match map.get_mut(&key) {
            Some(serde_json::Value::Array(list)) => list.push(binding),
            _ => {
                map.insert(key, json!([binding]));
            }
        }
    }
    serde_json::Value::Object(map)
}

/// Docker's NetworkSettings: per network the address, gateway, MAC and aliases, the
/// published ports and the namespace (while it runs on a bridge network).
fn network_settings(
    containers: &wharf::container::Containers,
    r: &wharf::container::Record,
) -> serde_json::Value {
    let ports = port_map(&super::ps::published(containers, r));
    #[cfg(target_os = "linux")]
    if r.state.is_active()
        && let Some(a) = wharf::network::Attachment::read(&containers.dir_of(&r.id))
    {
        let mut networks = serde_json::Map::new();
        for e in &a.endpoints {
            networks.insert(
                e.network.clone(),
                json!({
                    "NetworkID": e.network_id,
                    "IPAddress": e.ip.to_string(),
                    "IPPrefixLen": e.prefix_len,
                    "Gateway": e.gateway.to_string(),
                    "MacAddress": e.mac,
                    "Aliases": e.aliases,
                    "DNSServers": e.dns,
                    "Interface": e.interface,
                }),
            );
        }
        let first = a.endpoints.first();
        return json!({
            "SandboxKey": a.netns,
            "IPAddress": first.map(|e| e.ip.to_string()).unwrap_or_default(),
            "Gateway": first.map(|e| e.gateway.to_string()).unwrap_or_default(),
            "MacAddress": first.map(|e| e.mac.clone()).unwrap_or_default(),
            "Ports": ports,
            "Networks": networks,
        });
    }
    let mut networks = serde_json::Map::new();
    if let Some(n) = r.options.network.named() {
        networks.insert(n.to_string(), json!({"Aliases": r.options.network_aliases}));
    }
    for c in &r.options.connected {
        networks.insert(c.network.clone(), json!({"Aliases": c.aliases}));
    }
    json!({
        "SandboxKey": "",
        "IPAddress": "",
        "Ports": ports,
        "Networks": networks,
    })
}

/// The environment the container's process gets, as Docker's `Config.Env`: the image's,
/// then `-e`/`--env-file` replacing by name (and native containers' default PATH).
fn effective_env(ctx: &Session, r: &wharf::container::Record) -> Vec<String> {
    let mut env: Vec<String> = r
        .image_digest
        .as_deref()
        .and_then(|digest| {
            let store = ctx.store().ok()?;
            let record = store.resolve(digest).ok()?;
            let platform = r.platform.as_deref().and_then(|p| p.parse().ok());
            let image = ResolvedImage::new(&store, record, platform.as_ref()).ok()?;
            image.config.config.as_ref()?.env.clone()
        })
        .unwrap_or_default();
    for (k, v) in &r.options.env {
        let entry = format!("{k}={v}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |p| p.0) == k)
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }
    if r.kind == dispatch::Kind::Native && !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={}", wharf::run::DEFAULT_PATH));
    }
    env
}

/// A container's record as Docker-shaped JSON.
fn container(
    ctx: &Session,
    containers: &wharf::container::Containers,
    id: &str,
) -> anyhow::Result<serde_json::Value> {
    let l = containers.lock(id)?;
    let r = &l.record;
    let st = &r.state;
    let log = wharf::container::logs::path(l.dir(), id);
    let mounts: Vec<_> = r
        .options
        .volumes
        .iter()
        .map(|v| match &v.named {
            Some(name) => json!({
                "Type": "volume",
                "Name": name,
                "Source": v.host,
                "Destination": v.container,
                "Driver": "local",
                "Mode": if v.read_only { "ro" } else { "" },
                "RW": !v.read_only,
                "Propagation": "",
            }),
            None => json!({
                "Type": "bind",
                "Source": v.host,
                "Destination": v.container,
                "Mode": if v.read_only { "ro" } else { "" },
                "RW": !v.read_only,
                "Propagation": "rprivate",
            }),
        })
        .collect();
    let binds: Vec<String> = r
        .options
        .volumes
        .iter()
        .map(|v| {
            let source = v
                .named
                .clone()
                .unwrap_or_else(|| v.host.display().to_string());
            let ro = if v.read_only { ":ro" } else { "" };
            format!("{source}:{}{ro}", v.container)
        })
        .collect();
    let (restart_name, retries) = match r.restart {
        wharf::container::RestartPolicy::No => ("no", 0),
        wharf::container::RestartPolicy::Always => ("always", 0),
        wharf::container::RestartPolicy::OnFailure { max_retries } => ("on-failure", max_retries),
    };
    let native = &r.options.native;
    let exposed: serde_json::Map<_, _> = r
        .options
        .ports
        .iter()
        .map(|p| (format!("{}/{}", p.container_port, p.protocol), json!({})))
        .collect();
    Ok(json!({
        "Id": r.id,
        "Name": r.name,
        "Created": r.created.to_rfc3339(),
        "Path": r.command.first(),
        "Args": r.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": st.status,
            "Running": matches!(
                st.status,
                wharf::container::Status::Running | wharf::container::Status::Paused
            ),
            "Restarting": st.status == wharf::container::Status::Restarting,
            "Paused": st.status == wharf::container::Status::Paused,
            "OOMKilled": st.oom_killed,
            "Dead": st.status == wharf::container::Status::Dead,
            "Pid": st.pid,
            "ExitCode": st.exit_code.unwrap_or(0),
            "Error": st.error.clone().unwrap_or_default(),
            "StartedAt": st.started_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| ZERO_TIME.into()),
            "FinishedAt": st.finished_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| ZERO_TIME.into()),
            "MonitorPid": st.monitor.map(|p| p.pid),
            "SupervisorPid": st.supervisor.map(|p| p.pid),
            "Health": st.health.as_ref().map(|h| json!({
                "Status": h.status,
                "FailingStreak": h.failing_streak,
                "Log": h.log.iter().map(|p| json!({
                    "Start": p.start,
                    "End": p.end,
                    "ExitCode": p.exit_code,
                    "Output": p.output,
                })).collect::<Vec<_>>(),
            })),
        },
        "Image": r.image_digest.clone().unwrap_or_else(|| r.target.clone()),
        "ImageName": r.image,
        "Platform": r.platform,
        "RestartCount": st.restart_count,
        "LogPath": if r.detached { json!(log) } else { json!(null) },
        "Mounts": mounts,
        "NetworkSettings": network_settings(containers, r),
        "Config": {
            "Hostname": native.hostname.clone().unwrap_or_else(|| r.id[..12.min(r.id.len())].to_string()),
            "User": native.user.clone().unwrap_or_default(),
            "Image": r.image,
            "Cmd": r.command,
            "Entrypoint": r.options.entrypoint,
            "Env": effective_env(ctx, r),
            "WorkingDir": r.options.workdir.clone().unwrap_or_default(),
            "Tty": r.options.tty,
            "OpenStdin": r.options.interactive,
            "ExposedPorts": exposed,
            "StopSignal": r.stop_signal,
            "Labels": r.options.labels,
            "StopTimeout": r.stop_timeout,
            "Healthcheck": r.options.health,
        },
        "HostConfig": {
            "Binds": binds,
            "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": retries},
            "AutoRemove": r.auto_remove,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": r.log.max_size.to_string(), "max-file": r.log.max_files.to_string()}},
            "PortBindings": port_map(&r.options.ports),
            "PublishAllPorts": r.options.publish_all,
            "NetworkMode": r.options.network.to_string(),
            "Memory": r.options.limits.memory.unwrap_or(0),
            "NanoCpus": native.cpus.map_or(0, |c| (c * 1e9) as i64),
            "PidsLimit": native.pids_limit,
            "Privileged": native.privileged,
            "ReadonlyRootfs": native.read_only,
            "CapAdd": native.cap_add,
            "CapDrop": native.cap_drop,
            "Init": native.init,
            "Tmpfs": native.tmpfs,
            "Ulimits": native.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
            "Devices": native.devices.iter().map(|d| json!({"PathOnHost": d.host, "PathInContainer": d.container, "CgroupPermissions": d.permissions})).collect::<Vec<_>>(),
        },
        "Backend": {
            "Kind": r.kind,
            "Reason": r.reason,
            "Signals": r.signals,
            "Limits": {
                "Memory": r.options.limits.memory,
                "TimeoutMs": r.options.limits.timeout.map(|t| t.as_millis() as u64),
                "Fuel": r.options.limits.fuel,
            },
        },
    }))
}

/// Go's zero time, which Docker shows for a time that has not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
