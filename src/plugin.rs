//! wasm plugins for applications: load a module or component from an OCI image (by tag,
//! pinned by digest, from a registry when it is missing) or a `.wasm` file, with exactly the
//! capabilities the host grants, and call it safely from any number of threads.
//!
//! The store, the registry code, the compile cache and the limits are wharf's own: a plugin
//! is compiled once per engine and cached under the root like any wasm image, and a trap or
//! a tripped limit comes back as a [`PluginError`] worded as `wharf run` words it, never as a
//! panic or an abort of the host.
//!
//! ```no_run
//! use wharf::paths::Roots;
//! use wharf::plugin::{Grants, Host};
//!
//! // The host's side of the plugin's world (the guest exports `process`).
//! // Async bindings: a call's deadline holds while the plugin waits in a host call too.
//! wasmtime::component::bindgen!({
//!     inline: "package demo:text; world text-plugin { export process: func(input: string) -> result<string, string>; }",
//!     exports: { default: async },
//! });
//!
//! let host = Host::open(&Roots::new("/var/lib/my-app/plugins"), Default::default())?;
//! let grants = Grants {
//!     timeout: Some(std::time::Duration::from_millis(500)),
//!     memory: Some(64 << 20),
//!     ..Grants::default()
//! };
//! let plugin = host.load("registry.example:5000/plugins/upper:1", grants)?;
//! let out = plugin.call(async |store, pre| {
//!     let world = TextPluginPre::new(pre.clone())?.instantiate_async(&mut *store).await?;
//!     world.call_process(&mut *store, "hello").await
//! })?;
//! assert_eq!(out.value, Ok("HELLO".to_string()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use wasmtime::component::{InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::backend::wasm::WasmError;
use crate::backend::wasm::engine::{self, Cache, Compiled, EngineOptions};
use crate::backend::wasm::limits::{
    EPOCH_TICK, Limiter, RunLimits, bounded, classify, is_guest_error, timed_out,
};
use crate::image::Store as ImageStore;
use crate::paths::Roots;
use crate::run::WasmModule;

/// Output a plugin may keep (captured stdout/stderr), per call.
const CAPTURE_LIMIT: usize = 1 << 20;

/// What can go wrong loading or calling a plugin. A guest's own failure
/// ([`PluginError::Guest`]) leaves the host and every other plugin as they were.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // The fields say what their messages say.
pub enum PluginError {
    /// The plugin could not be found, pulled, read or prepared.
    #[error("plugin {reference}: {message}")]
    Load { reference: String, message: String },
    /// `name:tag@digest` whose tag names another digest now.
    #[error("plugin {reference}: the tag moved: it names {current} now, the pin says {pinned}")]
    DigestMismatch {
        reference: String,
        pinned: String,
        current: String,
    },
    /// The code did not compile or link (invalid wasm, unresolvable imports).
    #[error("plugin {reference}: {source}")]
    Wasm {
        reference: String,
        #[source]
        source: WasmError,
    },
    /// The guest trapped or hit a limit: the message is `wharf run`'s for the same end, and
    /// `code` its exit code (134 trap, 137 timeout, 152 fuel, 153 memory).
    #[error("{message}")]
    Guest { code: u8, message: String },
    /// No such export.
    #[error("plugin {reference} exports no function {name:?}")]
    MissingExport { reference: String, name: String },
    /// A component called as a module, or the other way round.
    #[error("plugin {reference} is a {kind}, not a {wanted}")]
    WrongKind {
        reference: String,
        kind: &'static str,
        wanted: &'static str,
    },
    /// The call could not be made as asked (arguments, instantiation).
    #[error("calling plugin {reference}: {message}")]
    Call { reference: String, message: String },
}

/// How the host runs its plugins.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The pooling allocator: an instance per call is cheap (the default).
    pub pooling: bool,
    /// Count fuel (needed for [`Grants::fuel`]; it costs some speed).
    pub fuel: bool,
    /// The signature policy a plugin pulled from a registry (at `load`, and at `reload()`
    /// of a tag) must satisfy, and where signatures are kept (default: as `wharf pull`
    /// finds them, `ROOT/policy.json` first).
    pub trust: crate::trust::TrustOptions,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            pooling: true,
            fuel: true,
            trust: Default::default(),
        }
    }
}

