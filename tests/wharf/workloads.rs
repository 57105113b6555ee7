//! Real workloads, with software nobody on the team wrote: a Debian bookworm image made by
//! debootstrap and umoci (tests/fixtures/make-debian-image.sh) running PostgreSQL as its own
//! user on a named volume, nginx behind a published port, and a compose file whose client
//! waits for a health-checked database; and the command-line behaviour real images lean on
//! (arguments after IMAGE, `exec -t`, open-file limits, image names, `--init`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::native::{busybox, serial};
use crate::network::{inspect as host_inspect, setup, wait_for};

/// Poll `args` inside the store until it succeeds (a server that is starting).
fn until_ok(w: &Wharf, args: &[&str], secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let out = w.run(args);
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} never succeeded: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// PostgreSQL's start as the official images do it: initdb on a first start only.
const PG_START: &str = "PGDATA=/var/lib/postgresql/data; \
    [ -s $PGDATA/PG_VERSION ] || initdb -D $PGDATA >/dev/null || exit 1; \
    exec postgres -D $PGDATA -k /tmp -c listen_addresses=''";

#[test]
fn postgres_runs_as_its_own_user_on_a_named_volume_and_keeps_its_rows_through_kill() {
    let _turn = serial();
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&debian_image())]);
    w.ok(&[
        "run",
        "-d",
        "--name",
        "pg",
        "-u",
        "postgres",
        "-v",
        "pgdata:/var/lib/postgresql",
        "debian-services",
        "sh",
        "-c",
        PG_START,
    ]);
    let ready = ["exec", "pg", "pg_isready", "-q", "-h", "/tmp"];
    until_ok(&w, &ready, 60);
    // The volume's top directory took the image's owner and mode (initdb wrote under it).
    let top = w.ok(&[
        "run",
        "--rm",
        "-v",
        "pgdata:/var/lib/postgresql",
        "debian-services",
        "stat",
        "-c",
        "%U %a",
        "/var/lib/postgresql",
    ]);
    assert_eq!(top.trim(), "postgres 755");
    w.ok(&[
        "exec",
        "pg",
        "psql",
        "-h",
        "/tmp",
        "-v",
        "ON_ERROR_STOP=1",
        "-qc",
        "create table t (n int); insert into t select generate_series(1, 100);",
    ]);
    // kill -9, as a crash; PostgreSQL recovers from its WAL on the next start.
    w.ok(&["kill", "pg"]);
    eventually(10, "pg to end", || {
        inspect(&w, "pg")["State"]["Status"] == "exited"
    });
    w.ok(&["start", "pg"]);
    until_ok(&w, &ready, 60);
    let count = w.ok(&[
        "exec",
        "pg",
        "psql",
        "-h",
        "/tmp",
        "-tAc",
        "select count(*) from t",
    ]);
    assert_eq!(count.trim(), "100");
    // PostgreSQL logs to stderr, which `logs` gives back as stderr.
    let out = w.run(&["logs", "pg"]);
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("database system was interrupted"),
        "recovered after the kill: {logs}"
    );
    // A volume in use is neither removed nor pruned; once its container is gone, it is.
    let err = w.fails(&["volume", "rm", "pgdata"], 1);
    assert!(err.contains("in use") && err.contains("pg"), "{err}");
    assert!(!w.ok(&["volume", "prune", "-f"]).contains("pgdata"));
    w.ok(&["rm", "-f", "pg"]);
    w.ok(&["volume", "rm", "pgdata"]);
}

#[test]
fn nginx_from_debian_answers_on_its_published_port() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let before = host.rules();
    host.ok(&["load", "-i", &s(&debian_image())]);
    host.ok(&["network", "create", "web"]);
    host.ok(&[
        "run",
        "-d",
        "--name",
        "nginx",
        "--network",
        "web",
        "-p",
        "18091:80",
        "debian-services",
        "nginx",
    ]);
    let page = wait_for(host, "http://127.0.0.1:18091/");
    assert!(page.contains("served by nginx in a wharf test"), "{page}");
    let ps = host.ok(&["ps"]);
    assert!(ps.contains("127.0.0.1:18091->80/tcp"), "{ps}");
    host.ok(&["rm", "-f", "nginx"]);
    host.ok(&["network", "rm", "web"]);
    host.assert_clean(w, &before);
}

/// The usual compose file: PostgreSQL with a health check, and a client that starts only
/// once the database is healthy. `$$` keeps a `$` for the container's shell.
const COMPOSE: &str = r#"services:
  db:
    image: debian-services
    user: postgres
    environment:
      PGDATA: /var/lib/postgresql/data
    command:
      - sh
      - -c
      - |
        [ -s "$$PGDATA/PG_VERSION" ] || { initdb -D "$$PGDATA" --auth=trust >/dev/null && echo "host all all all trust" >> "$$PGDATA/pg_hba.conf"; } || exit 1
        exec postgres -D "$$PGDATA" -k /tmp -c listen_addresses='*'
    volumes: [pgdata:/var/lib/postgresql]
    healthcheck:
      test: [CMD, pg_isready, -q, -h, /tmp]
      interval: 1s
      retries: 60
  client:
    image: debian-services
    user: postgres
    depends_on:
      db: {condition: service_healthy}
    command: [psql, -h, db, -tAc, "select 40 + 2"]
