//! Precompiled code for another host, as wharf's own signed cache entry.
//!
//! Compiled code is machine code: deserialising it is running it. So an image never carries
//! any (see `engine`), and an edge box that should not compile (slow, or no memory to spare)
//! gets its code only this way: a build box compiles the module for the edge box's target
//! (`wharf package --precompile aarch64-unknown-linux-musl --sign-key build.pem`) and
//! signs a statement binding the wasmtime version, the target, the engine variant, the
//! module's digest and the compiled code's digest. The edge box (`wharf load --precompile
//! --precompiled DIR --trust-key build.pub.pem`) takes a file only when a key it trusts
//! signed it, for exactly the module it loaded, this wasmtime and this target; wasmtime then
//! checks the code fits this engine, and it becomes an ordinary cache entry. Anything else
//! is refused with the reason, and the module is compiled there instead.
//!
//! The file: the line `wharf-precompiled v1`, one line of JSON ([`Header`]), then the
//! compiled code. Keys are ed25519, in the PEM files `openssl genpkey -algorithm ed25519`
//! and `openssl pkey -pubout` write.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;

use super::engine::{self, Cache, Compiled, EngineOptions};
use super::{WasmError, http};
use crate::image::blob::digest_of;
use crate::image::package::WasmKind;
use crate::run::WasmModule;

const MAGIC: &[u8] = b"wharf-precompiled v1\n";
/// Longest header line read.
const MAX_HEADER: usize = 64 << 10;
/// Largest compiled artifact accepted (wasm itself is capped at 256 MiB; code is larger).
const MAX_ARTIFACT: u64 = 1 << 30;
/// The file name suffix `package` writes and `load` looks for in a directory.
pub const SUFFIX: &str = ".wharf-cwasm";

/// Why a signed artifact was not made or not taken.
#[derive(Debug, thiserror::Error)]
pub enum SignedError {
    #[error("{0}: not a wharf precompiled artifact (no `wharf-precompiled v1` line)")]
    NotArtifact(String),
    #[error("{path}: malformed header: {reason}")]
    Header { path: String, reason: String },
    #[error("{path}: signed by key {key}, which this host does not trust (--trust-key)")]
    Untrusted { path: String, key: String },
    #[error("{path}: the signature does not verify (altered after signing?)")]
    BadSignature { path: String },
    #[error("{path}: the compiled code is not what was signed (expected {expected}, got {actual})")]
    Tampered {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: compiled by wasmtime {theirs}, this wharf runs wasmtime {ours}")]
    OtherEngine {
        path: String,
        theirs: String,
        ours: String,
    },
    #[error("{path}: compiled for {theirs}, this host is {ours}")]
    OtherTarget {
        path: String,
        theirs: String,
        ours: String,
    },
    #[error("{path}: compiled from module {theirs}, the image's is {ours}")]
    OtherModule {
        path: String,
        theirs: String,
        ours: String,
    },
    #[error("{path}: wasmtime refuses the code for this engine: {reason}")]
    Incompatible { path: String, reason: String },
    #[error("unknown target {0:?} (expected a triple such as aarch64-unknown-linux-musl)")]
    UnknownTarget(String),
    #[error("{path}: {reason}")]
    Key { path: String, reason: String },
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error(transparent)]
    Wasm(#[from] WasmError),
}

/// Which engine the code was compiled for: a command's, or a wasi:http server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Command,
    Serving,
}

impl Variant {
    /// The variant's name, as its JSON spelling.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Command => "command",
            Variant::Serving => "serving",
        }
    }

    fn options(self) -> EngineOptions {
        EngineOptions {
            fuel: false,
            serving: self == Variant::Serving,
        }
    }
}

/// What is signed, as the file's second line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub wasmtime: String,
    /// `arch-os-env`, as [`engine::target`] names this host.
    pub target: String,
    pub kind: WasmKind,
    pub variant: Variant,
    /// The wasm bytes' digest.
    pub module: String,
    /// The compiled code's digest.
    pub artifact: String,
    /// The signing key's id ([`key_id`]).
    pub key: String,
    /// ed25519 signature of the header's statement (`Header::statement`), hex.
    pub signature: String,
}

