//! Trust before run: which images may come in, by the same containers-policy.json(5) that
//! skopeo, Podman and CRI-O obey, and the signatures it asks for (GPG simple signing in
//! lookaside storage, sigstore signatures attached in the registry). Every door that
//! brings an image in asks here first (`pull`, and so `run`, `compose up` and the plugin
//! host's loads; `load` of an archive); a refused image is not stored.

pub mod gpg;
pub mod lookaside;
pub mod payload;
pub mod policy;
pub mod sign;
pub mod sigstore;

use std::path::{Path, PathBuf};

pub use policy::{Policy, Requirement, SignedIdentity};

use crate::image::Reference;

/// Why an image is not let in.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("signature policy {}: {message} (every image is refused until it is mended)", path.display())]
    Policy { path: PathBuf, message: String },
    #[error("registries.d: {0}")]
    Registries(String),
    #[error(
        "{image}: refused by the signature policy {policy}, scope {scope}, requirement {rule}: {why}"
    )]
    Refused {
        image: String,
        policy: String,
        scope: String,
        rule: String,
        why: String,
    },
    #[error("{image}: reading its signatures: {message}")]
    Signatures { image: String, message: String },
}

/// Where to find the policy and the signature storage configuration.
#[derive(Debug, Clone, Default)]
pub struct TrustOptions {
    /// `--signature-policy FILE`.
    pub policy: Option<PathBuf>,
    /// `--registries.d DIR`.
    pub registries_d: Option<PathBuf>,
}

/// The policy in force and where signatures are.
#[derive(Debug, Clone)]
pub struct Trust {
    pub policy: Policy,
    registries_d: Option<PathBuf>,
}

/// Where a policy was found, in containers/image's order with wharf's own file first.
pub fn policy_path(opts: &TrustOptions, data_root: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = &opts.policy {
        return Some(p.clone());
    }
    let mut candidates = Vec::new();
    if let Some(root) = data_root {
        candidates.push(root.join("policy.json"));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        candidates.push(PathBuf::from(home).join(".config/containers/policy.json"));
    }
    #[cfg(unix)]
    candidates.push(PathBuf::from("/etc/containers/policy.json"));
    candidates.into_iter().find(|p| p.exists())
}

impl Trust {
    /// Load the policy (`--signature-policy`, else `ROOT/policy.json`, else
    /// `$HOME/.config/containers/policy.json`, else `/etc/containers/policy.json`; none at
    /// all: every image is accepted, as before wharf read policies).
    pub fn load(opts: &TrustOptions, data_root: Option<&Path>) -> Result<Trust, TrustError> {
        let policy = match policy_path(opts, data_root) {
            None => Policy::accept_anything(),
            Some(path) => {
                let broken = |message: String| TrustError::Policy {
                    path: path.clone(),
                    message,
                };
                let text = std::fs::read(&path).map_err(|e| broken(e.to_string()))?;
                Policy::parse(&text, Some(&path)).map_err(broken)?
            }
        };
        Ok(Trust {
            policy,
            registries_d: opts.registries_d.clone(),
        })
    }

    /// Where signatures are kept (read when a requirement needs signatures).
    pub fn registries(&self) -> Result<lookaside::Config, TrustError> {
        lookaside::Config::load(self.registries_d.as_deref()).map_err(TrustError::Registries)
    }

    fn policy_name(&self) -> String {
        self.policy
            .path
            .as_ref()
            .map_or_else(|| "(built in)".to_string(), |p| p.display().to_string())
    }

    /// May a local archive (`load`) come in? Archives carry no signatures: a scope that
    /// asks for one refuses them.
    pub fn check_archive(&self, transport: &str, path: Option<&Path>) -> Result<(), TrustError> {
        let scopes = policy::archive_scopes(transport, path);
        let (reqs, scope) = self.policy.requirements_for(transport, &scopes);
        for r in reqs {
            let why = match r {
                Requirement::InsecureAcceptAnything => continue,
                Requirement::Reject => "the scope rejects every image".to_string(),
                _ => "an archive carries no signatures (pull it from a registry, where they are kept)"
                    .to_string(),
            };
            return Err(TrustError::Refused {
                image: path.map_or_else(
                    || "the archive on stdin".into(),
                    |p| p.display().to_string(),
                ),
                policy: self.policy_name(),
                scope,
                rule: r.name().into(),
                why,
            });
        }
        Ok(())
    }
}

/// What a registry image's signatures are, fetched as its requirements ask.
#[derive(Debug, Default)]
pub struct Signatures {
    /// GPG simple signatures from lookaside storage, and where they were looked for.
    pub gpg: Vec<Vec<u8>>,
    pub lookaside: String,
    /// sigstore signatures attached in the registry (`None`: attachments are not turned on
    /// for this scope in registries.d).
    pub sigstore: Option<Vec<sigstore::Attached>>,
}

