//! WASI 0.3 components (async exports, stdio and bodies as streams) through the wasm doors
//! of `wharf run`: files and images, the wasi:http 0.3 server and its stop, `run --invoke` of
//! an async export (detached runs: portable.rs); each compared with the official wasmtime CLI
//! of wharf's line on the same component (scripts/peer-wasmtime.sh). Run on Linux, the
//! static builds (x86_64, aarch64 under qemu) and wharf.exe under wine.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use super::{free_port, http, wait_for_port};
use crate::common::*;
use crate::portable::{host_path, windows};

/// The peer: `wasmtime` 48 (WHARF_WASMTIME, set by scripts/test.sh; else fetched).
fn wasmtime() -> Command {
    let path = match std::env::var("WHARF_WASMTIME") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let out = Command::new("bash")
                .arg(repo_dir().join("scripts/peer-wasmtime.sh"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        }
    };
    Command::new(path)
}

/// Exit code, stdout and stderr of `cmd` fed `stdin`.
fn output(mut cmd: Command, stdin: &str) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_p3_command_prints_what_wasmtime_run_prints() {
    let w = Wharf::new();
    let data = w.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("note.txt"), "a note from the host\n").unwrap();
    let file = wasm("p3-command.wasm");
    let dir = host_path(&data);
    // (arguments, stdin, what each case shows)
    let cases: [(&[&str], &str, &str); 4] = [
        (&["one", "two words"], "", "arguments"),
        (
            &["--stdin"],
            "streamed in\nover lines\n",
            "stdin as a stream",
        ),
        (&["--read", "/data/note.txt"], "", "a preopened directory"),
        (&["--exit", "7"], "", "exit-with-code"),
    ];
    for (args, stdin, what) in cases {
        let mut ours = w.cmd(&[
            "run",
            "-i",
            "-e",
            "GREETING=hej",
            "-v",
            &format!("{dir}:/data:ro"),
            &file,
        ]);
        ours.args(args);
        let mut peer = wasmtime();
        peer.args([
            "run",
            "--env",
            "GREETING=hej",
            "--dir",
            &format!("{}::/data", data.display()),
        ]);
        peer.arg(wasm("p3-command.wasm")).args(args);
        let (code, out, err) = output(ours, stdin);
        let (peer_code, peer_out, peer_err) = output(peer, stdin);
        assert_eq!(
            (code, &out),
            (peer_code, &peer_out),
            "{what}: wharf and wasmtime differ\nwharf: {err}\nwasmtime: {peer_err}"
        );
        assert!(
            out.starts_with("hello from a WASI 0.3 component\n"),
            "{what}: {out}"
        );
        assert!(out.contains("GREETING=hej"), "{what}: {out}");
    }
    // The cases' own results, so a shared failure is not taken for agreement.
    let (code, out, _) = output(
        {
            let mut c = w.cmd(&["run", "-v", &format!("{dir}:/data:ro"), &file]);
            c.args(["--read", "/data/note.txt", "--exit", "7"]);
            c
        },
        "",
    );
    assert_eq!(code, 7);
    assert!(out.ends_with("a note from the host\n"), "{out}");
}

