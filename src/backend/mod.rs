//! The backends that run a prepared bundle: wasm (wasmtime, any OS) and, on Linux, native.

#[cfg(target_os = "linux")]
pub mod native;
pub mod wasm;

/// The message of an `Exit` when the kernel OOM-killed a native container.
pub const OOM_KILLED: &str =
    "the container was OOM-killed: it exceeded its memory limit (--memory)";

/// How a run ended, as the `wharf` process should report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The exit code (the workload's own, or one of the documented limit codes).
    pub code: u8,
    /// What to tell the user on stderr, when the workload did not end by itself.
    pub message: Option<String>,
}

impl Exit {
    pub fn code(code: u8) -> Self {
        Exit {
            code,
            message: None,
        }
    }
}

/// Remove what a container's killed supervisor left outside the container's directory:
/// a native container's cgroup, its network (namespace, netavark's rules, the address
/// lease) and its pasta.
pub fn clean_up_after(id: &str, dir: &std::path::Path) {
    #[cfg(target_os = "linux")]
    {
        native::clean_up(id);
        crate::network::detach_leftover(dir);
        crate::network::pasta::stop_leftover(dir);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (id, dir);
}

/// Pause (`frozen`) or resume a running container: a native container's cgroup is frozen;
/// a wasm guest's process (`pid`, the wharf running it) is stopped with SIGSTOP.
pub fn set_paused(
    id: &str,
    kind: crate::dispatch::Kind,
    pid: i32,
    frozen: bool,
) -> Result<(), String> {
    match kind {
        crate::dispatch::Kind::Wasm => {
            let sig = if frozen {
                crate::sys::SIGSTOP
            } else {
                crate::sys::SIGCONT
            };
            crate::sys::send_signal(pid, sig).map_err(|e| e.to_string())
        }
        #[cfg(target_os = "linux")]
        crate::dispatch::Kind::Native => native::freeze(id, frozen).map_err(|e| e.to_string()),
        #[cfg(not(target_os = "linux"))]
        crate::dispatch::Kind::Native => {
            let _ = id;
            Err("native containers need a Linux host".into())
        }
    }
}
