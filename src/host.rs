//! What this host offers wharf, as `wharf info` reports it: the kernel and its features
//! (cgroup version, overlayfs, seccomp, user namespaces), the network helpers, the engine
//! (wasmtime, its WASI versions and features), and what wharf keeps (containers, images,
//! volumes) under its root.

use serde::Serialize;

use crate::paths::Roots;

/// One look at the host and wharf's root.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostInfo {
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub volumes: usize,
    pub networks: usize,
    pub root_dir: String,
    pub run_dir: String,
    pub os_type: &'static str,
    pub architecture: &'static str,
    pub operating_system: String,
    pub kernel_version: String,
    pub ncpu: usize,
    pub mem_total: Option<u64>,
    /// "1", "2", or "none" (not Linux).
    pub cgroup_version: String,
    /// Native containers on this host: namespaces, overlay, cgroups (Linux, as root).
    pub native: Feature,
    pub overlay: Feature,
    pub seccomp: Feature,
    pub user_namespaces: Feature,
    pub netavark: Feature,
    pub wasmtime: String,
    pub wasi: &'static str,
    pub wasm_features: Vec<&'static str>,
    /// The signature policy pulls and loads obey: its file and what it asks, or that there
    /// is none (every image accepted; digests are verified, authorship is not).
    pub signature_policy: String,
}

/// Whether a feature is there, and what was found (a path, a reason).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Feature {
    pub available: bool,
    pub detail: String,
}

impl Feature {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn yes(detail: impl Into<String>) -> Feature {
        Feature {
            available: true,
            detail: detail.into(),
        }
    }

    fn no(detail: impl Into<String>) -> Feature {
        Feature {
            available: false,
            detail: detail.into(),
        }
    }
}

/// Look at the host and at `roots`.
pub fn probe(roots: &Roots) -> HostInfo {
    use crate::container::Status;
    let containers = crate::lifecycle::containers(roots).list();
    let count = |s: &[Status]| {
        containers
            .iter()
            .filter(|c| s.contains(&c.state.status))
            .count()
    };
    let images = crate::image::Store::open(roots)
        .and_then(|s| s.images())
        .map(|i| i.len())
        .unwrap_or(0);
    let volumes = crate::volume::Volumes::new(roots).list().len();
    let networks = crate::network::Networks::new(roots)
        .list()
        .map(|n| n.len())
        .unwrap_or(0);
    HostInfo {
        containers: containers.len(),
        containers_running: count(&[Status::Running, Status::Restarting]),
        containers_paused: count(&[Status::Paused]),
        containers_stopped: count(&[Status::Created, Status::Exited, Status::Dead]),
        images,
        volumes,
        networks,
        root_dir: roots.data().display().to_string(),
        run_dir: roots.run_state().display().to_string(),
        os_type: std::env::consts::OS,
        architecture: std::env::consts::ARCH,
        operating_system: os_release(),
        kernel_version: kernel_version(),
        ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_total: crate::lifecycle::stats::host_memory(),
        cgroup_version: cgroup_version(),
        native: native(),
        overlay: overlay(),
        seccomp: seccomp(),
        user_namespaces: user_namespaces(),
        netavark: netavark(),
        wasmtime: crate::backend::wasm::wasmtime_version().to_string(),
        wasi: crate::backend::wasm::SUPPORTED_WASI,
        wasm_features: vec![
            "component-model",
            "component-model-async",
            "wasi-http",
            "simd",
            "gc",
            "pooling-allocator (wasi:http servers)",
            "epoch-interruption (--timeout)",
            "fuel (--fuel)",
            "compiled-code cache",
        ],
        signature_policy: signature_policy(roots),
    }
}

fn signature_policy(roots: &Roots) -> String {
    use crate::trust::{Trust, TrustOptions, policy_path};
    let opts = TrustOptions::default();
    match policy_path(&opts, Some(roots.data())) {
        None => {
            "none: every image is accepted (image digests are verified, signatures are not)".into()
        }
        Some(path) => match Trust::load(&opts, Some(roots.data())) {
            Err(e) => format!("{e}"),
            Ok(t) if t.policy.accepts_anything() => format!(
                "{}: accepts every image (insecureAcceptAnything)",
                path.display()
            ),
            Ok(_) => format!("{}: signatures are checked where it asks", path.display()),
        },
    }
}

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                Some(
                    l.strip_prefix("PRETTY_NAME=")?
                        .trim_matches('"')
                        .to_string(),
                )
            })
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

#[cfg(target_os = "linux")]
fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(target_os = "linux")]
fn cgroup_version() -> String {
    if crate::backend::native::cgroups::is_v2() {
        "2".into()
    } else {
        "1".into()
    }
}

#[cfg(target_os = "linux")]
fn native() -> Feature {
    if crate::sys::is_root() {
        Feature::yes("namespaces, overlay root filesystems, cgroups, seccomp")
    } else {
        Feature::no("native containers need root here (wasm runs rootless)")
    }
}

#[cfg(target_os = "linux")]
fn overlay() -> Feature {
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        Feature::yes("overlay in /proc/filesystems")
    } else {
        Feature::no("overlay is not in /proc/filesystems (modprobe overlay)")
    }
}

#[cfg(target_os = "linux")]
fn seccomp() -> Feature {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if status.lines().any(|l| l.starts_with("Seccomp:")) {
        Feature::yes("filters; wharf's default profile is Docker's")
    } else {
        Feature::no("the kernel has no seccomp")
    }
}

#[cfg(target_os = "linux")]
fn user_namespaces() -> Feature {
    match std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        Some(0) => Feature::no("user.max_user_namespaces is 0"),
        Some(n) => Feature::yes(format!("up to {n}")),
        None => Feature::no("the kernel has no user namespaces"),
    }
}

#[cfg(target_os = "linux")]
fn netavark() -> Feature {
    match crate::network::binaries() {
        Ok((n, a)) => Feature::yes(format!("{} and {}", n.display(), a.display())),
        Err(e) => Feature::no(e.to_string()),
    }
}

#[cfg(not(target_os = "linux"))]
fn kernel_version() -> String {
    String::new()
}

#[cfg(not(target_os = "linux"))]
fn cgroup_version() -> String {
    "none".into()
}

#[cfg(not(target_os = "linux"))]
fn native() -> Feature {
    Feature::no("native Linux containers need a Linux host; wasm runs here")
}

#[cfg(not(target_os = "linux"))]
fn overlay() -> Feature {
    Feature::no("not Linux")
}

#[cfg(not(target_os = "linux"))]
fn seccomp() -> Feature {
    Feature::no("not Linux")
}

#[cfg(not(target_os = "linux"))]
fn user_namespaces() -> Feature {
    Feature::no("not Linux")
}

#[cfg(not(target_os = "linux"))]
fn netavark() -> Feature {
    Feature::no("bridge networks need Linux")
}
