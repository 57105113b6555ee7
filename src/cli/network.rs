//! `wharf network create|ls|inspect|rm|prune|connect|disconnect`.

use std::process::ExitCode;

use serde_json::json;
use wharf::network::{CreateOptions, Network, Networks};
use wharf::run::options::Connection;

use super::{EXIT_WHARF_FAILED, Session};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Create a bridge network.
    Create {
        /// IPv4 subnet in CIDR form (default: a free /24 in 10.90.0.0/16).
        #[arg(long, value_name = "CIDR", value_parser = parse_subnet)]
        subnet: Option<ipnet::Ipv4Net>,
        /// Gateway address (default: the subnet's first).
        #[arg(long, value_name = "IP")]
        gateway: Option<std::net::Ipv4Addr>,
        /// No route out of the network: its containers reach each other only.
        #[arg(long)]
        internal: bool,
        /// No name resolution on the network.
        #[arg(long)]
        disable_dns: bool,
        /// Only bridge networks exist.
        #[arg(short, long, default_value = "bridge", value_parser = ["bridge"])]
        driver: String,
        /// A label KEY=VALUE.
        #[arg(long, value_name = "KEY=VALUE")]
        label: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Names only.
        #[arg(short, long)]
        quiet: bool,
        /// `json`: one JSON array.
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
    /// Show networks (JSON), with their containers.
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks (refused while a container uses them).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove every user network no container uses.
    Prune {
        /// Do not ask (wharf never asks).
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network (a running one at once).
    Connect {
        /// Another name for the container on this network.
        #[arg(long, value_name = "NAME")]
        alias: Vec<String>,
        /// Its IPv4 address on this network.
        #[arg(long, value_name = "IP")]
        ip: Option<std::net::Ipv4Addr>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network it was connected to.
    Disconnect {
        /// Accepted for Docker's sake.
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

fn parse_subnet(s: &str) -> Result<ipnet::Ipv4Net, String> {
    wharf::network::parse_subnet(s).map_err(|e| e.to_string())
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(why) = wharf::network::unsupported() {
        // Listing the (default) networks still works; nothing that makes or joins one.
        if !matches!(args.verb, Verb::Ls { .. } | Verb::Inspect { .. }) {
            eprintln!("wharf: {why}");
            return Ok(ExitCode::from(EXIT_WHARF_FAILED));
        }
    }
    let networks = Networks::new(&ctx.roots);
    let containers = wharf::lifecycle::containers(&ctx.roots);
    match args.verb {
        Verb::Create {
            subnet,
            gateway,
            internal,
            disable_dns,
            driver: _,
            label,
            name,
        } => {
            let labels = super::labels(&label);
            let net = networks.create(
                &name,
                &CreateOptions {
                    subnet,
                    gateway,
                    internal,
                    disable_dns,
                    labels,
                },
            )?;
            outln!("{}", net.id);
        }
        Verb::Ls { quiet, format } => {
            let all = networks.list()?;
            if quiet {
                for n in &all {
                    outln!("{}", n.name);
                }
            } else if format == "json" {
                let v: Vec<_> = all.iter().map(summary).collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|n| {
                        vec![
                            n.id[..12].to_string(),
                            n.name.clone(),
                            n.driver.clone(),
                            n.subnet.to_string(),
                            n.gateway.to_string(),
                            flags(n),
                        ]
                    })
                    .collect();
                super::format::table(
                    &mut std::io::stdout().lock(),
                    &[
                        "NETWORK ID",
                        "NAME",
                        "DRIVER",
                        "SUBNET",
                        "GATEWAY",
                        "OPTIONS",
                    ],
                    &rows,
                )?;
            }
        }
        Verb::Inspect { networks: names } => {
            let mut out = Vec::new();
            let mut failed = false;
            for name in names {
                match networks.get(&name) {
                    Ok(n) => out.push(details(ctx, &networks, &n)),
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
        Verb::Rm { networks: names } => {
            let mut failed = false;
            for name in names {
                match networks.remove(&name, &|n| containers.network_users(n)) {
                    Ok(n) => outln!("{}", n.name),
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
            let removed = networks.prune(&|n| containers.network_users(n))?;
            if !removed.is_empty() {
                outln!("Deleted Networks:");
                for n in removed {
                    outln!("{n}");
                }
            }
        }
        Verb::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            return connect(
                ctx,
                &container,
                Connection {
                    network,
                    aliases: alias,
                    ip,
                },
            );
        }
        Verb::Disconnect {
            force: _,
            network,
            container,
        } => return disconnect(ctx, &container, &network),
    }
    Ok(ExitCode::SUCCESS)
}

fn flags(n: &Network) -> String {
    let mut f = Vec::new();
    if n.internal {
        f.push("internal");
    }
    if n.dns_enabled {
        f.push("dns");
    }
    f.join(",")
}

fn summary(n: &Network) -> serde_json::Value {
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Driver": n.driver,
        "NetworkInterface": n.interface,
        "Subnets": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}],
        "Internal": n.internal,
        "DNSEnabled": n.dns_enabled,
        "Labels": n.labels,
    })
}

/// A network as `inspect` shows it: its definition and the containers on it.
fn details(ctx: &Session, networks: &Networks, n: &Network) -> serde_json::Value {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let mut on = serde_json::Map::new();
    for (ip, lease) in networks.leases(&n.name) {
        #[cfg(target_os = "linux")]
        let mac = wharf::network::Attachment::read(&containers.dir_of(&lease.container))
            .and_then(|a| a.endpoints.into_iter().find(|e| e.network == n.name))
            .map(|e| e.mac)
            .unwrap_or_default();
        #[cfg(not(target_os = "linux"))]
        let mac = {
            let _ = &containers;
            String::new()
        };
        on.insert(
            lease.container.clone(),
            json!({
                "Name": lease.name,
                "IPv4Address": format!("{ip}/{}", n.subnet.prefix_len()),
                "MacAddress": mac,
            }),
        );
    }
    let mut v = summary(n);
    v["Containers"] = serde_json::Value::Object(on);
    v
}

fn connect(ctx: &Session, query: &str, conn: Connection) -> anyhow::Result<ExitCode> {
    wharf::lifecycle::connect::connect(ctx, query, conn)?;
    Ok(ExitCode::SUCCESS)
}

fn disconnect(ctx: &Session, query: &str, network: &str) -> anyhow::Result<ExitCode> {
    wharf::lifecycle::connect::disconnect(ctx, query, network)?;
    Ok(ExitCode::SUCCESS)
}
