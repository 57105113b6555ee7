//! The wasm backend: runs WASI preview 1 modules and 0.2 and 0.3 components under wasmtime,
//! serves `wasi:http` components (0.2's `proxy`, 0.3's `service`), and enforces limits that need no cgroups (memory,
//! run time, fuel), so it behaves the same on Linux and Windows.
//!
//! All wasmtime-wasi calls live in this module, so a wasmtime upgrade touches one place.

mod command;
mod ctx;
pub mod engine;
mod http;
pub mod limits;
pub mod signed;
mod stdio;
mod wasi;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use oci_spec::runtime::Spec;

pub use ctx::StdioOptions;
pub use engine::{Cache, EngineOptions, wasmtime_version};
pub use wasi::{SUPPORTED as SUPPORTED_WASI, link_error, version_of as wasi_version};

use self::engine::Compiled;
use self::limits::{EPOCH_TICK, RunLimits};
use super::Exit;
use crate::bundle;
use crate::run::WasmModule;
use crate::run::options::PortMapping;

/// How long a stop signal waits for the guest to reach an epoch check before it ends the
/// process outright.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// How long a module of `wasm_len` bytes may take to compile when no limit is given: two
/// minutes, and three seconds more per MiB (a 68 MB module such as yosys.wasm takes ~140 s on
/// a 2-core machine; a compile bomb is a small module that takes long).
pub fn default_compile_timeout(wasm_len: u64) -> Duration {
    Duration::from_secs(120 + 3 * (wasm_len >> 20))
}

/// Why a wasm run could not start (the guest's own failures are an `Exit`, not this).
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("configuring wasmtime: {0}")]
    Engine(String),
    #[error("invalid WebAssembly: {0}")]
    Compile(String),
    /// Valid WebAssembly that uses a feature this build's wasmtime does not enable.
    #[error("{0}")]
    Unsupported(String),
    #[error(
        "compiling took longer than {0:?}, the compile limit (--compile-timeout raises it; a compile-time bomb?)"
    )]
    CompileTimeout(Duration),
    #[error("cannot link the guest: {0}")]
    Link(String),
    #[error("nothing to run: {0}")]
    NoEntry(String),
    #[error("the runtime spec has no process")]
    NoProcess,
    #[error("cannot preopen {path}: {reason}")]
    Preopen { path: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl WasmError {
    /// Docker's exit code for this failure: 126 the guest cannot be invoked, 127 there is
    /// nothing to invoke, 125 wharf itself failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            WasmError::Compile(_)
            | WasmError::Unsupported(_)
            | WasmError::CompileTimeout(_)
            | WasmError::Link(_) => 126,
            WasmError::NoEntry(_) => 127,
            _ => 125,
        }
    }
}

/// One wasm run.
pub struct WasmRun<'a> {
    pub name: &'a str,
    pub module: &'a WasmModule,
    pub spec: &'a Spec,
    /// The image's files, shown read-only at `/`.
    pub rootfs: Option<&'a Path>,
    pub ports: &'a [PortMapping],
    pub stdio: StdioOptions,
    /// wharf's compilation cache directory.
    pub cache_dir: PathBuf,
    /// The compile limit (`None`: [`default_compile_timeout`] for the module's size).
    pub compile_timeout: Option<Duration>,
    /// Compiled code read from the cache beforehand (a runtime container's engine).
    pub preloaded: engine::Preloaded,
    /// Called once the guest is about to run (compiled and linked), or a server listens.
    pub started: &'a dyn Fn(),
}

/// Limits as the spec carries them: the OCI memory limit becomes the store's memory budget.
pub fn limits_from_spec(spec: &Spec) -> RunLimits {
    RunLimits {
        memory: bundle::memory_limit(spec),
        timeout: bundle::annotation_u64(spec, bundle::ANNOTATION_TIMEOUT_MS)
            .map(Duration::from_millis),
        fuel: bundle::annotation_u64(spec, bundle::ANNOTATION_FUEL),
    }
}

