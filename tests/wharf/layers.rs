//! Hostile layers through the whole CLI: loaded from a layout, unpacked by `wharf unpack`;
//! the host outside the layer directory never changes, and a failed unpack leaves nothing.

use tar::EntryType as T;

use crate::common::layout::{tar, write_image};
use crate::common::*;

/// A sentinel directory that must stay exactly as made.
fn sentinel(w: &Wharf) -> std::path::PathBuf {
    let dir = w.path("host");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), b"secret").unwrap();
    dir
}

fn assert_untouched(dir: &std::path::Path) {
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret"]);
    assert_eq!(std::fs::read(dir.join("secret")).unwrap(), b"secret");
}

#[test]
fn escaping_layers_stay_inside_their_directory() {
    let w = Wharf::new();
    let host = sentinel(&w);
    let h = s(&host);
    let hs = format!("{h}/secret");
    let dotdots = format!("../../../../../../../..{h}/dotdot");
    let layer = tar(&[
        (&format!("{h}/abs"), T::Regular, "", b"x"),
        (&dotdots, T::Regular, "", b"x"),
        ("link", T::Symlink, &h, b""),
        ("link/through-symlink", T::Regular, "", b"x"),
        ("link/secret", T::Regular, "", b"overwritten"),
        ("up", T::Symlink, "../../../../../../../../../..", b""),
        (&format!("up{h}/via-dotdot-link"), T::Regular, "", b"x"),
        ("hs", T::Symlink, &hs, b""),
        ("hs", T::Regular, "", b"replaces the link"),
        ("link/.wh.secret", T::Regular, "", b""),
    ]);
    let src = w.path("evil-layout");
    write_image(&src, "evil", &[layer]);
    w.ok(&["load", "-i", &s(&src)]);
    let rootfs = w.path("rootfs");
    w.ok(&["unpack", "evil", "--to", &s(&rootfs)]);
    assert_untouched(&host);
    // Everything landed inside, where a container would see it.
    assert!(rootfs.join(format!("{}/abs", &h[1..])).exists());
    assert!(rootfs.join(format!("{}/through-symlink", &h[1..])).exists());
    assert_eq!(
        std::fs::read(rootfs.join("hs")).unwrap(),
        b"replaces the link"
    );
}

#[test]
fn refused_layers_leave_no_partial_unpack() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("whiteout-dot", tar(&[(".wh..", T::Regular, "", b"")])),
        ("whiteout-dotdot", tar(&[("a/.wh...", T::Regular, "", b"")])),
        ("root-symlink", tar(&[("./", T::Symlink, "/", b"")])),
        ("hardlink-out", tar(&[("h", T::Link, "/etc/passwd", b"")])),
        ("unknown-type", tar(&[("x", T::new(b'Z'), "", b"")])),
    ];
    for (name, layer) in cases {
        let w = Wharf::new();
        let host = sentinel(&w);
        let src = w.path("layout");
        write_image(&src, name, &[layer]);
        w.ok(&["load", "-i", &s(&src)]);
        let err = w.fails(&["unpack", name], 125);
        assert!(err.contains("layer entry"), "{name}: {err}");
        let left: Vec<_> = std::fs::read_dir(w.root().join("layers"))
            .unwrap()
            .collect();
        assert!(
            left.is_empty(),
            "{name}: partial unpack left behind: {left:?}"
        );
        assert_untouched(&host);
    }
}

#[test]
fn decompression_bombs_are_stopped() {
    use std::io::Write;
    let w = Wharf::new();
    let zeros = vec![0u8; 32 << 20];
    let layer = tar(&[("bomb", T::Regular, "", &zeros)]);
    let src = w.path("layout");
    write_image(&src, "bomb", &[layer]);
    w.ok(&["load", "-i", &s(&src)]);
    let err = w.fails(&["unpack", "bomb", "--max-layer-size", "1000000"], 125);
    assert!(err.contains("decompression bomb"), "{err}");
    let _ = std::io::stderr().flush();
    assert_eq!(
        std::fs::read_dir(w.root().join("layers")).unwrap().count(),
        0
    );
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_discarded() {
    let w = Wharf::new();
    let src = w.path("layout");
    let layer = tar(&[("f", T::Regular, "", b"data")]);
    write_image(&src, "liar", &[layer]);
    // Rewrite the config's diff id to something else (and the manifest to match).
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"].as_str().unwrap()[7..].to_string();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("blobs/sha256").join(&md)).unwrap())
            .unwrap();
    let cd = manifest["config"]["digest"].as_str().unwrap()[7..].to_string();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("blobs/sha256").join(&cd)).unwrap())
            .unwrap();
    config["rootfs"]["diff_ids"][0] = serde_json::json!(format!("sha256:{}", "0".repeat(64)));
    let config = serde_json::to_vec(&config).unwrap();
    let cdig = crate::common::layout::digest(&config);
    std::fs::write(src.join("blobs/sha256").join(&cdig[7..]), &config).unwrap();
    manifest["config"]["digest"] = serde_json::json!(cdig);
    manifest["config"]["size"] = serde_json::json!(config.len());
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let mdig = crate::common::layout::digest(&manifest);
    std::fs::write(src.join("blobs/sha256").join(&mdig[7..]), &manifest).unwrap();
    crate::common::layout::write_index(
        &src,
        &[serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "liar"}
        })],
    );
    w.ok(&["load", "-i", &s(&src)]);
    let err = w.fails(&["unpack", "liar"], 125);
    assert!(err.contains("diff id"), "{err}");
    assert_eq!(
        std::fs::read_dir(w.root().join("layers")).unwrap().count(),
        0
    );
}
