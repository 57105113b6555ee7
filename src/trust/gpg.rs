//! OpenPGP for simple signing (the `signedBy` requirement): a signature is an OpenPGP
//! signed message (`gpg --sign`: usually compressed, one-pass signature, literal data,
//! signature) whose literal data is the payload. Verified with rPGP (the `pgp` crate,
//! pure Rust: RSA, DSA, ECDSA and Ed25519 keys, as gpg makes them) against the keys a
//! policy names, primary keys and their signing subkeys alike.

use pgp::composed::{Deserializable, Message, SignedPublicKey};
use pgp::types::{KeyDetails, VerifyingKey};

/// A signature that verified.
#[derive(Debug)]
pub struct Verified {
    /// The literal data: the payload, still to be checked.
    pub payload: Vec<u8>,
    /// The fingerprint of the key that signed (its primary key's), uppercase hex.
    pub fingerprint: String,
}

/// Every key in `data`: a keyring as `gpg --export` writes it (binary, several keys one
/// after another) or ASCII-armored.
pub fn keys(data: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    let (found, _) = SignedPublicKey::from_reader_many(data).map_err(|e| e.to_string())?;
    let keys = found
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if keys.is_empty() {
        return Err("no OpenPGP public key in it".into());
    }
    for k in &keys {
        k.verify_bindings().map_err(|e| {
            format!(
                "key {:X}: its self-signatures do not verify: {e}",
                k.fingerprint()
            )
        })?;
    }
    Ok(keys)
}

/// Verify `signature` (an OpenPGP signed message) with one of `keys`.
pub fn verify(signature: &[u8], keys: &[SignedPublicKey]) -> Result<Verified, String> {
    let msg = Message::from_bytes(signature).map_err(|e| format!("not an OpenPGP message: {e}"))?;
    let mut msg = msg
        .decompress()
        .map_err(|e| format!("an OpenPGP message that does not decompress: {e}"))?;
    if !msg.is_signed() {
        return Err("an OpenPGP message that is not signed".into());
    }
    // The whole message is read before its signature can be checked; a payload is a few
    // hundred bytes, and the lookaside reader caps what it reads.
    let mut payload = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&mut msg, MAX_PAYLOAD + 1),
        &mut payload,
    )
    .map_err(|e| format!("reading the signed message: {e}"))?;
    if payload.len() as u64 > MAX_PAYLOAD {
        return Err(format!("a signed payload over {MAX_PAYLOAD} bytes"));
    }
    // Exactly one signature, as containers/image requires: a second one (checked by no
    // one) must not ride along.
    if let Message::Signed { reader, .. } = &msg
        && reader.num_signatures() != 1
    {
        return Err(format!(
            "an OpenPGP message with {} signatures (a simple signature has one)",
            reader.num_signatures()
        ));
    }
    for key in keys {
        let mut candidates: Vec<&dyn VerifyingKey> = vec![&key.primary_key];
        for sub in &key.public_subkeys {
            if sub.signatures.iter().any(|b| b.key_flags().sign()) {
                candidates.push(sub);
            }
        }
        if candidates.iter().any(|c| msg.verify(*c).is_ok()) {
            return Ok(Verified {
                payload,
                fingerprint: format!("{:X}", key.fingerprint()),
            });
        }
    }
    let issuer = match &msg {
        Message::Signed { reader, .. } => reader.signature(0).and_then(|s| {
            s.issuer_fingerprint()
                .first()
                .map(|f| format!("{f:X}"))
                .or_else(|| {
                    s.issuer_key_id()
                        .first()
                        .map(|k| k.to_string().to_uppercase())
                })
        }),
        _ => None,
    };
    Err(match issuer {
        Some(who) => format!("signed by key {who}, which is not one the policy trusts"),
        None => "its signature verifies with none of the keys the policy trusts".into(),
    })
}

/// The most a signed payload may hold (containers/image's simple signing payloads are a
/// few hundred bytes).
const MAX_PAYLOAD: u64 = 64 << 10;
