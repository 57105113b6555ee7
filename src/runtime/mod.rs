//! runc's command-line contract over wharf's backends: what `wharf-runtime` (the binary
//! Docker, Podman and containerd's shims call as they call runc) does, one file a verb.
//!
//! State lives under the runtime's root (`--root`, default `/run/wharf-runtime`), one
//! directory per container (0700) holding `state.json` (rewritten atomically) and, between
//! `create` and `start`, `exec.fifo`. A container's status is derived as runc derives it:
//! its first process gone (or its pid reused: the kernel start time is recorded) means
//! stopped; the FIFO present means created; a frozen cgroup means paused; else running.

mod create;
mod delete;
mod exec;
pub mod guest;
mod hooks;
mod kill;
mod pause;
mod run;
mod spec;
mod start;
mod state;

pub use create::{CreateOptions, create, needs_engine};
pub use delete::delete;
pub use exec::{ExecOptions, exec};
pub use kill::kill;
pub use pause::{events, pause, resume, update};
pub use run::run;
pub use spec::{default_spec, features};
pub use start::start;
pub use state::{list, ps, state};

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::native::NativeError;

/// The runtime-spec version wharf-runtime reports.
pub const OCI_VERSION: &str = "1.2.0";

/// What can go wrong; the messages are runc's where callers parse them (Podman treats
/// "does not exist" as a container that is gone).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container with id \"{0}\" already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.' only")]
    BadId(String),
    #[error("bundle {path}: {why}")]
    Bundle { path: PathBuf, why: String },
    #[error("{path}: not a valid runtime spec: {why}")]
    Spec { path: PathBuf, why: String },
    #[error("container \"{id}\" is {}: {why}", status.oci())]
    BadState {
        id: String,
        status: Status,
        why: &'static str,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Native(#[from] NativeError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub use crate::status::Status;

/// What the runtime keeps of a container (`state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// The first process's kernel start time (a reused pid is not mistaken for it).
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub annotations: std::collections::HashMap<String, String>,
    pub owner: String,
    pub cgroup_dirs: Vec<PathBuf>,
    /// Why the bundle runs WebAssembly in place of a program, if it does.
    #[serde(default)]
    pub wasm: Option<String>,
}

/// The runtime's root directory.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
}

impl Runtime {
    /// `--root`, made absolute; created (0700) when first written to.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Runtime {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    /// The default root: `/run/wharf-runtime`.
    pub fn default_root() -> PathBuf {
        PathBuf::from("/run/wharf-runtime")
    }

    fn dir(&self, id: &str) -> Result<PathBuf, RuntimeError> {
        check_id(id)?;
        Ok(self.root.join(id))
    }

    /// Read container `id`'s state.
    pub fn load(&self, id: &str) -> Result<Saved, RuntimeError> {
        let path = self.dir(id)?.join("state.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(id.to_string()));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Io {
            path,
            source: std::io::Error::other(e.to_string()),
        })
    }

    fn save(&self, s: &Saved) -> Result<(), RuntimeError> {
        let dir = self.dir(&s.id)?;
        let path = dir.join("state.json");
        let bytes = serde_json::to_vec(s).expect("state serialises");
        // Unsynced: the runtime's state lives in /run, and is checked against the process.
        crate::sys::write_atomic(None, &path, &bytes, crate::sys::Durability::Unsynced)
            .map_err(io(&path))
    }

    /// The status of a container from its processes, as runc derives it: its first
    /// process alive (the same pid and start time), waiting on the exec FIFO, frozen.
    pub fn status(&self, s: &Saved) -> Status {
        let alive = s.pid > 0 && crate::sys::process_start_time(s.pid) == Some(s.start_time);
        let waiting = alive && self.root.join(&s.id).join("exec.fifo").exists();
        let frozen = alive
            && !waiting
            && crate::backend::native::cgroups::Cgroup::from_dirs(s.cgroup_dirs.clone())
                .is_frozen();
        Status::Running.observed(alive, waiting, frozen)
    }

    /// Every container id under the root.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| check_id(id).is_ok() && self.root.join(id).join("state.json").exists())
            .collect();
        ids.sort();
        ids
    }
}

/// runc's rule for ids: `^[\w+-\.]+$`, never `.` or `..`.
pub fn check_id(id: &str) -> Result<(), RuntimeError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::BadId(id.to_string()))
    }
}

/// The runtime-spec state document.
pub fn state_json(s: &Saved, status: Status) -> serde_json::Value {
    let mut v = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": s.id,
        "pid": if status.oci() == "stopped" { 0 } else { s.pid },
        "status": status.oci(),
        "bundle": s.bundle,
        "rootfs": s.rootfs,
        "created": s.created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "owner": s.owner,
    });
    if !s.annotations.is_empty() {
        v["annotations"] = serde_json::json!(s.annotations);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc() {
        for good in ["a", "web-1", "x_y.z+1", &"a".repeat(64)] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
