//! Pull and push through a real registry (Debian's docker-registry on 127.0.0.1), with
//! images wharf wrote and images skopeo pushed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A docker-registry serving plain HTTP on a free loopback port; stopped when dropped.
pub(crate) struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub(crate) fn start() -> Registry {
        Self::start_with(|_| String::new(), "")
    }

    /// With TLS from a test CA (`certs/ca.crt` in its directory) and htpasswd auth for
    /// alice:s3cret.
    pub(crate) fn start_secure() -> Registry {
        Self::start_with(
            |dir| {
                let d = s(dir);
                test_ca(dir);
                sh(Command::new("htpasswd")
                    .args(["-Bbc", "htpasswd", "alice", "s3cret"])
                    .current_dir(dir));
                format!("  tls:\n    certificate: {d}/server.crt\n    key: {d}/server.key\n")
            },
            "auth:\n  htpasswd:\n    realm: wharf-test\n    path: HTPASSWD\n",
        )
    }

    fn start_with(http_extra: impl Fn(&std::path::Path) -> String, auth: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        let tls = http_extra(dir.path());
        let auth = auth.replace("HTPASSWD", &s(&dir.path().join("htpasswd")));
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{tls}{auth}",
                s(&dir.path().join("data"))
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            port,
            _dir: dir,
        }
    }

    /// The `--cert-dir` that trusts a secure registry's CA.
    pub(crate) fn cert_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("certs")
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn native_and_wasm_images_round_trip_through_a_registry() {
    let reg = Registry::start();
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    w.ok(&["package", &wasm("hello.wasm"), "-t", "hello"]);
    let bb = format!("{}/tools/busybox:1", reg.host());
    let hello = format!("{}/wasm/hello:v1", reg.host());
    w.ok(&["push", "busybox", &bb]);
    w.ok(&["push", "hello", &hello]);
    // skopeo, which wharf did not write, reads what wharf pushed.
    let raw = sh(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{bb}"),
    ]));
    assert!(raw.contains("layers"), "{raw}");
    let fresh = Wharf::new();
    fresh.ok(&["pull", &bb]);
    fresh.ok(&["pull", "-q", &hello]);
    let digest = |w: &Wharf, name: &str| -> String {
        w.images()
            .into_iter()
            .find(|i| i["Repository"].as_str().unwrap().ends_with(name))
            .unwrap()["Digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(digest(&w, "busybox"), digest(&fresh, "tools/busybox"));
    assert_eq!(digest(&w, "hello"), digest(&fresh, "wasm/hello"));
    // `run` pulls what is missing.
    let runner = Wharf::new();
    let out = runner.ok(&["run", &hello, "pulled"]);
    assert!(out.contains("arg[1]=pulled"), "{out}");
    let err = runner.fails(
        &[
            "run",
            "--pull",
            "never",
            &format!("{}/wasm/other:1", reg.host()),
        ],
        125,
    );
    assert!(err.contains("no such image"), "{err}");
    let out = fresh.ok(&["run", &hello, "pulled"]);
    assert!(out.contains("arg[1]=pulled"), "{out}");
    #[cfg(target_os = "linux")]
    assert_eq!(
        fresh.ok(&["run", &bb, "echo", "from the registry"]),
        "from the registry\n"
    );
    // On a terminal, each blob gets a progress bar (script(1) provides the pty).
    let tty = Wharf::new();
    let line = format!("{} --root {} pull {}", s(&bin("wharf")), s(&tty.root()), bb);
    let out = sh(Command::new("script").args(["-qec", &line, "/dev/null"]));
    assert!(out.contains("verified") && out.contains("[="), "{out}");
    // A second pull fetches nothing new.
    let again = fresh.run(&["pull", &bb]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already present"));
    assert!(fresh.ok(&["system", "check"]).contains("0 problems"));
}

#[test]
fn images_pushed_by_skopeo_pull_and_missing_ones_fail_cleanly() {
    let reg = Registry::start();
    let target = format!("{}/skopeo/busybox:latest", reg.host());
    sh(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:busybox", s(&busybox_images().join("layout"))),
        &format!("docker://{target}"),
    ]));
    let w = Wharf::new();
    let out = w.ok(&["pull", &target]);
    assert!(out.contains(&target), "{out}");
    assert_eq!(w.images()[0]["Kind"], "native");
    let err = w.fails(&["pull", &format!("{}/nothing/here:1", reg.host())], 125);
    assert!(err.contains("nothing/here"), "{err}");
    assert_eq!(w.images().len(), 1);
    assert!(w.ok(&["system", "check"]).contains("0 problems"));
}

