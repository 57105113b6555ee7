//! Getting images in and out: images made by umoci and skopeo load and list with the right
//! kind; saved archives are accepted by skopeo, umoci and containerd, and reload identically.

use std::process::Command;

use crate::common::*;

#[test]
fn loads_every_format_that_umoci_and_skopeo_write() {
    let imgs = busybox_images();
    let mut sizes = Vec::new();
    for (input, name) in [
        ("layout", "docker.io/library/busybox:latest"),
        ("busybox-oci.tar", "docker.io/library/busybox:latest"),
        ("busybox-oci.tar.gz", "docker.io/library/busybox:latest"),
        ("busybox-docker.tar", "docker.io/library/busybox:latest"),
    ] {
        let w = Wharf::new();
        let out = w.ok(&["load", "-i", &s(&imgs.join(input))]);
        assert_eq!(out.trim(), format!("Loaded image: {name}"), "{input}");
        let images = w.images();
        assert_eq!(images.len(), 1, "{input}: {images:?}");
        assert_eq!(images[0]["Repository"], "busybox");
        assert_eq!(images[0]["Tag"], "latest");
        assert_eq!(images[0]["Kind"], "native", "{input}");
        assert_eq!(images[0]["Platform"], "linux/amd64", "{input}");
        sizes.push((input, images[0]["Size"].as_u64().unwrap()));
        let table = w.ok(&["images"]);
        assert!(table.starts_with("REPOSITORY"), "{table}");
        assert!(
            table.contains("busybox") && table.contains("native"),
            "{table}"
        );
    }
    // One image, one size (uncompressed, as Docker's), whether its layers came gzipped or not.
    assert!(
        sizes
            .iter()
            .all(|(_, n)| *n == sizes[0].1 && *n > 1_000_000),
        "{sizes:?}"
    );
}

#[test]
fn oci_archive_round_trips_with_the_same_digests() {
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let before = w.images();
    let archive = w.path("saved.tar");
    w.ok(&["save", "-o", &s(&archive), "busybox"]);

    let inspect = sh(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}", s(&archive)),
    ]));
    let manifest: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);

    let again = Wharf::new();
    again.ok(&["load", "-i", &s(&archive)]);
    let after = again.images();
    assert_eq!(before[0]["Digest"], after[0]["Digest"]);
    assert_eq!(before[0]["Size"], after[0]["Size"]);
}

#[test]
fn umoci_reads_a_saved_archive_and_skopeo_reads_the_store() {
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("layout"))]);
    // The store is an OCI layout skopeo can read in place.
    let store = s(&w.root().join("store"));
    sh(Command::new("skopeo").args([
        "inspect",
        &format!("oci:{store}:docker.io/library/busybox:latest"),
    ]));

    let archive = w.path("saved.tar");
    w.ok(&["save", "-o", &s(&archive), "busybox:latest"]);
    let layout = w.path("extracted");
    std::fs::create_dir(&layout).unwrap();
    sh(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout));
    let bundle = w.path("bundle");
    sh(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:docker.io/library/busybox:latest", s(&layout)),
        &s(&bundle),
    ]));
    assert!(bundle.join("rootfs/bin/busybox").exists());
    assert!(
        !bundle.join("rootfs/etc/motd").exists(),
        "whiteout applied by umoci"
    );
}

#[test]
fn docker_archive_round_trips() {
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let config = |w: &Wharf| {
        let v: serde_json::Value = serde_json::from_str(&w.ok(&["inspect", "busybox"])).unwrap();
        v[0]["Manifest"]["config"]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let archive = w.path("docker.tar");
    w.ok(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        &s(&archive),
        "busybox",
    ]);
    sh(Command::new("skopeo").args(["inspect", &format!("docker-archive:{}", s(&archive))]));
    let again = Wharf::new();
    assert_eq!(
        again.ok(&["load", "-i", &s(&archive)]).trim(),
        "Loaded image: docker.io/library/busybox:latest"
    );
    assert_eq!(config(&w), config(&again));
}

#[test]
fn containerd_imports_a_saved_archive() {
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("layout"))]);
    let archive = w.path("saved.tar");
    w.ok(&["save", "-o", &s(&archive), "busybox"]);

    let cd = Containerd::start(&w);
    let import = cd.ctr(&["images", "import", &s(&archive)]);
    let list = cd.ctr(&["images", "ls", "-q"]);
    drop(cd);
    assert!(
        import.status.success(),
        "ctr import: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("docker.io/library/busybox:latest"),
        "ctr images ls: {list}"
    );
}

