//! `wharf port CONTAINER [PRIVATE_PORT[/PROTO]]`: the host addresses a container's ports are
//! published on, as Docker prints them (`80/tcp -> 127.0.0.1:8080`).

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container (name or id).
    container: String,
    /// Only this container port (`80`, `80/tcp`, `53/udp`).
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    port: Option<String>,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let id = containers.find(&args.container)?;
    let record = containers.lock(&id)?.record;
    let published = super::ps::published(&containers, &record);
    let wanted = match &args.port {
        None => None,
        Some(p) => {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let port: u16 = port
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid port {p:?}: expected PORT[/tcp|udp]"))?;
            if !matches!(proto, "tcp" | "udp") {
                anyhow::bail!("invalid protocol {proto:?} in {p:?}: expected tcp or udp");
            }
            Some((port, proto.to_string()))
        }
    };
    let host = |p: &wharf::run::options::PortMapping| match p.host_ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", p.host_port),
        v4 => format!("{v4}:{}", p.host_port),
    };
    let mut found = false;
    for p in &published {
        let proto = p.protocol.to_string();
        match &wanted {
            Some((port, want)) if (*port, want) != (p.container_port, &proto) => {}
            Some(_) => {
                found = true;
                outln!("{}", host(p));
            }
            None => {
                found = true;
                outln!("{}/{proto} -> {}", p.container_port, host(p));
            }
        }
    }
    match (&args.port, found) {
        (Some(p), false) => {
            anyhow::bail!("no public port {p:?} published for {}", record.shown_name())
        }
        _ => Ok(()),
    }
}
