//! The registry side of trust: the signatures a pull's policy asks for, fetched and checked
//! before anything is stored (lookaside storage for `signedBy`, the registry's sigstore
//! attachments for `sigstoreSigned`), and sigstore signatures attached on push.

use std::time::Duration;

use futures_util::StreamExt;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference as OciRef};

use super::{
    RegistryError, RegistryOptions, auth, block_on, client, client_err, request_err, retry,
};
use crate::image::reference::Reference;
use crate::image::store::StoreError;
use crate::image::{blob, media};
use crate::trust::{self, Requirement, Trust, TrustError, lookaside, policy};

/// One pull's signature policy: its requirements for the image's scope, and what fetching
/// its signatures takes (registries.d is read and the lookaside client made once a pull,
/// not once a platform).
pub(super) struct TrustCheck<'a> {
    trust: &'a Trust,
    reqs: &'a [Requirement],
    scope: String,
    /// The lookaside storage and a client for it, when a requirement is `signedBy`.
    lookaside: Option<(String, reqwest::Client)>,
    /// Read the sigstore attachments: a requirement is `sigstoreSigned` and registries.d
    /// turns attachments on for the image.
    attachments: bool,
}

impl<'a> TrustCheck<'a> {
    /// The policy's requirements for `reference`. A scope that rejects every image refuses
    /// here, before the registry is asked anything.
    pub(super) fn new(trust: &'a Trust, reference: &Reference) -> Result<Self, RegistryError> {
        let (reqs, scope) = trust
            .policy
            .requirements_for(policy::DOCKER, &policy::docker_scopes(reference));
        if let Some(r) = reqs.iter().find(|r| matches!(r, Requirement::Reject)) {
            let none = trust::Signatures::default();
            trust::evaluate(trust, reference, "", std::slice::from_ref(r), &scope, &none)?;
        }
        let gpg = reqs
            .iter()
            .any(|r| matches!(r, Requirement::SignedBy { .. }));
        let sigstore = reqs
            .iter()
            .any(|r| matches!(r, Requirement::SigstoreSigned { .. }));
        let mut check = TrustCheck {
            trust,
            reqs,
            scope,
            lookaside: None,
            attachments: false,
        };
        if gpg || sigstore {
            let config = trust.registries()?;
            if gpg {
                check.lookaside = Some((config.lookaside(reference, false), lookaside_client()?));
            }
            check.attachments = sigstore && config.use_sigstore_attachments(reference);
        }
        Ok(check)
    }

    /// The verdict on `reference`'s manifest `digest` (the top level, or a platform's).
    pub(super) async fn check(
        &self,
        client: &Client,
        image: &OciRef,
        auth: &RegistryAuth,
        reference: &Reference,
        digest: &str,
    ) -> Result<(), RegistryError> {
        let mut sigs = trust::Signatures::default();
        if let Some((base, http)) = &self.lookaside {
            sigs.gpg = lookaside::read(http, base, reference, digest)
                .await
                .map_err(|message| TrustError::Signatures {
                    image: reference.to_string(),
                    message,
                })?;
            sigs.lookaside = base.clone();
        }
        if self.attachments {
            sigs.sigstore =
                Some(attached(client, image, auth, reference.registry(), digest).await?);
        }
        trust::evaluate(self.trust, reference, digest, self.reqs, &self.scope, &sigs)?;
        Ok(())
    }
}

/// The client for lookaside storage over http(s): never from https down to plain http, as
/// for the registry itself.
fn lookaside_client() -> Result<reqwest::Client, TrustError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let down = attempt.url().scheme() == "http"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if down || attempt.previous().len() > 5 {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|e| TrustError::Registries(format!("the lookaside storage client: {e}")))
}

/// The most bytes of one attached signature's payload.
const MAX_SIGSTORE_PAYLOAD: u64 = 1 << 20;

/// The manifest tagged `sha256-HEX.sig` beside `digest` in `image`'s repository, if there
/// is one: the reference it is at, and the manifest.
async fn signature_manifest(
    client: &Client,
    image: &OciRef,
    auth: &RegistryAuth,
    registry: &str,
    digest: &str,
) -> Result<(OciRef, Option<oci_spec::image::ImageManifest>), RegistryError> {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode};
    let tag = trust::sigstore::signature_tag(digest).map_err(|e| request_err(registry, e))?;
    let sig_ref = OciRef::with_tag(
        image.registry().to_string(),
        image.repository().to_string(),
        tag,
    );
    let raw = retry("signature manifest", || async {
        match client
            .pull_manifest_raw(
                &sig_ref,
                auth,
                &[media::OCI_MANIFEST, media::DOCKER_MANIFEST],
            )
            .await
        {
            Ok((bytes, _)) => Ok(Some(bytes)),
            Err(E::ImageManifestNotFoundError(_)) => Ok(None),
            Err(E::ServerError { code: 404, .. }) => Ok(None),
            Err(E::RegistryError { envelope, .. })
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) =>
            {
                Ok(None)
            }
            Err(e) => Err(client_err(registry, e)),
        }
    })
    .await?;
    let Some(raw) = raw else {
        return Ok((sig_ref, None));
    };
    if raw.len() as u64 > media::MAX_MANIFEST_BYTES {
        return Err(request_err(
            registry,
            "a signature manifest over its size cap",
        ));
    }
    let manifest = serde_json::from_slice(&raw)
        .map_err(|e| request_err(registry, format!("the signature manifest: {e}")))?;
    Ok((sig_ref, Some(manifest)))
}

