//! The store under stress and attack: corrupted blobs are found by `system check`, parallel
//! loads leave one consistent store, and archives that lie are refused without leftovers.

use std::process::Stdio;

use crate::common::layout::{tar, write_image, write_index};
use crate::common::*;

#[test]
fn system_check_finds_and_repairs_a_corrupted_blob() {
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let out = w.ok(&["system", "check"]);
    assert!(out.contains("0 problems"), "{out}");
    // Flip a byte in the largest blob (a layer).
    let blobs = w.root().join("store/blobs/sha256");
    let victim = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&victim, &bytes).unwrap();
    let out = w.run(&["system", "check"]);
    assert_eq!(out.status.code(), Some(125));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        stdout.contains(&name) && stdout.contains("hashes to"),
        "{stdout}"
    );
    assert!(
        stdout.contains("image docker.io/library/busybox:latest"),
        "{stdout}"
    );
    w.ok(&["system", "check", "--repair"]);
    assert!(w.images().is_empty(), "the broken image was removed");
    assert!(w.ok(&["system", "check"]).contains("0 problems"));
    assert_eq!(w.blob_count(), 0);
}

#[test]
fn twenty_parallel_loads_leave_one_consistent_store() {
    let w = Wharf::new();
    let archive = s(&busybox_images().join("busybox-oci.tar.gz"));
    w.ok(&["images"]); // create the store first, as a user would have
    let children: Vec<_> = (0..20)
        .map(|_| {
            w.cmd(&["load", "-i", &archive])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(w.images().len(), 1);
    assert!(w.ok(&["system", "check"]).contains("0 problems"));
    let temps = std::fs::read_dir(w.root().join("tmp")).unwrap().count();
    assert_eq!(temps, 0, "temp files left behind");
    // Loads and removals racing: the store still checks clean.
    let children: Vec<_> = (0..10)
        .map(|i| {
            let args: Vec<&str> = if i % 2 == 0 {
                vec!["load", "-i", &archive]
            } else {
                vec!["system", "prune"]
            };
            w.cmd(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert!(w.ok(&["system", "check"]).contains("0 problems"));
    assert_eq!(w.images().len(), 1);
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let w = Wharf::new();
    let src = w.path("layout");
    write_image(
        &src,
        "liar",
        &[tar(&[("f", tar::EntryType::Regular, "", b"data")])],
    );
    // Corrupt the layer blob in the source layout.
    let blobs = src.join("blobs/sha256");
    let layer = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&layer, bytes).unwrap();
    let err = w.fails(&["load", "-i", &s(&src)], 125);
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(w.blob_count(), 0, "nothing of the failed load is kept");
    assert!(w.images().is_empty());
    // Same through a tar archive.
    let archive = w.path("liar.tar");
    sh(std::process::Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&src)
        .arg("."));
    let err = w.fails(&["load", "-i", &s(&archive)], 125);
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(w.blob_count(), 0);
}

#[test]
fn a_manifest_served_as_an_index_is_refused() {
    let w = Wharf::new();
    let src = w.path("layout");
    let md = write_image(
        &src,
        "x",
        &[tar(&[("f", tar::EntryType::Regular, "", b"data")])],
    );
    let size = std::fs::metadata(src.join("blobs/sha256").join(&md[7..]))
        .unwrap()
        .len();
    write_index(
        &src,
        &[serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": md, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "x"}
        })],
    );
    let err = w.fails(&["load", "-i", &s(&src)], 125);
    assert!(
        err.contains("descriptor says application/vnd.oci.image.index.v1+json"),
        "{err}"
    );
    assert_eq!(w.blob_count(), 0);
}

#[test]
fn malformed_digests_never_become_paths() {
    let w = Wharf::new();
    let src = w.path("layout");
    std::fs::create_dir_all(&src).unwrap();
    write_index(
        &src,
        &[serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:../../../../etc/passwd", "size": 10
        })],
    );
    let err = w.fails(&["load", "-i", &s(&src)], 125);
    assert!(
        err.contains("index.json") || err.contains("digest"),
        "{err}"
    );
}

#[test]
fn oversized_manifests_are_refused_before_parsing() {
    let w = Wharf::new();
    let src = w.path("layout");
    std::fs::create_dir_all(src.join("blobs/sha256")).unwrap();
    let big = vec![b' '; 5 << 20];
    let d = crate::common::layout::digest(&big);
    std::fs::write(src.join("blobs/sha256").join(&d[7..]), &big).unwrap();
    write_index(
        &src,
        &[serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": big.len()
        })],
    );
    let err = w.fails(&["load", "-i", &s(&src)], 125);
    assert!(err.contains("cap"), "{err}");
    assert_eq!(w.blob_count(), 0);
}
