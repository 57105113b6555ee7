//! `wharf package`: wrap a `.wasm` (or `.wat`) file as an OCI image, either a CNCF TAG-runtime Wasm
//! artifact (config `application/vnd.wasm.config.v0+json`, one `application/wasm` layer) or,
//! with `--compat`, an ordinary image whose tar layer holds `/app.wasm` (Docker+Wasm's and
//! crun's shape).

use std::collections::HashMap;
use std::io::Write;

use oci_spec::image::Descriptor;
use serde::Serialize;
use wasmparser::{Parser, Payload};

use super::content::{ComponentInfo, ImageConfig, RootFs, RunConfig};
use super::reference::Reference;
use super::store::{Store, StoreError};
use super::{blob, media};

/// Largest wasm binary wharf packages or compiles.
pub const MAX_WASM_BYTES: usize = 256 << 20;

/// Why a file could not be packaged.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("not a WebAssembly binary: {0}")]
    NotWasm(String),
    #[error("invalid WebAssembly: {0}")]
    Invalid(String),
    #[error("WebAssembly binary is {size} bytes, over the {cap}-byte cap")]
    TooLarge { size: usize, cap: usize },
    #[error("invalid --env {0:?}: expected KEY=VALUE")]
    BadEnv(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A core module (WASI preview 1) or a component (preview 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WasmKind {
    Module,
    Component,
}

impl WasmKind {
    /// Tell a module from a component by the version field after the magic.
    pub fn detect(bytes: &[u8]) -> Option<WasmKind> {
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return None;
        }
        match bytes[4..8] {
            [1, 0, 0, 0] => Some(WasmKind::Module),
            [_, _, 1, 0] => Some(WasmKind::Component),
            _ => None,
        }
    }

    /// The kind's name, as its JSON spelling (`module`, `component`).
    pub fn name(self) -> &'static str {
        match self {
            WasmKind::Module => "module",
            WasmKind::Component => "component",
        }
    }

    /// The artifact `os` for this kind.
    pub fn os(self) -> &'static str {
        match self {
            WasmKind::Module => "wasip1",
            WasmKind::Component => "wasip2",
        }
    }
}

/// The WASI version a guest targets: preview 1 (a core module), 0.2 or 0.3 (components).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum WasiVersion {
    #[serde(rename = "0.1")]
    P1,
    #[serde(rename = "0.2")]
    P2,
    #[serde(rename = "0.3")]
    P3,
}

impl WasiVersion {
    /// What a guest targets, from its kind and (for a component) its own imports and
    /// exports: 0.3 when it exports WASI 0.3's `wasi:cli/run` or `wasi:http/handler`, or uses
    /// any other `wasi:` interface at 0.3 (a 0.3 command built with Rust's std also imports
    /// 0.2 interfaces, for its stdio); else 0.2.
    pub fn of(kind: WasmKind, imports: &[String], exports: &[String]) -> WasiVersion {
        if kind == WasmKind::Module {
            return WasiVersion::P1;
        }
        if exports.iter().chain(imports).any(|n| is_wasi_0_3(n)) {
            WasiVersion::P3
        } else {
            WasiVersion::P2
        }
    }

    /// [`WasiVersion::of`] with the name that decided it, for `inspect --explain`.
    pub fn explain(
        kind: WasmKind,
        imports: &[String],
        exports: &[String],
    ) -> (WasiVersion, String) {
        let version = WasiVersion::of(kind, imports, exports);
        let why = match version {
            WasiVersion::P1 => "a core module".to_string(),
            WasiVersion::P3 => match exports.iter().find(|e| is_wasi_0_3(e)) {
                Some(e) => format!("exports {e}"),
                None => imports
                    .iter()
                    .find(|i| is_wasi_0_3(i))
                    .map(|i| format!("imports {i}"))
                    .unwrap_or_default(),
            },
            WasiVersion::P2 => match target_world(exports) {
                Some(t) => format!("targets {t}"),
                None => "a component with no WASI 0.3 import or export".to_string(),
            },
        };
        (version, why)
    }

