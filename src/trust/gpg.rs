//! OpenPGP for simple signing (the `signedBy` requirement): a signature is an OpenPGP
//! signed message (`gpg --sign`: usually compressed, one-pass signature, literal data,
//! signature) whose literal data is the payload. Verified with rPGP (the `pgp` crate,
//! pure Rust: RSA, DSA, ECDSA and Ed25519 keys, as gpg makes them) against the keys a
//! policy names, primary keys and their signing subkeys alike.
//!
//! A key signs only while gpg would let its signature count (gpgme reports anything else as
//! an error, which containers/image refuses): its self-signatures verify, it is not revoked,
//! not expired (now), and the part that signed may sign (the primary key's or a subkey's
//! key flags; a subkey's binding verified, backward signature included). A third party's
//! certification on a user id is not the key's business and is not checked.

use pgp::composed::{Deserializable, Message, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag, Timestamp, VerifyingKey};

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
    Ok(keys)
}

/// What of a key may sign now: its signing parts, and the parts that may not (their
/// fingerprint and key id, and why not).
struct Parts<'a> {
    signers: Vec<&'a dyn VerifyingKey>,
    refused: Vec<(String, String, String)>,
}

/// The parts of `key` that may sign at `now` (the primary key, then its signing subkeys),
/// or why the whole key may not.
fn parts(key: &SignedPublicKey, now: Timestamp) -> Result<Parts<'_>, String> {
    let primary = &key.primary_key;
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|r| r.typ() == Some(SignatureType::KeyRevocation) && r.verify_key(primary).is_ok())
    {
        return Err("it is revoked".into());
    }
    let Some(newest) = newest_self_signature(key) else {
        return Err("it has no self-signature that verifies".into());
    };
    if let Some(when) = expiry(primary.created_at(), newest)
        && when <= now.as_secs()
    {
        return Err(format!("it expired {}", date(when)));
    }
    let mut parts = Parts {
        signers: Vec::new(),
        refused: Vec::new(),
    };
    let flags = newest.key_flags();
    // No key flags at all: an old key, whose primary signs (as gpg lets it).
    if flags.sign() || (!flags.certify() && !flags.encrypt_comms() && !flags.authentication()) {
        parts.signers.push(primary);
    } else {
        parts.refused.push((
            format!("{:X}", primary.fingerprint()),
            key_id(primary),
            "its primary key is not flagged for signing".into(),
        ));
    }
    for sub in &key.public_subkeys {
        match subkey_may_sign(key, sub, now) {
            Ok(()) => parts.signers.push(sub),
            Err(why) => parts.refused.push((
                format!("{:X}", sub.key.fingerprint()),
                key_id(&sub.key),
                format!("its subkey {:X}: {why}", sub.key.fingerprint()),
            )),
        }
    }
    Ok(parts)
}

/// The newest self-signature that says what `key` is now (its flags, its expiry): a user
/// id's certification (types 0x10-0x13) that verifies, of a user id not revoked since, or
/// a direct-key signature (0x1F). A user id's revocation is not one: it would otherwise
/// stand, with no expiry and no flags, for a key that expired.
fn newest_self_signature(key: &SignedPublicKey) -> Option<&Signature> {
    use SignatureType::{CertCasual, CertGeneric, CertPersona, CertPositive, CertRevocation};
    let primary = &key.primary_key;
    let mut best = None;
    for user in &key.details.users {
        let (mut cert, mut revoked) = (None, None);
        for sig in user.signatures.iter().filter(|s| {
            s.verify_certification(primary, Tag::UserId, &user.id)
                .is_ok()
        }) {
            match sig.typ() {
                Some(CertGeneric | CertPersona | CertCasual | CertPositive) => {
                    newer(&mut cert, sig)
                }
                Some(CertRevocation) => newer(&mut revoked, sig),
                _ => {}
            }
        }
        if let Some(c) = cert
            && revoked.is_none_or(|r| created(r) < created(c))
        {
            newer(&mut best, c);
        }
    }
    for sig in key
        .details
        .direct_signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::Key) && s.verify_key(primary).is_ok())
    {
        newer(&mut best, sig);
    }
    best
}

/// Keep in `slot` the newer of it and `sig` (by creation time).
fn newer<'a>(slot: &mut Option<&'a Signature>, sig: &'a Signature) {
    if slot.is_none_or(|s| created(s) <= created(sig)) {
        *slot = Some(sig);
    }
}

