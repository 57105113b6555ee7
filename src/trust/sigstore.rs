//! sigstore signatures as cosign attaches them to an image (and as containers/image reads
//! them with `use-sigstore-attachments: true`): an OCI manifest tagged `sha256-HEX.sig` in
//! the image's repository, one layer per signature, each layer a payload of media type
//! [`PAYLOAD_MEDIA_TYPE`] (the cosign JSON, see [`super::payload`]) with its signature in
//! the [`SIGNATURE_ANNOTATION`] annotation (base64 of an ASN.1 DER ECDSA signature over
//! the payload's bytes, SHA-256). Public keys are PEM `PUBLIC KEY` (SPKI) files, as
//! `cosign generate-key-pair` writes them; wharf verifies ECDSA P-256 keys (cosign's
//! default and only generated kind).
//!
//! Private keys (for signing on push) are read as cosign writes them: PEM `ENCRYPTED
//! SIGSTORE PRIVATE KEY` (cosign 2; `ENCRYPTED COSIGN PRIVATE KEY` from cosign 1) whose body
//! is go-securesystemslib's `encrypted` JSON: a scrypt key derivation (`kdf`: name, params
//! N/r/p, base64 salt) sealing, with NaCl secretbox (`cipher`: name, base64 nonce), the
//! PKCS#8 DER private key (`ciphertext`, base64).

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};

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
    let not = || format!("{digest:?} is not a sha256 or sha512 digest");
    let (algo, hex) = digest.split_once(':').ok_or_else(not)?;
    let len = match algo {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(not()),
    };
    if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(not());
    }
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

/// The PEM labels of a cosign private key (cosign 2, then cosign 1).
const PRIVATE_KEY_LABELS: [&str; 2] = [
    "ENCRYPTED SIGSTORE PRIVATE KEY",
    "ENCRYPTED COSIGN PRIVATE KEY",
];

/// The scrypt parameters (N, r, p) a key may use: go-securesystemslib's (legacy,
/// standard, OWASP), the only ones cosign and skopeo open; a key file is not trusted to
/// make wharf spend gigabytes or hours.
const SCRYPT_PARAMS: [(u64, u32, u32); 3] = [(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)];

