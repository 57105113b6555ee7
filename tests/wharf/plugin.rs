//! wharf as a library for plugin hosts (`wharf::plugin`): the example host
//! (`examples/plugin-host.rs`) loads the plugins in `wasm-examples/plugins` from a real
//! registry (by tag and by digest; under wine, from the store) and calls them from 8
//! threads while the hostile one is held to its limits; reload and pins through the API.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::common::*;

/// The built example host: Linux's beside the test binaries, or `WHARF_PLUGIN_HOST` (a
/// command line, e.g. `wine plugin-host.exe`).
fn plugin_host() -> Command {
    if let Ok(line) = std::env::var("WHARF_PLUGIN_HOST")
        && !line.trim().is_empty()
    {
        let mut parts = line.split_whitespace();
        let mut c = Command::new(parts.next().unwrap());
        c.args(parts);
        return c;
    }
    let exe: PathBuf = bin_dir().join("examples/plugin-host");
    assert!(
        exe.exists(),
        "{} is missing: build it with `cargo build --example plugin-host` (scripts/test.sh does)",
        exe.display()
    );
    Command::new(exe)
}

/// (plugin, input) → the distinct answers (ok or error) of every thread.
fn run_host(args: &[&str]) -> BTreeMap<(String, String), Vec<String>> {
    let out = plugin_host().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "plugin-host {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut answers: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut calls = 0;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        calls += 1;
        let plugin = v["plugin"].as_str().unwrap();
        // Names as the test gave them, without registry or digest.
        let short = plugin
            .rsplit('/')
            .next()
            .unwrap()
            .split([':', '@'])
            .next()
            .unwrap()
            .to_string();
        let answer = match (v["ok"].as_str(), v["error"].as_str()) {
            (Some(ok), _) => format!("ok: {ok}"),
            (_, Some(e)) => format!("error: {e}"),
            _ => panic!("{line}"),
        };
        let list = answers
            .entry((short, v["input"].as_str().unwrap().to_string()))
            .or_default();
        if !list.contains(&answer) {
            list.push(answer);
        }
    }
    assert!(calls > 0, "no calls: {stdout}");
    answers
}

fn one(answers: &BTreeMap<(String, String), Vec<String>>, plugin: &str, input: &str) -> String {
    let list = &answers[&(plugin.to_string(), input.to_string())];
    assert_eq!(list.len(), 1, "every thread got the same answer: {list:?}");
    list[0].clone()
}