/// May subkey `sub` sign at `now`? Its newest binding to `key` that verifies says so
/// (flagged for signing, its backward signature verifying, not expired), and no
/// revocation of it that verifies.
fn subkey_may_sign(
    key: &SignedPublicKey,
    sub: &SignedPublicSubKey,
    now: Timestamp,
) -> Result<(), String> {
    let primary = &key.primary_key;
    let (mut binding, mut revoked) = (None, None);
    for sig in sub
        .signatures
        .iter()
        .filter(|s| s.verify_subkey_binding(primary, &sub.key).is_ok())
    {
        match sig.typ() {
            Some(SignatureType::SubkeyBinding) => newer(&mut binding, sig),
            Some(SignatureType::SubkeyRevocation) => newer(&mut revoked, sig),
            _ => {}
        }
    }
    if revoked.is_some() {
        return Err("it is revoked".into());
    }
    let binding = binding.ok_or("it has no binding signature that verifies")?;
    if !binding.key_flags().sign() {
        return Err("it is not flagged for signing".into());
    }
    binding
        .embedded_signature()
        .ok_or("its binding has no backward signature (a signing subkey must certify its primary)")?
        .verify_primary_key_binding(&sub.key, primary)
        .map_err(|e| format!("its backward signature does not verify: {e}"))?;
    if let Some(when) = expiry(sub.key.created_at(), binding)
        && when <= now.as_secs()
    {
        return Err(format!("it expired {}", date(when)));
    }
    Ok(())
}

fn key_id(k: &impl KeyDetails) -> String {
    k.legacy_key_id().to_string().to_uppercase()
}

fn created(s: &Signature) -> u32 {
    s.created().map_or(0, |t| t.as_secs())
}

/// When a key made at `created` expires, by its self-signature `sig` (none: never).
fn expiry(created: Timestamp, sig: &Signature) -> Option<u32> {
    sig.key_expiration_time()
        .map(|d| d.as_secs())
        .filter(|&d| d != 0)
        .map(|d| created.as_secs().saturating_add(d))
}

fn date(secs: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(secs), 0).map_or_else(
        || format!("at {secs}"),
        |t| format!("on {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
    )
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
    let Message::Signed { reader, .. } = &msg else {
        return Err("an OpenPGP message that is not signed".into());
    };
    // Exactly one signature, as containers/image requires: a second one (checked by no
    // one) must not ride along.
    if reader.num_signatures() != 1 {
        return Err(format!(
            "an OpenPGP message with {} signatures (a simple signature has one)",
            reader.num_signatures()
        ));
    }
    let signature = reader
        .signature(0)
        .ok_or("an OpenPGP message with no signature")?
        .clone();
    let issuer = signature
        .issuer_fingerprint()
        .first()
        .map(|f| format!("{f:X}"))
        .or_else(|| {
            signature
                .issuer_key_id()
                .first()
                .map(|k| k.to_string().to_uppercase())
        });
    let now = Timestamp::now();
    let mut unusable = Vec::new();
    let mut refused = Vec::new();
    for key in keys {
        match parts(key, now) {
            Ok(parts) => {
                if parts.signers.iter().any(|c| msg.verify(*c).is_ok()) {
                    // gpg reports a signature past its own expiry (EXPSIG), which
                    // containers/image refuses.
                    if let (Some(made), Some(when)) =
                        (signature.created(), signature.signature_expiration_time())
                        && when.as_secs() != 0
                        && made.as_secs().saturating_add(when.as_secs()) <= now.as_secs()
                    {
                        return Err(format!(
                            "the signature expired {}",
                            date(made.as_secs().saturating_add(when.as_secs()))
                        ));
                    }
                    return Ok(Verified {
                        payload,
                        fingerprint: format!("{:X}", key.fingerprint()),
                    });
                }
                refused.extend(parts.refused.into_iter().map(|r| (key, r)));
            }
            Err(why) => unusable.push((key, why)),
        }
    }
    // Signed by a key the policy names, or a part of one, that may not sign now: say why.
    if let Some(who) = &issuer {
        let why = unusable
            .iter()
            .find(|(k, _)| names(k, who))
            .map(|(k, why)| (k, why.as_str()))
            .or_else(|| {
                refused
                    .iter()
                    .find(|(_, (fpr, id, _))| fpr == who || id == who)
                    .map(|(k, (_, _, why))| (k, why.as_str()))
            });
        if let Some((key, why)) = why {
            return Err(format!(
                "signed by key {:X}, which the policy names but which may not sign: {why}",
                key.fingerprint()
            ));
        }
    }
    Err(match issuer {
        Some(who) => format!("signed by key {who}, which is not one the policy trusts"),
        None => "its signature verifies with none of the keys the policy trusts".into(),
    })
}

/// Is `who` (an issuer fingerprint or key id, uppercase hex) `key` or one of its subkeys?
fn names(key: &SignedPublicKey, who: &str) -> bool {
    format!("{:X}", key.fingerprint()) == who
        || key_id(&key.primary_key) == who
        || key
            .public_subkeys
            .iter()
            .any(|s| format!("{:X}", s.key.fingerprint()) == who || key_id(&s.key) == who)
}

/// The most a signed payload may hold (containers/image's simple signing payloads are a
/// few hundred bytes).
const MAX_PAYLOAD: u64 = 64 << 10;
