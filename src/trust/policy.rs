//! containers-policy.json(5), as containers/image reads it (skopeo, Podman, CRI-O and
//! buildah share the file): which requirements an image must meet before it is pulled,
//! loaded or run, chosen by the most specific scope of its transport.
//!
//! Parsing is as strict as containers/image's: an unknown or duplicated key, a missing
//! `default`, an empty requirement list or a requirement with a missing or doubled key
//! source is an error, and a policy that does not parse refuses everything (the caller
//! gets the error, never a fallback).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::image::Reference;

/// The transport of images pulled from a registry, as containers/image names it.
pub const DOCKER: &str = "docker";
/// The transport of `wharf load` of a Docker-format archive (`docker save`'s tar).
pub const DOCKER_ARCHIVE: &str = "docker-archive";
/// The transport of `wharf load` of an OCI image layout archive.
pub const OCI_ARCHIVE: &str = "oci-archive";
/// The transport of `wharf load` of an OCI image layout directory.
pub const OCI: &str = "oci";

/// A whole policy file.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Where it was read from (for messages); `None` for built-in or test policies.
    pub path: Option<PathBuf>,
    default: Vec<Requirement>,
    transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
}

/// One requirement of a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    InsecureAcceptAnything,
    Reject,
    /// Simple signing with GPG keys: a signature in the image's lookaside storage, made by
    /// one of `keys`, for this manifest, with an identity `identity` accepts.
    SignedBy {
        /// `GPGKeys`; the types containers-policy.json(5) reserves parse, and refuse every
        /// image when evaluated, as in containers/image.
        key_type: String,
        keys: Vec<KeySource>,
        identity: SignedIdentity,
    },
    /// A sigstore (cosign) signature attached to the image, made by one of `keys`.
    SigstoreSigned {
        keys: Vec<KeySource>,
        identity: SignedIdentity,
    },
    /// Reserved by containers-policy.json(5), implemented by no one: refuses every image.
    SignedBaseLayer,
}

/// Where a requirement's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Path(PathBuf),
    /// `keyData`: the key file's bytes (base64 in the policy).
    Data(Vec<u8>),
}

/// Which docker reference in a signature is accepted for the image being checked
/// (containers-policy.json(5), "signedIdentity").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedIdentity {
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    ExactReference(String),
    ExactRepository(String),
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

impl Requirement {
    /// The rule as the policy spells its type, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Requirement::InsecureAcceptAnything => "insecureAcceptAnything",
            Requirement::Reject => "reject",
            Requirement::SignedBy { .. } => "signedBy",
            Requirement::SigstoreSigned { .. } => "sigstoreSigned",
            Requirement::SignedBaseLayer => "signedBaseLayer",
        }
    }
}

impl Policy {
    /// Parse a policy file's contents (`path` names it in errors).
    pub fn parse(text: &[u8], path: Option<&Path>) -> Result<Policy, String> {
        let raw: RawPolicy = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        let default = raw
            .default
            .ok_or("the policy has no \"default\" requirements")?;
        let default = requirements(default, "default")?;
        let mut transports = BTreeMap::new();
        for (transport, scopes) in raw.transports.unwrap_or_default().0 {
            let mut parsed = BTreeMap::new();
            for (scope, reqs) in scopes.0 {
                validate_scope(&transport, &scope)?;
                let what = format!("transport {transport:?} scope {scope:?}");
                parsed.insert(scope, requirements(reqs, &what)?);
            }
            transports.insert(transport, parsed);
        }
        Ok(Policy {
            path: path.map(Path::to_path_buf),
            default,
            transports,
        })
    }

    /// A policy that accepts anything (no policy file anywhere).
    pub fn accept_anything() -> Policy {
        Policy {
            path: None,
            default: vec![Requirement::InsecureAcceptAnything],
            transports: BTreeMap::new(),
        }
    }

