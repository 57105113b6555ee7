//! Benchmark for `wharf::plugin` (run by bench/plugin.sh): the cost of one call of a
//! trivial export through wharf's API against the same component called by plain wasmtime
//! embedding code (the same engine settings: pooling allocator, epoch interruption), an
//! instance per call in both; and the time to load a plugin from wharf's cache against
//! compiling it.
//!
//!   plugin-bench PLUGIN.wasm [CALLS]

use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wharf::paths::Roots;
use wharf::plugin::{Grants, Host, HostOptions};

wasmtime::component::bindgen!({
    path: "wasm-examples/plugins/wit",
    world: "text-plugin",
    exports: { default: async },
});

struct Plain {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Plain {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

fn per_call(calls: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed() / calls
}

fn main() {
    let mut args = std::env::args().skip(1);
    let wasm = args
        .next()
        .expect("usage: plugin-bench PLUGIN.wasm [CALLS]");
    let calls: u32 = args.next().map_or(20_000, |n| n.parse().expect("a number"));
    let root = tempfile::tempdir().expect("a temporary root");

    // wharf: the first load compiles (and caches); a second host loads from the cache.
    let t = Instant::now();
    let host = Host::open(
        &Roots::new(root.path()),
        HostOptions {
            pooling: true,
            fuel: false,
            ..Default::default()
        },
    )
    .expect("host");
    let plugin = host.load(&wasm, Grants::default()).expect("load");
    let compile = t.elapsed();
    let t = Instant::now();
    let host2 = Host::open(
        &Roots::new(root.path()),
        HostOptions {
            pooling: true,
            fuel: false,
            ..Default::default()
        },
    )
    .expect("host");
    let cached = host2.load(&wasm, Grants::default()).expect("load");
    let from_cache = t.elapsed();
    drop(cached);
    let fueled_host = Host::open(&Roots::new(root.path()), HostOptions::default()).expect("host");
    let fueled = fueled_host.load(&wasm, Grants::default()).expect("load");

    // Plain wasmtime, the same engine settings.
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
            wasmtime::PoolingAllocationConfig::default(),
        ));
    let engine = Engine::new(&config).expect("engine");
    let component = Component::from_file(&engine, &wasm).expect("compile");
    let mut linker = Linker::<Plain>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
    let pre = TextPluginPre::new(linker.instantiate_pre(&component).expect("pre")).expect("pre");

    let wharf_call = |p: &wharf::plugin::Plugin| {
        let out = p
            .call(async |store, pre| {
                let w = TextPluginPre::new(pre.clone())?
                    .instantiate_async(&mut *store)
                    .await?;
                w.call_process(&mut *store, "hello").await
            })
            .expect("call");
        assert_eq!(out.value.as_deref(), Ok("HELLO"));
    };
    let plain_call = || {
        let mut store = Store::new(
            &engine,
            Plain {
                ctx: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        store.set_epoch_deadline(u64::MAX / 2);
        // The same async bindings, on the same runtime wharf drives a call on.
        let out = wasmtime_wasi::runtime::in_tokio(async {
            let w = pre
                .instantiate_async(&mut store)
                .await
                .expect("instantiate");
            w.call_process(&mut store, "hello").await.expect("call")
        });
        assert_eq!(out.as_deref(), Ok("HELLO"));
    };
    // Warm up, then alternate batches so drift hits both alike.
    for _ in 0..1000 {
        wharf_call(&plugin);
        plain_call();
    }
    let (mut w, mut p, mut f) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let batches = 10;
    for _ in 0..batches {
        w += per_call(calls / batches, || wharf_call(&plugin));
        p += per_call(calls / batches, plain_call);
        f += per_call(calls / batches, || wharf_call(&fueled));
    }
    let (w, p, f) = (w / batches, p / batches, f / batches);
    println!("instantiate + call process(\"hello\"), an instance per call, {calls} calls each:");
    println!(
        "  plain wasmtime embedding          {:8.2} µs/call",
        p.as_secs_f64() * 1e6
    );
    println!(
        "  wharf::plugin                     {:8.2} µs/call   ({:.2}x plain)",
        w.as_secs_f64() * 1e6,
        w.as_secs_f64() / p.as_secs_f64()
    );
    println!(
        "  wharf::plugin, fuel counted       {:8.2} µs/call   ({:.2}x plain)",
        f.as_secs_f64() * 1e6,
        f.as_secs_f64() / p.as_secs_f64()
    );
    println!("load a plugin:");
    println!(
        "  compile and cache                 {:8.2} ms",
        compile.as_secs_f64() * 1e3
    );
    println!(
        "  from wharf's cache                {:8.2} ms   ({:.2}x compile)",
        from_cache.as_secs_f64() * 1e3,
        from_cache.as_secs_f64() / compile.as_secs_f64()
    );
}