volumes:
  pgdata:
"#;

#[test]
fn compose_starts_the_client_once_postgres_is_healthy() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let before = host.rules();
    host.ok(&["load", "-i", &s(&debian_image())]);
    let dir = w.path("pgapp");
    std::fs::create_dir_all(&dir).unwrap();
    let file = s(&dir.join("compose.yaml"));
    std::fs::write(&file, COMPOSE).unwrap();
    // `config` writes a file that reads back as the same project ($$ stays $$).
    let config = host.ok(&["compose", "-f", &file, "config"]);
    assert!(config.contains("$$PGDATA/PG_VERSION"), "{config}");
    let again = s(&dir.join("config.yaml"));
    std::fs::write(&again, &config).unwrap();
    assert_eq!(host.ok(&["compose", "-f", &again, "config"]), config);

    host.ok(&["compose", "-f", &file, "up", "-d"]);
    let db = host_inspect(host, "pgapp-db-1");
    assert_eq!(db["State"]["Health"]["Status"], "healthy", "{db}");
    eventually(30, "the client to end", || {
        host_inspect(host, "pgapp-client-1")["State"]["Status"] == "exited"
    });
    let logs = host.ok(&["compose", "-f", &file, "logs", "client"]);
    assert!(logs.contains("42"), "{logs}");
    assert_eq!(host_inspect(host, "pgapp-client-1")["State"]["ExitCode"], 0);
    // Options end at SERVICE: `-h` and `-tAc` go to psql, not to compose run.
    let out = host.ok(&[
        "compose",
        "-f",
        &file,
        "run",
        "--rm",
        "client",
        "psql",
        "-h",
        "db",
        "-tAc",
        "select 6 * 7",
    ]);
    assert_eq!(out.trim(), "42");
    host.ok(&["compose", "-f", &file, "down", "-v"]);
    host.assert_clean(w, &before);
}

#[test]
fn arguments_after_the_image_or_container_go_to_the_program() {
    let _turn = serial();
    let w = busybox();
    let flags = [
        "-p", "8080", "-t", "x", "-u", "nobody", "-e", "A=1", "-w", "/tmp", "-l", "k=v", "-d",
    ];
    let mut args = vec!["run", "--rm", "busybox", "echo"];
    args.extend(flags);
    assert_eq!(w.ok(&args).trim(), flags.join(" "));
    let out = w.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "-p",
        "8080",
    ]);
    assert_eq!(out.trim(), "-p 8080");
    // create: kept for the start.
    w.ok(&[
        "create", "--name", "later", "busybox", "echo", "-p", "1", "--rm",
    ]);
    w.ok(&["start", "later"]);
    eventually(10, "later to end", || {
        inspect(&w, "later")["State"]["Status"] == "exited"
    });
    assert_eq!(w.ok(&["logs", "later"]).trim(), "-p 1 --rm");
    // exec: options end at the container.
    w.ok(&["run", "-d", "--name", "c", "busybox", "sleep", "1000"]);
    let out = w.ok(&["exec", "c", "echo", "-u", "nobody", "-e", "X=1", "-w", "/"]);
    assert_eq!(out.trim(), "-u nobody -e X=1 -w /");
    // wharf's options before IMAGE still work, and one it does not know is an error.
    let out = w.ok(&["exec", "-u", "nobody", "c", "id", "-un"]);
    assert_eq!(out.trim(), "nobody");
    // (Docker's exit code for a command line it cannot read: 125.)
    let err = w.fails(&["run", "--no-such-flag", "busybox", "true"], 125);
    assert!(err.contains("--no-such-flag"), "{err}");
    w.ok(&["rm", "-f", "c", "later"]);
}