/// Where a plugin's output goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Output {
    /// Discarded (the default).
    #[default]
    Null,
    /// The host's own stream.
    Inherit,
    /// Kept and returned with the call's result ([`Called`]).
    Capture,
}

/// A directory the plugin may use.
#[derive(Debug, Clone)]
pub struct Preopen {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the plugin sees it.
    pub guest: String,
    /// Read-only (else read-write).
    pub read_only: bool,
}

/// What a plugin is allowed: nothing unless granted. Names and meanings as `wharf run`'s
/// (`-v`, `-e`, `--memory`, `--fuel`, `--timeout`).
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Preopened directories.
    pub dirs: Vec<Preopen>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Its arguments (`argv`).
    pub args: Vec<String>,
    /// Where its stdout goes.
    pub stdout: Output,
    /// Where its stderr goes.
    pub stderr: Output,
    /// Addresses the plugin may connect to; empty: no sockets at all.
    pub network: Vec<ipnet::IpNet>,
    /// Name lookups (through the host's resolver, whatever the name: wasmtime does not
    /// pass lookups through the address check, so this is a grant of its own).
    pub dns: bool,
    /// Bytes of linear memory and tables a call may use.
    pub memory: Option<u64>,
    /// Fuel (about instructions) a call may burn; the host must count fuel.
    pub fuel: Option<u64>,
    /// Longest a call may run: computing (an epoch deadline, 10 ms granularity) or waiting
    /// in a host call (a sleep, a socket).
    pub timeout: Option<Duration>,
}

/// A call's state: WASI as granted, the memory limiter (the `T` of the plugin's
/// `InstancePre<State>`, linked with WASI).
pub struct State {
    ctx: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// A call's result, with what the plugin wrote when its output is captured.
#[derive(Debug)]
pub struct Called<R> {
    /// What the host's closure returned.
    pub value: R,
    /// Captured stdout ([`Output::Capture`]), else empty.
    pub stdout: Vec<u8>,
    /// Captured stderr ([`Output::Capture`]), else empty.
    pub stderr: Vec<u8>,
}

struct Shared {
    roots: Roots,
    engine: Engine,
    fuel: bool,
    cache_dir: PathBuf,
    stop_ticker: Arc<AtomicBool>,
    trust: crate::trust::TrustOptions,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// A plugin host: one engine, wharf's store and cache under `roots`.
#[derive(Clone)]
pub struct Host {
    shared: Arc<Shared>,
}

impl Host {
    /// Open the store and cache under `roots` (made if missing) and start the engine.
    pub fn open(roots: &Roots, opts: HostOptions) -> Result<Host, PluginError> {
        let engine = engine::engine(EngineOptions {
            fuel: opts.fuel,
            serving: opts.pooling,
        })
        .map_err(|source| PluginError::Wasm {
            reference: String::new(),
            source,
        })?;
        // Timeouts are epoch deadlines: one ticker per host, stopped with it.
        let stop = Arc::new(AtomicBool::new(false));
        let (e, s) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("wharf-plugin-epoch".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    e.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Load {
                reference: String::new(),
                message: format!("starting the epoch ticker: {e}"),
            })?;
        Ok(Host {
            shared: Arc::new(Shared {
                roots: roots.clone(),
                engine,
                fuel: opts.fuel,
                cache_dir: roots.wasm_cache(),
                stop_ticker: stop,
                trust: opts.trust.clone(),
            }),
        })
    }

    /// The engine (for hosts that build their own linkers or types).
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// Load plugin `reference`: `registry/name:tag`, `name@sha256:…` (pinned; with a tag too,
    /// the tag must still name that digest), a local tag, or a `.wasm`/`.wat` file. A
    /// reference missing from the store is pulled from its registry.
    pub fn load(&self, reference: &str, grants: Grants) -> Result<Plugin, PluginError> {
        if grants.fuel.is_some() && !self.shared.fuel {
            return Err(PluginError::Load {
                reference: reference.into(),
                message: "fuel was granted but the host was opened without fuel counting".into(),
            });
        }
        let version = self.resolve(reference, false)?;
        Ok(Plugin {
            host: self.clone(),
            reference: reference.to_string(),
            grants,
            current: RwLock::new(Arc::new(version)),
        })
    }

