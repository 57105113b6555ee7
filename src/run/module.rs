//! The wasm module a run needs, known by its digest before its bytes are read.
//!
//! A cached start must not grow with the module's size, so the module is an open handle plus
//! a digest (the compile cache's key) and its kind, and its bytes are read only when the
//! cache has no compiled code for it:
//! - a store blob is named by the digest the store verified when it was written;
//! - a file given by path (or an entrypoint inside an image's files) is looked up in an
//!   index of file identities (device, inode, size, modification and change times) kept in
//!   wharf's cache: when the file is the one hashed before, its recorded digest is used,
//!   otherwise it is read and hashed now and the index updated. A changed file changes its
//!   change time, which no user can set back, so a stale digest is never trusted.
//!
//! When the bytes are read (to compile), they are hashed again and must match the digest.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

use crate::image::package::{self, MAX_WASM_BYTES, PackageError, WasmKind};
use crate::image::{blob, store};

/// Why a module's bytes could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} changed while wharf was starting it (it hashed to {expected}, now to {actual}); run it again"
    )]
    Changed {
        path: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Package(#[from] PackageError),
}

/// A WebAssembly module or component to run, with where it came from.
#[derive(Debug, Clone)]
pub struct WasmModule {
    /// sha256 of the bytes as stored (binary, or text for a `.wat`): the cache key.
    pub digest: Digest,
    pub kind: WasmKind,
    /// The export to call instead of `_start` (`module.wasm#func`).
    pub export: Option<String>,
    /// The first bytes (magic and version), for dispatch.
    pub head: Vec<u8>,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// Already in memory.
    Bytes(Arc<Vec<u8>>),
    /// An open file whose content hashes to `digest`.
    File { file: Arc<File>, name: String },
}

/// One entry of the file-identity index.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Known {
    identity: Vec<i64>,
    digest: String,
    kind: WasmKind,
}

impl WasmModule {
    /// A module from bytes in memory (`.wat` text is translated when compiled).
    pub fn from_bytes(bytes: Vec<u8>, export: Option<String>) -> Result<Self, PackageError> {
        let (kind, head) = kind_of(&bytes)?;
        Ok(WasmModule {
            digest: blob::digest_of(&bytes),
            kind,
            export,
            head,
            source: Source::Bytes(Arc::new(bytes)),
        })
    }

    /// The bytes to compile: wasm binary (text translated), checked against the digest.
    pub fn wasm_bytes(&self) -> Result<Cow<'_, [u8]>, ModuleError> {
        let raw: Cow<'_, [u8]> = match &self.source {
            Source::Bytes(b) => Cow::Borrowed(b.as_slice()),
            Source::File { file, name } => {
                let bytes = read_all(file, name)?;
                let actual = blob::digest_of(&bytes);
                if actual != self.digest {
                    return Err(ModuleError::Changed {
                        path: name.clone(),
                        expected: self.digest.to_string(),
                        actual: actual.to_string(),
                    });
                }
                Cow::Owned(bytes)
            }
        };
        if package::is_wat(&raw) {
            let wasm = wat::parse_bytes(&raw)
                .map_err(|e| PackageError::Invalid(e.to_string()))?
                .into_owned();
            return Ok(Cow::Owned(wasm));
        }
        Ok(raw)
    }
}

/// A file that may hold a module, opened and identified but not read: its first bytes tell
/// dispatch what it is before anything else is decided.
#[derive(Debug)]
pub struct Opened {
    file: File,
    name: String,
    head: Vec<u8>,
    how: How,
}

#[derive(Debug)]
enum How {
    /// A store blob: its digest is known.
    Blob { digest: Digest },
    /// A file: its digest from the identity index, or by hashing it.
    File {
        identity: Vec<i64>,
        entry: Option<PathBuf>,
    },
}