/// Compile (or load from the cache) without running: `--precompile`. Returns how many
/// engine variants were compiled now (0: all cached already).
pub fn precompile(
    module: &WasmModule,
    cache_dir: PathBuf,
    limit: Option<Duration>,
) -> Result<usize, WasmError> {
    let cache = Cache::new(cache_dir);
    let mut compiled = 0;
    let engine = engine::engine(EngineOptions::default())?;
    compiled += usize::from(!cache.contains(&engine, module));
    let is_http = match cache.load(&engine, module, limit)? {
        Compiled::Component(c) => http::is_http_component(&engine, &c),
        Compiled::Module(_) => false,
    };
    if is_http {
        let engine = engine::engine(EngineOptions {
            serving: true,
            ..EngineOptions::default()
        })?;
        compiled += usize::from(!cache.contains(&engine, module));
        cache.load(&engine, module, limit)?;
    }
    Ok(compiled)
}

/// Compile (or find in the cache) every variant of `module` that [`run`] needs under
/// `spec` (the command engine, with fuel if the spec asks; the serving engine for a wasi:http
/// component), and return their cache keys.
pub fn precompile_for(
    module: &WasmModule,
    spec: &Spec,
    cache_dir: &Path,
    limit: Option<Duration>,
) -> Result<Vec<String>, WasmError> {
    let limits = limits_from_spec(spec);
    let cache = Cache::new(cache_dir);
    let engine = engine::engine(EngineOptions {
        fuel: limits.fuel.is_some(),
        ..EngineOptions::default()
    })?;
    let mut keys = vec![Cache::key(&engine, module)];
    if let Compiled::Component(c) = cache.load(&engine, module, limit)?
        && http::is_http_component(&engine, &c)
    {
        let serving = engine::engine(EngineOptions {
            fuel: limits.fuel.is_some(),
            serving: true,
        })?;
        cache.load(&serving, module, limit)?;
        keys.push(Cache::key(&serving, module));
    }
    Ok(keys)
}

/// Run to completion (a command) or until stopped (an http server).
pub fn run(r: WasmRun<'_>) -> Result<Exit, WasmError> {
    let limits = limits_from_spec(r.spec);
    let cache = Cache::new(&r.cache_dir).with_preloaded(r.preloaded);
    let command_engine = engine::engine(EngineOptions {
        fuel: limits.fuel.is_some(),
        ..EngineOptions::default()
    })?;
    let compiled = cache.load(&command_engine, r.module, r.compile_timeout)?;
    match compiled {
        Compiled::Module(module) => {
            crate::sys::catch_termination();
            let _ticker = Ticker::start(&command_engine);
            let mut wasi = ctx::builder(r.spec, r.rootfs, r.stdio)?;
            (r.started)();
            command::run_module(
                &command_engine,
                &module,
                &mut wasi,
                &limits,
                r.module.export.as_deref(),
            )
        }
        Compiled::Component(component) if http::is_http_component(&command_engine, &component) => {
            let engine = engine::engine(EngineOptions {
                fuel: limits.fuel.is_some(),
                serving: true,
            })?;
            let component = match cache.load(&engine, r.module, r.compile_timeout)? {
                Compiled::Component(c) => c,
                Compiled::Module(_) => unreachable!("the same bytes compile to the same kind"),
            };
            let _ticker = limits.timeout.and_then(|_| Ticker::start(&engine));
            let addrs: Vec<SocketAddr> = if r.ports.is_empty() {
                vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080)]
            } else {
                r.ports
                    .iter()
                    .map(|p| SocketAddr::new(p.host_ip, p.host_port))
                    .collect()
            };
            http::serve(
                &engine, &component, r.spec, r.rootfs, &addrs, r.stdio, limits, r.name, r.started,
            )
        }
        Compiled::Component(component) => {
            crate::sys::catch_termination();
            let _ticker = Ticker::start(&command_engine);
            let mut wasi = ctx::builder(r.spec, r.rootfs, r.stdio)?;
            (r.started)();
            command::run_component(&command_engine, &component, &mut wasi, &limits)
        }
    }
}

/// The epoch ticker: advances the engine's epoch every `EPOCH_TICK`, so a guest in an
/// infinite loop is interrupted by its deadline or by `wharf stop`. Stops when dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: &wasmtime::Engine) -> Option<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                let mut asked: Option<std::time::Instant> = None;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                    // A guest blocked in a host call (reading stdin, sleeping) sees no epoch
                    // check: after a grace period the signal ends the process as it would
                    // have without wharf's handler.
                    if let Some(sig) = crate::sys::termination_requested()
                        && asked.get_or_insert_with(std::time::Instant::now).elapsed() > STOP_GRACE
                    {
                        crate::sys::die_of(sig);
                    }
                }
            })
            .ok()?;
        Some(Ticker { stop })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
