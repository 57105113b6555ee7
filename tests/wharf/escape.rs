//! A container's root user attacking the host through wharf's own doors, with the
//! attacker's side real (static probes inside the container, built from tests/fixtures):
//! rewriting the host's wharf through `exec` (CVE-2019-5736, with an upgraded binary too and
//! a positive control that the probe does overwrite an unprotected launcher), the host's
//! session keyring, and mounts steered onto /proc by a symlink in the image.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use crate::native::{busybox, serial};

/// The host files a dynamically linked `binary` needs to start, copied under `dir` at their
/// own paths (`dir/lib/...`, `dir/lib64/...`): mounted into a container, they let the
/// binary run there, as it could in any glibc image. (A static binary needs none.)
fn loader_files(binary: &Path, dir: &Path) {
    let ldd = Command::new("ldd").arg(binary).output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dest = dir.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(lib, &dest).unwrap();
    }
    for d in ["lib", "lib64"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
}

fn hash(p: &Path) -> String {
    layout::digest(&std::fs::read(p).unwrap())
}

/// The attack's pieces in a directory the container mounts at /p: the watcher (waits for a
/// process whose executable is neither itself nor busybox, keeps an O_PATH descriptor to
/// it, and tries to write through it once it ended), `#!/proc/self/exe` scripts, and a wasm
/// loop for the launcher to run meanwhile.
fn attack_kit(w: &Wharf) -> PathBuf {
    let kit = w.path("kit");
    std::fs::create_dir_all(&kit).unwrap();
    static_probe("exe-watcher", &kit.join("watcher"));
    std::fs::copy(wasm_dir().join("loop.wat"), kit.join("loop.wat")).unwrap();
    for (name, text) in [
        // wharf takes what follows as its own command line: `--log-level /p/evil.sh run
        // --timeout 3s /p/loop.wat` keeps it running (inside the container) for 3 s.
        ("evil.sh", "#!/proc/self/exe --log-level\n"),
        // The control launcher (nsenter) runs this over and over until it is killed.
        ("evil-loop.sh", "#!/proc/self/exe\n"),
    ] {
        std::fs::write(kit.join(name), text).unwrap();
        sh(Command::new("chmod").arg("755").arg(kit.join(name)));
    }
    kit
}