impl Opened {
    /// A store blob of `size` bytes named by `digest`.
    pub fn blob(path: &Path, digest: &Digest, size: u64) -> Result<Self, ModuleError> {
        let name = digest.to_string();
        if size > MAX_WASM_BYTES as u64 {
            return Err(PackageError::TooLarge {
                size: size as usize,
                cap: MAX_WASM_BYTES,
            }
            .into());
        }
        let file = File::open(path).map_err(|source| ModuleError::Io {
            path: name.clone(),
            source,
        })?;
        let head = read_head(&file, &name)?;
        Ok(Opened {
            file,
            name,
            head,
            how: How::Blob {
                digest: digest.clone(),
            },
        })
    }

    /// An open file; `locator` names it in the identity index kept in `index_dir` (no
    /// index: the file is hashed when made into a module).
    pub fn file(
        file: File,
        name: &str,
        locator: &str,
        index_dir: Option<&Path>,
    ) -> Result<Self, ModuleError> {
        let meta = file.metadata().map_err(|source| ModuleError::Io {
            path: name.to_string(),
            source,
        })?;
        if meta.len() > MAX_WASM_BYTES as u64 {
            return Err(PackageError::TooLarge {
                size: meta.len() as usize,
                cap: MAX_WASM_BYTES,
            }
            .into());
        }
        let identity = crate::sys::file_identity(&meta);
        // No identity (Windows): no index, the file is hashed every time.
        let entry = index_dir
            .filter(|_| !identity.is_empty())
            .map(|d| d.join(format!("{}.json", hex::encode(sha(locator)))));
        let head = read_head(&file, name)?;
        Ok(Opened {
            file,
            name: name.to_string(),
            head,
            how: How::File { identity, entry },
        })
    }

    /// The file's first bytes (up to 8: magic and version).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Whether the file looks like wasm, binary or text.
    pub fn looks_like_wasm(&self) -> bool {
        self.head.starts_with(b"\0asm") || package::is_wat(&self.head)
    }

    /// The module, reading the bytes only when its digest is not already known.
    pub fn into_module(self, export: Option<String>) -> Result<WasmModule, ModuleError> {
        if !self.head.starts_with(b"\0asm") {
            // Text (or not wasm at all): small in practice; translated from memory.
            return Ok(WasmModule::from_bytes(
                read_all(&self.file, &self.name)?,
                export,
            )?);
        }
        let (kind, _) = kind_of(&self.head)?;
        let digest = match self.how {
            How::Blob { digest } => digest,
            How::File { identity, entry } => {
                let known: Option<Known> = entry
                    .as_ref()
                    .and_then(|p| std::fs::read(p).ok())
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .filter(|k: &Known| k.identity == identity);
                match known.and_then(|k| k.digest.parse::<Digest>().ok()) {
                    Some(d) => d,
                    None => {
                        let bytes = read_all(&self.file, &self.name)?;
                        let module = WasmModule::from_bytes(bytes, export)?;
                        // The identity was taken before the read: if the file changed
                        // meanwhile, the next run sees another identity and hashes again.
                        if let Some(entry) = entry {
                            let known = Known {
                                identity,
                                digest: module.digest.to_string(),
                                kind: module.kind,
                            };
                            if let Err(e) = remember(&entry, &known) {
                                tracing::debug!(error = %e, "could not record the module's identity");
                            }
                        }
                        return Ok(module);
                    }
                }
            }
        };
        Ok(WasmModule {
            digest,
            kind,
            export,
            head: self.head,
            source: Source::File {
                file: Arc::new(self.file),
                name: self.name,
            },
        })
    }
}

