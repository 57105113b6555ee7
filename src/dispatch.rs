//! Deciding how an image runs: natively (a Linux root filesystem) or under wasmtime.
//!
//! A pure function from what an image says about itself to `Native | Wasm`, with every
//! signal it saw, so `--explain` can show the decision. It knows every spelling in use
//! (CNCF wasm artifacts, runwasi's layer types, Spin's, Docker+Wasm platforms, crun's
//! annotations, the entrypoint's magic bytes), so a user never gets a silent fallback.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::image::media;
use crate::image::platform::{is_wasm_arch, is_wasm_os};

/// The two ways an image can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Native,
    Wasm,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Native => "native",
            Kind::Wasm => "wasm",
        })
    }
}

/// How much a signal counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strength {
    /// A default or a platform field that images often get wrong.
    Weak,
    /// Media types, annotations, and the bytes of the entrypoint.
    Strong,
}

/// One piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signal {
    /// Where it was seen (`config media type`, `annotation run.oci.handler`, …).
    pub source: String,
    pub value: String,
    pub says: Kind,
    pub strength: Strength,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {:?} → {} ({})",
            self.source,
            self.value,
            self.says,
            match self.strength {
                Strength::Weak => "weak",
                Strength::Strong => "strong",
            }
        )
    }
}

/// What the image says about itself.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub config_media_type: String,
    pub layer_media_types: Vec<String>,
    pub os: String,
    pub architecture: String,
    /// Manifest annotations merged with the image config's labels.
    pub annotations: HashMap<String, String>,
    /// The entrypoint path (for the `-smart` annotation variants).
    pub entrypoint: Option<String>,
    /// The first bytes of the entrypoint file, when it could be read.
    pub entrypoint_magic: Option<Vec<u8>>,
}

impl Facts {
    /// The facts a stored image gives without reading its layers.
    pub fn of_image(image: &crate::image::resolved::ResolvedImage) -> Facts {
        let run = image.config.config.as_ref();
        let entrypoint = run
            .and_then(|c| c.entrypoint.as_ref().and_then(|e| e.first().cloned()))
            .or_else(|| run.and_then(|c| c.cmd.as_ref().and_then(|e| e.first().cloned())));
        Facts {
            config_media_type: image.manifest.config().media_type().to_string(),
            layer_media_types: image
                .manifest
                .layers()
                .iter()
                .map(|l| l.media_type().to_string())
                .collect(),
            os: image.config.os.clone(),
            architecture: image.config.architecture.clone(),
            annotations: image.annotations(),
            entrypoint,
            entrypoint_magic: None,
        }
    }
}

/// The decision and its reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub kind: Kind,
    pub signals: Vec<Signal>,
    /// One sentence on why.
    pub reason: String,
}

/// Signals that contradict each other.
#[derive(Debug, thiserror::Error)]
#[error("conflicting signals: {wasm} says wasm, but {native} says native")]
pub struct Conflict {
    pub wasm: Signal,
    pub native: Signal,
    pub signals: Vec<Signal>,
}

fn signal(source: &str, value: &str, says: Kind, strength: Strength) -> Signal {
    Signal {
        source: source.to_string(),
        value: value.to_string(),
        says,
        strength,
    }
}

/// Decide how the image runs.
pub fn decide(f: &Facts) -> Result<Decision, Box<Conflict>> {
    let signals = collect(f);
    let strong = |k: Kind| {
        signals
            .iter()
            .find(|s| s.says == k && s.strength == Strength::Strong)
    };
    let any = |k: Kind| signals.iter().find(|s| s.says == k);
    // The entrypoint's bytes (or any strong native signal) against any wasm signal at all:
    // an image that claims wasm but ships an ELF is wrong, and guessing would hide it.
    if let (Some(w), Some(n)) = (strong(Kind::Wasm).or(any(Kind::Wasm)), strong(Kind::Native)) {
        return Err(Box::new(Conflict {
            wasm: w.clone(),
            native: n.clone(),
            signals: signals.clone(),
        }));
    }
    let (kind, reason) = if let Some(w) = strong(Kind::Wasm) {
        (Kind::Wasm, format!("wasm: {}", w.source))
    } else if let Some(n) = strong(Kind::Native) {
        (Kind::Native, format!("native: {}", n.source))
    } else if let Some(w) = any(Kind::Wasm) {
        (Kind::Wasm, format!("wasm: {}", w.source))
    } else {
        (
            Kind::Native,
            "native: no signal says wasm (a Linux root filesystem image)".to_string(),
        )
    };
    Ok(Decision {
        kind,
        signals,
        reason,
    })
}

