//! The shared cache of unpacked layers: `layers/<diff id hex>/root` plus `layer.json`, made
//! once per diff id, verified against the image config, and renamed into place whole.

use std::fs;
use std::path::PathBuf;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use oci_spec::image::ImageManifest;
use serde::{Deserialize, Serialize};

use super::{Budget, UnpackError, UnpackOptions, WhiteoutFormat, apply_layer_within};
use crate::image::content::ImageConfig;
use crate::image::store::{Store, StoreError, io_err, remove_tree, write_atomic};
use crate::image::{blob, media};

/// An unpacked layer ready to be used as an overlay lower directory.
#[derive(Debug, Clone)]
pub struct LayerDir {
    pub diff_id: String,
    /// The layer's content.
    pub root: PathBuf,
    pub whiteouts: WhiteoutFormat,
}

#[derive(Debug, Serialize, Deserialize)]
struct LayerMeta {
    diff_id: String,
    whiteouts: WhiteoutFormat,
    size: u64,
    entries: u64,
}

/// An unpacked layer's record (`layers/<hex>/layer.json`), if it is there and readable.
fn read_meta(path: &std::path::Path) -> Option<LayerMeta> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

fn store_err(e: StoreError) -> UnpackError {
    UnpackError::Store(Box::new(e))
}

/// Make sure every tar layer of the image is unpacked; return their directories, lowest
/// first. The caller should hold the store lock shared, so garbage collection waits.
pub fn ensure_layers(
    store: &Store,
    manifest: &ImageManifest,
    config: &ImageConfig,
    opts: &UnpackOptions,
) -> Result<Vec<LayerDir>, UnpackError> {
    let tar_layers: Vec<_> = manifest
        .layers()
        .iter()
        .filter(|l| media::is_tar_layer(l.media_type().as_ref()))
        .collect();
    let diff_ids = config.diff_ids();
    if tar_layers.len() != diff_ids.len() {
        return Err(UnpackError::DiffIdCount {
            layers: tar_layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut out = Vec::with_capacity(tar_layers.len());
    // Bytes the image's layers add up to (those unpacked before count too).
    let mut used: u64 = 0;
    for (layer, diff_id) in tar_layers.into_iter().zip(diff_ids) {
        let diff = blob::parse_sha256(diff_id).map_err(|e| store_err(e.into()))?;
        let hex = blob::sha256_hex(&diff).map_err(|e| store_err(e.into()))?;
        let dir = store.layers_dir().join(hex);
        let meta_path = dir.join("layer.json");
        if let Some(meta) = read_meta(&meta_path) {
            used = used.saturating_add(meta.size);
            if used > opts.limits.max_image_bytes {
                return Err(UnpackError::ImageTooLarge {
                    limit: opts.limits.max_image_bytes,
                });
            }
            out.push(LayerDir {
                diff_id: diff_id.clone(),
                root: dir.join("root"),
                whiteouts: meta.whiteouts,
            });
            continue;
        }
        let staging = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(store.layers_dir())
            .map_err(|e| store_err(io_err(store.layers_dir())(e)))?;
        let root_path = staging.path().join("root");
        fs::create_dir(&root_path).map_err(|e| store_err(io_err(&root_path)(e)))?;
        let root = Dir::open_ambient_dir(&root_path, ambient_authority())
            .map_err(|e| store_err(io_err(&root_path)(e)))?;
        let blob = store.open_blob(layer.digest()).map_err(store_err)?;
        let budget = Budget {
            image_left: opts.limits.max_image_bytes.saturating_sub(used),
        };
        let result =
            apply_layer_within(std::io::Read::take(blob, layer.size()), &root, opts, budget);
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                discard(staging);
                return Err(e);
            }
        };
        if report.diff_id.to_string() != *diff_id {
            discard(staging);
            return Err(UnpackError::DiffIdMismatch {
                layer: layer.digest().to_string(),
                expected: diff_id.clone(),
                actual: report.diff_id.to_string(),
            });
        }
        used = used.saturating_add(report.size);
        let meta = LayerMeta {
            diff_id: diff_id.clone(),
            whiteouts: opts.whiteouts,
            size: report.size,
            entries: report.entries,
        };
        write_atomic(
            store.tmp_dir(),
            &staging.path().join("layer.json"),
            &serde_json::to_vec(&meta).expect("layer meta serialises"),
        )
        .map_err(store_err)?;
        let staged = staging.keep();
        if let Err(e) = fs::rename(&staged, &dir) {
            // Someone else finished the same layer first: use theirs.
            let _ = remove_tree(&staged);
            if !meta_path.exists() {
                return Err(store_err(io_err(&dir)(e)));
            }
        }
        out.push(LayerDir {
            diff_id: diff_id.clone(),
            root: dir.join("root"),
            whiteouts: opts.whiteouts,
        });
    }
    Ok(out)
}

/// The uncompressed size of a tar layer (the length of its tar stream, whatever its
/// compression, so an image reports one size however it was loaded): from the unpacked
/// layer's record, else from `layers/.sizes/<diff id hex>`, else counted by decompressing the
/// blob once (and remembered there).
pub fn uncompressed_size(
    store: &Store,
    layer: &oci_spec::image::Descriptor,
    diff_id: &str,
) -> Result<u64, UnpackError> {
    let diff = blob::parse_sha256(diff_id).map_err(|e| store_err(e.into()))?;
    let hex = blob::sha256_hex(&diff).map_err(|e| store_err(e.into()))?;
    if let Some(meta) = read_meta(&store.layers_dir().join(hex).join("layer.json")) {
        return Ok(meta.size);
    }
    let sizes = store.layers_dir().join(SIZES);
    let remembered = sizes.join(hex);
    if let Some(n) = fs::read_to_string(&remembered)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return Ok(n);
    }
    let blob = store.open_blob(layer.digest()).map_err(store_err)?;
    let mut stream =
        super::decompress(std::io::Read::take(blob, layer.size())).map_err(UnpackError::Read)?;
    // Counting only: nothing is written, and a bomb stops at the image size limit.
    let limit = super::Limits::default().max_image_bytes;
    let n = std::io::copy(
        &mut std::io::Read::take(&mut stream, limit),
        &mut std::io::sink(),
    )
    .map_err(UnpackError::Read)?;
    if fs::create_dir_all(&sizes).is_ok() {
        let _ = write_atomic(store.tmp_dir(), &remembered, n.to_string().as_bytes());
    }
    Ok(n)
}

