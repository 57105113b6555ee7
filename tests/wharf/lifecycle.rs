//! Containers managed without a daemon: `run -d` under a monitor, `ps`, `logs`, `stop`,
//! `kill`, `wait`, `rm`, `restart`, `create`/`start`, `exec`, `inspect`, restart policies,
//! on the busybox image (native) and the wasm examples, with nothing left behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::native::{assert_clean, busybox, serial};

fn status_of(w: &Wharf, id: &str) -> String {
    inspect(w, id)["State"]["Status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn logs(w: &Wharf, args: &[&str]) -> (String, String) {
    let mut a = vec!["logs"];
    a.extend_from_slice(args);
    let out = w.run(&a);
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pgrep(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_detached_native_container_logs_stops_and_is_removed() {
    let _serial = serial();
    let w = busybox();
    let id = w
        .ok(&[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "echo out-1; echo err-1 >&2; i=0; while true; i=$((i+1)); do echo tick $i; sleep 0.2; done",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    let ps = w.ok(&["ps"]);
    let row = ps.lines().find(|l| l.contains("ticker")).expect(&ps);
    assert!(
        row.starts_with(&id[..12]) && row.contains("Up ") && row.contains("native"),
        "{ps}"
    );
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    // stdout and stderr stay apart.
    eventually(10, "two ticks", || {
        logs(&w, &["ticker"]).0.contains("tick 2")
    });
    let (out, err) = logs(&w, &["ticker"]);
    assert!(
        out.starts_with("out-1\n") && !out.contains("err-1"),
        "{out}"
    );
    assert_eq!(err, "err-1\n");
    // --tail, -t, and names, id prefixes and full ids all work.
    let (tail, _) = logs(&w, &["--tail", "1", &id[..6]]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    let (stamped, _) = logs(&w, &["-t", &id]);
    let first = stamped.lines().next().unwrap();
    assert!(
        first.contains("Z out-1") && first.starts_with("20"),
        "{first}"
    );
    let (since, _) = logs(&w, &["--since", "2000-01-01T00:00:00Z", "ticker"]);
    assert!(since.contains("out-1"));
    let (future, _) = logs(&w, &["--since", "2999-01-01T00:00:00Z", "ticker"]);
    assert!(future.is_empty());
    // The log file is Docker's json-file.
    let raw =
        std::fs::read_to_string(w.root().join(format!("containers/{id}/{id}-json.log"))).unwrap();
    // (stdout and stderr are copied on their own, so only each stream's order is kept.)
    let line: serde_json::Value = raw
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["stream"] == "stdout")
        .unwrap();
    assert_eq!(line["log"], "out-1\n");
    assert_eq!(line["stream"], "stdout");
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    // -f follows until the container ends.
    let mut follow = w
        .cmd(&["logs", "-f", "ticker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(follow.stdout.take().unwrap());
    let seen_before = logs(&w, &["ticker"]).0.lines().count();
    let mut n = 0;
    let mut line = String::new();
    while n < seen_before + 3 {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "logs -f ended early"
        );
        n += 1;
    }
    assert!(line.starts_with("tick "), "{line}");
    // sh as pid 1 ignores SIGTERM: stop waits -t seconds, then kills.
    let started = Instant::now();
    assert_eq!(w.ok(&["stop", "-t", "1", "ticker"]).trim(), "ticker");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let status = follow.wait().unwrap();
    assert!(status.success(), "logs -f exits when the container ends");
    assert_eq!(w.ok(&["wait", "ticker"]).trim(), "137");
    let state = inspect(&w, "ticker");
    assert_eq!(state["State"]["Status"], "exited");
    assert_eq!(state["State"]["ExitCode"], 137);
    assert_eq!(state["State"]["Running"], false);
    assert_eq!(state["Backend"]["Kind"], "native");
    assert!(w.ok(&["ps", "-a"]).contains("Exited (137)"));
    assert!(w.ok(&["ps"]).lines().count() == 1, "only the header");
    // A stopped container starts again, with its name.
    w.ok(&["start", "ticker"]);
    assert_eq!(status_of(&w, "ticker"), "running");
    let err = w.fails(&["rm", "ticker"], 125);
    assert!(err.contains("is running"), "{err}");
    w.ok(&["rm", "-f", "ticker"]);
    let err = w.fails(&["logs", "ticker"], 125);
    assert!(err.contains("no such container"), "{err}");
    assert!(!pgrep("tick \\$i"), "the container's processes are gone");
    assert_clean(&w);
}

#[test]
fn exec_joins_the_container_with_the_same_restrictions() {
    let _serial = serial();
    let w = busybox();
    w.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--hostname",
        "boxhost",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sh",
        "-c",
        "echo started > /tmp/mark; sleep 60",
    ]);
    let exec = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        let out = w.run(&a);
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Same hostname, same pid namespace (pid 1 is the container's), same filesystem.
    let (code, out, err) = exec(&[
        "box",
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /tmp/mark; echo $FROM_RUN",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "boxhost");
    // sh execs its last command: pid 1 is the container's sleep.
    assert_eq!(lines[1], "sleep 60 ", "{out}");
    assert_eq!(lines[2], "started");
    assert_eq!(lines[3], "1", "the container's environment: {out}");
    // The same confinement as the container's first process.
    let (code, out, _) = exec(&[
        "box",
        "sh",
        "-c",
        "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; hostname other 2>&1 || echo denied; cat /proc/self/cgroup | head -1",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("denied"), "{out}");
    // Its processes are the container's: visible from pid 1's namespace, in its cgroup.
    let id = w.ok(&["ps", "-q", "--no-trunc"]).trim().to_string();
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/wharf/{id}/cgroup.procs"))
        .unwrap_or_default();
    let mut child = w
        .cmd(&["exec", "box", "sleep", "30"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    eventually(10, "exec'd sleep in the container", || {
        exec(&["box", "sh", "-c", "ps -o comm | grep -c sleep"])
            .1
            .trim()
            == "2"
    });
    let after = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/wharf/{id}/cgroup.procs"))
        .unwrap_or_default();
    assert!(
        after.lines().count() > procs.lines().count(),
        "{procs} / {after}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // -u, -w, -e, exit codes.
    let (_, out, _) = exec(&[
        "-u",
        "nobody",
        "-w",
        "/etc",
        "-e",
        "X=y",
        "box",
        "sh",
        "-c",
        "id -u; pwd; echo $X",
    ]);
    assert_eq!(out, "65534\n/etc\ny\n");
    let (code, out, _) = exec(&["-u", "nobody", "box", "grep", "CapEff", "/proc/self/status"]);
    assert_eq!((code, out.trim()), (0, "CapEff:\t0000000000000000"));
    assert_eq!(exec(&["box", "sh", "-c", "exit 5"]).0, 5);
    // Its own session, without -t too: never the caller's controlling terminal.
    let (_, out, _) = exec(&["box", "sh", "-c", "echo $$; cut -d' ' -f6 /proc/$$/stat"]);
    let ids: Vec<&str> = out.lines().collect();
    assert_eq!(ids[0], ids[1], "session leader: {out}");
    let (code, _, err) = exec(&["box", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("no-such-command"), "{err}");
    // -i passes stdin through.
    let mut child = w
        .cmd(&["exec", "-i", "box", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"piped in\n").unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped in\n");
    // Not into a stopped container.
    w.ok(&["kill", "box"]);
    assert_eq!(w.ok(&["wait", "box"]).trim(), "137");
    let err = w.fails(&["exec", "box", "true"], 125);
    assert!(err.contains("not running"), "{err}");
    assert_clean(&w);
}

#[test]
fn a_wasm_guest_in_a_loop_is_interrupted_through_its_epoch() {
    let w = Wharf::new();
    w.ok(&["run", "-d", "--name", "spin", &wasm("loop.wat")]);
    assert_eq!(status_of(&w, "spin"), "running");
    let started = Instant::now();
    w.ok(&["stop", "-t", "10", "spin"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "not the SIGKILL fallback"
    );
    let state = inspect(&w, "spin");
    assert_eq!(state["State"]["ExitCode"], 143);
    assert!(
        state["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("signal 15"),
        "{state}"
    );
    // kill: SIGKILL ends the wharf process that runs the guest.
    w.ok(&["start", "spin"]);
    w.ok(&["kill", "spin"]);
    assert_eq!(w.ok(&["wait", "spin"]).trim(), "137");
    // A guest's own exit code, in wait, ps and inspect.
    w.ok(&["run", "-d", "--name", "code", &wasm("exit42.wat")]);
    assert_eq!(w.ok(&["wait", "code"]).trim(), "42");
    assert!(w.ok(&["ps", "-a"]).contains("Exited (42)"));
    assert_eq!(inspect(&w, "code")["State"]["ExitCode"], 42);
    w.ok(&["rm", "spin", "code"]);
}

#[test]
fn exit_codes_start_failures_and_names() {
    let _serial = serial();
    let w = busybox();
    w.ok(&[
        "run", "-d", "--name", "three", "busybox", "sh", "-c", "exit 3",
    ]);
    assert_eq!(w.ok(&["wait", "three"]).trim(), "3");
    assert!(w.ok(&["ps", "-a"]).contains("Exited (3)"));
    assert_eq!(inspect(&w, "three")["State"]["ExitCode"], 3);
    // --stop-signal and --stop-timeout.
    w.ok(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 8' USR1; while true; do sleep 0.1; done",
    ]);
    let started = Instant::now();
    w.ok(&["stop", "usr1"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(w.ok(&["wait", "usr1"]).trim(), "8");
    w.ok(&[
        "run",
        "-d",
        "--name",
        "quick",
        "--stop-timeout",
        "1",
        "busybox",
        "sleep",
        "60",
    ]);
    let started = Instant::now();
    w.ok(&["stop", "quick"]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(w.ok(&["wait", "quick"]).trim(), "137");
    let err = w.fails(
        &["run", "-d", "--stop-signal", "NOPE", "busybox", "true"],
        125,
    );
    assert!(err.contains("--stop-signal"), "{err}");
    w.ok(&["rm", "usr1", "quick"]);
    // An OOM kill: 137, and inspect says so.
    w.ok(&[
        "run",
        "-d",
        "--name",
        "hog",
        "--memory",
        "32m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=256M",
        "count=1",
    ]);
    assert_eq!(w.ok(&["wait", "hog"]).trim(), "137");
    let state = inspect(&w, "hog");
    assert_eq!(state["State"]["OOMKilled"], true, "{state}");
    assert_eq!(state["HostConfig"]["Memory"], 32 << 20);
    w.ok(&["rm", "hog"]);
    // A command that cannot start: run -d fails with Docker's code and says why.
    let err = w.fails(
        &[
            "run",
            "-d",
            "--name",
            "missing",
            "busybox",
            "no-such-binary",
        ],
        127,
    );
    assert!(err.contains("no-such-binary"), "{err}");
    assert!(w.ok(&["ps", "-a"]).contains("Exited (127)"));
    // Names are unique and checked.
    let err = w.fails(&["run", "-d", "--name", "three", "busybox", "true"], 125);
    assert!(err.contains("already in use"), "{err}");
    let err = w.fails(&["run", "-d", "--name", "bad name", "busybox", "true"], 125);
    assert!(err.contains("invalid container name"), "{err}");
    let err = w.fails(&["stop", "nothing-here"], 125);
    assert!(err.contains("no such container"), "{err}");
    // --rm removes a detached container when it ends; a foreground one too.
    let id = w
        .ok(&["run", "-d", "--rm", "busybox", "true"])
        .trim()
        .to_string();
    eventually(10, "--rm to remove it", || {
        !w.ok(&["ps", "-a", "-q", "--no-trunc"]).contains(&id)
    });
    w.ok(&["run", "--rm", "--name", "fg", "busybox", "true"]);
    assert!(!w.ok(&["ps", "-a"]).contains(" fg"));
    // A foreground container is a container too: listed while it runs, stoppable.
    let mut fg = w
        .cmd(&[
            "run",
            "--name",
            "attached",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 9' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(fg.stdout.as_mut().unwrap(), &mut buf).unwrap();
    assert!(w.ok(&["ps"]).contains("attached"));
    w.ok(&["stop", "attached"]);
    assert_eq!(fg.wait().unwrap().code(), Some(9));
    assert_eq!(inspect(&w, "attached")["State"]["ExitCode"], 9);
    let err = w.fails(&["logs", "attached"], 125);
    assert!(err.contains("ran attached"), "{err}");
    // create + start -a.
    let id = w
        .ok(&[
            "create",
            "--name",
            "later",
            "busybox",
            "sh",
            "-c",
            "echo from later; exit 4",
        ])
        .trim()
        .to_string();
    assert!(w.ok(&["ps", "-a"]).contains("Created"));
    assert_eq!(status_of(&w, &id), "created");
    let out = w.run(&["start", "-a", "later"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from later\n");
    // --filter, as Docker: a status implies -a; same key any, different keys all.
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "--format", "json"];
        a.extend_from_slice(args);
        let mut n: Vec<String> = w
            .ok(&a)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["Names"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&["--filter", "exited=3"]), ["three"]);
    w.ok(&["create", "--name", "fresh", "busybox", "true"]);
    assert_eq!(names(&["-f", "status=created"]), ["fresh"]);
    assert_eq!(
        names(&["-f", "exited=127", "-f", "exited=9"]),
        ["attached", "missing"]
    );
    assert!(names(&["-f", "exited=127", "-f", "name=three"]).is_empty());
    assert_eq!(
        names(&["-a", "-f", "name=thr", "-f", "ancestor=busybox"]),
        ["three"]
    );
    let err = w.fails(&["ps", "--filter", "colour=red"], 125);
    assert!(err.contains("--filter"), "{err}");
    // system prune removes stopped containers, then what only they used.
    let pruned = w.ok(&["system", "prune"]);
    assert!(pruned.contains("Deleted 5 stopped containers"), "{pruned}");
    assert!(w.ok(&["ps", "-a", "-q"]).is_empty());
    assert_clean(&w);
    // -a: images no container uses go too, and their layers.
    w.ok(&["run", "-d", "--name", "keeper", "busybox", "sleep", "30"]);
    w.ok(&["system", "prune", "-a"]);
    assert_eq!(w.images().len(), 1, "a running container keeps its image");
    w.ok(&["rm", "-f", "keeper"]);
    let pruned = w.ok(&["system", "prune", "-a"]);
    assert!(pruned.contains("Deleted 1 unused images"), "{pruned}");
    assert!(w.images().is_empty());
    assert_eq!(
        std::fs::read_dir(w.root().join("layers")).unwrap().count(),
        0
    );
}

#[test]
fn restart_policies_are_kept_by_the_monitor() {
    let _serial = serial();
    let w = busybox();
    w.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo attempt; exit 1",
    ]);
    eventually(20, "two restarts", || {
        let s = inspect(&w, "flaky");
        s["State"]["Status"] == "exited" && s["RestartCount"] == 2
    });
    assert_eq!(logs(&w, &["flaky"]).0, "attempt\nattempt\nattempt\n");
    assert_eq!(
        inspect(&w, "flaky")["HostConfig"]["RestartPolicy"]["Name"],
        "on-failure"
    );
    // on-failure does not restart a success.
    w.ok(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]);
    assert_eq!(w.ok(&["wait", "fine"]).trim(), "0");
    assert_eq!(inspect(&w, "fine")["RestartCount"], 0);
    // always: restarted until stopped; stop ends it for good.
    w.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "echo up; sleep 0.2",
    ]);
    eventually(20, "restarts", || {
        inspect(&w, "again")["RestartCount"].as_u64().unwrap() >= 2
    });
    w.ok(&["stop", "-t", "1", "again"]);
    let count = inspect(&w, "again")["RestartCount"].clone();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(status_of(&w, "again"), "exited");
    assert_eq!(
        inspect(&w, "again")["RestartCount"],
        count,
        "no restart after stop"
    );
    // restart: a stopped container runs again.
    w.ok(&["run", "-d", "--name", "svc", "busybox", "sleep", "60"]);
    let pid1 = inspect(&w, "svc")["State"]["Pid"].as_i64().unwrap();
    w.ok(&["restart", "-t", "1", "svc"]);
    let pid2 = inspect(&w, "svc")["State"]["Pid"].as_i64().unwrap();
    assert!(pid1 > 0 && pid2 > 0 && pid1 != pid2, "{pid1} {pid2}");
    assert_eq!(status_of(&w, "svc"), "running");
    let err = w.fails(&["run", "--restart", "always", "busybox", "true"], 125);
    assert!(err.contains("needs -d"), "{err}");
    // Two starts at once run it once.
    w.ok(&["create", "--name", "twice", "busybox", "sleep", "61"]);
    let codes: Vec<Option<i32>> = std::thread::scope(|s| {
        let a = s.spawn(|| w.run(&["start", "twice"]).status.code());
        let b = s.spawn(|| w.run(&["start", "twice"]).status.code());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    assert!(codes.contains(&Some(0)), "{codes:?}");
    eventually(10, "it runs", || status_of(&w, "twice") == "running");
    std::thread::sleep(Duration::from_millis(300));
    let count = Command::new("pgrep")
        .args(["-c", "-f", "sleep 61"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "1");
    w.ok(&["rm", "-f", "svc", "flaky", "fine", "again", "twice"]);
    assert_clean(&w);
}

#[test]
fn a_killed_monitor_leaves_a_truthful_record_and_rm_cleans_up() {
    let _serial = serial();
    let w = busybox();
    let id = w
        .ok(&[
            "run",
            "-d",
            "--memory",
            "64m",
            "busybox",
            "sh",
            "-c",
            "echo x; sleep 77",
        ])
        .trim()
        .to_string();
    let state = inspect(&w, &id);
    let monitor = state["State"]["MonitorPid"].as_i64().unwrap();
    // The monitor is the small binary installed beside wharf, not wharf itself.
    let exe = std::fs::read_link(format!("/proc/{monitor}/exe")).unwrap();
    assert_eq!(exe.file_name().unwrap(), "wharf-monitor", "{exe:?}");
    assert!(pgrep("sleep 77"));
    sh(Command::new("kill").args(["-KILL", &monitor.to_string()]));
    // The supervisor and the container go with their monitor.
    eventually(10, "the container to die with its monitor", || {
        !pgrep("sleep 77")
    });
    let ps = w.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (255)"), "{ps}");
    assert!(
        w.ok(&["ps", "-q"]).trim().is_empty(),
        "not shown as running"
    );
    let state = inspect(&w, &id);
    assert!(
        state["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("monitor"),
        "{state}"
    );
    w.ok(&["rm", "-f", &id]);
    assert!(!w.root().join("containers").join(&id).exists());
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory/wharf/{id}")).exists());
    assert_clean(&w);
}

#[test]
fn logs_rotate_at_their_size_cap() {
    let _serial = serial();
    let w = busybox();
    let id = w
        .ok(&[
            "run",
            "-d",
            "--log-opt",
            "max-size=2k",
            "--log-opt",
            "max-file=3",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo line $i; done",
        ])
        .trim()
        .to_string();
    assert_eq!(w.ok(&["wait", &id]).trim(), "0");
    let dir = w.root().join("containers").join(&id);
    let log = dir.join(format!("{id}-json.log"));
    for f in [
        log.clone(),
        dir.join(format!("{id}-json.log.1")),
        dir.join(format!("{id}-json.log.2")),
    ] {
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(len <= 2048, "{} is {len} bytes", f.display());
    }
    assert!(!dir.join(format!("{id}-json.log.3")).exists());
    let (out, _) = logs(&w, &[&id]);
    let nums: Vec<u32> = out.lines().map(|l| l[5..].parse().unwrap()).collect();
    assert_eq!(*nums.last().unwrap(), 400);
    assert!(
        nums.windows(2).all(|p| p[1] == p[0] + 1),
        "in order, none lost inside the kept files"
    );
    assert!(nums[0] > 1, "the oldest lines were rotated away");
    let err = w.fails(
        &["run", "-d", "--log-opt", "max-size=big", "busybox", "true"],
        125,
    );
    assert!(err.contains("max-size"), "{err}");
    w.ok(&["rm", &id]);
    assert_clean(&w);
}

#[test]
fn fifty_concurrent_run_d_and_rm_f_account_for_every_container() {
    let _serial = serial();
    let w = busybox();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let w = &w;
                s.spawn(move || {
                    let name = format!("c{i}");
                    // An odd duration: pgrep below looks at every process on the host.
                    let id = w.ok(&["run", "-d", "--name", &name, "busybox", "sleep", "4711"]);
                    // Half are removed while the others are still starting.
                    if i % 2 == 0 {
                        w.ok(&["rm", "-f", &name]);
                    }
                    id.trim().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 50, "every run -d got its own id");
    let running = w.ok(&["ps", "-q", "--no-trunc"]);
    let running: std::collections::HashSet<&str> = running.lines().collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(running.contains(id.as_str()), i % 2 == 1, "container c{i}");
    }
    std::thread::scope(|s| {
        for i in (1..50).step_by(2) {
            let w = &w;
            s.spawn(move || w.ok(&["rm", "-f", &format!("c{i}")]));
        }
    });
    assert!(w.ok(&["ps", "-a", "-q"]).is_empty());
    let deadline = Instant::now() + Duration::from_secs(30);
    while pgrep("sleep 4711") {
        if Instant::now() > deadline {
            // Who is left, and whose child: for the report.
            let ps = Command::new("sh")
                .args(["-c", "for p in $(pgrep -f 'sleep 4711'); do ps -o pid,ppid,stat,etime,args -p $p --no-headers; ps -o pid,args -p $(ps -o ppid= -p $p) --no-headers; done"])
                .output()
                .unwrap();
            panic!(
                "container processes left after rm -f:\n{}",
                String::from_utf8_lossy(&ps.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    w.ok(&["system", "check"]);
    assert_clean(&w);
    // The image is no longer pinned.
    w.ok(&["rmi", "busybox"]);
}

#[test]
fn pause_freezes_a_container_and_unpause_resumes_it() {
    let _serial = serial();
    let w = busybox();
    w.ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done",
    ]);
    eventually(10, "output", || {
        logs(&w, &["counter"]).0.lines().count() > 2
    });
    w.ok(&["pause", "counter"]);
    assert!(w.ok(&["ps"]).contains("(Paused)"));
    let state = inspect(&w, "counter");
    assert_eq!(
        (
            state["State"]["Status"].as_str(),
            state["State"]["Paused"].as_bool()
        ),
        (Some("paused"), Some(true))
    );
    let frozen = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/freezer/wharf/{}/freezer.state",
        state["Id"].as_str().unwrap()
    ))
    .unwrap();
    assert_eq!(frozen.trim(), "FROZEN");
    let before = logs(&w, &["counter"]).0.lines().count();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        logs(&w, &["counter"]).0.lines().count(),
        before,
        "no output while paused"
    );
    assert!(
        w.fails(&["exec", "counter", "true"], 125)
            .contains("paused")
    );
    assert!(w.fails(&["kill", "counter"], 125).contains("paused"));
    assert!(w.fails(&["pause", "counter"], 125).contains("paused"));
    w.ok(&["unpause", "counter"]);
    eventually(10, "output again", || {
        logs(&w, &["counter"]).0.lines().count() > before + 2
    });
    assert!(w.fails(&["unpause", "counter"], 125).contains("not paused"));
    // stop and rm -f thaw a paused container first.
    w.ok(&["pause", "counter"]);
    w.ok(&["stop", "-t", "1", "counter"]);
    assert_eq!(w.ok(&["wait", "counter"]).trim(), "137");
    // A wasm guest is paused as a process.
    w.ok(&["run", "-d", "--name", "spin", &wasm("loop.wat")]);
    w.ok(&["pause", "spin"]);
    let pid = inspect(&w, "spin")["State"]["Pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
    assert_eq!(state, 'T', "stopped: {stat}");
    w.ok(&["rm", "-f", "spin", "counter"]);
    assert_clean(&w);
}

/// `ps -a` reads one summary of every container: it follows create, start, exit, rename
/// and rm; a root without it (made by an older wharf) or with a damaged one is listed all
/// the same, `system check` names the damage and `--repair` rebuilds it.
#[test]
fn ps_a_reads_a_summary_that_follows_every_change_and_is_repaired() {
    let w = Wharf::new();
    w.ok(&["package", &wasm("exit42.wat"), "-t", "exit42"]);
    for name in ["one", "two", "three"] {
        w.ok(&["create", "--name", name, "exit42"]);
    }
    w.fails(&["start", "-a", "two"], 42);
    w.ok(&["rename", "three", "drei"]);
    w.ok(&["rm", "one"]);
    let listed = |w: &Wharf| {
        let mut rows: Vec<String> = w
            .ok(&[
                "ps",
                "-a",
                "--format",
                "{{.Names}} {{.State}} {{.ExitCode}}",
            ])
            .lines()
            .map(str::to_string)
            .collect();
        rows.sort();
        rows
    };
    let want = listed(&w);
    assert_eq!(want.len(), 2, "{want:?}");
    assert_eq!(want, ["drei created <nil>", "two exited 42"]);
    assert!(w.ok(&["system", "check"]).contains("0 problems"));
    let journal = w.root().join("containers/.summary");
    // Gone (a root made before the summary): rebuilt by the next listing.
    std::fs::remove_file(&journal).unwrap();
    assert_eq!(listed(&w), want);
    assert!(journal.exists());
    // Damaged: a container's lines lost, one that does not exist added.
    let text = std::fs::read_to_string(&journal).unwrap();
    let two = inspect(&w, "two")["Id"].as_str().unwrap().to_string();
    let mut kept: Vec<String> = text
        .lines()
        .filter(|l| !l.contains(&two))
        .map(str::to_string)
        .collect();
    kept.push(format!(
        "{{\"id\":\"{}\",\"name\":\"ghost\",\"created\":\"2026-01-01T00:00:00Z\",\"image\":\"x\",\"kind\":\"wasm\",\"command\":[],\"networks\":[\"none\"],\"status\":\"exited\"}}",
        "f".repeat(64)
    ));
    std::fs::write(&journal, kept.join("\n") + "\n").unwrap();
    let out = w.run(&["system", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("summary: container") && text.contains("ghost"),
        "{text}"
    );
    w.ok(&["system", "check", "--repair"]);
    assert!(w.ok(&["system", "check"]).contains("0 problems"));
    assert_eq!(listed(&w), want);
    // A line cut short (a writer killed mid-write): the listing rebuilds rather than
    // show a wrong row.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"id\":\"").unwrap();
    drop(f);
    assert_eq!(listed(&w), want);
    w.ok(&["rm", "two", "drei"]);
    assert!(w.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(w.ok(&["system", "check"]).contains("0 problems"));
}
