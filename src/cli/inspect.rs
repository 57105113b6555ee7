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
    // Docker's keys, empty where nothing applies.
    let endpoint = |aliases: &[String]| {
        json!({
            "IPAMConfig": null, "Links": null,
            "Aliases": if aliases.is_empty() { json!(null) } else { json!(aliases) },
            "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "",
            "DriverOpts": null,
        })
    };
    let mut settings = json!({
        "Bridge": "", "SandboxID": "", "HairpinMode": false, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "SandboxKey": "", "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "MacAddress": "",
        "Ports": port_map(&super::ps::published(containers, r)),
    });
    let mut networks = serde_json::Map::new();
    #[cfg(target_os = "linux")]
    if r.state.is_active()
        && let Some(a) = wharf::network::Attachment::read(&containers.dir_of(&r.id))
    {
        for e in &a.endpoints {
            let mut n = endpoint(&e.aliases);
            for (k, v) in [
                ("NetworkID", json!(e.network_id)),
                ("IPAddress", json!(e.ip.to_string())),
                ("IPPrefixLen", json!(e.prefix_len)),
                ("Gateway", json!(e.gateway.to_string())),
                ("MacAddress", json!(e.mac)),
                ("DNSServers", json!(e.dns)),
                ("Interface", json!(e.interface)),
            ] {
                n[k] = v;
            }
            networks.insert(e.network.clone(), n);
        }
        if let Some(first) = a.endpoints.first() {
            settings["IPAddress"] = json!(first.ip.to_string());
            settings["IPPrefixLen"] = json!(first.prefix_len);
            settings["Gateway"] = json!(first.gateway.to_string());
            settings["MacAddress"] = json!(first.mac);
        }
        settings["SandboxKey"] = json!(a.netns);
        settings["Networks"] = json!(networks);
        return settings;
    }
    match r.options.network.named() {
        Some(n) => {
            networks.insert(n.to_string(), endpoint(&r.options.network_aliases));
        }
        // `none` and `host` are networks to Docker too.
        None => {
            networks.insert(r.options.network.to_string(), endpoint(&[]));
        }
    }
    for c in &r.options.connected {
        networks.insert(c.network.clone(), endpoint(&c.aliases));
    }
    settings["Networks"] = json!(networks);
    settings
}

