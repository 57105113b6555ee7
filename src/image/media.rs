//! Media types and annotations wharf reads and writes (see SPECS.md).

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER: &str = "application/wasm";
pub const WASM_COMPONENT_LAYER: &str =
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
pub const SPIN_WASM_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";

/// The tag annotation of an OCI image layout's index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's full image name annotation (read by `ctr images import`).
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_WASM_VARIANT: &str = "module.wasm.image/variant";
pub const ANNOTATION_RUN_OCI_HANDLER: &str = "run.oci.handler";

/// Largest manifest or index wharf parses (containerd uses 4 MiB too).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Deepest nesting of indexes wharf follows (an index in an index in an index...): real
/// images use one level, two with an OCI layout's `index.json`; a walk never recurses
/// deeper than this, whatever a hostile layout or registry serves.
pub const MAX_INDEX_DEPTH: usize = 4;

/// Largest image config wharf parses.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// Whether a media type names a single-image manifest.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Whether a media type names a multi-platform index.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether a media type names a wasm layer in any of the spellings in use.
pub fn is_wasm_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        WASM_LAYER | WASM_COMPONENT_LAYER | SPIN_WASM_LAYER
    )
}

/// Whether a media type names a (possibly compressed) tar layer.
pub fn is_tar_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_LAYER_TAR
            | OCI_LAYER_GZIP
            | OCI_LAYER_ZSTD
            | DOCKER_LAYER_GZIP
            | DOCKER_LAYER_TAR
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}
