//! The backends that run a prepared bundle: wasm (wasmtime, any OS) and, on Linux, native.

#[cfg(target_os = "linux")]
pub mod native;
pub mod wasm;

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
