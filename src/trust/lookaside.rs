//! Where signatures live, as containers-registries.d(5) says: YAML files in a
//! `registries.d` directory map registry scopes to lookaside storage (a `file://` or
//! `http(s)://` base under which a signature of `host/repo@sha256:HEX` is
//! `BASE/repo@sha256=HEX/signature-N`, N from 1) and say whether sigstore signatures are
//! attached to images in the registry (`use-sigstore-attachments`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::image::Reference;

/// The default lookaside storage when no file names one (containers/image's, for root).
pub const DEFAULT_LOOKASIDE: &str = "file:///var/lib/containers/sigstore";

/// The most signatures read for one image, and the most bytes of one (containers/image's
/// limits: 128 signatures, 4 MiB).
const MAX_SIGNATURES: usize = 128;
pub const MAX_SIGNATURE_BYTES: u64 = 4 << 20;

/// The merged contents of a registries.d directory.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The directory read, for messages.
    pub dir: Option<PathBuf>,
    default: Option<Namespace>,
    docker: BTreeMap<String, Namespace>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Namespace {
    lookaside: Option<String>,
    #[serde(rename = "lookaside-staging")]
    lookaside_staging: Option<String>,
    /// The older names of the two above.
    sigstore: Option<String>,
    #[serde(rename = "sigstore-staging")]
    sigstore_staging: Option<String>,
    #[serde(rename = "use-sigstore-attachments")]
    use_sigstore_attachments: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(rename = "default-docker")]
    default_docker: Option<Namespace>,
    docker: Option<BTreeMap<String, Namespace>>,
}

impl Namespace {
    /// containers/image's signatureTopLevel: for writing the staging URL (new name, then
    /// old), then the URL (new name, then old); an empty value counts as unset.
    fn top_level(&self, write: bool) -> Option<&str> {
        fn set(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        let staged = if write {
            set(&self.lookaside_staging).or(set(&self.sigstore_staging))
        } else {
            None
        };
        staged.or(set(&self.lookaside)).or(set(&self.sigstore))
    }
}

impl Config {
    /// Read `dir` (`--registries.d`), else `$HOME/.config/containers/registries.d` if it
    /// exists, else `/etc/containers/registries.d`; a directory that does not exist is an
    /// empty configuration.
    pub fn load(dir: Option<&Path>) -> Result<Config, String> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => default_dir(),
        };
        let mut config = Config {
            dir: Some(dir.clone()),
            ..Config::default()
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(config),
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let file: File =
                serde_yaml::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some(d) = file.default_docker {
                if config.default.is_some() {
                    return Err(format!(
                        "{}: default-docker is defined in more than one file of {}",
                        path.display(),
                        dir.display()
                    ));
                }
                config.default = Some(d);
            }
            for (scope, ns) in file.docker.unwrap_or_default() {
                if config.docker.insert(scope.clone(), ns).is_some() {
                    return Err(format!(
                        "{}: docker {scope:?} is defined in more than one file of {}",
                        path.display(),
                        dir.display()
                    ));
                }
            }
        }
        Ok(config)
    }

    /// The entries for `r`, most specific first, then `default-docker`.
    fn scopes<'a>(&'a self, r: &Reference) -> impl Iterator<Item = &'a Namespace> + 'a {
        let named: Vec<&Namespace> = super::policy::docker_scopes(r)
            .iter()
            .filter_map(|s| self.docker.get(s))
            .collect();
        named.into_iter().chain(self.default.iter())
    }

    /// The lookaside base URL for `r` (for writing: `lookaside-staging` first); none
    /// configured: containers/image's default, `/var/lib/containers/sigstore` for root,
    /// `~/.local/share/containers/sigstore` for others.
    pub fn lookaside(&self, r: &Reference, write: bool) -> String {
        match self.scopes(r).find_map(|ns| ns.top_level(write)) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => default_lookaside(),
        }
    }

    /// Whether sigstore signatures are read from (and written to) the registry as
    /// attachments of `r`'s repository.
    pub fn use_sigstore_attachments(&self, r: &Reference) -> bool {
        self.scopes(r)
            .find_map(|ns| ns.use_sigstore_attachments)
            .unwrap_or(false)
    }
}

fn default_lookaside() -> String {
    #[cfg(unix)]
    if !crate::sys::is_root()
        && let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
    {
        let dir = PathBuf::from(home).join(".local/share/containers/sigstore");
        return format!("file://{}", dir.display());
    }
    DEFAULT_LOOKASIDE.to_string()
}

