//! Networks: user-defined bridge networks that containers, native and wasm, join by name.
//!
//! wharf does what netavark leaves to its caller, as Podman does: the definitions on disk
//! (`ROOT/networks/<name>.json`), subnet choice and address allocation (leases, under one
//! lock, so concurrent runs never share an address), a persistent network namespace per
//! container (`/run/wharf/<root>/netns/<id>`, so teardown works after the container died) and the
//! container's `/etc/hosts` and `/etc/resolv.conf`. netavark makes the bridge, veth pair,
//! firewall rules and published ports; aardvark-dns answers names and aliases on networks
//! with DNS (every user network; not the default `bridge`, as Docker).
//!
//! Definitions and allocation are plain files and work anywhere; attaching containers needs
//! Linux (netavark, namespaces). On other hosts the verbs say so.

mod store;

#[cfg(target_os = "linux")]
mod attach;
#[cfg(target_os = "linux")]
mod netavark;
#[cfg(target_os = "linux")]
mod netns;
#[cfg(target_os = "linux")]
pub mod pasta;

#[cfg(target_os = "linux")]
pub use attach::{
    Attachment, Endpoint, HeldPorts, Published, Request, attach, connect, detach, detach_leftover,
    disconnect, enter,
};
#[cfg(target_os = "linux")]
pub use netavark::binaries;
pub use store::{
    CreateOptions, DEFAULT_NETWORK, Lease, Network, NetworkError, Networks, parse_subnet,
};

/// Whether `s` can be a name in aardvark-dns' records and /etc/hosts (an alias, a
/// hostname): letters, digits, `-`, `_` and `.`, at most 253 of them.
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Why bridge networks are refused on this host (none on Linux).
pub fn unsupported() -> Option<&'static str> {
    if cfg!(target_os = "linux") {
        None
    } else {
        Some(
            "bridge networks need a Linux host (netavark and network namespaces); wasm containers here use --network host or none",
        )
    }
}

/// The host's resolv.conf for a container that has no name server of its own: its
/// `nameserver`, `search` and `options` lines, minus name servers only the host reaches
/// (loopback).
pub fn host_resolv_conf() -> String {
    let mut out = String::from("# written by wharf (from the host's)\n");
    let mut host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let only_loopback = host
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .all(|ip| {
            ip.trim()
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
        });
    if only_loopback
        && let Ok(upstream) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf")
    {
        // systemd-resolved's stub (127.0.0.53): the servers it forwards to.
        host = upstream;
    }
    for l in host.lines() {
        let mut f = l.split_whitespace();
        match (f.next(), f.next()) {
            (Some("nameserver"), Some(ip))
                if ip
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| !a.is_loopback()) =>
            {
                out.push_str(&format!("nameserver {ip}\n"))
            }
            (Some("search" | "options"), Some(_)) => {
                out.push_str(l);
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}
