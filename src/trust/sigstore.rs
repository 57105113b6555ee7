//! sigstore signatures as cosign attaches them to an image (and as containers/image reads
//! them with `use-sigstore-attachments: true`): an OCI manifest tagged `sha256-HEX.sig` in
//! the image's repository, one layer per signature, each layer a payload of media type
//! [`PAYLOAD_MEDIA_TYPE`] (the cosign JSON, see [`super::payload`]) with its signature in
//! the [`SIGNATURE_ANNOTATION`] annotation (base64 of an ASN.1 DER ECDSA signature over
//! the payload's bytes, SHA-256). Public keys are PEM `PUBLIC KEY` (SPKI) files, as
//! `cosign generate-key-pair` writes them; wharf verifies ECDSA P-256 keys (cosign's
//! default and only generated kind).

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

/// The media type of a signature layer.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a layer's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// One attached signature, as read from the registry (nothing verified yet).
#[derive(Debug, Clone)]
pub struct Attached {
    pub payload: Vec<u8>,
    /// The annotation's value (base64).
    pub signature: String,
}

/// The tag under which `digest`'s signatures are attached.
pub fn signature_tag(digest: &str) -> Result<String, String> {
    let (algo, hex) = digest
        .split_once(':')
        .ok_or(format!("{digest:?} is not a digest"))?;
    Ok(format!("{algo}-{hex}.sig"))
}

/// Public keys from a PEM file's contents (one or more `PUBLIC KEY` blocks).
pub fn keys(pem: &[u8]) -> Result<Vec<VerifyingKey>, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM file".to_string())?;
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let end_marker = "-----END ";
        let Some(end) = block.find(end_marker) else {
            return Err("a PEM block with no END line".into());
        };
        let after = block[end..].find('\n').map_or(block.len(), |i| end + i + 1);
        let one = &block[..after];
        if !one.starts_with("-----BEGIN PUBLIC KEY-----") {
            let label = one.lines().next().unwrap_or("");
            return Err(format!(
                "{label}: wharf reads sigstore keys as PEM \"PUBLIC KEY\" (ECDSA P-256, as cosign writes them)"
            ));
        }
        keys.push(
            VerifyingKey::from_public_key_pem(one.trim_end()).map_err(|e| {
                format!("a public key that is not ECDSA P-256 (the kind cosign makes): {e}")
            })?,
        );
        rest = &block[after..];
    }
    if keys.is_empty() {
        return Err("no PEM public key in it".into());
    }
    Ok(keys)
}

/// Verify an attached signature with one of `keys`.
pub fn verify(sig: &Attached, keys: &[VerifyingKey]) -> Result<(), String> {
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(sig.signature.trim())
        .map_err(|e| format!("its {SIGNATURE_ANNOTATION} annotation is not base64: {e}"))?;
    let signature = Signature::from_der(&der)
        .map_err(|e| format!("its signature is not a DER ECDSA signature: {e}"))?;
    if keys
        .iter()
        .any(|k| k.verify(&sig.payload, &signature).is_ok())
    {
        Ok(())
    } else {
        Err("its signature verifies with none of the keys the policy trusts".into())
    }
}
