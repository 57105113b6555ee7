//! `wharf update [OPTIONS] CONTAINER...`: change limits and the restart policy. A running
//! native container's cgroup takes them at once; a wasm guest's engine limits from its next
//! start (said on stderr).

use std::time::Duration;

use wharf::container::RestartPolicy;
use wharf::lifecycle::update::{Applied, Update, update};
use wharf::run::options::{parse_cpus, parse_duration, parse_size, parse_swap};

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Memory limit (native: the cgroup's; wasm: linear memories and tables).
    #[arg(short = 'm', long, value_parser = parse_size, value_name = "BYTES")]
    memory: Option<u64>,
    /// Memory plus swap; -1: unlimited swap (native).
    #[arg(long, value_parser = parse_swap, value_name = "BYTES", allow_hyphen_values = true)]
    memory_swap: Option<i64>,
    /// Memory soft limit (native).
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    memory_reservation: Option<u64>,
    /// CPU limit in cores (native).
    #[arg(long, value_parser = parse_cpus, value_name = "CORES")]
    cpus: Option<f64>,
    /// CPUs it may run on (native).
    #[arg(long, value_name = "CPUS")]
    cpuset_cpus: Option<String>,
    /// Memory nodes it may use (native).
    #[arg(long, value_name = "NODES")]
    cpuset_mems: Option<String>,
    /// Most processes (native).
    #[arg(long, value_name = "N")]
    pids_limit: Option<i64>,
    /// Restart policy: no, on-failure[:N], always, unless-stopped.
    #[arg(long, value_name = "POLICY")]
    restart: Option<RestartPolicy>,
    /// Wall-clock limit of a wasm guest (from its next start).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    timeout: Option<Duration>,
    /// Fuel of a wasm guest (from its next start).
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let u = Update {
        memory: args.memory,
        memory_swap: args.memory_swap,
        memory_reservation: args.memory_reservation,
        cpus: args.cpus,
        cpuset_cpus: args.cpuset_cpus,
        cpuset_mems: args.cpuset_mems,
        pids_limit: args.pids_limit,
        restart: args.restart,
        timeout: args.timeout,
        fuel: args.fuel,
    };
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let mut failed = 0;
    for c in &args.containers {
        let done = containers
            .find(c)
            .map_err(Into::into)
            .and_then(|id| update(&containers, &id, &u));
        match done {
            Ok(applied) => {
                outln!("{c}");
                let engine = u.memory.is_some() || u.timeout.is_some() || u.fuel.is_some();
                if applied == Applied::NextStart && engine {
                    eprintln!("wharf: {c}: the new limits apply from its next start");
                }
            }
            Err(e) => {
                eprintln!("wharf: {c}: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} containers were not updated",
            args.containers.len()
        );
    }
    Ok(())
}
