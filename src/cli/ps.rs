//! `wharf ps [-a] [-q] [--format table|json|TEMPLATE]`: containers, as Docker lists them.

use chrono::{DateTime, Utc};
use std::process::ExitCode;

use wharf::compose::Project;
use wharf::compose::converge::{of_services, service_of};
use wharf::container::{Containers, Record, Status, Summary};

use super::Session;
use super::format::table;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show every container (default: running ones).
    #[arg(short, long)]
    all: bool,
    /// Only ids.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table, json (one object per line) or a Go template over the json's
    /// fields (`{{.Names}} {{.Status}}`), as Docker's.
    #[arg(long, default_value = "table")]
    format: String,
    /// Do not truncate ids and commands.
    #[arg(long)]
    no_trunc: bool,
    /// Filter: status=S, name=N, id=PREFIX, ancestor=IMAGE, kind=native|wasm, exited=CODE
    /// (as Docker: the same key repeated means any of them, different keys all of them).
    #[arg(short, long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
}

/// `--filter`s, grouped by key.
#[derive(Debug, Default)]
struct Filters(std::collections::BTreeMap<String, Vec<String>>);

impl Filters {
    fn parse(specs: &[String]) -> anyhow::Result<Filters> {
        let mut f = Filters::default();
        for s in specs {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("invalid --filter {s:?}: expected KEY=VALUE"))?;
            if ![
                "status", "name", "id", "ancestor", "kind", "exited", "label",
            ]
            .contains(&k)
            {
                anyhow::bail!(
                    "invalid --filter {s:?}: the keys are status, name, id, ancestor, kind, exited and label"
                );
            }
            f.0.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(f)
    }

    /// Whether the filters name any status (then `-a` is implied, as Docker).
    fn has_status(&self) -> bool {
        self.0.contains_key("status") || self.0.contains_key("exited")
    }

    fn matches(&self, r: &Summary) -> bool {
        self.0.iter().all(|(k, values)| {
            values.iter().any(|v| match k.as_str() {
                "status" => r.status.to_string() == *v,
                // Docker matches names as a pattern; a substring covers the common use.
                "name" => r.name.contains(v.as_str()),
                "id" => r.id.starts_with(v.as_str()),
                "ancestor" => {
                    r.image == *v
                        || r.image_digest.as_deref() == Some(v.as_str())
                        || r.image.strip_suffix(":latest") == Some(v.as_str())
                }
                "kind" => r.kind.to_string() == *v,
                // label=KEY or label=KEY=VALUE.
                "label" => match v.split_once('=') {
                    Some((k, want)) => r.labels.get(k).is_some_and(|have| have == want),
                    None => r.labels.contains_key(v.as_str()),
                },
                "exited" => {
                    r.status == Status::Exited
                        && r.exit_code.map(|c| c.to_string()).as_deref() == Some(v.as_str())
                }
                _ => false,
            })
        })
    }
}

/// A duration as Docker says it ("Less than a second", "3 seconds", "About a minute", …).
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs < 1 {
        "Less than a second".into()
    } else if secs < 60 {
        plural(secs, "second")
    } else if secs < 120 {
        "About a minute".into()
    } else if secs < 3600 {
        plural(secs / 60, "minute")
    } else if secs < 2 * 3600 {
        "About an hour".into()
    } else if secs < 48 * 3600 {
        plural(secs / 3600, "hour")
    } else if secs < 14 * 86400 {
        plural(secs / 86400, "day")
    } else if secs < 90 * 86400 {
        plural(secs / (7 * 86400), "week")
    } else if secs < 730 * 86400 {
        plural(secs / (30 * 86400), "month")
    } else {
        plural(secs / (365 * 86400), "year")
    }
}

fn ago(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| format!("{} ago", human_duration(Utc::now() - t)))
        .unwrap_or_default()
}