/// The encrypted body of a cosign private key.
#[derive(serde::Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(serde::Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(serde::Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Open a cosign private key (the PEM file's contents) with `passphrase`: an ECDSA P-256
/// signing key.
pub fn private_key(pem: &[u8], passphrase: &[u8]) -> Result<SigningKey, String> {
    use base64::Engine;
    use crypto_secretbox::aead::{Aead, KeyInit};
    let b64 = |what: &str, s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("its {what} is not base64: {e}"))
    };
    let (label, body) = p256::pkcs8::der::pem::decode_vec(pem)
        .map_err(|e| format!("not a PEM private key: {e}"))?;
    if !PRIVATE_KEY_LABELS.contains(&label) {
        return Err(format!(
            "a PEM {label:?}, not a cosign private key ({:?}, as cosign generate-key-pair writes it)",
            PRIVATE_KEY_LABELS[0]
        ));
    }
    let sealed: Sealed = serde_json::from_slice(&body)
        .map_err(|e| format!("its encrypted body is not cosign's JSON: {e}"))?;
    if sealed.kdf.name != "scrypt" {
        return Err(format!(
            "key derivation {:?} (cosign's keys use scrypt)",
            sealed.kdf.name
        ));
    }
    if sealed.cipher.name != "nacl/secretbox" {
        return Err(format!(
            "cipher {:?} (cosign's keys use nacl/secretbox)",
            sealed.cipher.name
        ));
    }
    let ScryptParams { n, r, p } = sealed.kdf.params;
    if !SCRYPT_PARAMS.contains(&(n, r, p)) {
        return Err(format!(
            "scrypt parameters N={n} r={r} p={p}: not ones cosign uses (N=32768, 65536 or 131072, r=8, p=1)"
        ));
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 32)
        .map_err(|e| format!("scrypt parameters N={n} r={r} p={p}: {e}"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(
        passphrase,
        &b64("salt", &sealed.kdf.salt)?,
        &params,
        &mut key,
    )
    .map_err(|e| format!("scrypt: {e}"))?;
    let nonce = b64("nonce", &sealed.cipher.nonce)?;
    if nonce.len() != 24 {
        return Err(format!(
            "a nonce of {} bytes (secretbox takes 24)",
            nonce.len()
        ));
    }
    let plain = crypto_secretbox::XSalsa20Poly1305::new(&key.into())
        .decrypt(
            crypto_secretbox::Nonce::from_slice(&nonce),
            b64("ciphertext", &sealed.ciphertext)?.as_slice(),
        )
        .map_err(|_| {
            "it does not open with this passphrase (wrong passphrase, or a damaged key)".to_string()
        })?;
    SigningKey::from_pkcs8_der(&plain).map_err(|e| {
        format!("the key inside is not an ECDSA P-256 private key (the kind cosign makes): {e}")
    })
}

/// Sign `payload` as cosign does: ECDSA P-256 over its bytes (SHA-256), DER, base64 (the
/// [`SIGNATURE_ANNOTATION`] value).
pub fn sign(key: &SigningKey, payload: &[u8]) -> String {
    use base64::Engine;
    let signature: Signature = key.sign(payload);
    base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use crypto_secretbox::aead::{Aead, KeyInit};
    use p256::pkcs8::EncodePrivateKey;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    /// A key sealed as cosign seals it (small scrypt parameters, for speed).
    fn sealed(label: &str, log_n: u8, passphrase: &[u8]) -> (Vec<u8>, VerifyingKey) {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let salt = [3u8; 32];
        let nonce = [5u8; 24];
        let mut secret = [0u8; 32];
        scrypt::scrypt(
            passphrase,
            &salt,
            &scrypt::Params::new(log_n, 8, 1, 32).unwrap(),
            &mut secret,
        )
        .unwrap();
        let ciphertext = crypto_secretbox::XSalsa20Poly1305::new(&secret.into())
            .encrypt(&nonce.into(), der.as_bytes())
            .unwrap();
        let body = serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": 1u64 << log_n, "r": 8, "p": 1},
                    "salt": B64.encode(salt)},
            "cipher": {"name": "nacl/secretbox", "nonce": B64.encode(nonce)},
            "ciphertext": B64.encode(ciphertext),
        });
        let pem = p256::pkcs8::der::pem::encode_string(
            label,
            p256::pkcs8::der::pem::LineEnding::LF,
            &serde_json::to_vec(&body).unwrap(),
        )
        .unwrap();
        (pem.into_bytes(), *key.verifying_key())
    }

    #[test]
    fn a_cosign_key_opens_with_its_passphrase_and_signs_what_verifies() {
        for label in PRIVATE_KEY_LABELS {
            let (pem, public) = sealed(label, 15, b"pw");
            let key = private_key(&pem, b"pw").unwrap();
            let sig = Attached {
                payload: b"{}".to_vec(),
                signature: sign(&key, b"{}"),
            };
            verify(&sig, &[public]).unwrap();
            let tampered = Attached {
                payload: b"{ }".to_vec(),
                ..sig
            };
            assert!(verify(&tampered, &[public]).is_err());
        }
    }

    #[test]
    fn a_wrong_passphrase_another_kind_of_pem_or_costly_parameters_are_refused() {
        let (pem, _) = sealed(PRIVATE_KEY_LABELS[0], 15, b"pw");
        let e = private_key(&pem, b"pw ").unwrap_err();
        assert!(e.contains("does not open with this passphrase"), "{e}");
        let (other, _) = sealed("EC PRIVATE KEY", 15, b"pw");
        let e = private_key(&other, b"pw").unwrap_err();
        assert!(e.contains("not a cosign private key"), "{e}");
        // 128 * 2^20 * 8 bytes = 1 GiB of memory, or p = 2^29 rounds, asked by a key file:
        // refused unread.
        let text = String::from_utf8(pem).unwrap();
        let body = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        let json = String::from_utf8(B64.decode(body).unwrap()).unwrap();
        for (from, to, says) in [
            ("\"N\":32768", format!("\"N\":{}", 1u64 << 20), "N=1048576"),
            ("\"p\":1", format!("\"p\":{}", 1u32 << 29), "p=536870912"),
        ] {
            assert!(json.contains(from), "{json}");
            let costly = p256::pkcs8::der::pem::encode_string(
                PRIVATE_KEY_LABELS[0],
                p256::pkcs8::der::pem::LineEnding::LF,
                json.replace(from, &to).as_bytes(),
            )
            .unwrap();
            let e = private_key(costly.as_bytes(), b"pw").unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_signature_tag_is_made_only_of_a_real_digest() {
        let hex = "ab".repeat(32);
        assert_eq!(
            signature_tag(&format!("sha256:{hex}")).unwrap(),
            format!("sha256-{hex}.sig")
        );
        for bad in [
            "sha256:../../x".to_string(),
            format!("sha256:{}", "AB".repeat(32)),
            format!("md5:{hex}"),
            hex,
        ] {
            assert!(signature_tag(&bad).is_err(), "{bad}");
        }
    }
}