fn sha(s: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// The kind, and the first bytes of the binary (text translated).
fn kind_of(bytes: &[u8]) -> Result<(WasmKind, Vec<u8>), PackageError> {
    if package::is_wat(bytes) {
        let wasm = wat::parse_bytes(bytes).map_err(|e| PackageError::Invalid(e.to_string()))?;
        let kind = WasmKind::detect(&wasm)
            .ok_or_else(|| PackageError::NotWasm("the text does not make a module".into()))?;
        return Ok((kind, wasm.iter().take(8).copied().collect()));
    }
    let kind = WasmKind::detect(bytes)
        .ok_or_else(|| PackageError::NotWasm("no \\0asm magic with a known version".into()))?;
    Ok((kind, bytes.iter().take(8).copied().collect()))
}

/// The first 8 bytes (fewer for a shorter file).
fn read_head(file: &File, name: &str) -> Result<Vec<u8>, ModuleError> {
    let mut head = Vec::with_capacity(8);
    read_at(file, 0, 8, &mut head).map_err(|source| ModuleError::Io {
        path: name.to_string(),
        source,
    })?;
    Ok(head)
}

/// The whole file, at most `MAX_WASM_BYTES`.
fn read_all(file: &File, name: &str) -> Result<Vec<u8>, ModuleError> {
    let mut bytes = Vec::new();
    read_at(file, 0, MAX_WASM_BYTES as u64 + 1, &mut bytes).map_err(|source| ModuleError::Io {
        path: name.to_string(),
        source,
    })?;
    if bytes.len() > MAX_WASM_BYTES {
        return Err(PackageError::TooLarge {
            size: bytes.len(),
            cap: MAX_WASM_BYTES,
        }
        .into());
    }
    Ok(bytes)
}

/// Read up to `len` bytes from `offset` without moving a shared offset (the handle may be
/// read again later).
fn read_at(file: &File, offset: u64, len: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut f = file.try_clone()?;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset))?;
    f.take(len).read_to_end(out)?;
    Ok(())
}

fn remember(entry: &Path, known: &Known) -> Result<(), Box<dyn std::error::Error>> {
    let dir = entry.parent().expect("an index entry has a directory");
    std::fs::create_dir_all(dir)?;
    store::write_atomic(dir, entry, &serde_json::to_vec(known)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = r#"(module (func (export "_start")))"#;

    fn wasm(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    /// The module in `path`, its digest from the identity index in `index`.
    fn open(path: &Path, locator: &str, index: &Path) -> WasmModule {
        Opened::file(File::open(path).unwrap(), "m.wasm", locator, Some(index))
            .and_then(|o| o.into_module(None))
            .unwrap()
    }

    #[test]
    fn a_changed_file_is_hashed_again_never_taken_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("index");
        let path = dir.path().join("m.wasm");
        std::fs::write(&path, wasm(HELLO)).unwrap();
        let open = |p: &Path| open(p, &p.display().to_string(), &index);
        let first = open(&path);
        assert_eq!(first.digest, blob::digest_of(&wasm(HELLO)));
        // Unchanged: the index answers (same digest), the bytes check out when read.
        let again = open(&path);
        assert_eq!(again.digest, first.digest);
        assert_eq!(&*again.wasm_bytes().unwrap(), &wasm(HELLO)[..]);
        // Rewritten with other content of the same size and the old mtime: the change time
        // moved, so the file is hashed again.
        let other = wasm(r#"(module (func (export "_start") nop))"#);
        let old_mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, &other).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old_mtime)
            .unwrap();
        let changed = open(&path);
        assert_eq!(changed.digest, blob::digest_of(&other));
        // A file that changes between the look-up and the read is refused, not compiled.
        let stale = open(&path);
        std::fs::write(&path, wasm(HELLO)).unwrap();
        let err = stale.wasm_bytes().unwrap_err();
        assert!(matches!(err, ModuleError::Changed { .. }), "{err}");
    }

    #[test]
    fn a_wrong_index_entry_is_caught_when_the_bytes_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("index");
        let path = dir.path().join("m.wasm");
        std::fs::write(&path, wasm(HELLO)).unwrap();
        let locator = path.display().to_string();
        let m = open(&path, &locator, &index);
        // Point the entry at another digest: the bytes, once read, disagree.
        let entry = index.join(format!("{}.json", hex::encode(sha(&locator))));
        let mut known: Known = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
        known.digest = blob::digest_of(b"something else").to_string();
        std::fs::write(&entry, serde_json::to_vec(&known).unwrap()).unwrap();
        let lied = open(&path, &locator, &index);
        assert_ne!(lied.digest, m.digest);
        assert!(matches!(
            lied.wasm_bytes(),
            Err(ModuleError::Changed { .. })
        ));
    }
}