#[test]
fn login_and_logout_keep_docker_config_json() {
    let w = Wharf::new();
    let docker = w.path("docker-config");
    let run = |args: &[&str]| w.cmd(args).env("DOCKER_CONFIG", &docker).output().unwrap();
    let out = run(&[
        "login",
        "registry.example:5000",
        "-u",
        "alice",
        "-p",
        "s3cret",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(docker.join("config.json")).unwrap()).unwrap();
    // base64("alice:s3cret")
    assert_eq!(
        config["auths"]["registry.example:5000"]["auth"],
        "YWxpY2U6czNjcmV0"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(docker.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(run(&["logout", "registry.example:5000"]).status.success());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(docker.join("config.json")).unwrap()).unwrap();
    assert!(config["auths"].as_object().unwrap().is_empty());
    assert_eq!(
        run(&["logout", "registry.example:5000"]).status.code(),
        Some(125)
    );
}

#[test]
fn tls_with_a_test_ca_and_htpasswd_auth() {
    let reg = Registry::start_secure();
    let certs = reg._dir.path().join("certs");
    let w = Wharf::new();
    let docker = w.path("docker-config");
    let run = |args: &[&str]| w.cmd(args).env("DOCKER_CONFIG", &docker).output().unwrap();
    w.ok(&["package", &wasm("hello.wasm"), "-t", "hello"]);
    let target = format!("{}/secure/hello:1", reg.host());
    let cert_dir = s(&certs);
    // Without credentials: refused.
    let out = run(&["push", "--cert-dir", &cert_dir, "hello", &target]);
    assert_eq!(out.status.code(), Some(125));
    // Without the CA: the certificate is not trusted.
    assert!(
        run(&["login", &reg.host(), "-u", "alice", "-p", "s3cret"])
            .status
            .success()
    );
    let out = run(&["push", "hello", &target]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "an untrusted certificate must fail"
    );
    // With both: push and pull work, over TLS.
    let out = run(&["push", "--cert-dir", &cert_dir, "hello", &target]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = Wharf::new();
    let out = fresh
        .cmd(&["pull", "--cert-dir", &cert_dir, &target])
        .env("DOCKER_CONFIG", &docker)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fresh.images()[0]["Kind"], "wasm");
    // skopeo agrees the registry holds it, with the same credentials.
    let raw = sh(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--cert-dir",
        &cert_dir,
        "--creds",
        "alice:s3cret",
        &format!("docker://{target}"),
    ]));
    assert!(raw.contains("application/vnd.wasm.config.v0+json"), "{raw}");
}

/// A test CA and a server certificate it signed for 127.0.0.1 and localhost, made by
/// openssl in `dir`: `ca.crt`, `server.crt`, `server.key`, and `certs/ca.crt` (what
/// `--cert-dir` takes).
pub(crate) fn test_ca(dir: &std::path::Path) {
    let openssl = |args: &[&str]| sh(Command::new("openssl").args(args).current_dir(dir));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=wharf test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
    ]);
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::copy(dir.join("ca.crt"), dir.join("certs/ca.crt")).unwrap();
}

/// How the proxy misbehaves on blob downloads.
#[derive(Clone, Copy)]
enum Fault {
    /// Answer 503 to the first N blob requests.
    Unavailable(usize),
    /// Cut the connection halfway through the body of the first N blob responses.
    DropMidBlob(usize),
    /// Flip a byte in every blob body.
    Corrupt,
}

