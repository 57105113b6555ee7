//! The wasmtime engine and wharf's compilation cache.
//!
//! Compiled code is cached under wharf's own root, keyed by the wasm bytes' digest and the
//! engine's compatibility hash, so the second run of an image does not compile. Only files
//! wharf wrote itself are ever deserialised: a precompiled artifact inside an image could run
//! arbitrary code, so images only ever provide wasm bytes.
//!
//! A cached start reads neither the module nor the compiled code: the artifact is mapped
//! (`deserialize_file`), after checking it is the very file wharf wrote (its identity,
//! recorded beside it when it was stored: a rewritten or replaced file has another change
//! time, so it is compiled anew rather than run).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, Module, OptLevel};

use super::WasmError;
use crate::image::package::WasmKind;
use crate::run::WasmModule;

/// The target this wharf was built for, as `arch-os-env` (`x86_64-linux-musl`).
pub fn target() -> String {
    let env = if cfg!(target_env = "musl") {
        "musl"
    } else if cfg!(target_env = "gnu") {
        "gnu"
    } else if cfg!(target_env = "msvc") {
        "msvc"
    } else {
        "none"
    };
    format!("{}-{}-{env}", std::env::consts::ARCH, std::env::consts::OS)
}

/// The address space one pooled linear memory takes: wasmtime's 4 GiB reservation (bounds
/// checks elided) and its 32 MiB guard.
const POOL_SLOT_BYTES: u64 = (4 << 30) + (32 << 20);

/// How many linear memories a wasi:http server's pool holds (the instances it can run at
/// once: requests beyond wait for one). `WHARF_HTTP_INSTANCES` sets it; otherwise a quarter
/// of the address space, at most 1000 (wasmtime's default, 4 TiB): a 47- or 48-bit space
/// gets 1000, an arm64 kernel with 39-bit addresses (512 GiB) about 30, where the default
/// pool could not even be reserved. Emulators that track reserved pages one by one
/// (qemu-user takes ~6 MiB of memory per GiB reserved) want it small too.
pub fn http_pool_slots() -> u32 {
    // Read once: the engine and the server each ask.
    static SLOTS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *SLOTS.get_or_init(pool_slots_here)
}

fn pool_slots_here() -> u32 {
    if let Some(n) = std::env::var("WHARF_HTTP_INSTANCES")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
    {
        return n.min(10_000);
    }
    match crate::sys::address_space_bits() {
        Some(bits) if bits < 64 => ((1u64 << bits) / 4 / POOL_SLOT_BYTES).clamp(8, 1000) as u32,
        _ => 1000,
    }
}

/// Native stack the guest may use before it traps (well under the host thread's).
const MAX_WASM_STACK: usize = 512 << 10;

/// What the engine must support.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineOptions {
    /// Count fuel (only when `--fuel` is used: it costs speed).
    pub fuel: bool,
    /// The pooling allocator (for serving `wasi:http`: an instance per request). Memory
    /// limits are the store limiter's job, not the pool's, so a request that exceeds them
    /// fails with wharf's own message rather than at load time.
    pub serving: bool,
}

/// Make an engine: epoch interruption on (timeouts and `wharf stop`), a wasm stack well
/// below the native one. Wasm threads are off because wharf builds wasmtime without its
/// `threads` feature: shared memories would bypass the store limiter.
pub fn engine(opts: EngineOptions) -> Result<Engine, WasmError> {
    engine_for(opts, None)
}

/// An engine like [`engine`]'s that compiles for `target` (a triple), not this host: its
/// code is for [`super::signed`], never run here.
pub fn engine_for(opts: EngineOptions, target: Option<&str>) -> Result<Engine, WasmError> {
    let mut config = Config::new();
    if let Some(t) = target {
        config
            .target(t)
            .map_err(|e| WasmError::Engine(format!("target {t}: {e:#}")))?;
    }
    config
        .epoch_interruption(true)
        .consume_fuel(opts.fuel)
        .max_wasm_stack(MAX_WASM_STACK)
        .wasm_component_model(true)
        // WASI 0.3: async functions, `stream`s and `future`s in the component model.
        .wasm_component_model_async(true)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true);
    if opts.serving {
        let n = http_pool_slots();
        let mut pooling = wasmtime::PoolingAllocationConfig::default();
        pooling
            .total_memories(n)
            .total_component_instances(n)
            .total_tables(n.saturating_mul(4))
            .total_core_instances(n.saturating_mul(8))
            .total_stacks(n);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    }
    Engine::new(&config).map_err(|e| WasmError::Engine(format!("{e:#}")))
}

