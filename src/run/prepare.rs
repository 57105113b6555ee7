//! From an image (or a `.wasm`/`.wat` file) and run options to a `Prepared` run: the
//! dispatch decision with every signal, the runtime spec, the image's files, and for wasm
//! the module bytes, read from the store (never from a precompiled artifact in the image).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use oci_spec::image::Digest;
use oci_spec::runtime::Spec;

use super::options::RunOptions;
use crate::bundle::{self, BundleError};
use crate::dispatch::{self, Conflict, Decision, Facts, Kind};
use crate::image::content::ImageConfig;
use crate::image::package::{self, MAX_WASM_BYTES, PackageError, WasmKind};
use crate::image::platform::PlatformSpec;
use crate::image::resolved::ResolvedImage;
use crate::image::unpack::{self, LayerDir, UnpackError, UnpackOptions};
use crate::image::{Store, StoreError, blob, media};

/// The PATH used to find a relative entrypoint when the image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a run could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("cannot decide how to run {image}: {source}")]
    Dispatch {
        image: String,
        #[source]
        source: Box<Conflict>,
    },
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error("{image}: entrypoint {path:?} not found in the image")]
    EntrypointNotFound { image: String, path: String },
    #[error("{image}: entrypoint {path:?} is not a WebAssembly module or component")]
    NotWasm { image: String, path: String },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A WebAssembly module or component to run, with where it came from.
#[derive(Debug, Clone)]
pub struct WasmModule {
    pub bytes: Vec<u8>,
    /// sha256 of `bytes` (the cache key for compiled code).
    pub digest: Digest,
    pub kind: WasmKind,
    /// The export to call instead of `_start` (`module.wasm#func`).
    pub export: Option<String>,
}

/// Everything a backend needs for one run.
#[derive(Debug)]
pub struct Prepared {
    /// How the user named it (for messages).
    pub name: String,
    pub decision: Decision,
    pub spec: Spec,
    /// The image's merged files, when it has any (wasm: shown read-only at `/`).
    pub rootfs: Option<PathBuf>,
    /// The unpacked layers, lowest first (native: overlay lower directories).
    pub layers: Vec<LayerDir>,
    pub wasm: Option<WasmModule>,
    /// The store image's top-level digest (none for a file run directly).
    pub image_digest: Option<String>,
}

/// Whether `target` names a wasm file on disk rather than an image.
fn is_wasm_file(target: &str) -> bool {
    let p = Path::new(target);
    let named_like_a_file = target.ends_with(".wasm")
        || target.ends_with(".wat")
        || target.starts_with("./")
        || target.starts_with('/')
        || target.contains(std::path::MAIN_SEPARATOR);
    named_like_a_file && p.is_file()
}

/// Prepare a run of `target` (an image in the store, or a `.wasm`/`.wat` file).
pub fn prepare(
    store: &Store,
    target: &str,
    opts: &RunOptions,
    platform: Option<&PlatformSpec>,
) -> Result<Prepared, RunError> {
    if is_wasm_file(target) {
        return prepare_file(Path::new(target), opts);
    }
    let record = store.resolve(target)?;
    let image = ResolvedImage::new(store, record, platform)?;
    prepare_image(store, target, &image, opts)
}

fn split_export(entry: &str) -> (String, Option<String>) {
    match entry.rsplit_once('#') {
        Some((path, func)) if !func.is_empty() => (path.to_string(), Some(func.to_string())),
        _ => (entry.to_string(), None),
    }
}

fn module(bytes: Vec<u8>, export: Option<String>) -> Result<WasmModule, RunError> {
    let bytes = if package::is_wat(&bytes) {
        wat::parse_bytes(&bytes)
            .map_err(|e| PackageError::Invalid(e.to_string()))?
            .into_owned()
    } else {
        bytes
    };
    let kind = WasmKind::detect(&bytes)
        .ok_or_else(|| PackageError::NotWasm("no \\0asm magic with a known version".into()))?;
    Ok(WasmModule {
        digest: blob::digest_of(&bytes),
        bytes,
        kind,
        export,
    })
}

fn read_capped(mut r: impl Read, path: &str) -> Result<Vec<u8>, RunError> {
    let mut bytes = Vec::new();
    r.by_ref()
        .take(MAX_WASM_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| RunError::Io {
            path: PathBuf::from(path),
            source,
        })?;
    if bytes.len() > MAX_WASM_BYTES {
        return Err(PackageError::TooLarge {
            size: bytes.len(),
            cap: MAX_WASM_BYTES,
        }
        .into());
    }
    Ok(bytes)
}