    fn resolve(&self, reference: &str, refresh: bool) -> Result<Version, PluginError> {
        let err = |message: String| PluginError::Load {
            reference: reference.into(),
            message,
        };
        let (module, digest) =
            if crate::run::names_a_file(reference) || std::path::Path::new(reference).is_file() {
                let bytes = std::fs::read(reference).map_err(|e| err(e.to_string()))?;
                let m = WasmModule::from_bytes(bytes, None).map_err(|e| err(e.to_string()))?;
                let d = m.digest.to_string();
                (m, d)
            } else {
                let store = ImageStore::open(&self.shared.roots).map_err(|e| err(e.to_string()))?;
                let parsed =
                    crate::image::Reference::parse(reference).map_err(|e| err(e.to_string()))?;
                // name:tag@digest: the tag must still name the pinned digest.
                if let Some(pinned) = parsed.digest() {
                    let tag_only = reference.split('@').next().unwrap_or(reference);
                    if tag_only != reference
                        && tag_only
                            .rsplit('/')
                            .next()
                            .is_some_and(|last| last.contains(':'))
                        && let Ok(current) = store.resolve(tag_only)
                        && current.digest() != pinned
                    {
                        return Err(PluginError::DigestMismatch {
                            reference: reference.into(),
                            pinned: pinned.to_string(),
                            current: current.digest().to_string(),
                        });
                    }
                }
                let found = store.resolve(reference);
                let missing = matches!(found, Err(crate::image::StoreError::NotFound(_)));
                // A tag is looked up again at its registry on reload; a pin never changes.
                let pull = missing
                    || (refresh && parsed.digest().is_none() && parsed.registry() != "docker.io");
                let record = if pull {
                    crate::image::registry::pull(
                        &store,
                        &parsed,
                        None,
                        false,
                        &crate::image::registry::RegistryOptions {
                            quiet: true,
                            trust: self.shared.trust.clone(),
                            ..Default::default()
                        },
                    )
                    .map_err(|e| err(format!("pulling: {e}")))?;
                    store.resolve(reference)
                } else {
                    found
                }
                .map_err(|e| err(e.to_string()))?;
                let digest = record.digest().to_string();
                let prepared = crate::run::prepare(
                    &store,
                    &digest,
                    &crate::run::options::RunOptions::default(),
                    None,
                )
                .map_err(|e| err(e.to_string()))?;
                let module = prepared
                    .wasm
                    .ok_or_else(|| err("it is a native Linux image, not wasm".into()))?;
                (module, digest)
            };
        let compiled = Cache::new(&self.shared.cache_dir)
            .load(&self.shared.engine, &module, None)
            .map_err(|source| PluginError::Wasm {
                reference: reference.into(),
                source,
            })?;
        let link = |e: wasmtime::Error| PluginError::Wasm {
            reference: reference.into(),
            source: WasmError::Link(format!("{e:#}")),
        };
        let code = match compiled {
            Compiled::Component(c) => {
                let mut linker = Linker::<State>::new(&self.shared.engine);
                wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
                // WASI 0.3 too: a plugin may import its async interfaces and export async
                // functions (called on the store's event loop: `Store::run_concurrent`).
                wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(link)?;
                // Imports resolved once: a call only instantiates.
                let pre = linker.instantiate_pre(&c).map_err(|e| PluginError::Wasm {
                    reference: reference.into(),
                    source: crate::backend::wasm::link_error(&c, &e),
                })?;
                Code::Component(pre)
            }
            Compiled::Module(m) => {
                let mut linker = wasmtime::Linker::<P1State>::new(&self.shared.engine);
                wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s| &mut s.wasi)
                    .map_err(link)?;
                Code::Module(m, linker)
            }
        };
        let wasi3 = matches!(&code, Code::Component(pre)
            if crate::backend::wasm::wasi_version(pre.component())
                == crate::image::package::WasiVersion::P3);
        Ok(Version {
            digest,
            code,
            wasi3,
        })
    }
}

struct P1State {
    wasi: wasmtime_wasi::p1::WasiP1Ctx,
    limiter: Limiter,
}

enum Code {
    Component(InstancePre<State>),
    Module(wasmtime::Module, wasmtime::Linker<P1State>),
}

/// One version of a plugin's code.
struct Version {
    digest: String,
    code: Code,
    /// A WASI 0.3 component: its exports are called on the store's event loop (decided
    /// once, at load, not on every call).
    wasi3: bool,
}

/// A loaded plugin; calls may come from any number of threads at once, each in an
/// instance of its own.
pub struct Plugin {
    host: Host,
    reference: String,
    grants: Grants,
    current: RwLock<Arc<Version>>,
}

struct Pipes {
    stdout: Option<MemoryOutputPipe>,
    stderr: Option<MemoryOutputPipe>,
}

impl Plugin {
    /// The digest of the code now loaded (the image's, or the file's).
    pub fn digest(&self) -> String {
        self.version().digest.clone()
    }

