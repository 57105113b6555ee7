//! Pulling and pushing through OCI distribution registries (the `oci-client` crate), for
//! native images and wasm artifacts alike. Every blob is verified (digest and size) while it
//! streams into the store and committed atomically; blobs already present are not fetched
//! again; transient failures are retried with backoff. Plain HTTP is used only for
//! `localhost`/`127.0.0.1` (unless `--cert-dir` is given) or when TLS verification is turned
//! off for a registry.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference as OciRef};
use oci_spec::image::Descriptor;

use super::content::{self, Manifest};
use super::platform::{self, PlatformSpec};
use super::reference::Reference;
use super::store::{ImageRecord, Store, StoreError};
use super::{blob, media};
use crate::trust::{Trust, TrustError, TrustOptions};

mod signatures;

pub use signatures::attach_signatures;

/// What can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry}: {message}")]
    Request {
        registry: String,
        message: String,
        /// Worth asking again (the network failed, a 5xx, 408 or 429); else the registry's
        /// answer is final.
        transient: bool,
    },
    #[error("{reference}: the image has {layers} layers; more than {MAX_LAYERS} is refused")]
    TooManyLayers { reference: String, layers: usize },
    #[error(
        "{reference}: the registry served a manifest of media type {media_type:?}, which wharf does not pull"
    )]
    MediaType {
        reference: String,
        media_type: String,
    },
    #[error("{reference}: no manifest for platform {platform} (the index has {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Skip TLS (plain HTTP) for this registry: `--tls-verify=false`.
    pub insecure: bool,
    /// Extra CA certificates (PEM files ending in .crt) to trust: `--cert-dir`.
    pub cert_dir: Option<PathBuf>,
    /// Credentials (from `wharf login` / `~/.docker/config.json`).
    pub credentials: Option<(String, String)>,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Where the signature policy and signature storage configuration are.
    pub trust: TrustOptions,
}

const ATTEMPTS: u32 = 4;
const ACCEPTED: &[&str] = &[
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
];

fn is_local(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

fn client(registry: &str, opts: &RegistryOptions) -> Result<Client, RegistryError> {
    let mut config = ClientConfig::default();
    // Loopback registries speak plain HTTP unless the user points at CA certificates for
    // them (a TLS registry on localhost, as in the tests).
    if opts.insecure || (is_local(registry) && opts.cert_dir.is_none()) {
        config.protocol = ClientProtocol::HttpsExcept(vec![registry.to_string()]);
    }
    for data in extra_certificates(opts)? {
        config
            .extra_root_certificates
            .push(oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data,
            });
    }
    config.read_timeout = Some(Duration::from_secs(60));
    config.connect_timeout = Some(Duration::from_secs(20));
    Ok(Client::new(config))
}

/// The CA certificates `--cert-dir` adds (its `*.crt` and `*.pem` files, PEM).
fn extra_certificates(opts: &RegistryOptions) -> Result<Vec<Vec<u8>>, RegistryError> {
    let Some(dir) = &opts.cert_dir else {
        return Ok(Vec::new());
    };
    let entries = std::fs::read_dir(dir).map_err(|source| RegistryError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut found = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "crt" || x == "pem") {
            found.push(std::fs::read(&path).map_err(|source| RegistryError::Io {
                path: path.clone(),
                source,
            })?);
        }
    }
    Ok(found)
}

fn oci_ref(r: &Reference) -> OciRef {
    match (r.tag(), r.digest()) {
        (_, Some(d)) => OciRef::with_digest(
            r.registry().to_string(),
            r.repository().to_string(),
            d.to_string(),
        ),
        (Some(t), None) => OciRef::with_tag(
            r.registry().to_string(),
            r.repository().to_string(),
            t.to_string(),
        ),
        (None, None) => OciRef::with_tag(
            r.registry().to_string(),
            r.repository().to_string(),
            "latest".into(),
        ),
    }
}

fn auth(opts: &RegistryOptions) -> RegistryAuth {
    match &opts.credentials {
        Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
        None => RegistryAuth::Anonymous,
    }
}

/// A failure that asking again would not change (bad content, a local error).
fn request_err(registry: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Request {
        registry: registry.to_string(),
        message: e.to_string(),
        transient: false,
    }
}

/// The registry client's failure: transient when the network failed or the registry said
/// so (5xx, 408, 429); a 4xx, an error body, a body over its cap or one that never ended
/// is the answer, and asking again would cost as much to get it again.
fn client_err(registry: &str, e: oci_client::errors::OciDistributionError) -> RegistryError {
    use oci_client::errors::OciDistributionError as E;
    let transient = match &e {
        E::RequestError(r) => !r.is_redirect() && !r.is_builder(),
        E::IoError(_) => true,
        E::ServerError { code, .. } => *code >= 500 || *code == 408 || *code == 429,
        _ => false,
    };
    // The whole chain: reqwest says "error following redirect" and its source says why.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    RegistryError::Request {
        registry: registry.to_string(),
        message,
        transient,
    }
}

