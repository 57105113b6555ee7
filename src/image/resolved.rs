//! An image chosen from the store and narrowed to one platform: its manifest, config and
//! what dispatch needs to know about it (`dispatch::Facts::of_image`).

use std::collections::HashMap;

use oci_spec::image::{Descriptor, ImageManifest};

use super::content::{self, ImageConfig, Manifest};
use super::platform::{self, PlatformSpec};
use super::store::{ImageRecord, Store, StoreError};

/// One platform's manifest and config of a stored image.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub record: ImageRecord,
    /// The single-platform manifest's descriptor (the record's own, unless it is an index).
    pub manifest_desc: Descriptor,
    pub manifest: ImageManifest,
    pub config: ImageConfig,
    /// Every platform the image offers (one, unless it is an index).
    pub platforms: Vec<String>,
}

impl ResolvedImage {
    /// Narrow `record` to the platform wanted (see `platform::select` for the default).
    pub fn new(
        store: &Store,
        record: ImageRecord,
        wanted: Option<&PlatformSpec>,
    ) -> Result<Self, StoreError> {
        let (manifest_desc, manifest, platforms) =
            match content::read_manifest(store, &record.descriptor)? {
                Manifest::Image(m) => (record.descriptor.clone(), *m, Vec::new()),
                Manifest::Index(index) => {
                    let platforms: Vec<String> = index
                        .manifests()
                        .iter()
                        .filter_map(platform::descriptor_platform)
                        .collect();
                    let chosen = platform::select(&index, wanted)
                        .filter(|d| store.has_blob(d))
                        .ok_or_else(|| {
                            StoreError::NotFound(format!(
                                "platform {} of {} (it has {})",
                                wanted.map_or_else(|| "default".to_string(), |p| p.to_string()),
                                record.digest(),
                                platforms.join(", ")
                            ))
                        })?
                        .clone();
                    match content::read_manifest(store, &chosen)? {
                        Manifest::Image(m) => (chosen, *m, platforms),
                        Manifest::Index(_) => {
                            return Err(StoreError::NotFound(format!(
                                "a single-platform manifest under {}",
                                record.digest()
                            )));
                        }
                    }
                }
            };
        let config = content::read_config(store, manifest.config())?;
        let platforms = if platforms.is_empty() {
            vec![config.platform()]
        } else {
            platforms
        };
        Ok(ResolvedImage {
            record,
            manifest_desc,
            manifest,
            config,
            platforms,
        })
    }

    /// Size as Docker reports it: config plus the layers uncompressed (a tar layer's stream
    /// length, so a gzipped oci-archive and a docker-archive of one image agree), wasm
    /// layers as they are.
    pub fn content_size(&self, store: &Store) -> u64 {
        let mut diff_ids = self.config.diff_ids().iter();
        let layers: u64 = self
            .manifest
            .layers()
            .iter()
            .map(|l| {
                if !crate::image::media::is_tar_layer(l.media_type().as_ref()) {
                    return l.size();
                }
                diff_ids
                    .next()
                    .and_then(|d| crate::image::unpack::uncompressed_size(store, l, d).ok())
                    .unwrap_or(l.size())
            })
            .sum();
        self.manifest.config().size() + layers
    }

    /// The image's annotations and config labels, merged.
    pub fn annotations(&self) -> HashMap<String, String> {
        let mut a: HashMap<String, String> = self
            .config
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        for m in [
            self.record.descriptor.annotations(),
            self.manifest_desc.annotations(),
            self.manifest.annotations(),
        ]
        .into_iter()
        .flatten()
        {
            a.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        a
    }
}
