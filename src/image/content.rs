//! Parsing what blobs hold: manifests, indexes and image configs, checked against the media
//! type their descriptor claims and size-capped before parsing.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::{Deserialize, Serialize};

use super::media;
use super::store::{Store, StoreError};

/// What a manifest blob does not satisfy.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{what} {digest} is {size} bytes, over the {cap}-byte cap")]
    TooLarge {
        what: &'static str,
        digest: String,
        size: u64,
        cap: u64,
    },
    #[error(
        "{digest}: indexes nest more than {limit} levels deep (a hostile or broken image; no real image needs that many)"
    )]
    TooDeep { digest: String, limit: usize },
    #[error("{digest}: Docker schema 1 manifests are not supported")]
    Schema1 { digest: String },
    #[error("{digest}: descriptor says {declared} but the content says {actual}")]
    MediaTypeMismatch {
        digest: String,
        declared: String,
        actual: String,
    },
    #[error("{digest}: content has both \"manifests\" and \"layers\"/\"config\" (ambiguous)")]
    Ambiguous { digest: String },
    #[error("{digest}: unsupported manifest media type {media_type}")]
    UnsupportedMediaType { digest: String, media_type: String },
    #[error("{digest}: invalid {what}: {source}")]
    Json {
        digest: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A single-platform manifest or a multi-platform index.
#[derive(Debug, Clone)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

/// Parse `bytes` as the manifest or index its descriptor says it is.
pub fn parse_manifest(
    bytes: &[u8],
    digest: &str,
    declared: &str,
) -> Result<Manifest, ContentError> {
    let json_err = |source| ContentError::Json {
        digest: digest.to_string(),
        what: "manifest",
        source,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(json_err)?;
    let actual = value.get("mediaType").and_then(|v| v.as_str());
    if value.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1)
        || matches!(
            actual,
            Some(media::DOCKER_SCHEMA1) | Some(media::DOCKER_SCHEMA1_SIGNED)
        )
        || matches!(
            declared,
            media::DOCKER_SCHEMA1 | media::DOCKER_SCHEMA1_SIGNED
        )
    {
        return Err(ContentError::Schema1 {
            digest: digest.to_string(),
        });
    }
    if let Some(actual) = actual
        && actual != declared
    {
        return Err(ContentError::MediaTypeMismatch {
            digest: digest.to_string(),
            declared: declared.to_string(),
            actual: actual.to_string(),
        });
    }
    let has_manifests = value.get("manifests").is_some();
    let has_image_parts = value.get("layers").is_some() || value.get("config").is_some();
    if has_manifests && has_image_parts {
        return Err(ContentError::Ambiguous {
            digest: digest.to_string(),
        });
    }
    if media::is_index(declared) {
        if has_image_parts {
            return Err(ContentError::MediaTypeMismatch {
                digest: digest.to_string(),
                declared: declared.to_string(),
                actual: "an image manifest".into(),
            });
        }
        Ok(Manifest::Index(Box::new(
            serde_json::from_value(value).map_err(json_err)?,
        )))
    } else if media::is_manifest(declared) {
        if has_manifests {
            return Err(ContentError::MediaTypeMismatch {
                digest: digest.to_string(),
                declared: declared.to_string(),
                actual: "an index".into(),
            });
        }
        Ok(Manifest::Image(Box::new(
            serde_json::from_value(value).map_err(json_err)?,
        )))
    } else {
        Err(ContentError::UnsupportedMediaType {
            digest: digest.to_string(),
            media_type: declared.to_string(),
        })
    }
}

/// Read and parse the manifest or index `desc` points to.
pub fn read_manifest(store: &Store, desc: &Descriptor) -> Result<Manifest, StoreError> {
    let bytes = store.read_blob_capped(desc, "manifest", media::MAX_MANIFEST_BYTES)?;
    Ok(parse_manifest(
        &bytes,
        desc.digest().as_ref(),
        desc.media_type().as_ref(),
    )?)
}

/// Read and parse an image config (OCI, Docker or wasm).
pub fn read_config(store: &Store, desc: &Descriptor) -> Result<ImageConfig, StoreError> {
    let bytes = store.read_blob_capped(desc, "config", media::MAX_CONFIG_BYTES)?;
    ImageConfig::parse(&bytes, desc.digest().as_ref()).map_err(StoreError::from)
}

/// The fields of an image config wharf uses. Lenient on purpose: OCI image configs, Docker's,
/// and the CNCF wasm config (`application/vnd.wasm.config.v0+json`) all parse into it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootFs>,
    /// Wasm artifacts list their layers' digests here instead of `rootfs`.
    #[serde(
        default,
        rename = "layerDigests",
        skip_serializing_if = "Option::is_none"
    )]
    pub layer_digests: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentInfo>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8], digest: &str) -> Result<Self, ContentError> {
        serde_json::from_slice(bytes).map_err(|source| ContentError::Json {
            digest: digest.to_string(),
            what: "image config",
            source,
        })
    }

    /// `os/architecture[/variant]`.
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{}", self.os, self.architecture, v),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// The uncompressed digests of the layers, in order.
    pub fn diff_ids(&self) -> &[String] {
        self.rootfs.as_ref().map_or(&[], |r| r.diff_ids.as_slice())
    }
}

/// The `config` block: how to run the image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// `VOLUME`s the image declares (paths, as keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// Docker's `HEALTHCHECK` (durations in nanoseconds), kept as written.
    #[serde(
        default,
        rename = "Healthcheck",
        alias = "healthcheck",
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<serde_json::Value>,
}

/// `rootfs`: the layers' uncompressed digests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// The `component` block of a wasip2 artifact config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ComponentInfo {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:x";

    #[test]
    fn manifest_served_as_index_is_refused() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
        assert!(matches!(
            parse_manifest(m, D, media::OCI_INDEX),
            Err(ContentError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            parse_manifest(m, D, media::OCI_MANIFEST),
            Ok(Manifest::Image(_))
        ));
        // Without its own mediaType the shape still has to match.
        let bare = br#"{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
        assert!(parse_manifest(bare, D, media::OCI_INDEX).is_err());
    }

    #[test]
    fn ambiguous_and_schema1_are_refused() {
        let both = br#"{"schemaVersion":2,"manifests":[],"layers":[]}"#;
        assert!(matches!(
            parse_manifest(both, D, media::OCI_INDEX),
            Err(ContentError::Ambiguous { .. })
        ));
        let s1 = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(matches!(
            parse_manifest(s1, D, media::DOCKER_MANIFEST),
            Err(ContentError::Schema1 { .. })
        ));
    }

    #[test]
    fn wasm_config_parses() {
        let c = br#"{"architecture":"wasm","os":"wasip2","layerDigests":["sha256:ab"],"component":{"exports":["wasi:cli/run@0.2.0"],"imports":[],"target":"wasi:cli/command@0.2.0"}}"#;
        let c = ImageConfig::parse(c, D).unwrap();
        assert_eq!(c.platform(), "wasip2/wasm");
        assert!(c.diff_ids().is_empty());
        assert_eq!(c.component.unwrap().exports, ["wasi:cli/run@0.2.0"]);
    }
}
