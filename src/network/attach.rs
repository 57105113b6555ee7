//! Attaching a container to its networks and detaching it, whatever way it ended.
//!
//! What was set up is written to `CONTAINER_DIR/network.json` as it happens, so a supervisor
//! killed half-way, or a reboot, leaves enough for the next verb to take it all down.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::netavark::{self, Netavark};
use super::{NetworkError, Networks, netns};
use crate::paths::Roots;
use crate::run::options::{Connection, PortMapping, Protocol};

const FILE: &str = "network.json";

/// A container's place on one network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub network_id: String,
    /// The interface inside the container (`eth0`, `eth1`, ...).
    pub interface: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub aliases: Vec<String>,
    /// Name servers netavark reported (aardvark-dns on the gateway), if DNS is on.
    pub dns: Vec<Ipv4Addr>,
    pub search: Vec<String>,
    /// What netavark was given (teardown takes the same).
    options: Value,
}

/// A published port, its host port chosen.
pub type Published = PortMapping;

/// Everything set up for one run of a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    /// The persistent network namespace.
    pub netns: PathBuf,
    pub hostname: String,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<Published>,
    /// `--add-host`, `--dns*`: kept so that every rewrite of the /etc files has them.
    #[serde(default)]
    pub names: crate::run::options::NameOptions,
}

impl Attachment {
    /// The attachment recorded in container directory `dir`, if any.
    pub fn read(dir: &Path) -> Option<Attachment> {
        serde_json::from_slice(&fs::read(dir.join(FILE)).ok()?).ok()
    }

    fn save(&self, dir: &Path) -> Result<(), NetworkError> {
        super::store::write_atomic(
            &dir.join(FILE),
            &serde_json::to_vec_pretty(self).expect("serialises"),
        )
    }
}

/// Host ports held open (bound, not listening) while the container runs: no other process
/// (or container) can take them, and a port in use is found before anything is made.
pub struct HeldPorts(#[allow(dead_code)] Vec<OwnedFd>);

/// What a container asks for.
pub struct Request<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub hostname: &'a str,
    /// `--network`, `--network-alias`, `--ip`.
    pub network: &'a str,
    pub aliases: &'a [String],
    pub ip: Option<Ipv4Addr>,
    /// `network connect`ed ones.
    pub connected: &'a [Connection],
    /// Published ports (host port 0: any free one).
    pub ports: &'a [PortMapping],
    /// `--add-host`, `--dns*`.
    pub names: &'a crate::run::options::NameOptions,
}

fn netavark(roots: &Roots) -> Result<Netavark, NetworkError> {
    let config = roots.run_state().join("netavark");
    fs::create_dir_all(&config).map_err(|source| NetworkError::Io {
        path: config.clone(),
        source,
    })?;
    Netavark::find(&config)
}

fn netns_path(roots: &Roots, id: &str) -> PathBuf {
    roots.run_state().join("netns").join(id)
}

/// Bind the host ports (a chosen port for host port 0).
fn hold_ports(ports: &[PortMapping]) -> Result<(Vec<Published>, HeldPorts), NetworkError> {
    use socket2::{Domain, Socket, Type};
    let mut held = Vec::new();
    let mut out = Vec::new();
    for p in ports {
        let addr = SocketAddr::new(p.host_ip, p.host_port);
        let kind = match p.protocol {
            Protocol::Tcp => Type::STREAM,
            Protocol::Udp => Type::DGRAM,
        };
        let in_use = |e: std::io::Error| NetworkError::Setup {
            what: format!("publishing {}:{}/{}", p.host_ip, p.host_port, p.protocol),
            reason: if e.kind() == std::io::ErrorKind::AddrInUse {
                "the port is already in use".into()
            } else {
                e.to_string()
            },
        };
        // Bound, never listening: connections go to the container through netavark's rules.
        let socket = Socket::new(Domain::for_address(addr), kind, None).map_err(in_use)?;
        socket.bind(&addr.into()).map_err(in_use)?;
        let port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(p.host_port, |a| a.port());
        out.push(PortMapping {
            host_port: port,
            ..*p
        });
        held.push(OwnedFd::from(socket));
    }
    Ok((out, HeldPorts(held)))
}