/// An HTTP request's head (request line and headers), read byte by byte so that nothing of
/// a body is consumed; `None` if the client went away first.
fn request_head(client: &mut std::net::TcpStream) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A plain-HTTP proxy in front of a registry that misbehaves on `GET .../blobs/...`.
fn fault_proxy(upstream: u16, fault: Fault) -> u16 {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut client = client;
                let Some(text) = request_head(&mut client) else {
                    return;
                };
                let is_blob = text.starts_with("GET ")
                    && text.lines().next().unwrap_or("").contains("/blobs/");
                let n = if is_blob {
                    seen.fetch_add(1, Ordering::SeqCst)
                } else {
                    usize::MAX
                };
                if let (true, Fault::Unavailable(k)) = (is_blob, fault)
                    && n < k
                {
                    let _ = client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    return;
                }
                // One request per connection upstream, so the response ends at EOF.
                let request = text.replacen("\r\n", "\r\nConnection: close\r\n", 1);
                let Ok(mut up) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let _ = up.write_all(request.as_bytes());
                let mut response = Vec::new();
                let _ = up.read_to_end(&mut response);
                let body_at = response
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(response.len(), |p| p + 4);
                match fault {
                    Fault::DropMidBlob(k) if is_blob && n < k => {
                        let cut = body_at + (response.len() - body_at) / 2;
                        let _ = client.write_all(&response[..cut]);
                        return; // dropped
                    }
                    Fault::Corrupt if is_blob && response.len() > body_at => {
                        let last = response.len() - 1;
                        response[last] ^= 0xff;
                    }
                    _ => {}
                }
                let _ = client.write_all(&response);
            });
        }
    });
    port
}

