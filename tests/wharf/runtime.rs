//! `wharf-runtime`, runc's command line: driven directly as an engine would, with bad input,
//! and by a real engine (Debian's containerd with `ctr run --runc-binary`), compared with
//! runc on the same image.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;
use crate::native::serial;

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn runtime_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| s(&bin("wharf-runtime")))
}

/// A runtime root and bundles of its own.
struct Rt {
    w: Wharf,
}

/// A test that failed half-way must not leave its containers running into the next one.
impl Drop for Rt {
    fn drop(&mut self) {
        let ids = self
            .cmd(&["list", "-q"])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        for id in String::from_utf8_lossy(&ids).split_whitespace() {
            let _ = self.cmd(&["delete", "--force", id]).output();
        }
    }
}

impl Rt {
    fn new() -> Self {
        Rt { w: Wharf::new() }
    }

    fn root(&self) -> PathBuf {
        self.w.path("rt-root")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(runtime_bin());
        c.arg("--root").arg(self.root()).args(args);
        c
    }

    /// Run to its end. `create` leaves the container's process holding the runtime's
    /// stdio (callers pass FIFOs or files), so stdout and stderr go to files here, as an
    /// engine's would, and are read back once the runtime itself exits.
    fn run(&self, args: &[&str]) -> Output {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (o, e) = (
            self.w.path(&format!("out-{n}")),
            self.w.path(&format!("err-{n}")),
        );
        let status = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "wharf-runtime {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Fails with exit 1; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "wharf-runtime {args:?}: {err}");
        err
    }

    /// A busybox bundle (unpacked by umoci) running `args`.
    fn bundle(&self, name: &str, args: &[&str]) -> PathBuf {
        let dir = self.w.path(name);
        sh(Command::new("umoci").args([
            "unpack",
            "--image",
            &format!("{}:busybox", s(&busybox_images().join("layout"))),
            &s(&dir),
        ]));
        edit_config(&dir, |c| {
            c["process"]["args"] = serde_json::json!(args);
            c["process"]["terminal"] = serde_json::json!(false);
        });
        dir
    }

    fn state(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// Nothing of container `id` is left: state, cgroup, mounts of its bundle.
    fn assert_gone(&self, id: &str, bundle: &Path) {
        assert!(!self.root().join(id).exists(), "state of {id} left");
        for c in ["memory", "pids", "cpu", "freezer", "devices"] {
            let d = Path::new("/sys/fs/cgroup")
                .join(c)
                .join("wharf-runtime")
                .join(id);
            assert!(!d.exists(), "cgroup {} left", d.display());
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&s(bundle)),
            "a mount of {} left",
            bundle.display()
        );
    }
}

fn edit_config(bundle: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = bundle.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(&p, serde_json::to_vec(&c).unwrap()).unwrap();
}

#[test]
fn create_start_state_kill_delete_as_runc_callers_use_them() {
    let _serial = serial();
    let rt = Rt::new();
    // run: create + start + wait + delete, the workload's exit code.
    let b = rt.bundle("b-run", &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let out = rt.run(&["run", "--bundle", &s(&b), "r1"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    rt.assert_gone("r1", &b);

    // create: set up, waiting; the pid file names the waiting process.
    let b = rt.bundle(
        "b-life",
        &["sh", "-c", "echo started > /tmp/mark; exec sleep 60"],
    );
    let pid_file = rt.w.path("life.pid");
    rt.ok(&[
        "create",
        "--bundle",
        &s(&b),
        "--pid-file",
        &s(&pid_file),
        "c1",
    ]);
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let st = rt.state("c1");
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert_eq!(st["id"], "c1");
    assert_eq!(st["bundle"], s(&b));
    assert_eq!(st["rootfs"], s(&b.join("rootfs")));
    assert!(st["ociVersion"].is_string() && st["created"].is_string() && st["owner"] == "root");
    assert!(
        !b.join("rootfs/tmp/mark").exists(),
        "nothing ran before start"
    );
    rt.ok(&["start", "c1"]);
    let st = rt.state("c1");
    assert_eq!(st["status"], "running");
    let err = rt.fails(&["start", "c1"]);
    assert!(err.contains("only a created container"), "{err}");
    // ps: the container's processes, by host pid.
    let pids: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", "c1"])).unwrap();
    assert_eq!(pids, [pid]);
    let _ = &pids;
    let list: serde_json::Value =
        serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["id"], "c1");
    assert_eq!(list[0]["status"], "running");
    // exec: a command, exit code and output; a --process document (as shims pass it) with
    // another user; --detach with a pid file.
    let out = rt.run(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "cat /tmp/mark; echo in pid ns: $$; exit 4",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("started\nin pid ns: "), "{text}");
    let process = rt.w.path("process.json");
    let mut p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap())
            .map(|c: serde_json::Value| c["process"].clone())
            .unwrap();
    p["args"] = serde_json::json!(["sh", "-c", "id -u; id -G"]);
    p["user"] = serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [10]});
    std::fs::write(&process, serde_json::to_vec(&p).unwrap()).unwrap();
    let out = rt.ok(&["exec", "--process", &s(&process), "c1"]);
    assert_eq!(out, "1000\n1000 10\n");
    let epid = rt.w.path("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        &s(&epid),
        "c1",
        "sleep",
        "30",
    ]);
    let exec_pid: i32 = std::fs::read_to_string(&epid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(exec_pid.into()));
    let pids: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", "c1"])).unwrap();
    assert!(pids.contains(&exec_pid.into()), "{pids:?}");
    // pause and resume through the freezer.
    rt.ok(&["pause", "c1"]);
    assert_eq!(rt.state("c1")["status"], "paused");
    rt.ok(&["resume", "c1"]);
    assert_eq!(rt.state("c1")["status"], "running");
    // update: a new memory limit lands in the cgroup.
    let res = rt.w.path("res.json");
    std::fs::write(&res, r#"{"memory": {"limit": 67108864}}"#).unwrap();
    rt.ok(&["update", "--resources", &s(&res), "c1"]);
    let limit =
        std::fs::read_to_string("/sys/fs/cgroup/memory/wharf-runtime/c1/memory.limit_in_bytes")
            .unwrap();
    assert_eq!(limit.trim(), "67108864");
    let ev: serde_json::Value = serde_json::from_str(&rt.ok(&["events", "--stats", "c1"])).unwrap();
    assert_eq!(ev["type"], "stats");
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    // delete refuses a running container; kill (name with or without SIG, or a number).
    let err = rt.fails(&["delete", "c1"]);
    assert!(err.contains("not stopped"), "{err}");
    rt.ok(&["kill", "c1", "SIGTERM"]);
    rt.ok(&["kill", "--all", "c1", "9"]);
    assert!(
        !pid_alive(exec_pid.into()) || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            !pid_alive(exec_pid.into())
        }
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pid_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(rt.state("c1")["status"], "stopped");
    // `list` names states as the runtime spec does too (runc's), not as `wharf ps`.
    let list: serde_json::Value =
        serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["status"], "stopped");
    assert_eq!(list[0]["pid"], 0);
    assert_eq!(rt.state("c1")["pid"], 0);
    rt.ok(&["delete", "c1"]);
    rt.assert_gone("c1", &b);
    // delete --force of a missing container succeeds (containerd relies on it); state of a
    // missing one says "does not exist" (Podman relies on that).
    rt.ok(&["delete", "--force", "c1"]);
    let err = rt.fails(&["state", "c1"]);
    assert!(err.contains("does not exist"), "{err}");
    // A created container deleted before start: its waiting process goes.
    rt.ok(&["create", "--bundle", &s(&b), "c2"]);
    let pid2 = rt.state("c2")["pid"].as_i64().unwrap();
    rt.ok(&["delete", "c2"]);
    assert!(!pid_alive(pid2));
    rt.assert_gone("c2", &b);
    // kill --all reaches every process; delete --force of a running one.
    rt.ok(&["create", "--bundle", &s(&b), "c3"]);
    rt.ok(&["start", "c3"]);
    rt.ok(&["delete", "--force", "c3"]);
    rt.assert_gone("c3", &b);
    // features and spec.
    let f: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert!(f["linux"]["namespaces"].as_array().unwrap().len() >= 5);
    let dir = rt.w.path("spec-dir");
    std::fs::create_dir(&dir).unwrap();
    rt.ok(&["spec", "--bundle", &s(&dir)]);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert!(spec["process"]["args"].is_array() && spec["linux"]["namespaces"].is_array());
    // Unknown verbs and missing arguments: exit 1 with a message, as runc.
    let out = rt.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
    let out = rt.run(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("<ID>"));
}