/// Check a registry image: pulled as `image`, its manifest's digest `digest`, against
/// `reqs` (chosen by `scope`). Every requirement must be met; a signing requirement is
/// met by one signature that verifies with its keys, is for this digest and names an
/// identity it accepts.
pub fn evaluate(
    trust: &Trust,
    image: &Reference,
    digest: &str,
    reqs: &[Requirement],
    scope: &str,
    sigs: &Signatures,
) -> Result<(), TrustError> {
    for r in reqs {
        let outcome = match r {
            Requirement::InsecureAcceptAnything => Ok(()),
            Requirement::Reject => Err("the scope rejects every image".to_string()),
            Requirement::SignedBy {
                key_type,
                keys,
                identity,
            } => {
                if key_type == "GPGKeys" {
                    signed_by(keys, identity, image, digest, sigs)
                } else {
                    Err(format!(
                        "keyType {key_type:?} is reserved and implemented by no one (containers/image refuses it too); use \"GPGKeys\""
                    ))
                }
            }
            Requirement::SignedBaseLayer => Err(
                "signedBaseLayer is reserved and implemented by no one (containers/image refuses it too)"
                    .into(),
            ),
            Requirement::SigstoreSigned { keys, identity } => {
                sigstore_signed(keys, identity, image, digest, sigs)
            }
        };
        if let Err(why) = outcome {
            return Err(TrustError::Refused {
                image: image.to_string(),
                policy: trust.policy_name(),
                scope: scope.to_string(),
                rule: r.name().into(),
                why,
            });
        }
    }
    Ok(())
}

/// The bytes of a requirement's key sources, each named for messages.
fn key_bytes(keys: &[policy::KeySource]) -> Result<Vec<(String, Vec<u8>)>, String> {
    keys.iter()
        .map(|k| match k {
            policy::KeySource::Path(p) => std::fs::read(p)
                .map(|b| (p.display().to_string(), b))
                .map_err(|e| format!("reading key file {}: {e}", p.display())),
            policy::KeySource::Data(d) => Ok(("keyData".to_string(), d.clone())),
        })
        .collect()
}

/// Does a verified claim fit: the digest pulled, and an identity the policy accepts?
fn claim_fits(
    claim: &payload::Claim,
    identity: &SignedIdentity,
    image: &Reference,
    digest: &str,
) -> Result<(), String> {
    if claim.manifest_digest != digest {
        return Err(format!(
            "a signature for another manifest ({}, not {digest})",
            claim.manifest_digest
        ));
    }
    if !identity.accepts(image, &claim.docker_reference) {
        return Err(format!(
            "a signature for {} which signedIdentity {} does not accept for {image}",
            claim.docker_reference,
            identity.describe()
        ));
    }
    Ok(())
}

fn signed_by(
    keys: &[policy::KeySource],
    identity: &SignedIdentity,
    image: &Reference,
    digest: &str,
    sigs: &Signatures,
) -> Result<(), String> {
    let mut keyring = Vec::new();
    for (name, bytes) in key_bytes(keys)? {
        keyring.extend(gpg::keys(&bytes).map_err(|e| format!("key {name}: {e}"))?);
    }
    if sigs.gpg.is_empty() {
        return Err(format!(
            "no signature (none in lookaside storage {})",
            sigs.lookaside
        ));
    }
    one_fits(&sigs.gpg, "signature-", identity, image, digest, |sig| {
        let verified = gpg::verify(sig, &keyring)?;
        payload::parse(&verified.payload, payload::SIMPLE_SIGNING)
    })
}

fn sigstore_signed(
    keys: &[policy::KeySource],
    identity: &SignedIdentity,
    image: &Reference,
    digest: &str,
    sigs: &Signatures,
) -> Result<(), String> {
    let mut verifying = Vec::new();
    for (name, bytes) in key_bytes(keys)? {
        verifying.extend(sigstore::keys(&bytes).map_err(|e| format!("key {name}: {e}"))?);
    }
    let Some(attached) = &sigs.sigstore else {
        return Err(
            "no signature: sigstore attachments are not turned on for this registry (registries.d: use-sigstore-attachments: true)"
                .into(),
        );
    };
    if attached.is_empty() {
        return Err(format!(
            "no signature (nothing attached as {})",
            sigstore::signature_tag(digest).unwrap_or_default()
        ));
    }
    one_fits(attached, "signature ", identity, image, digest, |sig| {
        sigstore::verify(sig, &verifying)?;
        payload::parse(&sig.payload, payload::COSIGN)
    })
}

/// Met when one of `sigs` verifies (`verify` checks it and reads its claim) and its claim
/// fits; else why each did not (`label` and its number name it).
fn one_fits<S>(
    sigs: &[S],
    label: &str,
    identity: &SignedIdentity,
    image: &Reference,
    digest: &str,
    verify: impl Fn(&S) -> Result<payload::Claim, String>,
) -> Result<(), String> {
    let mut why = Vec::new();
    for (i, sig) in sigs.iter().enumerate() {
        match verify(sig).and_then(|claim| claim_fits(&claim, identity, image, digest)) {
            Ok(()) => return Ok(()),
            Err(e) => why.push(format!("{label}{}: {e}", i + 1)),
        }
    }
    Err(why.join("; "))
}