impl Header {
    /// The bytes signed: every field but the signature, in a fixed order.
    fn statement(&self) -> Vec<u8> {
        format!(
            "wharf-precompiled v1\nwasmtime {}\ntarget {}\nkind {}\nvariant {}\nmodule {}\nartifact {}\nkey {}\n",
            self.wasmtime,
            self.target,
            self.kind.name(),
            self.variant.name(),
            self.module,
            self.artifact,
            self.key
        )
        .into_bytes()
    }
}

/// A short name for a public key: the first 16 hex digits of the sha256 of its 32 bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// A private key from a PKCS#8 PEM file.
pub fn signing_key(path: &Path) -> Result<SigningKey, SignedError> {
    let pem = read_small(path)?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| SignedError::Key {
        path: path.display().to_string(),
        reason: format!(
            "not an ed25519 private key in PEM (openssl genpkey -algorithm ed25519): {e}"
        ),
    })
}

/// A public key from a PEM file (SubjectPublicKeyInfo).
pub fn verifying_key(path: &Path) -> Result<VerifyingKey, SignedError> {
    let pem = read_small(path)?;
    VerifyingKey::from_public_key_pem(&pem).map_err(|e| SignedError::Key {
        path: path.display().to_string(),
        reason: format!("not an ed25519 public key in PEM (openssl pkey -pubout): {e}"),
    })
}

fn read_small(path: &Path) -> Result<String, SignedError> {
    let io = |error| SignedError::Io {
        path: path.display().to_string(),
        error,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > 64 << 10 {
        return Err(SignedError::Key {
            path: path.display().to_string(),
            reason: "too large for a key file".into(),
        });
    }
    std::fs::read_to_string(path).map_err(io)
}

/// A target to compile for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// As wharf names targets (`arch-os-env`, see [`engine::target`]).
    pub name: String,
    /// As Cranelift takes it (`aarch64-unknown-linux-musl`).
    pub triple: String,
}

/// A target in either spelling: `aarch64-unknown-linux-musl` or `aarch64-linux-musl`.
pub fn parse_target(target: &str) -> Result<Target, SignedError> {
    let unknown = || SignedError::UnknownTarget(target.to_string());
    let parts: Vec<&str> = target.split('-').collect();
    let arch = match parts.first().copied() {
        Some(a @ ("x86_64" | "aarch64")) => a,
        _ => return Err(unknown()),
    };
    let os_at = parts
        .iter()
        .position(|p| matches!(*p, "linux" | "windows" | "darwin" | "macos"))
        .ok_or_else(unknown)?;
    let env = match (parts[os_at], parts.get(os_at + 1).copied()) {
        ("linux", Some(e @ ("gnu" | "musl"))) => e,
        ("windows", Some(e @ ("gnu" | "msvc"))) => e,
        ("darwin" | "macos", None | Some("none")) => "none",
        _ => return Err(unknown()),
    };
    if parts.len() != os_at + 1 + usize::from(parts.get(os_at + 1).is_some()) || os_at > 2 {
        return Err(unknown());
    }
    let (name, triple) = match parts[os_at] {
        "linux" => (
            format!("{arch}-linux-{env}"),
            format!("{arch}-unknown-linux-{env}"),
        ),
        "windows" => (
            format!("{arch}-windows-{env}"),
            format!("{arch}-pc-windows-{env}"),
        ),
        _ => (format!("{arch}-macos-none"), format!("{arch}-apple-darwin")),
    };
    Ok(Target { name, triple })
}

/// One artifact made by [`export`].
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    pub path: PathBuf,
    pub target: String,
    pub variant: Variant,
    pub bytes: u64,
}

