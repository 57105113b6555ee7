//! `wharf ps [-a] [-q] [--format json]`: containers, as Docker lists them.

use chrono::{DateTime, Utc};
use wharf::container::{Containers, Record, Status};

use super::Context_;
use super::format::table;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show every container (default: running ones).
    #[arg(short, long)]
    all: bool,
    /// Only ids.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table or json (one object per line).
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// Do not truncate ids and commands.
    #[arg(long)]
    no_trunc: bool,
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
pub fn status(r: &Record) -> String {
    let st = &r.state;
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => format!(
            "Up {}",
            human_duration(Utc::now() - st.started_at.unwrap_or(r.created))
        ),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(Utc::now() - st.started_at.unwrap_or(r.created))
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

/// The PORTS column.
pub fn ports(r: &Record) -> String {
    r.options
        .ports
        .iter()
        .map(|p| format!("{}:{}->{}/tcp", p.host_ip, p.host_port, p.container_port))
        .collect::<Vec<_>>()
        .join(", ")
}

fn command(r: &Record, no_trunc: bool) -> String {
    let c = r.command.join(" ");
    if no_trunc || c.chars().count() <= 20 {
        format!("\"{c}\"")
    } else {
        format!("\"{}…\"", c.chars().take(19).collect::<String>())
    }
}

pub fn run(ctx: &Context_, args: Args) -> anyhow::Result<()> {
    let list: Vec<Record> = Containers::new(&ctx.roots)
        .list()
        .into_iter()
        .filter(|r| args.all || r.state.is_active())
        .collect();
    let id = |r: &Record| {
        if args.no_trunc {
            r.id.clone()
        } else {
            r.short_id().to_string()
        }
    };
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    if args.quiet {
        for r in &list {
            writeln!(out, "{}", id(r))?;
        }
        return Ok(());
    }
    if args.format == "json" {
        for r in &list {
            let v = serde_json::json!({
                "ID": id(r),
                "Image": r.image,
                "Kind": r.kind,
                "Command": command(r, args.no_trunc),
                "CreatedAt": r.created.to_rfc3339(),
                "RunningFor": human_duration(Utc::now() - r.created),
                "State": r.state.status,
                "Status": status(r),
                "ExitCode": r.state.exit_code,
                "Ports": ports(r),
                "Names": r.name,
            });
            writeln!(out, "{v}")?;
        }
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
                ports(r),
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
