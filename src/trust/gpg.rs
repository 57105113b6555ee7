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

/// The parts of `key` that may sign at `now` (the primary key first, then its signing
/// subkeys), or why none may.
fn signers(key: &SignedPublicKey, now: Timestamp) -> Result<Vec<&dyn VerifyingKey>, String> {
    let primary = &key.primary_key;
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|r| r.verify_key(primary).is_ok())
    {
        return Err("it is revoked".into());
    }
    // The newest self-signature says what the key is now: its flags and its expiry.
    let certified = key.details.users.iter().flat_map(|u| {
        u.signatures
            .iter()
            .filter(|s| s.verify_certification(primary, Tag::UserId, &u.id).is_ok())
    });
    let direct = key
        .details
        .direct_signatures
        .iter()
        .filter(|s| s.verify_key(primary).is_ok());
    let Some(newest) = certified.chain(direct).max_by_key(|s| created(s)) else {
        return Err("it has no self-signature that verifies".into());
    };
    if let Some(when) = expiry(primary.created_at(), newest)
        && when <= now.as_secs()
    {
        return Err(format!("it expired {}", date(when)));
    }
    let mut signers: Vec<&dyn VerifyingKey> = Vec::new();
    let flags = newest.key_flags();
    // No key flags at all: an old key, whose primary signs (as gpg lets it).
    if flags.sign() || (!flags.certify() && !flags.encrypt_comms() && !flags.authentication()) {
        signers.push(primary);
    }
    signers.extend(
        key.public_subkeys
            .iter()
            .filter(|sub| subkey_signs(key, sub, now))
            .map(|sub| sub as &dyn VerifyingKey),
    );
    if signers.is_empty() {
        return Err("no part of it may sign (its key flags)".into());
    }
    Ok(signers)
}

/// May subkey `sub` sign at `now`: bound to `key` (every binding verifies, backward
/// signatures included), not revoked, not expired, flagged for signing?
fn subkey_signs(key: &SignedPublicKey, sub: &SignedPublicSubKey, now: Timestamp) -> bool {
    let primary = &key.primary_key;
    if sub.verify_bindings(primary).is_err() {
        return false;
    }
    if sub
        .signatures
        .iter()
        .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
    {
        return false;
    }
    let Some(binding) = sub
        .signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
        .max_by_key(|s| created(s))
    else {
        return false;
    };
    binding.key_flags().sign()
        && expiry(sub.key.created_at(), binding).is_none_or(|when| when > now.as_secs())
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
    let now = Timestamp::now();
    let mut unusable = Vec::new();
    for key in keys {
        match signers(key, now) {
            Ok(candidates) => {
                if candidates.iter().any(|c| msg.verify(*c).is_ok()) {
                    return Ok(Verified {
                        payload,
                        fingerprint: format!("{:X}", key.fingerprint()),
                    });
                }
            }
            Err(why) => unusable.push((key, why)),
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
    // Signed by a key the policy names that may not sign now: say why.
    if let Some(who) = &issuer
        && let Some((key, why)) = unusable.iter().find(|(k, _)| names(k, who))
    {
        return Err(format!(
            "signed by key {:X}, which the policy names but which may not sign: {why}",
            key.fingerprint()
        ));
    }
    Err(match issuer {
        Some(who) => format!("signed by key {who}, which is not one the policy trusts"),
        None => "its signature verifies with none of the keys the policy trusts".into(),
    })
}

/// Is `who` (an issuer fingerprint or key id, uppercase hex) `key` or one of its subkeys?
fn names(key: &SignedPublicKey, who: &str) -> bool {
    let fpr = format!("{:X}", key.fingerprint());
    let id = key.legacy_key_id().to_string().to_uppercase();
    fpr == who
        || id == who
        || key.public_subkeys.iter().any(|s| {
            format!("{:X}", s.key.fingerprint()) == who
                || s.key.legacy_key_id().to_string().to_uppercase() == who
        })
}

/// The most a signed payload may hold (containers/image's simple signing payloads are a
/// few hundred bytes).
const MAX_PAYLOAD: u64 = 64 << 10;