/// Compile `module` for each of `targets` (every engine variant a run there needs: the
/// command engine, and for a wasi:http component the serving one), sign each with `key`,
/// and write them into `dir`. `host_cache` is this host's cache (to tell a wasi:http
/// component).
pub fn export(
    module: &WasmModule,
    targets: &[Target],
    key: &SigningKey,
    dir: &Path,
    host_cache: &Path,
) -> Result<Vec<Exported>, SignedError> {
    let host_engine = engine::engine(EngineOptions::default())?;
    let is_http = match Cache::new(host_cache).load(&host_engine, module, None)? {
        Compiled::Component(c) => http::is_http_component(&host_engine, &c),
        Compiled::Module(_) => false,
    };
    let bytes = module
        .wasm_bytes()
        .map_err(|e| WasmError::Compile(e.to_string()))?;
    let variants: &[Variant] = if is_http {
        &[Variant::Command, Variant::Serving]
    } else {
        &[Variant::Command]
    };
    std::fs::create_dir_all(dir).map_err(|error| SignedError::Io {
        path: dir.display().to_string(),
        error,
    })?;
    let mut out = Vec::new();
    for target in targets {
        let mut keys = Vec::new();
        for &variant in variants {
            let engine = engine::engine_for(variant.options(), Some(&target.triple))?;
            // Engines whose settings compile the same code share a cache entry: one artifact.
            let key_there = Cache::key(&engine, module);
            if keys.contains(&key_there) {
                continue;
            }
            keys.push(key_there);
            let code = match module.kind {
                WasmKind::Module => engine.precompile_module(&bytes),
                WasmKind::Component => engine.precompile_component(&bytes),
            }
            .map_err(|e| WasmError::Compile(format!("{e:#}")))?;
            let mut header = Header {
                wasmtime: engine::wasmtime_version().to_string(),
                target: target.name.clone(),
                kind: module.kind,
                variant,
                module: module.digest.to_string(),
                artifact: digest_of(&code).to_string(),
                key: key_id(&key.verifying_key()),
                signature: String::new(),
            };
            header.signature = hex::encode(key.sign(&header.statement()).to_bytes());
            let path = dir.join(format!(
                "{}.{}.{}{SUFFIX}",
                &module.digest.digest()[..12],
                target.name,
                variant.name()
            ));
            let file = encode(&header, &code);
            write_new(&path, &file)?;
            out.push(Exported {
                path,
                target: target.name.clone(),
                variant,
                bytes: file.len() as u64,
            });
        }
    }
    Ok(out)
}

/// The file: the magic line, the header line, the code.
fn encode(header: &Header, code: &[u8]) -> Vec<u8> {
    let mut file = MAGIC.to_vec();
    file.extend(serde_json::to_vec(header).expect("a header serialises"));
    file.push(b'\n');
    file.extend(code);
    file
}

/// The header at the start of `bytes` (the whole file, or its first bytes), and where the
/// code begins.
fn decode_header(bytes: &[u8], name: &str) -> Result<(Header, usize), SignedError> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| SignedError::NotArtifact(name.to_string()))?;
    let end = rest
        .iter()
        .take(MAX_HEADER)
        .position(|&b| b == b'\n')
        .ok_or_else(|| SignedError::Header {
            path: name.to_string(),
            reason: "no header line".into(),
        })?;
    let header = serde_json::from_slice(&rest[..end]).map_err(|e| SignedError::Header {
        path: name.to_string(),
        reason: e.to_string(),
    })?;
    Ok((header, MAGIC.len() + end + 1))
}

/// Write through a temporary file, so a failed write leaves nothing half-written.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), SignedError> {
    let io = |error| SignedError::Io {
        path: path.display().to_string(),
        error,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io)?;
    // Made to be copied to other hosts: readable like any file written with the umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// A file's header and code, read and checked for shape only.
fn read(path: &Path) -> Result<(Header, Vec<u8>), SignedError> {
    let name = path.display().to_string();
    let io = |error| SignedError::Io {
        path: name.clone(),
        error,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_ARTIFACT + MAX_HEADER as u64 {
        return Err(SignedError::Header {
            path: name,
            reason: format!("{len} bytes is more than a compiled module may be"),
        });
    }
    let mut bytes = std::fs::read(path).map_err(io)?;
    let (header, code_at) = decode_header(&bytes, &name)?;
    // The code is what follows, moved down in place (no second copy of a large file).
    bytes.drain(..code_at);
    Ok((header, bytes))
}

/// What [`import`] did with one file.
#[derive(Debug)]
pub struct Imported {
    pub path: PathBuf,
    pub variant: Variant,
    pub key: String,
}

/// Whether the file at `path` is for this host and `module` (its header says so): files for
/// other targets or modules in a directory are skipped without a word.
pub fn is_for(path: &Path, module: &WasmModule) -> bool {
    read_header_only(path)
        .is_some_and(|h| h.target == engine::target() && h.module == module.digest.to_string())
}

fn read_header_only(path: &Path) -> Option<Header> {
    let f = std::fs::File::open(path).ok()?;
    let mut start = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(f, (MAGIC.len() + MAX_HEADER) as u64),
        &mut start,
    )
    .ok()?;
    decode_header(&start, "").ok().map(|(h, _)| h)
}