    /// What `bytes` (a module or a component) target, and why.
    pub fn of_bytes(bytes: &[u8]) -> Option<(WasiVersion, String)> {
        let kind = WasmKind::detect(bytes)?;
        let info = match kind {
            WasmKind::Module => ComponentInfo::default(),
            WasmKind::Component => component_info(bytes),
        };
        Some(WasiVersion::explain(kind, &info.imports, &info.exports))
    }

    /// `0.1`, `0.2`, `0.3`.
    pub fn number(self) -> &'static str {
        match self {
            WasiVersion::P1 => "0.1",
            WasiVersion::P2 => "0.2",
            WasiVersion::P3 => "0.3",
        }
    }
}

impl std::fmt::Display for WasiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WasiVersion::P1 => f.write_str("WASI preview 1 (0.1, a core module)"),
            WasiVersion::P2 => f.write_str("WASI 0.2 (preview 2, a component)"),
            WasiVersion::P3 => f.write_str("WASI 0.3 (preview 3, an async component)"),
        }
    }
}

/// Whether `name` is a `wasi:` interface at version 0.3 (`0.3`, `0.3.x`, `0.3-rc...`).
fn is_wasi_0_3(name: &str) -> bool {
    name.starts_with("wasi:")
        && name
            .split_once('@')
            .is_some_and(|(_, v)| v == "0.3" || v.starts_with("0.3.") || v.starts_with("0.3-"))
}

/// Options of `wharf package`.
#[derive(Debug, Clone, Default)]
pub struct PackageOptions {
    pub compat: bool,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    /// RFC 3339 creation time; `SOURCE_DATE_EPOCH` or now when unset.
    pub created: Option<String>,
}

/// What `package` made.
#[derive(Debug, Clone, Serialize)]
pub struct Packaged {
    pub reference: String,
    pub digest: String,
    pub kind: WasmKind,
    pub os: String,
    /// The WASI version the guest targets. The artifact's `os` stays `wasip1`/`wasip2`
    /// (the Wasm OCI layout defines no other): a 0.3 component is `wasip2`, its version in
    /// `component.target` (`wasi:cli/command@0.3.0`) and its imports.
    pub wasi: WasiVersion,
}

