//! Where wharf keeps its state: the image store, unpacked layers and (later) containers.
//!
//! Root uses `/var/lib/wharf`; other users `$XDG_DATA_HOME/wharf` (or `~/.local/share/wharf`);
//! Windows `%LOCALAPPDATA%\wharf`. `--root` / `WHARF_ROOT` override, so every test gets its own.

use std::path::{Path, PathBuf};

/// The directories of one wharf installation.
#[derive(Debug, Clone)]
pub struct Roots {
    data: PathBuf,
}

impl Roots {
    /// Use `dir` as the root of all state, made absolute once, here: a native container
    /// mounts its overlay after changing directory, and detached containers' helpers start
    /// elsewhere, so a relative root would name another place (or nothing) for them.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let data = std::path::absolute(&dir).unwrap_or(dir);
        Roots { data }
    }

    /// The default root for this user on this host.
    pub fn default_for_host() -> Self {
        Roots::new(default_data_dir())
    }

    /// The root directory itself.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// Per-container state (native containers' upper directories, /etc files).
    pub fn containers(&self) -> PathBuf {
        self.data.join("containers")
    }

    /// Unpacked layers, one directory per diff id (shared by every container).
    pub fn layers(&self) -> PathBuf {
        self.data.join("layers")
    }

    /// Public keys whose signed precompiled artifacts `load --precompile` trusts.
    pub fn trusted_keys(&self) -> PathBuf {
        self.data().join("trusted-keys")
    }

    /// wharf's cache of compiled wasm (never shared with images).
    pub fn wasm_cache(&self) -> PathBuf {
        self.data.join("cache").join("wasm")
    }

    /// wharf's cache of compiled seccomp filters (BPF), keyed by the profile.
    pub fn seccomp_cache(&self) -> PathBuf {
        self.data.join("cache").join("seccomp")
    }

    /// State that lasts until the next boot, as what it describes (network namespaces,
    /// netavark's name server files): under `/run/wharf` as root (a tmpfs a reboot clears),
    /// `$XDG_RUNTIME_DIR/wharf` otherwise, else `ROOT/run`; one directory per root.
    pub fn run_state(&self) -> PathBuf {
        use sha2::Digest;
        let tag = hex::encode(&sha2::Sha256::digest(self.data.to_string_lossy().as_bytes())[..8]);
        #[cfg(unix)]
        {
            if crate::sys::is_root() {
                return PathBuf::from("/run/wharf").join(tag);
            }
            if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
                return PathBuf::from(dir).join("wharf").join(tag);
            }
        }
        let _ = tag;
        self.data.join("run")
    }

    /// The image store (an OCI image layout plus wharf's own bookkeeping next to it).
    pub fn store(&self) -> PathBuf {
        self.data.join("store")
    }
}

#[cfg(windows)]
fn default_data_dir() -> PathBuf {
    match std::env::var_os("LOCALAPPDATA") {
        Some(dir) => PathBuf::from(dir).join("wharf"),
        None => PathBuf::from(r"C:\ProgramData\wharf"),
    }
}

#[cfg(not(windows))]
fn default_data_dir() -> PathBuf {
    if crate::sys::is_root() {
        return PathBuf::from("/var/lib/wharf");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("wharf");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/wharf"),
        None => PathBuf::from("/tmp/wharf"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_relative_root_is_made_absolute() {
        let r = super::Roots::new("r1");
        assert!(r.data().is_absolute());
        assert_eq!(r.data(), std::env::current_dir().unwrap().join("r1"));
        assert!(r.store().is_absolute() && r.containers().is_absolute());
    }
}