#[test]
fn bad_bundles_are_refused_clearly_and_leave_nothing() {
    let _serial = serial();
    let rt = Rt::new();
    let missing = rt.w.path("no-such-bundle");
    let err = rt.fails(&["create", "--bundle", &s(&missing), "x1"]);
    assert!(err.contains("no-such-bundle"), "{err}");
    rt.assert_gone("x1", &missing);

    let b = rt.bundle("b-bad", &["true"]);
    let config = b.join("config.json");
    let good = std::fs::read(&config).unwrap();
    std::fs::write(&config, b"{ not json").unwrap();
    let err = rt.fails(&["create", "--bundle", &s(&b), "x2"]);
    assert!(err.contains("not a valid runtime spec"), "{err}");
    rt.assert_gone("x2", &b);
    std::fs::write(&config, &good).unwrap();
    edit_config(&b, |c| c["process"]["args"] = serde_json::json!("true"));
    let err = rt.fails(&["create", "--bundle", &s(&b), "x3"]);
    assert!(
        err.contains("not a valid runtime spec") && err.contains("invalid type"),
        "{err}"
    );
    rt.assert_gone("x3", &b);
    std::fs::write(&config, &good).unwrap();

    // A root filesystem that is a symlink pointing out of the bundle.
    let evil = rt.w.path("b-link");
    std::fs::create_dir(&evil).unwrap();
    std::fs::copy(&config, evil.join("config.json")).unwrap();
    std::os::unix::fs::symlink("/", evil.join("rootfs")).unwrap();
    let err = rt.fails(&["create", "--bundle", &s(&evil), "x4"]);
    assert!(err.contains("symlink"), "{err}");
    rt.assert_gone("x4", &evil);

    // A mount destination through a symlink that points out of the root: the mount lands
    // inside the container's root (or fails), never on the host.
    let host_target = rt.w.path("host-target");
    std::fs::create_dir(&host_target).unwrap();
    std::os::unix::fs::symlink(&host_target, b.join("rootfs/escape")).unwrap();
    edit_config(&b, |c| {
        c["process"]["args"] = serde_json::json!(["sh", "-c", "touch /escape/x/pwned"]);
        c["mounts"].as_array_mut().unwrap().push(
            serde_json::json!({"destination": "/escape/x", "type": "tmpfs", "source": "tmpfs"}),
        );
    });
    let out = rt.run(&["run", "--bundle", &s(&b), "x5"]);
    assert!(
        std::fs::read_dir(&host_target).unwrap().next().is_none(),
        "the host directory was written through the symlink ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = rt.run(&["delete", "--force", "x5"]);
    rt.assert_gone("x5", &b);
    std::fs::write(&config, &good).unwrap();

    // Ids with a path in them.
    for bad in ["../x", "a/b", ".."] {
        let err = rt.fails(&["create", "--bundle", &s(&b), bad]);
        assert!(err.contains("invalid container id"), "{bad}: {err}");
    }
    assert!(!rt.w.path("x").exists());
    // A second create of a live id.
    edit_config(&b, |c| {
        c["process"]["args"] = serde_json::json!(["sleep", "60"])
    });
    rt.ok(&["create", "--bundle", &s(&b), "dup"]);
    let err = rt.fails(&["create", "--bundle", &s(&b), "dup"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(rt.state("dup")["status"], "created");
    rt.ok(&["delete", "dup"]);
    rt.assert_gone("dup", &b);
    // A program that is not there: create fails with 127's message, nothing left.
    edit_config(&b, |c| {
        c["process"]["args"] = serde_json::json!(["/no/such/program"])
    });
    let err = rt.fails(&["create", "--bundle", &s(&b), "x6"]);
    assert!(err.contains("no such file"), "{err}");
    rt.assert_gone("x6", &b);
    // Errors also go to --log as json lines.
    let log = rt.w.path("rt.log");
    let out = Command::new(runtime_bin())
        .arg("--root")
        .arg(rt.root())
        .args(["--log", &s(&log), "--log-format", "json", "state", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("does not exist"));
    assert!(line["time"].is_string());
}

#[test]
fn containerd_runs_native_images_through_wharf_runtime_as_through_runc() {
    let _serial = serial();
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let archive = w.path("busybox.tar");
    w.ok(&["save", "-o", &s(&archive), "busybox"]);
    let cd = Containerd::start(&w);
    cd.ctr_ok(&["images", "import", &s(&archive)]);
    let image = "docker.io/library/busybox:latest";
    let script = "echo hello; id -u; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 3";
    let run_with = |runtime: Option<&str>, id: &str| {
        let mut args = vec!["run", "--rm"];
        if let Some(r) = runtime {
            args.extend(["--runc-binary", r]);
        }
        args.extend([image, id, "sh", "-c", script]);
        let out = cd.ctr(&args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ours = run_with(Some(runtime_bin()), "via-wharf");
    let theirs = run_with(None, "via-runc");
    assert_eq!(ours.0, Some(3), "wharf-runtime: {}", ours.2);
    assert_eq!(theirs.0, Some(3), "runc: {}", theirs.2);
    // The same output (ctr sets no hostname: both keep the host's in the new namespace).
    assert_eq!(ours.1, theirs.1, "wharf-runtime vs runc");
    assert!(ours.1.starts_with("hello\n0\n"), "{}", ours.1);

    // Detached: task ls, ps, pause, resume, kill, delete.
    cd.ctr_ok(&[
        "run",
        "-d",
        "--runc-binary",
        runtime_bin(),
        image,
        "bg",
        "sleep",
        "60",
    ]);
    let tasks = cd.ctr_ok(&["task", "ls"]);
    assert!(tasks.contains("bg") && tasks.contains("RUNNING"), "{tasks}");
    let ps = cd.ctr_ok(&["task", "ps", "bg"]);
    assert!(ps.lines().count() >= 2, "{ps}");
    // exec through the shim: --process, --detach, --pid-file, stdio from FIFOs.
    let out = cd.ctr_ok(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "bg",
        "sh",
        "-c",
        "echo from exec; id -u",
    ]);
    assert_eq!(out, "from exec\n0\n");
    cd.ctr_ok(&["task", "pause", "bg"]);
    assert!(cd.ctr_ok(&["task", "ls"]).contains("PAUSED"));
    cd.ctr_ok(&["task", "resume", "bg"]);
    assert!(cd.ctr_ok(&["task", "ls"]).contains("RUNNING"));
    cd.ctr_ok(&["task", "kill", "-s", "KILL", "bg"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cd.ctr_ok(&["task", "ls"]).contains("STOPPED") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cd.ctr_ok(&["task", "delete", "bg"]);
    cd.ctr_ok(&["container", "rm", "bg"]);
    assert!(!cd.ctr_ok(&["task", "ls"]).contains("bg"));
}

#[test]
fn a_container_cannot_overwrite_the_runtime_through_proc_self_exe() {
    let _serial = serial();
    let rt = Rt::new();
    // The runtime under attack is a copy: if the attack worked, only the copy is damaged.
    let victim = rt.w.path("wharf-runtime-copy");
    std::fs::copy(runtime_bin(), &victim).unwrap();
    let hash = |p: &Path| layout::digest(&std::fs::read(p).unwrap());
    let before = hash(&victim);
    let b = rt.bundle("b-cve", &["/watcher", "8"]);
    static_probe("exe-watcher", &b.join("rootfs/watcher"));
    // A dynamically linked runtime: give the container the host's loader and the libraries
    // it needs, so that the runtime's binary *can* run inside (as it could in any glibc
    // image), and the probe sees whatever the container really can reach. (A static one
    // runs as it is: ldd finds nothing to copy.)
    let ldd = Command::new("ldd").arg(runtime_bin()).output().unwrap();
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let dest = b.join("rootfs").join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(lib, &dest).unwrap();
    }
    let evil = b.join("rootfs/evil.sh");
    std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
    sh(Command::new("chmod").arg("755").arg(&evil));
    let as_victim = |args: &[&str], out: &Path| {
        Command::new(&victim)
            .arg("--root")
            .arg(rt.root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out).unwrap())
            .stderr(Stdio::null())
            .status()
            // An overwritten binary no longer starts: the final checks say why.
            .is_ok_and(|st| st.success())
    };
    let log = rt.w.path("watcher.out");
    assert!(as_victim(&["create", "--bundle", &s(&b), "cve"], &log));
    assert!(as_victim(&["start", "cve"], &rt.w.path("start.out")));
    // The attack: a process in the container execs the #!/proc/self/exe script, so the
    // runtime's own binary runs inside the container, where the watcher grabs it.
    for _ in 0..20 {
        as_victim(&["exec", "cve", "/evil.sh"], &rt.w.path("exec.out"));
        if std::fs::read_to_string(&log).unwrap().contains("caught") {
            break;
        }
    }
    let finished = |r: &str| {
        r.contains("caught nothing") || r.contains("write refused") || r.contains("WROTE")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !finished(&std::fs::read_to_string(&log).unwrap()) && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let report = std::fs::read_to_string(&log).unwrap();
    let _ = as_victim(&["delete", "--force", "cve"], &rt.w.path("delete.out"));
    // (If the attack worked the copy cannot delete: the runtime under test can.)
    let _ = rt.run(&["delete", "--force", "cve"]);
    assert!(finished(&report), "the probe did not finish: {report}");
    assert!(!report.contains("WROTE"), "{report}");
    // Whatever it caught is sealed: the binary seen through a read-only overlay mounted
    // nowhere (writes refused, EROFS), or the anonymous memfd copy where that mount is not
    // available; never the file on the host.
    assert!(!report.contains(&s(&victim)), "{report}");
    assert!(
        report.contains("caught nothing")
            || report.contains("memfd")
            || report.contains("write refused: Read-only file system"),
        "{report}"
    );
    assert_eq!(hash(&victim), before, "the runtime's binary changed");
}

/// The busybox test image as a docker-archive that wharf wrote (what Docker and Podman
/// load).
fn busybox_docker_archive(w: &Wharf) -> PathBuf {
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let archive = w.path("busybox-docker.tar");
    w.ok(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        &s(&archive),
        "busybox",
    ]);
    archive
}

/// A private podman for `w` (its own storage and run root, cgroupfs, no events), with
/// `runtime`: exit code, stdout, stderr.
fn podman(w: &Wharf, runtime: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new("podman")
        .arg("--root")
        .arg(w.path("podman-root"))
        .arg("--runroot")
        .arg(w.path("podman-run"))
        .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
        .args(["--events-backend", "none", "--runtime", runtime])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn podman_runs_native_images_through_wharf_runtime_as_through_runc() {
    let _serial = serial();
    let w = Wharf::new();
    let archive = busybox_docker_archive(&w);
    let podman = |runtime: &str, args: &[&str]| podman(&w, runtime, args);
    let load = podman("runc", &["load", "-i", &s(&archive)]);
    assert_eq!(load.0, Some(0), "{}", load.2);
    let image = "localhost/busybox:latest";
    let vol = w.path("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("f"), "from the host\n").unwrap();
    let volume = format!("{}:/data", s(&vol));
    let run_args = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", "--rm", "--pull", "never", "--network", "none"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(
            [
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ]
            .map(String::from),
        );
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let mut args = run_args(&["-e", "FOO=bar", "-u", "1000:1000", "-v"]);
    args.push(volume.clone());
    args.extend(
        [image, "sh", "-c", "echo $FOO; cat /data/f; id; cat /proc/self/status | grep -E '^(CapEff|NoNewPrivs|Seccomp):'; exit 5"]
            .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ours = podman(runtime_bin(), &args);
    let theirs = podman("runc", &args);
    assert_eq!(ours.0, Some(5), "wharf-runtime: {}", ours.2);
    assert_eq!(theirs.0, Some(5), "runc: {}", theirs.2);
    assert_eq!(ours.1, theirs.1, "podman with wharf-runtime vs runc");
    assert!(
        ours.1.starts_with("bar\nfrom the host\nuid=1000(app)"),
        "{}",
        ours.1
    );

    // -t: conmon's console socket gets the terminal, opened in the container's own devpts.
    let mut t = run_args(&["-t"]);
    t.extend([image, "sh", "-c", "tty; echo done"].map(String::from));
    let t: Vec<&str> = t.iter().map(String::as_str).collect();
    let ours = podman(runtime_bin(), &t);
    let theirs = podman("runc", &t);
    assert_eq!(ours.0, Some(0), "wharf-runtime -t: {}", ours.2);
    assert_eq!(ours.1, theirs.1, "podman -t with wharf-runtime vs runc");
    assert!(ours.1.starts_with("/dev/pts/0"), "{}", ours.1);

    // Detached, exec, pause/unpause, stop, rm.
    let mut d = run_args(&[]);
    d.retain(|a| a != "--rm");
    d.insert(1, "-d".into());
    d.extend([image, "sleep", "60"].map(String::from));
    let d: Vec<&str> = d.iter().map(String::as_str).collect();
    let (code, id, err) = podman(runtime_bin(), &d);
    assert_eq!(code, Some(0), "{err}");
    let id = id.trim().to_string();
    let (code, out, err) = podman(runtime_bin(), &["exec", &id, "sh", "-c", "echo in; id -u"]);
    assert_eq!((code, out.as_str()), (Some(0), "in\n0\n"), "{err}");
    assert_eq!(podman(runtime_bin(), &["pause", &id]).0, Some(0));
    let (_, st, _) = podman(
        runtime_bin(),
        &["inspect", "--format", "{{.State.Status}}", &id],
    );
    assert_eq!(st.trim(), "paused");
    assert_eq!(podman(runtime_bin(), &["unpause", &id]).0, Some(0));
    assert_eq!(podman(runtime_bin(), &["stop", "-t", "1", &id]).0, Some(0));
    let (code, _, err) = podman(runtime_bin(), &["rm", &id]);
    assert_eq!(code, Some(0), "{err}");
    let (_, left, _) = podman(runtime_bin(), &["ps", "-aq"]);
    assert!(left.trim().is_empty(), "{left}");
}

/// A private dockerd (its own data root, exec root, socket; no iptables, no bridge), with
/// wharf-runtime added as the runtime `wharf`; stopped when dropped.
pub(crate) struct Dockerd {
    child: std::process::Child,
    sock: PathBuf,
}

impl Dockerd {
    pub(crate) fn start(w: &Wharf) -> Dockerd {
        let sock = w.path("docker.sock");
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(w.path("docker-data"))
            .arg("--exec-root")
            .arg(w.path("docker-exec"))
            .arg("--pidfile")
            .arg(w.path("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", s(&sock)))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--storage-driver", "vfs"])
            .arg("--add-runtime")
            .arg(format!("wharf={}", runtime_bin()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting dockerd");
        let d = Dockerd { child, sock };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while d.docker(&["version"]).0 != Some(0) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        d
    }

    pub(crate) fn docker(&self, args: &[&str]) -> (Option<i32>, String, String) {
        // Debian's client, of the daemon's version.
        let out = Command::new("/usr/bin/docker")
            .arg("-H")
            .arg(format!("unix://{}", s(&self.sock)))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM: dockerd stops its containerd and unmounts what it mounted.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

#[test]
fn docker_runs_native_images_through_wharf_runtime_as_through_runc() {
    let _serial = serial();
    let w = Wharf::new();
    let archive = busybox_docker_archive(&w);
    let d = Dockerd::start(&w);
    let (code, _, err) = d.docker(&["load", "-i", &s(&archive)]);
    assert_eq!(code, Some(0), "docker load: {err}");
    let script =
        "echo hello; id; cat /proc/self/status | grep -E '^(CapEff|NoNewPrivs|Seccomp):'; exit 6";
    let run = |runtime: &str| {
        d.docker(&[
            "run",
            "--rm",
            "--runtime",
            runtime,
            "--network",
            "none",
            "-e",
            "A=b",
            "-u",
            "1000:1000",
            "busybox:latest",
            "sh",
            "-c",
            script,
        ])
    };
    let ours = run("wharf");
    let theirs = run("runc");
    assert_eq!(ours.0, Some(6), "wharf-runtime: {}", ours.2);
    assert_eq!(theirs.0, Some(6), "runc: {}", theirs.2);
    assert_eq!(ours.1, theirs.1, "docker with wharf-runtime vs runc");
    // Detached: exec, top, stats, stop (graceful then killed), rm.
    let (code, id, err) = d.docker(&[
        "run",
        "-d",
        "--runtime",
        "wharf",
        "--network",
        "none",
        "busybox:latest",
        "sleep",
        "60",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let id = id.trim().to_string();
    let (code, out, err) = d.docker(&["exec", &id, "sh", "-c", "echo in; id -u"]);
    assert_eq!((code, out.as_str()), (Some(0), "in\n0\n"), "{err}");
    let (code, top, err) = d.docker(&["top", &id]);
    assert_eq!(code, Some(0), "{err}");
    assert!(top.contains("sleep 60"), "{top}");
    let (code, stats, err) = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.PIDs}} {{.MemUsage}}",
        &id,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(stats.starts_with("1 "), "{stats}");
    let (code, _, err) = d.docker(&["stop", "-t", "1", &id]);
    assert_eq!(code, Some(0), "{err}");
    let (_, exit, _) = d.docker(&["inspect", "--format", "{{.State.ExitCode}}", &id]);
    assert_eq!(exit.trim(), "137");
    let (code, _, err) = d.docker(&["rm", &id]);
    assert_eq!(code, Some(0), "{err}");
    // Wasm under Docker 20.10, which accepts only Linux platforms: an ordinary linux/amd64
    // image holding a module; wharf-runtime tells it is wasm by the entrypoint's magic.
    let module = std::fs::read(wasm("hello.wasm")).unwrap();
    let dir = w.path("hc-layout");
    layout::write_image(
        &dir,
        "hc",
        &[layout::tar(&[(
            "app.wasm",
            tar::EntryType::Regular,
            "",
            &module,
        )])],
    );
    w.ok(&["load", "-i", &s(&dir)]);
    let hc = w.path("hc-docker.tar");
    w.ok(&["save", "--format", "docker-archive", "-o", &s(&hc), "hc"]);
    let (code, _, err) = d.docker(&["load", "-i", &s(&hc)]);
    assert_eq!(code, Some(0), "docker load: {err}");
    let (code, out, err) = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "wharf",
        "--network",
        "none",
        "hc:latest",
        "/app.wasm",
        "from-docker",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("hello from wasm\narg[0]=/app.wasm\narg[1]=from-docker\n"),
        "{out}"
    );
}

#[test]
fn wasm_bundles_run_in_place_under_the_runtime_containerd_and_podman() {
    let _serial = serial();
    let rt = Rt::new();
    // A bundle whose entrypoint holds wasm magic: the small runtime hands it to a sealed
    // copy of wharf, whose engine runs the module in the container's first process.
    let b = rt.bundle("b-wasm", &["/app.wasm", "x"]);
    std::fs::copy(wasm("hello.wasm"), b.join("rootfs/app.wasm")).unwrap();
    let out = rt.run(&["run", "--bundle", &s(&b), "w1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("hello from wasm\narg[0]=/app.wasm\narg[1]=x\n"),
        "{text}"
    );
    rt.assert_gone("w1", &b);
    // The module was compiled once, into the runtime's cache (by a helper, before the
    // container was made); a second container gets the compiled code from there.
    let cached = |root: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(root.join(".cache/wasm"))
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect()
    };
    let entries = cached(&rt.root());
    assert_eq!(entries.len(), 1, "{entries:?}");
    let modified = std::fs::metadata(&entries[0]).unwrap().modified().unwrap();
    let again = rt.run(&["run", "--bundle", &s(&b), "w1b"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("arg[1]=x\n"));
    assert_eq!(cached(&rt.root()), entries);
    assert_eq!(
        std::fs::metadata(&entries[0]).unwrap().modified().unwrap(),
        modified,
        "compiled again"
    );
    // A WASI 0.3 component in its place: async `run`, stdio as streams.
    std::fs::copy(wasm("p3-command.wasm"), b.join("rootfs/app.wasm")).unwrap();
    let p3 = rt.run(&["run", "--bundle", &s(&b), "w1c"]);
    assert_eq!(
        p3.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&p3.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&p3.stdout),
        "hello from a WASI 0.3 component\narg[0]=/app.wasm\narg[1]=x\n"
    );
    rt.assert_gone("w1c", &b);
    // The guest's own exit code; a detached wasm container is stopped by SIGTERM at its
    // next epoch check (143); exec refuses it with the reason.
    let exit42 = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
            (memory (export "memory") 1) (func (export "_start") (call $e (i32.const 42))))"#,
    )
    .unwrap();
    std::fs::write(b.join("rootfs/app.wasm"), &exit42).unwrap();
    assert_eq!(
        rt.run(&["run", "--bundle", &s(&b), "w2"]).status.code(),
        Some(42)
    );
    let spin = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#,
    )
    .unwrap();
    std::fs::write(b.join("rootfs/app.wasm"), &spin).unwrap();
    rt.ok(&["create", "--bundle", &s(&b), "w3"]);
    rt.ok(&["start", "w3"]);
    assert_eq!(rt.state("w3")["status"], "running");
    let err = rt.fails(&["exec", "w3", "sh"]);
    assert!(err.contains("runs WebAssembly"), "{err}");
    let pid = rt.state("w3")["pid"].as_i64().unwrap();
    // The engine runs from a sealed executable: nothing in a container that can see this
    // process (a pod sharing its pid namespace) can rewrite the host's wharf through it.
    let write = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"));
    assert!(
        write.is_err(),
        "/proc/{pid}/exe of the engine opens for writing"
    );
    rt.ok(&["kill", "w3", "TERM"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pid_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!pid_alive(pid), "SIGTERM did not stop the guest");
    rt.ok(&["delete", "w3"]);
    rt.assert_gone("w3", &b);

    // A compat image (the module at /app.wasm in a tar layer) through containerd and Podman.
    let w = &rt.w;
    w.ok(&["package", &wasm("hello.wasm"), "--compat", "-t", "hc"]);
    let oci = w.path("hc-oci.tar");
    w.ok(&["save", "-o", &s(&oci), "hc"]);
    let cd = Containerd::start(w);
    cd.ctr_ok(&["images", "import", &s(&oci)]);
    let out = cd.ctr_ok(&[
        "run",
        "--rm",
        "--runc-binary",
        runtime_bin(),
        "docker.io/library/hc:latest",
        "wc1",
    ]);
    assert!(
        out.starts_with("hello from wasm\narg[0]=/app.wasm\n"),
        "{out}"
    );
    drop(cd);
    let docker_archive = w.path("hc-docker.tar");
    w.ok(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        &s(&docker_archive),
        "hc",
    ]);
    let podman = |args: &[&str]| podman(w, runtime_bin(), args);
    let (code, _, err) = podman(&["load", "-i", &s(&docker_archive)]);
    assert_eq!(code, Some(0), "{err}");
    let out = podman(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "localhost/hc:latest",
    ]);
    let (code, text, err) = out;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.starts_with("hello from wasm\narg[0]=/app.wasm\n"),
        "{text}"
    );
}

#[test]
fn sysctls_oom_score_and_domainname_are_honoured_and_the_rest_refused() {
    let _serial = serial();
    let rt = Rt::new();
    let b = rt.bundle(
        "b-knobs",
        &["sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/self/oom_score_adj /proc/sys/kernel/domainname"],
    );
    edit_config(&b, |c| {
        c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_unprivileged_port_start": "0"});
        c["process"]["oomScoreAdj"] = serde_json::json!(500);
        c["domainname"] = serde_json::json!("wharf.test");
    });
    let out = rt.run(&["run", "--bundle", &s(&b), "k1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n500\nwharf.test\n");
    // A sysctl name that tries to leave /proc/sys; a device path that is not absolute; a
    // propagation that is none.
    edit_config(&b, |c| {
        c["linux"]["sysctl"] = serde_json::json!({"../../etc/passwd": "x"})
    });
    let err = rt.fails(&["run", "--bundle", &s(&b), "k2"]);
    assert!(err.contains("not a sysctl name"), "{err}");
    rt.assert_gone("k2", &b);
    edit_config(&b, |c| {
        c["linux"]["sysctl"] = serde_json::json!({});
        c["linux"]["devices"] =
            serde_json::json!([{"path": "dev/fuse", "type": "c", "major": 10, "minor": 229}]);
    });
    let err = rt.fails(&["create", "--bundle", &s(&b), "k3"]);
    assert!(
        err.contains("linux.devices") && err.contains("not an absolute path"),
        "{err}"
    );
    rt.assert_gone("k3", &b);
    edit_config(&b, |c| {
        c["linux"]["devices"] = serde_json::json!([]);
        c["linux"]["rootfsPropagation"] = serde_json::json!("sideways");
    });
    let err = rt.fails(&["create", "--bundle", &s(&b), "k4"]);
    assert!(err.contains("rootfsPropagation \"sideways\""), "{err}");
    rt.assert_gone("k4", &b);
}

/// What runtime-tools checks and runc does, on this runtime's own tests too: extra device
/// nodes (made with their mode and owner, and usable where a device rule allows), the
/// root's propagation, a user namespace with the spec's maps, and the capability sets as
/// given (ambient ones survive a non-root exec).
#[test]
fn devices_propagation_user_namespaces_and_capability_sets_are_as_the_spec_says() {
    let _serial = serial();
    let rt = Rt::new();
    let run = |id: &str, script: &str, edit: &dyn Fn(&mut serde_json::Value)| -> Vec<String> {
        let b = rt.bundle(&format!("b-{id}"), &["sh", "-c", script]);
        edit_config(&b, |c| edit(c));
        // A user namespace's root (host uid 100000) must reach the bundle, as under runc.
        for d in [b.as_path(), b.parent().unwrap()] {
            std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        let out = rt.run(&["run", "--bundle", &s(&b), id]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        rt.assert_gone(id, &b);
        stdout.lines().map(|l| l.trim().to_string()).collect()
    };
    let devices = serde_json::json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640,
         "uid": 0, "gid": 0},
        {"path": "/dev/extra/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600,
         "uid": 1000, "gid": 1000}
    ]);
    // Made with their mode and owner, usable through the devices cgroup; the root shared.
    let lines = run(
        "d1",
        "stat -c '%t:%T %a %u:%g' /dev/fuse /dev/extra/kmsg; head -c 0 /dev/fuse && echo opened; \
         awk '$5 == \"/\" && / shared:/' /proc/self/mountinfo | wc -l",
        &|c| {
            c["linux"]["devices"] = devices.clone();
            // As under runc, a node is made, not allowed: a rule allows it.
            c["linux"]["resources"]["devices"] = serde_json::json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
            ]);
            c["linux"]["rootfsPropagation"] = serde_json::json!("shared");
        },
    );
    assert_eq!(lines, ["a:e5 640 0:0", "1:b 600 1000:1000", "opened", "1"]);
    // A shared root's mounts are peers of the host's: tearing down the old root must not
    // unmount the host's (runc makes it a slave first; wharf once did not).
    let shared = SharedMount::new(rt.w.path("host-shared"));
    run("d2", "true", &|c| {
        c["linux"]["rootfsPropagation"] = serde_json::json!("rshared");
    });
    assert!(shared.canary_mounted(), "the host lost a mount");
    drop(shared);
    // In a user namespace with the spec's maps, as a non-root user whose capability sets
    // are all CAP_NET_BIND_SERVICE (bit 10): the ambient one keeps it across the exec.
    let lines = run(
        "u1",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c '%t:%T' /dev/fuse; \
         grep -E '^Cap(Inh|Prm|Eff|Amb)' /proc/self/status",
        &|c| {
            // (Only a node the host has: the host's is what gets bound.)
            c["linux"]["devices"] = serde_json::json!([devices[0].clone()]);
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.push(serde_json::json!({"type": "user"}));
            for maps in ["uidMappings", "gidMappings"] {
                c["linux"][maps] =
                    serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            }
            c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
            let net = serde_json::json!(["CAP_NET_BIND_SERVICE"]);
            for set in [
                "bounding",
                "effective",
                "permitted",
                "inheritable",
                "ambient",
            ] {
                c["process"]["capabilities"][set] = net.clone();
            }
        },
    );
    let maps: Vec<String> = lines[..2]
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(maps, ["0 100000 65536", "0 100000 65536"], "{lines:?}");
    // No node can be made in a user namespace: the host's is bound instead.
    assert_eq!(lines[2..4], ["1000", "a:e5"], "{lines:?}");
    for (line, set) in lines[4..]
        .iter()
        .zip(["CapInh", "CapPrm", "CapEff", "CapAmb"])
    {
        assert_eq!(*line, format!("{set}:\t0000000000000400"), "{lines:?}");
    }
    assert_eq!(lines.len(), 8, "{lines:?}");
}

/// Host-global sysctls are the host's: a bundle asking for one is refused and the host's
/// value stays (runc's rule: only the IPC namespace's and, with a network namespace that is
/// not the host's, `net.*`).
#[test]
fn sysctls_outside_the_containers_namespaces_are_refused() {
    let _serial = serial();
    let rt = Rt::new();
    let b = rt.bundle("b-sysctl", &["true"]);
    let host = "/proc/sys/kernel/printk_ratelimit_burst";
    let before = std::fs::read_to_string(host).unwrap();
    let asked = (before.trim().parse::<u32>().unwrap() + 3).to_string();
    edit_config(&b, |c| {
        c["linux"]["sysctl"] = serde_json::json!({"kernel.printk_ratelimit_burst": asked})
    });
    let err = rt.fails(&["run", "--bundle", &s(&b), "h1"]);
    assert!(
        err.contains("kernel.printk_ratelimit_burst") && err.contains("would change the host"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(host).unwrap(), before);
    rt.assert_gone("h1", &b);
    // net.* in the host's network namespace (the spec has no network namespace).
    edit_config(&b, |c| {
        c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_unprivileged_port_start": "0"});
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
    });
    let err = rt.fails(&["run", "--bundle", &s(&b), "h2"]);
    assert!(err.contains("shares the host's"), "{err}");
    rt.assert_gone("h2", &b);
    // The IPC namespace's own: allowed, and seen inside.
    edit_config(&b, |c| {
        c["linux"]["sysctl"] = serde_json::json!({"kernel.shmmni": "1234"});
        c["process"]["args"] = serde_json::json!(["cat", "/proc/sys/kernel/shmmni"]);
    });
    assert_eq!(rt.ok(&["run", "--bundle", &s(&b), "h3"]), "1234\n");
}

/// Until `start`, a created container's first process is the runtime (its memory, its host
/// environment, its descriptors: the log file, the exec FIFO). A hostile sibling sharing its
/// pid namespace (a pod's) reaches none of it; once started, the workload is an ordinary
/// process the same probe can read (the positive control: the probe works).
#[test]
fn a_created_container_cannot_be_hijacked_by_a_sibling_in_its_pid_namespace() {
    let _serial = serial();
    let rt = Rt::new();
    let a = rt.bundle("b-sib-a", &["sleep", "60"]);
    static_probe("sibling-prober", &a.join("rootfs/prober"));
    rt.ok(&["create", "--bundle", &s(&a), "sib-a"]);
    rt.ok(&["start", "sib-a"]);
    let a_pid = rt.state("sib-a")["pid"].as_i64().unwrap();
    let b = rt.bundle("b-sib-b", &["sleep", "60"]);
    edit_config(&b, |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "pid" {
                n["path"] = serde_json::json!(format!("/proc/{a_pid}/ns/pid"));
            }
        }
    });
    // Created as an engine would: a log file, and something of the host's in the runtime's
    // environment.
    let log = rt.w.path("sib-b.log");
    let status = rt
        .cmd(&["create", "--bundle", &s(&b), "sib-b"])
        .arg("--log") // (after the verb: runc's global flags are accepted there too)
        .arg(&log)
        .env("WHARF_TEST_HOST_SECRET", "host-secret-42")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(rt.w.path("sib-b.out")).unwrap())
        .stderr(std::fs::File::create(rt.w.path("sib-b.err")).unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(rt.w.path("sib-b.err")).unwrap()
    );
    let b_host_pid = rt.state("sib-b")["pid"].as_i64().unwrap();
    // B's pid as the shared namespace numbers it.
    let status = std::fs::read_to_string(format!("/proc/{b_host_pid}/status")).unwrap();
    let inner = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();
    let probe = rt.ok(&["exec", "sib-a", "/prober", &inner]);
    assert_eq!(probe, "done\n", "the sibling reached the created process");
    assert_eq!(rt.state("sib-b")["status"], "created");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.contains("sibling was here"), "{logged}");
    // Started: the workload is an ordinary process, and the probe does read it.
    rt.ok(&["start", "sib-b"]);
    let mut seen = String::new();
    for _ in 0..100 {
        seen = rt.ok(&["exec", "sib-a", "/prober", &inner]);
        if seen.contains("environ read:") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen.contains("environ read: PATH="), "{seen}");
    assert!(!seen.contains("host-secret-42"), "{seen}");
    for id in ["sib-b", "sib-a"] {
        rt.ok(&["delete", "--force", id]);
    }
}