/// Package `wasm` and tag it `name` in the store.
pub fn package(
    store: &Store,
    wasm: &[u8],
    name: &Reference,
    opts: &PackageOptions,
) -> Result<Packaged, PackageError> {
    let text_converted;
    let wasm = if is_wat(wasm) {
        text_converted = wat::parse_bytes(wasm)
            .map_err(|e| PackageError::Invalid(e.to_string()))?
            .into_owned();
        &text_converted[..]
    } else {
        wasm
    };
    if wasm.len() > MAX_WASM_BYTES {
        return Err(PackageError::TooLarge {
            size: wasm.len(),
            cap: MAX_WASM_BYTES,
        });
    }
    let kind = WasmKind::detect(wasm).ok_or_else(|| {
        PackageError::NotWasm(
            "the file does not start with the \\0asm magic and a known version".into(),
        )
    })?;
    validate(wasm)?;
    let component = (kind == WasmKind::Component).then(|| component_info(wasm));
    let wasi = match &component {
        Some(c) => WasiVersion::of(kind, &c.imports, &c.exports),
        None => WasiVersion::of(kind, &[], &[]),
    };
    for e in &opts.env {
        if !e.contains('=') || e.starts_with('=') {
            return Err(PackageError::BadEnv(e.clone()));
        }
    }
    let created = opts.created.clone().unwrap_or_else(now_rfc3339);
    let run = (opts.cmd.is_some() || !opts.env.is_empty()).then(|| RunConfig {
        cmd: opts.cmd.clone(),
        env: (!opts.env.is_empty()).then(|| opts.env.clone()),
        ..RunConfig::default()
    });
    let _guard = store.lock_shared()?;
    let (config_mt, config, layer, annotations) = if opts.compat {
        let layer_tar = compat_layer(wasm);
        let diff_id = blob::digest_of(&layer_tar).to_string();
        let layer = store.put_blob(media::OCI_LAYER_TAR, &layer_tar)?;
        let mut run = run.unwrap_or_default();
        run.entrypoint = Some(vec!["/app.wasm".into()]);
        let config = ImageConfig {
            created: Some(created.clone()),
            architecture: "wasm".into(),
            os: "wasi".into(),
            config: Some(run),
            rootfs: Some(RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id],
            }),
            ..ImageConfig::default()
        };
        let mut a = HashMap::new();
        a.insert(
            media::ANNOTATION_WASM_VARIANT.to_string(),
            "compat".to_string(),
        );
        (media::OCI_CONFIG, config, layer, a)
    } else {
        let layer = store.put_blob(media::WASM_LAYER, wasm)?;
        let config = ImageConfig {
            created: Some(created.clone()),
            architecture: "wasm".into(),
            os: kind.os().into(),
            config: run,
            layer_digests: Some(vec![layer.digest().to_string()]),
            component,
            ..ImageConfig::default()
        };
        (media::WASM_CONFIG, config, layer, HashMap::new())
    };
    let config_bytes = serde_json::to_vec(&config).expect("config serialises");
    let config_desc = store.put_blob(config_mt, &config_bytes)?;
    let mut annotations = annotations;
    annotations.insert(media::ANNOTATION_CREATED.to_string(), created);
    let manifest = ManifestOut {
        schema_version: 2,
        media_type: media::OCI_MANIFEST,
        config: &config_desc,
        layers: std::slice::from_ref(&layer),
        annotations: &annotations,
    };
    let bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    let desc = store.put_blob(media::OCI_MANIFEST, &bytes)?;
    store.add_image(Some(name), &desc)?;
    store.event("tag", desc.digest().as_ref(), Some(&name.to_string()));
    Ok(Packaged {
        reference: name.to_string(),
        digest: desc.digest().to_string(),
        kind,
        os: config.os,
        wasi,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestOut<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
    annotations: &'a HashMap<String, String>,
}

/// Whether `bytes` look like the WebAssembly text format (`.wat`).
pub fn is_wat(bytes: &[u8]) -> bool {
    let text = bytes.trim_ascii_start();
    text.starts_with(b"(") || text.starts_with(b";;")
}

fn validate(wasm: &[u8]) -> Result<(), PackageError> {
    let mut v = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    v.validate_all(wasm)
        .map(drop)
        .map_err(|e| PackageError::Invalid(e.to_string()))
}

/// A one-file tar holding the module at `/app.wasm`, mode 0755, timestamp 0.
fn compat_layer(wasm: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(wasm.len() as u64);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "app.wasm", wasm)
        .expect("writing to a Vec cannot fail");
    let mut out = b.into_inner().expect("writing to a Vec cannot fail");
    out.flush().expect("flushing a Vec cannot fail");
    out
}

