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
    /// The container (name or id) or image (name, name:tag, id or digest).
    image: String,
    /// Platform of a multi-platform image (os/arch[/variant]).
    #[arg(long)]
    platform: Option<PlatformSpec>,
    /// Print how wharf would run the image, and why.
    #[arg(long)]
    explain: bool,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    if !args.explain
        && let Ok(id) = containers.find(&args.image)
    {
        return container(&containers, &id);
    }
    let store = ctx.store()?;
    let record = store.resolve(&args.image)?;
    let index = match read_manifest(&store, &record.descriptor)? {
        Manifest::Index(i) => Some(i),
        Manifest::Image(_) => None,
    };
    let image = ResolvedImage::new(&store, record, args.platform.as_ref())?;
    let decision = dispatch::decide(&dispatch::Facts::of_image(&image));
    if args.explain {
        explain(&args.image, &image, &decision)?;
        if matches!(&decision, Ok(d) if d.kind == dispatch::Kind::Wasm) {
            explain_wasi(&store, &args.image, args.platform.as_ref())?;
        }
        return decision.map(drop).map_err(Into::into);
    }
    let raw_config: serde_json::Value = serde_json::from_slice(&store.read_blob_capped(
        image.manifest.config(),
        "config",
        media::MAX_CONFIG_BYTES,
    )?)?;
    let out = json!({
        "Id": image.record.digest().to_string(),
        "RepoTags": image.record.name.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "MediaType": image.record.descriptor.media_type().to_string(),
        "Platforms": image.platforms,
        "Size": image.content_size(&store),
        "Index": index,
        "ManifestDigest": image.manifest_desc.digest().to_string(),
        "Manifest": image.manifest,
        "Config": raw_config,
        "Kind": decision.as_ref().map(|d| d.kind.to_string()).unwrap_or_else(|_| "conflict".into()),
        "Dispatch": match &decision {
            Ok(d) => json!(d),
            Err(c) => json!({"error": c.to_string(), "signals": c.signals}),
        },
    });
    outln!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
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

/// A container's record as Docker-shaped JSON.
/// Docker's NetworkSettings: per network the address, gateway, MAC and aliases, the
/// published ports and the namespace (while it runs on a bridge network).
fn network_settings(
    containers: &wharf::container::Containers,
    r: &wharf::container::Record,
) -> serde_json::Value {
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
            "Ports": a.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "Networks": networks,
        });
    }
    let _ = containers;
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
        "Ports": [],
        "Networks": networks,
    })
}

fn container(containers: &wharf::container::Containers, id: &str) -> anyhow::Result<()> {
    let l = containers.lock(id)?;
    let r = &l.record;
    let st = &r.state;
    let log = wharf::container::logs::path(l.dir(), id);
    let mounts: Vec<_> = r
        .options
        .volumes
        .iter()
        .map(|v| {
            json!({
                "Type": "bind",
                "Source": v.host,
                "Destination": v.container,
                "RW": !v.read_only,
            })
        })
        .collect();
    let out = json!({
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
            "StartedAt": st.started_at.map(|t| t.to_rfc3339()),
            "FinishedAt": st.finished_at.map(|t| t.to_rfc3339()),
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
        "RestartCount": st.restart_count,
        "LogPath": if r.detached { json!(log) } else { json!(null) },
        "Mounts": mounts,
        "NetworkSettings": network_settings(containers, r),
        "Config": {
            "Cmd": r.command,
            "Env": r.options.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "WorkingDir": r.options.workdir,
            "User": r.options.native.user,
            "Tty": r.options.tty,
            "OpenStdin": r.options.interactive,
            "StopSignal": r.stop_signal,
            "Labels": r.options.labels,
            "StopTimeout": r.stop_timeout,
        },
        "HostConfig": {
            "RestartPolicy": r.restart,
            "AutoRemove": r.auto_remove,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": r.log.max_size.to_string(), "max-file": r.log.max_files.to_string()}},
            "PortBindings": r.options.ports,
            "Memory": r.options.limits.memory,
            "NetworkMode": r.options.network,
            "Healthcheck": r.options.health,
        },
        "Backend": {
            "Kind": r.kind,
            "Reason": r.reason,
            "Signals": r.signals,
        },
    });
    outln!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
