//! Signing on push, as skopeo signs:
//! - `--sign-by FPR`: a simple-signing payload for the pushed manifest and the name it was
//!   pushed as, signed by the key with that fingerprint in the user's GnuPG keyring (gpg
//!   itself signs, as gpgme has it sign for skopeo: the secret key stays with gpg-agent),
//!   written to the lookaside storage registries.d names for writing
//!   (`lookaside-staging`, else `lookaside`; `file://` only, as containers/image writes).
//! - `--sign-by-sigstore-private-key KEY`: a cosign payload signed with a cosign private
//!   key ([`super::sigstore::private_key`]), attached in the registry beside the image
//!   (`registry::attach_signature`) as cosign and containers/image attach it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{lookaside, payload};
use crate::image::Reference;

/// Sign `digest` as pushed to `target` with GPG key `fingerprint`, and store the signature
/// in the lookaside storage `config` names; returns where it was written.
pub fn sign_gpg(
    config: &lookaside::Config,
    target: &Reference,
    digest: &str,
    fingerprint: &str,
    passphrase_file: Option<&Path>,
) -> Result<PathBuf, String> {
    let body = payload::make(payload::SIMPLE_SIGNING, &target.to_string(), digest, now());
    let signature = gpg_sign(fingerprint, passphrase_file, &body)?;
    let base = config.lookaside(target, true);
    write(&base, target, digest, &signature)
}

/// A sigstore signature of `digest` as pushed to `target`, made with `key`: the cosign
/// payload and its signature, ready to attach.
pub fn sign_sigstore(
    key: &p256::ecdsa::SigningKey,
    target: &Reference,
    digest: &str,
) -> super::sigstore::Attached {
    let payload = payload::make(payload::COSIGN, &target.to_string(), digest, now());
    let signature = super::sigstore::sign(key, &payload);
    super::sigstore::Attached { payload, signature }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A passphrase kept in a file (`--sign-passphrase-file`): its first line, as skopeo
/// reads it.
pub fn read_passphrase_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading the passphrase file {}: {e}", path.display()))?;
    let line = text.split('\n').next().unwrap_or_default();
    Ok(line.strip_suffix('\r').unwrap_or(line).to_string())
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
