//! `containerd-shim-wharf-v1` under Debian's containerd 1.6 (a private config, root, state and
//! socket per test): `ctr run --runtime io.containerd.wharf.v1` of native and wasm images, the
//! CRI path the kubelet takes (a pod mixing both kinds, driven by a CRI client from PyPI), and
//! a killed shim.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::native::serial;

const RUNTIME: &str = "io.containerd.wharf.v1";
const BUSYBOX: &str = "docker.io/library/busybox:latest";

/// The shim, built beside wharf and wharf-runtime (scripts/test.sh builds it).
fn shim_bin() -> PathBuf {
    let p = bin_dir().join("containerd-shim-wharf-v1");
    assert!(
        p.is_file(),
        "{} is missing: build it with `cargo build -p containerd-shim-wharf` (scripts/test.sh does)",
        p.display()
    );
    p
}

fn ctr_in(cd: &Containerd, namespace: &str, args: &[&str]) -> Output {
    Command::new("ctr")
        .arg("--address")
        .arg(cd.sock())
        .args(["--namespace", namespace])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A compat wasm image (the module at /app.wasm in a tar layer, which containerd 1.6 can
/// unpack), imported into `namespace` as docker.io/library/NAME:latest.
fn import_wasm(w: &Wharf, cd: &Containerd, namespace: &str, module: &Path, name: &str) {
    w.ok(&["package", &s(module), "--compat", "-t", name]);
    let archive = w.path(&format!("{name}.tar"));
    w.ok(&["save", "-o", &s(&archive), name]);
    let (code, _, err) = text(&ctr_in(cd, namespace, &["images", "import", &s(&archive)]));
    assert_eq!(code, Some(0), "import {name}: {err}");
}

fn import_busybox(cd: &Containerd, namespace: &str) {
    for archive in ["busybox-docker.tar", "pause-docker.tar"] {
        let path = busybox_images().join(archive);
        let (code, _, err) = text(&ctr_in(cd, namespace, &["images", "import", &s(&path)]));
        assert_eq!(code, Some(0), "import {archive}: {err}");
    }
}

fn wait_until(what: &str, seconds: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Processes whose command line mentions `needle` and `program` (shims carry containerd's
/// socket path): their pids and command lines.
fn processes_mentioning(needle: &str, program: &str) -> Vec<(i64, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if line.contains(needle) && line.contains(program) {
            found.push((pid, line));
        }
    }
    found
}

/// The socket a shim serves for `group` (a container, or a pod): as containerd-shim names it,
/// `/run/containerd/s/` and the sha256 of containerd's address, namespace and group.
fn shim_socket(cd: &Containerd, namespace: &str, group: &str) -> PathBuf {
    use sha2::Digest;
    let key = cd.sock().join(namespace).join(group);
    let hash = sha2::Sha256::digest(key.to_string_lossy().as_bytes());
    Path::new("/run/containerd/s").join(hex::encode(hash))
}

/// Nothing of the test's left: no shim or its socket, no runtime state, no cgroup, no mount
/// under its directory. `groups`: the shims' groups (containers, or pods under CRI).
fn assert_nothing_left(
    w: &Wharf,
    cd: &Containerd,
    namespace: &str,
    groups: &[String],
    ids: &[String],
) {
    let runtime_root = Path::new("/run/containerd/wharf").join(namespace);
    wait_until("the shims to exit", 10, || {
        processes_mentioning(&s(cd.sock()), "containerd-shim-wharf-v1").is_empty()
    });
    for g in groups {
        let socket = shim_socket(cd, namespace, g);
        assert!(!socket.exists(), "shim socket {} left", socket.display());
    }
    for id in ids {
        assert!(
            !runtime_root.join(id).exists(),
            "runtime state of {id} left in {}",
            runtime_root.display()
        );
        for controller in ["memory", "pids", "cpu", "freezer"] {
            let leftovers: Vec<PathBuf> = ["k8s.io", "wharf", "default"]
                .iter()
                .map(|p| {
                    Path::new("/sys/fs/cgroup")
                        .join(controller)
                        .join(p)
                        .join(id)
                })
                .filter(|d| d.exists())
                .collect();
            assert!(leftovers.is_empty(), "cgroups left: {leftovers:?}");
        }
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let ours: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&s(w.dir.path())))
        .collect();
    assert!(ours.is_empty(), "mounts left: {ours:?}");
}

#[test]
fn ctr_runs_native_and_wasm_images_through_the_wharf_shim() {
    let _serial = serial();
    shim_bin();
    let w = Wharf::new();
    let cd = Containerd::start(&w);
    let ns = cd.namespace().to_owned();
    import_busybox(&cd, &ns);
    import_wasm(&w, &cd, &ns, Path::new(&wasm("hello.wasm")), "wharf-hello");
    import_wasm(&w, &cd, &ns, Path::new(&wasm("exit42.wat")), "wharf-exit42");
    import_wasm(
        &w,
        &cd,
        &ns,
        Path::new(&wasm("p3-command.wasm")),
        "wharf-p3",
    );
    // Every event the shim publishes, as containerd forwards them.
    let events_file = w.path("events.txt");
    let mut events = Command::new("ctr")
        .arg("--address")
        .arg(cd.sock())
        .args(["--namespace", &ns, "events"])
        .stdout(std::fs::File::create(&events_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("ctr events to subscribe", 10, || {
        std::fs::read_to_string(format!("/proc/{}/stat", events.id())).is_ok()
    });
    std::thread::sleep(Duration::from_millis(300));
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--runtime", RUNTIME];
        all.extend(args);
        text(&cd.ctr(&all))
    };

    // Output and the workload's own exit codes, native and wasm.
    let script = "echo hello; id -u; id -G; cat /proc/1/cmdline | tr '\\0' ' '; echo; \
                  grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; exit 3";
    let (code, out, err) = run(&[BUSYBOX, "n1", "sh", "-c", script]);
    assert_eq!(code, Some(3), "{err}");
    assert!(out.starts_with("hello\n0\n"), "{out}");
    // The same under containerd's runc shim: the same output, the same code.
    let runc = text(&cd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        BUSYBOX,
        "n1-runc",
        "sh",
        "-c",
        script,
    ]));
    assert_eq!(
        (runc.0, runc.1.as_str()),
        (code, out.as_str()),
        "wharf vs runc shim"
    );
    let (code, _, err) = run(&[BUSYBOX, "n2", "sh", "-c", "no-such-command"]);
    assert_eq!(code, Some(127), "{err}");
    let runc = text(&cd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        BUSYBOX,
        "n2-runc",
        "sh",
        "-c",
        "no-such-command",
    ]));
    assert_eq!(runc.0, code, "wharf vs runc shim");
    // stdin: relayed from ctr's FIFO until the client closes it (CloseIO): `wc` sees the end.
    let mut child = Command::new("ctr")
        .arg("--address")
        .arg(cd.sock())
        .args(["--namespace", &ns, "run", "--rm", "--runtime", RUNTIME])
        .args([BUSYBOX, "in1", "sh", "-c", "wc -l; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"line one\nline two\nline three\n",
    )
    .unwrap();
    let (code, out, err) = text(&child.wait_with_output().unwrap());
    assert_eq!((code, out.trim()), (Some(0), "3\ndone"), "{err}");
    // Killed (SIGKILL from outside, as ctr task kill sends it): 137.
    cd.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        BUSYBOX,
        "n3",
        "sleep",
        "600",
    ]);
    cd.ctr_ok(&["task", "kill", "-s", "KILL", "n3"]);
    wait_until("n3 to stop", 10, || {
        cd.ctr_ok(&["task", "ls"]).contains("STOPPED")
    });
    let (code, _, err) = text(&cd.ctr(&["task", "delete", "n3"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("exit code 137"), "{err}");
    cd.ctr_ok(&["container", "rm", "n3"]);
    let (code, out, err) = run(&[
        "docker.io/library/wharf-hello:latest",
        "w1",
        "/app.wasm",
        "x",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("hello from wasm\narg[0]=/app.wasm\narg[1]=x\n"),
        "{out}"
    );
    let (code, _, err) = run(&["docker.io/library/wharf-exit42:latest", "w2"]);
    assert_eq!(code, Some(42), "{err}");
    // A WASI 0.3 component: async `run`, stdio as streams, its own exit code.
    let (code, out, err) = run(&[
        "docker.io/library/wharf-p3:latest",
        "w3",
        "/app.wasm",
        "x",
        "--exit",
        "4",
    ]);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        out.starts_with("hello from a WASI 0.3 component\narg[0]=/app.wasm\narg[1]=x\n"),
        "{out}"
    );
    // A missing entrypoint: the create fails with the runtime's reason, nothing is left.
    let (code, _, err) = run(&[BUSYBOX, "n4", "/no/such/binary"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("/no/such/binary"), "{err}");

    // Detached: ls, ps, metrics, exec, pause/resume, kill -s TERM, delete.
    cd.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        BUSYBOX,
        "bg",
        "sh",
        "-c",
        "trap 'echo bye; exit 5' TERM; while true; do sleep 0.1; done",
    ]);
    let tasks = cd.ctr_ok(&["task", "ls"]);
    assert!(tasks.contains("bg") && tasks.contains("RUNNING"), "{tasks}");
    let ps = cd.ctr_ok(&["task", "ps", "bg"]);
    assert!(ps.lines().count() >= 2, "{ps}");
    let metrics = cd.ctr_ok(&["task", "metrics", "bg"]);
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert!(metric("memory.usage_in_bytes") > 0, "{metrics}");
    assert!(metric("pids.current") >= 1, "{metrics}");
    let exec = text(&cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "bg",
        "sh",
        "-c",
        "echo from exec; id -u; exit 4",
    ]));
    assert_eq!(
        (exec.0, exec.1.as_str()),
        (Some(4), "from exec\n0\n"),
        "{}",
        exec.2
    );
    // exec -t: the exec's own terminal, resized.
    let line = format!(
        "stty cols 90 rows 30; ctr --address {} --namespace {ns} task exec -t --exec-id et1 bg \
         sh -c 'sleep 0.5; stty size; exit 9'",
        s(cd.sock())
    );
    let (code, out, err) = text(
        &Command::new("script")
            .args(["-qfec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(code, Some(9), "{out} {err}");
    assert!(out.contains("30 90"), "{out}");
    cd.ctr_ok(&["task", "pause", "bg"]);
    assert!(cd.ctr_ok(&["task", "ls"]).contains("PAUSED"));
    cd.ctr_ok(&["task", "resume", "bg"]);
    assert!(cd.ctr_ok(&["task", "ls"]).contains("RUNNING"));
    cd.ctr_ok(&["task", "kill", "-s", "TERM", "bg"]);
    wait_until("bg to stop", 10, || {
        cd.ctr_ok(&["task", "ls"]).contains("STOPPED")
    });
    cd.ctr_ok(&["task", "delete", "bg"]);
    cd.ctr_ok(&["container", "rm", "bg"]);

    // A terminal (ctr -t under script(1)): the pty is relayed, a resize reaches it.
    let line = format!(
        "stty cols 77 rows 21; ctr --address {} --namespace {ns} run --rm -t --runtime {RUNTIME} \
         {BUSYBOX} tty1 sh -c 'sleep 0.5; stty size; tty; exit 6'",
        s(cd.sock())
    );
    let out = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (code, out, err) = text(&out);
    assert_eq!(code, Some(6), "{out} {err}");
    assert!(out.contains("21 77"), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");

    // --log-uri file://: stdout and stderr into one file, its directory made.
    let log = w.path("logs/deep/c.log");
    let uri = format!("file://{}", log.display());
    let (code, _, err) = run(&[
        "--log-uri",
        &uri,
        BUSYBOX,
        "lg",
        "sh",
        "-c",
        "echo to-log; echo err-log >&2",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("to-log\n") && logged.contains("err-log\n"),
        "{logged}"
    );

    // --log-uri binary://: a logger with the streams on fds 3 and 4.
    let logger = w.path("logger.sh");
    std::fs::write(
        &logger,
        "#!/bin/sh\nexec 5>&-\ncat <&3 > \"$1.out\" &\ncat <&4 > \"$1.err\" &\nwait\n\
         echo \"$CONTAINER_NAMESPACE/$CONTAINER_ID\" > \"$1.who\"\n",
    )
    .unwrap();
    sh(Command::new("chmod").arg("755").arg(&logger));
    let base = w.path("bin-log");
    let uri = format!("binary://{}?{}", logger.display(), base.display());
    let (code, _, err) = run(&[
        "--log-uri",
        &uri,
        BUSYBOX,
        "bl",
        "sh",
        "-c",
        "echo out-line; echo err-line >&2",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let read = |ext: &str| std::fs::read_to_string(format!("{}.{ext}", base.display()));
    wait_until("the logger to finish", 10, || read("who").is_ok());
    assert_eq!(read("out").unwrap(), "out-line\n");
    assert_eq!(read("err").unwrap(), "err-line\n");
    assert_eq!(read("who").unwrap(), format!("{ns}/bl\n"));

    // An OOM kill inside a container that goes on running: TaskOOM while it runs.
    cd.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        "--memory-limit",
        "30000000",
        BUSYBOX,
        "oomlive",
        "sh",
        "-c",
        "tail /dev/zero; echo survived; sleep 600",
    ]);
    wait_until("a TaskOOM for oomlive", 20, || {
        std::fs::read_to_string(&events_file)
            .unwrap()
            .lines()
            .any(|l| l.contains("/tasks/oom") && l.contains("\"oomlive\""))
    });
    let tasks = cd.ctr_ok(&["task", "ls"]);
    assert!(
        tasks
            .lines()
            .any(|l| l.starts_with("oomlive ") && l.contains("RUNNING")),
        "{tasks}"
    );
    cd.ctr_ok(&["task", "kill", "-s", "KILL", "oomlive"]);
    wait_until("oomlive to stop", 10, || {
        cd.ctr_ok(&["task", "ls"])
            .lines()
            .any(|l| l.starts_with("oomlive ") && l.contains("STOPPED"))
    });
    let _ = cd.ctr(&["task", "delete", "oomlive"]);
    cd.ctr_ok(&["container", "rm", "oomlive"]);
    // Over its memory limit: the kernel's OOM kill, reported (TaskOOM) before the exit.
    let (code, out, err) = run(&[
        "--memory-limit",
        "30000000",
        BUSYBOX,
        "oom1",
        "sh",
        "-c",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(code, Some(137), "{out} {err}");
    // containerd forwards the shim's events on its own schedule: `ctr run` may return
    // before the exit it waited for is printed by `ctr events`.
    wait_until("a TaskExit for oom1", 20, || {
        std::fs::read_to_string(&events_file)
            .unwrap()
            .lines()
            .any(|l| l.contains("/tasks/exit") && l.contains("\"oom1\""))
    });
    std::thread::sleep(Duration::from_millis(300));
    let _ = events.kill();
    let _ = events.wait();
    let seen = std::fs::read_to_string(&events_file).unwrap();
    for topic in [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exit",
        "/tasks/delete",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/paused",
        "/tasks/resumed",
    ] {
        assert!(seen.contains(topic), "no {topic} event in:\n{seen}");
    }
    let oom = seen
        .lines()
        .position(|l| l.contains("/tasks/oom") && l.contains("\"oom1\""))
        .unwrap_or_else(|| panic!("no TaskOOM for oom1 in:\n{seen}"));
    let exit = seen
        .lines()
        .position(|l| l.contains("/tasks/exit") && l.contains("\"oom1\""))
        .unwrap();
    assert!(oom < exit, "TaskOOM after TaskExit:\n{seen}");

    // The binary's own flags: -v, and -info (a RuntimeInfo protobuf naming the runtime type
    // and carrying wharf-runtime's features document).
    let v = text(&Command::new(shim_bin()).arg("-v").output().unwrap());
    assert_eq!(v.0, Some(0), "{}", v.2);
    assert!(v.1.contains("Version:"), "{}", v.1);
    let info = Command::new(shim_bin()).arg("-info").output().unwrap();
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let raw = String::from_utf8_lossy(&info.stdout);
    assert!(
        raw.contains(RUNTIME) && raw.contains("ociVersionMax"),
        "{raw}"
    );

    let ids: Vec<String> = [
        "n1", "n2", "n3", "n4", "in1", "w1", "w2", "w3", "bg", "tty1", "lg", "bl", "oomlive",
        "oom1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_nothing_left(&w, &cd, &ns, &ids, &ids);
}

#[test]
fn a_killed_shim_leaves_no_container_running() {
    let _serial = serial();
    shim_bin();
    let w = Wharf::new();
    let cd = Containerd::start(&w);
    let ns = cd.namespace().to_owned();
    import_busybox(&cd, &ns);
    cd.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        BUSYBOX,
        "k1",
        "sleep",
        "600",
    ]);
    let tasks = cd.ctr_ok(&["task", "ls"]);
    let pid: i64 = tasks
        .lines()
        .find(|l| l.starts_with("k1 "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("{tasks}"));
    let shims = processes_mentioning(&s(cd.sock()), "containerd-shim-wharf-v1");
    assert_eq!(shims.len(), 1, "{shims:?}");
    sh(Command::new("kill").args(["-9", &shims[0].0.to_string()]));
    // containerd sees the shim go, and cleans up through the binary's `delete` action,
    // which removes the container with `wharf-runtime delete --force`.
    wait_until("the container to be killed", 15, || !pid_alive(pid));
    wait_until("the task to be gone", 15, || {
        !cd.ctr_ok(&["task", "ls"]).contains("k1 ")
    });
    cd.ctr_ok(&["container", "rm", "k1"]);
    let k1 = ["k1".to_string()];
    assert_nothing_left(&w, &cd, &ns, &k1, &k1);
}

/// Where the CRI client (PyPI's container-runtime-interface-api and grpcio) is installed:
/// scripts/setup.sh puts it in ~/.cache/wharf/python.
fn cri_pythonpath() -> String {
    let dir = std::env::var("WHARF_PYTHONPATH").unwrap_or_else(|_| {
        format!(
            "{}/.cache/wharf/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let ok = Command::new("python3")
        .args(["-c", "import grpc, cri_api.v1.api_pb2_grpc"])
        .env("PYTHONPATH", &dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the CRI client is not installed in {dir}: run scripts/setup.sh"
    );
    dir
}

fn cri(cd: &Containerd, pythonpath: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(repo_dir().join("tests/fixtures/cri.py"))
        .arg(cd.sock())
        .args(args)
        .env("PYTHONPATH", pythonpath)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (code, stdout, err) = text(&out);
    assert_eq!(code, Some(0), "cri.py {args:?}: {err}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Removes the pods of a failed run, so no shim or container outlives the test.
struct PodsCleanup<'a> {
    cd: &'a Containerd,
    pythonpath: String,
}

impl Drop for PodsCleanup<'_> {
    fn drop(&mut self) {
        let _ = Command::new("python3")
            .arg(repo_dir().join("tests/fixtures/cri.py"))
            .arg(self.cd.sock())
            .arg("cleanup")
            .env("PYTHONPATH", &self.pythonpath)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// containerd with its CRI plugin (tests/fixtures/containerd-cri.toml: the `runc` and
/// `wharf` handlers) and the busybox and pause images in `k8s.io`.
fn cri_containerd(w: &Wharf) -> Containerd {
    let config = std::fs::read_to_string(repo_dir().join("tests/fixtures/containerd-cri.toml"))
        .unwrap()
        .replace("@DIR@", &s(w.dir.path()));
    let cd = Containerd::start_with(w, &config);
    import_busybox(&cd, "k8s.io");
    cd
}

#[test]
fn cri_runs_a_pod_mixing_native_and_wasm_containers() {
    let _serial = serial();
    shim_bin();
    let pythonpath = cri_pythonpath();
    let w = Wharf::new();
    let cd = cri_containerd(&w);
    import_wasm(
        &w,
        &cd,
        "k8s.io",
        Path::new(&wasm("hello.wasm")),
        "wharf-hello",
    );
    import_wasm(
        &w,
        &cd,
        "k8s.io",
        Path::new(&wasm("http-hello.wasm")),
        "wharf-http",
    );
    import_wasm(
        &w,
        &cd,
        "k8s.io",
        Path::new(&wasm("p3-http.wasm")),
        "wharf-http3",
    );
    let logs = w.path("pod-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let _cleanup = PodsCleanup {
        cd: &cd,
        pythonpath: pythonpath.clone(),
    };
    let (port, port3) = (
        crate::wasm::free_port().to_string(),
        crate::wasm::free_port().to_string(),
    );
    let seen = cri(
        &cd,
        &pythonpath,
        &["mixed", "wharf", &s(&logs), &port, &port3],
    );

    // The native job and the wasm module ran to their own exit codes, with their output in
    // the CRI log files.
    assert_eq!(seen["job"]["exit_code"], 3, "{seen}");
    assert_eq!(seen["job"]["reason"], "Error", "{seen}");
    assert_eq!(seen["wasm"]["exit_code"], 0, "{seen}");
    assert_eq!(seen["wasm"]["reason"], "Completed", "{seen}");
    let lines = |name: &str| -> Vec<(String, String)> {
        seen["logs"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["stream"].as_str().unwrap().to_owned(),
                    l["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let wasm_log = lines("wasm");
    assert_eq!(
        wasm_log[..3],
        [
            ("stdout".into(), "hello from wasm".into()),
            ("stdout".into(), "arg[0]=/app.wasm".into()),
            ("stdout".into(), "arg[1]=a1".into())
        ],
        "{wasm_log:?}"
    );
    assert_eq!(lines("job"), [("stdout".into(), "job".into())]);
    let native_log = lines("native");
    assert!(
        native_log.contains(&("stdout".into(), "native-out".into()))
            && native_log.contains(&("stderr".into(), "native-err".into())),
        "{native_log:?}"
    );
    // ExecSync into the native container: both streams and the exit code.
    assert_eq!(seen["native_running"], "CONTAINER_RUNNING", "{seen}");
    assert_eq!(seen["exec"]["stdout"], "exec-ok\n", "{seen}");
    assert_eq!(seen["exec"]["stderr"], "exec-err\n", "{seen}");
    assert_eq!(seen["exec"]["exit_code"], 7, "{seen}");
    assert_eq!(
        seen["memory_limit_after_update"],
        (96 * 1024 * 1024).to_string(),
        "{seen}"
    );
    // The wasm wasi:http service answered, and stopped gracefully on SIGTERM (exit 0, well
    // before the 10 s grace period), unlike the native one, which SIGTERM ended.
    assert_eq!(seen["http_get"]["status"], 200, "{seen}");
    assert_eq!(
        seen["http_get"]["body"], "hello from wasi:http: GET /\n",
        "{seen}"
    );
    assert_eq!(seen["http"]["exit_code"], 0, "{seen}");
    // And the WASI 0.3 one beside it in the pod.
    assert_eq!(seen["http3_get"]["status"], 200, "{seen}");
    assert_eq!(
        seen["http3_get"]["body"], "hello from wasi:http 0.3: GET /from-cri\n",
        "{seen}"
    );
    assert_eq!(seen["http3"]["exit_code"], 0, "{seen}");
    assert!(seen["http_stop_seconds"].as_f64().unwrap() < 5.0, "{seen}");
    assert_eq!(seen["native"]["exit_code"], 143, "{seen}");
    assert_eq!(seen["pods_left"], 0, "{seen}");

    let ids: Vec<String> = seen["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_nothing_left(&w, &cd, "k8s.io", &ids[..1], &ids);
    // No process of the pod's is left either.
    for id in &ids {
        assert!(
            processes_mentioning(id, "").is_empty(),
            "a process of {id} is left"
        );
    }
}

/// The cases where Kubernetes' CRI validation suite (critest) once failed with the wharf
/// handler and passed with runc's, on the same containerd, side by side: a privileged
/// container (containerd lists every host device in `linux.devices`), the three mount
/// propagations (bidirectional, host-to-container, private, each privileged), a pod stopped
/// right after its container exited (Kill must say NotFound, not fail the stop), and an
/// ExecSync of a command the image lacks followed by the pod's removal (the shim must still
/// exit). Both handlers must see the same, and leave no pod, shim or mount.
#[test]
fn cri_edge_cases_behave_as_under_runc() {
    let _serial = serial();
    shim_bin();
    let pythonpath = cri_pythonpath();
    let w = Wharf::new();
    let cd = cri_containerd(&w);
    let _cleanup = PodsCleanup {
        cd: &cd,
        pythonpath: pythonpath.clone(),
    };
    let mut seen = Vec::new();
    for handler in ["runc", "wharf"] {
        let logs = w.path(&format!("pod-logs-{handler}"));
        std::fs::create_dir_all(&logs).unwrap();
        // A shared mount point of the host's, as a node's kubelet directory is: what the
        // containers mount and unmount there must not take the host's canary with it.
        let shared = SharedMount::new(w.path(&format!("shared-{handler}")));
        let got = cri(
            &cd,
            &pythonpath,
            &["edges", handler, &s(&logs), &s(&shared.path)],
        );
        assert!(shared.canary_mounted(), "{handler}: the host lost a mount");
        drop(shared);
        wait_until("the shims to exit", 10, || {
            processes_mentioning(&s(cd.sock()), "containerd-shim").is_empty()
        });
        seen.push(got);
    }
    let (runc, wharf) = (&seen[0], &seen[1]);
    assert_eq!(runc, wharf, "runc saw {runc}\nwharf saw {wharf}");
    // What both saw is what the specs expect.
    assert_eq!(wharf["privileged"]["exit_code"], 0, "{wharf}");
    // Every capability this host lets containerd's children have: its bounding set.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    let every = format!("CapEff:\t{bounding}");
    assert_eq!(
        wharf["privileged"]["log"],
        serde_json::json!([every, "host-devices"]),
        "{wharf}"
    );
    assert_eq!(wharf["container_mount_on_host"], true, "{wharf}");
    assert_eq!(
        wharf["host_mount_in"],
        serde_json::json!({"private": "0", "host_to_container": "1", "bidirectional": "1"}),
        "{wharf}"
    );
    for removal in [
        "privileged_pod_removal",
        "propagation_pod_removal",
        "missing_pod_removal",
    ] {
        assert_eq!(wharf[removal], "", "{removal}: {wharf}");
    }
    assert_eq!(
        wharf["quick_pod_removal"],
        serde_json::json!(["", "", "", "", ""]),
        "{wharf}"
    );
    assert_eq!(wharf["pods_left"], 0, "{wharf}");
    assert_nothing_left(&w, &cd, "k8s.io", &[], &[]);
}