/// Compiled code, ready to instantiate.
pub enum Compiled {
    Module(Module),
    Component(Component),
}

/// Compiled code read from wharf's cache before a container started, by cache key (the
/// entry's path under the cache directory): a runtime container's engine has no path to the
/// host's cache, so the runtime hands it the bytes (see `runtime::guest`).
pub type Preloaded = Vec<(String, Vec<u8>)>;

/// wharf's cache of compiled code.
pub struct Cache {
    dir: PathBuf,
    preloaded: Preloaded,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache {
            dir: dir.into(),
            preloaded: Vec::new(),
        }
    }

    /// The cache, with entries already read (and checked) by the caller.
    pub fn with_preloaded(mut self, preloaded: Preloaded) -> Self {
        self.preloaded = preloaded;
        self
    }

    /// An entry's key: its path under the cache directory. The first part names the
    /// engine: wasmtime's version, the target wharf was built for (code compiled by an
    /// x86_64 glibc build is never offered to a musl or aarch64 one sharing the root, nor
    /// the other way round), and the engine's compatibility hash (its settings).
    pub fn key(engine: &Engine, module: &WasmModule) -> String {
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = format!(
            "wasmtime-{}-{}-{:016x}",
            wasmtime_version(),
            target(),
            h.finish()
        );
        format!(
            "{engine_key}/{}.{}.cwasm",
            module.digest.digest(),
            module.kind.name()
        )
    }

    fn path(&self, engine: &Engine, module: &WasmModule) -> PathBuf {
        self.dir.join(Self::key(engine, module))
    }

    /// The bytes of the entry `key` if wharf stored it (and nobody changed it since).
    pub fn read_entry(dir: &Path, key: &str) -> Option<Vec<u8>> {
        // Keys are made by `key`: two plain components, never `..` or absolute.
        let mut parts = Path::new(key).components();
        let plain = |c: Option<std::path::Component<'_>>| {
            matches!(c, Some(std::path::Component::Normal(_)))
        };
        if !(plain(parts.next()) && plain(parts.next()) && parts.next().is_none()) {
            return None;
        }
        let path = dir.join(key);
        crate::sys::is_recorded(&path)
            .then(|| std::fs::read(&path).ok())
            .flatten()
    }

    /// Load from the cache or compile (within `limit`, else the default for the module's
    /// size: [`super::default_compile_timeout`]) and store.
    pub fn load(
        &self,
        engine: &Engine,
        module: &WasmModule,
        limit: Option<Duration>,
    ) -> Result<Compiled, WasmError> {
        let key = Self::key(engine, module);
        if let Some((_, bytes)) = self.preloaded.iter().find(|(k, _)| *k == key) {
            match deserialize_bytes(engine, module.kind, bytes) {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(key, error = %e, "preloaded compiled code unusable"),
            }
        }
        let path = self.path(engine, module);
        if self.is_ours(&path) {
            // Mapping the file can fail where the entry itself is fine (a cache on a noexec
            // mount; wine refuses to protect a file view): then it is read into memory.
            let mapped = deserialize(engine, module.kind, &path);
            let loaded = mapped.or_else(|mapping| {
                tracing::debug!(path = %path.display(), error = format!("{mapping:#}"), "cannot map cache entry: reading it");
                std::fs::read(&path)
                    .map_err(wasmtime::Error::from)
                    .and_then(|bytes| deserialize_bytes(engine, module.kind, &bytes))
            });
            match loaded {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = format!("{e:#}"), "discarding unusable cache entry");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let bytes = module
            .wasm_bytes()
            .map_err(|e| WasmError::Compile(e.to_string()))?;
        let timeout = limit.unwrap_or_else(|| super::default_compile_timeout(bytes.len() as u64));
        let compiled = compile(engine, &bytes, module.kind, timeout)?;
        if let Err(e) = self.store(&path, &compiled) {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled code");
        }
        Ok(compiled)
    }

    fn store(&self, path: &Path, compiled: &Compiled) -> Result<(), Box<dyn std::error::Error>> {
        let bytes = match compiled {
            Compiled::Module(m) => m.serialize()?,
            Compiled::Component(c) => c.serialize()?,
        };
        crate::sys::write_recorded(path, &bytes)?;
        Ok(())
    }

    /// Whether `path` is compiled code wharf stored (and nobody changed since).
    fn is_ours(&self, path: &Path) -> bool {
        crate::sys::is_recorded(path)
    }

    /// Whether compiled code for `module` is cached.
    pub fn contains(&self, engine: &Engine, module: &WasmModule) -> bool {
        self.is_ours(&self.path(engine, module))
    }
}

