//! The image store: an OCI image layout on disk (so skopeo and umoci can read it directly),
//! with wharf's tags as `index.json` entries, plus the directories of unpacked layers.
//!
//! Concurrency: blobs are written to a temp file and renamed into place after verification,
//! so a blob path only ever holds complete, verified content. `index.json` is rewritten
//! atomically under an exclusive lock. Anything that adds content holds the store lock
//! shared for its whole duration; garbage collection holds it exclusively, so it never
//! deletes a blob that a concurrent load has written but not yet tagged.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use oci_spec::image::{Descriptor, DescriptorBuilder, Digest, MediaType};
use serde::{Deserialize, Serialize};

use super::blob::{self, BlobError, BlobWriter};
use super::content::{self, ContentError, Manifest};
use super::media;
use super::reference::{Reference, ReferenceError};
use crate::paths::Roots;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{0}")]
    AmbiguousName(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt store index {path}: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("blob {0} is corrupt")]
    Corrupt(String),
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image reference {query:?} is ambiguous: it matches {matches}")]
    Ambiguous { query: String, matches: String },
    #[error("image {id} is tagged in several repositories ({names}); name one, or use -f")]
    MultipleTags { id: String, names: String },
    #[error(
        "image {image} is in use by a container; remove the container first (wharf rm), or use -f"
    )]
    InUse { image: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The `index.json` of the layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutIndex {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// One image in the store: an `index.json` entry and the name it carries, if any.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub name: Option<Reference>,
    pub descriptor: Descriptor,
}

impl ImageRecord {
    /// The short id (12 hex digits of the top-level manifest or index digest).
    pub fn short_id(&self) -> String {
        self.descriptor.digest().digest().chars().take(12).collect()
    }

    pub fn digest(&self) -> &Digest {
        self.descriptor.digest()
    }
}

/// An open image store.
#[derive(Debug, Clone)]
pub struct Store {
    containers: PathBuf,
    layout: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
    data: PathBuf,
    layers: PathBuf,
    store_lock: PathBuf,
    index_lock: PathBuf,
    wasm_cache: PathBuf,
    events: PathBuf,
}

/// A held file lock; released on drop.
pub struct LockGuard(File);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Store {
    /// Open (creating if needed) the store under `roots`.
    pub fn open(roots: &Roots) -> Result<Store, StoreError> {
        let layout = roots.store();
        let data = roots.data();
        let store = Store {
            containers: roots.containers(),
            blobs: layout.join("blobs").join("sha256"),
            tmp: data.join("tmp"),
            data: data.to_path_buf(),
            layers: roots.layers(),
            store_lock: data.join("locks").join("store.lock"),
            index_lock: data.join("locks").join("index.lock"),
            wasm_cache: roots.wasm_cache(),
            events: crate::events::log_path(data),
            layout,
        };
        for dir in [&store.blobs, &store.tmp, &data.join("locks")] {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        create_private_dir(&store.layers)?;
        let oci_layout = store.layout.join("oci-layout");
        if !oci_layout.exists() {
            write_atomic(
                &store.tmp,
                &oci_layout,
                br#"{"imageLayoutVersion":"1.0.0"}"#,
            )?;
        }
        if !store.index_path().exists() {
            let _g = store.lock_index()?;
            if !store.index_path().exists() {
                store.write_index(&[])?;
            }
        }
        Ok(store)
    }

    /// The root of the wharf installation this store belongs to (`--root`), where its own
    /// signature policy may live.
    pub fn data_root(&self) -> &Path {
        &self.data
    }

    /// Where the identities of wasm files run by path (or found in images' files) are
    /// kept with their digests, beside the compile cache (see `run::module`).
    pub fn wasm_index_dir(&self) -> PathBuf {
        self.wasm_cache.join("files")
    }

    /// The OCI layout directory.
    pub fn layout_dir(&self) -> &Path {
        &self.layout
    }

    /// Where unpacked layers live.
    pub fn layers_dir(&self) -> &Path {
        &self.layers
    }

    /// Scratch space on the same filesystem as the store.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    fn index_path(&self) -> PathBuf {
        self.layout.join("index.json")
    }

    /// Path of a blob (the digest is validated first, so it is safe as a file name).
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf, StoreError> {
        Ok(self.blobs.join(blob::sha256_hex(digest)?))
    }

    /// Whether the blob is present with the size the descriptor declares.
    pub fn has_blob(&self, desc: &Descriptor) -> bool {
        self.blob_path(desc.digest())
            .ok()
            .and_then(|p| fs::metadata(p).ok())
            .is_some_and(|m| m.len() == desc.size())
    }

    /// Open a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(digest)?;
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => BlobError::Missing(digest.to_string()).into(),
            _ => StoreError::Io { path, source: e },
        })
    }

    /// Read a small blob whole, checking the declared size against `cap` first and the
    /// digest after.
    pub fn read_blob_capped(
        &self,
        desc: &Descriptor,
        what: &'static str,
        cap: u64,
    ) -> Result<Vec<u8>, StoreError> {
        if desc.size() > cap {
            return Err(ContentError::TooLarge {
                what,
                digest: desc.digest().to_string(),
                size: desc.size(),
                cap,
            }
            .into());
        }
        let path = self.blob_path(desc.digest())?;
        let mut bytes = Vec::with_capacity(desc.size() as usize);
        self.open_blob(desc.digest())?
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        if bytes.len() as u64 != desc.size() {
            return Err(BlobError::SizeMismatch {
                digest: desc.digest().to_string(),
                expected: desc.size(),
                actual: bytes.len() as u64,
            }
            .into());
        }
        let actual = blob::digest_of(&bytes);
        if &actual != desc.digest() {
            return Err(BlobError::DigestMismatch {
                expected: desc.digest().to_string(),
                actual: actual.to_string(),
            }
            .into());
        }
        Ok(bytes)
    }

    /// Start writing a blob; `expected` is the digest and size it must have, when known.
    pub fn blob_writer(&self, expected: Option<(Digest, u64)>) -> Result<BlobWriter, StoreError> {
        Ok(BlobWriter::new(&self.tmp, expected)?)
    }

    /// Commit a writer into the blob directory.
    pub fn commit(&self, w: BlobWriter) -> Result<(Digest, u64), StoreError> {
        Ok(w.commit(&self.blobs)?)
    }

    /// Store `bytes` as a blob and return its descriptor.
    pub fn put_blob(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor, StoreError> {
        let mut w = self.blob_writer(None)?;
        w.write_chunk(bytes)?;
        let (digest, size) = self.commit(w)?;
        Ok(descriptor(media_type, digest, size))
    }

    /// Hold the store lock shared: no garbage collection runs until the guard drops.
    pub fn lock_shared(&self) -> Result<LockGuard, StoreError> {
        let f = open_lock_file(&self.store_lock)?;
        f.lock_shared().map_err(io_err(&self.store_lock))?;
        Ok(LockGuard(f))
    }

    /// Hold the store lock exclusively (garbage collection, repair).
    pub fn lock_exclusive(&self) -> Result<LockGuard, StoreError> {
        let f = open_lock_file(&self.store_lock)?;
        f.lock().map_err(io_err(&self.store_lock))?;
        Ok(LockGuard(f))
    }

    fn lock_index(&self) -> Result<LockGuard, StoreError> {
        let f = open_lock_file(&self.index_lock)?;
        f.lock().map_err(io_err(&self.index_lock))?;
        Ok(LockGuard(f))
    }

    fn read_index(&self) -> Result<LayoutIndex, StoreError> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Index { path, source })
    }

    fn write_index(&self, manifests: &[Descriptor]) -> Result<(), StoreError> {
        let index = LayoutIndex {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            manifests: manifests.to_vec(),
        };
        let bytes = serde_json::to_vec_pretty(&index).expect("index serialises");
        write_atomic(&self.tmp, &self.index_path(), &bytes)
    }

    /// Change the index under its lock; the closure sees every entry.
    fn update_index<R>(
        &self,
        f: impl FnOnce(&mut Vec<Descriptor>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _g = self.lock_index()?;
        let mut entries = self.read_index()?.manifests;
        let r = f(&mut entries)?;
        self.write_index(&entries)?;
        Ok(r)
    }

    /// Every image in the store.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .map(|d| ImageRecord {
                name: entry_name(&d),
                descriptor: d,
            })
            .collect())
    }

    /// Record `desc` (a manifest or index whose blobs are all present) under `name`, moving
    /// the name if it pointed elsewhere. Without a name the image is kept untagged.
    pub fn add_image(&self, name: Option<&Reference>, desc: &Descriptor) -> Result<(), StoreError> {
        if let Some(why) = name.and_then(Reference::ambiguity) {
            return Err(StoreError::AmbiguousName(why));
        }
        let mut entry = desc.clone();
        let mut annotations = desc.annotations().clone().unwrap_or_default();
        annotations.remove(media::ANNOTATION_REF_NAME);
        annotations.remove(media::ANNOTATION_CONTAINERD_NAME);
        if let Some(name) = name {
            let full = name.without_digest().to_string();
            annotations.insert(media::ANNOTATION_REF_NAME.into(), full.clone());
            annotations.insert(media::ANNOTATION_CONTAINERD_NAME.into(), full);
        }
        entry.set_annotations((!annotations.is_empty()).then_some(annotations));
        self.update_index(|entries| {
            match name {
                Some(name) => {
                    let name = name.without_digest();
                    entries.retain(|e| {
                        let same_name = entry_name(e).as_ref() == Some(&name);
                        let untagged_same = entry_name(e).is_none() && e.digest() == desc.digest();
                        !same_name && !untagged_same
                    });
                }
                None => {
                    if entries.iter().any(|e| e.digest() == desc.digest()) {
                        return Ok(());
                    }
                }
            }
            entries.push(entry);
            Ok(())
        })
    }

    /// Drop the untagged entry of `digest` from the index (its blobs stay until a gc):
    /// what a build recorded only to run a step on it.
    pub fn forget_untagged(&self, digest: &Digest) -> Result<(), StoreError> {
        self.update_index(|entries| {
            entries.retain(|e| entry_name(e).is_some() || e.digest() != digest);
            Ok(())
        })
    }

    /// Find an image by name, `name@digest`, full digest or id prefix, as Docker does: a
    /// `sha256:<hex>` query is an id; otherwise a name comes first and then an id prefix (so
    /// an image may be called `cafe`; a whole 64-digit id can never be a name).
    pub fn resolve(&self, query: &str) -> Result<ImageRecord, StoreError> {
        let images = self.images()?;
        let hex = query.strip_prefix("sha256:").unwrap_or(query);
        let reads_as_id = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if query.starts_with("sha256:") && reads_as_id {
            return self
                .resolve_id(&images, query, hex)?
                .ok_or_else(|| StoreError::NotFound(query.to_string()));
        }
        if let Ok(r) = Reference::parse(query)
            && r.ambiguity().is_none()
        {
            let found = match r.digest() {
                Some(d) => images.iter().find(|i| i.digest() == d),
                None => images.iter().find(|i| i.name.as_ref() == Some(&r)),
            };
            if let Some(found) = found {
                return Ok(found.clone());
            }
        }
        if reads_as_id && let Some(found) = self.resolve_id(&images, query, hex)? {
            return Ok(found);
        }
        Err(StoreError::NotFound(query.to_string()))
    }

    /// The image whose id starts with `prefix` (hex), if exactly one does.
    fn resolve_id(
        &self,
        images: &[ImageRecord],
        query: &str,
        prefix: &str,
    ) -> Result<Option<ImageRecord>, StoreError> {
        let prefix = prefix.to_ascii_lowercase();
        let mut digests: BTreeSet<String> = BTreeSet::new();
        for i in images {
            if i.digest().digest().starts_with(&prefix) {
                digests.insert(i.digest().to_string());
            }
        }
        match digests.len() {
            0 => Ok(None),
            1 => {
                let d = digests.into_iter().next().expect("one digest");
                let mut matching = images.iter().filter(|i| i.digest().to_string() == d);
                let first = matching.next().expect("one image");
                let named = matching
                    .chain(std::iter::once(first))
                    .find(|i| i.name.is_some());
                Ok(Some(named.unwrap_or(first).clone()))
            }
            _ => Err(StoreError::Ambiguous {
                query: query.to_string(),
                matches: digests.into_iter().collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Give the image `src` another name.
    pub fn tag(&self, src: &str, dst: &Reference) -> Result<ImageRecord, StoreError> {
        let image = self.resolve(src)?;
        self.add_image(Some(dst), &image.descriptor)?;
        self.event("tag", image.digest().as_ref(), Some(&dst.to_string()));
        Ok(image)
    }

    /// Record an image event (`pull`, `load`, `push`, `tag`, `untag`, `delete`) in the
    /// event log: `id` is the image's digest (a pull's or push's: the reference), `name` its
    /// name.
    pub fn event(&self, action: &str, id: &str, name: Option<&str>) {
        let attributes = name
            .map(|n| ("name".to_string(), n.to_string()))
            .into_iter()
            .collect();
        crate::events::append(
            &self.events,
            &crate::events::Event::new("image", action, id, attributes),
        );
    }

    /// Remove an image's name (or, given an id, the image and all its names), then collect
    /// garbage. Returns the names removed and the blobs deleted.
    pub fn remove(&self, query: &str, force: bool) -> Result<(Vec<String>, GcReport), StoreError> {
        let image = self.resolve(query)?;
        let last_name = self
            .images()?
            .iter()
            .filter(|i| i.digest() == image.digest())
            .count()
            <= 1;
        if !force
            && last_name
            && self
                .in_use()
                .iter()
                .any(|u| u.image.as_deref() == Some(image.digest().as_ref()))
        {
            return Err(StoreError::InUse {
                image: query.to_string(),
            });
        }
        let by_name = Reference::parse(query).ok().is_some_and(|r| {
            image.name.as_ref() == Some(&r.without_digest()) && r.digest().is_none()
        });
        let removed = self.update_index(|entries| {
            let same_digest: Vec<String> = entries
                .iter()
                .filter(|e| e.digest() == image.digest())
                .filter_map(|e| entry_name(e).map(|n| n.to_string()))
                .collect();
            if by_name {
                let name = image.name.clone().expect("resolved by name");
                entries.retain(|e| entry_name(e).as_ref() != Some(&name));
                Ok(vec![name.to_string()])
            } else {
                if same_digest.len() > 1 && !force {
                    return Err(StoreError::MultipleTags {
                        id: image.short_id(),
                        names: same_digest.join(", "),
                    });
                }
                entries.retain(|e| e.digest() != image.digest());
                Ok(if same_digest.is_empty() {
                    vec![image.digest().to_string()]
                } else {
                    same_digest
                })
            }
        })?;
        let gone = !self.images()?.iter().any(|i| i.digest() == image.digest());
        for name in removed.iter().filter(|n| !n.starts_with("sha256:")) {
            self.event("untag", image.digest().as_ref(), Some(name));
        }
        if gone {
            self.event("delete", image.digest().as_ref(), None);
        }
        let report = self.gc(&HashSet::new())?;
        Ok((removed, report))
    }

    /// Every blob reachable from the index, and every diff id of a reachable config.
    fn reachable(&self) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
        let mut blobs = HashSet::new();
        let mut diff_ids = HashSet::new();
        let mut stack: Vec<Descriptor> = self.read_index()?.manifests;
        while let Some(desc) = stack.pop() {
            if !blobs.insert(desc.digest().to_string()) {
                continue;
            }
            if !self.has_blob(&desc) {
                continue; // an index may list platforms that were never fetched
            }
            let mt = desc.media_type().to_string();
            if !(media::is_manifest(&mt) || media::is_index(&mt)) {
                continue;
            }
            match content::read_manifest(self, &desc) {
                Ok(Manifest::Index(index)) => stack.extend(index.manifests().iter().cloned()),
                Ok(Manifest::Image(m)) => {
                    blobs.insert(m.config().digest().to_string());
                    for l in m.layers() {
                        blobs.insert(l.digest().to_string());
                    }
                    if let Ok(cfg) = content::read_config(self, m.config()) {
                        diff_ids.extend(cfg.diff_ids().iter().cloned());
                    }
                }
                Err(e) => {
                    tracing::warn!(digest = %desc.digest(), error = %e, "unreadable manifest")
                }
            }
        }
        Ok((blobs, diff_ids))
    }

    /// Delete blobs and unpacked layers that no image references. `keep_layers` holds diff
    /// ids still in use by containers.
    pub fn gc(&self, keep_layers: &HashSet<String>) -> Result<GcReport, StoreError> {
        let _g = self.lock_exclusive()?;
        let (blobs, diff_ids) = self.reachable()?;
        let running: HashSet<String> = self.in_use().into_iter().flat_map(|u| u.diff_ids).collect();
        let keep_layers: HashSet<&String> = keep_layers.iter().chain(running.iter()).collect();
        let mut report = GcReport::default();
        for entry in fs::read_dir(&self.blobs).map_err(io_err(&self.blobs))? {
            let entry = entry.map_err(io_err(&self.blobs))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&format!("sha256:{name}")) {
                report.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                report.blobs += 1;
            }
        }
        for entry in fs::read_dir(&self.layers).map_err(io_err(&self.layers))? {
            let entry = entry.map_err(io_err(&self.layers))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let diff_id = format!("sha256:{name}");
            if name == "merged" {
                // Flattened image roots, one per manifest digest.
                let merged = entry.path();
                for m in fs::read_dir(&merged).map_err(io_err(&merged))? {
                    let m = m.map_err(io_err(&merged))?;
                    let mname = m.file_name().to_string_lossy().into_owned();
                    if !mname.starts_with('.') && !blobs.contains(&format!("sha256:{mname}")) {
                        remove_tree(&m.path())?;
                    }
                }
                continue;
            }
            if name == crate::image::unpack::SIZES {
                let sizes = entry.path();
                for s in fs::read_dir(&sizes).map_err(io_err(&sizes))? {
                    let s = s.map_err(io_err(&sizes))?;
                    let sname = s.file_name().to_string_lossy().into_owned();
                    if !diff_ids.contains(&format!("sha256:{sname}")) {
                        let _ = fs::remove_file(s.path());
                    }
                }
                continue;
            }
            if name.starts_with('.')
                || diff_ids.contains(&diff_id)
                || keep_layers.contains(&&diff_id)
            {
                continue;
            }
            remove_tree(&entry.path())?;
            report.layers += 1;
        }
        Ok(report)
    }

    /// Verify every blob, every image's tree and every unpacked layer; with `repair`, remove
    /// what is broken. Holds the store exclusively.
    pub fn check(&self, repair: bool) -> Result<CheckReport, StoreError> {
        let _g = self.lock_exclusive()?;
        let mut report = CheckReport::default();
        let mut bad = HashSet::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_err(&self.blobs))? {
            let entry = entry.map_err(io_err(&self.blobs))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            report.blobs_checked += 1;
            let problem = match blob::parse_sha256(&format!("sha256:{name}")) {
                Err(_) => Some("file name is not a sha256 digest".to_string()),
                Ok(expected) => match blob::hash_file(&entry.path()) {
                    Ok((actual, _)) if actual == expected => None,
                    Ok((actual, _)) => Some(format!("content hashes to {actual}")),
                    Err(e) => Some(format!("unreadable: {e}")),
                },
            };
            if let Some(problem) = problem {
                bad.insert(format!("sha256:{name}"));
                if repair {
                    fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                }
                report
                    .problems
                    .push(format!("blob sha256:{name}: {problem}"));
            }
        }
        // Images whose tree is incomplete (after the removal above, if repairing).
        let mut broken = Vec::new();
        for image in self.images()? {
            if let Err(e) = self.verify_tree(&image.descriptor, &bad, 0) {
                let label = image
                    .name
                    .as_ref()
                    .map_or_else(|| image.digest().to_string(), |n| n.to_string());
                report.problems.push(format!("image {label}: {e}"));
                broken.push(image.digest().clone());
            }
        }
        if repair && !broken.is_empty() {
            self.update_index(|entries| {
                entries.retain(|e| !broken.contains(e.digest()));
                Ok(())
            })?;
        }
        for entry in fs::read_dir(&self.layers).map_err(io_err(&self.layers))? {
            let entry = entry.map_err(io_err(&self.layers))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                report
                    .problems
                    .push(format!("unfinished layer unpack {name}"));
                if repair {
                    remove_tree(&entry.path())?;
                }
            }
        }
        // Blobs no image reaches (an interrupted load or pull): `--repair` collects them.
        let (reachable, _) = self.reachable()?;
        for entry in fs::read_dir(&self.blobs).map_err(io_err(&self.blobs))? {
            let entry = entry.map_err(io_err(&self.blobs))?;
            let digest = format!("sha256:{}", entry.file_name().to_string_lossy());
            if !reachable.contains(&digest) && !bad.contains(&digest) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                report.unreferenced_bytes += size;
                report
                    .problems
                    .push(format!("unreferenced blob {digest} ({size} bytes)"));
            }
        }
        let stale = SystemTime::now() - Duration::from_secs(3600);
        for entry in fs::read_dir(&self.tmp).map_err(io_err(&self.tmp))? {
            let entry = entry.map_err(io_err(&self.tmp))?;
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < stale);
            if old {
                let size = tree_size(&entry.path());
                report.problems.push(format!(
                    "stale temporary file {} ({size} bytes)",
                    entry.path().display()
                ));
                if repair {
                    remove_tree(&entry.path())?;
                }
            }
        }
        if repair {
            drop(_g);
            report.gc = Some(self.gc(&HashSet::new())?);
        }
        Ok(report)
    }

    /// Check that every blob an image needs is present and intact enough to parse.
    fn verify_tree(
        &self,
        desc: &Descriptor,
        bad: &HashSet<String>,
        depth: usize,
    ) -> Result<(), StoreError> {
        if depth > media::MAX_INDEX_DEPTH {
            return Err(ContentError::TooDeep {
                digest: desc.digest().to_string(),
                limit: media::MAX_INDEX_DEPTH,
            }
            .into());
        }
        let usable = |d: &Descriptor| -> Result<(), StoreError> {
            if bad.contains(&d.digest().to_string()) {
                return Err(StoreError::Corrupt(d.digest().to_string()));
            }
            if !self.has_blob(d) {
                return Err(BlobError::Missing(d.digest().to_string()).into());
            }
            Ok(())
        };
        usable(desc)?;
        match content::read_manifest(self, desc)? {
            Manifest::Index(index) => {
                let mut present = 0;
                for m in index.manifests() {
                    if self.has_blob(m) {
                        self.verify_tree(m, bad, depth + 1)?;
                        present += 1;
                    }
                }
                if present == 0 {
                    return Err(StoreError::NotFound(format!(
                        "any platform of index {}",
                        desc.digest()
                    )));
                }
            }
            Manifest::Image(m) => {
                content::read_config(self, m.config())?;
                for l in m.layers() {
                    usable(l)?;
                }
            }
        }
        Ok(())
    }
}