/// The component's own imports and exports (not those of nested modules or components), and
/// the WASI world they amount to.
pub fn component_info(wasm: &[u8]) -> ComponentInfo {
    let mut info = ComponentInfo::default();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else { break };
        match payload {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader.into_iter().flatten() {
                    info.imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader.into_iter().flatten() {
                    info.exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    info.target = target_world(&info.exports);
    info
}

fn target_world(exports: &[String]) -> Option<String> {
    let versioned = |iface: &str, world: &str| {
        exports.iter().find_map(|e| {
            let (name, version) = e.split_once('@').unwrap_or((e, ""));
            (name == iface).then(|| {
                if version.is_empty() {
                    world.to_string()
                } else {
                    format!("{world}@{version}")
                }
            })
        })
    };
    versioned("wasi:http/incoming-handler", "wasi:http/proxy")
        .or_else(|| versioned("wasi:http/handler", "wasi:http/service"))
        .or_else(|| versioned("wasi:cli/run", "wasi:cli/command"))
}

fn now_rfc3339() -> String {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        && let Some(t) = chrono::DateTime::from_timestamp(epoch, 0)
    {
        return t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_module_and_component() {
        assert_eq!(WasmKind::detect(b"\0asm\x01\0\0\0"), Some(WasmKind::Module));
        assert_eq!(
            WasmKind::detect(b"\0asm\x0d\0\x01\0"),
            Some(WasmKind::Component)
        );
        assert_eq!(WasmKind::detect(b"\x7fELF\x02\x01\x01\0"), None);
        assert_eq!(WasmKind::detect(b"\0asm"), None);
    }

    #[test]
    fn target_world_from_exports() {
        let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            target_world(&e(&["wasi:http/incoming-handler@0.2.3"])).as_deref(),
            Some("wasi:http/proxy@0.2.3")
        );
        assert_eq!(
            target_world(&e(&["wasi:cli/run@0.2.0"])).as_deref(),
            Some("wasi:cli/command@0.2.0")
        );
        assert_eq!(target_world(&e(&["my:pkg/thing"])), None);
        // WASI 0.3's names: its http world is `service`, exporting `handler`.
        assert_eq!(
            target_world(&e(&["wasi:http/handler@0.3.0"])).as_deref(),
            Some("wasi:http/service@0.3.0")
        );
        assert_eq!(
            target_world(&e(&["wasi:cli/run@0.3.0"])).as_deref(),
            Some("wasi:cli/command@0.3.0")
        );
    }

    #[test]
    fn wasi_version_from_kind_imports_and_exports() {
        let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        use WasiVersion::*;
        assert_eq!(WasiVersion::of(WasmKind::Module, &[], &[]), P1);
        assert_eq!(WasiVersion::of(WasmKind::Component, &[], &[]), P2);
        assert_eq!(
            WasiVersion::of(
                WasmKind::Component,
                &e(&["wasi:cli/stdout@0.2.6", "wasi:io/streams@0.2.6"]),
                &e(&["wasi:cli/run@0.2.6"])
            ),
            P2
        );
        // Rust's std imports 0.2 stdio; the export says 0.3.
        assert_eq!(
            WasiVersion::of(
                WasmKind::Component,
                &e(&["wasi:cli/stdout@0.2.6"]),
                &e(&["wasi:cli/run@0.3.0"])
            ),
            P3
        );
        assert_eq!(
            WasiVersion::of(
                WasmKind::Component,
                &[],
                &e(&["wasi:http/handler@0.3.0-rc-2025-09-16"])
            ),
            P3
        );
        // A library component using 0.3 imports only.
        assert_eq!(
            WasiVersion::of(
                WasmKind::Component,
                &e(&["wasi:clocks/monotonic-clock@0.3.1"]),
                &e(&["my:pkg/api"])
            ),
            P3
        );
        // Not WASI, or 0.30: not 0.3.
        assert_eq!(
            WasiVersion::of(
                WasmKind::Component,
                &e(&["my:pkg/x@0.3.0", "wasi:foo/bar@0.30.0"]),
                &[]
            ),
            P2
        );
        assert_eq!(P3.number(), "0.3");
        let (v, why) = WasiVersion::explain(
            WasmKind::Component,
            &e(&["wasi:cli/stdout@0.2.6"]),
            &e(&["wasi:cli/run@0.3.0"]),
        );
        assert_eq!((v, why.as_str()), (P3, "exports wasi:cli/run@0.3.0"));
        let (v, why) = WasiVersion::explain(
            WasmKind::Component,
            &[],
            &e(&["wasi:http/incoming-handler@0.2.0"]),
        );
        assert_eq!((v, why.as_str()), (P2, "targets wasi:http/proxy@0.2.0"));
        let module = wat::parse_str("(module)").unwrap();
        assert_eq!(
            WasiVersion::of_bytes(&module),
            Some((P1, "a core module".to_string()))
        );
        assert_eq!(WasiVersion::of_bytes(b"not wasm"), None);
    }
}