fn collect(f: &Facts) -> Vec<Signal> {
    use Kind::*;
    use Strength::*;
    let mut out = Vec::new();
    if f.config_media_type == media::WASM_CONFIG {
        out.push(signal(
            "config media type",
            &f.config_media_type,
            Wasm,
            Strong,
        ));
    }
    for mt in &f.layer_media_types {
        if media::is_wasm_layer(mt) {
            out.push(signal("layer media type", mt, Wasm, Strong));
        }
    }
    if is_wasm_os(&f.os) {
        out.push(signal("platform os", &f.os, Wasm, Weak));
    } else if !f.os.is_empty() {
        out.push(signal("platform os", &f.os, Native, Weak));
    }
    if is_wasm_arch(&f.architecture) {
        out.push(signal("platform architecture", &f.architecture, Wasm, Weak));
    }
    let smart_says_wasm = f
        .entrypoint
        .as_deref()
        .is_some_and(|e| e.ends_with(".wasm") || e.ends_with(".wat"));
    for key in [
        media::ANNOTATION_RUN_OCI_HANDLER,
        media::ANNOTATION_WASM_VARIANT,
    ] {
        let Some(value) = f.annotations.get(key) else {
            continue;
        };
        let source = format!("annotation {key}");
        match value.as_str() {
            "wasm" | "compat" => out.push(signal(&source, value, Wasm, Strong)),
            "wasm-smart" | "compat-smart" if smart_says_wasm => {
                out.push(signal(&source, value, Wasm, Strong))
            }
            "wasm-smart" | "compat-smart" => out.push(signal(&source, value, Native, Weak)),
            _ => {}
        }
    }
    if let Some(magic) = &f.entrypoint_magic {
        if magic.starts_with(b"\0asm") {
            out.push(signal("entrypoint bytes", "\\0asm", Wasm, Strong));
        } else if magic.starts_with(b"\x7fELF") {
            out.push(signal("entrypoint bytes", "ELF", Native, Strong));
        } else if magic.starts_with(b"#!") {
            out.push(signal("entrypoint bytes", "#!", Native, Strong));
        }
    }
    out
}

/// Whether an OCI bundle's spec says WebAssembly by crun's rules (the `run.oci.handler`
/// and `module.wasm.image/variant` annotations, or an entrypoint ending in `.wasm`/`.wat`),
/// and why.
pub fn bundle_says_wasm(spec: &oci_spec::runtime::Spec) -> Option<String> {
    let a = spec.annotations().clone().unwrap_or_default();
    if let Some(h) = a.get("run.oci.handler")
        && matches!(h.as_str(), "wasm" | "wasmtime" | "wasm-smart")
    {
        return Some(format!("annotation run.oci.handler={h}"));
    }
    if let Some(v) = a.get("module.wasm.image/variant")
        && matches!(v.as_str(), "compat" | "compat-smart")
    {
        return Some(format!("annotation module.wasm.image/variant={v}"));
    }
    let arg0 = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .and_then(|a| a.first().cloned())?;
    (arg0.ends_with(".wasm") || arg0.ends_with(".wat"))
        .then(|| format!("entrypoint {arg0} ends in .wasm/.wat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            config_media_type: media::OCI_CONFIG.into(),
            os: "linux".into(),
            architecture: "amd64".into(),
            ..Facts::default()
        }
    }

    #[test]
    fn plain_linux_image_is_native() {
        let d = decide(&facts()).unwrap();
        assert_eq!(d.kind, Kind::Native);
    }

    #[test]
    fn every_wasm_spelling_is_recognised() {
        let mut f = facts();
        f.config_media_type = media::WASM_CONFIG.into();
        assert_eq!(decide(&f).unwrap().kind, Kind::Wasm);
        for layer in [
            media::WASM_LAYER,
            media::WASM_COMPONENT_LAYER,
            media::SPIN_WASM_LAYER,
        ] {
            let mut f = facts();
            f.layer_media_types = vec![layer.into()];
            assert_eq!(decide(&f).unwrap().kind, Kind::Wasm, "{layer}");
        }
        for (os, arch) in [
            ("wasi", "wasm"),
            ("Wasip1", "wasm32"),
            ("WASIP2", "wasm64"),
            ("linux", "wasm"),
        ] {
            let mut f = facts();
            f.os = os.into();
            f.architecture = arch.into();
            assert_eq!(decide(&f).unwrap().kind, Kind::Wasm, "{os}/{arch}");
        }
        for (k, v) in [
            ("run.oci.handler", "wasm"),
            ("module.wasm.image/variant", "compat"),
        ] {
            let mut f = facts();
            f.annotations.insert(k.into(), v.into());
            assert_eq!(decide(&f).unwrap().kind, Kind::Wasm, "{k}={v}");
        }
        let mut f = facts();
        f.entrypoint_magic = Some(b"\0asm\x01\0\0\0".to_vec());
        assert_eq!(decide(&f).unwrap().kind, Kind::Wasm);
    }

    #[test]
    fn smart_variants_look_at_the_entrypoint() {
        let mut f = facts();
        f.annotations
            .insert("module.wasm.image/variant".into(), "compat-smart".into());
        f.entrypoint = Some("/bin/sh".into());
        assert_eq!(decide(&f).unwrap().kind, Kind::Native);
        f.entrypoint = Some("/app.wasm".into());
        assert_eq!(decide(&f).unwrap().kind, Kind::Wasm);
    }

    #[test]
    fn conflicts_name_both_signals() {
        let mut f = facts();
        f.config_media_type = media::WASM_CONFIG.into();
        f.entrypoint_magic = Some(b"\x7fELF\x02\x01".to_vec());
        let err = decide(&f).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("config media type") && msg.contains("ELF"),
            "{msg}"
        );
    }

    #[test]
    fn a_wasm_platform_with_an_elf_entrypoint_is_a_conflict() {
        let mut f = facts();
        f.os = "wasi".into();
        f.architecture = "wasm".into();
        f.entrypoint_magic = Some(b"\x7fELF".to_vec());
        let msg = decide(&f).unwrap_err().to_string();
        assert!(msg.contains("platform os") && msg.contains("ELF"), "{msg}");
        // A weak native platform does not stop a strong wasm annotation (crun's compat images).
        let mut f = facts();
        f.annotations
            .insert("run.oci.handler".into(), "wasm".into());
        assert_eq!(decide(&f).unwrap().kind, Kind::Wasm);
    }
}