/// `layers/.sizes`: uncompressed sizes of layers not unpacked, by diff id.
pub const SIZES: &str = ".sizes";

fn discard(staging: tempfile::TempDir) {
    let path = staging.keep();
    if let Err(e) = remove_tree(&path) {
        tracing::warn!(path = %path.display(), error = %e, "could not remove unpack staging dir");
    }
}

/// A read-only directory holding the image's merged files: the layer itself for a one-layer
/// image, else the layers flattened once into `rootfs/<manifest digest>` and reused.
pub fn image_rootfs(
    store: &Store,
    manifest_digest: &oci_spec::image::Digest,
    layers: &[LayerDir],
) -> Result<PathBuf, UnpackError> {
    if let [only] = layers {
        return Ok(only.root.clone());
    }
    let hex = blob::sha256_hex(manifest_digest).map_err(|e| store_err(e.into()))?;
    let base = store.layers_dir().join("merged");
    fs::create_dir_all(&base).map_err(|e| store_err(io_err(&base)(e)))?;
    let dir = base.join(hex);
    if dir.join(".complete").exists() {
        return Ok(dir.join("root"));
    }
    let staging = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&base)
        .map_err(|e| store_err(io_err(&base)(e)))?;
    let root_path = staging.path().join("root");
    fs::create_dir(&root_path).map_err(|e| store_err(io_err(&root_path)(e)))?;
    let root = Dir::open_ambient_dir(&root_path, ambient_authority())
        .map_err(|e| store_err(io_err(&root_path)(e)))?;
    if let Err(e) = super::flatten(layers, &root) {
        discard(staging);
        return Err(e);
    }
    fs::write(staging.path().join(".complete"), b"")
        .map_err(|e| store_err(io_err(staging.path())(e)))?;
    let staged = staging.keep();
    if fs::rename(&staged, &dir).is_err() {
        let _ = remove_tree(&staged);
    }
    Ok(dir.join("root"))
}