/// Set up container `req.id` (directory `dir`) on its networks: a network namespace, an
/// address and netavark's work on each network, its /etc/hosts and /etc/resolv.conf in
/// `dir`. On failure nothing is left.
pub fn attach(
    roots: &Roots,
    dir: &Path,
    req: &Request<'_>,
) -> Result<(Attachment, HeldPorts), NetworkError> {
    let networks = Networks::new(roots);
    let mut wanted = vec![(networks.get(req.network)?, req.aliases.to_vec(), req.ip)];
    for c in req.connected {
        let net = networks.get(&c.network)?;
        if !wanted.iter().any(|(n, _, _)| n.name == net.name) {
            wanted.push((net, c.aliases.clone(), c.ip));
        }
    }
    let nv = netavark(roots)?;
    let (ports, held) = hold_ports(req.ports)?;
    // A run that was killed may have left its namespace: take that down first.
    detach(roots, dir)?;
    let lock = networks.lock()?;
    let ns = netns_path(roots, req.id);
    netns::create(&ns)?;
    let mut att = Attachment {
        netns: ns.clone(),
        hostname: req.hostname.to_string(),
        endpoints: Vec::new(),
        ports: ports.clone(),
        names: req.names.clone(),
    };
    let result = (|| {
        att.save(dir)?;
        for (i, (net, aliases, ip)) in wanted.iter().enumerate() {
            let ep = setup_one(
                &networks,
                &lock,
                &nv,
                req,
                &ns,
                net,
                &format!("eth{i}"),
                aliases,
                *ip,
                if i == 0 { &ports } else { &[] },
            )?;
            att.endpoints.push(ep);
            att.save(dir)?;
        }
        write_etc(dir, &att)
    })();
    drop(lock);
    match result {
        Ok(()) => Ok((att, held)),
        Err(e) => {
            let _ = detach(roots, dir);
            // Made before anything recorded it, if saving failed.
            netns::remove(&ns);
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn setup_one(
    networks: &Networks,
    lock: &super::store::NetLock,
    nv: &Netavark,
    req: &Request<'_>,
    ns: &Path,
    net: &super::Network,
    interface: &str,
    aliases: &[String],
    want: Option<Ipv4Addr>,
    ports: &[PortMapping],
) -> Result<Endpoint, NetworkError> {
    if let Some(bad) = aliases.iter().find(|a| !super::is_dns_name(a)) {
        return Err(NetworkError::Setup {
            what: format!("alias {bad:?}"),
            reason: "a network alias is a DNS name: letters, digits, '-', '_' and '.'".into(),
        });
    }
    let ip = networks.allocate(lock, net, req.id, req.name, want)?;
    let mut names: Vec<String> = aliases.to_vec();
    let short: String = req.id.chars().take(12).collect();
    if !names.contains(&short) {
        names.push(short);
    }
    let options = netavark::options(req.id, req.name, net, interface, ip, &names, ports);
    let answer = match nv.setup(ns, &options) {
        Ok(a) => a,
        Err(e) => {
            // netavark leaves what it made before failing (a bridge, rules): take it down
            // with the same options; the address goes back.
            let _ = nv.teardown(ns, &options);
            networks.release(lock, &net.name, req.id);
            return Err(e);
        }
    };
    let status = &answer[&net.name];
    let iface = &status["interfaces"][interface];
    let subnet = &iface["subnets"][0];
    let prefix_len = subnet["ipnet"]
        .as_str()
        .and_then(|s| s.split_once('/'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(net.subnet.prefix_len());
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    networks.event("connect", net, Some(req.id));
    Ok(Endpoint {
        network: net.name.clone(),
        network_id: net.id.clone(),
        interface: interface.to_string(),
        ip,
        prefix_len,
        gateway: net.gateway,
        mac: iface["mac_address"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        aliases: names,
        dns: strings(&status["dns_server_ips"])
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
        search: strings(&status["dns_search_domains"]),
        options,
    })
}

/// Take down what `dir`'s record says was set up (nothing recorded: nothing to do). Every
/// step is tried; the first error is returned.
pub fn detach(roots: &Roots, dir: &Path) -> Result<(), NetworkError> {
    if !dir.join(FILE).exists() {
        return Ok(());
    }
    let networks = Networks::new(roots);
    // Read under the lock: connect and disconnect change the record under it too.
    let lock = networks.lock()?;
    let Some(mut att) = Attachment::read(dir) else {
        let _ = fs::remove_file(dir.join(FILE));
        return Ok(());
    };
    let mounted = netns::is_netns(&att.netns);
    let id = att
        .endpoints
        .first()
        .and_then(|e| e.options["container_id"].as_str().map(String::from))
        .or_else(|| dir.file_name().and_then(|n| n.to_str()).map(String::from))
        .unwrap_or_default();
    let mut first_error = None;
    // Not mounted: the namespace, its rules and name servers went with a reboot.
    let nv = if mounted && !att.endpoints.is_empty() {
        match netavark(roots) {
            Ok(nv) => Some(nv),
            Err(e) => {
                first_error = Some(e);
                None
            }
        }
    } else {
        None
    };
    let mut kept = Vec::new();
    for ep in att.endpoints.drain(..).rev() {
        let down = match (&nv, mounted) {
            (_, false) => Ok(()),
            (Some(nv), true) => nv.teardown(&att.netns, &ep.options),
            (None, true) => Err(NetworkError::Setup {
                what: "taking the network down".into(),
                reason: "netavark is missing".into(),
            }),
        };
        match down {
            Ok(()) => {
                if let Ok(net) = networks.get(&ep.network) {
                    networks.event("disconnect", &net, Some(&id));
                }
                networks.release(&lock, &ep.network, &id)
            }
            // Its rules and name may still point at the address: it stays leased and
            // recorded, and the next detach tries again.
            Err(e) => {
                first_error.get_or_insert(e);
                kept.push(ep);
            }
        }
    }
    if kept.is_empty() {
        netns::remove(&att.netns);
        let _ = fs::remove_file(dir.join(FILE));
    } else {
        kept.reverse();
        att.endpoints = kept;
        att.save(dir)?;
    }
    drop(lock);
    first_error.map_or(Ok(()), Err)
}

/// [`detach`] for a container directory found without its roots (`ROOT/containers/<id>`).
pub fn detach_leftover(dir: &Path) {
    if !dir.join(FILE).exists() {
        return;
    }
    if let Some(root) = dir.parent().and_then(Path::parent)
        && let Err(e) = detach(&Roots::new(root), dir)
    {
        eprintln!("wharf: taking down the network of {}: {e}", dir.display());
    }
}

/// Join a running container (its attachment in `dir`) to one more network.
pub fn connect(
    roots: &Roots,
    dir: &Path,
    id: &str,
    name: &str,
    conn: &Connection,
) -> Result<Endpoint, NetworkError> {
    let networks = Networks::new(roots);
    let net = networks.get(&conn.network)?;
    let nv = netavark(roots)?;
    // Read under the lock: attach, detach and disconnect change the record under it too.
    let lock = networks.lock()?;
    let mut att = Attachment::read(dir).ok_or_else(|| NetworkError::Setup {
        what: format!("connecting {name}"),
        reason: "the container has no network namespace of its own (--network none or host)".into(),
    })?;
    if att.endpoints.iter().any(|e| e.network == net.name) {
        return Err(NetworkError::Setup {
            what: format!("connecting {name} to {}", net.name),
            reason: "it is already connected".into(),
        });
    }
    let n = (0..)
        .find(|i| {
            !att.endpoints
                .iter()
                .any(|e| e.interface == format!("eth{i}"))
        })
        .expect("some interface is free");
    let req = Request {
        id,
        name,
        hostname: &att.hostname.clone(),
        network: &net.name,
        aliases: &conn.aliases,
        ip: conn.ip,
        connected: &[],
        ports: &[],
        names: &att.names.clone(),
    };
    let ep = setup_one(
        &networks,
        &lock,
        &nv,
        &req,
        &att.netns,
        &net,
        &format!("eth{n}"),
        &conn.aliases,
        conn.ip,
        &[],
    )?;
    att.endpoints.push(ep.clone());
    att.save(dir)?;
    write_etc(dir, &att)?;
    Ok(ep)
}

/// Take a running container off one network.
pub fn disconnect(roots: &Roots, dir: &Path, id: &str, network: &str) -> Result<(), NetworkError> {
    let networks = Networks::new(roots);
    let net = networks.get(network)?;
    let lock = networks.lock()?;
    let Some(mut att) = Attachment::read(dir) else {
        return Ok(());
    };
    let Some(i) = att.endpoints.iter().position(|e| e.network == net.name) else {
        // Not (or no longer) attached: nothing to undo.
        return Ok(());
    };
    // Taken down first: on failure the endpoint stays recorded and leased.
    netavark(roots).and_then(|nv| nv.teardown(&att.netns, &att.endpoints[i].options))?;
    let ep = att.endpoints.remove(i);
    networks.event("disconnect", &net, Some(id));
    networks.release(&lock, &ep.network, id);
    att.save(dir)?;
    write_etc(dir, &att)
}

/// Join the container's network from this (single-threaded) process: a wasm supervisor,
/// whose guest's sockets and name lookups are then the container's.
pub fn enter(att: &Attachment, dir: &Path) -> Result<(), NetworkError> {
    netns::enter(&att.netns, dir)
}

/// The container's /etc/hosts and /etc/resolv.conf (written in place: a running container
/// has them bind-mounted and sees a `network connect` at once).
fn write_etc(dir: &Path, att: &Attachment) -> Result<(), NetworkError> {
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(ep) = att.endpoints.first() {
        hosts.push_str(&format!("{}\t{}\n", ep.ip, att.hostname));
    } else {
        hosts.push_str(&format!("127.0.1.1\t{}\n", att.hostname));
    }
    let mut resolv = String::from("# written by wharf\n");
    let mut servers: Vec<Ipv4Addr> = att.endpoints.iter().flat_map(|e| e.dns.clone()).collect();
    servers.dedup();
    if servers.is_empty() {
        // No name server of our own: the host's.
        resolv = super::host_resolv_conf();
    } else {
        for s in &servers {
            resolv.push_str(&format!("nameserver {s}\n"));
        }
        let mut search: Vec<String> = att
            .endpoints
            .iter()
            .flat_map(|e| e.search.clone())
            .collect();
        search.dedup();
        if !search.is_empty() {
            resolv.push_str(&format!("search {}\n", search.join(" ")));
        }
    }
    let (hosts, resolv) = att.names.apply(&hosts, &resolv);
    for (name, text) in [("hosts", hosts), ("resolv.conf", resolv)] {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|source| NetworkError::Io { path, source })?;
    }
    Ok(())
}
