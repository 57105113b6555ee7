//! `wharf package`: the CNCF TAG-runtime Wasm OCI artifact layout and the compat image shape.

use crate::common::*;

#[test]
fn a_core_module_becomes_a_wasip1_artifact() {
    let w = Wharf::new();
    let out = w.ok(&[
        "package",
        &wasm("hello.wasm"),
        "-t",
        "hello:v1",
        "--cmd",
        "a",
        "--cmd",
        "b",
        "-e",
        "K=V",
    ]);
    assert!(out.contains("docker.io/library/hello:v1 (wasip1"), "{out}");
    let v = inspect(&w, "hello:v1");
    let m = &v["Manifest"];
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "v0 consumers reject more than one layer");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    let wasm_bytes = std::fs::read(wasm("hello.wasm")).unwrap();
    assert_eq!(
        layers[0]["digest"],
        crate::common::layout::digest(&wasm_bytes)
    );
    assert_eq!(layers[0]["size"], wasm_bytes.len());
    let c = &v["ImageConfig"];
    assert_eq!(c["architecture"], "wasm");
    assert_eq!(c["os"], "wasip1");
    assert_eq!(c["layerDigests"], serde_json::json!([layers[0]["digest"]]));
    assert!(c["created"].as_str().unwrap().ends_with('Z'));
    assert!(c.get("component").is_none());
    assert_eq!(c["config"]["Cmd"], serde_json::json!(["a", "b"]));
    assert_eq!(c["config"]["Env"], serde_json::json!(["K=V"]));
    assert_eq!(v["Kind"], "wasm");
    let images = w.images();
    assert_eq!(images[0]["Kind"], "wasm");
    assert_eq!(images[0]["Platform"], "wasip1/wasm");
}

#[test]
fn components_carry_their_world() {
    let w = Wharf::new();
    w.ok(&["package", &wasm("p2-command.wasm"), "-t", "p2"]);
    w.ok(&["package", &wasm("http-hello.wasm"), "-t", "http"]);
    let c = &inspect(&w, "p2")["ImageConfig"];
    assert_eq!(c["os"], "wasip2");
    let exports = c["component"]["exports"].as_array().unwrap();
    assert!(
        exports
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("wasi:cli/run@0.2")),
        "{exports:?}"
    );
    assert!(
        c["component"]["target"]
            .as_str()
            .unwrap()
            .starts_with("wasi:cli/command@0.2")
    );
    assert!(!c["component"]["imports"].as_array().unwrap().is_empty());
    let c = &inspect(&w, "http")["ImageConfig"];
    assert!(
        c["component"]["target"]
            .as_str()
            .unwrap()
            .starts_with("wasi:http/proxy@0.2"),
        "{c}"
    );
}

#[test]
fn compat_images_hold_the_module_at_app_wasm() {
    let w = Wharf::new();
    w.ok(&[
        "package",
        &wasm("hello.wasm"),
        "--compat",
        "-t",
        "hello-compat",
    ]);
    let v = inspect(&w, "hello-compat");
    let m = &v["Manifest"];
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(m["annotations"]["module.wasm.image/variant"], "compat");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(v["ImageConfig"]["os"], "wasi");
    assert_eq!(v["ImageConfig"]["architecture"], "wasm");
    assert_eq!(v["Config"]["Entrypoint"], serde_json::json!(["/app.wasm"]));
    assert_eq!(v["Kind"], "wasm");
    let rootfs = w.path("rootfs");
    w.ok(&["unpack", "hello-compat", "--to", &rootfs.to_string_lossy()]);
    assert_eq!(
        std::fs::read(rootfs.join("app.wasm")).unwrap(),
        std::fs::read(wasm("hello.wasm")).unwrap()
    );
    // skopeo, which wharf did not write, reads the compat image from a saved archive.
    let archive = w.path("compat.tar");
    w.ok(&["save", "-o", &archive.to_string_lossy(), "hello-compat"]);
    let out = sh(std::process::Command::new("skopeo")
        .args(["inspect", &format!("oci-archive:{}", archive.display())]));
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["Os"], "wasi");
    assert_eq!(info["Architecture"], "wasm");
}

#[test]
fn wat_fixtures_package_and_garbage_is_refused() {
    let w = Wharf::new();
    let out = w.ok(&["package", &wasm("exit42.wat"), "-t", "exit42"]);
    assert!(out.contains("wasip1"), "{out}");
    let junk = w.path("junk.wasm");
    std::fs::write(&junk, b"\x7fELF not wasm").unwrap();
    let err = w.fails(&["package", &junk.to_string_lossy(), "-t", "junk"], 125);
    assert!(err.contains("not a WebAssembly binary"), "{err}");
    std::fs::write(&junk, b"\0asm\x01\0\0\0\x01\xff").unwrap();
    let err = w.fails(&["package", &junk.to_string_lossy(), "-t", "junk"], 125);
    assert!(err.contains("invalid WebAssembly"), "{err}");
    let err = w.fails(&["package", &wasm("hello.wasm"), "-t", "Bad:Name"], 125);
    assert!(err.contains("invalid reference"), "{err}");
    assert_eq!(w.images().len(), 1);
}
