//! Running a command to completion: a WASI preview 1 module's `_start` (or a named export),
//! or a preview 2 component's `wasi:cli/run`.

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::WasmError;
use super::limits::{Limiter, RunLimits, classify, is_guest_error};
use crate::backend::Exit;

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
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s| &mut s.wasi)
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
    let instance = match linker.instantiate(&mut store, module) {
        Ok(i) => i,
        Err(e) if is_guest_error(&e) => return Ok(classify(&e, limits)),
        Err(e) => return Err(WasmError::Link(format!("{e:#}"))),
    };
    let name = export.unwrap_or("_start");
    let func = instance
        .get_typed_func::<(), ()>(&mut store, name)
        .map_err(|_| {
            WasmError::NoEntry(format!(
                "the module exports no function {name:?} taking no arguments"
            ))
        })?;
    Ok(match func.call(&mut store, ()) {
        Ok(()) => Exit::code(0),
        Err(e) => classify(&e, limits),
    })
}

struct P2State {
    ctx: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Run a component's `wasi:cli/run`.
pub fn run_component(
    engine: &Engine,
    component: &Component,
    wasi: &mut WasiCtxBuilder,
    limits: &RunLimits,
) -> Result<Exit, WasmError> {
    let mut linker = wasmtime::component::Linker::<P2State>::new(engine);
    // Includes `wasi:cli/exit#exit-with-code` (WASI 0.2.12): components that call it report
    // any code; `exit(err)` reports 1.
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| WasmError::Link(format!("{e:#}")))?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| WasmError::Link(format!("{e:#}")))?;
    let pre = CommandPre::new(pre).map_err(|e| {
        WasmError::NoEntry(format!("the component does not export wasi:cli/run: {e:#}"))
    })?;
    let mut store = Store::new(
        engine,
        P2State {
            ctx: wasi.build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(limits.memory),
        },
    );
    store.limiter(|s| &mut s.limiter);
    limits
        .apply_interruptible(&mut store)
        .map_err(|e| WasmError::Engine(format!("{e:#}")))?;
    let command = match pre.instantiate(&mut store) {
        Ok(c) => c,
        Err(e) if is_guest_error(&e) => return Ok(classify(&e, limits)),
        Err(e) => return Err(WasmError::Link(format!("{e:#}"))),
    };
    Ok(match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Exit::code(0),
        Ok(Err(())) => Exit::code(1),
        Err(e) => classify(&e, limits),
    })
}
