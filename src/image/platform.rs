//! Platforms (`os/arch[/variant]`) and choosing one manifest out of a multi-platform index:
//! the host's `linux/ARCH` for native images, any `wasi*/wasm*` for wasm.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageIndex};

/// A platform as given to `--platform`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// A `--platform` value that is not `os/arch[/variant]`.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64 or wasi/wasm")]
pub struct PlatformError(String);

impl FromStr for PlatformSpec {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformError(s.to_string()));
        }
        Ok(PlatformSpec {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl PlatformSpec {
    /// The host's native platform, in Go's spelling (`linux/amd64`).
    pub fn host() -> Self {
        PlatformSpec {
            os: "linux".into(),
            architecture: go_arch(std::env::consts::ARCH).into(),
            variant: None,
        }
    }

    /// Whether this names a wasm platform.
    pub fn is_wasm(&self) -> bool {
        is_wasm_os(&self.os) || is_wasm_arch(&self.architecture)
    }

    /// Whether a manifest for `os/arch/variant` satisfies this request.
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if self.is_wasm() {
            let os_ok = self.os.eq_ignore_ascii_case("wasi") && is_wasm_os(os)
                || self.os.eq_ignore_ascii_case(os);
            return os_ok && is_wasm_arch(arch);
        }
        self.os == os
            && self.architecture == arch
            && (self.variant.is_none() || self.variant.as_deref() == variant)
    }
}

/// Go's name for a Rust architecture.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// `wasi`, `wasip1`, `wasip2` in any case.
pub fn is_wasm_os(os: &str) -> bool {
    matches!(
        os.to_ascii_lowercase().as_str(),
        "wasi" | "wasip1" | "wasip2"
    )
}

/// `wasm`, `wasm32`, `wasm64`.
pub fn is_wasm_arch(arch: &str) -> bool {
    matches!(
        arch.to_ascii_lowercase().as_str(),
        "wasm" | "wasm32" | "wasm64"
    )
}

/// `os/arch[/variant]` of an index entry, if it says.
pub fn descriptor_platform(d: &Descriptor) -> Option<String> {
    let p = d.platform().as_ref()?;
    let mut s = format!("{}/{}", p.os(), p.architecture());
    if let Some(v) = p.variant().as_ref().filter(|v| !v.is_empty()) {
        s.push('/');
        s.push_str(v);
    }
    Some(s)
}

/// Pick the manifest of `index` to use: the requested platform, or by default the host's
/// native platform, then any wasm platform, then the only entry.
pub fn select<'a>(index: &'a ImageIndex, wanted: Option<&PlatformSpec>) -> Option<&'a Descriptor> {
    let entry_matches = |d: &&Descriptor, spec: &PlatformSpec| {
        d.platform().as_ref().is_some_and(|p| {
            spec.matches(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref(),
            )
        })
    };
    let manifests = index.manifests();
    if let Some(spec) = wanted {
        return manifests.iter().find(|d| entry_matches(d, spec));
    }
    let host = PlatformSpec::host();
    let wasm = PlatformSpec {
        os: "wasi".into(),
        architecture: "wasm".into(),
        variant: None,
    };
    manifests
        .iter()
        .find(|d| entry_matches(d, &host))
        .or_else(|| manifests.iter().find(|d| entry_matches(d, &wasm)))
        .or_else(|| (manifests.len() == 1).then(|| &manifests[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let p: PlatformSpec = "wasi/wasm".parse().unwrap();
        assert!(p.is_wasm());
        assert!(p.matches("wasip1", "wasm", None));
        assert!(p.matches("Wasip1", "wasm32", None));
        assert!(!p.matches("linux", "amd64", None));
        let p: PlatformSpec = "linux/arm64/v8".parse().unwrap();
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(!p.matches("linux", "arm64", Some("v7")));
        assert!("linux".parse::<PlatformSpec>().is_err());
        assert!("a/b/c/d".parse::<PlatformSpec>().is_err());
    }
}