#[test]
fn faults_are_retried_and_corruption_leaves_nothing() {
    let reg = Registry::start();
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    w.ok(&["push", "busybox", &format!("{}/f/busybox:1", reg.host())]);
    for fault in [Fault::Unavailable(3), Fault::DropMidBlob(2)] {
        let port = fault_proxy(reg.port, fault);
        let fresh = Wharf::new();
        let out = fresh.run(&["pull", &format!("127.0.0.1:{port}/f/busybox:1")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("retrying"), "{err}");
        assert!(fresh.ok(&["system", "check"]).contains("0 problems"));
        assert_eq!(fresh.images().len(), 1);
    }
    let port = fault_proxy(reg.port, Fault::Corrupt);
    let fresh = Wharf::new();
    let err = fresh.fails(&["pull", &format!("127.0.0.1:{port}/f/busybox:1")], 125);
    // Verified twice: by oci-client ("Invalid digest") and by the store's blob writer.
    assert!(
        err.contains("Invalid digest") || err.contains("digest mismatch"),
        "{err}"
    );
    assert!(fresh.images().is_empty());
    assert!(fresh.ok(&["system", "check"]).contains("0 problems"));
    let temps = std::fs::read_dir(fresh.root().join("tmp")).unwrap().count();
    assert_eq!(temps, 0, "no partial blob left");
}

#[test]
fn a_multi_platform_index_pushes_and_pulls_whole_or_by_platform() {
    let reg = Registry::start();
    let w = Wharf::new();
    // The index is pushed by skopeo (it has no "make an index" verb, so the layout is
    // written by the test) and never touched by wharf before the pull.
    let dir = mixed_index_layout(&w, "mixed");
    let target = format!("{}/multi/mixed:1", reg.host());
    sh(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:mixed", s(&dir)),
        &format!("docker://{target}"),
    ]));
    // Default: the host's platform only.
    let one = Wharf::new();
    one.ok(&["pull", &target]);
    assert_eq!(one.images()[0]["Kind"], "native");
    assert_eq!(one.images()[0]["Platform"], "linux/amd64,wasip1/wasm");
    let err = one.fails(
        &["run", "--pull", "never", "--platform", "wasi/wasm", &target],
        125,
    );
    assert!(err.contains("platform"), "{err}");
    // --platform picks the wasm side; --all-platforms keeps every one.
    let wasm_only = Wharf::new();
    wasm_only.ok(&["pull", "--platform", "wasi/wasm", &target]);
    assert!(
        wasm_only
            .ok(&["run", "--platform", "wasi/wasm", &target])
            .contains("hello from wasm")
    );
    let all = Wharf::new();
    all.ok(&["pull", "--all-platforms", &target]);
    assert!(
        all.ok(&["run", "--platform", "wasi/wasm", &target])
            .contains("hello from wasm")
    );
    // And wharf pushes the whole index on.
    let again = format!("{}/multi/again:1", reg.host());
    all.ok(&["push", &target, &again]);
    let raw = sh(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{again}"),
    ]));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&raw).unwrap()["manifests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// What a hostile registry (a plain-HTTP server of the test's own on 127.0.0.1) does.
#[derive(Clone, Copy)]
enum Hostile {
    /// A manifest whose chunked body never ends.
    EndlessManifest,
    /// A 404 whose error body never ends.
    EndlessError,
    /// `/v2/` asks for a bearer token from a realm whose answer never ends.
    EndlessToken,
    /// A manifest listing this many layers, none of which (nor the config) exists.
    MissingLayers(usize),
    /// `/v2/` asks for a bearer token from a plain-http realm on `localhost` (another host
    /// than `127.0.0.1`) when true, on the registry's own host when false; the token
    /// requests that carry credentials are counted.
    Realm { elsewhere: bool },
}

/// Start the hostile registry: its port, and how many blob (or token) requests it got.
fn hostile_registry(mode: Hostile) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let blobs = Arc::new(AtomicUsize::new(0));
    let counted = blobs.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let blobs = counted.clone();
            std::thread::spawn(move || {
                let mut client = client;
                let Some(text) = request_head(&mut client) else {
                    return;
                };
                let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                let reply = |client: &mut std::net::TcpStream,
                             status: &str,
                             extra: &str,
                             body: &str| {
                    let _ = client.write_all(
                        format!(
                            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    );
                };
                // A chunked body that goes on until the client hangs up.
                let endless = |client: &mut std::net::TcpStream, status: &str, ctype: &str| {
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n"
                    );
                    if client.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
                    while client.write_all(chunk.as_bytes()).is_ok() {}
                };
                let manifest_type = "application/vnd.oci.image.manifest.v1+json";
                match (mode, path.as_str()) {
                    (Hostile::EndlessToken, "/v2/") => reply(
                        &mut client,
                        "401 Unauthorized",
                        &format!(
                            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"hostile\"\r\n"
                        ),
                        "",
                    ),
                    (Hostile::Realm { elsewhere }, "/v2/") => reply(
                        &mut client,
                        "401 Unauthorized",
                        &format!(
                            "WWW-Authenticate: Bearer realm=\"http://{}:{port}/token\",service=\"hostile\"\r\n",
                            if elsewhere { "localhost" } else { "127.0.0.1" }
                        ),
                        "",
                    ),
                    (Hostile::Realm { .. }, p) if p.starts_with("/token") => {
                        if text.to_ascii_lowercase().contains("\r\nauthorization:") {
                            blobs.fetch_add(1, Ordering::SeqCst);
                        }
                        reply(&mut client, "200 OK", "", r#"{"token":"t"}"#)
                    }
                    (_, "/v2/") => reply(&mut client, "200 OK", "", "{}"),
                    (Hostile::EndlessToken, p) if p.starts_with("/token") => {
                        blobs.fetch_add(1, Ordering::SeqCst);
                        endless(&mut client, "200 OK", "application/json")
                    }
                    (_, p) if p.contains("/blobs/") => {
                        blobs.fetch_add(1, Ordering::SeqCst);
                        reply(
                            &mut client,
                            "404 Not Found",
                            "Content-Type: application/json\r\n",
                            r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
                        )
                    }
                    // Without the token it never gets: what a registry answers then.
                    (Hostile::EndlessToken | Hostile::Realm { .. }, _) => reply(
                        &mut client,
                        "401 Unauthorized",
                        "Content-Type: application/json\r\n",
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                    ),
                    (Hostile::EndlessManifest, _) => endless(&mut client, "200 OK", manifest_type),
                    (Hostile::EndlessError, _) => {
                        endless(&mut client, "404 Not Found", "application/json")
                    }
                    (Hostile::MissingLayers(n), _) => {
                        let desc = |i: usize, t: &str| serde_json::json!({"mediaType": t, "digest": format!("sha256:{i:064x}"), "size": 1000});
                        let layers: Vec<_> = (1..=n)
                            .map(|i| desc(i, "application/vnd.oci.image.layer.v1.tar"))
                            .collect();
                        let body = serde_json::json!({
                            "schemaVersion": 2,
                            "mediaType": manifest_type,
                            "config": desc(0, "application/vnd.oci.image.config.v1+json"),
                            "layers": layers,
                        })
                        .to_string();
                        reply(
                            &mut client,
                            "200 OK",
                            &format!("Content-Type: {manifest_type}\r\n"),
                            &body,
                        )
                    }
                }
            });
        }
    });
    (port, blobs)
}

