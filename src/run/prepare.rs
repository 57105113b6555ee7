//! From an image (or a `.wasm`/`.wat` file) and run options to a `Prepared` run: the
//! dispatch decision with every signal, the runtime spec, the image's files, and for wasm
//! the module bytes, read from the store (never from a precompiled artifact in the image).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use oci_spec::runtime::Spec;

use super::module::{ModuleError, Opened, WasmModule};
use super::options::RunOptions;
use crate::bundle::{self, BundleError};
use crate::dispatch::{self, Conflict, Decision, Facts, Kind};
use crate::image::content::ImageConfig;
use crate::image::package::PackageError;
use crate::image::platform::PlatformSpec;
use crate::image::resolved::ResolvedImage;
use crate::image::unpack::{self, LayerDir, UnpackError, UnpackOptions};
use crate::image::{Store, StoreError, media};

/// The PATH used to find a relative entrypoint when the image sets none.
/// The PATH native containers get when their image sets none (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
    #[error(transparent)]
    Module(#[from] ModuleError),
    #[error("{image}: entrypoint {path:?} not found in the image")]
    EntrypointNotFound { image: String, path: String },
    #[error("{image}: entrypoint {path:?} is not a WebAssembly module or component")]
    NotWasm { image: String, path: String },
    #[error(
        "{0}: no such file (a name ending in .wasm or .wat, or a path, is taken as a file, not an image; to run an image of that name, give its tag, e.g. {0}:latest)"
    )]
    NoSuchFile(String),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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

/// Whether `target` can only mean a file (never an image reference): it ends in
/// `.wasm`/`.wat`, or is a path (`/x`, `./x`, `../x`, `~/x`, a backslash, a drive letter).
/// Such a name is never looked up in the store or pulled: a typo must not become traffic.
pub fn names_a_file(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.ends_with(".wasm")
        || lower.ends_with(".wat")
        || target.starts_with('/')
        || target.starts_with("./")
        || target.starts_with("../")
        || target.starts_with("~/")
        || (cfg!(windows) && is_windows_path(target))
}

/// A Windows path (`C:\x`, `C:/x`, `\\server\share`): only a Windows host has drive letters,
/// so on Linux `h:1` stays an image called `h`.
fn is_windows_path(target: &str) -> bool {
    target.contains('\\')
        || matches!(target.as_bytes(), [d, b':', b'\\' | b'/', ..] if d.is_ascii_alphabetic())
}

/// Whether `target` names a wasm file on disk rather than an image.
fn is_wasm_file(target: &str) -> bool {
    (names_a_file(target) || target.contains(std::path::MAIN_SEPARATOR))
        && Path::new(target).is_file()
}

/// Prepare a run of `target` (an image in the store, or a `.wasm`/`.wat` file).
pub fn prepare(
    store: &Store,
    target: &str,
    opts: &RunOptions,
    platform: Option<&PlatformSpec>,
) -> Result<Prepared, RunError> {
    if is_wasm_file(target) {
        return prepare_file(Path::new(target), opts, Some(&store.wasm_index_dir()));
    }
    if names_a_file(target) {
        return Err(RunError::NoSuchFile(target.to_string()));
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

fn prepare_file(
    path: &Path,
    opts: &RunOptions,
    index_dir: Option<&Path>,
) -> Result<Prepared, RunError> {
    let display = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| RunError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let locator = std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    let (argv0, export) = match &opts.entrypoint {
        Some(e) => split_export(e),
        None => (file_name(path), None),
    };
    let module =
        Opened::file(file, &display, &format!("file:{locator}"), index_dir)?.into_module(export)?;
    let facts = Facts {
        entrypoint: Some(display.clone()),
        entrypoint_magic: Some(module.head.clone()),
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
    let mut facts = crate::dispatch::Facts::of_image(image);
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
            &UnpackOptions::from_env()?,
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

    // The module is opened and identified here, but its bytes are read only if the compile
    // cache has nothing for it (see `module`).
    let mut opened: Option<Opened> = None;
    if let Some(layer) = wasm_layer {
        let o = Opened::blob(
            &store.blob_path(layer.digest())?,
            layer.digest(),
            layer.size(),
        )?;
        facts.entrypoint_magic = Some(o.head().to_vec());
        opened = Some(o);
    }
    let says_wasm = dispatch::decide(&facts)
        .map(|d| d.signals.iter().any(|s| s.says == Kind::Wasm))
        .unwrap_or(true);
    let mut rootfs = None;
    if !layer_dirs.is_empty() && says_wasm {
        let dir = unpack::image_rootfs(store, image.manifest_desc.digest(), &layer_dirs)?;
        if opened.is_none()
            && let Some(entry) = argv.first()
        {
            let o = open_entrypoint(store, &dir, entry, &image.config, target)?;
            facts.entrypoint_magic = Some(o.head().to_vec());
            opened = Some(o);
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
            let opened = opened.ok_or_else(|| RunError::NotWasm {
                image: target.to_string(),
                path: argv.first().cloned().unwrap_or_default(),
            })?;
            if !opened.looks_like_wasm() {
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
            Some(opened.into_module(export)?)
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

/// Open the entrypoint file in the image's files (resolved inside them), looking it up on
/// the image's PATH when it is not absolute.
fn open_entrypoint(
    store: &Store,
    rootfs: &Path,
    entry: &str,
    config: &ImageConfig,
    image: &str,
) -> Result<Opened, RunError> {
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
            // The image's files are immutable once unpacked (verified by diff id), and named
            // by the layer or manifest digest in their path.
            let locator = format!("rootfs:{}:{c}", rootfs.display());
            let file = file.into_std();
            return Ok(Opened::file(
                file,
                c,
                &locator,
                Some(&store.wasm_index_dir()),
            )?);
        }
    }
    Err(RunError::EntrypointNotFound {
        image: image.to_string(),
        path: entry.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_images_are_told_apart() {
        for file in ["app.wasm", "x.WAT", "/srv/app", "./app", "../app", "~/app"] {
            assert!(names_a_file(file), "{file}");
        }
        for image in ["h:1", "busybox", "localhost:5000/app:v1", "bb"] {
            assert!(!names_a_file(image), "{image}");
        }
        // Drive letters and backslashes are paths on Windows only.
        assert_eq!(names_a_file(r"C:\app"), cfg!(windows));
        assert_eq!(names_a_file("c:/app"), cfg!(windows));
    }
}