    /// The reference it was loaded by.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Whether it is a component (else a core module).
    pub fn is_component(&self) -> bool {
        matches!(self.version().code, Code::Component(..))
    }

    fn version(&self) -> Arc<Version> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Look the reference up again (pulling a registry tag anew) and switch to its code if
    /// it changed: true then. Calls under way finish on the code they started with.
    pub fn reload(&self) -> Result<bool, PluginError> {
        if self.reference.contains("@sha256:") {
            // Pinned: it never changes.
            return Ok(false);
        }
        let fresh = self.host.resolve(&self.reference, true)?;
        let mut cur = self.current.write().unwrap_or_else(|p| p.into_inner());
        if cur.digest == fresh.digest {
            return Ok(false);
        }
        *cur = Arc::new(fresh);
        Ok(true)
    }

    /// Apply the limits to a fresh store (no fuel granted on a fuel-counting host:
    /// unlimited).
    fn apply<T>(&self, store: &mut Store<T>) -> Result<(), PluginError> {
        self.limits()
            .apply(store)
            .and_then(|()| {
                if self.host.shared.fuel && self.grants.fuel.is_none() {
                    store.set_fuel(u64::MAX)
                } else {
                    Ok(())
                }
            })
            .map_err(|e| self.guest_error(&e))
    }

    fn limits(&self) -> RunLimits {
        RunLimits {
            memory: self.grants.memory,
            timeout: self.grants.timeout,
            fuel: self.grants.fuel,
        }
    }

    fn wasi(&self) -> Result<(WasiCtxBuilder, Pipes), PluginError> {
        let g = &self.grants;
        let mut b = WasiCtxBuilder::new();
        b.args(&g.args);
        for (k, v) in &g.env {
            b.env(k, v);
        }
        let mut pipes = Pipes {
            stdout: None,
            stderr: None,
        };
        match g.stdout {
            Output::Null => {}
            Output::Inherit => {
                b.inherit_stdout();
            }
            Output::Capture => {
                let p = MemoryOutputPipe::new(CAPTURE_LIMIT);
                b.stdout(p.clone());
                pipes.stdout = Some(p);
            }
        }
        match g.stderr {
            Output::Null => {}
            Output::Inherit => {
                b.inherit_stderr();
            }
            Output::Capture => {
                let p = MemoryOutputPipe::new(CAPTURE_LIMIT);
                b.stderr(p.clone());
                pipes.stderr = Some(p);
            }
        }
        for d in &g.dirs {
            let perms = if d.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&d.host, &d.guest, perms)
                .map_err(|e| PluginError::Load {
                    reference: self.reference.clone(),
                    message: format!("cannot preopen {}: {e:#}", d.host.display()),
                })?;
        }
        if g.network.is_empty() {
            b.allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .socket_addr_check(|_, _| Box::pin(async { false }));
        } else {
            let allowed = g.network.clone();
            b.allow_tcp(true)
                .allow_udp(true)
                .allow_ip_name_lookup(g.dns)
                .socket_addr_check(move |addr: SocketAddr, _| {
                    let ip: IpAddr = addr.ip();
                    let ok = allowed.iter().any(|n| n.contains(&ip));
                    Box::pin(async move { ok })
                });
        }
        Ok((b, pipes))
    }

    /// Run a call to its end or to the deadline (see [`bounded`]).
    fn bounded<F: std::future::Future>(&self, call: F) -> Result<F::Output, PluginError> {
        bounded(self.grants.timeout, call).ok_or_else(|| {
            let exit = timed_out(&self.limits());
            PluginError::Guest {
                code: exit.code,
                message: exit.message.unwrap_or_default(),
            }
        })
    }