fn prepare_file(path: &Path, opts: &RunOptions) -> Result<Prepared, RunError> {
    let display = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| RunError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = read_capped(file, &display)?;
    let (argv0, export) = match &opts.entrypoint {
        Some(e) => split_export(e),
        None => (file_name(path), None),
    };
    let module = module(bytes, export)?;
    let facts = Facts {
        entrypoint: Some(display.clone()),
        entrypoint_magic: Some(module.bytes[..8].to_vec()),
        ..Facts::default()
    };
    let decision = dispatch::decide(&facts).map_err(|source| RunError::Dispatch {
        image: display.clone(),
        source,
    })?;
    let config = ImageConfig::default();
    let argv = std::iter::once(argv0)
        .chain(opts.args.iter().cloned())
        .collect();
    let spec = bundle::spec(&config, opts, argv, HashMap::new())?;
    Ok(Prepared {
        name: display,
        decision,
        spec,
        rootfs: None,
        layers: Vec::new(),
        wasm: Some(module),
        image_digest: None,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn prepare_image(
    store: &Store,
    target: &str,
    image: &ResolvedImage,
    opts: &RunOptions,
) -> Result<Prepared, RunError> {
    let mut facts = image.facts();
    let layers = image.manifest.layers();
    let wasm_layer = layers
        .iter()
        .find(|l| media::is_wasm_layer(l.media_type().as_ref()));
    let has_tar = layers
        .iter()
        .any(|l| media::is_tar_layer(l.media_type().as_ref()));
    let _guard = store.lock_shared()?;
    let layer_dirs = if has_tar {
        unpack::ensure_layers(
            store,
            &image.manifest,
            &image.config,
            &UnpackOptions::default(),
        )?
    } else {
        Vec::new()
    };
    let mut argv = bundle::argv(&image.config, opts);
    let image_entrypoint = image
        .config
        .config
        .as_ref()
        .and_then(|c| c.entrypoint.as_ref())
        .is_some_and(|e| !e.is_empty());
    let mut export = None;
    if let Some(first) = argv.first_mut() {
        let (path, func) = split_export(first);
        *first = path;
        export = func;
    }

    let mut wasm_bytes = None;
    if let Some(layer) = wasm_layer {
        let bytes = store.read_blob_capped(layer, "wasm module", MAX_WASM_BYTES as u64)?;
        facts.entrypoint_magic = Some(bytes.iter().take(8).copied().collect());
        wasm_bytes = Some(bytes);
    }
    let says_wasm = dispatch::decide(&facts)
        .map(|d| d.signals.iter().any(|s| s.says == Kind::Wasm))
        .unwrap_or(true);
    let mut rootfs = None;
    if !layer_dirs.is_empty() && says_wasm {
        let dir = unpack::image_rootfs(store, image.manifest_desc.digest(), &layer_dirs)?;
        if wasm_bytes.is_none()
            && let Some(entry) = argv.first()
        {
            let bytes = read_entrypoint(&dir, entry, &image.config, target)?;
            facts.entrypoint_magic = Some(bytes.iter().take(8).copied().collect());
            wasm_bytes = Some(bytes);
        }
        rootfs = Some(dir);
    }
    let decision = dispatch::decide(&facts).map_err(|source| RunError::Dispatch {
        image: target.to_string(),
        source,
    })?;
    let wasm = match decision.kind {
        Kind::Native => None,
        Kind::Wasm => {
            let bytes = wasm_bytes.ok_or_else(|| RunError::NotWasm {
                image: target.to_string(),
                path: argv.first().cloned().unwrap_or_default(),
            })?;
            if !bytes.starts_with(b"\0asm") && !package::is_wat(&bytes) {
                return Err(RunError::NotWasm {
                    image: target.to_string(),
                    path: argv.first().cloned().unwrap_or_default(),
                });
            }
            if wasm_layer.is_some() && !image_entrypoint && opts.entrypoint.is_none() {
                // A wasm artifact names no program: argv[0] is the image's name.
                let argv0 = image
                    .record
                    .name
                    .as_ref()
                    .map_or_else(|| image.record.short_id(), |n| n.familiar_name());
                argv.insert(0, argv0);
            }
            Some(module(bytes, export)?)
        }
    };
    let mut spec = bundle::spec(&image.config, opts, argv, image.annotations())?;
    if wasm.is_none()
        && let Some(process) = spec.process_mut()
    {
        // Docker gives native containers a PATH when the image sets none.
        let mut env = process.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        process.set_env(Some(env));
    }
    Ok(Prepared {
        name: target.to_string(),
        decision,
        spec,
        rootfs: if wasm.is_some() { rootfs } else { None },
        layers: layer_dirs,
        wasm,
        image_digest: Some(image.record.digest().to_string()),
    })
}

/// Read the entrypoint file out of the image's files, looking it up on the image's PATH when
/// it is not absolute.
fn read_entrypoint(
    rootfs: &Path,
    entry: &str,
    config: &ImageConfig,
    image: &str,
) -> Result<Vec<u8>, RunError> {
    let root =
        Dir::open_ambient_dir(rootfs, ambient_authority()).map_err(|source| RunError::Io {
            path: rootfs.to_path_buf(),
            source,
        })?;
    let candidates: Vec<String> = if entry.starts_with('/') {
        vec![entry.to_string()]
    } else {
        let path = config
            .config
            .as_ref()
            .and_then(|c| c.env.as_ref())
            .and_then(|env| env.iter().find_map(|kv| kv.strip_prefix("PATH=")))
            .unwrap_or(DEFAULT_PATH)
            .to_string();
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/{entry}"))
            .collect()
    };
    for c in &candidates {
        if let Ok(file) = unpack::open_file_in_root(&root, c) {
            return read_capped(file, c);
        }
    }
    Err(RunError::EntrypointNotFound {
        image: image.to_string(),
        path: entry.to_string(),
    })
}