    /// The requirements for an image of `transport` whose identity and enclosing
    /// namespaces are `scopes` (most specific first), with the scope that chose them
    /// (`""` for the transport's default, `"default"` for the policy's).
    pub fn requirements_for<'a>(
        &'a self,
        transport: &str,
        scopes: &[String],
    ) -> (&'a [Requirement], String) {
        if let Some(t) = self.transports.get(transport) {
            for s in scopes {
                if let Some(r) = t.get(s) {
                    return (r, format!("{transport}:{s}"));
                }
            }
            if let Some(r) = t.get("") {
                return (r, format!("{transport} (the transport's default)"));
            }
        }
        (&self.default, "default".to_string())
    }

    /// True when nothing it says can refuse an image (the shape of Debian's and Fedora's
    /// shipped policy.json).
    pub fn accepts_anything(&self) -> bool {
        let open = |r: &[Requirement]| {
            r.iter()
                .all(|r| matches!(r, Requirement::InsecureAcceptAnything))
        };
        open(&self.default)
            && self
                .transports
                .values()
                .all(|t| t.values().all(|r| open(r)))
    }
}

/// The scopes of a registry image, most specific first, as containers/image's docker
/// transport lists them: the reference itself (`host/repo:tag` or `host/repo@digest`),
/// the repository, each enclosing namespace up to the host, then `*.domain` wildcards of
/// the host name (without its port).
pub fn docker_scopes(r: &Reference) -> Vec<String> {
    let mut scopes = Vec::new();
    let name = r.name();
    let identity = match (r.tag(), r.digest()) {
        (Some(t), Some(d)) => format!("{name}:{t}@{d}"),
        (Some(t), None) => format!("{name}:{t}"),
        (None, Some(d)) => format!("{name}@{d}"),
        (None, None) => name.clone(),
    };
    scopes.push(identity);
    let mut n = name.as_str();
    loop {
        scopes.push(n.to_string());
        match n.rfind('/') {
            Some(i) => n = &n[..i],
            None => break,
        }
    }
    let mut host = n.split(':').next().unwrap_or(n);
    while let Some(i) = host.find('.') {
        host = &host[i + 1..];
        scopes.push(format!("*.{host}"));
    }
    scopes
}

/// The scopes of a local archive or layout directory: its path with symbolic links and `..`
/// resolved (so a link inside a trusted directory does not borrow its scope), then each
/// enclosing directory, as containers/image's oci and oci-archive transports list them.
/// (docker-archive has only its transport's default scope: see [`archive_scopes`].)
pub fn path_scopes(path: &Path) -> Vec<String> {
    let resolved = std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let mut scopes = vec![resolved.to_string_lossy().into_owned()];
    let mut p = resolved.parent();
    while let Some(dir) = p {
        scopes.push(dir.to_string_lossy().into_owned());
        p = dir.parent();
    }
    scopes
}

/// The scopes of an archive loaded by `transport`.
pub fn archive_scopes(transport: &str, path: Option<&Path>) -> Vec<String> {
    match path {
        Some(p) if transport != DOCKER_ARCHIVE => path_scopes(p),
        _ => Vec::new(),
    }
}

