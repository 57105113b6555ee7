//! Native Linux containers, as root on this machine, with the umoci-built busybox image: the
//! isolation runc gives, the limits, signals and exit codes, and nothing left behind.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Native tests run one at a time, so `assert_clean` sees only the containers of the test
/// that calls it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A store with the busybox image loaded.
pub(crate) fn busybox() -> Wharf {
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    w
}

fn run(w: &Wharf, args: &[&str]) -> (i32, String, String) {
    let out = w.run(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `sh -c SCRIPT` in busybox; insists on success, returns stdout.
fn sh_in(w: &Wharf, extra: &[&str], script: &str) -> String {
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    let (code, out, err) = run(w, &args);
    assert_eq!(code, 0, "{script}: {err}");
    out
}

/// Start `wharf ARGS` whose container prints `ready` first; return once it has.
fn spawn_ready(w: &Wharf, args: &[&str]) -> std::process::Child {
    let mut child = w.cmd(args).stdout(Stdio::piped()).spawn().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    child
}

/// The names and active indexes of a root (`containers/.names`, `.active`), once empty,
/// belong to no container; nor does the summary journal once every container it names is
/// removed in it, nor its lock.
fn is_empty_index(e: &std::fs::DirEntry) -> bool {
    let name = e.file_name();
    if name == ".summary.lock" {
        return true;
    }
    if name == ".summary" {
        let text = std::fs::read_to_string(e.path()).unwrap();
        let removed: std::collections::HashSet<&str> =
            text.lines().filter_map(|l| l.strip_prefix('-')).collect();
        return text
            .lines()
            .filter_map(|l| l.strip_prefix("{\"id\":\"")?.get(..64))
            .all(|id| removed.contains(id));
    }
    (name == ".names" || name == ".active") && std::fs::read_dir(e.path()).unwrap().next().is_none()
}

/// Nothing of any container is left on the host: mounts, cgroups, processes; none runs,
/// and `system prune` removes every stopped one with all its state.
pub(crate) fn assert_clean(w: &Wharf) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = s(&w.root());
    assert!(!mountinfo.contains(&root), "a mount under {root} leaked");
    let running = w.ok(&["ps", "-q"]);
    assert!(
        running.trim().is_empty(),
        "containers still running: {running}"
    );
    w.ok(&["system", "prune"]);
    let containers = w.root().join("containers");
    let left: Vec<_> = std::fs::read_dir(&containers)
        .map(|d| {
            d.flatten()
                .filter(|e| !is_empty_index(e))
                .map(|e| e.file_name())
                .filter(|n| n != ".lock")
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "container directories left: {left:?}");
    for hierarchy in ["memory", "pids", "cpu", "devices", "freezer", "unified", ""] {
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join("wharf");
        if let Ok(d) = std::fs::read_dir(&dir) {
            let ours: Vec<_> = d
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter(|e| {
                    !std::fs::read_to_string(e.path().join("cgroup.procs"))
                        .unwrap_or_default()
                        .trim()
                        .is_empty()
                })
                .map(|e| e.path())
                .collect();
            assert!(ours.is_empty(), "cgroups with processes left: {ours:?}");
        }
    }
}

#[test]
fn the_container_sees_only_itself() {
    let _serial = serial();
    let w = busybox();
    assert_eq!(sh_in(&w, &["--hostname", "box"], "hostname").trim(), "box");
    let default_host = sh_in(&w, &[], "hostname");
    assert_eq!(default_host.trim().len(), 12, "{default_host}");
    assert_eq!(sh_in(&w, &[], "echo $$").trim(), "1");
    let pids = sh_in(&w, &[], "ls /proc | grep -c '^[0-9]'");
    assert!(pids.trim().parse::<u32>().unwrap() <= 3, "{pids}");
    let mounts = sh_in(&w, &[], "cat /proc/self/mountinfo");
    for line in mounts.lines() {
        let point = line.split(' ').nth(4).unwrap();
        for host_only in ["/work", "/tmp", "/root", "/home/app/"] {
            assert!(
                !point.starts_with(host_only),
                "host mount {point} visible:\n{mounts}"
            );
        }
    }
    assert!(mounts.lines().count() < 40, "{mounts}");
    let (code, _, _) = run(&w, &["run", "busybox", "ls", "/work"]);
    assert_ne!(code, 0, "host files are not visible");
    let nets = sh_in(&w, &["--network", "none"], "ls /sys/class/net");
    assert_eq!(nets.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    let lo = sh_in(
        &w,
        &[],
        "cat /sys/class/net/lo/operstate /sys/class/net/lo/flags",
    );
    assert!(
        lo.contains("0x9") || lo.contains("unknown"),
        "lo is up: {lo}"
    );
    let etc = sh_in(&w, &[], "cat /etc/hostname /etc/hosts; ls /etc");
    assert!(
        etc.contains("localhost") && etc.contains("layer2") && !etc.contains("motd"),
        "{etc}"
    );
    assert_clean(&w);
}

/// `--device HOST[:CONTAINER[:PERMISSIONS]]`, as Docker's: the host's node made at the
/// container's path with the host's numbers and mode, usable as the permissions say (the
/// devices cgroup refuses the rest); bad input named, exit 125, nothing left.
#[test]
fn device_puts_a_host_node_in_the_container_with_its_permissions() {
    let _serial = serial();
    let w = busybox();
    let out = sh_in(
        &w,
        &[
            "--device",
            "/dev/fuse:/dev/myfuse:r",
            "--device",
            "/dev/kmsg",
        ],
        "stat -c '%t:%T %a' /dev/myfuse /dev/kmsg; head -c 0 /dev/myfuse && echo read-ok; \
         (echo x > /dev/myfuse) 2>/dev/null || echo write-refused",
    );
    let mode = |p: &str| {
        let m =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions());
        format!("{:o}", m & 0o7777)
    };
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("a:e5 {}", mode("/dev/fuse")).as_str(),
            &format!("1:b {}", mode("/dev/kmsg")),
            "read-ok",
            "write-refused"
        ],
        "{out}"
    );
    for (arg, want) in [
        (
            "/etc/passwd",
            "--device /etc/passwd: not a character or block device",
        ),
        (
            "/dev/no-such",
            "--device /dev/no-such: No such file or directory",
        ),
        ("/dev/fuse:dev/x", "invalid device \"/dev/fuse:dev/x\""),
        ("/dev/fuse:/dev/x:rwx", "the permissions are letters of rwm"),
    ] {
        let (code, _, err) = run(&w, &["run", "--rm", "--device", arg, "busybox", "true"]);
        assert_eq!(code, 125, "{arg}: {err}");
        assert!(err.contains(want), "{arg}: {err}");
    }
    assert_clean(&w);
}

