//! Hostile and careless input (issue 11): each test makes its fixture itself and checks for a
//! clear error, the right exit code and nothing left behind.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::*;
use crate::native::{busybox, serial};

/// A one-layer image (`etc/passwd` only) in a new layout at `dir`; its manifest digest.
fn tiny_image(dir: &std::path::Path, name: &str, files: &[(&str, &[u8])]) -> String {
    let entries: Vec<(&str, tar::EntryType, &str, &[u8])> = files
        .iter()
        .map(|(n, d)| (*n, tar::EntryType::Regular, "", *d))
        .collect();
    layout::write_image(dir, name, &[layout::tar(&entries)])
}

/// The store's blob files.
fn blobs(w: &Wharf) -> Vec<String> {
    std::fs::read_dir(w.root().join("store/blobs/sha256"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn deeply_nested_indexes_are_refused_and_nothing_is_stored() {
    let w = Wharf::new();
    let dir = w.path("deep");
    let manifest = tiny_image(&dir, "deep", &[("etc/motd", b"hi\n")]);
    // Wrap the manifest in 10 000 indexes, each naming the one below.
    let mut child = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest,
        "size": std::fs::metadata(dir.join("blobs/sha256").join(&manifest[7..])).unwrap().len()
    });
    for _ in 0..10_000 {
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [child]
        }))
        .unwrap();
        let d = layout::digest(&bytes);
        std::fs::write(dir.join("blobs/sha256").join(&d[7..]), &bytes).unwrap();
        child = serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": bytes.len()
        });
    }
    child["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "deep"});
    layout::write_index(&dir, &[child]);
    let err = w.fails(&["load", "-i", &s(&dir)], 125);
    assert!(err.contains("nest more than 4 levels"), "{err}");
    assert!(!err.contains("overflow"), "{err}");
    assert!(
        blobs(&w).is_empty(),
        "a refused load left blobs: {:?}",
        blobs(&w).len()
    );
    assert!(w.images().is_empty());
    assert!(w.ok(&["system", "check"]).contains("0 problems"));
}