/// Each container gets a session keyring of its own (runc's `_ses.<id>`), so a key added
/// inside (no seccomp profile stops keyctl in a bare bundle) is not linked into the host's
/// session keyring; `--no-new-keyring` keeps the caller's (the positive control).
#[test]
fn containers_get_a_session_keyring_of_their_own() {
    let _serial = serial();
    let rt = Rt::new();
    let probe = rt.w.path("keyring-probe");
    static_probe("keyring-probe", &probe);
    let b = rt.bundle("b-keys", &["/probe", "add", "wharf-test-own"]);
    std::fs::copy(&probe, b.join("rootfs/probe")).unwrap();
    Keyrings::of(&probe, &mut rt.cmd(&["run", "--bundle", &s(&b), "keys1"])).assert_own();
    // Exec'd processes join the container's keyring, not the host's.
    let b2 = rt.bundle("b-keys2", &["sleep", "30"]);
    std::fs::copy(&probe, b2.join("rootfs/probe")).unwrap();
    rt.ok(&["create", "--bundle", &s(&b2), "keys2"]);
    rt.ok(&["start", "keys2"]);
    let exec = rt.cmd(&["exec", "keys2", "/probe", "add", "wharf-test-exec"]);
    Keyrings::of(&probe, &mut { exec }).assert_own();
    rt.ok(&["delete", "--force", "keys2"]);
    // --no-new-keyring: the caller's session keyring, which the key then lands in.
    let control = Keyrings::of(
        &probe,
        &mut rt.cmd(&["run", "--no-new-keyring", "--bundle", &s(&b), "keys3"]),
    );
    assert_eq!(control.inside, control.host, "{control:?}");
    assert!(control.host_linked.contains(&control.key), "{control:?}");
}

