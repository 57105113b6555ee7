//! Network definitions and address leases, as files under `ROOT/networks/`:
//! `<name>.json` (the definition), `<name>.leases` (address → container) and `.lock`, the
//! one lock every change takes (create, remove, allocate, release, and netavark's work).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::paths::Roots;

/// The network that exists without being created, as Docker's `bridge`: no name resolution
/// (Docker resolves names on user networks only).
pub const DEFAULT_NETWORK: &str = "bridge";
const DEFAULT_SUBNET: &str = "10.87.0.0/16";
/// User networks without `--subnet` get the first free /24 of this range.
const POOL: &str = "10.90.0.0/16";
/// Bridge devices are `wharf0` (the default network), `wharf1`, ...
const BRIDGE_PREFIX: &str = "wharf";

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0:?} not found")]
    NotFound(String),
    #[error("network with name {0:?} already exists")]
    Exists(String),
    #[error(
        "invalid network name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
    )]
    BadName(String),
    #[error("{0:?} is a network mode, not a network name: choose another name")]
    Reserved(String),
    #[error("invalid subnet {0:?}: {1}")]
    BadSubnet(String, String),
    #[error("subnet {subnet} overlaps {other}")]
    Overlap { subnet: Ipv4Net, other: String },
    #[error("invalid gateway {gateway}: {reason}")]
    BadGateway { gateway: Ipv4Addr, reason: String },
    #[error("no free subnet left in {POOL}: pass --subnet")]
    PoolExhausted,
    #[error("network {network:?} has no free address left ({subnet})")]
    Full { network: String, subnet: Ipv4Net },
    #[error("address {ip} is not in network {network:?}'s subnet {subnet}")]
    IpOutside {
        ip: Ipv4Addr,
        network: String,
        subnet: Ipv4Net,
    },
    #[error("address {ip} on network {network:?} is {why}")]
    IpTaken {
        ip: Ipv4Addr,
        network: String,
        why: String,
    },
    #[error("network {name:?} is in use by {users}: remove or disconnect them first")]
    InUse { name: String, users: String },
    #[error("the default network {0:?} cannot be removed")]
    Default(String),
    #[error("{what}: {reason}")]
    Setup { what: String, reason: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a network definition: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> NetworkError + '_ {
    move |source| NetworkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One bridge network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// Always `bridge` for now.
    pub driver: String,
    /// The bridge device on the host.
    pub interface: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// No route out: containers reach each other only.
    pub internal: bool,
    /// aardvark-dns answers the containers' names and aliases.
    pub dns_enabled: bool,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `network create`'s options.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub disable_dns: bool,
    pub labels: BTreeMap<String, String>,
}

/// Who holds an address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    /// The container's id.
    pub container: String,
    /// Its name when the address was given (for messages).
    #[serde(default)]
    pub name: String,
}

/// Parse `A.B.C.D/N`, refusing host bits (Docker: "it should be 10.1.2.0/24").
pub fn parse_subnet(s: &str) -> Result<Ipv4Net, NetworkError> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        NetworkError::BadSubnet(
            s.into(),
            "expected an IPv4 CIDR such as 10.90.1.0/24".into(),
        )
    })?;
    if net.trunc() != net {
        return Err(NetworkError::BadSubnet(
            s.into(),
            format!("host bits are set: it should be {}", net.trunc()),
        ));
    }
    if net.prefix_len() > 30 {
        return Err(NetworkError::BadSubnet(
            s.into(),
            "too small: a /30 or larger is needed for a gateway and a container".into(),
        ));
    }
    if net.prefix_len() < 8 {
        return Err(NetworkError::BadSubnet(
            s.into(),
            "too large: at most a /8".into(),
        ));
    }
    Ok(net)
}

/// The networks of one wharf root.
#[derive(Debug, Clone)]
pub struct Networks {
    dir: PathBuf,
    roots: Roots,
}

/// The networks lock, held while definitions or leases change (and while netavark works).
pub struct NetLock {
    _file: File,
}

impl Networks {
    pub fn new(roots: &Roots) -> Self {
        Networks {
            dir: roots.data().join("networks"),
            roots: roots.clone(),
        }
    }

    /// Take the lock every change takes.
    pub fn lock(&self) -> Result<NetLock, NetworkError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let path = self.dir.join(".lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        f.lock().map_err(io_err(&path))?;
        Ok(NetLock { _file: f })
    }