/// `wharf` as installed at `exe` (a copy of the binary under test), on `w`'s root.
fn installed_cmd(w: &Wharf, exe: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(exe);
    c.arg("--root")
        .arg(w.root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Start a detached container whose first process is the watcher (giving up after 30 s,
/// trying to write for 15 s); libraries for the launchers under attack mounted where a
/// glibc image keeps them. With CAP_SYS_PTRACE: without it the kernel hides a process that
/// holds capabilities the watcher lacks (the control launcher keeps all of root's), and the
/// control could not show that the probe works.
fn watched_container(w: &Wharf, exe: &Path, kit: &Path, libs: &Path, name: &str) {
    let vol = |host: &Path, inside: &str| format!("{}:{inside}:ro", s(host));
    let status = installed_cmd(
        w,
        exe,
        &[
            "run",
            "-d",
            "--cap-add",
            "SYS_PTRACE",
            "--name",
            name,
            "-v",
            &vol(kit, "/p"),
            "-v",
            &vol(&libs.join("lib"), "/lib"),
            "-v",
            &vol(&libs.join("lib64"), "/lib64"),
            "busybox",
            "/p/watcher",
            "30",
            "15",
        ],
    )
    .status()
    .unwrap();
    assert!(status.success());
}

/// What the watcher in container `name` said once it is done.
fn watcher_verdict(w: &Wharf, name: &str) -> String {
    let done = |r: &str| {
        r.contains("caught nothing") || r.contains("write refused") || r.contains("WROTE")
    };
    eventually(40, "the watcher's verdict", || done(&w.ok(&["logs", name])));
    w.ok(&["logs", name])
}

/// Kill every process running the executable at `exe` (the control's looping launcher).
fn kill_running(exe: &Path) {
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if std::fs::read_link(e.path().join("exe")).is_ok_and(|x| x == exe) {
            let pid = e.file_name().to_string_lossy().into_owned();
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}

#[test]
fn exec_cannot_overwrite_the_host_wharf_through_proc_self_exe() {
    let _serial = serial();
    let w = busybox();
    let kit = attack_kit(&w);
    // wharf as installed, in a directory of its own: a copy of the binary under test, so
    // a successful attack damages only the copy.
    let installed = w.path("bin/wharf");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::copy(bin("wharf"), &installed).unwrap();
    let nsenter = w.path("bin/nsenter");
    std::fs::copy(
        sh(Command::new("sh").args(["-c", "command -v nsenter"])).trim(),
        &nsenter,
    )
    .unwrap();
    let libs = w.path("libs");
    loader_files(&installed, &libs);
    loader_files(&nsenter, &libs);

    // The positive control: a launcher that does not protect its binary (nsenter entering
    // the container, as a runtime without a seal would) is caught, and once it is gone,
    // overwritten by the probe.
    watched_container(&w, &installed, &kit, &libs, "control");
    let pid = inspect(&w, "control")["State"]["Pid"]
        .as_i64()
        .unwrap()
        .to_string();
    let nsenter_before = hash(&nsenter);
    let mut launcher = Command::new(&nsenter)
        .args(["-t", &pid, "-a", "/p/evil-loop.sh"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(30, "the watcher to catch nsenter", || {
        w.ok(&["logs", "control"]).contains("caught /")
    });
    kill_running(&nsenter);
    let _ = launcher.wait();
    let report = watcher_verdict(&w, "control");
    assert!(
        report.contains("WROTE"),
        "the probe failed its control: {report}"
    );
    assert_ne!(hash(&nsenter), nsenter_before);
    w.ok(&["rm", "-f", "control"]);

    // wharf exec, before and after an upgrade: the container starts under the installed
    // binary; then (second round) a new one is installed as a new inode, as package managers
    // and `mv` do, so no running supervisor holds it (ETXTBSY then protects nothing). The
    // binary that execs `#!/proc/self/exe` is what the container catches: sealed, writes
    // are refused and the installed file is untouched.
    for (round, name) in ["victim", "upgraded"].into_iter().enumerate() {
        watched_container(&w, &installed, &kit, &libs, name);
        if round == 1 {
            let staged = w.path("bin/wharf.new");
            std::fs::copy(bin("wharf"), &staged).unwrap();
            std::fs::rename(&staged, &installed).unwrap();
        }
        let before = hash(&installed);
        // (It ends with 137 either way: the loop's timeout, or killed with the container
        // when the watcher, its pid 1, is done.)
        let _ = installed_cmd(
            &w,
            &installed,
            &[
                "exec",
                name,
                "/p/evil.sh",
                "run",
                "--timeout",
                "3s",
                "/p/loop.wat",
            ],
        )
        .status();
        let report = watcher_verdict(&w, name);
        assert!(report.contains("caught /"), "{name}: {report}");
        assert!(!report.contains("WROTE"), "{name}: {report}");
        assert!(!report.contains(&s(&installed)), "{name}: {report}");
        assert!(
            report.contains("write refused: Read-only file system") || report.contains("memfd"),
            "{name}: {report}"
        );
        assert_eq!(
            hash(&installed),
            before,
            "{name}: the installed wharf changed"
        );
        w.ok(&["rm", "-f", name]);
    }
}

#[test]
fn a_container_keeps_its_keys_in_a_session_keyring_of_its_own() {
    let _serial = serial();
    let w = busybox();
    let probe_dir = w.path("probe");
    std::fs::create_dir_all(&probe_dir).unwrap();
    let probe = probe_dir.join("probe");
    static_probe("keyring-probe", &probe);
    let vol = format!("{}:/p:ro", s(&probe_dir));
    // seccomp=unconfined: Docker's profile would refuse add_key before the keyring matters.
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            "-v",
            &vol,
        ];
        args.extend_from_slice(extra);
        args.extend(["busybox", "/p/probe", "add", "wharf-run-key"]);
        Keyrings::of(&probe, &mut w.cmd(&args))
    };
    run(&[]).assert_own();
    // Exec'd processes too.
    w.ok(&[
        "run",
        "-d",
        "--name",
        "keys",
        "--security-opt",
        "seccomp=unconfined",
        "-v",
        &vol,
        "busybox",
        "sleep",
        "30",
    ]);
    Keyrings::of(
        &probe,
        &mut w.cmd(&["exec", "keys", "/p/probe", "add", "wharf-exec-key"]),
    )
    .assert_own();
    w.ok(&["rm", "-f", "keys"]);
}

/// `/data -> /proc/self` in the image and a tmpfs asked at `/data/attr`: refused, never
/// mounted over the container's /proc (CVE-2019-16884 class); a bind at a path under /sys
/// reached the same way, too.
#[test]
fn mounts_steered_into_proc_or_sys_by_an_image_symlink_are_refused() {
    let _serial = serial();
    let w = busybox();
    // An image whose /data and /hw are symlinks into /proc and /sys (made with umoci).
    let layout = w.path("layout");
    sh(Command::new("cp")
        .arg("-r")
        .arg(busybox_images().join("layout"))
        .arg(&layout));
    let bundle = w.path("bundle");
    let image = format!("{}:busybox", s(&layout));
    sh(Command::new("umoci").args(["unpack", "--image", &image, &s(&bundle)]));
    std::os::unix::fs::symlink("/proc/self", bundle.join("rootfs/data")).unwrap();
    std::os::unix::fs::symlink("/sys/kernel", bundle.join("rootfs/hw")).unwrap();
    sh(Command::new("umoci").args(["repack", "--image", &image, &s(&bundle)]));
    let archive = w.path("links.tar");
    sh(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "-q",
        &format!("oci:{image}"),
        &format!("oci-archive:{}:links:latest", s(&archive)),
    ]));
    w.ok(&["load", "-i", &s(&archive)]);
    let host_dir = w.path("vol");
    std::fs::create_dir_all(&host_dir).unwrap();
    for (flag, value) in [
        ("--tmpfs", "/data/attr".to_string()),
        ("-v", format!("{}:/data/attr", s(&host_dir))),
        ("-v", format!("{}:/hw/mm", s(&host_dir))),
    ] {
        let err = w.fails(&["run", "--rm", flag, &value, "links", "true"], 125);
        let args = (flag, &value);
        assert!(
            err.contains("is on procfs") || err.contains("is on sysfs"),
            "{args:?}: {err}"
        );
    }
    // The same volume at an ordinary path works.
    let vol = format!("{}:/data2", s(&host_dir));
    w.ok(&["run", "--rm", "-v", &vol, "links", "true"]);
}

/// A device node on a container's root filesystem (an image layer's, or one the container
/// makes with its CAP_MKNOD) cannot be opened: the root is `nodev`, so a node for the host's
/// disk in a hostile image is inert even where no device cgroup holds (cgroup v2 without
/// an eBPF program). Its /dev, a tmpfs wharf fills, works as before; so does a `--device`.
#[test]
fn device_nodes_on_the_root_filesystem_cannot_be_opened() {
    let _serial = serial();
    let w = busybox();
    let out = w.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mknod /tmp/n c 1 3; (echo x > /tmp/n) 2>/dev/null && echo opened || echo refused; \
         mknod /dev/n c 1 3 && echo x > /dev/n && echo in-dev-ok",
    ]);
    assert_eq!(out, "refused\nin-dev-ok\n");
    // A read-only root keeps it (a remount sets every flag anew).
    let out = w.ok(&[
        "run",
        "--rm",
        "--read-only",
        "busybox",
        "sh",
        "-c",
        "grep ' / ' /proc/mounts",
    ]);
    let opts = out.split_whitespace().nth(3).unwrap_or_default();
    assert!(
        opts.split(',').any(|o| o == "ro") && opts.split(',').any(|o| o == "nodev"),
        "{out}"
    );
    // A host device asked for outside /dev still works (the root is then left as it was).
    let out = w.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/mnt/mynull",
        "busybox",
        "sh",
        "-c",
        "echo x > /mnt/mynull && echo device-ok",
    ]);
    assert_eq!(out, "device-ok\n");
    crate::native::assert_clean(&w);
}