/// The environment the container's process gets, in Docker's `Config.Env` order: `-e` and
/// `--env-file` first, then the image's that they do not replace (and native containers'
/// default PATH); with the image's declared volumes (`Config.Volumes`) and the working
/// directory (`-w`, else the image's).
fn effective_env(
    ctx: &Session,
    r: &wharf::container::Record,
) -> (Vec<String>, Option<serde_json::Value>, String) {
    let config = r.image_digest.as_deref().and_then(|digest| {
        let store = ctx.store().ok()?;
        let record = store.resolve(digest).ok()?;
        let platform = r.platform.as_deref().and_then(|p| p.parse().ok());
        let image = ResolvedImage::new(&store, record, platform.as_ref()).ok()?;
        image.config.config.clone()
    });
    let image_env = config
        .as_ref()
        .and_then(|c| c.env.clone())
        .unwrap_or_default();
    let key = |e: &str| e.split_once('=').map_or(e, |p| p.0).to_string();
    let mut env: Vec<String> = r
        .options
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in image_env {
        if !env.iter().any(|u| key(u) == key(&e)) {
            env.push(e);
        }
    }
    if r.kind == dispatch::Kind::Native && !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={}", wharf::run::DEFAULT_PATH));
    }
    let workdir = r
        .options
        .workdir
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.working_dir.clone()))
        .unwrap_or_default();
    let volumes = config
        .and_then(|c| c.volumes)
        .filter(|v| !v.is_empty())
        .map(|v| {
            json!(
                v.keys()
                    .map(|k| (k.clone(), json!({})))
                    .collect::<serde_json::Map<_, _>>()
            )
        });
    (env, volumes, workdir)
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
    // Docker's HostConfig: what wharf sets, and Docker's value for what it never sets
    // (so a script's `{{.HostConfig.CpuShares}}` reads 0, not "<no value>").
    let default_spec = oci_spec::runtime::Spec::default();
    let (env, image_volumes, workdir) = effective_env(ctx, r);
    let driver = if r.kind == dispatch::Kind::Native {
        "overlay"
    } else {
        ""
    };
    let etc_file = |name: &str| {
        let p = l.dir().join(name);
        if r.kind == dispatch::Kind::Native && p.exists() {
            p.display().to_string()
        } else {
            String::new()
        }
    };
    let mut host_config = json!({
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
        "IpcMode": Some(native.namespace_mode("ipc")).filter(|m| !m.is_empty()).unwrap_or_else(|| "private".into()),
        "PidMode": native.namespace_mode("pid"),
        "ShmSize": native.shm_size.unwrap_or(64 << 20),
        "Sysctls": native.sysctls,
        "GroupAdd": native.group_add,
        "CpusetCpus": native.cpuset_cpus.clone().unwrap_or_default(),
        "CpusetMems": native.cpuset_mems.clone().unwrap_or_default(),
        "MemorySwap": native.memory_swap.unwrap_or(0),
        "MemoryReservation": native.memory_reservation.unwrap_or(0),
        "Dns": r.options.names.dns,
        "DnsSearch": r.options.names.dns_search,
        "DnsOptions": r.options.names.dns_options,
        "ExtraHosts": r.options.names.extra_hosts.iter().map(|(n, ip)| format!("{n}:{ip}")).collect::<Vec<_>>(),
    });
    let fixed = json!({
        "CgroupnsMode": "private",
        "Cgroup": "",
        "CgroupParent": "",
        "UTSMode": "",
        "UsernsMode": "",
        "Runtime": "wharf",
        "Isolation": "",
        "ConsoleSize": [0, 0],
        "ContainerIDFile": "",
        "VolumeDriver": "",
        "VolumesFrom": null,
        "Links": null,
        "OomScoreAdj": 0,
        "OomKillDisable": false,
        "SecurityOpt": if native.seccomp_unconfined { json!(["seccomp=unconfined"]) } else { json!(null) },
        "MaskedPaths": if native.privileged { vec![] } else { default_spec.linux().as_ref().and_then(|l| l.masked_paths().clone()).unwrap_or_default() },
        "ReadonlyPaths": if native.privileged { vec![] } else { default_spec.linux().as_ref().and_then(|l| l.readonly_paths().clone()).unwrap_or_default() },
        "CpuShares": 0,
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpuCount": 0,
        "CpuPercent": 0,
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "KernelMemory": 0,
        "KernelMemoryTCP": 0,
        "MemorySwappiness": null,
        "DeviceCgroupRules": null,
        "DeviceRequests": null,
    });
    if let (Some(h), serde_json::Value::Object(f)) = (host_config.as_object_mut(), fixed) {
        h.extend(f);
    }
    let config = json!({
        "Hostname": native.hostname.clone().unwrap_or_else(|| r.short_id().to_string()),
        "User": native.user.clone().unwrap_or_default(),
        "Image": r.image,
        "Cmd": r.command,
        "Entrypoint": r.options.entrypoint,
        "Env": env,
        "Volumes": image_volumes,
        "Domainname": "",
        "AttachStdin": r.options.interactive && !r.detached,
        "AttachStdout": !r.detached,
        "AttachStderr": !r.detached,
        "StdinOnce": r.options.interactive && !r.detached,
        "OnBuild": null,
        "WorkingDir": workdir,
        "Tty": r.options.tty,
        "OpenStdin": r.options.interactive,
        "ExposedPorts": exposed,
        "StopSignal": r.stop_signal,
        "Labels": r.options.labels,
        "StopTimeout": r.stop_timeout,
        "Healthcheck": r.options.health,
    });
    Ok(json!({
        "Id": r.id,
        "Driver": driver,
        "GraphDriver": {"Name": driver, "Data": null},
        "HostnamePath": etc_file("hostname"),
        "HostsPath": etc_file("hosts"),
        "ResolvConfPath": etc_file("resolv.conf"),
        // No LSM profile or label is applied, and exec sessions are not kept.
        "AppArmorProfile": "",
        "MountLabel": "",
        "ProcessLabel": "",
        "ExecIDs": null,
        // Docker's shape: the name with a leading slash (Podman drops it).
        "Name": format!("/{}", r.name),
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
        "Config": config,
        "HostConfig": host_config,
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