    fn def_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn leases_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.leases"))
    }

    fn read_def(&self, name: &str) -> Result<Option<Network>, NetworkError> {
        let path = self.def_path(name);
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| NetworkError::Corrupt { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Every definition on disk (the default one once it was first used).
    fn read_all(&self) -> Vec<Network> {
        let mut out: Vec<Network> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let name = name.strip_suffix(".json")?;
                self.read_def(name).ok().flatten()
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Make sure the default network is on disk (under the lock).
    fn ensure_default(&self, _lock: &NetLock) -> Result<(), NetworkError> {
        if self.read_def(DEFAULT_NETWORK)?.is_some() {
            return Ok(());
        }
        let subnet: Ipv4Net = DEFAULT_SUBNET.parse().expect("a valid subnet");
        let net = Network {
            name: DEFAULT_NETWORK.into(),
            id: crate::id::new_id(),
            driver: "bridge".into(),
            interface: format!("{BRIDGE_PREFIX}0"),
            subnet,
            gateway: first_host(subnet),
            internal: false,
            dns_enabled: false,
            created: Utc::now(),
            labels: BTreeMap::new(),
        };
        self.write_def(&net)
    }

    fn write_def(&self, net: &Network) -> Result<(), NetworkError> {
        let path = self.def_path(&net.name);
        write_atomic(&path, &serde_json::to_vec_pretty(net).expect("serialises"))
    }

    /// Create network `name`; "already exists" if it does (also when created concurrently:
    /// the lock makes one of two creations win).
    pub fn create(&self, name: &str, opts: &CreateOptions) -> Result<Network, NetworkError> {
        check_name(name)?;
        let lock = self.lock()?;
        self.ensure_default(&lock)?;
        if self.read_def(name)?.is_some() {
            return Err(NetworkError::Exists(name.into()));
        }
        let existing = self.read_all();
        let routes = host_routes();
        let subnet = match opts.subnet {
            Some(s) => {
                if let Some(n) = existing.iter().find(|n| overlaps(n.subnet, s)) {
                    return Err(NetworkError::Overlap {
                        subnet: s,
                        other: format!("network {:?}'s {}", n.name, n.subnet),
                    });
                }
                if let Some((r, dev)) = routes.iter().find(|(r, _)| overlaps(*r, s)) {
                    return Err(NetworkError::Overlap {
                        subnet: s,
                        other: format!("the host's route {r} on {dev}"),
                    });
                }
                s
            }
            None => {
                let pool: Ipv4Net = POOL.parse().expect("a valid pool");
                pool.subnets(24)
                    .expect("a /24 fits the pool")
                    .find(|c| {
                        !existing.iter().any(|n| overlaps(n.subnet, *c))
                            && !routes.iter().any(|(r, _)| overlaps(*r, *c))
                    })
                    .ok_or(NetworkError::PoolExhausted)?
            }
        };
        let gateway = match opts.gateway {
            Some(g) => {
                check_host(subnet, g)
                    .map_err(|reason| NetworkError::BadGateway { gateway: g, reason })?;
                g
            }
            None => first_host(subnet),
        };
        let used: Vec<&str> = existing.iter().map(|n| n.interface.as_str()).collect();
        let interface = (1..)
            .map(|i| format!("{BRIDGE_PREFIX}{i}"))
            .find(|i| !used.contains(&i.as_str()) && !Path::new("/sys/class/net").join(i).exists())
            .expect("some bridge name is free");
        let net = Network {
            name: name.into(),
            id: crate::id::new_id(),
            driver: "bridge".into(),
            interface,
            subnet,
            gateway,
            internal: opts.internal,
            dns_enabled: !opts.disable_dns,
            created: Utc::now(),
            labels: opts.labels.clone(),
        };
        self.write_def(&net)?;
        self.event("create", &net, None);
        Ok(net)
    }

    /// Every network, the default one included, by name.
    pub fn list(&self) -> Result<Vec<Network>, NetworkError> {
        if self.read_def(DEFAULT_NETWORK)?.is_none() {
            let lock = self.lock()?;
            self.ensure_default(&lock)?;
        }
        Ok(self.read_all())
    }

    /// The network `query` names: a name, a full id or an unambiguous id prefix.
    pub fn get(&self, query: &str) -> Result<Network, NetworkError> {
        if check_name(query).is_ok()
            && let Some(n) = self.read_def(query)?
        {
            return Ok(n);
        }
        let all = self.list()?;
        if let Some(n) = all.iter().find(|n| n.name == query) {
            return Ok(n.clone());
        }
        let by_id: Vec<&Network> = all
            .iter()
            .filter(|n| !query.is_empty() && n.id.starts_with(query))
            .collect();
        match by_id.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(NetworkError::NotFound(query.into())),
        }
    }

    /// The addresses given on `name`, stale ones (their container gone) dropped.
    pub fn leases(&self, name: &str) -> BTreeMap<Ipv4Addr, Lease> {
        let mut leases: BTreeMap<Ipv4Addr, Lease> = fs::read(self.leases_path(name))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let containers = self.roots.containers();
        leases.retain(|_, l| containers.join(&l.container).is_dir());
        leases
    }

    fn write_leases(
        &self,
        name: &str,
        leases: &BTreeMap<Ipv4Addr, Lease>,
    ) -> Result<(), NetworkError> {
        let path = self.leases_path(name);
        if leases.is_empty() {
            return match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e)),
                _ => Ok(()),
            };
        }
        write_atomic(
            &path,
            &serde_json::to_vec_pretty(leases).expect("serialises"),
        )
    }

    /// Give container `container` an address on `net` (`want`, or the lowest free one).
    /// The caller holds the lock.
    pub fn allocate(
        &self,
        _lock: &NetLock,
        net: &Network,
        container: &str,
        name: &str,
        want: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, NetworkError> {
        // A leases file that does not parse must not be taken for an empty one.
        let path = self.leases_path(&net.name);
        if let Ok(bytes) = fs::read(&path)
            && let Err(source) = serde_json::from_slice::<BTreeMap<Ipv4Addr, Lease>>(&bytes)
        {
            return Err(NetworkError::Corrupt { path, source });
        }
        let mut leases = self.leases(&net.name);
        // Already holding one (a retried setup): keep it.
        if let Some((ip, _)) = leases.iter().find(|(_, l)| l.container == container)
            && want.is_none_or(|w| w == *ip)
        {
            return Ok(*ip);
        }
        let ip = match want {
            Some(ip) => {
                if !net.subnet.contains(&ip) {
                    return Err(NetworkError::IpOutside {
                        ip,
                        network: net.name.clone(),
                        subnet: net.subnet,
                    });
                }
                if let Err(why) = check_host(net.subnet, ip) {
                    return Err(NetworkError::IpTaken {
                        ip,
                        network: net.name.clone(),
                        why,
                    });
                }
                if ip == net.gateway {
                    return Err(NetworkError::IpTaken {
                        ip,
                        network: net.name.clone(),
                        why: "the gateway".into(),
                    });
                }
                if let Some(l) = leases.get(&ip) {
                    return Err(NetworkError::IpTaken {
                        ip,
                        network: net.name.clone(),
                        why: format!("in use by container {}", display_name(l)),
                    });
                }
                ip
            }
            None => net
                .subnet
                .hosts()
                .find(|ip| *ip != net.gateway && !leases.contains_key(ip))
                .ok_or_else(|| NetworkError::Full {
                    network: net.name.clone(),
                    subnet: net.subnet,
                })?,
        };
        leases.retain(|_, l| l.container != container);
        leases.insert(
            ip,
            Lease {
                container: container.into(),
                name: name.into(),
            },
        );
        self.write_leases(&net.name, &leases)?;
        Ok(ip)
    }

    /// Give back container `container`'s address on network `name` (the caller holds the
    /// lock). Nothing to give back is fine.
    pub fn release(&self, _lock: &NetLock, name: &str, container: &str) {
        let mut leases = self.leases(name);
        let before = leases.len();
        leases.retain(|_, l| l.container != container);
        if leases.len() != before {
            let _ = self.write_leases(name, &leases);
        }
    }

    /// Containers that use network `name`: holding an address, or (`users_of`, the
    /// caller's knowledge of containers: the store has none) configured to join it.
    fn users(&self, name: &str, users_of: &dyn Fn(&str) -> Vec<String>) -> Vec<String> {
        let mut users: Vec<String> = self.leases(name).values().map(display_name).collect();
        for shown in users_of(name) {
            if !users.contains(&shown) {
                users.push(shown);
            }
        }
        users
    }

    /// Remove network `query` (refused while a container uses it, and for the default).
    /// `users_of` names the containers configured to join a network.
    pub fn remove(
        &self,
        query: &str,
        users_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<Network, NetworkError> {
        let net = self.get(query)?;
        if net.name == DEFAULT_NETWORK {
            return Err(NetworkError::Default(net.name));
        }
        // Containers are looked at before the lock is taken: reading a dead container's
        // record takes its network down, which takes this lock.
        let users = self.users(&net.name, users_of);
        let _lock = self.lock()?;
        let holders: Vec<String> = self.leases(&net.name).values().map(display_name).collect();
        let users = if users.is_empty() { holders } else { users };
        if !users.is_empty() {
            return Err(NetworkError::InUse {
                name: net.name,
                users: users.join(", "),
            });
        }
        let path = self.def_path(&net.name);
        fs::remove_file(&path).map_err(io_err(&path))?;
        let _ = fs::remove_file(self.leases_path(&net.name));
        self.event("destroy", &net, None);
        Ok(net)
    }

    /// Record a network event (`create`, `destroy`, `connect`, `disconnect`) in the root's
    /// event log; `container` for the last two.
    pub fn event(&self, action: &str, net: &Network, container: Option<&str>) {
        let mut attributes: std::collections::BTreeMap<String, String> = [
            ("name".to_string(), net.name.clone()),
            ("type".to_string(), "bridge".to_string()),
        ]
        .into_iter()
        .collect();
        if let Some(c) = container {
            attributes.insert("container".into(), c.to_string());
        }
        crate::events::append(
            &crate::events::log_path(self.roots.data()),
            &crate::events::Event::new("network", action, &net.id, attributes),
        );
    }

    /// Remove every user network no container uses (`users_of`, as for
    /// [`Networks::remove`]); their names.
    pub fn prune(
        &self,
        users_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<Vec<String>, NetworkError> {
        let mut removed = Vec::new();
        for n in self.list()? {
            if n.name != DEFAULT_NETWORK && self.users(&n.name, users_of).is_empty() {
                self.remove(&n.name, users_of)?;
                removed.push(n.name);
            }
        }
        Ok(removed)
    }
}

fn display_name(l: &Lease) -> String {
    if l.name.is_empty() {
        l.container.chars().take(12).collect()
    } else {
        l.name.clone()
    }
}

fn check_name(name: &str) -> Result<(), NetworkError> {
    if matches!(
        name,
        "none" | "host" | "default" | "container" | "pasta" | "slirp4netns"
    ) {
        return Err(NetworkError::Reserved(name.into()));
    }
    let ok = name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::BadName(name.into()))
    }
}