/// `wharf ARGS` on `w`: exit code, peak RSS (KiB) and stderr; killed after 60 s.
fn bounded_run(w: &Wharf, args: &[&str]) -> (Option<i32>, i64, String) {
    let err_path = w.path("bounded.err");
    let child = w
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        // SAFETY: kill(2) on our own child's pid; harmless if it has been reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    std::mem::forget(child);
    drop(killer);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (
        code,
        usage.ru_maxrss,
        std::fs::read_to_string(err_path).unwrap(),
    )
}

/// A registry's endless bodies (a manifest, an error, a token) are cut at their cap while
/// they stream: wharf fails at once, its memory stays small, and nothing is left.
#[cfg(target_os = "linux")]
#[test]
fn endless_registry_bodies_are_cut_at_their_cap() {
    // What wharf itself takes (a debug binary's touched pages count): the cap is judged
    // above that, and an uncapped read grows by gigabytes.
    let (_, baseline_kib, _) = bounded_run(&Wharf::new(), &["images"]);
    for mode in [
        Hostile::EndlessManifest,
        Hostile::EndlessError,
        Hostile::EndlessToken,
    ] {
        let (port, asked) = hostile_registry(mode);
        let w = Wharf::new();
        let start = Instant::now();
        let (code, rss_kib, err) = bounded_run(&w, &["pull", &format!("127.0.0.1:{port}/h/x:1")]);
        assert_eq!(code, Some(125), "{err}");
        // (oci-client gives up on a token it cannot get and asks without one: the
        // registry's 401 is what is said then; the cap shows in the memory.)
        let cut = match mode {
            Hostile::EndlessToken => {
                assert_eq!(
                    asked.load(std::sync::atomic::Ordering::SeqCst),
                    1,
                    "token requests"
                );
                "Not authorized"
            }
            _ => "larger than 4194304 bytes",
        };
        assert!(err.contains(cut), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            start.elapsed()
        );
        assert!(
            rss_kib < baseline_kib + 128 * 1024,
            "peak RSS {rss_kib} KiB (wharf images: {baseline_kib} KiB): {err}"
        );
        assert!(w.images().is_empty());
        assert!(w.ok(&["system", "check"]).contains("0 problems"));
    }
}