/// containers/image's checks of a scope: none for `docker` (a scope that names nothing
/// never matches), only `""` for `docker-archive`, absolute clean paths for `oci` and
/// `oci-archive`.
fn validate_scope(transport: &str, scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Ok(());
    }
    let bad = |why: &str| Err(format!("transport {transport:?}: scope {scope:?} {why}"));
    match transport {
        DOCKER_ARCHIVE => bad("is not allowed: docker-archive has only the default \"\" scope"),
        OCI_ARCHIVE | OCI => {
            let p = Path::new(scope);
            if !p.is_absolute() {
                return bad("is not an absolute path");
            }
            if p.components().any(|c| {
                matches!(
                    c,
                    std::path::Component::ParentDir | std::path::Component::CurDir
                )
            }) || (scope.len() > 1 && scope.ends_with('/'))
                || scope.contains("//")
            {
                return bad("is not a clean path");
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn requirements(raw: Vec<RawRequirement>, what: &str) -> Result<Vec<Requirement>, String> {
    if raw.is_empty() {
        return Err(format!(
            "{what}: an empty requirement list (containers/image refuses it; say \"reject\" or \"insecureAcceptAnything\")"
        ));
    }
    raw.into_iter()
        .map(|r| requirement(r).map_err(|e| format!("{what}: {e}")))
        .collect()
}

fn requirement(r: RawRequirement) -> Result<Requirement, String> {
    let present = [
        ("keyType", r.key_type.is_some()),
        ("keyPath", r.key_path.is_some()),
        ("keyPaths", r.key_paths.is_some()),
        ("keyData", r.key_data.is_some()),
        ("keyDatas", r.key_datas.is_some()),
        ("signedIdentity", r.signed_identity.is_some()),
        ("fulcio", r.fulcio.is_some()),
        ("rekorPublicKeyPath", r.rekor_public_key_path.is_some()),
        ("rekorPublicKeyData", r.rekor_public_key_data.is_some()),
        ("pki", r.pki.is_some()),
        ("baseLayerIdentity", false),
    ];
    let only = |allowed: &[&str]| -> Result<(), String> {
        match present
            .iter()
            .find(|(key, set)| *set && !allowed.contains(key))
        {
            Some((key, _)) => Err(format!("a {:?} requirement takes no {key:?}", r.kind)),
            None => Ok(()),
        }
    };
    let identity = || {
        r.signed_identity
            .clone()
            .map_or(Ok(SignedIdentity::MatchRepoDigestOrExact), signed_identity)
    };
    match r.kind.as_str() {
        "insecureAcceptAnything" => {
            only(&[])?;
            Ok(Requirement::InsecureAcceptAnything)
        }
        "reject" => {
            only(&[])?;
            Ok(Requirement::Reject)
        }
        "signedBy" => {
            only(&[
                "keyType",
                "keyPath",
                "keyPaths",
                "keyData",
                "signedIdentity",
            ])?;
            let key_type = match r.key_type.as_deref() {
                Some(
                    t @ ("GPGKeys" | "X509Certificates" | "signedByGPGKeys" | "signedByX509CAs"),
                ) => t.to_string(),
                Some(other) => return Err(format!("unknown signedBy keyType {other:?}")),
                None => {
                    return Err("a signedBy requirement needs \"keyType\": \"GPGKeys\"".into());
                }
            };
            let keys = key_sources(&r, "signedBy")?;
            Ok(Requirement::SignedBy {
                key_type,
                keys,
                identity: identity()?,
            })
        }
        "signedBaseLayer" => {
            if r.base_layer_identity.is_none() {
                return Err("a signedBaseLayer requirement needs \"baseLayerIdentity\"".into());
            }
            only(&[])?;
            Ok(Requirement::SignedBaseLayer)
        }
        "sigstoreSigned" => {
            only(&[
                "keyPath",
                "keyPaths",
                "keyData",
                "keyDatas",
                "signedIdentity",
                "fulcio",
                "rekorPublicKeyPath",
                "rekorPublicKeyData",
                "pki",
            ])?;
            if r.fulcio.is_some() || r.pki.is_some() {
                return Err(
                    "sigstoreSigned with \"fulcio\" or \"pki\" (keyless certificates) is not supported by wharf: name the public keys (keyPath, keyPaths, keyData or keyDatas)"
                        .into(),
                );
            }
            if r.rekor_public_key_path.is_some() || r.rekor_public_key_data.is_some() {
                return Err(
                    "sigstoreSigned with a Rekor key (transparency log proofs) is not supported by wharf"
                        .into(),
                );
            }
            let keys = key_sources(&r, "sigstoreSigned")?;
            Ok(Requirement::SigstoreSigned {
                keys,
                identity: identity()?,
            })
        }
        "" => Err("a requirement with an empty \"type\"".into()),
        other => Err(format!("unknown requirement type {other:?}")),
    }
}

/// Exactly one of keyPath, keyPaths, keyData (and keyDatas for sigstoreSigned).
fn key_sources(r: &RawRequirement, ty: &str) -> Result<Vec<KeySource>, String> {
    let given = [
        r.key_path.is_some(),
        r.key_paths.is_some(),
        r.key_data.is_some(),
        r.key_datas.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let forms = if ty == "signedBy" {
        "keyPath, keyPaths or keyData"
    } else {
        "keyPath, keyPaths, keyData or keyDatas"
    };
    if given != 1 {
        return Err(format!("{ty} needs exactly one of {forms}"));
    }
    let data = |d: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(d)
            .map(KeySource::Data)
            .map_err(|e| format!("{ty} keyData is not base64: {e}"))
    };
    let keys = if let Some(p) = &r.key_path {
        vec![KeySource::Path(PathBuf::from(p))]
    } else if let Some(ps) = &r.key_paths {
        ps.iter()
            .map(|p| KeySource::Path(PathBuf::from(p)))
            .collect()
    } else if let Some(d) = &r.key_data {
        vec![data(d)?]
    } else {
        r.key_datas
            .iter()
            .flatten()
            .map(|d| data(d))
            .collect::<Result<_, _>>()?
    };
    if keys.is_empty() {
        return Err(format!("{ty}: an empty key list"));
    }
    Ok(keys)
}

fn signed_identity(raw: RawIdentity) -> Result<SignedIdentity, String> {
    let check = |given: &[(&str, bool)]| -> Result<(), String> {
        match given.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!("signedIdentity {:?} takes no {key:?}", raw.kind)),
            None => Ok(()),
        }
    };
    let reference = |s: &Option<String>, key: &str, tagged: bool| -> Result<String, String> {
        let s = s
            .clone()
            .ok_or(format!("signedIdentity {:?} needs {key:?}", raw.kind))?;
        let r = Reference::parse_bare(&s)
            .map_err(|e| format!("signedIdentity {:?}: {key} {s:?}: {e}", raw.kind))?;
        let named_only = r.tag().is_none() && r.digest().is_none();
        // exactReference must pin a tag or digest; exactRepository compares names only
        // (a tag there is ignored, as containers/image ignores it).
        if tagged && named_only {
            return Err(format!(
                "signedIdentity {:?}: {key} {s:?} needs a tag or digest",
                raw.kind
            ));
        }
        Ok(s)
    };
    match raw.kind.as_str() {
        "matchExact" | "matchRepoDigestOrExact" | "matchRepository" => {
            check(&[
                ("dockerReference", raw.docker_reference.is_some()),
                ("dockerRepository", raw.docker_repository.is_some()),
                ("prefix", raw.prefix.is_some()),
                ("signedPrefix", raw.signed_prefix.is_some()),
            ])?;
            Ok(match raw.kind.as_str() {
                "matchExact" => SignedIdentity::MatchExact,
                "matchRepoDigestOrExact" => SignedIdentity::MatchRepoDigestOrExact,
                _ => SignedIdentity::MatchRepository,
            })
        }
        "exactReference" => {
            check(&[
                ("dockerRepository", raw.docker_repository.is_some()),
                ("prefix", raw.prefix.is_some()),
                ("signedPrefix", raw.signed_prefix.is_some()),
            ])?;
            Ok(SignedIdentity::ExactReference(reference(
                &raw.docker_reference,
                "dockerReference",
                true,
            )?))
        }
        "exactRepository" => {
            check(&[
                ("dockerReference", raw.docker_reference.is_some()),
                ("prefix", raw.prefix.is_some()),
                ("signedPrefix", raw.signed_prefix.is_some()),
            ])?;
            Ok(SignedIdentity::ExactRepository(reference(
                &raw.docker_repository,
                "dockerRepository",
                false,
            )?))
        }
        "remapIdentity" => {
            check(&[
                ("dockerReference", raw.docker_reference.is_some()),
                ("dockerRepository", raw.docker_repository.is_some()),
            ])?;
            let prefix = raw
                .prefix
                .clone()
                .ok_or("signedIdentity \"remapIdentity\" needs \"prefix\"")?;
            let signed_prefix = raw
                .signed_prefix
                .clone()
                .ok_or("signedIdentity \"remapIdentity\" needs \"signedPrefix\"")?;
            // containers/image's validateIdentityRemappingPrefix: a host, or a name.
            for p in [&prefix, &signed_prefix] {
                let host_like = !p.contains('/') && !p.is_empty() && !p.contains(['*', '@']);
                if !host_like && Reference::parse_bare(p).is_err() {
                    return Err(format!(
                        "signedIdentity \"remapIdentity\": prefix {p:?} is neither a registry host nor a repository name"
                    ));
                }
            }
            Ok(SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            })
        }
        "" => Err("a signedIdentity with an empty \"type\"".into()),
        other => Err(format!("unknown signedIdentity type {other:?}")),
    }
}

