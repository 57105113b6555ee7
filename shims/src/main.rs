//! `containerd-shim-wharf-v1`: containerd's shim v2 (runtime type `io.containerd.wharf.v1`) for
//! wharf. containerd and Kubernetes (through CRI) run native and wasm containers with it,
//! picked per container by wharf's dispatch.
//!
//! The shim is plumbing: it is multi-threaded (ttrpc), so it never clones a container itself.
//! It drives `wharf-runtime` (create/start/kill/delete/exec/pause/resume/update/ps/events)
//! the way containerd-shim-runc-v2 drives runc, relays stdio, publishes task events, and is
//! the subreaper of its containers. One shim serves a whole pod (grouped by the CRI
//! sandbox id), as the runc shim does.

#[cfg(target_os = "linux")]
mod linux;

/// The runtime type containerd knows this shim by.
pub const RUNTIME_TYPE: &str = "io.containerd.wharf.v1";

#[cfg(target_os = "linux")]
fn main() {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!(
        "containerd-shim-wharf-v1 runs on Linux only: on other hosts use `wharf run` for wasm images"
    );
    std::process::exit(1);
}
