//! `wharf stats [-a] [--no-stream] [--format table|json|TEMPLATE] [CONTAINER...]`: what
//! containers use, as Docker shows it: CPU %, memory usage / limit, network and block I/O,
//! PIDs. Native containers are read from their cgroup and network namespace; wasm
//! containers from their guest (its linear memory against `--memory`) and the process
//! running it (CPU time, storage I/O).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::json;
use wharf::container::Record;
use wharf::lifecycle::stats::{Usage, host_memory, usage};

use super::Session;
use super::format::{human_size, table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Containers (name or id); default: the running ones.
    containers: Vec<String>,
    /// Every container, stopped ones too (shown with no figures).
    #[arg(short, long)]
    all: bool,
    /// Print one reading and stop (CPU % then on average since each container started, as
    /// Podman's first reading; a stream's later readings are over the last second).
    #[arg(long)]
    no_stream: bool,
    /// table, json (one object per line and reading, Docker's fields) or a Go template.
    #[arg(long, default_value = "table")]
    format: String,
    /// Full container ids.
    #[arg(long)]
    no_trunc: bool,
}

/// Docker's column headers for `stats --format 'table ...'`.
const STATS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
    ("Requests", "REQUESTS"),
    ("FuelUsed", "FUEL USED"),
    ("Kind", "KIND"),
    ("CPUTimeNs", "CPU TIME (NS)"),
    ("MemoryBytes", "MEMORY (BYTES)"),
    ("MemoryLimitBytes", "MEMORY LIMIT (BYTES)"),
];

const INTERVAL: Duration = Duration::from_secs(1);

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let template = match args.format.as_str() {
        "table" | "json" => None,
        t => Some(super::template::Format::parse(t)?),
    };
    let ids: Vec<String> = args
        .containers
        .iter()
        .map(|c| containers.find(c))
        .collect::<Result<_, _>>()?;
    let pick = || -> Vec<Record> {
        if ids.is_empty() {
            if args.all {
                containers.list()
            } else {
                containers.list_active()
            }
        } else {
            ids.iter()
                .filter_map(|id| containers.lock(id).ok().map(|l| l.record))
                .collect()
        }
    };
    let live =
        !args.no_stream && std::io::stdout().is_terminal() && args.format.starts_with("table");
    let mut last: HashMap<String, (Instant, u64)> = HashMap::new();
    let host_mem = host_memory();
    for frame in 0.. {
        if frame > 0 {
            std::thread::sleep(INTERVAL);
        }
        let now = Instant::now();
        let mut rows = Vec::new();
        for r in pick() {
            let reading = usage(&ctx.roots, &r).ok();
            // CPU % over the last interval; the first time, on average since the container
            // started (as Podman's first reading), so one reading is all `--no-stream`
            // needs: no second sample a second later.
            let cpu = reading.as_ref().and_then(|u| match last.get(&r.id) {
                Some((then, cpu)) => {
                    let wall = now.duration_since(*then).as_nanos() as f64;
                    Some(u.cpu_ns.saturating_sub(*cpu) as f64 / wall * 100.0)
                }
                None => {
                    let wall = (chrono::Utc::now() - r.state.started_at?).num_nanoseconds()?;
                    (wall > 0).then(|| u.cpu_ns as f64 / wall as f64 * 100.0)
                }
            });
            if let Some(u) = &reading {
                last.insert(r.id.clone(), (now, u.cpu_ns));
            }
            rows.push(Row::new(&r, reading, cpu, host_mem, args.no_trunc));
        }
        let mut out = std::io::stdout().lock();
        if live {
            // Clear the screen and go home, as `docker stats` refreshes.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        match (&template, args.format.as_str()) {
            (Some(t), _) => {
                let rows: Vec<_> = rows.iter().map(Row::json).collect();
                t.write_rows(&mut out, STATS_HEADERS, &rows)?;
            }
            (None, "json") => {
                for row in &rows {
                    writeln!(out, "{}", row.json())?;
                }
            }
            _ => table(
                &mut out,
                &[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "NET I/O",
                    "BLOCK I/O",
                    "PIDS",
                ],
                &rows.iter().map(Row::cells).collect::<Vec<_>>(),
            )?,
        }
        out.flush()?;
        if args.no_stream {
            break;
        }
    }
    Ok(())
}