fn default_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let user = PathBuf::from(home).join(".config/containers/registries.d");
        if user.is_dir() {
            return user;
        }
    }
    PathBuf::from("/etc/containers/registries.d")
}

/// The URL of signature `n` (from 1) of manifest `digest` of `r`'s repository under `base`.
pub fn signature_url(base: &str, r: &Reference, digest: &str, n: usize) -> Result<String, String> {
    let (algo, hex) = digest
        .split_once(':')
        .ok_or(format!("{digest:?} is not a digest"))?;
    Ok(format!(
        "{base}/{}@{algo}={hex}/signature-{n}",
        r.repository()
    ))
}

/// A `file://` URL's path (`file:///p` and `file://host/p` alike: the URL's path).
pub fn file_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("file://")?;
    Some(PathBuf::from(match rest.find('/') {
        Some(i) => &rest[i..],
        None => "/",
    }))
}

/// Every signature of `digest` for `r` in lookaside storage `base`: signature-1,
/// signature-2, ... until one is missing.
pub async fn read(
    http: &reqwest::Client,
    base: &str,
    r: &Reference,
    digest: &str,
) -> Result<Vec<Vec<u8>>, String> {
    if !base.starts_with("file://") && !base.starts_with("http://") && !base.starts_with("https://")
    {
        return Err(format!(
            "lookaside storage {base:?}: only file://, http:// and https:// are read"
        ));
    }
    let mut found = Vec::new();
    for n in 1.. {
        if n > MAX_SIGNATURES {
            return Err(format!(
                "more than {MAX_SIGNATURES} signatures in {base} for {digest}"
            ));
        }
        let url = signature_url(base, r, digest, n)?;
        let got = match file_path(&url) {
            Some(path) => read_file(&path)?,
            None => read_http(http, &url).await?,
        };
        match got {
            Some(sig) => found.push(sig),
            None => break,
        }
    }
    Ok(found)
}

fn read_file(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut buf = Vec::new();
    f.take(MAX_SIGNATURE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(format!(
            "{}: a signature over {MAX_SIGNATURE_BYTES} bytes",
            path.display()
        ));
    }
    Ok(Some(buf))
}

async fn read_http(http: &reqwest::Client, url: &str) -> Result<Option<Vec<u8>>, String> {
    let mut resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    match resp.status().as_u16() {
        200 => {}
        // containers/image reads 404 as the end of the list, and so does wharf.
        404 => return Ok(None),
        code => return Err(format!("{url}: HTTP {code}")),
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 > MAX_SIGNATURE_BYTES {
            return Err(format!(
                "{url}: a signature over {MAX_SIGNATURE_BYTES} bytes"
            ));
        }
    }
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_entry_with_a_url_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "default-docker:\n  lookaside: file:///sigs\ndocker:\n  reg.io/team:\n    lookaside: https://sigs.example.com/team\n    lookaside-staging: file:///staging\n  reg.io/team/app:\n    use-sigstore-attachments: true\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.yml"), "not: [yaml").unwrap();
        let c = Config::load(Some(dir.path())).unwrap();
        let app = Reference::parse("reg.io/team/app:1").unwrap();
        assert_eq!(c.lookaside(&app, false), "https://sigs.example.com/team");
        assert_eq!(c.lookaside(&app, true), "file:///staging");
        assert!(c.use_sigstore_attachments(&app));
        let other = Reference::parse("quay.io/x").unwrap();
        assert_eq!(c.lookaside(&other, false), "file:///sigs");
        assert!(!c.use_sigstore_attachments(&other));
        assert_eq!(
            signature_url("file:///sigs", &app, "sha256:ab", 2).unwrap(),
            "file:///sigs/team/app@sha256=ab/signature-2"
        );
        // The same scope in two files is an error, as in containers/image.
        std::fs::write(
            dir.path().join("b.yaml"),
            "docker:\n  reg.io/team:\n    lookaside: file:///other\n",
        )
        .unwrap();
        let e = Config::load(Some(dir.path())).unwrap_err();
        assert!(e.contains("more than one file"), "{e}");
        let none = Config::load(Some(&dir.path().join("missing"))).unwrap();
        assert_eq!(none.lookaside(&app, false), DEFAULT_LOOKASIDE);
    }
}
