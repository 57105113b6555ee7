//! The guest's view of the world, from the runtime spec: arguments, environment, stdio,
//! preopened directories and network policy. Nothing is visible unless declared: the image's
//! own files read-only at `/`, and each volume with the permissions asked for. Paths inside
//! a preopen are resolved by cap-std, so `..`, absolute paths and symlinks cannot leave it.

use std::io::IsTerminal;
use std::path::Path;

use oci_spec::runtime::Spec;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::WasmError;
use super::stdio::{Sanitized, Target};
use crate::bundle;

/// How the guest's stdio connects to wharf's.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdioOptions {
    /// `-i`: connect stdin (else the guest reads end-of-file).
    pub interactive: bool,
    /// `-t`: the user asked for a terminal; output passes through unsanitised.
    pub tty: bool,
}

/// A WASI context builder for one guest instance.
pub fn builder(
    spec: &Spec,
    rootfs: Option<&Path>,
    stdio: StdioOptions,
) -> Result<WasiCtxBuilder, WasmError> {
    let mut b = WasiCtxBuilder::new();
    let process = spec.process().as_ref().ok_or(WasmError::NoProcess)?;
    b.args(process.args().as_deref().unwrap_or_default());
    let env: Vec<(String, String)> = process
        .env()
        .iter()
        .flatten()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect();
    b.envs(&env);
    if process.cwd() != Path::new("/") && !env.iter().any(|(k, _)| k == "PWD") {
        // WASI has no working directory; wasi-libc programs read it from PWD.
        b.env("PWD", process.cwd().to_string_lossy());
    }

    if stdio.interactive {
        b.inherit_stdin();
    }
    if stdio.tty || !std::io::stdout().is_terminal() {
        b.inherit_stdout();
    } else {
        b.stdout(Sanitized(Target::Stdout));
    }
    if stdio.tty || !std::io::stderr().is_terminal() {
        b.inherit_stderr();
    } else {
        b.stderr(Sanitized(Target::Stderr));
    }

    if let Some(root) = rootfs {
        b.preopened_dir(root, "/", FsPerms::ReadOnly)
            .map_err(|e| WasmError::Preopen {
                path: root.display().to_string(),
                reason: format!("{e:#}"),
            })?;
    }
    for (host, guest, read_only) in bundle::volumes(spec) {
        if !host.is_dir() {
            return Err(WasmError::Preopen {
                path: host.display().to_string(),
                reason: "not a directory (wasm volumes must be directories)".into(),
            });
        }
        let perms = if read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        b.preopened_dir(&host, &guest, perms)
            .map_err(|e| WasmError::Preopen {
                path: host.display().to_string(),
                reason: format!("{e:#}"),
            })?;
    }

    if !bundle::network_access(spec) {
        b.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
    } else {
        b.inherit_network()
            .allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(true);
    }
    Ok(b)
}
