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
    fn start_secure() -> Registry {
        Self::start_with(
            |dir| {
                let d = s(dir);
                let openssl =
                    |args: &[&str]| sh(Command::new("openssl").args(args).current_dir(dir));
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
                sh(Command::new("htpasswd")
                    .args(["-Bbc", "htpasswd", "alice", "s3cret"])
                    .current_dir(dir));
                std::fs::create_dir_all(dir.join("certs")).unwrap();
                std::fs::copy(dir.join("ca.crt"), dir.join("certs/ca.crt")).unwrap();
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
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
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
