//! The signed payload both signature kinds carry: containers-signature(5)'s "simple
//! signing" JSON (`atomic container signature`, signed with GPG) and cosign's
//! `cosign container image signature` (signed with a sigstore key), which has the same
//! shape. Read as strictly as containers/image reads it: every `critical` key must be
//! known and present, so a payload cannot say more than wharf checks.

use serde_json::{Map, Value, json};

/// The type of a GPG simple-signing payload.
pub const SIMPLE_SIGNING: &str = "atomic container signature";
/// The type of a cosign (sigstore) payload.
pub const COSIGN: &str = "cosign container image signature";

/// What a verified payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// `critical.identity.docker-reference`.
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`.
    pub manifest_digest: String,
}

/// Parse a payload of type `kind` (its signature is already verified): `critical` and
/// `optional` both present (cosign writes `"optional": null`, which only its payloads may
/// say), no duplicated key anywhere.
pub fn parse(bytes: &[u8], kind: &str) -> Result<Claim, String> {
    let Strict(v) = serde_json::from_slice(bytes)
        .map_err(|e| format!("the signed payload is not JSON: {e}"))?;
    let top = object(&v, "the payload")?;
    exactly(top, &["critical", "optional"], &[], "the payload")?;
    let opt = &top["optional"];
    if opt.is_null() && kind != COSIGN {
        return Err("optional is null".into());
    }
    if !opt.is_null() {
        let opt = object(opt, "optional")?;
        if let Some(c) = opt.get("creator")
            && !c.is_string()
        {
            return Err("optional.creator is not a string".into());
        }
        if let Some(t) = opt.get("timestamp")
            && !t.is_i64()
            && !t.as_f64().is_some_and(|f| f.fract() == 0.0)
        {
            return Err("optional.timestamp is not an integer".into());
        }
    }
    let critical = object(&top["critical"], "critical")?;
    exactly(critical, &["type", "image", "identity"], &[], "critical")?;
    match critical["type"].as_str() {
        Some(t) if t == kind => {}
        Some(t) => return Err(format!("the payload's type is {t:?}, not {kind:?}")),
        None => return Err("critical.type is not a string".into()),
    }
    let image = object(&critical["image"], "critical.image")?;
    exactly(image, &["docker-manifest-digest"], &[], "critical.image")?;
    let identity = object(&critical["identity"], "critical.identity")?;
    exactly(identity, &["docker-reference"], &[], "critical.identity")?;
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or(format!("{what} is not a string"))
    };
    Ok(Claim {
        manifest_digest: text(&image["docker-manifest-digest"], "docker-manifest-digest")?,
        docker_reference: text(&identity["docker-reference"], "docker-reference")?,
    })
}

/// A payload of type `kind` claiming `reference` for the manifest `digest`, as skopeo
/// writes it (`creator` names the signer's software, `timestamp` is seconds since 1970).
pub fn make(kind: &str, reference: &str, digest: &str, timestamp: i64) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": kind,
        },
        "optional": {
            "creator": format!("wharf {}", env!("CARGO_PKG_VERSION")),
            "timestamp": timestamp,
        },
    });
    serde_json::to_vec(&v).expect("a JSON value serialises")
}

/// A JSON value read with duplicated object keys refused (containers/image's paranoid
/// parser refuses them: two readers must not see two payloads in one).
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(serde::de::Error::custom(format!("duplicate key {k:?}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object().ok_or(format!("{what} is not an object"))
}

/// `map` has every key of `required`, and no key outside `required` and `optional`.
fn exactly(
    map: &Map<String, Value>,
    required: &[&str],
    optional: &[&str],
    what: &str,
) -> Result<(), String> {
    if let Some(k) = required.iter().find(|k| !map.contains_key(**k)) {
        return Err(format!("{what} has no {k:?}"));
    }
    if let Some(k) = map
        .keys()
        .find(|k| !required.contains(&k.as_str()) && !optional.contains(&k.as_str()))
    {
        return Err(format!("{what} has an unknown key {k:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_round_trips_and_says_no_more_than_is_checked() {
        let p = make(SIMPLE_SIGNING, "reg.io/a:1", "sha256:abc", 1);
        assert_eq!(
            parse(&p, SIMPLE_SIGNING).unwrap(),
            Claim {
                docker_reference: "reg.io/a:1".into(),
                manifest_digest: "sha256:abc".into()
            }
        );
        assert!(parse(&p, COSIGN).unwrap_err().contains("not \"cosign"));
        // cosign writes "optional": null.
        let cosign = br#"{"critical":{"identity":{"docker-reference":"r.io/a"},"image":{"docker-manifest-digest":"sha256:1"},"type":"cosign container image signature"},"optional":null}"#;
        assert!(parse(cosign, COSIGN).is_ok());
        for (bad, says) in [
            (&br#"[]"#[..], "not an object"),
            (br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"d"},"type":"atomic container signature","extra":1},"optional":{}}"#, "unknown key \"extra\""),
            (br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"d","x":1},"type":"atomic container signature"},"optional":{}}"#, "unknown key \"x\""),
            (br#"{"critical":{"identity":{},"image":{"docker-manifest-digest":"d"},"type":"atomic container signature"},"optional":{}}"#, "no \"docker-reference\""),
            (br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"d"},"type":"atomic container signature"},"optional":{},"more":{}}"#, "unknown key \"more\""),
            (br#"{"critical":{"identity":{"docker-reference":1},"image":{"docker-manifest-digest":"d"},"type":"atomic container signature"},"optional":{}}"#, "not a string"),
            (br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"d"},"type":"atomic container signature"}}"#, "no \"optional\""),
            (br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"d"},"type":"atomic container signature"},"optional":null}"#, "optional is null"),
            (br#"{"critical":{"identity":{"docker-reference":"r","docker-reference":"s"},"image":{"docker-manifest-digest":"d"},"type":"atomic container signature"},"optional":{}}"#, "duplicate key"),
        ] {
            let e = parse(bad, SIMPLE_SIGNING).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
