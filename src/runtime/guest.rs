//! A wasm bundle's first process: `create` sets the container up as for a native bundle
//! (namespaces, cgroup, root filesystem, mounts, user, capabilities, seccomp), and then,
//! where a native process would exec its entrypoint, this process runs the module with
//! wharf's wasmtime backend in place (as crun's wasm handler does). Only the `wharf`
//! binary carries the engine: the small `wharf-runtime` hands a wasm bundle's `create` to
//! a sealed copy of it (see `create`).

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::backend::wasm::{self, StdioOptions, WasmRun};
use crate::run::Opened;

/// The engine entry `create` calls in the container's first process, once set up.
pub type Engine = fn(&Spec) -> u8;

/// The spec as the guest sees it from inside the container: a bind mount's source is its
/// destination (already mounted there); only directories become preopens (files such as
/// /etc/hosts are seen through the read-only root).
fn inside(spec: &Spec) -> Spec {
    let mut spec = spec.clone();
    if let Some(mounts) = spec.mounts().clone() {
        let kept = mounts
            .into_iter()
            .filter(|m| m.typ().as_deref() == Some("bind"))
            .filter(|m| m.destination().is_dir())
            .map(|mut m| {
                m.set_source(Some(m.destination().clone()));
                m
            })
            .collect();
        spec.set_mounts(Some(kept));
    }
    spec
}

/// Run the bundle's module in this process (inside the container): its exit code.
pub fn run(spec: &Spec) -> u8 {
    let spec = inside(spec);
    let args = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().clone())
        .unwrap_or_default();
    let Some(entry) = args.first() else {
        eprintln!("wharf: the spec has no process to run");
        return 127;
    };
    let path = if Path::new(entry).is_absolute() {
        PathBuf::from(entry)
    } else {
        Path::new("/").join(entry)
    };
    let module = std::fs::File::open(&path)
        .map_err(|e| format!("{entry}: {e}"))
        .and_then(|f| {
            Opened::file(f, entry, entry, None)
                .and_then(|o| o.into_module(None))
                .map_err(|e| e.to_string())
        });
    let module = match module {
        Ok(m) => m,
        Err(e) => {
            eprintln!("wharf: {e}");
            return 126;
        }
    };
    let tty = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let r = wasm::run(WasmRun {
        name: entry,
        module: &module,
        spec: &spec,
        rootfs: Some(Path::new("/")),
        ports: &[],
        stdio: StdioOptions {
            interactive: true,
            tty,
        },
        // Nothing persists inside a container: compiled at each start.
        cache_dir: PathBuf::from("/proc/nonexistent/wharf-cache"),
        compile_timeout: wasm::DEFAULT_COMPILE_TIMEOUT,
        started: &|| {},
    });
    match r {
        Ok(exit) => {
            if let Some(m) = &exit.message {
                eprintln!("wharf: {m}");
            }
            exit.code
        }
        Err(e) => {
            eprintln!("wharf: {e}");
            e.exit_code()
        }
    }
}