/// What a container holds on to (`containers/<id>/image.json`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct InUse {
    pub image: Option<String>,
    pub diff_ids: Vec<String>,
}

impl Store {
    /// What containers (running or not: a stopped container can start again) use.
    pub fn in_use(&self) -> Vec<InUse> {
        let Ok(entries) = fs::read_dir(&self.containers) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| fs::read(e.path().join("image.json")).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }
}

/// What garbage collection removed.
#[derive(Debug, Default, Clone, Serialize)]
pub struct GcReport {
    pub blobs: usize,
    pub bytes: u64,
    pub layers: usize,
}

/// What `system check` found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CheckReport {
    pub blobs_checked: usize,
    /// Bytes in blobs no image references.
    pub unreferenced_bytes: u64,
    pub problems: Vec<String>,
    pub gc: Option<GcReport>,
}

/// The name an index entry carries: containerd's full name, else the OCI ref name.
pub fn entry_name(d: &Descriptor) -> Option<Reference> {
    let a = d.annotations().as_ref()?;
    a.get(media::ANNOTATION_CONTAINERD_NAME)
        .or_else(|| a.get(media::ANNOTATION_REF_NAME))
        .and_then(|n| Reference::parse(n).ok())
}

/// A descriptor with just media type, digest and size.
pub fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    DescriptorBuilder::default()
        .media_type(MediaType::from(media_type))
        .digest(digest)
        .size(size)
        .build()
        .expect("media type, digest and size make a descriptor")
}

