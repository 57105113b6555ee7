//! Health checks of detached containers, run by their monitor while the container runs:
//! a native container's test runs inside it (`wharf exec`); a wasm container has nothing
//! to exec into, so its test must name an `http://` URL, which the monitor GETs from the
//! container's address (or its published port).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Containers;
use crate::dispatch::Kind;
use crate::run::options::HealthConfig;

/// Probes kept in the record (as Docker: the last five).
const KEPT: usize = 5;
/// Output kept per probe.
const OUTPUT: usize = 4096;

/// Where a container's health stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        })
    }
}

/// One probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub exit_code: i32,
    pub output: String,
}

/// The health part of a container's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

/// Why a wasm container's health check cannot be probed, if it cannot.
pub fn check_for_wasm(config: &HealthConfig) -> Result<(), String> {
    if config.disabled() || http_url(&config.test).is_some() {
        Ok(())
    } else {
        Err(format!(
            "a wasm container's health check must be an HTTP GET (a test naming an http:// URL, e.g. [\"CMD\", \"wget\", \"-qO-\", \"http://localhost:8080/\"]); {:?} would need a process to run inside it",
            config.test
        ))
    }
}

fn http_url(test: &[String]) -> Option<String> {
    test.iter()
        .flat_map(|a| a.split_whitespace())
        .find(|w| w.starts_with("http://"))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_string())
}

/// Run the container's health checks until `stop` is set (its run ended).
pub fn watch(
    containers: &Containers,
    id: &str,
    exe: &Path,
    root: &Path,
    config: &HealthConfig,
    stop: Arc<AtomicBool>,
) {
    let began = Instant::now();
    let kind = match containers.lock(id) {
        Ok(mut l) => {
            l.record.state.health = Some(Health::default());
            let _ = l.save();
            l.record.kind
        }
        Err(_) => return,
    };
    loop {
        if !sleep(config.interval, &stop) {
            return;
        }
        let start = Utc::now();
        let (exit_code, output) = match kind {
            Kind::Native => exec_probe(exe, root, id, config),
            Kind::Wasm => http_probe(containers, id, config),
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut l) = containers.lock(id) else {
            return;
        };
        let health = l.record.state.health.get_or_insert_with(Health::default);
        health.log.push(Probe {
            start,
            end: Utc::now(),
            exit_code,
            output,
        });
        if health.log.len() > KEPT {
            health.log.remove(0);
        }
        if exit_code == 0 {
            health.status = HealthStatus::Healthy;
            health.failing_streak = 0;
        } else if began.elapsed() >= config.start_period {
            // Failures while it starts (start_period) do not count.
            health.failing_streak += 1;
            if health.failing_streak >= config.retries.max(1) {
                health.status = HealthStatus::Unhealthy;
            }
        }
        let _ = l.save();
    }
}

/// Sleep `d`, watching `stop`; false if stopped.
fn sleep(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
    }
    !stop.load(Ordering::SeqCst)
}

fn truncate(mut s: String) -> String {
    if s.len() > OUTPUT {
        let mut cut = OUTPUT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The test run inside the container (`wharf exec`), ended after the timeout.
fn exec_probe(exe: &Path, root: &Path, id: &str, config: &HealthConfig) -> (i32, String) {
    let mut cmd = Command::new(exe);
    cmd.arg("--root").arg(root).args(["exec", id]);
    match config.test.first().map(String::as_str) {
        Some("CMD-SHELL") => {
            cmd.args(["/bin/sh", "-c"]).arg(config.test[1..].join(" "));
        }
        Some("CMD") => {
            cmd.args(&config.test[1..]);
        }
        _ => {
            cmd.args(["/bin/sh", "-c"]).arg(config.test.join(" "));
        }
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (-1, format!("running the health check: {e}")),
    };
    // Read while it runs: a check that prints more than a pipe holds must not stall.
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut from| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if kept.len() < OUTPUT {
                    kept.extend_from_slice(&buf[..n]);
                }
            }
            kept
        })
    })
    .collect();
    let output = |readers: Vec<std::thread::JoinHandle<Vec<u8>>>| {
        let mut text = String::new();
        for r in readers {
            text.push_str(&String::from_utf8_lossy(&r.join().unwrap_or_default()));
        }
        truncate(text)
    };
    let deadline = Instant::now() + config.timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = output(readers);
                return (
                    -1,
                    format!("health check exceeded its timeout ({:?})", config.timeout),
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return (-1, e.to_string()),
        }
    }
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
    (code, output(readers))
}

/// GET the test's URL, `localhost` meaning the container: its address on its network, or
/// the host port that publishes the URL's port.
fn http_probe(containers: &Containers, id: &str, config: &HealthConfig) -> (i32, String) {
    let Some(url) = http_url(&config.test) else {
        return (-1, "no http:// URL in the health check".into());
    };
    let rest = url.trim_start_matches("http://");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().unwrap_or(80)),
        None => (authority, 80u16),
    };
    let local = matches!(host, "localhost" | "127.0.0.1" | "0.0.0.0" | "[::1]");
    let target: Option<SocketAddr> = if local {
        container_address(containers, id, port)
    } else {
        (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
    };
    let Some(addr) = target else {
        return (-1, format!("{url}: no address to reach the container at"));
    };
    let result = (|| -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, config.timeout)?;
        s.set_read_timeout(Some(config.timeout))?;
        s.set_write_timeout(Some(config.timeout))?;
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: wharf-health\r\n\r\n"
        )?;
        let mut answer = Vec::new();
        s.take(OUTPUT as u64).read_to_end(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    })();
    match result {
        Ok(answer) => {
            let status: u16 = answer
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let code = if (200..400).contains(&status) { 0 } else { 1 };
            (code, truncate(format!("GET {url}: {status}\n{body}")))
        }
        Err(e) => (1, format!("GET {url} ({addr}): {e}")),
    }
}

/// Where `port` of container `id` is reached from the host.
fn container_address(containers: &Containers, id: &str, port: u16) -> Option<SocketAddr> {
    #[cfg(target_os = "linux")]
    if let Some(a) = crate::network::Attachment::read(&containers.dir_of(id))
        && let Some(e) = a.endpoints.first()
    {
        return Some(SocketAddr::new(e.ip.into(), port));
    }
    let l = containers.lock(id).ok()?;
    let ports = &l.record.options.ports;
    match ports.iter().find(|p| p.container_port == port) {
        Some(p) => {
            let ip = if p.host_ip.is_unspecified() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                p.host_ip
            };
            Some(SocketAddr::new(ip, p.host_port))
        }
        // A wasm server without a network of its own listens on the host's loopback
        // (its default, 127.0.0.1:8080).
        None => Some(SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port)),
    }
}