/// One container's line.
struct Row {
    id: String,
    name: String,
    kind: String,
    usage: Option<Usage>,
    cpu: Option<f64>,
    limit: Option<u64>,
}

impl Row {
    fn new(
        r: &Record,
        usage: Option<Usage>,
        cpu: Option<f64>,
        host_mem: Option<u64>,
        no_trunc: bool,
    ) -> Row {
        let limit = usage.as_ref().and_then(|u| u.memory_limit).or(host_mem);
        Row {
            id: if no_trunc {
                r.id.clone()
            } else {
                r.short_id().to_string()
            },
            name: r.name.clone(),
            kind: r.kind.to_string(),
            cpu: usage.as_ref().map(|_| cpu.unwrap_or(0.0)),
            usage,
            limit,
        }
    }

    fn cpu(&self) -> String {
        self.cpu.map_or("--".into(), |c| format!("{c:.2}%"))
    }

    fn mem(&self) -> String {
        match &self.usage {
            Some(u) => format!(
                "{} / {}",
                binary_size(u.memory),
                self.limit.map_or("--".into(), binary_size)
            ),
            None => "-- / --".into(),
        }
    }

    fn mem_perc(&self) -> String {
        match (&self.usage, self.limit) {
            (Some(u), Some(l)) if l > 0 => format!("{:.2}%", u.memory as f64 / l as f64 * 100.0),
            _ => "--".into(),
        }
    }

    fn io(&self, f: impl Fn(&Usage) -> (u64, u64)) -> String {
        self.usage.as_ref().map_or("-- / --".into(), |u| {
            let (a, b) = f(u);
            format!("{} / {}", human_size(a), human_size(b))
        })
    }

    fn pids(&self) -> String {
        self.usage
            .as_ref()
            .map_or("--".into(), |u| u.pids.to_string())
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.cpu(),
            self.mem(),
            self.mem_perc(),
            self.io(|u| (u.net_rx, u.net_tx)),
            self.io(|u| (u.block_read, u.block_write)),
            self.pids(),
        ]
    }

    /// Docker's `{{json .}}` fields, plus the raw figures (bytes, nanoseconds).
    fn json(&self) -> serde_json::Value {
        json!({
            "ID": self.id,
            "Container": self.id,
            "Name": self.name,
            "Kind": self.kind,
            "CPUPerc": self.cpu(),
            "MemUsage": self.mem(),
            "MemPerc": self.mem_perc(),
            "NetIO": self.io(|u| (u.net_rx, u.net_tx)),
            "BlockIO": self.io(|u| (u.block_read, u.block_write)),
            "PIDs": self.pids(),
            "CPUTimeNs": self.usage.as_ref().map(|u| u.cpu_ns),
            "MemoryBytes": self.usage.as_ref().map(|u| u.memory),
            "MemoryLimitBytes": self.limit,
            "Requests": self.usage.as_ref().and_then(|u| u.requests),
            "FuelUsed": self.usage.as_ref().and_then(|u| u.fuel),
        })
    }
}

/// A size in binary units with four significant digits, as Docker's memory column
/// (`1.5MiB`, `7.645GiB`).
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    let digits = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_as_docker_prints_memory() {
        assert_eq!(super::binary_size(0), "0B");
        assert_eq!(super::binary_size(1536 * 1024), "1.5MiB");
        assert_eq!(super::binary_size(64 << 20), "64MiB");
        assert_eq!(super::binary_size(8_208_760_832), "7.645GiB");
    }
}
