//! An example plugin host built on `wharf::plugin`: a small text pipeline whose plugins come
//! from OCI images (a registry, the local store) or `.wasm` files, each granted only what
//! the command line says, called from several threads at once.
//!
//! The plugins implement the WIT world in `wasm-examples/plugins/wit/text.wit`
//! (`process: func(input: string) -> result<string, string>`); `wasm-examples/plugins/`
//! holds three: `upper`, `wordcount`, and `hostile` (loops, allocates, reads files on
//! request).
//!
//! ```text
//! plugin-host --root DIR [--timeout 500ms] [--memory 32m] [--threads 8]
//!             [--grant HOST:GUEST[:ro]] PLUGIN... -- INPUT...
//! ```
//!
//! Every input goes to every plugin from `--threads` threads at once; each call prints one
//! JSON line: `{"plugin", "digest", "input", "thread", "ok"|"error", "ms"}`.

use std::time::{Duration, Instant};

use clap::Parser;
use wharf::paths::Roots;
use wharf::plugin::{Grants, Host, Plugin, Preopen};

wasmtime::component::bindgen!({
    path: "wasm-examples/plugins/wit",
    world: "text-plugin",
    // Async exports: a call's deadline then holds while the plugin waits in a host call.
    exports: { default: async },
});

#[derive(Parser)]
struct Args {
    /// The store, cache and pulled plugins (a wharf root).
    #[arg(long)]
    root: std::path::PathBuf,
    /// Longest a call may run.
    #[arg(long, value_parser = wharf::run::options::parse_duration, default_value = "1s")]
    timeout: Duration,
    /// Memory a call may use.
    #[arg(long, value_parser = wharf::run::options::parse_size, default_value = "64m")]
    memory: u64,
    /// Threads calling each plugin at once.
    #[arg(long, default_value = "8")]
    threads: usize,
    /// A directory the plugins may use: HOST:GUEST[:ro].
    #[arg(long)]
    grant: Vec<String>,
    /// Plugins: image references or .wasm files.
    #[arg(required = true)]
    plugins: Vec<String>,
    /// Inputs, after `--`.
    #[arg(last = true)]
    inputs: Vec<String>,
}

/// Call `plugin`'s `process` with `input`.
pub fn process(plugin: &Plugin, input: &str) -> Result<String, String> {
    match plugin.call(async |store, pre| {
        let world = TextPluginPre::new(pre.clone())?
            .instantiate_async(&mut *store)
            .await?;
        world.call_process(&mut *store, input).await
    }) {
        Ok(called) => called.value.map_err(|e| format!("the plugin said: {e}")),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let host = match Host::open(&Roots::new(&args.root), Default::default()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("plugin-host: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut dirs = Vec::new();
    for g in &args.grant {
        // HOST may hold a drive letter's colon: the guest path is what follows the last ":/".
        let Some(i) = g.rfind(":/") else {
            eprintln!("plugin-host: --grant HOST:GUEST[:ro], not {g:?}");
            return std::process::ExitCode::FAILURE;
        };
        let (host, guest) = (&g[..i], &g[i + 1..]);
        let (guest, read_only) = match guest.strip_suffix(":ro") {
            Some(gu) => (gu, true),
            None => (guest.strip_suffix(":rw").unwrap_or(guest), false),
        };
        dirs.push(Preopen {
            host: host.into(),
            guest: guest.into(),
            read_only,
        });
    }
    let grants = Grants {
        dirs,
        memory: Some(args.memory),
        timeout: Some(args.timeout),
        ..Grants::default()
    };
    let mut plugins = Vec::new();
    let mut failed = false;
    for r in &args.plugins {
        match host.load(r, grants.clone()) {
            Ok(p) => {
                eprintln!("plugin-host: loaded {r} ({})", p.digest());
                plugins.push(p);
            }
            Err(e) => {
                println!(
                    "{}",
                    serde_json::json!({"plugin": r, "load_error": e.to_string()})
                );
                failed = true;
            }
        }
    }
    for input in &args.inputs {
        std::thread::scope(|s| {
            for p in &plugins {
                for t in 0..args.threads {
                    s.spawn(move || {
                        let start = Instant::now();
                        let result = process(p, input);
                        let ms = start.elapsed().as_secs_f64() * 1000.0;
                        let mut line = serde_json::json!({
                            "plugin": p.reference(),
                            "digest": p.digest(),
                            "input": input,
                            "thread": t,
                            "ms": ms,
                        });
                        match result {
                            Ok(v) => line["ok"] = v.into(),
                            Err(e) => line["error"] = e.into(),
                        }
                        println!("{line}");
                    });
                }
            }
        });
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
