//! `wharf load` and `wharf save`: OCI layout directories, oci-archive tars and
//! docker-archive tars (the `docker save` format), any of them gzip- or zstd-compressed.
//!
//! Loading streams the archive once: blobs go straight into the store, verified against
//! their names; the image trees are then checked and named. Saving writes to a temp file
//! beside the destination and renames it, so a failed save leaves nothing behind.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, Digest};
use serde::{Deserialize, Serialize};

use super::content::{self, ContentError, Manifest};
use super::layout::{self, BlobSource, InStore, LayoutDir};
use super::platform::{self, PlatformSpec};
use super::reference::Reference;
use super::store::{ImageRecord, Store, StoreError, descriptor, io_err};
use super::unpack::{self, normalize};
use super::{blob, media};

/// What can go wrong loading or saving images.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "{0}: not an OCI layout, oci-archive or docker-archive (no oci-layout, index.json or manifest.json)"
    )]
    UnknownFormat(PathBuf),
    #[error("the archive is corrupt: entry {entry} has an invalid tar header")]
    Corrupt { entry: usize },
    #[error("archive refers to blob {0}, which it does not contain")]
    MissingBlob(String),
    #[error("archive entry {name:?} is not a valid blob: {reason}")]
    BadBlobEntry { name: String, reason: String },
    #[error("{digest} has media type {media_type}, not an image manifest or index")]
    NotAnImage { digest: String, media_type: String },
    #[error("{0} is too large")]
    TooLarge(&'static str),
    #[error("invalid docker-archive manifest.json: {0}")]
    DockerManifest(String),
    #[error("reading archive: {0}")]
    Read(#[source] io::Error),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image {image} has no manifest for platform {platform}")]
    NoPlatform { image: String, platform: String },
    #[error("image {0} is a wasm artifact: docker-archive holds only images with tar layers")]
    NotDockerCompatible(String),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unpack(#[from] unpack::UnpackError),
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
}

impl From<blob::BlobError> for ArchiveError {
    fn from(e: blob::BlobError) -> Self {
        ArchiveError::Store(e.into())
    }
}

/// One image that a load added.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub name: Option<String>,
    pub digest: String,
}

/// Load every image in `path` (detected from content) into the store, if the signature
/// policy lets it in: a layout directory by the `oci` transport's scopes, an archive by
/// `oci-archive`'s or `docker-archive`'s, whichever it turns out to hold (refused at once
/// when both refuse; else once read, before any image is named, its blobs then collected).
/// Archives carry no signatures, so a scope that asks for one refuses them.
pub fn load(
    store: &Store,
    path: &Path,
    trust: &crate::trust::TrustOptions,
) -> Result<Vec<Loaded>, ArchiveError> {
    use crate::trust::policy;
    let trust = crate::trust::Trust::load(trust, Some(store.data_root()))?;
    if path.is_dir() {
        trust.check_archive(policy::OCI, Some(path))?;
    } else if let Err(e) = trust.check_archive(policy::OCI_ARCHIVE, Some(path))
        && trust
            .check_archive(policy::DOCKER_ARCHIVE, Some(path))
            .is_err()
    {
        return Err(e.into());
    }
    let guard = store.lock_shared()?;
    let result = if path.is_dir() {
        if path.join("oci-layout").exists() || path.join("index.json").exists() {
            let entries = layout::read_layout_index(path)?;
            import_entries(store, &entries, &mut LayoutDir(path))
        } else {
            Err(ArchiveError::UnknownFormat(path.to_path_buf()))
        }
    } else {
        let file = File::open(path).map_err(ArchiveError::Read)?;
        load_stream(store, file, path, &trust)
    };
    drop(guard);
    match result {
        Ok((loaded, stray)) => {
            if stray {
                store.gc(&HashSet::new())?;
            }
            Ok(loaded)
        }
        Err(e) => {
            // Blobs this load stored but no image references: collect them.
            if let Err(gc) = store.gc(&HashSet::new()) {
                tracing::warn!(error = %gc, "cleaning up after a failed load");
            }
            Err(e)
        }
    }
}

fn import_entries(
    store: &Store,
    entries: &[Descriptor],
    source: &mut dyn BlobSource,
) -> Result<(Vec<Loaded>, bool), ArchiveError> {
    for desc in entries {
        layout::import_entry(store, desc, source)?;
    }
    let mut loaded = Vec::new();
    for desc in entries {
        let name = layout::entry_reference(desc);
        let mut clean = descriptor(
            desc.media_type().as_ref(),
            desc.digest().clone(),
            desc.size(),
        );
        clean.set_platform(desc.platform().clone());
        store.add_image(name.as_ref(), &clean)?;
        store.event(
            "load",
            clean.digest().as_ref(),
            name.as_ref().map(|n| n.to_string()).as_deref(),
        );
        loaded.push(Loaded {
            name: name.map(|n| n.to_string()),
            digest: desc.digest().to_string(),
        });
    }
    Ok((loaded, false))
}

/// A file of a docker-archive that is not under `blobs/`: kept by path until manifest.json
/// says what it is.
struct DockerFile {
    digest: Digest,
    size: u64,
}

fn load_stream(
    store: &Store,
    file: File,
    path: &Path,
    trust: &crate::trust::Trust,
) -> Result<(Vec<Loaded>, bool), ArchiveError> {
    use crate::trust::policy;
    let mut reader = unpack::decompress(file).map_err(ArchiveError::Read)?;
    // Look at the first header before the tar parser does: its errors quote the bytes it
    // could not parse, and a file that is not an archive (a password file, a key) must not
    // end up in an error message.
    let mut head = [0u8; 512];
    let got = read_full(&mut reader, &mut head)
        .map_err(|_| ArchiveError::UnknownFormat(path.to_path_buf()))?;
    if got < head.len() || !is_tar_header(&head) {
        return Err(ArchiveError::UnknownFormat(path.to_path_buf()));
    }
    let mut archive = tar::Archive::new(io::Cursor::new(head).chain(reader));
    let mut index_json: Option<Vec<u8>> = None;
    let mut manifest_json: Option<Vec<u8>> = None;
    let mut others: HashMap<String, DockerFile> = HashMap::new();
    let mut saw_entry = false;
    for (n, entry) in archive.entries().map_err(ArchiveError::Read)?.enumerate() {
        let mut entry = entry.map_err(|e| tar_error(e, n))?;
        saw_entry = true;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let comps = normalize(&entry.path_bytes())?;
        let name = comps
            .iter()
            .map(|c| c.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        match name.as_str() {
            "index.json" => index_json = Some(read_capped(&mut entry, "index.json")?),
            "manifest.json" => manifest_json = Some(read_capped(&mut entry, "manifest.json")?),
            "oci-layout" | "repositories" => {}
            _ => {
                if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                    let digest = blob::parse_sha256(&format!("sha256:{hex}")).map_err(|e| {
                        ArchiveError::BadBlobEntry {
                            name: name.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                    let size = entry.header().size().map_err(ArchiveError::Read)?;
                    let desc = descriptor("application/octet-stream", digest.clone(), size);
                    if !store.has_blob(&desc) {
                        let mut w = store.blob_writer(Some((digest, size)))?;
                        w.copy_from(&mut entry)
                            .map_err(|e| ArchiveError::BadBlobEntry {
                                name: name.clone(),
                                reason: e.to_string(),
                            })?;
                        store.commit(w).map_err(|e| ArchiveError::BadBlobEntry {
                            name: name.clone(),
                            reason: e.to_string(),
                        })?;
                    }
                } else if name.ends_with(".tar") || name.ends_with(".json") {
                    // docker-archive layers (`<id>/layer.tar`, `<hex>.tar`) and configs.
                    let mut w = store.blob_writer(None)?;
                    w.copy_from(&mut entry)?;
                    let (digest, size) = store.commit(w)?;
                    others.insert(name, DockerFile { digest, size });
                }
            }
        }
    }
    if let Some(index) = index_json {
        trust.check_archive(policy::OCI_ARCHIVE, Some(path))?;
        let entries = layout::parse_index_json(&index)?;
        let (loaded, _) = import_entries(store, &entries, &mut InStore)?;
        return Ok((loaded, !others.is_empty()));
    }
    if let Some(manifest) = manifest_json {
        trust.check_archive(policy::DOCKER_ARCHIVE, Some(path))?;
        return load_docker(store, &manifest, &others);
    }
    if !saw_entry {
        return Err(ArchiveError::UnknownFormat(path.to_path_buf()));
    }
    Err(ArchiveError::UnknownFormat(path.to_path_buf()))
}

/// Fill `buf` as far as the stream allows; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Whether `h` is a tar header block: its checksum field matches its bytes (the check every
/// tar reader makes; ustar, GNU and v7 headers all carry it).
fn is_tar_header(h: &[u8; 512]) -> bool {
    let field = &h[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| !matches!(c, ' ' | '\0'))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    !digits.is_empty() && sum == stored
}

/// A tar parse error, without the bytes it quotes (they are the input's content).
fn tar_error(e: io::Error, entry: usize) -> ArchiveError {
    if e.kind() == io::ErrorKind::Other || e.kind() == io::ErrorKind::InvalidData {
        ArchiveError::Corrupt { entry }
    } else {
        ArchiveError::Read(e)
    }
}

fn read_capped(r: &mut impl Read, what: &'static str) -> Result<Vec<u8>, ArchiveError> {
    let mut bytes = Vec::new();
    r.take(media::MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ArchiveError::Read)?;
    if bytes.len() as u64 > media::MAX_MANIFEST_BYTES {
        return Err(ArchiveError::TooLarge(what));
    }
    Ok(bytes)
}

/// One image of a docker-archive's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciManifestOut<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
}

fn load_docker(
    store: &Store,
    manifest_json: &[u8],
    files: &HashMap<String, DockerFile>,
) -> Result<(Vec<Loaded>, bool), ArchiveError> {
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(manifest_json)
        .map_err(|e| ArchiveError::DockerManifest(e.to_string()))?;
    let lookup = |p: &str| -> Result<&DockerFile, ArchiveError> {
        let clean = normalize(p.as_bytes())?
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        files
            .get(&clean)
            .ok_or_else(|| ArchiveError::MissingBlob(p.to_string()))
    };
    let mut used = HashSet::new();
    let mut loaded = Vec::new();
    for entry in &entries {
        let cfg = lookup(&entry.config)?;
        let config_desc = descriptor(media::OCI_CONFIG, cfg.digest.clone(), cfg.size);
        let config = content::read_config(store, &config_desc)?;
        used.insert(entry.config.clone());
        let mut layers = Vec::new();
        for (i, l) in entry.layers.iter().enumerate() {
            let f = lookup(l)?;
            used.insert(l.clone());
            let mut head = [0u8; 4];
            let n = store
                .open_blob(&f.digest)?
                .read(&mut head)
                .map_err(ArchiveError::Read)?;
            let mt = if head[..n].starts_with(&[0x1f, 0x8b]) {
                media::OCI_LAYER_GZIP
            } else if head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                media::OCI_LAYER_ZSTD
            } else {
                // Uncompressed: the layer's digest is its diff id.
                if config.diff_ids().get(i) != Some(&f.digest.to_string()) {
                    return Err(unpack::UnpackError::DiffIdMismatch {
                        layer: l.clone(),
                        expected: config.diff_ids().get(i).cloned().unwrap_or_default(),
                        actual: f.digest.to_string(),
                    }
                    .into());
                }
                media::OCI_LAYER_TAR
            };
            layers.push(descriptor(mt, f.digest.clone(), f.size));
        }
        let manifest = OciManifestOut {
            schema_version: 2,
            media_type: media::OCI_MANIFEST,
            config: &config_desc,
            layers: &layers,
        };
        let bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        let mdesc = store.put_blob(media::OCI_MANIFEST, &bytes)?;
        let tags = entry.repo_tags.clone().unwrap_or_default();
        if tags.is_empty() {
            store.add_image(None, &mdesc)?;
            store.event("load", mdesc.digest().as_ref(), None);
            loaded.push(Loaded {
                name: None,
                digest: mdesc.digest().to_string(),
            });
        }
        for tag in tags {
            let name = Reference::parse(&tag).map_err(StoreError::from)?;
            store.add_image(Some(&name), &mdesc)?;
            store.event("load", mdesc.digest().as_ref(), Some(&name.to_string()));
            loaded.push(Loaded {
                name: Some(name.to_string()),
                digest: mdesc.digest().to_string(),
            });
        }
    }
    let stray = files.keys().any(|k| !used.contains(k));
    Ok((loaded, stray))
}

/// The archive formats `wharf save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    OciArchive,
    DockerArchive,
}

/// Write `images` to `out` as an archive.
pub fn save(
    store: &Store,
    images: &[ImageRecord],
    out: &Path,
    format: SaveFormat,
    platform: Option<&PlatformSpec>,
) -> Result<(), ArchiveError> {
    let _guard = store.lock_shared()?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let write_err = |source| ArchiveError::Write {
        path: out.to_path_buf(),
        source,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".wharf-save-")
        .tempfile_in(dir)
        .map_err(write_err)?;
    let mut builder = tar::Builder::new(io::BufWriter::new(tmp.reopen().map_err(write_err)?));
    match format {
        SaveFormat::OciArchive => write_oci(store, images, &mut builder)?,
        SaveFormat::DockerArchive => write_docker(store, images, &mut builder, platform)?,
    }
    builder
        .into_inner()
        .map_err(write_err)?
        .flush()
        .map_err(write_err)?;
    tmp.persist(out).map_err(|e| write_err(e.error))?;
    Ok(())
}

fn append_bytes(
    b: &mut tar::Builder<impl Write>,
    name: &str,
    bytes: &[u8],
) -> Result<(), ArchiveError> {
    append_reader(b, name, bytes.len() as u64, bytes)
}

fn append_reader(
    b: &mut tar::Builder<impl Write>,
    name: &str,
    size: u64,
    r: impl Read,
) -> Result<(), ArchiveError> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, r)
        .map_err(|source| ArchiveError::Write {
            path: PathBuf::from(name),
            source,
        })
}