/// The sigstore signatures attached to `digest` in `image`'s repository (none when the
/// signature tag does not exist).
async fn attached(
    client: &Client,
    image: &OciRef,
    auth: &RegistryAuth,
    registry: &str,
    digest: &str,
) -> Result<Vec<trust::sigstore::Attached>, RegistryError> {
    let (_, Some(manifest)) = signature_manifest(client, image, auth, registry, digest).await?
    else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for layer in manifest.layers() {
        if layer.media_type().to_string() != trust::sigstore::PAYLOAD_MEDIA_TYPE {
            continue;
        }
        let Some(signature) = layer
            .annotations()
            .as_ref()
            .and_then(|a| a.get(trust::sigstore::SIGNATURE_ANNOTATION))
        else {
            continue;
        };
        if layer.size() > MAX_SIGSTORE_PAYLOAD {
            return Err(request_err(
                registry,
                format!("a signature payload of {} bytes", layer.size()),
            ));
        }
        let wanted = layer.digest().to_string();
        let payload = retry("signature payload", || async {
            let mut stream = client
                .pull_blob_stream(image, wanted.as_str())
                .await
                .map_err(|e| client_err(registry, e))?;
            let mut buf = Vec::new();
            while let Some(chunk) = stream.stream.next().await {
                buf.extend_from_slice(&chunk.map_err(|e| super::stream_err(registry, e))?);
                if buf.len() as u64 > layer.size() {
                    return Err(request_err(
                        registry,
                        "a signature payload longer than its descriptor",
                    ));
                }
            }
            Ok(buf)
        })
        .await?;
        if blob::digest_of(&payload).to_string() != wanted {
            return Err(StoreError::from(blob::BlobError::DigestMismatch {
                expected: wanted,
                actual: blob::digest_of(&payload).to_string(),
            })
            .into());
        }
        found.push(trust::sigstore::Attached {
            payload,
            signature: signature.clone(),
        });
    }
    Ok(found)
}

/// Attach `signature` (of the manifest `digest`, pushed to `target`) in the registry, as
/// cosign and containers/image attach sigstore signatures: a layer of the OCI manifest
/// tagged `sha256-HEX.sig`, after the signatures already there (kept), with a config whose
/// `rootfs.diff_ids` lists the layers. A signature already attached is not added twice.
pub fn attach_signature(
    target: &Reference,
    digest: &str,
    signature: &trust::sigstore::Attached,
    opts: &RegistryOptions,
) -> Result<(), RegistryError> {
    block_on(attach_async(target, digest, signature, opts))
}

async fn attach_async(
    target: &Reference,
    digest: &str,
    signature: &trust::sigstore::Attached,
    opts: &RegistryOptions,
) -> Result<(), RegistryError> {
    use oci_spec::image::{
        Descriptor, DescriptorBuilder, ImageManifest, ImageManifestBuilder, MediaType,
    };
    let registry = target.registry().to_string();
    let client = client(&registry, opts)?;
    let auth = auth(opts);
    let image = super::oci_ref(target);
    client
        .auth(&image, &auth, oci_client::RegistryOperation::Push)
        .await
        .map_err(|e| client_err(&registry, e))?;
    let (sig_ref, existing) = signature_manifest(&client, &image, &auth, &registry, digest).await?;
    let payload_digest = blob::digest_of(&signature.payload).to_string();
    let mut layers: Vec<Descriptor> = existing
        .as_ref()
        .map(|m: &ImageManifest| m.layers().clone())
        .unwrap_or_default();
    if layers.iter().any(|l| {
        l.digest().to_string() == payload_digest
            && l.annotations()
                .as_ref()
                .and_then(|a| a.get(trust::sigstore::SIGNATURE_ANNOTATION))
                == Some(&signature.signature)
    }) {
        return Ok(());
    }
    let bad = |e: oci_spec::OciSpecError| request_err(&registry, e);
    push_bytes(&client, &image, &registry, signature.payload.clone()).await?;
    layers.push(
        DescriptorBuilder::default()
            .media_type(MediaType::Other(trust::sigstore::PAYLOAD_MEDIA_TYPE.into()))
            .digest(blob::digest_of(&signature.payload))
            .size(signature.payload.len() as u64)
            .annotations([(
                trust::sigstore::SIGNATURE_ANNOTATION.to_string(),
                signature.signature.clone(),
            )])
            .build()
            .map_err(bad)?,
    );
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest().to_string()).collect::<Vec<_>>(),
        },
    }))
    .expect("a JSON value serialises");
    push_bytes(&client, &image, &registry, config.clone()).await?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageConfig)
                .digest(blob::digest_of(&config))
                .size(config.len() as u64)
                .build()
                .map_err(bad)?,
        )
        .layers(layers)
        .build()
        .map_err(bad)?;
    let bytes = serde_json::to_vec(&manifest).map_err(|e| request_err(&registry, e))?;
    let content_type = http::HeaderValue::from_static(media::OCI_MANIFEST);
    retry("signature manifest", || {
        let (bytes, content_type) = (bytes.clone(), content_type.clone());
        let (client, registry, sig_ref) = (&client, &registry, &sig_ref);
        async move {
            client
                .push_manifest_raw(sig_ref, bytes, content_type)
                .await
                .map_err(|e| client_err(registry, e))
        }
    })
    .await?;
    Ok(())
}

/// Upload a small blob held in memory (unless the registry has it).
async fn push_bytes(
    client: &Client,
    image: &OciRef,
    registry: &str,
    data: Vec<u8>,
) -> Result<(), RegistryError> {
    let digest = blob::digest_of(&data).to_string();
    if client.blob_exists(image, &digest).await.unwrap_or(false) {
        return Ok(());
    }
    let data = bytes::Bytes::from(data);
    retry("blob upload", || {
        let (data, digest) = (data.clone(), digest.clone());
        async move {
            client
                .push_blob(image, data, &digest)
                .await
                .map(|_| ())
                .map_err(|e| client_err(registry, e))
        }
    })
    .await
}
