//! Signing on push, as skopeo signs:
//! - `--sign-by FPR`: a simple-signing payload for the pushed manifest and the name it was
//!   pushed as, signed by the key with that fingerprint in the user's GnuPG keyring (gpg
//!   itself signs, as gpgme has it sign for skopeo: the secret key stays with gpg-agent),
//!   written to the lookaside storage registries.d names for writing
//!   (`lookaside-staging`, else `lookaside`; `file://` only, as containers/image writes).
//! - `--sign-by-sigstore-private-key KEY`: a cosign payload signed with a cosign private
//!   key ([`super::sigstore::private_key`]), attached in the registry beside the image
//!   (`registry::attach_signatures`) as cosign and containers/image attach it.
//!
//! Signatures are made ([`sign`]) before anything is pushed, so a key that will not sign
//! leaves the registry as it was, and stored after.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{lookaside, payload};
use crate::image::Reference;

/// A key that signs on push.
pub enum Signer {
    /// `--sign-by FPR`: a GPG key in the user's keyring (its passphrase, if asked, from a
    /// file).
    Gpg {
        fingerprint: String,
        passphrase_file: Option<PathBuf>,
    },
    /// `--sign-by-sigstore-private-key`: an opened cosign key.
    Sigstore(p256::ecdsa::SigningKey),
}

/// A signature made before the push, to store once the push is done.
pub enum Made {
    /// For lookaside storage.
    Gpg { digest: String, signature: Vec<u8> },
    /// To attach in the registry.
    Sigstore {
        digest: String,
        attached: super::sigstore::Attached,
    },
}

/// Sign manifest `digest` as it will be pushed to `target`: a simple-signing payload signed
/// by gpg, or a cosign payload signed with the sigstore key.
pub fn sign(signer: &Signer, target: &Reference, digest: &str) -> Result<Made, String> {
    let kind = match signer {
        Signer::Gpg { .. } => payload::SIMPLE_SIGNING,
        Signer::Sigstore(_) => payload::COSIGN,
    };
    let body = payload::make(kind, &target.to_string(), digest, now());
    let digest = digest.to_string();
    Ok(match signer {
        Signer::Gpg {
            fingerprint,
            passphrase_file,
        } => Made::Gpg {
            signature: gpg_sign(fingerprint, passphrase_file.as_deref(), &body)?,
            digest,
        },
        Signer::Sigstore(key) => Made::Sigstore {
            attached: super::sigstore::Attached {
                signature: super::sigstore::sign(key, &body),
                payload: body,
            },
            digest,
        },
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A passphrase kept in a file (`--sign-passphrase-file`): its first line, without the
/// newline, as skopeo reads it.
pub fn read_passphrase_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = std::fs::read(path)
        .map_err(|e| format!("reading the passphrase file {}: {e}", path.display()))?;
    if let Some(end) = bytes.iter().position(|&b| b == b'\n') {
        bytes.truncate(end);
    }
    Ok(bytes)
}

/// `gpg --sign` of `data` by `fingerprint`: an OpenPGP signed message. With a passphrase
/// file, gpg reads the key's passphrase from it (loopback pinentry) instead of asking.
fn gpg_sign(
    fingerprint: &str,
    passphrase_file: Option<&Path>,
    data: &[u8],
) -> Result<Vec<u8>, String> {
    if fingerprint.is_empty() || !fingerprint.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "--sign-by {fingerprint:?}: give the key's fingerprint (hexadecimal, as gpg --list-keys prints it)"
        ));
    }
    let mut gpg = Command::new("gpg");
    gpg.args(["--batch", "--no-tty"]);
    if let Some(file) = passphrase_file {
        // gpg reads the file's first line, the line skopeo would give it (and the
        // passphrase stays out of gpg's command line, which others can read).
        gpg.args(["--pinentry-mode", "loopback", "--passphrase-file"])
            .arg(file);
    }
    let mut child = gpg
        .args(["--local-user", fingerprint, "--sign"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running gpg to sign: {e} (is GnuPG installed?)"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running gpg to sign: {e}"))?;
    let _ = writer.join();
    if !out.status.success() || out.stdout.is_empty() {
        return Err(format!(
            "gpg could not sign with key {fingerprint}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// Write `signature` as the next free `signature-N` of `digest` under `base` (file://).
pub fn write(
    base: &str,
    target: &Reference,
    digest: &str,
    signature: &[u8],
) -> Result<PathBuf, String> {
    let Some(root) = lookaside::file_path(base) else {
        return Err(format!(
            "lookaside storage {base:?} for {target}: signatures are written only to file:// storage (set lookaside-staging in registries.d)"
        ));
    };
    for n in 1..=128 {
        let url = lookaside::signature_url(base, target, digest, n)?;
        let path = lookaside::file_path(&url).unwrap_or_else(|| PathBuf::from(&url));
        if !path.starts_with(&root) {
            return Err(format!(
                "{}: outside the lookaside storage {}",
                path.display(),
                root.display()
            ));
        }
        let dir = path.parent().expect("a signature path has a directory");
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Whole or not at all: written aside, then linked in under a name no one has.
        let mut tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        tmp.write_all(signature)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        match tmp.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                // The same signature is not stored twice.
                if std::fs::read(&path).is_ok_and(|b| b == signature) {
                    return Ok(path);
                }
            }
            Err(e) => return Err(format!("{}: {}", path.display(), e.error)),
        }
    }
    Err(format!(
        "{target}: 128 signatures already stored for {digest}"
    ))
}