#[test]
fn unpack_matches_what_umoci_unpacks() {
    let w = Wharf::new();
    let imgs = busybox_images();
    w.ok(&["load", "-i", &s(&imgs.join("busybox-docker.tar"))]);
    let ours = w.path("rootfs");
    let said = w.ok(&["unpack", "busybox", "--to", &s(&ours)]);
    assert!(
        said.starts_with("Unpacked busybox: 2 layers (")
            && said
                .trim_end()
                .ends_with(&format!("root filesystem in {}", s(&ours))),
        "says what it did: {said}"
    );
    let bundle = w.path("umoci-bundle");
    sh(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:busybox", s(&imgs.join("layout"))),
        &s(&bundle),
    ]));
    let list = |dir: &std::path::Path| {
        let out = sh(Command::new("find")
            .arg(".")
            .arg("-printf")
            .arg("%p %y %m\n")
            .current_dir(dir));
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(list(&ours), list(&bundle.join("rootfs")));
    assert!(!ours.join("etc/motd").exists());
    assert_eq!(
        std::fs::read_to_string(ours.join("etc/layer2")).unwrap(),
        "layer two\n"
    );
    // The shared layer cache holds one directory per layer, private to root.
    let layers: Vec<_> = std::fs::read_dir(w.root().join("layers"))
        .unwrap()
        .collect();
    assert_eq!(layers.len(), 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.root().join("layers"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[test]
fn tag_inspect_and_rmi() {
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let blobs = w.blob_count();
    w.ok(&["tag", "busybox", "localhost:5000/tools/bb:v1"]);
    let names: Vec<String> = w
        .images()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["Repository"].as_str().unwrap(),
                i["Tag"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        names.contains(&"localhost:5000/tools/bb:v1".to_string()),
        "{names:?}"
    );
    let id = w.images()[0]["Id"].as_str().unwrap().to_string();
    // By id with two names: refused without -f.
    let err = w.fails(&["rmi", &id], 125);
    assert!(err.contains("several repositories"), "{err}");
    w.ok(&["rmi", "localhost:5000/tools/bb:v1"]);
    assert_eq!(w.blob_count(), blobs, "blobs still used by busybox:latest");
    let out = w.ok(&["rmi", "busybox"]);
    assert!(
        out.contains("Untagged: docker.io/library/busybox:latest"),
        "{out}"
    );
    assert_eq!(w.blob_count(), 0);
    assert!(w.images().is_empty());
    let err = w.fails(&["rmi", "busybox"], 125);
    assert!(err.contains("no such image: busybox"), "{err}");
    let err = w.fails(&["inspect", "Not_A_Ref"], 125);
    assert!(err.contains("no such image"), "{err}");
}

#[test]
fn bad_input_gets_a_clear_error_and_leaves_nothing() {
    let w = Wharf::new();
    let junk = w.path("junk.tar");
    std::fs::write(&junk, b"this is not an archive at all").unwrap();
    let err = w.fails(&["load", "-i", &s(&junk)], 125);
    assert!(err.contains("junk.tar"), "{err}");
    let err = w.fails(&["load", "-i", &s(&w.path("missing.tar"))], 125);
    assert!(err.contains("no such file"), "{err}");
    assert_eq!(w.blob_count(), 0);
    assert!(w.images().is_empty());
}

/// A multi-platform index holding a native and a wasm image under one name: kept whole,
/// the platform chosen by `--platform`, the host's by default.
#[test]
fn a_mixed_multi_platform_index_is_kept_whole() {
    let w = Wharf::new();
    let dir = mixed_index_layout(&w, "mixed:latest");

    let fresh = Wharf::new();
    assert_eq!(
        fresh.ok(&["load", "-i", &s(&dir)]).trim(),
        "Loaded image: docker.io/library/mixed:latest"
    );
    let images = fresh.images();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["Platform"], "linux/amd64,wasip1/wasm");
    assert_eq!(
        images[0]["Kind"], "native",
        "the host's platform by default"
    );
    let inspect = |p: &str| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&fresh.ok(&["inspect", "--platform", p, "mixed"])).unwrap();
        v[0].clone()
    };
    assert_eq!(inspect("wasi/wasm")["Kind"], "wasm");
    assert_eq!(inspect("linux/amd64")["Kind"], "native");
    let err = fresh.fails(&["inspect", "--platform", "linux/arm64", "mixed"], 125);
    assert!(err.contains("linux/arm64"), "{err}");
    // One name, both kinds, chosen at run time.
    let out = fresh.ok(&["run", "--platform", "wasi/wasm", "mixed", "x"]);
    assert!(
        out.contains("hello from wasm") && out.contains("arg[1]=x"),
        "{out}"
    );
    #[cfg(target_os = "linux")]
    assert_eq!(
        fresh.ok(&["run", "mixed", "echo", "native side"]),
        "native side\n"
    );
    // Saved again, the index is still whole.
    let again = fresh.path("again.tar");
    fresh.ok(&["save", "-o", &s(&again), "mixed"]);
    let raw = sh(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}", s(&again)),
    ]));
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2, "{raw}");
}