fn append_dir(b: &mut tar::Builder<impl Write>, name: &str) -> Result<(), ArchiveError> {
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Directory);
    b.append_data(&mut h, name, &[][..])
        .map_err(|source| ArchiveError::Write {
            path: PathBuf::from(name),
            source,
        })
}

/// Every blob under `desc` that is present, manifests and indexes first.
fn closure(
    store: &Store,
    desc: &Descriptor,
    out: &mut Vec<Descriptor>,
    depth: usize,
) -> Result<(), ArchiveError> {
    if out.iter().any(|d| d.digest() == desc.digest()) {
        return Ok(());
    }
    if depth > media::MAX_INDEX_DEPTH {
        return Err(ContentError::TooDeep {
            digest: desc.digest().to_string(),
            limit: media::MAX_INDEX_DEPTH,
        }
        .into());
    }
    out.push(desc.clone());
    match content::read_manifest(store, desc)? {
        Manifest::Index(index) => {
            for child in index.manifests() {
                if store.has_blob(child) {
                    closure(store, child, out, depth + 1)?;
                }
            }
        }
        Manifest::Image(m) => {
            out.push(m.config().clone());
            out.extend(m.layers().iter().cloned());
        }
    }
    Ok(())
}

fn write_oci(
    store: &Store,
    images: &[ImageRecord],
    b: &mut tar::Builder<impl Write>,
) -> Result<(), ArchiveError> {
    append_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut blobs = Vec::new();
    let mut entries = Vec::new();
    for image in images {
        closure(store, &image.descriptor, &mut blobs, 0)?;
        let mut entry = image.descriptor.clone();
        let mut annotations = HashMap::new();
        if let Some(name) = &image.name {
            annotations.insert(media::ANNOTATION_REF_NAME.to_string(), name.to_string());
            annotations.insert(
                media::ANNOTATION_CONTAINERD_NAME.to_string(),
                name.to_string(),
            );
        }
        entry.set_annotations((!annotations.is_empty()).then_some(annotations));
        entries.push(entry);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": entries,
    });
    append_bytes(
        b,
        "index.json",
        &serde_json::to_vec(&index).expect("index serialises"),
    )?;
    append_dir(b, "blobs/")?;
    append_dir(b, "blobs/sha256/")?;
    let mut written = HashSet::new();
    for d in blobs {
        if !written.insert(d.digest().to_string()) {
            continue;
        }
        let hex = blob::sha256_hex(d.digest())?;
        let file = store.open_blob(d.digest())?;
        append_reader(
            b,
            &format!("blobs/sha256/{hex}"),
            d.size(),
            file.take(d.size()),
        )?;
    }
    Ok(())
}