#[test]
fn system_check_names_unreferenced_blobs_with_their_size() {
    let w = Wharf::new();
    let dir = w.path("img");
    tiny_image(&dir, "img", &[("etc/motd", b"hi\n")]);
    w.ok(&["load", "-i", &s(&dir)]);
    // A blob no image references (as an interrupted load would leave).
    let stray = b"a stray blob\n";
    let d = layout::digest(stray);
    std::fs::write(w.root().join("store/blobs/sha256").join(&d[7..]), stray).unwrap();
    let out = w.run(&["system", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains(&format!("unreferenced blob {d} ({} bytes)", stray.len())),
        "{text}"
    );
    w.ok(&["system", "check", "--repair"]);
    assert!(!blobs(&w).contains(&d[7..].to_string()));
    assert!(w.ok(&["system", "check"]).contains("0 problems"));
    w.ok(&["run", "--rm", "--print-spec", "img"]);
}

#[test]
fn a_tag_cannot_impersonate_a_whole_image_id() {
    let w = Wharf::new();
    tiny_image(&w.path("a"), "first", &[("etc/motd", b"first\n")]);
    tiny_image(&w.path("b"), "second", &[("etc/motd", b"second\n")]);
    w.ok(&["load", "-i", &s(&w.path("a"))]);
    w.ok(&["load", "-i", &s(&w.path("b"))]);
    let images = w.images();
    let id_of = |repo: &str| {
        images
            .iter()
            .find(|i| i["Repository"] == repo)
            .and_then(|i| i["Digest"].as_str())
            .unwrap()
            .to_string()
    };
    let first = id_of("first");
    let second = id_of("second");
    let hex = &first[7..];
    // The full digest, and the whole id, as a name for another image: refused (Docker's rule).
    let err = w.fails(&["tag", "second", &first], 125);
    assert!(err.contains("sha256"), "{err}");
    let err = w.fails(&["tag", "second", hex], 125);
    assert!(err.contains("64-digit"), "{err}");
    assert_eq!(w.images().len(), 2, "no name was added");
    // Whole ids and `sha256:` always find the image the id belongs to.
    for id in [first.as_str(), hex] {
        assert!(w.ok(&["inspect", id]).contains(&first), "{id}");
    }
    // A short hexadecimal word is a name like any other, looked up before ids (Docker's
    // order); `sha256:PREFIX` still means the id.
    let short = &hex[..12];
    w.ok(&["tag", "second", short]);
    assert!(w.ok(&["inspect", short]).contains(&second));
    let by_id = format!("sha256:{short}");
    assert!(w.ok(&["inspect", &by_id]).contains(&first));
    // rmi by `sha256:` and the short id removes the image the id belongs to, not the name.
    w.ok(&["rmi", &by_id]);
    let left: Vec<String> = w.images().iter().map(|i| i["Digest"].to_string()).collect();
    assert!(!left.iter().any(|d| d.contains(&first)), "{left:?}");
    assert!(left.iter().any(|d| d.contains(&second)), "{left:?}");
}

#[test]
fn user_ids_that_mean_unchanged_are_refused() {
    let _serial = serial();
    let w = busybox();
    for bad in ["4294967295", "0:4294967295", "4294967296"] {
        let err = w.fails(&["run", "--rm", "-u", bad, "busybox", "id"], 125);
        assert!(err.contains("out of range"), "{bad}: {err}");
    }
    // An image whose own passwd maps a name to (uid_t)-1.
    let dir = w.path("evil");
    let passwd = b"root:x:0:0:root:/root:/bin/sh\nevil:x:4294967295:4294967295::/:/bin/sh\n";
    let bin = std::fs::read(std::fs::canonicalize("/bin/busybox").unwrap()).unwrap();
    let layer = layout::tar(&[
        ("etc/passwd", tar::EntryType::Regular, "", passwd),
        ("bin/busybox", tar::EntryType::Regular, "", &bin),
    ]);
    layout::write_image(&dir, "evil", &[layer]);
    w.ok(&["load", "-i", &s(&dir)]);
    let out = w.run(&[
        "run",
        "--rm",
        "-u",
        "evil",
        "evil",
        "/bin/busybox",
        "id",
        "-u",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "ran as {stdout}");
    assert!(!stdout.contains('0'), "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("out of range"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // exec -u too.
    let id = w.ok(&["run", "-d", "busybox", "sleep", "30"]);
    let err = w.fails(&["exec", "-u", "4294967295", id.trim(), "id"], 125);
    assert!(err.contains("out of range"), "{err}");
    w.ok(&["rm", "-f", id.trim()]);
}

#[test]
fn a_relative_root_works_for_every_command() {
    let _serial = serial();
    let w = Wharf::new();
    let archive = busybox_images().join("busybox-oci.tar");
    let rel = |args: &[&str], env_root: bool| {
        let mut c = wharf_command();
        c.current_dir(w.dir.path());
        if env_root {
            c.env("WHARF_ROOT", "r2");
        } else {
            c.args(["--root", "r1"]);
        }
        let out = c.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for env_root in [false, true] {
        rel(&["load", "-i", &s(&archive)], env_root);
        let out = rel(&["run", "--rm", "busybox", "cat", "/etc/layer2"], env_root);
        assert_eq!(out, "layer two\n");
        // A detached container's helpers start elsewhere: the root must still be found.
        let id = rel(&["run", "-d", "busybox", "sleep", "30"], env_root);
        rel(&["stop", "-t", "1", id.trim()], env_root);
        rel(&["rm", id.trim()], env_root);
    }
    assert!(w.path("r1/store").is_dir() && w.path("r2/store").is_dir());
}

#[test]
fn fifos_from_gnu_tar_unpack() {
    let w = Wharf::new();
    let src = w.path("src");
    std::fs::create_dir(&src).unwrap();
    sh(Command::new("mkfifo").arg(src.join("f")));
    // GNU tar leaves a FIFO's device fields empty, which strict parsers refuse.
    let tarball = w.path("l.tar");
    sh(Command::new("tar")
        .arg("cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("f"));
    let dir = w.path("fifo");
    layout::write_image(&dir, "fifo", &[std::fs::read(&tarball).unwrap()]);
    w.ok(&["load", "-i", &s(&dir)]);
    let out = w.path("out");
    w.ok(&["unpack", "fifo", "--to", &s(&out)]);
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(out.join("f"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

/// Peak RSS (KiB) of `cmd`, which must succeed; returns it with stdout.
fn peak_rss(cmd: &mut Command) -> (i64, String) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let out = {
        let mut child = child;
        let mut s = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut s).unwrap();
        std::mem::forget(child);
        s
    };
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{status}"
    );
    (usage.ru_maxrss, out)
}

#[test]
fn logs_memory_stays_bounded_whatever_the_log_size() {
    let _serial = serial();
    let w = busybox();
    let id = w.ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=400m",
        "busybox",
        "echo",
        "first",
    ]);
    let id = id.trim().to_string();
    w.ok(&["wait", &id]);
    let inspect: serde_json::Value = serde_json::from_str(&w.ok(&["inspect", &id])).unwrap();
    let log = inspect[0]["LogPath"]
        .as_str()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no LogPath in {inspect}"));
    // 120 MB more of entries, written as the monitor would.
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let line = format!(
            "{{\"log\":\"{}\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-01T10:00:00.000000000Z\"}}\n",
            "x".repeat(1000)
        );
        let mut chunk = String::new();
        for _ in 0..1000 {
            chunk.push_str(&line);
        }
        for _ in 0..115 {
            f.write_all(chunk.as_bytes()).unwrap();
        }
        f.write_all(b"{\"log\":\"the end\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-01T10:00:01.000000000Z\"}\n")
            .unwrap();
    }
    assert!(std::fs::metadata(&log).unwrap().len() > 115_000_000);
    // wharf's own footprint, for comparison: a command that reads no log.
    let (base_kib, _) = peak_rss(&mut w.cmd(&["ps", "-a"]));
    for args in [vec!["logs", "-n", "1"], vec!["logs", "-f", "-n", "1"]] {
        let mut full = args.clone();
        full.push(&id);
        let (rss_kib, out) = peak_rss(&mut w.cmd(&full));
        assert_eq!(out, "the end\n", "{args:?}");
        assert!(
            rss_kib < base_kib + 8 * 1024,
            "{args:?} peaked at {rss_kib} KiB (wharf alone: {base_kib} KiB)"
        );
    }
    // Streaming everything is bounded too (output to a pipe we drain).
    let (rss_kib, out) = peak_rss(&mut w.cmd(&["logs", &id]));
    assert!(out.ends_with("the end\n") && out.starts_with("first\n"));
    assert!(
        rss_kib < base_kib + 8 * 1024,
        "logs peaked at {rss_kib} KiB (wharf alone: {base_kib} KiB)"
    );
    w.ok(&["rm", &id]);
}

#[test]
fn unrecognised_input_is_not_echoed() {
    let w = Wharf::new();
    let secret = w.path("shadow");
    let mut text = String::from("root:$6$SECRETSALT$SECRETHASHSECRETHASH:19000:0:99999:7:::\n");
    text.push_str(&"daemon:*:19000:0:99999:7:::\n".repeat(20));
    std::fs::write(&secret, &text).unwrap();
    let err = w.fails(&["load", "-i", &s(&secret)], 125);
    assert!(!err.contains("SECRET"), "the error echoes the input: {err}");
    assert!(
        err.contains("not an OCI layout, oci-archive or docker-archive"),
        "{err}"
    );
    // The same for something that starts like a tar header but is not one.
    let mut fake = vec![b'A'; 512];
    fake[..6].copy_from_slice(b"SECRET");
    std::fs::write(&secret, &fake).unwrap();
    let err = w.fails(&["load", "-i", &s(&secret)], 125);
    assert!(!err.contains("SECRET"), "{err}");
    assert!(blobs(&w).is_empty());
}

#[test]
fn a_missing_wasm_file_is_not_pulled() {
    let w = Wharf::new();
    let start = std::time::Instant::now();
    for name in ["fs2.wasm", "x.wat", "./app", "/no/such/file.bin"] {
        let err = w.fails(&["run", "--rm", name], 125);
        assert!(err.contains("no such file"), "{name}: {err}");
        assert!(
            !err.contains("docker.io") && !err.contains("pull"),
            "{name}: {err}"
        );
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn unpacking_stops_at_the_image_cap_and_at_the_free_space_reserve() {
    let _serial = serial();
    // A gzip layer of a few hundred KB that expands to 96 MiB of zeros.
    let w = Wharf::new();
    let zeros = vec![0u8; 96 << 20];
    let layer = layout::tar(&[("big", tar::EntryType::Regular, "", &zeros)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 1 << 20);
    let dir = w.path("bomb");
    layout::write_image(&dir, "bomb", &[gz]);
    drop(layer);
    w.ok(&["load", "-i", &s(&dir)]);
    let out = w
        .cmd(&["run", "--rm", "bomb", "true"])
        .env("WHARF_MAX_IMAGE_SIZE", "64m")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("WHARF_MAX_IMAGE_SIZE"), "{err}");
    let err = w.fails(&["unpack", "bomb", "--max-image-size", "1000000"], 125);
    assert!(err.contains("max-image-size"), "{err}");

    // A root on a 48 MiB filesystem: the unpack stops before the disk is full, says so,
    // and leaves no partial layer.
    let small = w.path("small");
    std::fs::create_dir(&small).unwrap();
    sh(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&small));
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    let mut c = wharf_command();
    c.arg("--root").arg(small.join("root"));
    sh(c.args(["load", "-i", &s(&dir)]));
    let mut c = wharf_command();
    c.arg("--root").arg(small.join("root"));
    let out = c.args(["run", "--rm", "bomb", "true"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("not enough free space"), "{err}");
    let layers: Vec<_> = std::fs::read_dir(small.join("root/layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(layers.is_empty(), "left behind: {layers:?}");
}

#[test]
fn a_closed_pipe_ends_wharf_quietly() {
    let w = Wharf::new();
    tiny_image(&w.path("a"), "first", &[("etc/motd", b"first\n")]);
    w.ok(&["load", "-i", &s(&w.path("a"))]);
    for args in [&["images"][..], &["inspect", "first"], &["system", "check"]] {
        let mut child = w
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before wharf writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
}

#[test]
fn container_processes_start_with_no_signal_ignored() {
    let _serial = serial();
    let w = busybox();
    // wharf ignores SIGPIPE (as every Rust program); its containers must not inherit that.
    let out = w.ok(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "SigIgn",
        "/proc/self/status",
    ]);
    assert_eq!(out.trim(), "SigIgn:\t0000000000000000");
    let id = w.ok(&["run", "-d", "busybox", "sleep", "30"]);
    let out = w.ok(&["exec", id.trim(), "grep", "SigIgn", "/proc/self/status"]);
    assert_eq!(out.trim(), "SigIgn:\t0000000000000000");
    w.ok(&["rm", "-f", id.trim()]);
}

/// A tmpfs of `size` mounted at a new directory; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        sh(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()));
        SmallDisk { dir }
    }

    fn free_bytes(&self) -> u64 {
        let st = nix::sys::statvfs::statvfs(self.dir.path()).unwrap();
        st.blocks_available() as u64 * st.fragment_size() as u64
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// CPU time (clock ticks) process `pid` has used.
fn cpu_ticks(pid: i64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of stat, 11 and 12 after the command.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A container that fills the disk with its log (the root on a small tmpfs) leaves every
/// management verb working: inspect, ps, stop, rm. No temporary file is left behind, and
/// the monitor does not spin on writes that fail.
#[test]
fn a_full_disk_leaves_containers_manageable() {
    let _serial = serial();
    let disk = SmallDisk::new("24m");
    let root = disk.dir.path().join("root");
    let wharf = |args: &[&str]| {
        let out = wharf_command()
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = wharf(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    assert_eq!(code, Some(0), "{err}");
    let line = "a".repeat(200);
    let (code, _, err) = wharf(&[
        "run",
        "-d",
        "--name",
        "flood",
        "busybox",
        "sh",
        "-c",
        &format!("while :; do echo {line}; done"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    eventually(60, "the log to fill the disk", || {
        disk.free_bytes() < 256 << 10
    });
    // The disk stays full for a while: the monitor drops output instead of spinning on it.
    let (_, out, _) = wharf(&["inspect", "flood"]);
    let state: serde_json::Value = serde_json::from_str(&out).unwrap();
    let monitor = state[0]["State"]["MonitorPid"].as_i64().unwrap();
    let before = cpu_ticks(monitor);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let used = cpu_ticks(monitor) - before;
    assert!(
        used < 100,
        "the monitor used {used} ticks of 200 while the disk was full"
    );
    // Every verb still works.
    let (code, out, err) = wharf(&["inspect", "flood"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"Status\": \"running\""), "{out}");
    let (code, out, err) = wharf(&["ps", "-a"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("flood"), "{out}");
    let (code, _, err) = wharf(&["stop", "-t", "2", "flood"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = wharf(&["inspect", "flood"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"Status\": \"exited\""), "{out}");
    let (code, _, err) = wharf(&["rm", "flood"]);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = wharf(&["ps", "-aq"]);
    assert!(out.trim().is_empty(), "{out}");
    let leftovers = sh(Command::new("find").arg(&root).args(["-name", "*.tmp*"]));
    assert!(
        leftovers.trim().is_empty(),
        "temporary files left: {leftovers}"
    );
}

/// Files a compose file includes, and env files, must be regular files of a sane size: an
/// `include` of /dev/zero is refused at once (not read until memory runs out), a FIFO does
/// not hang. 200 000 variables from an env file take a moment, not minutes.
#[test]
fn included_files_are_bounded_and_env_files_stay_linear() {
    let w = busybox();
    let dir = w.path("app");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo.yaml");
    sh(Command::new("mkfifo").arg(&fifo));
    for (include, why) in [
        ("/dev/zero", "not a regular file"),
        ("fifo.yaml", "not a regular file"),
    ] {
        std::fs::write(
            dir.join("compose.yaml"),
            format!("include: [{include}]\nservices:\n  a:\n    image: busybox\n"),
        )
        .unwrap();
        let start = std::time::Instant::now();
        let out = w
            .cmd(&["compose", "--project-directory", &s(&dir), "config"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{include}: {err}");
        assert!(err.contains(why), "{include}: {err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
    }
    let env = w.path("big.env");
    let mut text = String::new();
    for i in 0..200_000 {
        text.push_str(&format!("VAR_{i}=value-{i}\n"));
    }
    std::fs::write(&env, text).unwrap();
    let start = std::time::Instant::now();
    let spec = w.ok(&[
        "run",
        "--print-spec",
        "--env-file",
        &s(&env),
        "busybox",
        "true",
    ]);
    assert!(spec.contains("VAR_199999=value-199999"));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}