#[test]
fn exec_with_a_terminal_relays_it_with_or_without_one_here() {
    let _turn = serial();
    let w = busybox();
    w.ok(&["run", "-d", "--name", "c", "busybox", "sleep", "1000"]);
    // No terminal here (pipes): the command still gets one inside.
    let out = w.run(&["exec", "-t", "c", "sh", "-c", "tty; echo done"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("/dev/pts/") && stdout.contains("done"),
        "{stdout}"
    );
    assert_eq!(
        w.run(&["exec", "-t", "c", "sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );
    // -it: what we type reaches the program through its terminal.
    let mut child = w
        .cmd(&["exec", "-i", "-t", "c", "head", "-n", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"ping\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ping"),
        "{out:?}"
    );
    // Under a real terminal (script(1) makes one): our size is the container's from the
    // program's first instruction (a program asking at once must not see 0x0).
    for verb in ["exec -t c", "run --rm -t busybox"] {
        let line = format!(
            "stty rows 33 cols 101; {} --root {} {verb} sh -c 'stty size; tty'",
            wharf_command().get_program().to_string_lossy(),
            s(&w.root())
        );
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{verb}: {text}");
        assert!(
            text.contains("33 101") && text.contains("/dev/pts/"),
            "{verb}: {text}"
        );
    }
    w.ok(&["rm", "-f", "c"]);
}

#[test]
fn containers_get_podmans_open_file_limit_unless_told() {
    let _turn = serial();
    let w = busybox();
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ours: u64 = sh(Command::new("sh").args(["-c", "ulimit -Hn"]))
        .trim()
        .parse()
        .unwrap_or(u64::MAX);
    // Podman's 1048576 where wharf may raise its limits (CAP_SYS_RESOURCE); else ours.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap();
    let want = if eff & (1 << 24) != 0 {
        (1u64 << 20).max(ours).min(nr_open)
    } else {
        ours
    };
    let out = w.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, format!("{want}\n{want}\n"));
    let out = w.ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=1024:2048",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, "1024\n2048\n");
}

#[test]
fn short_hexadecimal_and_one_letter_names_are_names() {
    let _turn = serial();
    let w = busybox();
    let id = w.images()[0]["Id"].as_str().unwrap().to_string();
    for name in ["bb", "cafe", "deadbeef:latest"] {
        w.ok(&["tag", "busybox", name]);
        assert_eq!(w.ok(&["run", "--rm", name, "echo", "ok"]).trim(), "ok");
    }
    // An id prefix still finds the image when no name matches it.
    let prefix = id.trim_start_matches("sha256:")[..12].to_string();
    assert_eq!(w.ok(&["run", "--rm", &prefix, "echo", "ok"]).trim(), "ok");
    // A whole id cannot become a name.
    let err = w.fails(&["tag", "busybox", &"a".repeat(64)], 125);
    assert!(err.contains("64-digit"), "{err}");
    // A one-letter name is not a drive letter off Windows.
    w.ok(&["package", &wasm("hello.wasm"), "-t", "h:1"]);
    let out = w.ok(&["run", "--rm", "h:1"]);
    assert!(out.to_lowercase().contains("hello"), "{out}");
    let out = w.ok(&[
        "run",
        "--rm",
        "-v",
        "c:/data",
        "busybox",
        "sh",
        "-c",
        "touch /data/x && echo ok",
    ]);
    assert_eq!(out.trim(), "ok");
    assert!(w.ok(&["volume", "ls"]).contains('c'));
}

#[test]
fn print_spec_makes_nothing_and_init_shows_as_wharf_init() {
    let _turn = serial();
    let w = busybox();
    let spec = w.ok(&["run", "--print-spec", "-v", "fresh:/data", "busybox"]);
    assert!(spec.contains("/volumes/fresh/_data"), "{spec}");
    assert_eq!(w.ok(&["volume", "ls", "-q"]).trim(), "", "no volume made");
    // Nothing is recorded by --print-spec: what only a record needs is not checked.
    w.ok(&["run", "--print-spec", "--restart", "always", "busybox"]);
    // An empty name is none, as Docker's: one is made up.
    w.ok(&["run", "--rm", "--name", "", "busybox", "true"]);
    let err = w.fails(
        &["run", "--health-test", "[\"curl\"]", "busybox", "true"],
        125,
    );
    assert!(
        err.contains("invalid --health-test") && err.contains("CMD, CMD-SHELL or NONE"),
        "{err}"
    );
    let ps = w.ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "ps",
        "-o",
        "pid,comm,args",
    ]);
    let one = ps
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_else(|| panic!("no pid 1: {ps}"));
    let fields: Vec<&str> = one.split_whitespace().collect();
    assert_eq!(fields, ["1", "wharf-init", "wharf-init"], "{ps}");
}

#[test]
fn load_precompile_keeps_the_images_and_names_the_compile_limit() {
    let a = Wharf::new();
    a.ok(&["package", &wasm("hello.wasm"), "-t", "hello:1"]);
    let archive = a.path("hello.tar");
    a.ok(&["save", "-o", &s(&archive), "hello:1"]);
    let b = Wharf::new();
    let err = b.fails(
        &[
            "load",
            "-i",
            &s(&archive),
            "--precompile",
            "--compile-timeout",
            "1ms",
        ],
        125,
    );
    assert!(
        err.contains("--compile-timeout") && err.contains("they are loaded"),
        "{err}"
    );
    assert_eq!(b.images().len(), 1, "loaded all the same");
    let out = b.ok(&[
        "load",
        "-i",
        &s(&archive),
        "--precompile",
        "--compile-timeout",
        "5m",
    ]);
    assert!(out.contains("Precompiled"), "{out}");
}