#[test]
fn the_example_host_calls_plugins_from_8_threads_and_holds_the_hostile_one_to_its_grants() {
    let w = Wharf::new();
    let root = w.root();
    for p in ["upper", "wordcount", "hostile"] {
        w.ok(&[
            "package",
            &crate::portable::host_path(std::path::Path::new(&wasm(&format!("plugin-{p}.wasm")))),
            "-t",
            &format!("plugins/{p}:1"),
        ]);
    }
    // A directory the plugins are granted, and a file beside it they are not.
    let granted = w.path("granted");
    std::fs::create_dir_all(&granted).unwrap();
    std::fs::write(granted.join("note.txt"), "inside the grant").unwrap();
    std::fs::write(w.path("secret.txt"), "outside the grant").unwrap();
    let windows = crate::portable::windows();
    // Linux: a fresh root takes them from a registry, by tag and by digest.
    let registry = (!windows).then(crate::registry::Registry::start);
    let (host_root, refs) = match &registry {
        Some(r) => {
            let mut refs = Vec::new();
            for p in ["upper", "wordcount", "hostile"] {
                let dest = format!("{}/plugins/{p}:1", r.host());
                w.ok(&["push", &format!("plugins/{p}:1"), &dest]);
                refs.push(dest);
            }
            let inspect: serde_json::Value =
                serde_json::from_str(&w.ok(&["inspect", "plugins/wordcount:1"])).unwrap();
            let digest = inspect[0]["Id"].as_str().unwrap().to_string();
            refs[1] = format!("{}/plugins/wordcount@{digest}", r.host());
            (w.path("fresh-root"), refs)
        }
        None => (
            root.clone(),
            ["upper", "wordcount", "hostile"]
                .iter()
                .map(|p| format!("plugins/{p}:1"))
                .collect(),
        ),
    };
    let grant = format!("{}:/data", crate::portable::host_path(&granted));
    let host_root_arg = crate::portable::host_path(&host_root);
    let mut args: Vec<&str> = vec![
        "--root",
        &host_root_arg,
        "--threads",
        "8",
        "--timeout",
        "500ms",
        "--memory",
        "32m",
        "--grant",
        &grant,
    ];
    args.extend(refs.iter().map(String::as_str));
    let secret = format!("read {}", crate::portable::host_path(&w.path("secret.txt")));
    args.extend([
        "--",
        "three little words",
        "loop",
        "alloc",
        "sleep",
        "read /data/note.txt",
        "read /data/../secret.txt",
        &secret,
    ]);
    let a = run_host(&args);
    assert_eq!(
        one(&a, "upper", "three little words"),
        "ok: THREE LITTLE WORDS"
    );
    assert_eq!(one(&a, "wordcount", "three little words"), "ok: 3");
    assert_eq!(
        one(&a, "hostile", "three little words"),
        "ok: three little words"
    );
    let looped = one(&a, "hostile", "loop");
    assert!(
        looped.contains("wasm run-time limit of 500ms exceeded (--timeout)"),
        "{looped}"
    );
    // Waiting in a host call (a 30 s sleep), where no epoch check runs: ended all the same.
    let slept = one(&a, "hostile", "sleep");
    assert!(
        slept.contains("wasm run-time limit of 500ms exceeded (--timeout)"),
        "{slept}"
    );
    let hoarded = one(&a, "hostile", "alloc");
    assert!(
        hoarded.contains("wasm memory limit of 33554432 bytes exceeded"),
        "{hoarded}"
    );
    assert_eq!(
        one(&a, "hostile", "read /data/note.txt"),
        "ok: inside the grant"
    );
    for escape in ["read /data/../secret.txt", secret.as_str()] {
        let denied = one(&a, "hostile", escape);
        assert!(
            denied.starts_with("error: the plugin said: reading"),
            "{escape}: {denied}"
        );
    }
    // The others kept answering through all of it.
    for input in ["loop", "alloc", "sleep"] {
        assert_eq!(
            one(&a, "upper", input),
            format!("ok: {}", input.to_uppercase())
        );
        assert_eq!(one(&a, "wordcount", input), "ok: 1");
    }
    if registry.is_some() {
        // Compiled once: the cache has one entry per plugin.
        let cached: usize = std::fs::read_dir(host_root.join("cache/wasm"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| std::fs::read_dir(e.path()).map_or(0, |d| d.count()))
            .sum();
        assert!(cached >= 3, "{cached}");
    }
}

/// A WASI 0.3 plugin: its export is async and waits on an async import; the host calls it
/// on the store's event loop, two calls at once in one instance.
#[cfg(target_os = "linux")]
#[test]
fn an_async_export_is_called_concurrently_through_the_typed_api() {
    use wharf::plugin::{Grants, Host};

    wasmtime::component::bindgen!({
        inline: "package demo:text; world async-text-plugin { export process: async func(input: string) -> result<string, string>; }",
        world: "async-text-plugin",
        exports: { default: async | store },
    });

    let w = Wharf::new();
    w.ok(&["package", &wasm("plugin-async-upper.wasm"), "-t", "up3:1"]);
    let host = Host::open(&wharf::paths::Roots::new(w.root()), Default::default()).unwrap();
    let plugin = host.load("up3:1", Grants::default()).unwrap();
    let started = std::time::Instant::now();
    let (a, b) = plugin
        .call(async |store, pre| {
            let world = AsyncTextPluginPre::new(pre.clone())?
                .instantiate_async(&mut *store)
                .await?;
            store
                .run_concurrent(async |s| {
                    let (a, b) = tokio::join!(
                        world.call_process(s, "wait:300 a".into()),
                        world.call_process(s, "wait:300 b".into())
                    );
                    wasmtime::Result::Ok((a?, b?))
                })
                .await?
        })
        .unwrap()
        .value;
    let took = started.elapsed();
    assert_eq!((a, b), (Ok("WAIT:300 A".into()), Ok("WAIT:300 B".into())));
    assert!(
        (300..550).contains(&took.as_millis()),
        "two 300 ms waits at once took {took:?}: not concurrent"
    );
    // The untyped door: `call_export` drives it the same way.
    let out = plugin
        .call_export(
            "process",
            &[wharf::plugin::Value::Component(
                wasmtime::component::Val::String("x".into()),
            )],
        )
        .unwrap();
    assert_eq!(out.len(), 1);
}

#[cfg(target_os = "linux")]
#[test]
fn reload_switches_while_calls_run_and_a_moved_pin_is_refused() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use wharf::plugin::{Grants, Host};

    wasmtime::component::bindgen!({
        path: "wasm-examples/plugins/wit",
        world: "text-plugin",
        exports: { default: async },
    });

    let w = Wharf::new();
    w.ok(&["package", &wasm("plugin-upper.wasm"), "-t", "text:1"]);
    w.ok(&["package", &wasm("plugin-wordcount.wasm"), "-t", "counter:1"]);
    let upper_digest = {
        let v: serde_json::Value = serde_json::from_str(&w.ok(&["inspect", "text:1"])).unwrap();
        v[0]["Id"].as_str().unwrap().to_string()
    };
    let host = Host::open(&wharf::paths::Roots::new(w.root()), Default::default()).unwrap();
    let plugin = Arc::new(host.load("text:1", Grants::default()).unwrap());
    let pinned = host
        .load(&format!("text@{upper_digest}"), Grants::default())
        .unwrap();
    let call = |p: &wharf::plugin::Plugin, input: &str| -> String {
        p.call(async |store, pre| {
            let world = TextPluginPre::new(pre.clone())?
                .instantiate_async(&mut *store)
                .await?;
            world.call_process(&mut *store, input).await
        })
        .unwrap()
        .value
        .unwrap()
    };
    assert_eq!(call(&plugin, "a b"), "A B");
    // Eight threads call while the tag moves and the plugin reloads.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Vec<std::thread::JoinHandle<Vec<String>>> = (0..8)
        .map(|_| {
            let (p, stop) = (plugin.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let out = p
                        .call(async |store, pre| {
                            let world = TextPluginPre::new(pre.clone())?
                                .instantiate_async(&mut *store)
                                .await?;
                            world.call_process(&mut *store, "a b").await
                        })
                        .expect("no call fails across a reload")
                        .value
                        .unwrap();
                    if answers.last() != Some(&out) {
                        answers.push(out);
                    }
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(100));
    w.ok(&["tag", "counter:1", "text:1"]);
    assert!(plugin.reload().unwrap(), "the tag moved");
    assert!(!plugin.reload().unwrap(), "and stays");
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    for t in seen {
        let answers = t.join().unwrap();
        assert_eq!(answers.last().map(String::as_str), Some("2"), "{answers:?}");
        assert!(
            answers.iter().all(|a| a == "A B" || a == "2"),
            "{answers:?}"
        );
    }
    // A pure digest pin keeps its code; a tag pinned to the old digest is refused.
    assert_eq!(call(&pinned, "x y"), "X Y");
    assert!(!pinned.reload().unwrap());
    let e = host
        .load(&format!("text:1@{upper_digest}"), Grants::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("the tag moved") && e.contains(&upper_digest),
        "{e}"
    );
    // A missing export and a core module called by export.
    let e = plugin.call_export("nope", &[]).unwrap_err().to_string();
    assert!(e.contains("exports no function \"nope\""), "{e}");
    let wat = w.path("add.wat");
    std::fs::write(
        &wat,
        "(module (func (export \"add\") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))",
    )
    .unwrap();
    let module = host.load(&s(&wat), Grants::default()).unwrap();
    let out = module
        .call_export(
            "add",
            &[
                wharf::plugin::Value::Core(wasmtime::Val::I32(2)),
                wharf::plugin::Value::Core(wasmtime::Val::I32(40)),
            ],
        )
        .unwrap();
    assert!(matches!(
        out[0],
        wharf::plugin::Value::Core(wasmtime::Val::I32(42))
    ));
}
