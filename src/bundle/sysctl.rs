//! Which kernel parameters (`linux.sysctl`) a container may set: only those that live in a
//! namespace the container has of its own, as runc decides. A sysctl outside one
//! (`kernel.core_pattern`, `kernel.printk_ratelimit_burst`, `vm.*`) is the host's: writing
//! it from a container changes the host, so it is refused, never written.

use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Why a spec's sysctl may not be set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SysctlError {
    #[error("sysctl {0:?} is not a sysctl name")]
    BadName(String),
    #[error("sysctl {0:?} belongs to the IPC namespace, and the container shares the host's")]
    HostIpc(String),
    #[error("sysctl {0:?} belongs to the network namespace, and the container shares the host's")]
    HostNetwork(String),
    #[error("sysctl {0:?} conflicts with the spec's hostname field: set that instead")]
    Hostname(String),
    #[error(
        "sysctl {0:?} is not in a namespace of the container's own: setting it would change the host"
    )]
    NotNamespaced(String),
}

/// The IPC namespace's sysctls (besides `fs.mqueue.*`), runc's list.
const IPC: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Check every sysctl of `spec` (keys as `a.b.c` or `a/b/c`). A network namespace given
/// by path counts as the host's when it is this process's own.
pub fn check(spec: &Spec) -> Result<(), SysctlError> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let has = |t: LinuxNamespaceType| namespaces.iter().find(|n| n.typ() == t);
    let host_network = match has(LinuxNamespaceType::Network) {
        None => true,
        Some(n) => n.path().as_deref().is_some_and(is_own_network_namespace),
    };
    for key in sysctls.keys() {
        check_one(
            key,
            has(LinuxNamespaceType::Ipc).is_some(),
            host_network,
            has(LinuxNamespaceType::Uts).is_some(),
        )?;
    }
    Ok(())
}

fn check_one(key: &str, ipc: bool, host_network: bool, uts: bool) -> Result<(), SysctlError> {
    let name = key.replace('/', ".");
    let bad = name.is_empty()
        || name.split('.').any(|c| c.is_empty() || c == "..")
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if bad {
        return Err(SysctlError::BadName(key.to_string()));
    }
    if IPC.contains(&name.as_str()) || name.starts_with("fs.mqueue.") {
        return if ipc {
            Ok(())
        } else {
            Err(SysctlError::HostIpc(name))
        };
    }
    if name.starts_with("net.") {
        return if host_network {
            Err(SysctlError::HostNetwork(name))
        } else {
            Ok(())
        };
    }
    match name.as_str() {
        "kernel.domainname" if uts => Ok(()),
        "kernel.hostname" if uts => Err(SysctlError::Hostname(name)),
        _ => Err(SysctlError::NotNamespaced(name)),
    }
}

/// Whether the network namespace at `path` is this process's (the host's, to a runtime).
fn is_own_network_namespace(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let same =
            |a: &std::fs::Metadata, b: &std::fs::Metadata| a.dev() == b.dev() && a.ino() == b.ino();
        match (
            std::fs::metadata(path),
            std::fs::metadata("/proc/self/ns/net"),
        ) {
            (Ok(theirs), Ok(ours)) => same(&theirs, &ours),
            // Not there: the container cannot join it either; creating it fails later
            // with the path named.
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaced_sysctls_pass() {
        // IPC: with a private IPC namespace only.
        assert_eq!(check_one("kernel.shmmax", true, true, true), Ok(()));
        assert_eq!(check_one("fs.mqueue.msg_max", true, true, true), Ok(()));
        assert!(matches!(
            check_one("kernel.sem", false, false, true),
            Err(SysctlError::HostIpc(_))
        ));
        // net.*: with a network namespace that is not the host's.
        assert_eq!(check_one("net.ipv4.ip_forward", true, false, true), Ok(()));
        assert_eq!(check_one("net/ipv4/ip_forward", true, false, true), Ok(()));
        assert!(matches!(
            check_one("net.ipv4.ip_forward", true, true, true),
            Err(SysctlError::HostNetwork(_))
        ));
        // The host's, whatever the namespaces.
        for key in [
            "kernel.core_pattern",
            "kernel.printk_ratelimit_burst",
            "vm.overcommit_memory",
            "fs.file-max",
            "kernel.shm",
        ] {
            assert!(
                matches!(
                    check_one(key, true, false, true),
                    Err(SysctlError::NotNamespaced(_))
                ),
                "{key}"
            );
        }
        assert_eq!(check_one("kernel.domainname", true, false, true), Ok(()));
        assert!(matches!(
            check_one("kernel.hostname", true, false, true),
            Err(SysctlError::Hostname(_))
        ));
        for key in ["", "net..x", "net/../x", "net.ipv4.a b", "kernel.x\0"] {
            assert!(
                matches!(
                    check_one(key, true, false, true),
                    Err(SysctlError::BadName(_))
                ),
                "{key:?}"
            );
        }
    }

    #[test]
    fn a_joined_network_namespace_that_is_ours_is_the_hosts() {
        assert!(is_own_network_namespace(Path::new("/proc/self/ns/net")));
        assert!(!is_own_network_namespace(Path::new("/nonexistent")));
    }
}