/// Hooks must name an absolute path (the runtime spec): a relative one would run whatever
/// the caller's directory holds under that name; a bare name whatever PATH finds.
#[test]
fn hooks_with_relative_paths_are_refused() {
    let _serial = serial();
    let rt = Rt::new();
    let b = rt.bundle("b-hooks", &["true"]);
    for path in ["hook.sh", "./hook.sh", "true"] {
        edit_config(&b, |c| {
            c["hooks"] = serde_json::json!({"prestart": [{"path": path}]});
        });
        let err = rt.fails(&["create", "--bundle", &s(&b), "hk"]);
        assert!(err.contains("not absolute"), "{path}: {err}");
        rt.assert_gone("hk", &b);
    }
}

/// A spec's own seccomp profile (per-rule actions, errno values, a condition on an
/// argument) does what it does under runc, on the same bundle.
#[test]
fn a_spec_seccomp_profile_behaves_as_under_runc() {
    let _serial = serial();
    let rt = Rt::new();
    let b = rt.bundle(
        "b-seccomp",
        &[
            "sh",
            "-c",
            "mkdir /tmp/d; echo mkdir=$?; kill -0 $$; echo k0=$?; kill -9 $$; echo k9=$?; \
             grep Seccomp: /proc/self/status",
        ],
    );
    edit_config(&b, |c| {
        c["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["no_such_syscall"], "action": "SCMP_ACT_KILL"}
            ]
        });
    });
    let ours = rt.run(&["run", "--bundle", &s(&b), "sc1"]);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (o, e) = (
        rt.w.path(&format!("runc-out-{n}")),
        rt.w.path(&format!("runc-err-{n}")),
    );
    let status = Command::new("runc")
        .arg("--root")
        .arg(rt.w.path("runc-root"))
        .args(["run", "--bundle", &s(&b), "sc-runc"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap();
    let theirs = (
        std::fs::read_to_string(&o).unwrap(),
        std::fs::read_to_string(&e).unwrap(),
    );
    assert!(status.success(), "runc: {}", theirs.1);
    let ours = (
        String::from_utf8_lossy(&ours.stdout).into_owned(),
        String::from_utf8_lossy(&ours.stderr).into_owned(),
    );
    assert_eq!(ours, theirs);
    // EACCES from the rule's errnoRet, EPERM for kill -9 only, the filter in place.
    assert_eq!(ours.0, "mkdir=1\nk0=0\nk9=1\nSeccomp:\t2\n", "{}", ours.1);
    assert!(ours.1.contains("Permission denied"), "{}", ours.1);
    assert!(ours.1.contains("Operation not permitted"), "{}", ours.1);
    rt.assert_gone("sc1", &b);
}

/// What a container sees of itself, one fact a line: which namespaces are its own, its
/// capabilities, seccomp and no_new_privs, ids, directory, host name, environment, open-file
/// limit, cgroup limits, and every mount (point, ro/rw, file system type).
const PROBE: &str = r#"
for n in cgroup ipc mnt net pid user uts; do echo "ns $n $(readlink /proc/self/ns/$n)"; done
grep -E '^(Cap|Seccomp|NoNewPrivs|Uid|Gid|Groups)' /proc/self/status
echo "cwd $(pwd)"; echo "hostname $(hostname)"; echo "nofile $(ulimit -n)"
env | sort | sed 's/^/env /'
echo "memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
echo "pids $(cat /sys/fs/cgroup/pids/pids.max)"
while read -r id parent dev root point opts rest; do
  set -- ${rest#*- }
  echo "mount $point ${opts%%,*} $1"
done < /proc/self/mountinfo
"#;

/// The probe's lines with the namespace ids replaced by whether each is the host's.
fn probe_facts(out: &str) -> Vec<String> {
    let host = |n: &str| std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
    let mut facts: Vec<String> = out
        .lines()
        .map(
            |l| match l.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["ns", n, id] => {
                    let shared = Path::new(id) == host(n);
                    format!("ns {n} {}", if shared { "host's" } else { "own" })
                }
                _ => l.to_string(),
            },
        )
        .collect();
    facts.sort();
    facts
}

#[test]
fn wharf_run_and_wharf_runtime_make_the_same_container() {
    let _serial = serial();
    let rt = Rt {
        w: crate::native::busybox(),
    };
    let opts = [
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cap-add",
        "SYS_PTRACE",
        "--cap-drop",
        "CHOWN",
        "--hostname",
        "probe",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
    ];
    let mut run = vec!["run", "--rm"];
    run.extend(opts);
    run.extend(["busybox", "sh", "-c", PROBE]);
    let ours = rt.w.ok(&run);
    // The spec `wharf run` runs, as a bundle for wharf-runtime (umoci's unpacking of the
    // same image as its root filesystem).
    let mut print = vec!["run", "--print-spec"];
    print.extend(opts);
    print.extend(["busybox", "sh", "-c", PROBE]);
    let spec = rt.w.ok(&print);
    let b = rt.bundle("b-same", &["true"]);
    std::fs::write(b.join("config.json"), spec).unwrap();
    let theirs = rt.ok(&["run", "--bundle", &s(&b), "same1"]);
    let (ours, theirs) = (probe_facts(&ours), probe_facts(&theirs));
    // What only `wharf run` adds: the files naming the host and its resolver, and the
    // root file system's kind (an overlay of the image's layers; the bundle's directory).
    let only_run = |l: &&String| {
        ["/etc/hosts ", "/etc/hostname ", "/etc/resolv.conf "]
            .iter()
            .any(|p| l.starts_with(&format!("mount {p}")))
            || l.starts_with("mount / ")
    };
    let ours_common: Vec<&String> = ours.iter().filter(|l| !only_run(l)).collect();
    let theirs_common: Vec<&String> = theirs.iter().filter(|l| !only_run(l)).collect();
    assert_eq!(
        ours_common, theirs_common,
        "wharf run saw:\n{ours:#?}\nwharf-runtime saw:\n{theirs:#?}"
    );
    // And the facts are the ones asked for.
    for fact in [
        "memory 67108864",
        "pids 50",
        "hostname probe",
        "cwd /tmp",
        "env X=1",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "ns net own",
        "ns pid own",
        "ns mnt own",
        "ns cgroup own",
        "ns user host's",
    ] {
        assert!(ours.iter().any(|l| l == fact), "{fact} not in {ours:#?}");
    }
    assert!(
        ours.iter().any(|l| l.starts_with("Uid:\t1000")),
        "{ours:#?}"
    );
    assert!(
        ours.iter().any(|l| l.starts_with("mount /etc/hosts ")),
        "{ours:#?}"
    );
    rt.assert_gone("same1", &b);
}