impl SignedIdentity {
    /// Whether a signature claiming `signed` (its `docker-reference`) is accepted for the
    /// image pulled as `image`, by containers/image's rules (policy_reference_match.go).
    pub fn accepts(&self, image: &Reference, signed: &str) -> bool {
        let Ok(signed) = Reference::parse_bare(signed) else {
            return false;
        };
        let exact = |a: &Reference, b: &Reference| {
            let named_only = |r: &Reference| r.tag().is_none() && r.digest().is_none();
            !named_only(a) && !named_only(b) && a.to_string() == b.to_string()
        };
        let signed_named_only = signed.tag().is_none() && signed.digest().is_none();
        let repo_digest_or_exact = |image: &Reference| match (image.tag(), image.digest()) {
            // A signature must name a tag or digest itself.
            _ if signed_named_only => false,
            // A digest pins the content: the repository is what remains to agree on.
            (_, Some(_)) => image.name() == signed.name(),
            (Some(_), None) => exact(image, &signed),
            (None, None) => false,
        };
        match self {
            SignedIdentity::MatchExact => exact(image, &signed),
            SignedIdentity::MatchRepoDigestOrExact => repo_digest_or_exact(image),
            SignedIdentity::MatchRepository => image.name() == signed.name(),
            SignedIdentity::ExactReference(r) => {
                Reference::parse_bare(r).is_ok_and(|r| exact(&r, &signed))
            }
            SignedIdentity::ExactRepository(r) => {
                Reference::parse_bare(r).is_ok_and(|r| r.name() == signed.name())
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => {
                // containers/image's refMatchesPrefix: the prefix ends at a path element
                // of the name ("a.com/ns" remaps "a.com/ns/x", never "a.com/nsx").
                let name = image.name();
                let under = name
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
                if !under {
                    return repo_digest_or_exact(image);
                }
                // Only the remapped name is compared; one that is not a reference in its
                // full form (as containers/image's ParseNamed insists: `busybox` is not
                // `docker.io/library/busybox`) matches nothing.
                let whole = image.to_string();
                let remapped = format!("{signed_prefix}{}", &whole[prefix.len()..]);
                Reference::parse_bare(&remapped)
                    .is_ok_and(|r| r.to_string() == remapped && repo_digest_or_exact(&r))
            }
        }
    }

    /// As the policy spells it, for messages.
    pub fn describe(&self) -> String {
        match self {
            SignedIdentity::MatchExact => "matchExact".into(),
            SignedIdentity::MatchRepoDigestOrExact => "matchRepoDigestOrExact".into(),
            SignedIdentity::MatchRepository => "matchRepository".into(),
            SignedIdentity::ExactReference(r) => format!("exactReference {r}"),
            SignedIdentity::ExactRepository(r) => format!("exactRepository {r}"),
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => format!("remapIdentity {prefix} -> {signed_prefix}"),
        }
    }
}

// The file's shapes, strict: unknown keys and duplicated keys are errors, as in
// containers/image (which reports "Unknown key" and "Duplicate key").

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    default: Option<Vec<RawRequirement>>,
    transports: Option<StrictMap<StrictMap<Vec<RawRequirement>>>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRequirement {
    #[serde(rename = "type")]
    kind: String,
    key_type: Option<String>,
    key_path: Option<String>,
    key_paths: Option<Vec<String>>,
    key_data: Option<String>,
    key_datas: Option<Vec<String>>,
    signed_identity: Option<RawIdentity>,
    fulcio: Option<serde_json::Value>,
    rekor_public_key_path: Option<String>,
    rekor_public_key_data: Option<String>,
    pki: Option<serde_json::Value>,
    base_layer_identity: Option<serde_json::Value>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawIdentity {
    #[serde(rename = "type")]
    kind: String,
    docker_reference: Option<String>,
    docker_repository: Option<String>,
    prefix: Option<String>,
    signed_prefix: Option<String>,
}

/// A JSON object whose keys must be unique.
#[derive(Default)]
struct StrictMap<V>(BTreeMap<String, V>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for StrictMap<V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Strict<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Strict<V> {
            type Value = StrictMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    if out.contains_key(&k) {
                        return Err(de::Error::custom(format!("duplicate key {k:?}")));
                    }
                    out.insert(k, v);
                }
                Ok(StrictMap(out))
            }
        }
        d.deserialize_map(Strict(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Policy, String> {
        Policy::parse(s.as_bytes(), None)
    }

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn debians_shipped_policy_accepts_anything() {
        let p = parse(
            r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker-daemon":{"":[{"type":"insecureAcceptAnything"}]}}}"#,
        )
        .unwrap();
        assert!(p.accepts_anything());
    }

    #[test]
    fn broken_policies_are_errors_naming_the_problem() {
        for (text, says) in [
            ("{", "EOF"),
            ("{}", "no \"default\""),
            (r#"{"default":[]}"#, "empty requirement list"),
            (r#"{"default":[{"type":"reject"}],"x":1}"#, "unknown field"),
            (
                r#"{"default":[{"type":"rejectt"}]}"#,
                "unknown requirement type",
            ),
            (
                r#"{"default":[{"type":"reject","keyPath":"/k"}]}"#,
                "takes no",
            ),
            (
                r#"{"default":[{"type":"signedBy","keyPath":"/k"}]}"#,
                "keyType",
            ),
            (
                r#"{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}"#,
                "exactly one of",
            ),
            (
                r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","keyData":"AA=="}]}"#,
                "exactly one of",
            ),
            (
                r#"{"default":[{"type":"signedBy","keyType":"PGP","keyPath":"/k"}]}"#,
                "unknown signedBy keyType",
            ),
            (
                r#"{"default":[{"type":"sigstoreSigned","fulcio":{}}]}"#,
                "keyless",
            ),
            (
                r#"{"default":[{"type":"reject"}],"transports":{"docker":{"a":[{"type":"reject"}],"a":[{"type":"reject"}]}}}"#,
                "duplicate key",
            ),
            (
                r#"{"default":[{"type":"reject"}],"transports":{"docker-archive":{"/a":[{"type":"reject"}]}}}"#,
                "only the default",
            ),
            (
                r#"{"default":[{"type":"reject"}],"transports":{"oci-archive":{"/a/../b":[{"type":"reject"}]}}}"#,
                "not a clean path",
            ),
            (
                r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"exactReference","dockerReference":"a.com/x"}}]}"#,
                "needs a tag or digest",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_most_specific_scope_wins() {
        let p = parse(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "":[{"type":"insecureAcceptAnything"}],
                "reg.example.com:5000/team/app:v1":[{"type":"insecureAcceptAnything"}],
                "reg.example.com:5000/team":[{"type":"reject"}],
                "*.example.com":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"}]
            }}}"#,
        )
        .unwrap();
        let pick = |s: &str| p.requirements_for(DOCKER, &docker_scopes(&r(s))).1;
        assert_eq!(
            pick("reg.example.com:5000/team/app:v1"),
            "docker:reg.example.com:5000/team/app:v1"
        );
        assert_eq!(
            pick("reg.example.com:5000/team/app:v2"),
            "docker:reg.example.com:5000/team"
        );
        assert_eq!(pick("reg.example.com:5000/other"), "docker:*.example.com");
        assert_eq!(pick("quay.io/x/y"), "docker (the transport's default)");
        assert_eq!(
            p.requirements_for(OCI_ARCHIVE, &path_scopes(Path::new("/a/b.tar")))
                .1,
            "default"
        );
        assert_eq!(
            docker_scopes(&r("127.0.0.1:5000/tools/busybox:1")),
            [
                "127.0.0.1:5000/tools/busybox:1",
                "127.0.0.1:5000/tools/busybox",
                "127.0.0.1:5000/tools",
                "127.0.0.1:5000",
                "*.0.0.1",
                "*.0.1",
                "*.1"
            ]
        );
    }