fn first_host(net: Ipv4Net) -> Ipv4Addr {
    net.hosts().next().expect("a /30 or larger has hosts")
}

/// Whether `ip` can be a host in `net`: neither its network nor its broadcast address.
fn check_host(net: Ipv4Net, ip: Ipv4Addr) -> Result<(), String> {
    if !net.contains(&ip) {
        return Err(format!("not in the subnet {net}"));
    }
    if ip == net.network() || ip == net.broadcast() {
        return Err(format!("the network or broadcast address of {net}"));
    }
    Ok(())
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The host's IPv4 routes other than the default one, with their devices (from
/// /proc/net/route: a new subnet must not hide a network the host reaches).
fn host_routes() -> Vec<(Ipv4Net, String)> {
    let Ok(text) = fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // Little-endian words in the kernel's byte order.
            let dest = Ipv4Addr::from(dest.to_le_bytes());
            let prefix = mask.count_ones() as u8;
            (prefix > 0 && !f[0].starts_with(BRIDGE_PREFIX))
                .then(|| Some((Ipv4Net::new(dest, prefix).ok()?, f[0].to_string())))
                .flatten()
        })
        .collect()
}

/// Write `bytes` to `path` atomically (a synced temp file beside it, renamed), as the image
/// store writes its files.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NetworkError> {
    crate::sys::write_atomic(None, path, bytes, crate::sys::Durability::Synced).map_err(|source| {
        NetworkError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn networks() -> (tempfile::TempDir, Networks) {
        let d = tempfile::tempdir().unwrap();
        let n = Networks::new(&Roots::new(d.path()));
        (d, n)
    }

    #[test]
    fn subnets_are_checked() {
        assert!(parse_subnet("10.1.2.0/24").is_ok());
        let e = parse_subnet("10.1.2.3/24").unwrap_err().to_string();
        assert!(e.contains("it should be 10.1.2.0/24"), "{e}");
        assert!(parse_subnet("10.1.2.0/33").is_err());
        assert!(
            parse_subnet("banana")
                .unwrap_err()
                .to_string()
                .contains("banana")
        );
        assert!(parse_subnet("10.1.2.0/31").is_err());
    }

    #[test]
    fn the_default_network_exists_and_stays() {
        let (_d, n) = networks();
        let all = n.list().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, DEFAULT_NETWORK);
        assert!(!all[0].dns_enabled);
        assert!(matches!(
            n.remove(DEFAULT_NETWORK, &|_| Vec::new()),
            Err(NetworkError::Default(_))
        ));
    }

    #[test]
    fn subnets_are_chosen_without_overlap_and_overlaps_refused() {
        let (_d, n) = networks();
        let a = n.create("a", &CreateOptions::default()).unwrap();
        let b = n.create("b", &CreateOptions::default()).unwrap();
        assert_ne!(a.subnet, b.subnet);
        assert_ne!(a.interface, b.interface);
        assert_eq!(a.gateway, first_host(a.subnet));
        let e = n
            .create(
                "c",
                &CreateOptions {
                    subnet: Some(parse_subnet("10.90.0.0/16").unwrap()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(e.to_string().contains("overlaps network \"a\""), "{e}");
        assert!(matches!(
            n.create("a", &CreateOptions::default()),
            Err(NetworkError::Exists(_))
        ));
        assert!(matches!(
            n.create("host", &CreateOptions::default()),
            Err(NetworkError::Reserved(_))
        ));
        assert!(matches!(
            n.create("-x", &CreateOptions::default()),
            Err(NetworkError::BadName(_))
        ));
        let e = n
            .create(
                "gw-off",
                &CreateOptions {
                    subnet: Some(parse_subnet("192.168.77.0/24").unwrap()),
                    gateway: Some("192.168.78.1".parse().unwrap()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(e, NetworkError::BadGateway { .. }), "{e}");
        // Nothing half-made (a name with non-hex letters: a hex one could match an id).
        assert!(n.get("gw-off").is_err());
    }

    #[test]
    fn addresses_are_distinct_until_released() {
        let (d, n) = networks();
        let net = n
            .create(
                "small",
                &CreateOptions {
                    subnet: Some(parse_subnet("10.99.0.0/29").unwrap()),
                    ..Default::default()
                },
            )
            .unwrap();
        let lock = n.lock().unwrap();
        let mut seen = Vec::new();
        for i in 0..5 {
            let id = format!("{i:064}");
            fs::create_dir_all(d.path().join("containers").join(&id)).unwrap();
            let ip = n.allocate(&lock, &net, &id, "", None).unwrap();
            assert_ne!(ip, net.gateway);
            assert!(!seen.contains(&ip));
            seen.push(ip);
        }
        let full = format!("{:064}", 9);
        fs::create_dir_all(d.path().join("containers").join(&full)).unwrap();
        assert!(matches!(
            n.allocate(&lock, &net, &full, "", None),
            Err(NetworkError::Full { .. })
        ));
        let taken = n
            .allocate(&lock, &net, &full, "", Some(seen[0]))
            .unwrap_err();
        assert!(taken.to_string().contains("in use by container"), "{taken}");
        n.release(&lock, "small", &format!("{:064}", 0));
        assert_eq!(n.allocate(&lock, &net, &full, "", None).unwrap(), seen[0]);
        // A lease whose container is gone is stale.
        fs::remove_dir_all(d.path().join("containers").join(format!("{:064}", 1))).unwrap();
        assert_eq!(n.leases("small").len(), 4);
        drop(lock);
        let e = n.remove("small", &|_| Vec::new()).unwrap_err();
        assert!(matches!(e, NetworkError::InUse { .. }), "{e}");
    }
}
