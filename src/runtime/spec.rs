//! `spec` and `features`: what a bundle looks like, and what this runtime supports; a
//! bundle's config.json read.

use std::fs;
use std::path::Path;

use oci_spec::runtime::Spec;

use super::{OCI_VERSION, RuntimeError, io};

/// Largest config.json read (runc has no cap; a bundle is input).
const MAX_CONFIG: u64 = 16 << 20;

/// `spec`: a starting config.json (runc's defaults: `sh` in a terminal, the usual
/// namespaces, mounts and capabilities).
pub fn default_spec() -> serde_json::Value {
    let mut v = serde_json::to_value(oci_spec::runtime::Spec::default()).expect("spec serialises");
    v["ociVersion"] = serde_json::json!(OCI_VERSION);
    v
}

/// `features`: the runtime-spec features document.
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "nosuid", "nodev", "noexec", "bind", "rbind", "relatime",
            "noatime", "strictatime", "private", "rprivate", "slave", "rslave", "shared", "rshared"],
        "linux": {
            "namespaces": ["mount", "pid", "network", "ipc", "uts", "cgroup"],
            "capabilities": crate::bundle::security::ALL_CAPABILITIES
                .iter()
                .map(|c| serde_json::to_value(c).expect("capability serialises"))
                .collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": true, "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO",
                "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                "SCMP_ACT_TRAP", "SCMP_ACT_TRACE"]},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {"io.github.wharf.runtime": "native and wasm bundles (the wasm engine is the wharf binary installed beside wharf-runtime)"},
    })
}

/// Read `bundle/config.json`, with errors that say what is wrong.
pub fn read_spec(bundle: &Path) -> Result<Spec, RuntimeError> {
    let meta = fs::metadata(bundle).map_err(|e| RuntimeError::Bundle {
        path: bundle.to_path_buf(),
        why: e.to_string(),
    })?;
    if !meta.is_dir() {
        return Err(RuntimeError::Bundle {
            path: bundle.to_path_buf(),
            why: "not a directory".into(),
        });
    }
    let path = bundle.join("config.json");
    let file = fs::File::open(&path).map_err(|e| RuntimeError::Spec {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CONFIG + 1), &mut bytes)
        .map_err(io(&path))?;
    if bytes.len() as u64 > MAX_CONFIG {
        return Err(RuntimeError::Spec {
            path,
            why: format!("larger than {MAX_CONFIG} bytes"),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Spec {
        path,
        why: e.to_string(),
    })
}
