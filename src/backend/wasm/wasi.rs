//! Which WASI a compiled component targets, and what to tell the user when it cannot link:
//! the interface it imports that wharf's wasmtime does not provide, named, with the WASI
//! versions that do run.

use wasmtime::component::Component;

use super::WasmError;
use crate::image::package::{WasiVersion, WasmKind};

/// The WASI version a compiled component targets (see [`WasiVersion::of`]).
pub fn version_of(component: &Component) -> WasiVersion {
    let engine = component.engine();
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    WasiVersion::of(WasmKind::Component, &imports, &exports)
}

/// The WASI versions this build runs, for messages.
pub const SUPPORTED: &str = "WASI preview 1, 0.2.x and 0.3.0";

/// A linking failure explained: the import that has no implementation, and why.
pub fn link_error(component: &Component, err: &wasmtime::Error) -> WasmError {
    let message = format!("{err:#}");
    let Some(name) = missing_import(&message) else {
        return WasmError::Link(message);
    };
    let version = version_of(component);
    let wasi = name.strip_prefix("wasi:");
    WasmError::Link(match wasi {
        Some(_) => format!(
            "this {version} component imports {name}, which wasmtime {} does not provide \
             (wharf runs {SUPPORTED})",
            super::wasmtime_version()
        ),
        None => format!(
            "this component imports {name}, which is not WASI: nothing provides it (wharf \
             gives components {SUPPORTED} only)"
        ),
    })
}

/// The name in wasmtime's "component imports instance `NAME`, but a matching
/// implementation was not found in the linker" (or `function`, `resource`, ...).
fn missing_import(message: &str) -> Option<&str> {
    let rest = &message[message.find("component imports ")? + "component imports ".len()..];
    let start = rest.find('`')? + 1;
    let len = rest[start..].find('`')?;
    let name = &rest[start..start + len];
    (message.contains("not found") || message.contains("no implementation")).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_import_is_named() {
        let m = "component imports instance `wasi:foo/bar@0.3.1`, but a matching \
                 implementation was not found in the linker";
        assert_eq!(missing_import(m), Some("wasi:foo/bar@0.3.1"));
        assert_eq!(missing_import("some other failure `x`"), None);
    }

    #[test]
    fn a_component_importing_an_unknown_wasi_interface_is_explained() {
        let engine = super::super::engine::engine(Default::default()).unwrap();
        // A component importing a WASI 0.3 interface wasmtime 48 does not have.
        let wat = r#"(component
            (import "wasi:foo/bar@0.3.1" (instance (export "f" (func))))
        )"#;
        let component = Component::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        let mut linker = wasmtime::component::Linker::<()>::new(&engine);
        linker.allow_shadowing(true);
        let err = linker
            .instantiate_pre(&component)
            .err()
            .expect("cannot link");
        let WasmError::Link(message) = link_error(&component, &err) else {
            panic!("a link error");
        };
        assert!(
            message.contains("WASI 0.3")
                && message.contains("imports wasi:foo/bar@0.3.1")
                && message.contains("does not provide"),
            "{message}"
        );
        assert_eq!(
            version_of(&component),
            WasiVersion::P3,
            "a 0.3 import makes it a 0.3 component"
        );
    }
}