    fn guest_error(&self, e: &wasmtime::Error) -> PluginError {
        if is_guest_error(e) {
            let exit = classify(e, &self.limits());
            PluginError::Guest {
                code: exit.code,
                message: exit
                    .message
                    .unwrap_or_else(|| format!("exit code {}", exit.code)),
            }
        } else {
            PluginError::Call {
                reference: self.reference.clone(),
                message: format!("{e:#}"),
            }
        }
    }

    /// Call a component in a fresh instance: `f` instantiates the host's world (its
    /// `bindgen!` type with async exports, e.g.
    /// `TextPluginPre::new(pre.clone())?.instantiate_async(store).await`) from the plugin's
    /// pre-linked component (WASI as granted; `pre.component()` is the component) and calls
    /// it. A trap or a limit comes back as [`PluginError::Guest`]; the deadline
    /// ([`Grants::timeout`]) holds wherever the plugin is, in its code or waiting in a host
    /// call. Callable from any thread, inside a tokio runtime's blocking context or outside
    /// one (then on wasmtime-wasi's shared runtime).
    pub fn call<R>(
        &self,
        f: impl AsyncFnOnce(&mut Store<State>, &InstancePre<State>) -> wasmtime::Result<R>,
    ) -> Result<Called<R>, PluginError> {
        let version = self.version();
        let Code::Component(pre) = &version.code else {
            return Err(PluginError::WrongKind {
                reference: self.reference.clone(),
                kind: "core module",
                wanted: "component",
            });
        };
        let (mut wasi, pipes) = self.wasi()?;
        let mut store = Store::new(
            &self.host.shared.engine,
            State {
                ctx: wasi.build(),
                table: ResourceTable::new(),
                limiter: Limiter::new(self.grants.memory),
            },
        );
        store.limiter(|s| &mut s.limiter);
        self.apply(&mut store)?;
        let value = self
            .bounded(f(&mut store, pre))?
            .map_err(|e| self.guest_error(&e))?;
        Ok(Called {
            value,
            stdout: pipes
                .stdout
                .map(|p| p.contents().to_vec())
                .unwrap_or_default(),
            stderr: pipes
                .stderr
                .map(|p| p.contents().to_vec())
                .unwrap_or_default(),
        })
    }

    /// Call export `name` with `args`, in a fresh instance: a component's function (its
    /// values as `wasmtime::component::Val`), or a core module's (as `wasmtime::Val`).
    pub fn call_export(&self, name: &str, args: &[Value]) -> Result<Vec<Value>, PluginError> {
        let version = self.version();
        let missing = || PluginError::MissingExport {
            reference: self.reference.clone(),
            name: name.to_string(),
        };
        match &version.code {
            Code::Component(..) => {
                let concurrent = version.wasi3;
                let args: Vec<wasmtime::component::Val> = args
                    .iter()
                    .map(|a| match a {
                        Value::Component(v) => Ok(v.clone()),
                        Value::Core(_) => Err(PluginError::WrongKind {
                            reference: self.reference.clone(),
                            kind: "component",
                            wanted: "core module (core values given)",
                        }),
                    })
                    .collect::<Result<_, _>>()?;
                let out = self.call(async |store, pre| {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let Some(func) = instance.get_func(&mut *store, name) else {
                        return Ok(None);
                    };
                    let ty = func.ty(&*store);
                    let mut results =
                        vec![wasmtime::component::Val::Bool(false); ty.results().len()];
                    if ty.async_() || concurrent {
                        // An async export (WASI 0.3), or a component using 0.3's async
                        // imports: driven by the store's event loop.
                        store
                            .run_concurrent(async |a| {
                                func.call_concurrent(a, &args, &mut results).await
                            })
                            .await??;
                    } else {
                        func.call_async(&mut *store, &args, &mut results).await?;
                    }
                    Ok(Some(results))
                })?;
                Ok(out
                    .value
                    .ok_or_else(missing)?
                    .into_iter()
                    .map(Value::Component)
                    .collect())
            }
            Code::Module(module, linker) => {
                let (mut wasi, _pipes) = self.wasi()?;
                let mut store = Store::new(
                    &self.host.shared.engine,
                    P1State {
                        wasi: wasi.build_p1(),
                        limiter: Limiter::new(self.grants.memory),
                    },
                );
                store.limiter(|s| &mut s.limiter);
                self.apply(&mut store)?;
                let args: Vec<wasmtime::Val> = args
                    .iter()
                    .map(|a| match a {
                        Value::Core(v) => Ok(*v),
                        Value::Component(_) => Err(PluginError::WrongKind {
                            reference: self.reference.clone(),
                            kind: "core module",
                            wanted: "component (component values given)",
                        }),
                    })
                    .collect::<Result<_, _>>()?;
                let results = self.bounded(async {
                    let instance = linker.instantiate_async(&mut store, module).await?;
                    let Some(func) = instance.get_func(&mut store, name) else {
                        return Ok(None);
                    };
                    let mut results = vec![wasmtime::Val::I32(0); func.ty(&store).results().len()];
                    func.call_async(&mut store, &args, &mut results).await?;
                    Ok(Some(results))
                })?;
                let results = results
                    .map_err(|e| self.guest_error(&e))?
                    .ok_or_else(missing)?;
                Ok(results.into_iter().map(Value::Core).collect())
            }
        }
    }
}

