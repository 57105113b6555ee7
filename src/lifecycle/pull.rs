//! Pulling for a container about to be made: in a child wharf (`EXE pull -q IMAGE`), since
//! pulling starts threads and a native container must be cloned from a single-threaded
//! process.

use super::{LifecycleError, Session};
use crate::image::platform::PlatformSpec;
use crate::trust::TrustOptions;

/// Pull `image` in a child wharf under the signature policy `trust` names: whether it
/// succeeded (the child says why not on stderr).
pub fn pull_in_child(
    session: &Session,
    image: &str,
    platform: Option<&PlatformSpec>,
    trust: &TrustOptions,
) -> Result<bool, LifecycleError> {
    let io = |cause| LifecycleError::Io {
        what: format!("pulling {image}"),
        cause,
    };
    let mut pull = std::process::Command::new(crate::sys::own_exe().map_err(io)?);
    pull.arg("--root")
        .arg(session.roots.data())
        .arg("--log-level")
        .arg(&session.log_level)
        .args(["pull", "-q"]);
    if let Some(p) = platform {
        pull.arg("--platform").arg(p.to_string());
    }
    if let Some(p) = &trust.policy {
        pull.arg("--signature-policy").arg(p);
    }
    if let Some(d) = &trust.registries_d {
        pull.arg("--registries.d").arg(d);
    }
    let status = pull
        .arg(image)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(io)?;
    Ok(status.success())
}