#[test]
fn confinement_matches_runc_defaults() {
    let _serial = serial();
    let w = busybox();
    let status = sh_in(
        &w,
        &[],
        "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status",
    );
    for want in [
        "CapEff:\t00000000a80425fb",
        "CapBnd:\t00000000a80425fb",
        "CapInh:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
    ] {
        assert!(status.contains(want), "{want} missing from:\n{status}");
    }
    // Blocked syscalls fail.
    for blocked in [
        "unshare -m true",
        "mount -t tmpfs none /mnt",
        "hostname evil",
    ] {
        let (code, _, _) = run(&w, &["run", "busybox", "sh", "-c", blocked]);
        assert_ne!(code, 0, "{blocked} succeeded");
    }
    // Masked paths read empty; /proc/sys is read-only.
    assert_eq!(
        sh_in(&w, &[], "cat /proc/kcore | wc -c; cat /proc/keys | wc -c")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "0"]
    );
    let (code, _, err) = run(
        &w,
        &[
            "run",
            "busybox",
            "sh",
            "-c",
            "echo x > /proc/sys/kernel/domainname",
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("Read-only") || err.contains("read-only"),
        "{err}"
    );
    // Capabilities follow --cap-drop / --cap-add.
    let eff = sh_in(
        &w,
        &["--cap-drop", "ALL", "--cap-add", "CHOWN"],
        "grep CapEff /proc/self/status",
    );
    assert!(eff.contains("0000000000000001"), "{eff}");
    // Only the standard devices may be opened (a node for a host disk can be made, not used).
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let list = sh_in(&w, &[], "cat /sys/fs/cgroup/devices/devices.list");
        assert!(
            list.contains("c 1:3 rwm") && !list.contains("a *:* rwm"),
            "{list}"
        );
    }
    // seccomp=unconfined turns the filter off.
    assert!(
        sh_in(
            &w,
            &["--security-opt", "seccomp=unconfined"],
            "grep Seccomp: /proc/self/status"
        )
        .contains("Seccomp:\t0")
    );
    assert_clean(&w);
}

