//! Image references as Docker spells them: `name`, `name:tag`, `name@sha256:…`, with an
//! optional registry host and port, normalised to `docker.io/library/…` like Docker does.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Digest, DigestAlgorithm};

/// The registry a bare name refers to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Docker Hub's old name, read as [`DEFAULT_REGISTRY`].
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// The tag a reference without tag or digest refers to.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;

/// Why a string is not an image reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference {0:?}: empty")]
    Empty(String),
    #[error("invalid reference {reference:?}: repository name must be lowercase")]
    Uppercase { reference: String },
    #[error("invalid reference {reference:?}: bad path component {component:?}")]
    Component {
        reference: String,
        component: String,
    },
    #[error("invalid reference {reference:?}: bad tag {tag:?}")]
    Tag { reference: String, tag: String },
    #[error("invalid reference {reference:?}: bad digest: {reason}")]
    Digest { reference: String, reason: String },
    #[error("invalid reference {reference:?}: bad registry {registry:?}")]
    Registry { reference: String, registry: String },
    #[error("invalid reference {0:?}: name longer than 255 characters")]
    TooLong(String),
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalise `s`. A reference with neither tag nor digest gets `latest`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_bare(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parse without adding the default tag.
    pub fn parse_bare(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty(s.to_string()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::from_str(d).map_err(|e| ReferenceError::Digest {
                    reference: s.to_string(),
                    reason: e.to_string(),
                })?;
                if !matches!(
                    digest.algorithm(),
                    DigestAlgorithm::Sha256 | DigestAlgorithm::Sha384 | DigestAlgorithm::Sha512
                ) {
                    return Err(ReferenceError::Digest {
                        reference: s.to_string(),
                        reason: format!("unsupported algorithm {}", digest.algorithm()),
                    });
                }
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Empty(s.to_string()));
        }
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(ReferenceError::Tag {
                reference: s.to_string(),
                tag: tag.to_string(),
            });
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        // Docker Hub's old name is its name (docker/distribution's reference does the same).
        let registry = if registry == LEGACY_DEFAULT_REGISTRY {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        if !is_valid_registry(&registry) {
            return Err(ReferenceError::Registry {
                reference: s.to_string(),
                registry,
            });
        }
        let path = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                reference: s.to_string(),
            });
        }
        for component in path.split('/') {
            if !is_valid_component(component) {
                return Err(ReferenceError::Component {
                    reference: s.to_string(),
                    component: component.to_string(),
                });
            }
        }
        if registry.len() + 1 + path.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong(s.to_string()));
        }
        Ok(Reference {
            registry,
            repository: path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, fully qualified.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as Docker shows it (`busybox`, `localhost:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// Why this name cannot be given to an image, if it cannot: it would read as an image id.
    /// `sha256:<hex>` parses as repository `sha256` with a hex tag (Docker refuses it as "an
    /// ambiguous tag using digest algorithm as name"), and a 64-digit hexadecimal name is a
    /// whole image id (Docker: "cannot specify 64-byte hexadecimal strings"). Shorter hex
    /// words (`bb`, `cafe`, `deadbeef`) are names like any other: a name is looked up before
    /// an id prefix ([`crate::image::Store::resolve`]).
    pub fn ambiguity(&self) -> Option<String> {
        let familiar = self.familiar_name();
        if familiar == "sha256" {
            return Some(format!(
                "refusing the name {self}: a repository called sha256 reads as an image digest"
            ));
        }
        let last = familiar.rsplit('/').next().unwrap_or(&familiar);
        if last.len() == 64 && last.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(format!(
                "refusing the name {familiar}: a 64-digit hexadecimal name reads as an image id"
            ));
        }
        None
    }

    /// A copy with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// A copy without the digest.
    pub fn without_digest(&self) -> Self {
        Reference {
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

fn is_valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || r.starts_with('[') => (h, Some(p)),
        _ => (r, None),
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            full("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("localhost:5000/a/b:v1"), "localhost:5000/a/b:v1");
        assert_eq!(full("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        assert_eq!(full("ghcr.io/o/r:t"), "ghcr.io/o/r:t");
        let d = "sha256:".to_string() + &"a".repeat(64);
        assert_eq!(
            full(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            full(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
    }

    #[test]
    fn names_that_read_as_ids_are_ambiguous() {
        let hex64 = "a".repeat(64);
        for bad in [
            format!("sha256:{hex64}"),
            hex64.clone(),
            format!("{hex64}:v1"),
            "sha256:v1".into(),
        ] {
            assert!(
                Reference::parse(&bad).unwrap().ambiguity().is_some(),
                "{bad}"
            );
        }
        for good in [
            "cafe:v1",
            "cafe",
            "bb",
            "deadbeef:latest",
            "58454bc9060c",
            "busybox",
            "localhost:5000/cafe",
            "example.com/58454bc9060c",
        ] {
            assert!(
                Reference::parse(good).unwrap().ambiguity().is_none(),
                "{good}"
            );
        }
    }

    #[test]
    fn familiar_names() {
        let r = Reference::parse("docker.io/library/busybox").unwrap();
        assert_eq!(r.familiar_name(), "busybox");
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(r.familiar_name(), "localhost:5000/app");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "a//b",
            "a/../b",
            "-a",
            "busybox@sha256:abc",
            "busybox@sha256:../x",
            "busybox@md5:abc",
            "host:port/app",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