/// A manifest with thousands of layers is refused before any is fetched; one whose layers
/// are missing fails at the first answer, without retrying each one.
#[cfg(target_os = "linux")]
#[test]
fn missing_or_countless_layers_fail_fast() {
    let (port, blobs) = hostile_registry(Hostile::MissingLayers(10_000));
    let w = Wharf::new();
    let err = w.fails(&["pull", &format!("127.0.0.1:{port}/h/many:1")], 125);
    assert!(
        err.contains("10000 layers; more than 500 is refused"),
        "{err}"
    );
    assert_eq!(blobs.load(std::sync::atomic::Ordering::SeqCst), 0);
    let (port, blobs) = hostile_registry(Hostile::MissingLayers(50));
    let start = Instant::now();
    let err = w.fails(&["pull", &format!("127.0.0.1:{port}/h/missing:1")], 125);
    assert!(
        err.contains("BLOB_UNKNOWN") || err.contains("blob unknown"),
        "{err}"
    );
    assert!(!err.contains("retrying"), "{err}");
    // Four fetches run at once: the first answer ends the pull, so a few requests at most.
    let asked = blobs.load(std::sync::atomic::Ordering::SeqCst);
    assert!(asked <= 8, "{asked} blob requests");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(w.images().is_empty());
    assert!(w.ok(&["system", "check"]).contains("0 problems"));
}

/// A registry reached over TLS that redirects to plain HTTP is not followed: nothing is
/// taken from (or sent to) the plain leg. The TLS side is `openssl s_server -HTTP` serving
/// a prepared redirect; the plain leg counts the requests it gets.
#[cfg(target_os = "linux")]
#[test]
fn an_https_registry_cannot_redirect_to_plain_http() {
    use std::sync::atomic::Ordering;
    let plain_hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // The plain leg: a listener that only counts who comes.
    let leg = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let leg_port = leg.local_addr().unwrap().port();
    let hits = plain_hits.clone();
    std::thread::spawn(move || {
        for c in leg.incoming().flatten() {
            hits.fetch_add(1, Ordering::SeqCst);
            drop(c);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    test_ca(dir.path());
    let certs = dir.path().join("certs");
    // -HTTP serves files under its directory as whole HTTP responses.
    let www = dir.path().join("www");
    let manifest = www.join("v2/h/x/manifests");
    std::fs::create_dir_all(&manifest).unwrap();
    std::fs::write(
        manifest.join("1"),
        format!(
            "HTTP/1.0 302 Found\r\nLocation: http://127.0.0.1:{leg_port}/v2/h/x/manifests/1\r\nContent-Length: 0\r\n\r\n"
        ),
    )
    .unwrap();
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-HTTP", "-accept"])
        .arg(format!("127.0.0.1:{tls_port}"))
        .arg("-cert")
        .arg(dir.path().join("server.crt"))
        .arg("-key")
        .arg(dir.path().join("server.key"))
        .current_dir(&www)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(20, "openssl s_server", || {
        std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
    });
    let w = Wharf::new();
    let out = w.run(&[
        "pull",
        "--cert-dir",
        &s(&certs),
        &format!("127.0.0.1:{tls_port}/h/x:1"),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("from https to plain http"), "{err}");
    assert_eq!(
        plain_hits.load(Ordering::SeqCst),
        0,
        "the plain leg was asked"
    );
    assert!(w.images().is_empty());
}

/// Credentials go to the registry's own host, or to a token realm it names over TLS; a
/// plain-http realm on another host gets none (the control: the same realm on the
/// registry's host does get them, so the count can tell).
#[cfg(target_os = "linux")]
#[test]
fn credentials_are_not_sent_in_the_clear_to_another_host() {
    use std::sync::atomic::Ordering;
    for elsewhere in [true, false] {
        let (port, asked) = hostile_registry(Hostile::Realm { elsewhere });
        let w = Wharf::new();
        let docker = w.path("docker");
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(
            docker.join("config.json"),
            format!(r#"{{"auths": {{"127.0.0.1:{port}": {{"auth": "YWxpY2U6czNjcmV0"}}}}}}"#),
        )
        .unwrap();
        let out = w
            .cmd(&["pull", &format!("127.0.0.1:{port}/h/x:1")])
            .env("DOCKER_CONFIG", &docker)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125));
        let sent = asked.load(Ordering::SeqCst);
        if elsewhere {
            assert_eq!(sent, 0, "credentials went to another host in the clear");
        } else {
            assert!(sent >= 1, "the control: the registry's own realm gets them");
        }
    }
}