/// A one-request-at-a-time HTTP server on loopback answering `body` (the fetch target).
fn upstream(body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn a_p3_http_server_answers_as_wasmtime_serve_does_and_stops() {
    let w = Wharf::new();
    w.ok(&["package", &wasm("p3-http.wasm"), "-t", "web3"]);
    let up = upstream("from upstream\n");
    let (ours, theirs) = (free_port(), free_port());
    // In the foreground (a detached run is tested in portable.rs: qemu-user, which runs the
    // aarch64 build here, cannot start its monitor).
    let mut server = w
        .cmd(&[
            "run",
            "--name",
            "web3",
            "-p",
            &format!("127.0.0.1:{ours}:8080"),
            "web3",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut peer = wasmtime()
        .args(["serve", "-Scli", "--addr", &format!("127.0.0.1:{theirs}")])
        .arg(wasm("p3-http.wasm"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(ours);
    wait_for_port(theirs);
    let fetch = format!("/fetch/127.0.0.1:{up}/file");
    let requests = [
        ("GET", "/hello?x=1", ""),
        ("POST", "/echo", "a body, streamed"),
        ("GET", "/status/418", ""),
        ("GET", fetch.as_str(), ""),
    ];
    for (method, path, body) in requests {
        let got = http(ours, method, path, body);
        assert_eq!(got, http(theirs, method, path, body), "{method} {path}");
        assert_ne!(got.1, "", "{method} {path}");
    }
    let _ = peer.kill();
    let _ = peer.wait();
    assert_eq!(
        http(ours, "GET", "/hello", ""),
        (200, "hello from wasi:http 0.3: GET /hello\n".to_string())
    );
    assert_eq!(http(ours, "GET", &fetch, "").1, "from upstream\n");
    // Many at once: instances take several requests each, all answered right.
    let threads: Vec<_> = (0..40)
        .map(|i| std::thread::spawn(move || http(ours, "GET", &format!("/req/{i}"), "")))
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(
            t.join().unwrap(),
            (200, format!("hello from wasi:http 0.3: GET /req/{i}\n"))
        );
    }
    if windows() {
        w.ok(&["stop", "web3"]);
    } else {
        sh(Command::new("kill").args(["-TERM", &server.id().to_string()]));
    }
    assert_eq!(
        server.wait().unwrap().code(),
        Some(0),
        "a stop ends it cleanly"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", ours)).is_err());
}

/// A request waiting on an upstream that never answers is ended by `--timeout`, with
/// wharf's words, and the server goes on answering.
#[test]
fn a_p3_request_past_its_deadline_is_ended_with_the_limit_named() {
    let w = Wharf::new();
    w.ok(&["package", &wasm("p3-http.wasm"), "-t", "web3"]);
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = silent.local_addr().unwrap().port();
    let port = free_port();
    let mut server = w
        .cmd(&[
            "run",
            "--timeout",
            "400ms",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            "web3",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let started = std::time::Instant::now();
    let (status, body) = http(port, "GET", &format!("/fetch/127.0.0.1:{up}/never"), "");
    let took = started.elapsed();
    let fine = http(port, "GET", "/after", "");
    let _ = server.kill();
    let _ = server.wait();
    drop(silent);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("run-time limit of 400ms exceeded"), "{body}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    assert_eq!(
        fine,
        (200, "hello from wasi:http 0.3: GET /after\n".to_string())
    );
}

#[test]
fn an_async_export_is_invoked_with_its_deadline() {
    let w = Wharf::new();
    w.ok(&["package", &wasm("plugin-async-upper.wasm"), "-t", "up3"]);
    assert_eq!(
        w.ok(&["run", "--invoke", r#"process("calm")"#, "up3"]),
        "ok(\"CALM\")\n"
    );
    // The export waits on an async import (monotonic-clock wait-for): the deadline holds.
    let err = w.fails(
        &[
            "run",
            "--timeout",
            "300ms",
            "--invoke",
            r#"process("wait:10000")"#,
            "up3",
        ],
        137,
    );
    assert!(err.contains("run-time limit"), "{err}");
    let explained = w.ok(&["inspect", "--explain", "up3"]);
    assert!(explained.contains("WASI 0.3"), "{explained}");
}

#[test]
fn a_component_needing_what_wasmtime_48_lacks_is_told_so() {
    let w = Wharf::new();
    // A WASI 0.3 interface this wasmtime does not provide.
    let unknown = w.path("unknown.wat");
    std::fs::write(
        &unknown,
        r#"(component
            (import "wasi:foo/bar@0.3.1" (instance (export "f" (func))))
        )"#,
    )
    .unwrap();
    let err = w.fails(&["run", &host_path(&unknown)], 126);
    assert!(
        err.contains("imports wasi:foo/bar@0.3.1, which wasmtime 48") && err.contains("WASI 0.3"),
        "{err}"
    );
    // Valid, but a component-model feature wasmtime 48 does not enable: not "invalid".
    let stackful = w.path("stackful.wat");
    std::fs::write(
        &stackful,
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func (export "f") async (canon lift (core func $i "f") async))
        )"#,
    )
    .unwrap();
    let err = w.fails(&["run", &host_path(&stackful)], 126);
    assert!(
        err.contains("is valid but needs the component model async stackful feature")
            && !err.contains("invalid WebAssembly"),
        "{err}"
    );
}