fn deserialize(engine: &Engine, kind: WasmKind, path: &Path) -> wasmtime::Result<Compiled> {
    // SAFETY: the file is in wharf's own cache directory, written only by `Cache::store`
    // from code this engine compiled (its name carries the engine's compatibility hash);
    // nothing from an image is ever deserialised. wasmtime checks the header and engine
    // compatibility before using it.
    Ok(match kind {
        WasmKind::Module => Compiled::Module(unsafe { Module::deserialize_file(engine, path)? }),
        WasmKind::Component => {
            Compiled::Component(unsafe { Component::deserialize_file(engine, path)? })
        }
    })
}

fn deserialize_bytes(engine: &Engine, kind: WasmKind, bytes: &[u8]) -> wasmtime::Result<Compiled> {
    // SAFETY: the bytes were read from wharf's own cache directory (an entry
    // `Cache::store` wrote, checked with `is_recorded` first), keyed by this
    // engine's compatibility hash; nothing from an image is ever deserialised. wasmtime
    // checks the header and engine compatibility before using them.
    Ok(match kind {
        WasmKind::Module => Compiled::Module(unsafe { Module::deserialize(engine, bytes)? }),
        WasmKind::Component => {
            Compiled::Component(unsafe { Component::deserialize(engine, bytes)? })
        }
    })
}