impl Plugin {
    /// Call export `name` with arguments written as text (`wharf run --invoke`): numbers,
    /// booleans, chars and quoted strings, typed by the export's parameters. The results
    /// come back as text (strings quoted, `ok(…)`/`err(…)`, `some(…)`/`none`, lists).
    pub fn invoke(&self, name: &str, args: &[String]) -> Result<Vec<String>, PluginError> {
        let version = self.version();
        let bad = |message: String| PluginError::Call {
            reference: self.reference.clone(),
            message,
        };
        let missing = || PluginError::MissingExport {
            reference: self.reference.clone(),
            name: name.to_string(),
        };
        let values: Vec<Value> = match &version.code {
            Code::Module(module, _) => {
                let Some(wasmtime::ExternType::Func(ty)) = module.get_export(name) else {
                    return Err(missing());
                };
                let params: Vec<wasmtime::ValType> = ty.params().collect();
                arity(name, params.len(), args.len()).map_err(&bad)?;
                params
                    .iter()
                    .zip(args)
                    .map(|(t, a)| core_value(t, a).map(Value::Core).map_err(&bad))
                    .collect::<Result<_, _>>()?
            }
            Code::Component(pre) => {
                let ty = pre.component().component_type();
                let Some(wasmtime::component::types::ComponentItem::ComponentFunc(f)) =
                    ty.get_export(&self.host.shared.engine, name).map(|e| e.ty)
                else {
                    return Err(missing());
                };
                let params: Vec<wasmtime::component::Type> = f.params().map(|(_, t)| t).collect();
                arity(name, params.len(), args.len()).map_err(&bad)?;
                params
                    .iter()
                    .zip(args)
                    .map(|(t, a)| component_value(t, a).map(Value::Component).map_err(&bad))
                    .collect::<Result<_, _>>()?
            }
        };
        drop(version);
        Ok(self
            .call_export(name, &values)?
            .iter()
            .map(|v| match v {
                Value::Core(c) => show_core(c),
                Value::Component(c) => show_component(c),
            })
            .collect())
    }
}

fn arity(name: &str, wanted: usize, given: usize) -> Result<(), String> {
    if wanted == given {
        Ok(())
    } else {
        Err(format!("{name} takes {wanted} arguments, {given} given"))
    }
}

