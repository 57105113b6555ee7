//! `spec` and `features`: what a bundle looks like, and what this runtime supports.

use super::OCI_VERSION;

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
