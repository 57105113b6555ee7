//! Running a command to completion: a WASI preview 1 module's `_start` (or a named export),
//! or a component's `wasi:cli/run`: WASI 0.3's async `run` when the component exports it
//! (driven on the store's concurrent event loop), else WASI 0.2's.
//!
//! The guest runs on wasmtime's async API, on a runtime of its own, under its deadline: a
//! guest computing is stopped at its next epoch check, and one waiting in a host call
//! (`poll_oneoff`, a read from a stdin that never closes, a socket) is stopped there, its
//! call dropped, which no epoch check could do.

use std::future::Future;

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView, p2, p3};

use super::WasmError;
use super::limits::{Limiter, RunLimits, bounded, classify, is_guest_error, timed_out};
use crate::backend::Exit;
use crate::image::package::WasiVersion;

/// Run `guest` to its end, or to the deadline of `limits` wherever it waits.
fn run_bounded<F>(limits: &RunLimits, guest: F) -> Result<Exit, WasmError>
where
    F: Future<Output = Result<Exit, WasmError>>,
{
    bounded(limits.timeout, guest).unwrap_or_else(|| Ok(timed_out(limits)))
}

struct P1State {
    wasi: WasiP1Ctx,
    limiter: Limiter,
}

/// Run a core module.
pub fn run_module(
    engine: &Engine,
    module: &Module,
    wasi: &mut WasiCtxBuilder,
    limits: &RunLimits,
    export: Option<&str>,
) -> Result<Exit, WasmError> {
    let mut linker: Linker<P1State> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s| &mut s.wasi)
        .map_err(|e| WasmError::Link(format!("{e:#}")))?;
    let mut store = Store::new(
        engine,
        P1State {
            wasi: wasi.build_p1(),
            limiter: Limiter::new(limits.memory),
        },
    );
    store.limiter(|s| &mut s.limiter);
    limits
        .apply_interruptible(&mut store)
        .map_err(|e| WasmError::Engine(format!("{e:#}")))?;
    let name = export.unwrap_or("_start");
    run_bounded(limits, async {
        let instance = match linker.instantiate_async(&mut store, module).await {
            Ok(i) => i,
            Err(e) if is_guest_error(&e) => return Ok(classify(&e, limits)),
            Err(e) => return Err(WasmError::Link(format!("{e:#}"))),
        };
        let func = instance
            .get_typed_func::<(), ()>(&mut store, name)
            .map_err(|_| {
                WasmError::NoEntry(format!(
                    "the module exports no function {name:?} taking no arguments"
                ))
            })?;
        Ok(match func.call_async(&mut store, ()).await {
            Ok(()) => Exit::code(0),
            Err(e) => classify(&e, limits),
        })
    })
}

struct ComponentState {
    ctx: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Run a component's `wasi:cli/run`. Both WASI 0.2 and 0.3 are linked: a 0.3 command made
/// by today's toolchains often imports 0.2 interfaces too (Rust's std for its stdio).
pub fn run_component(
    engine: &Engine,
    component: &Component,
    wasi: &mut WasiCtxBuilder,
    limits: &RunLimits,
) -> Result<Exit, WasmError> {
    let mut linker = wasmtime::component::Linker::<ComponentState>::new(engine);
    // Includes `wasi:cli/exit#exit-with-code` (WASI 0.2.12): components that call it report
    // any code; `exit(err)` reports 1.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| WasmError::Link(format!("{e:#}")))?;
    wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(|e| WasmError::Link(format!("{e:#}")))?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| super::wasi::link_error(component, &e))?;
    let version = super::wasi::version_of(component);
    if version != WasiVersion::P3 {
        // Checked before instantiating: a component without `run` is told apart from one
        // whose start traps.
        CommandPre::new(pre.clone()).map_err(|e| {
            WasmError::NoEntry(format!("the component does not export wasi:cli/run: {e:#}"))
        })?;
    }
    let mut store = Store::new(
        engine,
        ComponentState {
            ctx: wasi.build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(limits.memory),
        },
    );
    store.limiter(|s| &mut s.limiter);
    limits
        .apply_interruptible(&mut store)
        .map_err(|e| WasmError::Engine(format!("{e:#}")))?;
    run_bounded(limits, async {
        let instance = match pre.instantiate_async(&mut store).await {
            Ok(i) => i,
            Err(e) if is_guest_error(&e) => return Ok(classify(&e, limits)),
            Err(e) => return Err(WasmError::Link(format!("{e:#}"))),
        };
        let ran = if version == WasiVersion::P3 {
            let command = p3::bindings::Command::new(&mut store, &instance).map_err(|e| {
                WasmError::NoEntry(format!(
                    "the component does not export wasi:cli/run@0.3: {e:#}"
                ))
            })?;
            store
                .run_concurrent(async |store| command.wasi_cli_run().call_run(store).await)
                .await
                .and_then(|r| r)
        } else {
            let command = p2::bindings::Command::new(&mut store, &instance).map_err(|e| {
                WasmError::NoEntry(format!("the component does not export wasi:cli/run: {e:#}"))
            })?;
            command.wasi_cli_run().call_run(&mut store).await
        };
        Ok(match ran {
            Ok(Ok(())) => Exit::code(0),
            Ok(Err(())) => Exit::code(1),
            Err(e) => classify(&e, limits),
        })
    })
}