/// Check the signed artifact at `path` for `module` on this host, and make it a cache entry
/// in `cache_dir`. Checks, in order: a trusted key signed it, the signature verifies over
/// the header, the code is the code signed, this wasmtime, this target, this module, and
/// wasmtime accepts it for this engine. Only then is it deserialised.
pub fn import(
    path: &Path,
    module: &WasmModule,
    trusted: &[VerifyingKey],
    cache_dir: &Path,
) -> Result<Imported, SignedError> {
    let name = path.display().to_string();
    let (header, code) = read(path)?;
    let key = trusted
        .iter()
        .find(|k| key_id(k) == header.key)
        .ok_or_else(|| SignedError::Untrusted {
            path: name.clone(),
            key: header.key.clone(),
        })?;
    let signature = hex::decode(&header.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| SignedError::BadSignature { path: name.clone() })?;
    key.verify_strict(&header.statement(), &signature)
        .map_err(|_| SignedError::BadSignature { path: name.clone() })?;
    let actual = digest_of(&code).to_string();
    if actual != header.artifact {
        return Err(SignedError::Tampered {
            path: name,
            expected: header.artifact,
            actual,
        });
    }
    if header.wasmtime != engine::wasmtime_version() {
        return Err(SignedError::OtherEngine {
            path: name,
            theirs: header.wasmtime,
            ours: engine::wasmtime_version().into(),
        });
    }
    if header.target != engine::target() {
        return Err(SignedError::OtherTarget {
            path: name,
            theirs: header.target,
            ours: engine::target(),
        });
    }
    if header.module != module.digest.to_string() || header.kind != module.kind {
        return Err(SignedError::OtherModule {
            path: name,
            theirs: header.module,
            ours: module.digest.to_string(),
        });
    }
    let engine = engine::engine(header.variant.options())?;
    accept(&engine, module, &code, cache_dir)
        .map_err(|reason| SignedError::Incompatible { path: name, reason })?;
    Ok(Imported {
        path: path.to_path_buf(),
        variant: header.variant,
        key: header.key,
    })
}

/// Deserialise `code` to let wasmtime check it fits `engine`, then store it as the cache
/// entry for `module`.
fn accept(
    engine: &Engine,
    module: &WasmModule,
    code: &[u8],
    cache_dir: &Path,
) -> Result<(), String> {
    // SAFETY: `code` was signed by a key the host's operator trusts, for exactly this
    // module's digest, this wasmtime and this target, and its digest was checked against
    // the signed one (see `import`): it is wharf's own compiled code, made on another host.
    // wasmtime checks the header and the engine's compatibility before using it.
    let ok = match module.kind {
        WasmKind::Module => unsafe { wasmtime::Module::deserialize(engine, code) }.map(drop),
        WasmKind::Component => {
            unsafe { wasmtime::component::Component::deserialize(engine, code) }.map(drop)
        }
    };
    ok.map_err(|e| format!("{e:#}"))?;
    let path = cache_dir.join(Cache::key(engine, module));
    crate::sys::write_recorded(&path, code).map_err(|e| format!("storing it in the cache: {e}"))
}