/// The STATUS column.
pub fn status(st: &Summary) -> String {
    match st.status {
        Status::Creating => "Creating".into(),
        Status::Created => "Created".into(),
        Status::Running => format!(
            "Up {}{}",
            human_duration(Utc::now() - st.started_at.unwrap_or(st.created)),
            match st.health {
                Some(wharf::container::health::HealthStatus::Starting) => " (health: starting)",
                Some(wharf::container::health::HealthStatus::Healthy) => " (healthy)",
                Some(wharf::container::health::HealthStatus::Unhealthy) => " (unhealthy)",
                None => "",
            }
        ),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(Utc::now() - st.started_at.unwrap_or(st.created))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {}",
            st.exit_code.unwrap_or(0),
            ago(st.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {}",
            st.exit_code.unwrap_or(0),
            ago(st.finished_at)
        ),
        Status::Dead => "Dead".into(),
    }
}

/// The ports a container publishes: as published (host ports chosen) while it runs on a
/// network, else as asked.
pub fn published(containers: &Containers, r: &Record) -> Vec<wharf::run::options::PortMapping> {
    published_ports(containers, &r.id, r.state.is_active(), &r.options.ports)
}

fn published_ports(
    containers: &Containers,
    id: &str,
    active: bool,
    asked: &[wharf::run::options::PortMapping],
) -> Vec<wharf::run::options::PortMapping> {
    #[cfg(target_os = "linux")]
    if active && let Some(a) = wharf::network::Attachment::read(&containers.dir_of(id)) {
        return a.ports;
    }
    let _ = (containers, id, active);
    asked.to_vec()
}

