//! `wharf volume create|ls|inspect|rm|prune`: named volumes.

use std::process::ExitCode;

use wharf::volume::{Volume, Volumes};

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Create a volume (an existing one is left as it is).
    Create {
        /// A label KEY=VALUE.
        #[arg(long, value_name = "KEY=VALUE")]
        label: Vec<String>,
        name: String,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Names only.
        #[arg(short, long)]
        quiet: bool,
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
    /// Show volumes (JSON).
    Inspect {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes and their files (refused while a container uses them).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove every volume no container uses.
    Prune {
        /// Do not ask (wharf never asks).
        #[arg(short, long)]
        force: bool,
    },
}

fn shown(v: &Volume) -> serde_json::Value {
    serde_json::json!({
        "Name": v.name,
        "Driver": v.driver,
        "Mountpoint": v.mountpoint,
        "CreatedAt": v.created,
        "Labels": v.labels,
        "Scope": "local",
    })
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    let volumes = Volumes::new(&ctx.roots);
    let containers = wharf::lifecycle::containers(&ctx.roots);
    match args.verb {
        Verb::Create { label, name } => {
            let labels = super::labels(&label);
            outln!("{}", volumes.create(&name, &labels)?.name);
        }
        Verb::Ls { quiet, format } => {
            let all = volumes.list();
            if quiet {
                for v in &all {
                    outln!("{}", v.name);
                }
            } else if format == "json" {
                let v: Vec<_> = all.iter().map(shown).collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|v| vec![v.driver.clone(), v.name.clone()])
                    .collect();
                super::format::table(
                    &mut std::io::stdout().lock(),
                    &["DRIVER", "VOLUME NAME"],
                    &rows,
                )?;
            }
        }
        Verb::Inspect { volumes: names } => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in names {
                match volumes.get(&n) {
                    Ok(v) => out.push(shown(&v)),
                    Err(e) => {
                        eprintln!("wharf: {e}");
                        failed = true;
                    }
                }
            }
            outln!("{}", serde_json::to_string_pretty(&out)?);
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Verb::Rm { volumes: names } => {
            let mut failed = false;
            for n in names {
                match volumes.remove(&n, &|v| containers.volume_users(v)) {
                    Ok(()) => outln!("{n}"),
                    Err(e) => {
                        eprintln!("wharf: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Verb::Prune { force: _ } => {
            let removed = volumes.prune(&|v| containers.volume_users(v))?;
            if !removed.is_empty() {
                outln!("Deleted Volumes:");
                for n in removed {
                    outln!("{n}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
