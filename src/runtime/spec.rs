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
    parse_spec(&bytes, &path)
}

/// A config.json's bytes as a spec. Capability names this build does not know are
/// dropped with a warning, as runc does (a newer kernel's capability must not make a
/// whole spec invalid).
fn parse_spec(bytes: &[u8], path: &Path) -> Result<Spec, RuntimeError> {
    let invalid = |e: serde_json::Error| RuntimeError::Spec {
        path: path.to_path_buf(),
        why: e.to_string(),
    };
    let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
    if let Some(process) = v.get_mut("process") {
        known_capabilities_only(process);
    }
    serde_json::from_value(v).map_err(invalid)
}

/// A process's (config.json's `process`, or `exec --process`'s file) from its bytes,
/// unknown capabilities dropped with a warning.
pub(super) fn parse_process(
    bytes: &[u8],
    path: &Path,
) -> Result<oci_spec::runtime::Process, RuntimeError> {
    let invalid = |e: serde_json::Error| RuntimeError::Spec {
        path: path.to_path_buf(),
        why: e.to_string(),
    };
    let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
    known_capabilities_only(&mut v);
    serde_json::from_value(v).map_err(invalid)
}

/// Removes from a process's capability sets the names that are not capabilities this
/// build knows, warning about each.
fn known_capabilities_only(process: &mut serde_json::Value) {
    let Some(sets) = process
        .get_mut("capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    for (set, names) in sets.iter_mut() {
        let Some(names) = names.as_array_mut() else {
            continue;
        };
        names.retain(|name| {
            let known =
                serde_json::from_value::<oci_spec::runtime::Capability>(name.clone()).is_ok();
            if !known {
                tracing::warn!(capability = %name, set = %set, "unknown capability ignored");
            }
            known
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_capability_is_dropped_not_fatal() {
        let mut v = default_spec();
        v["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_CHOWN", "CAP_TEST"]);
        v["process"]["capabilities"]["ambient"] = serde_json::json!(["CAP_NO_SUCH"]);
        let bytes = serde_json::to_vec(&v).unwrap();
        let spec = parse_spec(&bytes, Path::new("config.json")).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        let bounding: Vec<_> = caps.bounding().clone().unwrap().into_iter().collect();
        assert_eq!(bounding, [oci_spec::runtime::Capability::Chown]);
        assert!(caps.ambient().as_ref().unwrap().is_empty());
        // Anything else wrong is still an error naming the file.
        v["process"]["capabilities"]["bounding"] = serde_json::json!("CAP_CHOWN");
        let err = parse_spec(&serde_json::to_vec(&v).unwrap(), Path::new("c.json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("c.json: not a valid runtime spec"),
            "{err}"
        );
    }
}
