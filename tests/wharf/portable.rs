//! What must behave the same on every host wharf runs on, with the host's own path syntax.
//! `scripts/test-windows.sh` runs these (with the wasm and package tests) against
//! `wharf.exe` under wine; on Linux they run against the Linux build.

use crate::common::*;

/// Whether the binary under test is the Windows build (set by scripts/test-windows.sh).
pub fn windows() -> bool {
    std::env::var("WHARF_HOST_OS").is_ok_and(|v| v == "windows")
}

/// A host path as the binary under test spells it (wine maps `/` to drive `Z:`).
pub fn host_path(p: &std::path::Path) -> String {
    if windows() {
        format!("Z:{}", p.display()).replace('/', "\\")
    } else {
        p.display().to_string()
    }
}

#[test]
fn native_images_run_on_linux_and_get_a_clear_error_elsewhere() {
    let w = Wharf::new();
    w.ok(&[
        "load",
        "-i",
        &host_path(&busybox_images().join("busybox-oci.tar")),
    ]);
    if windows() {
        let err = w.fails(&["run", "busybox", "true"], 125);
        assert!(err.contains("busybox is a native Linux image"), "{err}");
        assert!(err.contains("needs a Linux host"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    } else {
        assert_eq!(w.ok(&["run", "busybox", "echo", "native"]), "native\n");
    }
}

#[test]
fn networks_are_listed_everywhere_and_bridges_refused_clearly_off_linux() {
    let w = Wharf::new();
    // The default network exists on every host; listing touches nothing outside the root.
    let nets: serde_json::Value =
        serde_json::from_str(&w.ok(&["network", "ls", "--format", "json"])).unwrap();
    assert_eq!(nets[0]["Name"], "bridge", "{nets}");
    if windows() {
        let err = w.fails(&["network", "create", "app"], 125);
        assert!(err.contains("bridge networks need a Linux host"), "{err}");
        let err = w.fails(&["run", "--network", "app", &wasm("hello.wasm")], 125);
        assert!(err.contains("bridge networks need a Linux host"), "{err}");
        // Host networking is what a wasm container has there.
        w.ok(&["run", "--network", "host", &wasm("hello.wasm")]);
    } else {
        // Making the definition needs no privilege or namespace: only attaching does.
        w.ok(&["network", "create", "--subnet", "10.131.0.0/24", "app"]);
        let inspect: serde_json::Value =
            serde_json::from_str(&w.ok(&["network", "inspect", "app"])).unwrap();
        assert_eq!(inspect[0]["Subnets"][0]["Gateway"], "10.131.0.1");
        w.ok(&["network", "rm", "app"]);
    }
}

#[test]
fn host_paths_work_for_root_and_volumes() {
    let w = Wharf::new();
    let root = host_path(&w.root());
    let data = w.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("input.txt"), "host file\n").unwrap();
    let mut c = wharf_command();
    c.args([
        "--root",
        &root,
        "package",
        &host_path(std::path::Path::new(&wasm("fs-demo.wasm"))),
        "-t",
        "fs",
    ]);
    sh(&mut c);
    let ro = format!("{}:/data:ro", host_path(&data));
    let mut c = wharf_command();
    c.args(["--root", &root, "run", "-v", &ro, "fs", "/data"]);
    let out = sh(&mut c);
    assert!(out.contains("input: host file"), "{out}");
    assert!(out.contains("write: error"), "{out}");
    let rw = format!("{}:/data", host_path(&data));
    let mut c = wharf_command();
    c.args(["--root", &root, "run", "-v", &rw, "fs", "/data"]);
    let out = sh(&mut c);
    assert!(out.contains("write: ok"), "{out}");
    assert_eq!(
        std::fs::read_to_string(data.join("output.txt")).unwrap(),
        "written by wasm\n"
    );
    // The store was written where --root said.
    assert!(w.root().join("store/index.json").exists());
}
