//! Driving netavark (Podman's network backend): `setup` and `teardown` of one container in
//! one network, options as JSON on stdin, as Podman does. netavark starts aardvark-dns.

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{Network, NetworkError};
use crate::run::options::PortMapping;

/// Where distributions put netavark and aardvark-dns (Debian: /usr/lib/podman).
const DIRS: &[&str] = &[
    "/usr/libexec/podman",
    "/usr/lib/podman",
    "/usr/local/libexec/podman",
    "/usr/local/lib/podman",
];

/// The binaries and their state directory.
pub struct Netavark {
    bin: PathBuf,
    aardvark: PathBuf,
    config: PathBuf,
}

fn find(name: &str, var: &str) -> Result<PathBuf, NetworkError> {
    if let Some(p) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(NetworkError::Setup {
                what: format!("{var}={}", p.display()),
                reason: "no such file".into(),
            })
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    DIRS.iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| NetworkError::Setup {
            what: format!("{name} not found"),
            reason: format!(
                "bridge networks need netavark and aardvark-dns (Debian: apt install netavark aardvark-dns), in {} or on PATH, or set {var}",
                DIRS.join(", ")
            ),
        })
}

/// Where netavark and aardvark-dns are (as a network run would find them), or why not.
pub fn binaries() -> Result<(PathBuf, PathBuf), NetworkError> {
    Ok((
        find("netavark", "WHARF_NETAVARK")?,
        find("aardvark-dns", "WHARF_AARDVARK_DNS")?,
    ))
}

impl Netavark {
    /// Find the binaries (`WHARF_NETAVARK`, `WHARF_AARDVARK_DNS` override); state goes in
    /// `config` (aardvark-dns' per-network files).
    pub fn find(config: &Path) -> Result<Netavark, NetworkError> {
        Ok(Netavark {
            bin: find("netavark", "WHARF_NETAVARK")?,
            aardvark: find("aardvark-dns", "WHARF_AARDVARK_DNS")?,
            config: config.to_path_buf(),
        })
    }

    fn command(&self, verb: &str, netns: &Path) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--config")
            .arg(&self.config)
            .arg("--aardvark-binary")
            .arg(&self.aardvark)
            .arg(verb)
            .arg(netns)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // netavark runs iptables and ip: make sure the system directories are searched.
        // The system's directories first; no empty entry (the current directory).
        let path = std::env::var("PATH").unwrap_or_default();
        let mut dirs = vec!["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
        for d in path.split(':') {
            if !d.is_empty() && !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        c.env("PATH", dirs.join(":"));
        // SAFETY: between fork and exec only setns calls run (no allocation, no locks).
        unsafe {
            c.pre_exec(super::netns::back_to_host);
        }
        c
    }

    fn run(&self, verb: &str, netns: &Path, options: &Value) -> Result<Value, NetworkError> {
        let what = format!("netavark {verb}");
        let fail = |reason: String| NetworkError::Setup {
            what: what.clone(),
            reason,
        };
        let mut child = self
            .command(verb, netns)
            .spawn()
            .map_err(|e| fail(format!("{}: {e}", self.bin.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(options.to_string().as_bytes());
        }
        let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        if out.status.success() {
            return Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null));
        }
        // netavark prints {"error": "..."} on failure.
        let said = [&out.stdout, &out.stderr]
            .iter()
            .find_map(|b| {
                serde_json::from_slice::<Value>(b)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
            })
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .filter(|l| !l.contains("syslog"))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
        Err(fail(said))
    }

    /// Attach the namespace at `netns` to a network; netavark's answer for it.
    pub fn setup(&self, netns: &Path, options: &Value) -> Result<Value, NetworkError> {
        self.run("setup", netns, options)
    }

    pub fn teardown(&self, netns: &Path, options: &Value) -> Result<(), NetworkError> {
        self.run("teardown", netns, options).map(drop)
    }
}

/// netavark's options for one container in one network.
#[allow(clippy::too_many_arguments)]
pub fn options(
    container_id: &str,
    container_name: &str,
    net: &Network,
    interface: &str,
    ip: Ipv4Addr,
    aliases: &[String],
    ports: &[PortMapping],
) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| {
            json!({
                "host_ip": p.host_ip.to_string(),
                "host_port": p.host_port,
                "container_port": p.container_port,
                "protocol": p.protocol.to_string(),
                "range": 1,
            })
        })
        .collect();
    json!({
        "container_id": container_id,
        "container_name": container_name,
        "port_mappings": ports,
        "networks": {
            &net.name: {
                "interface_name": interface,
                "static_ips": [ip.to_string()],
                "aliases": aliases,
            }
        },
        "network_info": {
            &net.name: {
                "name": net.name,
                "id": net.id,
                "driver": "bridge",
                "network_interface": net.interface,
                "subnets": [{"subnet": net.subnet.to_string(), "gateway": net.gateway.to_string()}],
                "ipv6_enabled": false,
                "internal": net.internal,
                "dns_enabled": net.dns_enabled,
                "ipam_options": {"driver": "host-local"},
            }
        }
    })
}