fn write_docker(
    store: &Store,
    images: &[ImageRecord],
    b: &mut tar::Builder<impl Write>,
    platform: Option<&PlatformSpec>,
) -> Result<(), ArchiveError> {
    let mut manifest = Vec::new();
    let mut written = HashSet::new();
    for image in images {
        let label = image
            .name
            .as_ref()
            .map_or_else(|| image.digest().to_string(), |n| n.to_string());
        let m = match content::read_manifest(store, &image.descriptor)? {
            Manifest::Image(m) => m,
            Manifest::Index(index) => {
                let chosen =
                    platform::select(&index, platform).ok_or_else(|| ArchiveError::NoPlatform {
                        image: label.clone(),
                        platform: platform.map_or_else(|| "default".into(), |p| p.to_string()),
                    })?;
                match content::read_manifest(store, chosen)? {
                    Manifest::Image(m) => m,
                    Manifest::Index(_) => {
                        return Err(ArchiveError::NotAnImage {
                            digest: chosen.digest().to_string(),
                            media_type: "nested index".into(),
                        });
                    }
                }
            }
        };
        let config = content::read_config(store, m.config())?;
        if m.layers()
            .iter()
            .any(|l| !media::is_tar_layer(l.media_type().as_ref()))
        {
            return Err(ArchiveError::NotDockerCompatible(label));
        }
        let config_hex = blob::sha256_hex(m.config().digest())?.to_string();
        let config_name = format!("{config_hex}.json");
        if written.insert(config_name.clone()) {
            let bytes = store.read_blob_capped(m.config(), "config", media::MAX_CONFIG_BYTES)?;
            append_bytes(b, &config_name, &bytes)?;
        }
        let mut layer_names = Vec::new();
        for (layer, diff_id) in m.layers().iter().zip(config.diff_ids()) {
            let diff = blob::parse_sha256(diff_id)?;
            let name = format!("{}.tar", blob::sha256_hex(&diff)?);
            if written.insert(name.clone()) {
                append_uncompressed_layer(store, b, layer, &diff, &name)?;
            }
            layer_names.push(name);
        }
        manifest.push(DockerManifestEntry {
            config: config_name,
            repo_tags: image.name.as_ref().map(|n| {
                vec![format!(
                    "{}:{}",
                    n.familiar_name(),
                    n.tag().unwrap_or(super::reference::DEFAULT_TAG)
                )]
            }),
            layers: layer_names,
        });
    }
    append_bytes(
        b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("serialises"),
    )
}

/// docker-archive layers are uncompressed tars named by diff id: decompress to a temp file
/// (a tar header needs the size first), checking the diff id on the way.
fn append_uncompressed_layer(
    store: &Store,
    b: &mut tar::Builder<impl Write>,
    layer: &Descriptor,
    diff_id: &Digest,
    name: &str,
) -> Result<(), ArchiveError> {
    let mut tmp = tempfile::tempfile_in(store.tmp_dir()).map_err(|e| io_err(store.tmp_dir())(e))?;
    let blob = store.open_blob(layer.digest())?.take(layer.size());
    let mut hashing =
        blob::HashingReader::new(unpack::decompress(blob).map_err(ArchiveError::Read)?);
    io::copy(&mut hashing, &mut tmp).map_err(ArchiveError::Read)?;
    let (actual, size) = hashing.finish().map_err(ArchiveError::Read)?;
    if &actual != diff_id {
        return Err(unpack::UnpackError::DiffIdMismatch {
            layer: layer.digest().to_string(),
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        }
        .into());
    }
    io::Seek::rewind(&mut tmp).map_err(ArchiveError::Read)?;
    append_reader(b, name, size, tmp)
}