#[test]
fn read_only_root_volumes_tmpfs_user_and_workdir() {
    let _serial = serial();
    let w = busybox();
    let (code, _, err) = run(&w, &["run", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only"), "{err}");
    assert_eq!(
        sh_in(
            &w,
            &["--read-only", "--tmpfs", "/scratch"],
            "echo ok > /scratch/f && cat /scratch/f"
        )
        .trim(),
        "ok"
    );
    let data = w.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("in"), "from host").unwrap();
    let v = format!("{}:/data", s(&data));
    assert_eq!(
        sh_in(&w, &["-v", &v], "cat /data/in; echo out > /data/out").trim(),
        "from host"
    );
    assert_eq!(std::fs::read_to_string(data.join("out")).unwrap(), "out\n");
    let (code, _, _) = run(
        &w,
        &[
            "run",
            "-v",
            &format!("{v}:ro"),
            "busybox",
            "sh",
            "-c",
            "echo x > /data/out2",
        ],
    );
    assert_ne!(code, 0);
    assert!(!data.join("out2").exists());
    // A named volume: made on first use with the image's files at its mount point (links
    // kept as links); a later run sees what the first one wrote; in use, it stays.
    assert_eq!(
        sh_in(
            &w,
            &["-v", "etc:/etc"],
            "cat /etc/layer2; echo kept > /etc/new"
        )
        .trim(),
        "layer two"
    );
    let vol = w.root().join("volumes/etc/_data");
    assert!(vol.join("passwd").is_file() && vol.join("new").is_file());
    assert_eq!(
        sh_in(
            &w,
            &["-v", "etc:/mnt:ro"],
            "cat /mnt/new; ls /mnt | grep -c passwd"
        )
        .trim(),
        "kept\n1"
    );
    let vols = w.ok(&["volume", "ls", "-q"]);
    assert_eq!(vols.trim(), "etc");
    assert_eq!(
        sh_in(&w, &["-u", "app"], "id -u; id -g; id -G; echo $HOME")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1000", "1000", "1000", "10", "/home/app"]
    );
    assert_eq!(
        sh_in(&w, &["-u", "1000:10"], "id -u; id -g")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1000", "10"]
    );
    assert!(
        sh_in(&w, &["-u", "app"], "grep CapEff /proc/self/status").contains("0000000000000000")
    );
    let (code, _, err) = run(&w, &["run", "-u", "nosuchuser", "busybox", "true"]);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("nosuchuser"), "{err}");
    assert_eq!(sh_in(&w, &["-w", "/tmp"], "pwd").trim(), "/tmp");
    // -t: stdio is a terminal (output relayed from the pty: newlines become CRLF).
    let tty = sh_in(&w, &["-t"], "test -t 0 && test -t 1 && echo is-a-tty");
    assert_eq!(tty, "is-a-tty\r\n");
    // The terminal is the container's own: /dev/pts/0 of its devpts names it.
    let name = sh_in(&w, &["-t"], "tty; ls -1 /dev/pts");
    assert_eq!(name, "/dev/pts/0\r\n0\r\nptmx\r\n");
    // stdin is /dev/null unless -i.
    let mut child = w
        .cmd(&["run", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let _keep_open = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty());
    let mut child = w
        .cmd(&["run", "-i", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"piped in").unwrap();
    assert_eq!(child.wait_with_output().unwrap().stdout, b"piped in");
    assert_eq!(
        sh_in(&w, &["-e", "GREETING=hi there"], "echo $GREETING").trim(),
        "hi there"
    );
    assert_eq!(
        sh_in(&w, &["--ulimit", "nofile=100:200"], "ulimit -n; ulimit -Hn")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["100", "200"]
    );
    assert_clean(&w);
}

#[test]
fn exit_codes_follow_docker() {
    let _serial = serial();
    let w = busybox();
    assert_eq!(run(&w, &["run", "busybox", "sh", "-c", "exit 3"]).0, 3);
    assert_eq!(run(&w, &["run", "busybox", "true"]).0, 0);
    let (code, _, err) = run(&w, &["run", "busybox", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("no-such-command"), "{err}");
    let (code, _, err) = run(&w, &["run", "busybox", "/etc/passwd"]);
    assert_eq!(code, 126, "{err}");
    // Killed by a signal inside: 128 + N.
    assert_eq!(
        run(
            &w,
            &["run", "busybox", "sh", "-c", "sh -c 'kill -9 $$'; exit $?"]
        )
        .0,
        137
    );
    assert_clean(&w);
}

#[test]
fn signals_reach_pid_1() {
    let _serial = serial();
    let w = busybox();
    let mut child = spawn_ready(
        &w,
        &[
            "run",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    sh(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    assert_clean(&w);
}

#[test]
fn an_image_in_use_is_not_removed_under_a_running_container() {
    let _serial = serial();
    let w = busybox();
    let child = spawn_ready(
        &w,
        &[
            "run",
            "busybox",
            "sh",
            "-c",
            "echo ready; sleep 3; cat /etc/layer2",
        ],
    );
    let err = w.fails(&["rmi", "busybox"], 125);
    assert!(err.contains("in use by a container"), "{err}");
    // Forced: the name goes, but the layers the container runs on stay until it ends.
    w.ok(&["rmi", "-f", "busybox"]);
    w.ok(&["system", "prune"]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "layer two\n");
    w.ok(&["system", "prune"]);
    assert_eq!(
        std::fs::read_dir(w.root().join("layers")).unwrap().count(),
        0
    );
    assert_clean(&w);
}

#[test]
fn a_killed_wharf_takes_its_container_along_and_the_next_run_cleans_up() {
    let _serial = serial();
    let w = busybox();
    // (A sleep no other test runs: pgrep looks at the whole machine.)
    let mut child = spawn_ready(&w, &["run", "busybox", "sh", "-c", "echo ready; sleep 47"]);
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    // The container dies with its supervisor (PR_SET_PDEATHSIG) ...
    let deadline = Instant::now() + Duration::from_secs(10);
    while Command::new("pgrep")
        .args(["-f", "sleep 47"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the container outlived its wharf"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // ... `ps` tells the truth about it, and its leftovers (cgroup, state) go with it.
    let ps = w.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (255)"), "{ps}");
    let id = w.ok(&["ps", "-aq"]);
    let state = inspect(&w, id.trim());
    assert_eq!(state["State"]["ExitCode"], 255);
    assert!(
        state["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("died without recording"),
        "{state}"
    );
    w.ok(&["run", "--rm", "busybox", "true"]);
    assert_clean(&w);
}

#[test]
fn init_reaps_zombies_and_forwards_signals() {
    let _serial = serial();
    let w = busybox();
    let out = sh_in(
        &w,
        &["--init"],
        "echo $$; cat /proc/1/status | grep -E '^(CapEff|State)'; (sleep 0.1 &); sleep 0.5; ps -o stat | grep -c Z; cat /proc/1/exe > /dev/null 2>&1 && echo READ || echo denied",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2", "the workload is pid 2 under --init: {out}");
    assert!(
        out.contains("CapEff:\t0000000000000000"),
        "pid 1 holds no capabilities: {out}"
    );
    assert_eq!(lines[lines.len() - 2], "0", "no zombies: {out}");
    assert_eq!(
        lines[lines.len() - 1],
        "denied",
        "/proc/1/exe is out of reach: {out}"
    );
    let mut child = spawn_ready(
        &w,
        &[
            "run",
            "--init",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 9' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    sh(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    assert_eq!(child.wait().unwrap().code(), Some(9));
    assert_clean(&w);
}

#[test]
fn memory_and_pids_limits() {
    let _serial = serial();
    let w = busybox();
    let (code, _, err) = run(
        &w,
        &[
            "run",
            "--memory",
            "32m",
            "busybox",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=256M",
            "count=1",
        ],
    );
    assert_eq!(code, 137, "{err}");
    assert!(err.contains("OOM"), "{err}");
    // A fork bomb hits pids.max: busybox sh gives up with "can't fork".
    let start = Instant::now();
    let (code, out, err) = run(
        &w,
        &[
            "run",
            "--pids-limit",
            "10",
            "busybox",
            "sh",
            "-c",
            "while :; do sleep 30 & done",
        ],
    );
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("can't fork"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the bomb was stopped, and its children killed"
    );
    assert_clean(&w);
}

#[test]
fn a_symlinked_proc_in_the_image_is_refused() {
    let _serial = serial();
    use crate::common::layout::{tar, write_image};
    let w = busybox();
    let bb = std::fs::read("/bin/busybox").unwrap();
    let src = w.path("evil");
    write_image(
        &src,
        "evil",
        &[tar(&[
            ("bin/sh", tar::EntryType::Regular, "", &bb),
            ("proc", tar::EntryType::Symlink, "/", b""),
        ])],
    );
    w.ok(&["load", "-i", &s(&src)]);
    let (code, _, err) = run(&w, &["run", "evil", "/bin/sh", "-c", "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("/proc") && err.contains("symlink"), "{err}");
    assert_clean(&w);
}

/// A user made for the rootless test (created once, left for later runs).
pub(crate) fn rootless_user() -> &'static str {
    const USER: &str = "wharf-rootless";
    let exists = Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        sh(Command::new("useradd").args(["--no-create-home", "--shell", "/bin/sh", USER]));
    }
    USER
}

#[test]
fn an_unprivileged_user_runs_native_images_rootless() {
    let _serial = serial();
    let user = rootless_user();
    // Everything the user needs, readable by it: the binary, the image, a root of its own.
    let dir = tempfile::Builder::new()
        .prefix("wharf-rootless-")
        .tempdir()
        .unwrap();
    let base = dir.path();
    std::fs::set_permissions(base, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bin = base.join("wharf");
    std::fs::copy(crate::common::bin("wharf"), &bin).unwrap();
    let archive = base.join("busybox.tar");
    std::fs::copy(busybox_images().join("busybox-oci.tar"), &archive).unwrap();
    let root = base.join("root");
    std::fs::create_dir(&root).unwrap();
    sh(Command::new("chown").arg(user).arg(&root));
    let as_user = |args: &[&str]| {
        Command::new("runuser")
            .args(["-u", user, "--"])
            .arg(&bin)
            .arg("--root")
            .arg(&root)
            .args(args)
            .current_dir(base)
            .output()
            .unwrap()
    };
    let out = as_user(&["load", "-i", &s(&archive)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_user(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        "id -u; echo pid $$; cat /proc/self/uid_map; hostname; cat /etc/layer2; ls /etc/motd 2>&1; touch /x && echo writable",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "0", "root inside: {stdout}");
    assert_eq!(lines[1], "pid 1");
    let uid = String::from_utf8(
        Command::new("id")
            .args(["-u", user])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["0", uid.trim(), "1"],
        "{stdout}"
    );
    assert!(
        stdout.contains("layer two")
            && stdout.contains("No such file")
            && stdout.contains("writable"),
        "{stdout}"
    );
    assert!(stderr.contains("cgroup limits skipped"), "{stderr}");
    assert!(stderr.contains("copying the image"), "{stderr}");
    // Nothing left: no state directory, no process of the user.
    let left: Vec<_> = std::fs::read_dir(root.join("containers"))
        .map(|d| {
            // The lock and the (now empty) names index are the root's, not a container's.
            d.flatten()
                .filter(|e| e.file_name() != ".lock")
                .filter(|e| !is_empty_index(e))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let procs = Command::new("pgrep").args(["-u", user]).output().unwrap();
    assert!(
        procs.stdout.is_empty(),
        "processes of {user} left: {}",
        String::from_utf8_lossy(&procs.stdout)
    );
}