/// Write `bytes` to `dest` through a temp file in `tmp_dir` and a rename.
pub fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    crate::sys::write_atomic(Some(tmp_dir), dest, bytes, crate::sys::Durability::Synced)
        .map_err(io_err(dest))
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
    }
    Ok(())
}

/// Bytes under `path` (a file or a directory tree; symlinks not followed).
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}

/// Remove a directory tree that may hold read-only directories (layer contents).
pub fn remove_tree(path: &Path) -> Result<(), StoreError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path)(e)),
    };
    if !meta.is_dir() {
        return fs::remove_file(path).map_err(io_err(path));
    }
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    // Directories without write permission stop remove_dir_all for non-root users.
    make_writable(path);
    fs::remove_dir_all(path).map_err(io_err(path))
}

fn make_writable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = fs::symlink_metadata(path)
            && m.is_dir()
        {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
            if let Ok(rd) = fs::read_dir(path) {
                for e in rd.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&Roots::new(dir.path())).unwrap();
        (dir, s)
    }

    #[test]
    fn tags_resolve_and_move() {
        let (_d, s) = store();
        let a = s.put_blob("application/octet-stream", b"a").unwrap();
        let b = s.put_blob("application/octet-stream", b"b").unwrap();
        let name = Reference::parse("app").unwrap();
        s.add_image(Some(&name), &a).unwrap();
        assert_eq!(s.resolve("app:latest").unwrap().digest(), a.digest());
        assert_eq!(
            s.resolve(&a.digest().digest()[..6]).unwrap().digest(),
            a.digest()
        );
        s.add_image(Some(&name), &b).unwrap();
        assert_eq!(s.resolve("app").unwrap().digest(), b.digest());
        assert_eq!(s.images().unwrap().len(), 1);
        assert!(matches!(s.resolve("nope"), Err(StoreError::NotFound(_))));
        // A hexadecimal word is a name first, then an id prefix; `sha256:` is always an id.
        let prefix = b.digest().digest()[..8].to_string();
        s.add_image(Some(&Reference::parse(&prefix).unwrap()), &a)
            .unwrap();
        assert_eq!(s.resolve(&prefix).unwrap().digest(), a.digest());
        assert_eq!(
            s.resolve(&format!("sha256:{prefix}")).unwrap().digest(),
            b.digest()
        );
        assert_eq!(
            s.resolve(&b.digest().digest()[..10]).unwrap().digest(),
            b.digest()
        );
    }

    #[test]
    fn gc_keeps_only_reachable_blobs() {
        let (_d, s) = store();
        let kept = s.put_blob("application/octet-stream", b"kept").unwrap();
        let orphan = s.put_blob("application/octet-stream", b"orphan").unwrap();
        s.add_image(None, &kept).unwrap();
        let report = s.gc(&HashSet::new()).unwrap();
        assert_eq!(report.blobs, 1);
        assert!(s.has_blob(&kept));
        assert!(!s.has_blob(&orphan));
    }
}
