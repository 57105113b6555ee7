//! `wharf events [--since T] [--until T] [-f KEY=VALUE]... [--format json|TEMPLATE]`: what
//! happened to containers, images, networks and volumes, from wharf's event log: the past
//! (`--since`), then live as it happens, without a daemon (until `--until`, or Ctrl-C).

use std::time::Duration;

use chrono::{DateTime, Utc};
use wharf::events::{Event, Follower, log_path};

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Events from this time on (RFC 3339, Unix seconds, or a duration ago: 10m).
    #[arg(long)]
    since: Option<String>,
    /// Events until this time (then stop).
    #[arg(long)]
    until: Option<String>,
    /// type=container|image|network|volume, event=ACTION, container=NAME|ID, image=NAME,
    /// network=NAME, volume=NAME, label=KEY[=VALUE] (the same key again: any of them;
    /// different keys: all of them, as Docker).
    #[arg(short, long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// json (one object per line, Docker's fields) or a Go template (`{{.Action}}`).
    #[arg(long)]
    format: Option<String>,
}

const POLL: Duration = Duration::from_millis(100);

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let time = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<DateTime<Utc>>> {
        v.as_deref()
            .map(|s| {
                wharf::container::logs::parse_since(s).ok_or_else(|| {
                    anyhow::anyhow!(
                        "invalid {flag} {s:?}: expected RFC 3339, Unix seconds or a duration (10m)"
                    )
                })
            })
            .transpose()
    };
    let since = time("--since", &args.since)?;
    let until = time("--until", &args.until)?;
    let filters = Filters::parse(&args.filter)?;
    let template = match args.format.as_deref() {
        None | Some("json") => None,
        Some(t) => Some(super::template::Format::parse(t)?),
    };
    if !wharf::events::enabled() {
        eprintln!(
            "wharf: the event log is off ({}=none): nothing new is recorded",
            wharf::events::LOGGER_VAR
        );
    }
    let log = log_path(ctx.roots.data());
    let mut follower = if since.is_some() {
        Follower::from_start(&log)
    } else {
        Follower::new(&log)
    };
    let nanos = |t: DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or(i64::MAX);
    loop {
        let now = Utc::now();
        for e in follower.poll() {
            if since.is_some_and(|s| e.time_nano < nanos(s))
                || until.is_some_and(|u| e.time_nano > nanos(u))
                || !filters.matches(&e)
            {
                continue;
            }
            match (&template, args.format.as_deref()) {
                (Some(t), _) => outln!("{}", t.render(&serde_json::to_value(&e)?)?),
                (None, Some("json")) => outln!("{}", serde_json::to_string(&e)?),
                _ => outln!("{}", line(&e)),
            }
        }
        if until.is_some_and(|u| now >= u) {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

/// Docker's default line: `TIME TYPE ACTION ID (k=v, ...)`.
fn line(e: &Event) -> String {
    let t = DateTime::from_timestamp_nanos(e.time_nano);
    let attrs: Vec<String> = e
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{} {} {} {} ({})",
        t.format("%Y-%m-%dT%H:%M:%S%.9fZ"),
        e.kind,
        e.action,
        e.actor.id,
        attrs.join(", ")
    )
}

/// `--filter`s by key.
struct Filters(std::collections::BTreeMap<String, Vec<String>>);

impl Filters {
    fn parse(flags: &[String]) -> anyhow::Result<Filters> {
        let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for f in flags {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("invalid filter {f:?}: expected KEY=VALUE"))?;
            if !matches!(
                k,
                "type" | "event" | "container" | "image" | "network" | "volume" | "label"
            ) {
                anyhow::bail!(
                    "invalid filter key {k:?}: expected type, event, container, image, network, volume or label"
                );
            }
            map.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(Filters(map))
    }

    fn matches(&self, e: &Event) -> bool {
        self.0.iter().all(|(k, values)| {
            values.iter().any(|v| {
                let v = v.as_str();
                match k.as_str() {
                    "type" => e.kind == v,
                    // `health_status: healthy` matches `health_status` too.
                    "event" => e.action == v || e.action.split(':').next() == Some(v),
                    "container" => {
                        e.kind == "container"
                            && (e.actor.id.starts_with(v) || e.attribute("name") == Some(v))
                    }
                    "image" => {
                        e.attribute("image") == Some(v)
                            || (e.kind == "image"
                                && (e.actor.id == v || e.attribute("name") == Some(v)))
                    }
                    "network" => {
                        e.kind == "network"
                            && (e.actor.id.starts_with(v) || e.attribute("name") == Some(v))
                    }
                    "volume" => e.kind == "volume" && e.actor.id == v,
                    "label" => match v.split_once('=') {
                        Some((lk, lv)) => e.attribute(lk) == Some(lv),
                        None => e.attribute(v).is_some(),
                    },
                    _ => false,
                }
            })
        })
    }
}
