//! Importing an image tree (an OCI layout's `index.json` entries) into the store, from a
//! layout directory or from blobs already ingested out of an archive, checking that every
//! blob an image needs is present and of the declared size and media type.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use oci_spec::image::Descriptor;

use super::archive::ArchiveError;
use super::content::{self, ContentError, Manifest};
use super::reference::Reference;
use super::store::{Store, io_err};
use super::{blob, media};

/// Where blobs come from while importing.
pub trait BlobSource {
    /// Make sure the blob `desc` names is in the store, verified.
    fn fetch(&mut self, store: &Store, desc: &Descriptor) -> Result<(), ArchiveError>;
}

/// Blobs already in the store (an archive was streamed in first).
pub struct InStore;

impl BlobSource for InStore {
    fn fetch(&mut self, store: &Store, desc: &Descriptor) -> Result<(), ArchiveError> {
        if store.has_blob(desc) {
            Ok(())
        } else {
            Err(ArchiveError::MissingBlob(desc.digest().to_string()))
        }
    }
}

/// Blobs in an OCI layout directory on disk.
pub struct LayoutDir<'a>(pub &'a Path);

impl BlobSource for LayoutDir<'_> {
    fn fetch(&mut self, store: &Store, desc: &Descriptor) -> Result<(), ArchiveError> {
        if store.has_blob(desc) {
            return Ok(());
        }
        let hex = blob::sha256_hex(desc.digest()).map_err(|e| ArchiveError::Store(e.into()))?;
        let path = self.0.join("blobs").join("sha256").join(hex);
        let file =
            File::open(&path).map_err(|_| ArchiveError::MissingBlob(desc.digest().to_string()))?;
        let mut w = store.blob_writer(Some((desc.digest().clone(), desc.size())))?;
        // Read one byte past the declared size so an oversized blob is caught.
        w.copy_from(&mut file.take(desc.size() + 1))?;
        store.commit(w)?;
        Ok(())
    }
}

/// Import the image tree under `desc` (fetching every blob it needs) and name it.
pub fn import_entry(
    store: &Store,
    desc: &Descriptor,
    source: &mut dyn BlobSource,
) -> Result<(), ArchiveError> {
    let mut seen = HashSet::new();
    import_tree(store, desc, source, &mut seen, false, 0)
}

fn import_tree(
    store: &Store,
    desc: &Descriptor,
    source: &mut dyn BlobSource,
    seen: &mut HashSet<String>,
    optional: bool,
    depth: usize,
) -> Result<(), ArchiveError> {
    if !seen.insert(desc.digest().to_string()) {
        return Ok(());
    }
    if depth > media::MAX_INDEX_DEPTH {
        return Err(ContentError::TooDeep {
            digest: desc.digest().to_string(),
            limit: media::MAX_INDEX_DEPTH,
        }
        .into());
    }
    let mt = desc.media_type().to_string();
    if !media::is_manifest(&mt) && !media::is_index(&mt) {
        return Err(ArchiveError::NotAnImage {
            digest: desc.digest().to_string(),
            media_type: mt,
        });
    }
    if desc.size() > media::MAX_MANIFEST_BYTES {
        return Err(ContentError::TooLarge {
            what: "manifest",
            digest: desc.digest().to_string(),
            size: desc.size(),
            cap: media::MAX_MANIFEST_BYTES,
        }
        .into());
    }
    match source.fetch(store, desc) {
        Ok(()) => {}
        // An index may list platforms that were never copied; skip those.
        Err(ArchiveError::MissingBlob(_)) if optional => return Ok(()),
        Err(e) => return Err(e),
    }
    match content::read_manifest(store, desc)? {
        Manifest::Index(index) => {
            let mut any = false;
            for child in index.manifests() {
                import_tree(store, child, source, seen, true, depth + 1)?;
                any |= store.has_blob(child);
            }
            if !any {
                return Err(ArchiveError::MissingBlob(format!(
                    "every platform of index {}",
                    desc.digest()
                )));
            }
        }
        Manifest::Image(m) => {
            source.fetch(store, m.config())?;
            content::read_config(store, m.config())?;
            for layer in m.layers() {
                source.fetch(store, layer)?;
            }
        }
    }
    Ok(())
}

/// The name an imported index entry should get: containerd's full name, else the OCI ref
/// name (a bare word such as umoci's `busybox` is taken as a repository, tag `latest`).
pub fn entry_reference(desc: &Descriptor) -> Option<Reference> {
    let a = desc.annotations().as_ref()?;
    if let Some(name) = a.get(media::ANNOTATION_CONTAINERD_NAME)
        && let Ok(r) = Reference::parse(name)
    {
        return Some(r);
    }
    let name = a.get(media::ANNOTATION_REF_NAME)?;
    Reference::parse(name).ok()
}

/// Read a layout's `index.json` entries from a directory.
pub fn read_layout_index(dir: &Path) -> Result<Vec<Descriptor>, ArchiveError> {
    let path = dir.join("index.json");
    let mut bytes = Vec::new();
    File::open(&path)
        .map_err(|e| ArchiveError::Store(io_err(&path)(e)))?
        .take(media::MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ArchiveError::Store(io_err(&path)(e)))?;
    parse_index_json(&bytes)
}

/// Parse an `index.json` (size-capped by the caller).
pub fn parse_index_json(bytes: &[u8]) -> Result<Vec<Descriptor>, ArchiveError> {
    if bytes.len() as u64 > media::MAX_MANIFEST_BYTES {
        return Err(ArchiveError::TooLarge("index.json"));
    }
    match content::parse_manifest(bytes, "index.json", media::OCI_INDEX)? {
        Manifest::Index(i) => Ok(i.manifests().clone()),
        Manifest::Image(_) => unreachable!("parse_manifest returns an index for an index type"),
    }
}
