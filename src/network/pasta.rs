//! Rootless networking for native containers: pasta (passt's namespace mode) gives the
//! container's own network namespace an interface with the host's addresses and routes, and
//! forwards published ports, all without privilege (Podman's rootless default).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::NetworkError;
use crate::run::options::{PortMapping, Protocol};

/// A running pasta, stopped when dropped.
pub struct Pasta {
    pid_file: PathBuf,
}

fn binary() -> Result<PathBuf, NetworkError> {
    if let Some(p) = std::env::var_os("WHARF_PASTA").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/local/bin".into()])
        .map(|d| d.join("pasta"))
        .find(|p| p.is_file())
        .ok_or_else(|| NetworkError::Setup {
            what: "pasta not found".into(),
            reason: "--network pasta needs passt's pasta (Debian: apt install passt), on PATH or named by WHARF_PASTA".into(),
        })
}

/// pasta's `-t`/`-u` value for one mapping: `ADDR/HOST:CONTAINER`.
fn spec(p: &PortMapping) -> String {
    format!("{}/{}:{}", p.host_ip, p.host_port, p.container_port)
}

/// Connect the network namespace of process `pid` (in its user namespace when `rootless`)
/// to the host through pasta, publishing `ports`; returns once the namespace is configured.
pub fn start(
    pid: i32,
    rootless: bool,
    ports: &[PortMapping],
    pid_file: &Path,
) -> Result<Pasta, NetworkError> {
    let mut c = Command::new(binary()?);
    c.args(["--config-net", "--quiet", "-P"]).arg(pid_file);
    let (tcp, udp): (Vec<_>, Vec<_>) = ports.iter().partition(|p| p.protocol == Protocol::Tcp);
    // Only what was published goes in; nothing of the container is reachable otherwise.
    for (flag, list) in [("-t", tcp), ("-u", udp)] {
        if list.is_empty() {
            c.args([flag, "none"]);
        }
        for p in list {
            c.arg(flag).arg(spec(p));
        }
    }
    // Nothing of the host's own loopback (its localhost-only services) through the
    // gateway address, as Podman does.
    c.args(["-T", "none", "-U", "none", "--no-map-gw"]);
    c.arg("--netns").arg(format!("/proc/{pid}/ns/net"));
    if rootless {
        c.arg("--userns").arg(format!("/proc/{pid}/ns/user"));
    }
    let out = c.output().map_err(|e| NetworkError::Setup {
        what: "starting pasta".into(),
        reason: e.to_string(),
    })?;
    if !out.status.success() {
        let said: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("syslog"))
            .map(String::from)
            .collect();
        return Err(NetworkError::Setup {
            what: "pasta".into(),
            reason: said.join("; "),
        });
    }
    Ok(Pasta {
        pid_file: pid_file.to_path_buf(),
    })
}

impl Drop for Pasta {
    fn drop(&mut self) {
        stop(&self.pid_file);
    }
}

/// Stop the pasta whose pid file is `pid_file` (if that pid is still a pasta: a recycled
/// pid is left alone) and remove the file.
fn stop(pid_file: &Path) {
    if let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|p| *p > 1)
        // Still that pasta (its command line names this pid file), not a recycled pid.
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            String::from_utf8_lossy(&c).contains(&*pid_file.to_string_lossy())
        })
    {
        let _ = crate::sys::send_signal(pid, crate::sys::SIGTERM);
    }
    let _ = std::fs::remove_file(pid_file);
}

/// Stop the pasta a container whose supervisor was killed left running (container
/// directory `dir`).
pub fn stop_leftover(dir: &Path) {
    let pid_file = dir.join(PID_FILE);
    if pid_file.exists() {
        stop(&pid_file);
    }
}

/// pasta's pid file in the container's directory.
pub const PID_FILE: &str = "pasta.pid";

/// Free ports for mappings that asked for any (host port 0): bound and released at once
/// (pasta binds them itself).
pub fn choose_ports(ports: &[PortMapping]) -> Vec<PortMapping> {
    ports
        .iter()
        .map(|p| {
            if p.host_port != 0 {
                return *p;
            }
            let chosen = std::net::TcpListener::bind((p.host_ip, 0))
                .and_then(|l| l.local_addr())
                .map_or(0, |a| a.port());
            PortMapping {
                host_port: chosen,
                ..*p
            }
        })
        .collect()
}
