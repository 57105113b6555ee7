//! A wasm bundle's first process: `create` sets the container up as for a native bundle
//! (namespaces, cgroup, root filesystem, mounts, user, capabilities, seccomp), and then,
//! where a native process would exec its entrypoint, this process runs the module with
//! wharf's wasmtime backend in place (as crun's wasm handler does). Only the `wharf`
//! binary carries the engine: the small `wharf-runtime` hands a wasm bundle's `create` to
//! a sealed copy of it (see `create`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::backend::wasm::engine::{Cache, Preloaded};
use crate::backend::wasm::{self, StdioOptions, WasmRun};
use crate::run::Opened;
use crate::run::options::PortMapping;

/// The wasm engine as `create` uses it: `prepare` in the runtime before the container
/// exists (the compiled code, from the runtime's cache), `run` in the container's first
/// process once it is set up.
#[derive(Debug, Clone, Copy)]
pub struct Engine {
    pub prepare: fn(&Spec, &Path, &Path) -> Preloaded,
    pub run: fn(&Spec, &Preloaded) -> u8,
}

/// wharf's engine (only the `wharf` binary links it).
pub const ENGINE: Engine = Engine { prepare, run };

/// Before the container is made (in the runtime, on the host): compile the bundle's module
/// into the runtime's cache at `cache_dir` if it is not there yet, and read the compiled code
/// the container's engine will need, so a container started again does not compile again.
/// The compiler's threads live in a forked helper: this process must stay single-threaded
/// until it clones the container. Nothing here is fatal: without preloaded code the
/// container compiles, and reports what is wrong with the module, as before.
pub fn prepare(spec: &Spec, rootfs: &Path, cache_dir: &Path) -> Preloaded {
    match try_prepare(spec, rootfs, cache_dir) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "no compiled code prepared for the container");
            Vec::new()
        }
    }
}

fn try_prepare(spec: &Spec, rootfs: &Path, cache_dir: &Path) -> Result<Preloaded, String> {
    if crate::sys::thread_count() > 1 {
        return Err("the runtime is multi-threaded: no helper is forked".into());
    }
    let entry = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .and_then(|a| a.first())
        .ok_or("no process")?;
    let root = cap_std::fs::Dir::open_ambient_dir(rootfs, cap_std::ambient_authority())
        .map_err(|e| e.to_string())?;
    // Inside the rootfs, as the container will see it: symlinks resolved within it.
    let file = crate::image::unpack::open_file_in_root(&root, entry)
        .map_err(|e| e.to_string())?
        .into_std();
    let module = Opened::file(file, entry, entry, None)
        .and_then(|o| o.into_module(None))
        .map_err(|e| e.to_string())?;
    let (r, w) = nix::unistd::pipe().map_err(|e| e.to_string())?;
    // SAFETY: this process is single-threaded (checked above), so the child may do
    // anything; it compiles, writes the cache keys to the pipe and leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let code = match wasm::precompile_for(&module, spec, cache_dir, None) {
                Ok(keys) => {
                    let mut out = std::fs::File::from(w);
                    i32::from(
                        std::io::Write::write_all(&mut out, keys.join("\n").as_bytes()).is_err(),
                    )
                }
                Err(_) => 1,
            };
            // SAFETY: _exit ends the helper without running the parent's atexit handlers
            // or destructors twice.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut keys = String::new();
            let read = std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut keys);
            let status = nix::sys::wait::waitpid(child, None).map_err(|e| e.to_string())?;
            if read.is_err() || status != nix::sys::wait::WaitStatus::Exited(child, 0) {
                return Err(format!("the compile helper ended with {status:?}"));
            }
            Ok(keys
                .lines()
                .filter_map(|k| Some((k.to_owned(), Cache::read_entry(cache_dir, k)?)))
                .collect())
        }
    }
}

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

/// The environment variable that sets where a wasi:http server in a container listens (the
/// container's own network: every address of it on port 8080 unless set). runwasi's name for
/// it is accepted too, so images made for runwasi's wasmtime shim run unchanged.
pub const HTTP_ADDRESS_ENV: &str = "WHARF_HTTP_ADDRESS";
const RUNWASI_HTTP_ADDRESS_ENV: &str = "WASMTIME_HTTP_PROXY_SOCKET_ADDR";

/// Where a wasi:http component in this container serves.
fn http_address(spec: &Spec) -> Result<Vec<PortMapping>, String> {
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    let value = [HTTP_ADDRESS_ENV, RUNWASI_HTTP_ADDRESS_ENV]
        .iter()
        .find_map(|k| {
            env.iter()
                .find_map(|e| e.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_owned)
        });
    let addr: SocketAddr = match value {
        None => SocketAddr::from(([0, 0, 0, 0], 8080)),
        Some(v) => v.parse().map_err(|_| {
            format!("{HTTP_ADDRESS_ENV}={v:?} is not an address and port such as 0.0.0.0:8080")
        })?,
    };
    Ok(vec![PortMapping {
        host_ip: addr.ip(),
        host_port: addr.port(),
        container_port: addr.port(),
        protocol: Default::default(),
    }])
}

/// Run the bundle's module in this process (inside the container): its exit code.
/// The module is opened again here, and hashed, rather than taken from `prepare`: in here
/// the spec's mounts are in place, and a volume mounted over the entrypoint's directory is
/// what runs; preloaded code is used only when its key (the digest) matches what is seen.
pub fn run(spec: &Spec, preloaded: &Preloaded) -> u8 {
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
    let ports = match http_address(&spec) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("wharf: {e}");
            return 125;
        }
    };
    let r = wasm::run(WasmRun {
        name: entry,
        module: &module,
        spec: &spec,
        rootfs: Some(Path::new("/")),
        ports: &ports,
        stdio: StdioOptions {
            interactive: true,
            tty,
        },
        // The host's cache is out of reach in here: compiled code comes preloaded (else it
        // is compiled now and not kept).
        cache_dir: PathBuf::from("/proc/nonexistent/wharf-cache"),
        compile_timeout: None,
        preloaded: preloaded.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_env(env: &[&str]) -> Spec {
        let mut spec = Spec::default();
        let mut p = spec.process().clone().unwrap_or_default();
        p.set_env(Some(env.iter().map(|s| s.to_string()).collect()));
        spec.set_process(Some(p));
        spec
    }

    #[test]
    fn http_address_defaults_to_every_address_of_the_container() {
        let p = http_address(&spec_with_env(&["PATH=/bin"])).unwrap();
        assert_eq!(p[0].host_ip.to_string(), "0.0.0.0");
        assert_eq!(p[0].host_port, 8080);
        let p = http_address(&spec_with_env(&[
            "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:9000",
        ]))
        .unwrap();
        assert_eq!(
            (p[0].host_ip.to_string(), p[0].host_port),
            ("127.0.0.1".into(), 9000)
        );
        let p = http_address(&spec_with_env(&[
            "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:9000",
            "WHARF_HTTP_ADDRESS=127.0.0.1:9001",
        ]))
        .unwrap();
        assert_eq!(p[0].host_port, 9001);
        let e = http_address(&spec_with_env(&["WHARF_HTTP_ADDRESS=nope"])).unwrap_err();
        assert!(e.contains("WHARF_HTTP_ADDRESS"), "{e}");
    }
}
