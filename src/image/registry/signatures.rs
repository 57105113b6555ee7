//! The registry side of trust: the signatures a pull's policy asks for, fetched and checked
//! before anything is stored (lookaside storage for `signedBy`, the registry's sigstore
//! attachments for `sigstoreSigned`), and sigstore signatures attached on push.

use std::time::Duration;

use futures_util::StreamExt;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference as OciRef};

use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageManifest, ImageManifestBuilder, MediaType,
};

use super::{Pusher, RegistryError, RegistryOptions, block_on, client_err, request_err, retry};
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
    pub(super) fn new(
        trust: &'a Trust,
        reference: &Reference,
        opts: &RegistryOptions,
    ) -> Result<Self, RegistryError> {
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
                let http = lookaside_client(opts).map_err(|message| TrustError::Signatures {
                    image: reference.to_string(),
                    message,
                })?;
                check.lookaside = Some((config.lookaside(reference, false), http));
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

/// The client for lookaside storage over http(s), with the registry's TLS settings (as
/// containers/image reads lookaside storage with the registry's client): `--cert-dir`'s
/// CAs trusted too, nothing verified under `--tls-verify=false`. Never from https down to
/// plain http, as for the registry itself.
fn lookaside_client(opts: &RegistryOptions) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder();
    for pem in super::extra_certificates(opts).map_err(|e| e.to_string())? {
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| format!("a --cert-dir certificate: {e}"))?;
        builder = builder.add_root_certificate(cert);
    }
    if opts.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder
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
        .map_err(|e| format!("the lookaside storage client: {e}"))
}

/// The most bytes of one attached signature's payload.
const MAX_SIGSTORE_PAYLOAD: u64 = 1 << 20;
/// The most signatures attached to one manifest that are read (each up to
/// [`MAX_SIGSTORE_PAYLOAD`]): a registry cannot make a pull hold gigabytes.
const MAX_ATTACHED: usize = 64;

/// The signature a sigstore layer carries, if it is one.
fn signature_of(layer: &Descriptor) -> Option<&String> {
    if layer.media_type().to_string() != trust::sigstore::PAYLOAD_MEDIA_TYPE {
        return None;
    }
    layer
        .annotations()
        .as_ref()
        .and_then(|a| a.get(trust::sigstore::SIGNATURE_ANNOTATION))
}

/// The manifest tagged `sha256-HEX.sig` beside `digest` in `image`'s repository, if there
/// is one: the reference it is at, and the manifest.
async fn signature_manifest(
    client: &Client,
    image: &OciRef,
    auth: &RegistryAuth,
    registry: &str,
    digest: &str,
) -> Result<(OciRef, Option<ImageManifest>), RegistryError> {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode};
    let tag = trust::sigstore::signature_tag(digest).map_err(|e| request_err(registry, e))?;
    let sig_ref = OciRef::with_tag(
        image.registry().to_string(),
        image.repository().to_string(),
        tag,
    );
    let raw = retry("signature manifest", || async {
        match client
            .pull_manifest_raw(&sig_ref, auth, &[media::OCI_MANIFEST])
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
    let manifest: ImageManifest = serde_json::from_slice(&raw)
        .map_err(|e| request_err(registry, format!("the signature manifest: {e}")))?;
    // As containers/image: sigstore attachments are an OCI image manifest, nothing else.
    if manifest
        .media_type()
        .as_ref()
        .map(ToString::to_string)
        .as_deref()
        != Some(media::OCI_MANIFEST)
    {
        return Err(request_err(
            registry,
            format!(
                "{}: the signature manifest is not an OCI image manifest",
                sig_ref.whole()
            ),
        ));
    }
    if manifest.layers().len() > MAX_ATTACHED {
        return Err(request_err(
            registry,
            format!(
                "{}: {} signatures attached, more than the {MAX_ATTACHED} wharf reads",
                sig_ref.whole(),
                manifest.layers().len()
            ),
        ));
    }
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
        let Some(signature) = signature_of(layer) else {
            continue;
        };
        if layer.size() > MAX_SIGSTORE_PAYLOAD {
            return Err(request_err(
                registry,
                format!("a signature payload of {} bytes", layer.size()),
            ));
        }
        let payload = read_small_blob(client, image, registry, layer).await?;
        found.push(trust::sigstore::Attached {
            payload,
            signature: signature.clone(),
        });
    }
    Ok(found)
}