/// Compile on a helper thread so a compile bomb is cut off after `timeout`.
fn compile(
    engine: &Engine,
    bytes: &[u8],
    kind: WasmKind,
    timeout: Duration,
) -> Result<Compiled, WasmError> {
    let (tx, rx) = mpsc::channel();
    let engine2 = engine.clone();
    let bytes = bytes.to_vec();
    std::thread::Builder::new()
        .name("wasm-compile".into())
        .spawn(move || {
            let r = match kind {
                WasmKind::Module => Module::new(&engine2, &bytes).map(Compiled::Module),
                WasmKind::Component => Component::new(&engine2, &bytes).map(Compiled::Component),
            };
            let _ = tx.send(r);
        })
        .map_err(|e| WasmError::Engine(format!("starting the compiler thread: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(compile_error(format!("{e:#}"))),
        Err(_) => Err(WasmError::CompileTimeout(timeout)),
    }
}

/// A compile failure as the user should read it: wasmtime reports a proposal it was not
/// configured for ("`stream` requires the component model async feature") as a parse
/// error, but the binary is valid; the build lacks the feature.
fn compile_error(message: String) -> WasmError {
    match message.find(" requires the ") {
        Some(at) if message.ends_with("feature") || message.contains(" feature") => {
            let feature = message[at + " requires the ".len()..]
                .split(" (at offset")
                .next()
                .unwrap_or_default();
            WasmError::Unsupported(format!(
                "this guest is valid but needs the {feature}, which wharf's wasmtime {} does \
                 not enable (wharf runs {} components; wasmtime said: {message})",
                wasmtime_version(),
                super::wasi::SUPPORTED
            ))
        }
        _ => WasmError::Compile(message),
    }
}

/// The wasmtime version wharf is built with.
pub fn wasmtime_version() -> &'static str {
    "48.0.10"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(export: &str) -> WasmModule {
        let wasm = wat::parse_str(format!(r#"(module (func (export "{export}")))"#)).unwrap();
        WasmModule::from_bytes(wasm, None).unwrap()
    }

    fn exports(c: &Compiled) -> Vec<String> {
        match c {
            Compiled::Module(m) => m.exports().map(|e| e.name().to_string()).collect(),
            Compiled::Component(_) => unreachable!(),
        }
    }

    #[test]
    fn a_feature_wasmtime_lacks_is_not_called_invalid() {
        let e = compile_error(
            "failed to parse WebAssembly module: `stream` requires the component model async \
             feature (at offset 0x1e)"
                .into(),
        );
        assert!(matches!(e, WasmError::Unsupported(_)), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("is valid but needs the component model async feature")
                && !m.contains("invalid WebAssembly"),
            "{m}"
        );
        assert!(matches!(
            compile_error("unexpected end-of-file (at offset 0x8)".into()),
            WasmError::Compile(_)
        ));
        // Stackful async (`async` lifts without a callback) is not enabled in wasmtime 48:
        // a component using it is explained.
        let wat = r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func (export "f") async (canon lift (core func $i "f") async))
        )"#;
        let engine = engine(EngineOptions::default()).unwrap();
        let Err(e) = Component::new(&engine, wat::parse_str(wat).unwrap()) else {
            panic!("wasmtime 48 accepted a stackful async lift: this test needs another");
        };
        let e = compile_error(format!("{e:#}"));
        assert!(matches!(e, WasmError::Unsupported(_)), "{e}");
        assert!(e.to_string().contains("async stackful feature"), "{e}");
    }

    #[test]
    fn the_http_pool_fits_the_address_space() {
        let bits = crate::sys::address_space_bits();
        if cfg!(target_os = "linux") {
            assert!(bits.is_some_and(|b| (39..=57).contains(&b)), "{bits:?}");
        }
        if std::env::var_os("WHARF_HTTP_INSTANCES").is_none() {
            let n = http_pool_slots();
            assert!((8..=1000).contains(&n), "{n}");
            if bits.is_some_and(|b| b >= 47) {
                assert_eq!(n, 1000);
            }
        }
    }

    #[test]
    fn cache_keys_name_the_target_and_the_engine() {
        let plain = engine(EngineOptions::default()).unwrap();
        let key = Cache::key(&plain, &module("a"));
        let t = target();
        assert!(
            key.starts_with(&format!("wasmtime-{}-{t}-", wasmtime_version())),
            "{key}"
        );
        // This test binary's own target.
        assert!(t.starts_with(std::env::consts::ARCH), "{t}");
        assert_eq!(t.split('-').count(), 3, "arch-os-env: {t}");
        if cfg!(all(target_os = "linux", target_env = "musl")) {
            assert!(t.ends_with("-linux-musl"), "{t}");
        }
        // Another engine configuration (fuel) is another entry.
        let fuel = engine(EngineOptions {
            fuel: true,
            ..EngineOptions::default()
        })
        .unwrap();
        assert_ne!(Cache::key(&fuel, &module("a")), key);
    }

    /// A cache on a `noexec` mount cannot be mapped executable: the entry is read instead,
    /// not compiled again on every run.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_cache_on_a_noexec_mount_is_read_not_recompiled() {
        use std::os::unix::fs::MetadataExt;
        use std::process::Command;
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "noexec,size=16m", "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            mounted.success(),
            "this test needs root (as the native tests do)"
        );
        struct Unmount<'a>(&'a Path);
        impl Drop for Unmount<'_> {
            fn drop(&mut self) {
                let _ = Command::new("umount").arg(self.0).status();
            }
        }
        let _unmount = Unmount(dir.path());
        let cache = Cache::new(dir.path().join("cache"));
        let engine = engine(EngineOptions::default()).unwrap();
        let a = module("a");
        let t = Some(Duration::from_secs(60));
        assert_eq!(exports(&cache.load(&engine, &a, t).unwrap()), ["a"]);
        let path = cache.path(&engine, &a);
        let before = std::fs::metadata(&path).unwrap();
        // Mapping fails here (the first attempt proves it), reading works.
        assert!(deserialize(&engine, WasmKind::Module, &path).is_err());
        assert_eq!(exports(&cache.load(&engine, &a, t).unwrap()), ["a"]);
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (before.ino(), before.ctime_nsec()),
            (after.ino(), after.ctime_nsec()),
            "the entry was used, not replaced"
        );
    }

    #[test]
    fn a_tampered_cache_entry_is_never_run() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let engine = engine(EngineOptions::default()).unwrap();
        let (a, b) = (module("a"), module("b"));
        let t = Some(Duration::from_secs(60));
        assert_eq!(exports(&cache.load(&engine, &a, t).unwrap()), ["a"]);
        assert!(cache.contains(&engine, &a));
        // From the cache: the same code.
        assert_eq!(exports(&cache.load(&engine, &a, t).unwrap()), ["a"]);
        // Replace a's artifact with b's, a valid artifact for this engine: wharf must notice
        // the file is not the one it wrote, and compile a again rather than run b.
        cache.load(&engine, &b, t).unwrap();
        let (pa, pb) = (cache.path(&engine, &a), cache.path(&engine, &b));
        std::fs::copy(&pb, &pa).unwrap();
        assert!(
            !cache.contains(&engine, &a),
            "a replaced artifact is not taken"
        );
        assert_eq!(exports(&cache.load(&engine, &a, t).unwrap()), ["a"]);
        assert!(cache.contains(&engine, &a), "and is replaced by a's own");
        // Rewritten in place (same inode) with the original bytes: still not taken.
        let original = std::fs::read(&pa).unwrap();
        std::fs::write(&pa, &original).unwrap();
        assert!(!cache.contains(&engine, &a));
    }
}
