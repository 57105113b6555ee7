//! The malicious-layer corpus (the tar-slip cases containerd's TestBreakouts, moby's
//! TestUntar* and umoci's TestUnpackEntry* probe), each written here as raw tar headers.

use std::fs;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use tar::{EntryType, Header};

use super::*;

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    FileMode(&'a str, &'a [u8], u32),
    Link(&'a str, &'a str),
    Sym(&'a str, &'a str),
    Raw(&'a str, EntryType, &'a str),
    Dev(&'a str, EntryType, u32, u32),
}

fn header(name: &str, kind: EntryType, size: u64, link: &str, mode: u32) -> Header {
    let mut h = Header::new_ustar();
    {
        // Raw bytes: the tar crate's setters refuse `..`, and hostile layers are the point.
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    h
}

fn tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::Dir(n) => b.append(&header(n, EntryType::Directory, 0, "", 0o755), &[][..]),
            E::File(n, data) => b.append(
                &header(n, EntryType::Regular, data.len() as u64, "", 0o644),
                *data,
            ),
            E::FileMode(n, data, mode) => b.append(
                &header(n, EntryType::Regular, data.len() as u64, "", *mode),
                *data,
            ),
            E::Link(n, t) => b.append(&header(n, EntryType::Link, 0, t, 0o644), &[][..]),
            E::Sym(n, t) => b.append(&header(n, EntryType::Symlink, 0, t, 0o777), &[][..]),
            E::Raw(n, k, t) => b.append(&header(n, *k, 0, t, 0o644), &[][..]),
            E::Dev(n, k, major, minor) => {
                let mut h = header(n, *k, 0, "", 0o600);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                h.set_cksum();
                b.append(&h, &[][..])
            }
        }
        .unwrap();
    }
    b.into_inner().unwrap()
}

/// A sandbox: `root/` to unpack into and `outside/secret` that must never change.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/secret"), b"secret").unwrap();
        Sandbox { dir }
    }
    fn root(&self) -> Dir {
        Dir::open_ambient_dir(self.dir.path().join("root"), ambient_authority()).unwrap()
    }
    fn path(&self, p: &str) -> std::path::PathBuf {
        self.dir.path().join(p)
    }
    fn outside(&self) -> String {
        self.path("outside").to_string_lossy().into_owned()
    }
    fn unpack_with(
        &self,
        entries: &[E],
        opts: &UnpackOptions,
    ) -> Result<UnpackReport, UnpackError> {
        apply_layer(&tar(entries)[..], &self.root(), opts)
    }
    fn unpack(&self, entries: &[E]) -> Result<UnpackReport, UnpackError> {
        self.unpack_with(entries, &files_opts())
    }
    /// The host side did not change: `outside/` holds exactly the untouched secret.
    fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(self.path("outside"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"], "something was written outside the root");
        assert_eq!(fs::read(self.path("outside/secret")).unwrap(), b"secret");
        let meta = fs::metadata(self.path("outside/secret")).unwrap();
        assert!(meta.permissions().readonly() || meta.len() == 6);
        let top: Vec<_> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(top.len(), 2, "unexpected entries next to root: {top:?}");
    }
}