/// Attach `signatures` (each of a manifest digest pushed to `target`) in the registry, as
/// cosign and containers/image attach sigstore signatures: a layer of the OCI manifest
/// tagged `sha256-HEX.sig`, after the signatures already there (kept, with the manifest's
/// annotations and the config's other fields), the config's `rootfs.diff_ids` listing the
/// layers. A signature already attached (the same layer) is not added twice.
pub fn attach_signatures(
    target: &Reference,
    signatures: &[(String, trust::sigstore::Attached)],
    opts: &RegistryOptions,
) -> Result<(), RegistryError> {
    block_on(async {
        let pusher = Pusher::new(target, opts).await?;
        for (digest, signature) in signatures {
            attach(&pusher, digest, signature).await?;
        }
        Ok(())
    })
}

async fn attach(
    pusher: &Pusher,
    digest: &str,
    signature: &trust::sigstore::Attached,
) -> Result<(), RegistryError> {
    let registry = pusher.registry.as_str();
    let bad = |e: oci_spec::OciSpecError| request_err(registry, e);
    let payload_digest = blob::digest_of(&signature.payload);
    let layer = DescriptorBuilder::default()
        .media_type(MediaType::Other(trust::sigstore::PAYLOAD_MEDIA_TYPE.into()))
        .digest(payload_digest.clone())
        .size(signature.payload.len() as u64)
        .annotations([(
            trust::sigstore::SIGNATURE_ANNOTATION.to_string(),
            signature.signature.clone(),
        )])
        .build()
        .map_err(bad)?;
    let (sig_ref, existing) = signature_manifest(
        &pusher.client,
        &pusher.image,
        &pusher.auth,
        registry,
        digest,
    )
    .await?;
    // The config kept (cosign's `created`, `history`...), only its diff_ids grown.
    let mut config = serde_json::json!({"architecture": "", "os": "", "config": {}});
    if let Some(m) = &existing {
        if m.layers().contains(&layer) {
            return Ok(());
        }
        if m.config().size() > MAX_SIGSTORE_PAYLOAD {
            return Err(request_err(
                registry,
                format!(
                    "{}: a config of {} bytes",
                    sig_ref.whole(),
                    m.config().size()
                ),
            ));
        }
        let raw = read_small_blob(&pusher.client, &pusher.image, registry, m.config()).await?;
        config = serde_json::from_slice(&raw)
            .ok()
            .filter(serde_json::Value::is_object)
            .ok_or_else(|| {
                request_err(
                    registry,
                    format!("{}: its config is not a JSON object", sig_ref.whole()),
                )
            })?;
    }
    let mut manifest = match existing {
        Some(m) => m,
        None => ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(
                MediaType::ImageConfig,
                0,
                blob::digest_of(b""),
            ))
            .layers(Vec::new())
            .build()
            .map_err(bad)?,
    };
    pusher.small_blob(&signature.payload).await?;
    let mut layers = manifest.layers().clone();
    layers.push(layer);
    config["rootfs"] = serde_json::json!({
        "type": "layers",
        "diff_ids": layers.iter().map(|l| l.digest().to_string()).collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config).expect("a JSON value serialises");
    let config_digest = pusher.small_blob(&config).await?;
    manifest.set_layers(layers);
    manifest.set_config(Descriptor::new(
        MediaType::ImageConfig,
        config.len() as u64,
        config_digest,
    ));
    let bytes = serde_json::to_vec(&manifest).map_err(|e| request_err(registry, e))?;
    pusher.manifest(&sig_ref, bytes, media::OCI_MANIFEST).await
}

/// A small blob (a signature's payload, a signature manifest's config; its size capped by
/// the caller) read whole, its digest checked.
async fn read_small_blob(
    client: &Client,
    image: &OciRef,
    registry: &str,
    desc: &Descriptor,
) -> Result<Vec<u8>, RegistryError> {
    let wanted = desc.digest().to_string();
    let data = retry("blob", || async {
        let mut stream = client
            .pull_blob_stream(image, wanted.as_str())
            .await
            .map_err(|e| client_err(registry, e))?;
        let mut buf = Vec::new();
        while let Some(chunk) = stream.stream.next().await {
            buf.extend_from_slice(&chunk.map_err(|e| super::stream_err(registry, e))?);
            if buf.len() as u64 > desc.size() {
                return Err(request_err(registry, "a blob longer than its descriptor"));
            }
        }
        Ok(buf)
    })
    .await?;
    if blob::digest_of(&data).to_string() != wanted {
        return Err(StoreError::from(blob::BlobError::DigestMismatch {
            expected: wanted,
            actual: blob::digest_of(&data).to_string(),
        })
        .into());
    }
    Ok(data)
}