/// The most layers an image may have (Docker's own limit is 125): a manifest listing
/// thousands is refused before anything is fetched.
pub const MAX_LAYERS: usize = 500;

/// Retry `f` with exponential backoff (0.25 s, 0.5 s, 1 s), while its failure is transient.
async fn retry<T, F, Fut>(what: &str, mut f: F) -> Result<T, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RegistryError>>,
{
    let mut delay = Duration::from_millis(250);
    for attempt in 1..=ATTEMPTS {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e)
                if attempt < ATTEMPTS
                    && matches!(
                        e,
                        RegistryError::Request {
                            transient: true,
                            ..
                        }
                    ) =>
            {
                tracing::warn!(what, attempt, error = %e, "retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// Pull `reference` into the store; returns the top-level descriptor stored under its name.
pub fn pull(
    store: &Store,
    reference: &Reference,
    wanted: Option<&PlatformSpec>,
    all_platforms: bool,
    opts: &RegistryOptions,
) -> Result<Descriptor, RegistryError> {
    let result = with_store(
        store,
        pull_async(store, reference, wanted, all_platforms, opts),
    );
    if result.is_err() {
        // Blobs this pull stored but no image references (the manifest, blobs fetched
        // before another failed): collect them, as a failed load does. The collection takes
        // the store exclusively, so it waits for other pulls and loads to finish first.
        if let Err(e) = store.gc(&std::collections::HashSet::new()) {
            tracing::warn!(error = %e, "cleaning up after a failed pull");
        }
    }
    result
}

/// Run `work` on a single-threaded runtime while holding the store shared (so garbage
/// collection waits for it).
fn with_store<T>(
    store: &Store,
    work: impl std::future::Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    let _guard = store.lock_shared()?;
    block_on(work)
}

/// Run `work` on a single-threaded runtime.
fn block_on<T>(
    work: impl std::future::Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| RegistryError::Io {
            path: PathBuf::from("tokio runtime"),
            source,
        })?
        .block_on(work)
}

/// A body stream that broke off: worth asking again.
fn stream_err(registry: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Request {
        registry: registry.to_string(),
        message: e.to_string(),
        transient: true,
    }
}

/// A manifest as the registry served it, checked (its size, its media type, its digest if
/// asked for by one) but not stored yet.
struct Fetched {
    bytes: bytes::Bytes,
    digest: String,
    media_type: String,
}

async fn fetch_manifest(
    client: &Client,
    image: &OciRef,
    auth: &RegistryAuth,
    registry: &str,
) -> Result<Fetched, RegistryError> {
    let (bytes, digest) = retry("manifest", || async {
        client
            .pull_manifest_raw(image, auth, ACCEPTED)
            .await
            .map_err(|e| client_err(registry, e))
    })
    .await?;
    if bytes.len() as u64 > media::MAX_MANIFEST_BYTES {
        return Err(StoreError::Content(content::ContentError::TooLarge {
            what: "manifest",
            digest,
            size: bytes.len() as u64,
            cap: media::MAX_MANIFEST_BYTES,
        })
        .into());
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| request_err(registry, e))?;
    let media_type = value
        .get("mediaType")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            if value.get("manifests").is_some() {
                media::OCI_INDEX
            } else {
                media::OCI_MANIFEST
            }
            .to_string()
        });
    if !media::is_manifest(&media_type) && !media::is_index(&media_type) {
        return Err(RegistryError::MediaType {
            reference: image.whole(),
            media_type,
        });
    }
    // The content must hash to what was asked for (when asked by digest) and is stored by
    // its own digest either way.
    let actual = blob::digest_of(&bytes).to_string();
    if let Some(asked) = image.digest()
        && asked != actual
    {
        return Err(StoreError::from(blob::BlobError::DigestMismatch {
            expected: asked.to_string(),
            actual,
        })
        .into());
    }
    Ok(Fetched {
        bytes,
        digest: actual,
        media_type,
    })
}

fn store_manifest(store: &Store, m: &Fetched) -> Result<(Descriptor, Manifest), RegistryError> {
    let desc = store.put_blob(&m.media_type, &m.bytes)?;
    let manifest = content::read_manifest(store, &desc)?;
    Ok((desc, manifest))
}

