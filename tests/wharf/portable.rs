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
    // A volume given as a long path on Windows (`\\?\Z:\...`); on Linux deeper than
    // Windows' 260-character MAX_PATH. (wine cannot list a directory beyond MAX_PATH, even
    // spelled so: there the path stays shorter.)
    let mut deep = data.join("a".repeat(100));
    if !windows() {
        deep = deep.join("b".repeat(100)).join("c".repeat(100));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("input.txt"), "deep file\n").unwrap();
    let spelled = if windows() {
        format!(r"\\?\{}", host_path(&deep))
    } else {
        host_path(&deep)
    };
    assert!(spelled.len() > 100, "{spelled}");
    let mut c = wharf_command();
    c.args([
        "--root",
        &root,
        "run",
        "-v",
        &format!("{spelled}:/data"),
        "fs",
        "/data",
    ]);
    let out = sh(&mut c);
    assert!(
        out.contains("input: deep file") && out.contains("write: ok"),
        "{out}"
    );
    assert!(deep.join("output.txt").exists());
    // The store was written where --root said.
    assert!(w.root().join("store/index.json").exists());
}

/// Kill process `pid` of the binary under test from outside, as a user would: `kill -9` on
/// Linux, `taskkill /F` (TerminateProcess) under wine.
fn kill_from_outside(pid: i64) {
    if !windows() {
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        assert!(status.unwrap().success(), "killing {pid}");
        return;
    }
    // Under wine a process (taskkill here) occasionally fails to start when many start at
    // once, exiting 1 having done nothing (see `Wharf::run`): try again. A retry that finds
    // the process gone (exit 128, "could not find process") means an earlier one killed it.
    for attempt in 0..3 {
        let code = std::process::Command::new("wine")
            .args(["taskkill", "/F", "/PID", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .code();
        match code {
            Some(0) => return,
            Some(128) if attempt > 0 => return,
            _ => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
    panic!("killing {pid}");
}

/// The whole lifecycle of detached wasm containers, the same on Linux and Windows: a
/// detached wasi:http server answers, `ps` shows it, `logs` (and `logs -f`) have its lines,
/// `stop` ends it gracefully, `restart` runs it again, `kill`, restart policies, `rm`; a
/// killed supervisor or monitor shows as exited, with nothing left running.
#[test]
fn detached_wasm_containers_live_the_same_lifecycle_on_every_host() {
    use crate::wasm::{free_port, http, wait_for_port};
    use std::time::{Duration, Instant};
    let w = Wharf::new();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = w
        .ok(&[
            "run",
            "-d",
            "--name",
            "edge",
            "-p",
            &publish,
            &wasm("http-hello.wasm"),
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/hello", "");
    assert_eq!(status, 200);
    assert!(body.contains("/hello"), "{body}");
    let ps = w.ok(&["ps"]);
    assert!(
        ps.contains("edge") && ps.contains(&format!("127.0.0.1:{port}->8080/tcp")),
        "{ps}"
    );
    let state = inspect(&w, "edge");
    assert_eq!(state["State"]["Status"], "running", "{state}");
    assert!(state["State"]["Pid"].as_i64().unwrap() > 0, "{state}");
    assert!(
        state["State"]["MonitorPid"].as_i64().unwrap() > 0,
        "{state}"
    );
    assert_eq!(state["Backend"]["Kind"], "wasm", "{state}");
    // A wasm container has no processes to join.
    let err = w.fails(&["exec", "edge", "sh"], 125);
    assert!(err.contains("WebAssembly"), "{err}");
    // logs -f follows until the container ends.
    let follower = w
        .cmd(&["logs", "-f", "edge"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually(20, "the server's log line", || {
        let out = w.run(&["logs", "edge"]);
        String::from_utf8_lossy(&out.stderr).contains("serving")
    });
    // stop: the server drains and ends by itself, well before the kill deadline.
    let began = Instant::now();
    w.ok(&["stop", "-t", "20", "edge"]);
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "graceful, not killed: {:?}",
        began.elapsed()
    );
    assert_eq!(w.ok(&["wait", "edge"]).trim(), "0");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let followed = follower.wait_with_output().unwrap();
    let followed = String::from_utf8_lossy(&followed.stderr);
    assert!(
        followed.contains("serving") && followed.contains("stopping"),
        "{followed}"
    );
    assert!(w.ok(&["ps", "-a"]).contains("Exited (0)"));
    // restart runs it again, under a new supervisor; kill ends it (137).
    let pid1 = inspect(&w, "edge")["State"]["Pid"].clone();
    w.ok(&["restart", "edge"]);
    wait_for_port(port);
    assert_eq!(http(port, "GET", "/again", "").0, 200);
    assert_ne!(inspect(&w, "edge")["State"]["Pid"], pid1);
    w.ok(&["kill", "edge"]);
    assert_eq!(w.ok(&["wait", "edge"]).trim(), "137");
    w.ok(&["rm", "edge"]);
    assert!(!w.ok(&["ps", "-a"]).contains("edge"));
    // A guest in a loop is interrupted at its next epoch: 128 + SIGTERM.
    w.ok(&["run", "-d", "--name", "spin", &wasm("loop.wat")]);
    let began = Instant::now();
    w.ok(&["stop", "-t", "20", "spin"]);
    assert!(began.elapsed() < Duration::from_secs(10), "not the kill");
    assert_eq!(inspect(&w, "spin")["State"]["ExitCode"], 143);
    // Restart policies are the monitor's: on-failure:2 runs it three times.
    w.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        &wasm("exit42.wat"),
    ]);
    eventually(60, "two restarts", || {
        let s = &inspect(&w, "flaky");
        s["State"]["Status"] == "exited" && s["RestartCount"] == 2
    });
    assert_eq!(
        w.ok(&["wait", "flaky"]).trim(),
        "42",
        "{}",
        inspect(&w, "flaky")
    );
    // A killed supervisor (the process running the guest) shows as exited, with why.
    w.ok(&["start", "spin"]);
    let pid = inspect(&w, "spin")["State"]["Pid"].as_i64().unwrap();
    kill_from_outside(pid);
    eventually(30, "the record to say exited", || {
        inspect(&w, "spin")["State"]["Status"] == "exited"
    });
    let state = inspect(&w, "spin");
    assert!(
        state["State"]["Error"]
            .as_str()
            .unwrap_or_default()
            .contains("supervisor"),
        "{state}"
    );
    // A killed monitor takes its supervisor along (parent-death signal; job object).
    w.ok(&[
        "run",
        "-d",
        "--name",
        "orphan",
        "-p",
        &publish,
        &wasm("http-hello.wasm"),
    ]);
    wait_for_port(port);
    let monitor = inspect(&w, "orphan")["State"]["MonitorPid"]
        .as_i64()
        .unwrap();
    kill_from_outside(monitor);
    eventually(30, "the server to go with its monitor", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    let ps = w.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (255)"), "{ps}");
    assert!(w.ok(&["ps", "-q"]).trim().is_empty(), "none running");
    w.ok(&["rm", "spin", "flaky", "orphan"]);
    assert!(w.ok(&["ps", "-a", "-q"]).trim().is_empty());
}

/// `logs -f` of a container whose json-file log rotates dozens of times while it is followed
/// (1000 lines of ~80-byte entries, 4 KiB per file): every line exactly once, in order. On
/// Windows the follower tells files apart by volume serial and file index.
#[test]
fn logs_follow_a_log_that_rotates_while_it_is_read() {
    let w = Wharf::new();
    let id = w
        .ok(&[
            "run",
            "-d",
            "--name",
            "chatty",
            "--log-opt",
            "max-size=4k",
            "--log-opt",
            "max-file=100",
            &wasm("chatty.wat"),
        ])
        .trim()
        .to_string();
    let follower = w
        .cmd(&["logs", "-f", "chatty"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let followed = follower.wait_with_output().unwrap();
    let expected: Vec<String> = (0..1000).map(|i| format!("line {i:04}")).collect();
    let lines = |out: &[u8]| {
        String::from_utf8_lossy(out)
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let seen = lines(&followed.stdout);
    assert!(
        seen == expected,
        "followed {} lines, first {:?}, last {:?}; stderr: {}",
        seen.len(),
        seen.first(),
        seen.last(),
        String::from_utf8_lossy(&followed.stderr)
    );
    assert_eq!(w.ok(&["wait", "chatty"]).trim(), "0");
    let rotated = std::fs::read_dir(w.root().join("containers").join(&id))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("-json.log.")
        })
        .count();
    assert!(rotated >= 10, "the log rotated {rotated} times");
    // And read afterwards, whole.
    assert_eq!(lines(w.ok(&["logs", "chatty"]).as_bytes()), expected);
    w.ok(&["rm", "chatty"]);
}

/// A WASI 0.3 image detached: its output in the log, its exit code from `wait`.
#[test]
fn a_wasi_0_3_image_runs_detached_with_logs_wait_and_rm() {
    let w = Wharf::new();
    w.ok(&["package", &wasm("p3-command.wasm"), "-t", "greet3"]);
    // inspect --explain names the version, from the component itself.
    let explained = w.ok(&["inspect", "--explain", "greet3"]);
    assert!(
        explained.contains("wasi:     WASI 0.3")
            && explained.contains("exports wasi:cli/run@0.3.0"),
        "{explained}"
    );
    let config = &inspect(&w, "greet3")["ImageConfig"];
    assert_eq!(
        config["os"], "wasip2",
        "the artifact os the Wasm OCI layout defines"
    );
    assert_eq!(config["component"]["target"], "wasi:cli/command@0.3.0");
    w.ok(&["run", "-d", "--name", "g3", "greet3", "--exit", "3"]);
    assert_eq!(w.ok(&["wait", "g3"]).trim(), "3");
    let logs = w.ok(&["logs", "g3"]);
    assert!(
        logs.contains("hello from a WASI 0.3 component\narg[0]=greet3\n"),
        "{logs}"
    );
    assert_eq!(inspect(&w, "g3")["State"]["ExitCode"], 3);
    w.ok(&["rm", "g3"]);
    // --rm: gone once it ends, its output on the terminal.
    let out = w.ok(&["run", "--rm", "--name", "g3rm", "greet3", "x"]);
    assert!(out.contains("arg[1]=x"), "{out}");
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn a_wasm_guests_stats_events_info_and_version_on_every_host() {
    let w = Wharf::new();
    let grow = w.path("grow40.wat");
    std::fs::write(&grow, crate::operate_guests::GROW_40_MIB).unwrap();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let version: serde_json::Value =
        serde_json::from_str(&w.ok(&["version", "-f", "json"])).unwrap();
    assert_eq!(
        version["Client"]["Os"],
        if windows() { "windows" } else { "linux" }
    );
    w.ok(&[
        "run",
        "-d",
        "--name",
        "g40",
        "-m",
        "100m",
        &host_path(&grow),
    ]);
    // The guest's linear memory, as the engine counts it, against its --memory.
    let reading = || -> serde_json::Value {
        let out = w.ok(&["stats", "--no-stream", "--format", "json", "g40"]);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    eventually(20, "the guest's 40 MiB", || {
        reading()["MemoryBytes"] == 40 << 20
    });
    let r = reading();
    assert_eq!(r["MemUsage"], "40MiB / 100MiB", "{r}");
    assert_eq!(r["PIDs"], "1");
    assert!(r["CPUTimeNs"].as_u64().is_some(), "{r}");
    // top: the guest's process (ps on Linux; on Windows Docker's columns for one).
    let pid = w.ok(&["inspect", "-f", "{{.State.Pid}}", "g40"]);
    let top = w.ok(&["top", "g40"]);
    let mut lines = top.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let pid_col = header
        .iter()
        .position(|c| *c == "PID")
        .expect("a PID column");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 1, "{top}");
    assert_eq!(rows[0][pid_col], pid.trim(), "{top}");
    if windows() {
        assert_eq!(header, ["Name", "PID", "CPU", "Private", "Bytes"], "{top}");
        assert!(rows[0][0].starts_with("wharf"), "{top}");
    }
    let info: serde_json::Value = serde_json::from_str(&w.ok(&["info", "-f", "json"])).unwrap();
    assert_eq!(info["ContainersRunning"], 1, "{info}");
    assert_eq!(info["Native"]["Available"], !windows());
    assert!(info["Wasmtime"].as_str().unwrap().starts_with("48."));
    w.ok(&["rm", "-f", "g40"]);
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let actions = w.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=g40",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = actions.lines().filter(|a| *a != "kill").collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"]);
}