    #[test]
    fn signed_identities_match_as_containers_image_matches_them() {
        use SignedIdentity::*;
        let tagged = r("reg.io/ns/app:v1");
        let pinned = r(
            "reg.io/ns/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        );
        for (rule, image, signed, ok) in [
            (MatchExact, &tagged, "reg.io/ns/app:v1", true),
            (MatchExact, &tagged, "reg.io/ns/app:v2", false),
            (MatchExact, &tagged, "reg.io/ns/app", false),
            (MatchExact, &pinned, "reg.io/ns/app:v1", false),
            (MatchRepoDigestOrExact, &tagged, "reg.io/ns/app:v1", true),
            (MatchRepoDigestOrExact, &tagged, "reg.io/ns/app:v2", false),
            (MatchRepoDigestOrExact, &pinned, "reg.io/ns/app:v9", true),
            (MatchRepoDigestOrExact, &pinned, "reg.io/ns/other:v9", false),
            (MatchRepoDigestOrExact, &pinned, "reg.io/ns/app", false),
            (MatchRepository, &tagged, "reg.io/ns/app:v2", true),
            (MatchRepository, &tagged, "reg.io/ns/app2:v1", false),
            (
                ExactReference("reg.io/x/y:1".into()),
                &tagged,
                "reg.io/x/y:1",
                true,
            ),
            (
                ExactReference("reg.io/x/y:1".into()),
                &tagged,
                "reg.io/ns/app:v1",
                false,
            ),
            (
                ExactRepository("reg.io/x/y".into()),
                &tagged,
                "reg.io/x/y:7",
                true,
            ),
            (
                ExactRepository("reg.io/x/y".into()),
                &tagged,
                "reg.io/ns/app:v1",
                false,
            ),
            (
                RemapIdentity {
                    prefix: "reg.io/ns".into(),
                    signed_prefix: "build.io/prod".into(),
                },
                &tagged,
                "build.io/prod/app:v1",
                true,
            ),
            (
                RemapIdentity {
                    prefix: "reg.io/ns".into(),
                    signed_prefix: "build.io/prod".into(),
                },
                &tagged,
                "reg.io/ns/app:v1",
                false,
            ),
            (
                RemapIdentity {
                    prefix: "reg.io/n".into(),
                    signed_prefix: "build.io/prod".into(),
                },
                &tagged,
                "build.io/prods/app:v1",
                false,
            ),
            (
                RemapIdentity {
                    prefix: "reg.io/ns".into(),
                    signed_prefix: "build.io/prod".into(),
                },
                &pinned,
                "build.io/prod/app:v7",
                true,
            ),
            (
                MatchExact,
                &r("busybox"),
                "docker.io/library/busybox:latest",
                true,
            ),
            // A remapped name must be whole: `busybox` is not a full name.
            (
                RemapIdentity {
                    prefix: "reg.io/ns/app".into(),
                    signed_prefix: "busybox".into(),
                },
                &tagged,
                "docker.io/library/busybox:v1",
                false,
            ),
            (
                RemapIdentity {
                    prefix: "reg.io/ns/app".into(),
                    signed_prefix: "docker.io/library/busybox".into(),
                },
                &tagged,
                "docker.io/library/busybox:v1",
                true,
            ),
            // index.docker.io is docker.io, as in docker/distribution's reference.
            (
                MatchExact,
                &r("index.docker.io/library/busybox:1"),
                "docker.io/library/busybox:1",
                true,
            ),
        ] {
            assert_eq!(rule.accepts(image, signed), ok, "{rule:?} {image} {signed}");
        }
    }
}