/// The PORTS column.
pub fn ports(containers: &Containers, r: &Summary) -> String {
    published_ports(containers, &r.id, r.status.is_active(), &r.ports)
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn command(r: &Summary, no_trunc: bool) -> String {
    // As Docker's: an argument with a space in single quotes.
    let c = r
        .command
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if i > 0 && a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    if no_trunc || c.chars().count() <= 20 {
        format!("\"{c}\"")
    } else {
        format!("\"{}…\"", c.chars().take(19).collect::<String>())
    }
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let filters = Filters::parse(&args.filter)?;
    let all = args.all || filters.has_status();
    let containers = wharf::lifecycle::containers(&ctx.roots);
    // Without -a only the active index is read: stopped containers kept cost nothing; with
    // it, the summary journal (one file).
    let list: Vec<Summary> = if all {
        containers.summaries()
    } else {
        containers.list_active().iter().map(Summary::of).collect()
    }
    .into_iter()
    .filter(|r| all || r.status.is_active())
    .filter(|r| filters.matches(r))
    .collect();
    let id = |r: &Summary| {
        if args.no_trunc {
            r.id.clone()
        } else {
            r.short_id().to_string()
        }
    };
    // One write for the whole list, not one a line.
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    use std::io::Write;
    if args.quiet {
        for r in &list {
            writeln!(out, "{}", id(r))?;
        }
        out.flush()?;
        return Ok(());
    }
    if args.format != "table" {
        let template = match args.format.as_str() {
            "json" => None,
            t => Some(super::template::Format::parse(t)?),
        };
        let mut rows = Vec::new();
        for r in &list {
            let v = serde_json::json!({
                "ID": id(r),
                "Image": r.image,
                "Kind": r.kind,
                "Command": command(r, args.no_trunc),
                // Docker's fields, as its `ps --format '{{json .}}'` spells them.
                "CreatedAt": r.created.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
                "RunningFor": ago(Some(r.created)),
                "State": r.status,
                "Status": status(r),
                "ExitCode": r.exit_code,
                "Ports": ports(&containers, r),
                "Names": r.name,
                "Labels": r
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                "LocalVolumes": r.local_volumes.to_string(),
                "Mounts": r.mounts.join(","),
                "Networks": r.networks.join(","),
                "Platform": r.platform,
            });
            match &template {
                Some(_) => rows.push(v),
                None => writeln!(out, "{v}")?,
            }
        }
        if let Some(t) = template {
            t.write_rows(&mut out, PS_HEADERS, &rows)?;
        }
        out.flush()?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                id(r),
                r.image.clone(),
                r.kind.to_string(),
                command(r, args.no_trunc),
                ago(Some(r.created)),
                status(r),
                ports(&containers, r),
                r.name.clone(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "CONTAINER ID",
            "IMAGE",
            "KIND",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &rows,
    )?;
    out.flush()?;
    Ok(())
}

/// Docker's column headers for `ps --format 'table ...'`.
const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Kind", "KIND"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("ExitCode", "EXIT CODE"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("Platform", "PLATFORM"),
];

/// `compose ps`: the project's containers (of `services`, all when empty), with their
/// service.
pub fn compose(
    project: &Project,
    containers: &Containers,
    all: bool,
    quiet: bool,
    format: &str,
    services: &[String],
) -> anyhow::Result<ExitCode> {
    let list: Vec<(Record, Summary)> = of_services(project, containers, services, true)
        .into_iter()
        .filter(|r| all || r.state.is_active())
        .map(|r| {
            let s = Summary::of(&r);
            (r, s)
        })
        .collect();
    if quiet {
        for (r, _) in &list {
            outln!("{}", r.id);
        }
    } else if format == "json" {
        let v: Vec<_> = list
            .iter()
            .map(|(r, s)| {
                serde_json::json!({
                    "ID": r.id,
                    "Name": r.name,
                    "Service": service_of(r),
                    "Project": project.name,
                    "Image": r.image,
                    "Kind": r.kind.to_string(),
                    "State": r.state.status.to_string(),
                    "Health": r.state.health.as_ref().map(|h| h.status.to_string()).unwrap_or_default(),
                    "Status": status(s),
                    "ExitCode": r.state.exit_code.unwrap_or(0),
                    "Publishers": ports(containers, s),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|(r, s)| {
                vec![
                    r.name.clone(),
                    r.image.clone(),
                    r.kind.to_string(),
                    service_of(r).to_string(),
                    status(s),
                    ports(containers, s),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_combine_like_dockers() {
        let record = |name: &str, status: Status, code: Option<i32>| -> Record {
            serde_json::from_value(serde_json::json!({
                "id": format!("{name}{}", "0".repeat(60)), "name": name,
                "created": "2026-11-29T00:00:00Z", "image": "busybox", "target": "sha256:00",
                "image_digest": "sha256:00", "platform": null, "kind": "native",
                "reason": "", "signals": [], "command": ["true"], "options": {
                    "entrypoint": null, "args": [], "env": [], "workdir": null,
                    "volumes": [], "ports": [], "network": "none",
                    "limits": {"memory": null, "timeout": null, "fuel": null},
                    "interactive": false, "tty": false, "native": {
                        "user": null, "hostname": null, "read_only": false, "cap_add": [],
                        "cap_drop": [], "privileged": false, "seccomp_unconfined": false,
                        "pids_limit": null, "cpus": null, "tmpfs": [], "init": false,
                        "ulimits": []}},
                "restart": {"name": "no"}, "auto_remove": false, "detached": true,
                "log": {"max_size": 1, "max_files": 1}, "compile_timeout_ms": null,
                "state": {"status": status, "pid": 0, "supervisor": null, "monitor": null,
                    "started_at": null, "finished_at": null, "exit_code": code,
                    "oom_killed": false, "error": null, "restart_count": 0,
                    "stop_requested": false}
            }))
            .unwrap()
        };
        let web = Summary::of(&record("web1", Status::Running, None));
        let job = Summary::of(&record("job1", Status::Exited, Some(3)));
        let f = |specs: &[&str]| {
            Filters::parse(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        assert!(f(&["status=running"]).matches(&web) && !f(&["status=running"]).matches(&job));
        assert!(
            f(&["status=running", "status=exited"]).matches(&job),
            "same key: any"
        );
        assert!(
            !f(&["status=exited", "name=web"]).matches(&web),
            "different keys: all"
        );
        assert!(f(&["exited=3"]).matches(&job) && !f(&["exited=0"]).matches(&job));
        assert!(f(&["ancestor=busybox", "kind=native", "id=job1"]).matches(&job));
        assert!(f(&["status=exited"]).has_status());
        assert!(Filters::parse(&["colour=red".to_string()]).is_err());
        assert!(Filters::parse(&["status".to_string()]).is_err());
    }

    #[test]
    fn durations_read_like_dockers() {
        let s = chrono::Duration::seconds;
        assert_eq!(human_duration(s(0)), "Less than a second");
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(3)), "3 seconds");
        assert_eq!(human_duration(s(90)), "About a minute");
        assert_eq!(human_duration(s(300)), "5 minutes");
        assert_eq!(human_duration(s(3700)), "About an hour");
        assert_eq!(human_duration(s(5 * 3600)), "5 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
    }
}