async fn pull_async(
    store: &Store,
    reference: &Reference,
    wanted: Option<&PlatformSpec>,
    all_platforms: bool,
    opts: &RegistryOptions,
) -> Result<Descriptor, RegistryError> {
    // A policy that does not parse refuses before the registry is asked anything.
    let trust = Trust::load(&opts.trust, Some(store.data_root()))?;
    // A scope that rejects every image refuses before the registry is asked anything.
    let trust_check = signatures::TrustCheck::new(&trust, reference, opts)?;
    let registry = reference.registry().to_string();
    let client = client(&registry, opts)?;
    let auth = auth(opts);
    let image = oci_ref(reference);
    let fetched = fetch_manifest(&client, &image, &auth, &registry).await?;
    // What is checked is what is pulled, as containers/image checks it: an image's manifest;
    // for an index, each platform's manifest taken from it (below), and the index itself
    // too when every platform is pulled.
    if all_platforms || !media::is_index(&fetched.media_type) {
        trust_check
            .check(&client, &image, &auth, reference, &fetched.digest)
            .await?;
    }
    let (top, manifest) = store_manifest(store, &fetched)?;
    let mut images = Vec::new();
    let mut top_desc = top.clone();
    match manifest {
        Manifest::Image(m) => images.push(*m),
        Manifest::Index(index) => {
            let chosen: Vec<Descriptor> = if all_platforms {
                index.manifests().clone()
            } else {
                let d =
                    platform::select(&index, wanted).ok_or_else(|| RegistryError::NoPlatform {
                        reference: reference.to_string(),
                        platform: wanted.map_or_else(|| "default".into(), |p| p.to_string()),
                        available: index
                            .manifests()
                            .iter()
                            .filter_map(platform::descriptor_platform)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                vec![d.clone()]
            };
            for child in chosen {
                let child_ref = image.clone_with_digest(child.digest().to_string());
                let fetched = fetch_manifest(&client, &child_ref, &auth, &registry).await?;
                trust_check
                    .check(&client, &image, &auth, reference, &fetched.digest)
                    .await?;
                let (_, m) = store_manifest(store, &fetched)?;
                match m {
                    Manifest::Image(m) => images.push(*m),
                    Manifest::Index(_) => {
                        return Err(RegistryError::MediaType {
                            reference: reference.to_string(),
                            media_type: "a nested index".into(),
                        });
                    }
                }
            }
            top_desc.set_platform(None);
        }
    }
    if let Some(m) = images.iter().find(|m| m.layers().len() > MAX_LAYERS) {
        return Err(RegistryError::TooManyLayers {
            reference: reference.to_string(),
            layers: m.layers().len(),
        });
    }
    let mut blobs: Vec<Descriptor> = Vec::new();
    for m in &images {
        for d in std::iter::once(m.config()).chain(m.layers().iter()) {
            if !blobs.iter().any(|b| b.digest() == d.digest()) {
                blobs.push(d.clone());
            }
        }
    }
    let bars = (!opts.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(indicatif::MultiProgress::new);
    let fetches = blobs.iter().map(|d| {
        fetch_blob(
            &client,
            store,
            &image,
            d,
            &registry,
            opts.quiet,
            bars.as_ref(),
        )
    });
    // The first failure ends the pull: the fetches under way are dropped, none is started.
    let mut fetching = futures_util::stream::iter(fetches).buffer_unordered(4);
    while let Some(r) = fetching.next().await {
        r?;
    }
    drop(fetching);
    for m in &images {
        content::read_config(store, m.config())?;
    }
    store.add_image(Some(&reference.without_digest()), &top_desc)?;
    store.event("pull", &reference.to_string(), Some(&reference.to_string()));
    Ok(top_desc)
}

async fn fetch_blob(
    client: &Client,
    store: &Store,
    image: &OciRef,
    desc: &Descriptor,
    registry: &str,
    quiet: bool,
    bars: Option<&indicatif::MultiProgress>,
) -> Result<(), RegistryError> {
    if store.has_blob(desc) {
        if !quiet {
            eprintln!("{}: already present", short(desc));
        }
        return Ok(());
    }
    // On a terminal, a progress bar per blob; otherwise one line when it is done.
    let bar = bars.map(|m| {
        let bar = m.add(indicatif::ProgressBar::new(desc.size()));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(short(desc));
        bar
    });
    retry("blob", || async {
        if let Some(bar) = &bar {
            bar.set_position(0);
        }
        let digest = desc.digest().to_string();
        let mut stream = client
            .pull_blob_stream(image, digest.as_str())
            .await
            .map_err(|e| client_err(registry, e))?;
        let mut writer = store.blob_writer(Some((desc.digest().clone(), desc.size())))?;
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| stream_err(registry, e))?;
            writer.write_chunk(&chunk).map_err(StoreError::from)?;
            if let Some(bar) = &bar {
                bar.inc(chunk.len() as u64);
            }
        }
        store.commit(writer)?;
        Ok(())
    })
    .await?;
    match (&bar, quiet) {
        (Some(bar), _) => bar.finish_with_message("verified"),
        (None, false) => eprintln!("{}: downloaded {} bytes", short(desc), desc.size()),
        (None, true) => {}
    }
    Ok(())
}

fn short(d: &Descriptor) -> String {
    d.digest().digest().chars().take(12).collect()
}

/// Push the stored image `record` to `target`.
pub fn push(
    store: &Store,
    record: &ImageRecord,
    target: &Reference,
    opts: &RegistryOptions,
) -> Result<String, RegistryError> {
    let pushed = with_store(store, push_async(store, record, target, opts))?;
    store.event("push", &target.to_string(), Some(&target.to_string()));
    Ok(pushed)
}

async fn push_async(
    store: &Store,
    record: &ImageRecord,
    target: &Reference,
    opts: &RegistryOptions,
) -> Result<String, RegistryError> {
    let pusher = Pusher::new(target, opts).await?;
    let top = &record.descriptor;
    let mut manifests: Vec<(Descriptor, Manifest)> = Vec::new();
    match content::read_manifest(store, top)? {
        Manifest::Index(index) => {
            for child in index.manifests().iter().filter(|c| store.has_blob(c)) {
                manifests.push((child.clone(), content::read_manifest(store, child)?));
            }
            manifests.push((top.clone(), Manifest::Index(index)));
        }
        m => manifests.push((top.clone(), m)),
    }
    for (desc, m) in &manifests {
        if let Manifest::Image(m) = m {
            for d in std::iter::once(m.config()).chain(m.layers().iter()) {
                upload_blob(&pusher, store, d, opts.quiet).await?;
            }
        }
        let bytes = store.read_blob_capped(desc, "manifest", media::MAX_MANIFEST_BYTES)?;
        let at = if desc.digest() == top.digest() {
            pusher.image.clone()
        } else {
            pusher.image.clone_with_digest(desc.digest().to_string())
        };
        pusher
            .manifest(&at, bytes, desc.media_type().as_ref())
            .await?;
    }
    Ok(top.digest().to_string())
}

/// A client that may push to one repository.
struct Pusher {
    client: Client,
    auth: RegistryAuth,
    /// The reference pushed to.
    image: OciRef,
    registry: String,
}

impl Pusher {
    async fn new(target: &Reference, opts: &RegistryOptions) -> Result<Pusher, RegistryError> {
        let registry = target.registry().to_string();
        let client = client(&registry, opts)?;
        let auth = auth(opts);
        let image = oci_ref(target);
        client
            .auth(&image, &auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| client_err(&registry, e))?;
        Ok(Pusher {
            client,
            auth,
            image,
            registry,
        })
    }

    /// Does the repository hold blob `digest` already?
    async fn has_blob(&self, digest: &str) -> bool {
        self.client
            .blob_exists(&self.image, digest)
            .await
            .unwrap_or(false)
    }

    /// Upload `data`, whose digest is `digest`.
    async fn blob(&self, data: bytes::Bytes, digest: &str) -> Result<(), RegistryError> {
        retry("blob upload", || {
            let data = data.clone();
            async move {
                self.client
                    .push_blob(&self.image, data, digest)
                    .await
                    .map(drop)
                    .map_err(|e| client_err(&self.registry, e))
            }
        })
        .await
    }

    /// Upload `data` (held in memory) unless the repository has it; its digest.
    async fn small_blob(&self, data: &[u8]) -> Result<oci_spec::image::Digest, RegistryError> {
        let digest = blob::digest_of(data);
        if !self.has_blob(digest.as_ref()).await {
            self.blob(bytes::Bytes::copy_from_slice(data), digest.as_ref())
                .await?;
        }
        Ok(digest)
    }

    /// Put manifest `bytes` of `media_type` at `at` (a tag or a digest).
    async fn manifest(
        &self,
        at: &OciRef,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let content_type =
            http::HeaderValue::from_str(media_type).map_err(|e| request_err(&self.registry, e))?;
        retry("manifest", || {
            let (bytes, content_type) = (bytes.clone(), content_type.clone());
            async move {
                self.client
                    .push_manifest_raw(at, bytes, content_type)
                    .await
                    .map(drop)
                    .map_err(|e| client_err(&self.registry, e))
            }
        })
        .await
    }
}

async fn upload_blob(
    pusher: &Pusher,
    store: &Store,
    desc: &Descriptor,
    quiet: bool,
) -> Result<(), RegistryError> {
    let digest = desc.digest().to_string();
    if pusher.has_blob(&digest).await {
        if !quiet {
            eprintln!("{}: already in the registry", short(desc));
        }
        return Ok(());
    }
    let path = store.blob_path(desc.digest())?;
    let data = tokio::fs::read(&path)
        .await
        .map_err(|source| RegistryError::Io {
            path: path.clone(),
            source,
        })?;
    pusher.blob(bytes::Bytes::from(data), &digest).await?;
    if !quiet {
        eprintln!("{}: uploaded {} bytes", short(desc), desc.size());
    }
    Ok(())
}