fn files_opts() -> UnpackOptions {
    UnpackOptions {
        limits: Limits::default(),
        whiteouts: WhiteoutFormat::Files,
        privileged: false,
        copy: false,
    }
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

#[test]
fn absolute_and_dotdot_names_are_clamped() {
    let s = Sandbox::new();
    let abs = format!("{}/secret", s.outside());
    s.unpack(&[
        E::File("/etc/x", b"1"),
        E::File("../../y", b"2"),
        E::File("a/../../z", b"3"),
        E::File(&abs, b"pwned"),
    ])
    .unwrap();
    assert_eq!(fs::read(s.path("root/etc/x")).unwrap(), b"1");
    assert_eq!(fs::read(s.path("root/y")).unwrap(), b"2");
    assert_eq!(fs::read(s.path("root/z")).unwrap(), b"3");
    assert!(exists(&s.path(&format!("root{abs}"))));
    s.assert_outside_untouched();
}

#[test]
fn writes_through_symlinks_stay_inside() {
    let s = Sandbox::new();
    let out = s.outside();
    s.unpack(&[
        E::Sym("abs", &out),
        E::File("abs/secret", b"pwned"),
        E::File("abs/new", b"pwned"),
        E::Sym("up", "../../.."),
        E::File("up/outside/secret", b"pwned"),
        E::File("up/a/b", b"inside"),
        E::Sym("etc", "/host-etc"),
        E::File("etc/passwd", b"root::0:0::/:/bin/sh"),
        E::Sym("self", "/self"),
        E::File("late", b"after the loop entry"),
    ])
    .unwrap();
    // Followed as the container would: relative to the layer root.
    assert_eq!(
        fs::read(s.path(&format!("root{out}/secret"))).unwrap(),
        b"pwned"
    );
    assert_eq!(fs::read(s.path("root/outside/secret")).unwrap(), b"pwned");
    assert_eq!(fs::read(s.path("root/a/b")).unwrap(), b"inside");
    assert_eq!(
        fs::read(s.path("root/host-etc/passwd")).unwrap(),
        b"root::0:0::/:/bin/sh"
    );
    assert!(
        fs::symlink_metadata(s.path("root/etc"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    s.assert_outside_untouched();
}

#[test]
fn hardlinks_resolve_inside_the_root() {
    let s = Sandbox::new();
    let host_secret = format!("{}/secret", s.outside());
    // A target outside (absolute, or by ..) does not exist inside the root: refused.
    for target in [
        host_secret.as_str(),
        "../outside/secret",
        "../../../../../etc/passwd",
    ] {
        let err = s.unpack(&[E::Link("h", target)]).unwrap_err();
        assert!(
            matches!(err, UnpackError::BadHardlink { .. }),
            "{target}: {err}"
        );
    }
    // Through a symlinked parent: resolved inside the root.
    s.unpack(&[
        E::File("real/f", b"data"),
        E::Sym("l", "/real"),
        E::Link("h", "l/f"),
    ])
    .unwrap();
    assert_eq!(fs::read(s.path("root/h")).unwrap(), b"data");
    // A hardlink to a symlink links the symlink itself, never its target.
    s.unpack(&[E::Sym("s", &host_secret), E::Link("hs", "s")])
        .unwrap();
    assert_eq!(
        fs::read_link(s.path("root/hs")).unwrap().to_string_lossy(),
        host_secret
    );
    s.assert_outside_untouched();
}

#[test]
fn metadata_never_follows_symlinks() {
    let s = Sandbox::new();
    let host_secret = format!("{}/secret", s.outside());
    let before = fs::metadata(&host_secret).unwrap();
    s.unpack(&[
        E::Sym("l", &host_secret),
        E::Raw("l2", EntryType::Symlink, "../outside/secret"),
    ])
    .unwrap();
    let after = fs::metadata(&host_secret).unwrap();
    assert_eq!(before.permissions(), after.permissions());
    assert_eq!(before.modified().unwrap(), after.modified().unwrap());
    // A file entry over a symlink replaces the link; it does not write through it.
    s.unpack(&[E::Sym("m", &host_secret), E::File("m", b"pwned")])
        .unwrap();
    assert_eq!(fs::read(s.path("root/m")).unwrap(), b"pwned");
    s.assert_outside_untouched();
}

#[test]
fn invalid_whiteouts_are_refused() {
    let s = Sandbox::new();
    for bad in [".wh..", ".wh...", "a/.wh..", "a/.wh.", "a/.wh..."] {
        let err = s.unpack(&[E::File(bad, b"")]).unwrap_err();
        assert!(
            matches!(err, UnpackError::BadWhiteout { .. }),
            "{bad}: {err}"
        );
    }
    s.assert_outside_untouched();
}

#[test]
fn whiteouts_through_symlinks_stay_inside() {
    for opts in [
        files_opts(),
        UnpackOptions {
            whiteouts: WhiteoutFormat::for_host(),
            ..files_opts()
        },
    ] {
        let s = Sandbox::new();
        let out = s.outside();
        s.unpack_with(
            &[
                E::Sym("l", &out),
                E::File("l/.wh.secret", b""),
                E::Sym("u", "../.."),
                E::File("u/outside/.wh.secret", b""),
            ],
            &opts,
        )
        .unwrap();
        s.assert_outside_untouched();
    }
}

#[test]
fn opaque_dirs_hide_only_lower_layers() {
    let s = Sandbox::new();
    let lower = Sandbox::new();
    lower
        .unpack(&[E::File("d/lower", b"l"), E::File("gone", b"g")])
        .unwrap();
    s.unpack(&[
        E::File("d/upper", b"u"),
        E::File("d/.wh..wh..opq", b""),
        E::File(".wh.gone", b""),
    ])
    .unwrap();
    assert!(
        exists(&s.path("root/d/upper")),
        "same-layer entry hidden by its own opaque marker"
    );
    let layers = [
        LayerDir {
            diff_id: "lower".into(),
            root: lower.path("root"),
            whiteouts: WhiteoutFormat::Files,
        },
        LayerDir {
            diff_id: "upper".into(),
            root: s.path("root"),
            whiteouts: WhiteoutFormat::Files,
        },
    ];
    let merged = tempfile::tempdir().unwrap();
    let dest = Dir::open_ambient_dir(merged.path(), ambient_authority()).unwrap();
    flatten(&layers, &dest).unwrap();
    assert!(exists(&merged.path().join("d/upper")));
    assert!(!exists(&merged.path().join("d/lower")));
    assert!(!exists(&merged.path().join("gone")));
    assert!(!exists(&merged.path().join("d/.wh..wh..opq")));
    assert!(!exists(&merged.path().join(".wh.gone")));
}

#[test]
fn root_entries_that_are_not_directories_are_refused() {
    for (name, kind) in [
        ("./", EntryType::Symlink),
        (".", EntryType::Regular),
        ("/", EntryType::Link),
    ] {
        let s = Sandbox::new();
        let err = s.unpack(&[E::Raw(name, kind, "/outside")]).unwrap_err();
        assert!(
            matches!(err, UnpackError::RootEntry { .. }),
            "{name}: {err}"
        );
        s.assert_outside_untouched();
    }
    let s = Sandbox::new();
    s.unpack(&[E::Dir("./")]).unwrap();
}

#[test]
fn type_flips_replace_never_follow() {
    let s = Sandbox::new();
    let out = s.outside();
    s.unpack(&[
        E::File("a/keep", b"k"),
        E::Sym("a", &out),
        E::File("a/x", b"inside"),
        E::File("b", b"file"),
        E::Dir("b"),
        E::Sym("c", "/"),
        E::Dir("c"),
    ])
    .unwrap();
    assert!(
        fs::symlink_metadata(s.path("root/a"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read(s.path(&format!("root{out}/x"))).unwrap(),
        b"inside"
    );
    assert!(fs::symlink_metadata(s.path("root/b")).unwrap().is_dir());
    assert!(fs::symlink_metadata(s.path("root/c")).unwrap().is_dir());
    s.assert_outside_untouched();
}

#[test]
fn device_nodes_are_skipped_unprivileged_and_range_checked() {
    let s = Sandbox::new();
    let r = s
        .unpack(&[
            E::Dev("dev/sda", EntryType::Block, 8, 0),
            E::Dev("dev/null", EntryType::Char, 1, 3),
        ])
        .unwrap();
    assert_eq!(r.skipped_devices, 2);
    assert!(!exists(&s.path("root/dev/null")));
    let err = s
        .unpack(&[E::Dev("bad", EntryType::Char, 0x1000, 0)])
        .unwrap_err();
    assert!(matches!(err, UnpackError::BadDevice { .. }));
    s.unpack(&[E::Dev("fifo", EntryType::Fifo, 0, 0)]).unwrap();
    assert!(exists(&s.path("root/fifo")));
}

#[test]
fn unknown_entry_types_are_refused() {
    let s = Sandbox::new();
    let err = s
        .unpack(&[E::Raw("weird", EntryType::new(b'Z'), "")])
        .unwrap_err();
    assert!(matches!(err, UnpackError::UnsupportedEntry { .. }), "{err}");
}

#[test]
fn symlink_loops_end_in_an_error() {
    let s = Sandbox::new();
    let err = s
        .unpack(&[E::Sym("a", "b"), E::Sym("b", "a"), E::File("a/x", b"")])
        .unwrap_err();
    assert!(matches!(err, UnpackError::SymlinkLoop { .. }), "{err}");
}

#[test]
fn decompression_bombs_are_capped() {
    use std::io::Write;
    let zeros = vec![0u8; 8 << 20];
    let layer = tar(&[E::File("bomb", &zeros)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&layer).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 64 << 10);
    let s = Sandbox::new();
    let opts = UnpackOptions {
        limits: Limits {
            max_bytes: 1 << 20,
            max_entries: 100,
            ..Limits::default()
        },
        ..files_opts()
    };
    let err = apply_layer(&gz[..], &s.root(), &opts).unwrap_err();
    assert!(matches!(err, UnpackError::TooLarge { .. }), "{err}");

    let many: Vec<E> = (0..50).map(|_| E::File("f", b"")).collect();
    let opts = UnpackOptions {
        limits: Limits {
            max_bytes: 1 << 30,
            max_entries: 10,
            ..Limits::default()
        },
        ..files_opts()
    };
    let err = s.unpack_with(&many, &opts).unwrap_err();
    assert!(matches!(err, UnpackError::TooManyEntries { .. }), "{err}");

    // The image's budget is its own limit, named in the error.
    let opts = UnpackOptions {
        limits: Limits {
            max_image_bytes: 1 << 20,
            ..Limits::default()
        },
        ..files_opts()
    };
    let err = apply_layer(&gz[..], &s.root(), &opts).unwrap_err();
    assert!(matches!(err, UnpackError::ImageTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("WHARF_MAX_IMAGE_SIZE"), "{err}");
}

#[test]
fn owners_out_of_range_are_refused() {
    // (uid_t)-1 would mean "leave unchanged" to lchown; 2^32 would wrap to root.
    for uid in [u64::from(u32::MAX), 1 << 32] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path("f").unwrap();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(uid);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &[][..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let s = Sandbox::new();
        let err = apply_layer(&bytes[..], &s.root(), &files_opts()).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}

#[test]
fn compressed_layers_unpack_and_report_the_diff_id() {
    use std::io::Write;
    let layer = tar(&[E::Dir("bin"), E::FileMode("bin/su", b"#!/bin/sh\n", 0o4755)]);
    let expected = crate::image::blob::digest_of(&layer);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).unwrap();
    let zst = zstd::encode_all(&layer[..], 3).unwrap();
    for bytes in [layer.clone(), gz.finish().unwrap(), zst] {
        let s = Sandbox::new();
        let r = apply_layer(&bytes[..], &s.root(), &files_opts()).unwrap();
        assert_eq!(r.diff_id, expected);
        assert_eq!(r.size, layer.len() as u64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(s.path("root/bin/su"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o4755, "setuid bit kept for the container");
        }
    }
}
