//! Signing on push, as `skopeo copy --sign-by FPR` signs: a simple-signing payload for the
//! pushed manifest and the name it was pushed as, signed by the key with that fingerprint
//! in the user's GnuPG keyring (gpg itself signs, as gpgme has it sign for skopeo: the
//! secret key stays with gpg-agent), written to the lookaside storage registries.d names
//! for writing (`lookaside-staging`, else `lookaside`; `file://` only, as containers/image
//! writes).

use std::io::Write;
use std::path::PathBuf;
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
) -> Result<PathBuf, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let body = payload::make(payload::SIMPLE_SIGNING, &target.to_string(), digest, now);
    let signature = gpg_sign(fingerprint, &body)?;
    let base = config.lookaside(target, true);
    write(&base, target, digest, &signature)
}

/// `gpg --sign` of `data` by `fingerprint`: an OpenPGP signed message.
fn gpg_sign(fingerprint: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    if fingerprint.is_empty() || !fingerprint.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "--sign-by {fingerprint:?}: give the key's fingerprint (hexadecimal, as gpg --list-keys prints it)"
        ));
    }
    let mut child = Command::new("gpg")
        .args(["--batch", "--no-tty", "--local-user", fingerprint, "--sign"])
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