fn unquote(a: &str) -> Option<String> {
    let inner = a.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn core_value(t: &wasmtime::ValType, a: &str) -> Result<wasmtime::Val, String> {
    let bad = || format!("{a:?} is not a {t}");
    Ok(match t {
        wasmtime::ValType::I32 => wasmtime::Val::I32(
            a.parse::<i32>()
                .or_else(|_| a.parse::<u32>().map(|u| u as i32))
                .map_err(|_| bad())?,
        ),
        wasmtime::ValType::I64 => wasmtime::Val::I64(
            a.parse::<i64>()
                .or_else(|_| a.parse::<u64>().map(|u| u as i64))
                .map_err(|_| bad())?,
        ),
        wasmtime::ValType::F32 => {
            wasmtime::Val::F32(a.parse::<f32>().map_err(|_| bad())?.to_bits())
        }
        wasmtime::ValType::F64 => {
            wasmtime::Val::F64(a.parse::<f64>().map_err(|_| bad())?.to_bits())
        }
        other => return Err(format!("--invoke cannot pass a {other} argument")),
    })
}

fn component_value(
    t: &wasmtime::component::Type,
    a: &str,
) -> Result<wasmtime::component::Val, String> {
    use wasmtime::component::{Type, Val};
    let bad = || format!("{a:?} is not a {t:?}");
    macro_rules! num {
        ($v:ident, $ty:ty) => {
            Val::$v(a.parse::<$ty>().map_err(|_| bad())?)
        };
    }
    Ok(match t {
        Type::Bool => Val::Bool(a.parse().map_err(|_| bad())?),
        Type::S8 => num!(S8, i8),
        Type::U8 => num!(U8, u8),
        Type::S16 => num!(S16, i16),
        Type::U16 => num!(U16, u16),
        Type::S32 => num!(S32, i32),
        Type::U32 => num!(U32, u32),
        Type::S64 => num!(S64, i64),
        Type::U64 => num!(U64, u64),
        Type::Float32 => num!(Float32, f32),
        Type::Float64 => num!(Float64, f64),
        Type::Char => {
            let s = a
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .ok_or_else(bad)?;
            let mut cs = s.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(bad()),
            }
        }
        Type::String => Val::String(unquote(a).ok_or_else(bad)?),
        other => {
            return Err(format!(
                "--invoke cannot pass a {other:?} argument (only numbers, bools, chars and strings)"
            ));
        }
    })
}

fn show_core(v: &wasmtime::Val) -> String {
    match v {
        wasmtime::Val::I32(i) => i.to_string(),
        wasmtime::Val::I64(i) => i.to_string(),
        wasmtime::Val::F32(f) => f32::from_bits(*f).to_string(),
        wasmtime::Val::F64(f) => f64::from_bits(*f).to_string(),
        other => format!("{other:?}"),
    }
}

fn show_component(v: &wasmtime::component::Val) -> String {
    use wasmtime::component::Val;
    let list = |items: &[Val]| {
        items
            .iter()
            .map(show_component)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match v {
        Val::Bool(b) => b.to_string(),
        Val::S8(n) => n.to_string(),
        Val::U8(n) => n.to_string(),
        Val::S16(n) => n.to_string(),
        Val::U16(n) => n.to_string(),
        Val::S32(n) => n.to_string(),
        Val::U32(n) => n.to_string(),
        Val::S64(n) => n.to_string(),
        Val::U64(n) => n.to_string(),
        Val::Float32(f) => f.to_string(),
        Val::Float64(f) => f.to_string(),
        Val::Char(c) => format!("{c:?}"),
        Val::String(s) => format!("{s:?}"),
        Val::List(items) => format!("[{}]", list(items)),
        Val::Tuple(items) => format!("({})", list(items)),
        Val::Option(None) => "none".into(),
        Val::Option(Some(v)) => format!("some({})", show_component(v)),
        Val::Result(Ok(v)) => match v {
            Some(v) => format!("ok({})", show_component(v)),
            None => "ok".into(),
        },
        Val::Result(Err(v)) => match v {
            Some(v) => format!("err({})", show_component(v)),
            None => "err".into(),
        },
        Val::Enum(e) => e.clone(),
        Val::Record(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", show_component(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Val::Variant(name, v) => match v {
            Some(v) => format!("{name}({})", show_component(v)),
            None => name.clone(),
        },
        Val::Flags(f) => format!("{{{}}}", f.join(", ")),
        other => format!("{other:?}"),
    }
}

/// Split `name(a, b)` (or `name a b`) into the export and its arguments; commas inside
/// quotes stay.
pub fn parse_invocation(text: &str, rest: &[String]) -> Result<(String, Vec<String>), String> {
    let text = text.trim();
    let Some(open) = text.find('(') else {
        return Ok((text.to_string(), rest.to_vec()));
    };
    let inner = text[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| format!("--invoke {text:?}: expected name(arg, ...)"))?;
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in inner.chars() {
        match quote {
            Some(q) => {
                cur.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c == ',' => args.push(std::mem::take(&mut cur).trim().to_string()),
            None => cur.push(c),
        }
    }
    if !cur.trim().is_empty() || !args.is_empty() {
        args.push(cur.trim().to_string());
    }
    Ok((text[..open].trim().to_string(), args))
}

/// A value passed to or returned by [`Plugin::call_export`].
#[derive(Debug, Clone)]
pub enum Value {
    /// A core module's value.
    Core(wasmtime::Val),
    /// A component's value.
    Component(wasmtime::component::Val),
}