/// The signed artifacts in `paths` (files, or directories searched for `*.wharf-cwasm`).
pub fn candidates(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SignedError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|error| SignedError::Io {
            path: p.display().to_string(),
            error,
        })?;
        match std::fs::read_dir(p) {
            Ok(entries) if meta.is_dir() => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| f.to_string_lossy().ends_with(SUFFIX))
                    .collect();
                files.sort();
                out.extend(files);
            }
            _ => out.push(p.clone()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn module(export: &str) -> WasmModule {
        let wasm = wat::parse_str(format!(r#"(module (func (export "{export}")))"#)).unwrap();
        WasmModule::from_bytes(wasm, None).unwrap()
    }

    #[test]
    fn targets_parse_in_both_spellings() {
        let t = |s| {
            parse_target(s)
                .map(|t| format!("{} {}", t.name, t.triple))
                .ok()
        };
        assert_eq!(
            t("aarch64-unknown-linux-musl").as_deref(),
            Some("aarch64-linux-musl aarch64-unknown-linux-musl")
        );
        assert_eq!(
            t("x86_64-linux-gnu").as_deref(),
            Some("x86_64-linux-gnu x86_64-unknown-linux-gnu")
        );
        assert_eq!(
            t("x86_64-pc-windows-gnu").as_deref(),
            Some("x86_64-windows-gnu x86_64-pc-windows-gnu")
        );
        for bad in [
            "",
            "riscv64gc-unknown-linux-gnu",
            "aarch64-unknown-linux",
            "x86_64-linux-gnu-x",
            "x86_64",
        ] {
            assert!(t(bad).is_none(), "{bad}");
        }
        // This host's own name parses back to itself.
        assert_eq!(
            parse_target(&engine::target()).unwrap().name,
            engine::target()
        );
    }

    #[test]
    fn only_what_a_trusted_key_signed_for_this_module_becomes_a_cache_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (out, cache) = (dir.path().join("out"), dir.path().join("cache"));
        let m = module("a");
        let signer = key(1);
        let host = parse_target(&engine::target()).unwrap();
        let made = export(&m, &[host], &signer, &out, &cache).unwrap();
        assert_eq!(made.len(), 1);
        let file = &made[0].path;
        assert!(is_for(file, &m));
        assert!(!is_for(file, &module("b")));

        let fresh = || tempfile::tempdir().unwrap();
        let trusted = [signer.verifying_key()];
        // Not trusted.
        let c = fresh();
        let e = import(file, &m, &[key(2).verifying_key()], c.path()).unwrap_err();
        assert!(matches!(e, SignedError::Untrusted { .. }), "{e}");
        // Another module's.
        let e = import(file, &module("b"), &trusted, c.path()).unwrap_err();
        assert!(matches!(e, SignedError::OtherModule { .. }), "{e}");
        assert_eq!(
            std::fs::read_dir(c.path()).unwrap().count(),
            0,
            "nothing stored"
        );

        // The code altered: its digest no longer matches.
        let original = std::fs::read(file).unwrap();
        let mut bytes = original.clone();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(file, &bytes).unwrap();
        let e = import(file, &m, &trusted, c.path()).unwrap_err();
        assert!(matches!(e, SignedError::Tampered { .. }), "{e}");
        // The header altered (and the code digest with it, to match): the signature fails.
        let (mut header, code) = {
            std::fs::write(file, &original).unwrap();
            read(file).unwrap()
        };
        let other_code = [code.as_slice(), b"x"].concat();
        header.artifact = digest_of(&other_code).to_string();
        std::fs::write(file, encode(&header, &other_code)).unwrap();
        let e = import(file, &m, &trusted, c.path()).unwrap_err();
        assert!(matches!(e, SignedError::BadSignature { .. }), "{e}");
        // Not an artifact at all.
        std::fs::write(file, b"\0asm").unwrap();
        let e = import(file, &m, &trusted, c.path()).unwrap_err();
        assert!(matches!(e, SignedError::NotArtifact(_)), "{e}");

        // The real thing: a cache entry the engine then loads without compiling.
        std::fs::write(file, &original).unwrap();
        let done = import(file, &m, &trusted, c.path()).unwrap();
        assert_eq!(done.variant, Variant::Command);
        let engine = engine::engine(EngineOptions::default()).unwrap();
        assert!(Cache::new(c.path()).contains(&engine, &m));
    }

    #[test]
    fn code_for_another_target_is_made_here_and_refused_here() {
        let other = if engine::target().starts_with("x86_64") {
            "aarch64-unknown-linux-musl"
        } else {
            "x86_64-unknown-linux-gnu"
        };
        let dir = tempfile::tempdir().unwrap();
        let m = module("a");
        let made = export(
            &m,
            &[parse_target(other).unwrap()],
            &key(1),
            &dir.path().join("out"),
            &dir.path().join("cache"),
        )
        .unwrap();
        assert!(!is_for(&made[0].path, &m));
        let e = import(&made[0].path, &m, &[key(1).verifying_key()], dir.path()).unwrap_err();
        assert!(matches!(e, SignedError::OtherTarget { .. }), "{e}");
    }
}
