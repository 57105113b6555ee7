//! Test setup: a private wharf root per test, the binary to drive, and the fixtures (wasm
//! examples, the umoci-built busybox image) built once per run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The wharf binary under test: `WHARF_BIN` (a command line, e.g. `wine wharf.exe` or
/// `qemu-aarch64 wharf`), else `wharf` in [`bin_dir`].
pub fn wharf_command() -> Command {
    match std::env::var("WHARF_BIN") {
        Ok(line) if !line.trim().is_empty() => {
            let mut parts = line.split_whitespace();
            let mut c = Command::new(parts.next().expect("non-empty"));
            c.args(parts);
            c
        }
        _ => Command::new(bin("wharf")),
    }
}

/// A binary under test by name (`wharf`, `wharf-runtime`, ...), from [`bin_dir`].
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// `wharf inspect NAME` (a container or an image) as JSON: the one object of Docker's array.
pub fn inspect(w: &Wharf, name: &str) -> serde_json::Value {
    let mut all: serde_json::Value = serde_json::from_str(&w.ok(&["inspect", name])).unwrap();
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    all[0].take()
}

/// Wait until `cond` holds (or fail after `secs`).
pub fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A wharf installation of its own, removed when dropped.
pub struct Wharf {
    pub dir: tempfile::TempDir,
}

/// A test that failed half-way must not leave its containers running into the next one.
impl Drop for Wharf {
    fn drop(&mut self) {
        // Only when some container may still run (its marker in the active index): under
        // wine every command costs a wine start.
        let active = std::fs::read_dir(self.root().join("containers").join(".active"))
            .is_ok_and(|mut d| d.next().is_some());
        if !active {
            return;
        }
        if let Ok(out) = self.cmd(&["ps", "-aq"]).output() {
            let ids = String::from_utf8_lossy(&out.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.cmd(&args).output();
            }
        }
    }
}

impl Wharf {
    pub fn new() -> Self {
        Wharf {
            dir: tempfile::Builder::new()
                .prefix("wharf-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A scratch path inside this test's directory.
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = wharf_command();
        c.arg("--root").arg(self.root()).args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let mut out = self.output(args);
        // Under wine, a process occasionally fails to start when many start at once: it
        // exits 1 having printed nothing (wharf's own errors exit 125 and say why). Retry
        // those; anything that printed, or any other code, is the real result.
        let windows = std::env::var("WHARF_HOST_OS").is_ok_and(|v| v == "windows");
        for _ in 0..2 {
            if !(windows
                && out.status.code() == Some(1)
                && out.stdout.is_empty()
                && out.stderr.is_empty())
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
            out = self.output(args);
        }
        out
    }

    /// Run to the end and collect its output. Under wine the output goes through files:
    /// every wine process keeps the Unix stderr it was started with (wine's debug channel),
    /// so a detached monitor would hold a pipe open, and reading it to its end would wait
    /// for the container to end.
    fn output(&self, args: &[&str]) -> Output {
        let windows = std::env::var("WHARF_HOST_OS").is_ok_and(|v| v == "windows");
        if !windows {
            return self.cmd(args).output().expect("running wharf");
        }
        let mut out = tempfile::tempfile().unwrap();
        let mut err = tempfile::tempfile().unwrap();
        let status = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .expect("running wharf");
        let read = |f: &mut std::fs::File| {
            use std::io::{Read, Seek};
            let mut v = Vec::new();
            f.rewind().unwrap();
            f.read_to_end(&mut v).unwrap();
            v
        };
        Output {
            status,
            stdout: read(&mut out),
            stderr: read(&mut err),
        }
    }

    /// Run and insist on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "wharf {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and insist on failure with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "wharf {args:?}: expected exit {code}\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// `wharf images --format json`.
    pub fn images(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["images", "--format", "json"])).unwrap()
    }

    pub fn blob_count(&self) -> usize {
        std::fs::read_dir(self.root().join("store/blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// Run a command and insist on success; returns stdout.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Build `tests/fixtures/NAME.c` as a static program at `dest` (probes run inside
/// containers that have no C library of their own).
pub fn static_probe(name: &str, dest: &Path) {
    sh(Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(dest)
        .arg(repo_dir().join(format!("tests/fixtures/{name}.c"))));
}

/// What `keyring-probe host CMD` saw (tests/fixtures/keyring-probe.c): the host's session
/// keyring, the session keyring inside the container and the key added there, and every key
/// linked in the host's session and user-session keyrings afterwards.
#[derive(Debug)]
pub struct Keyrings {
    pub host: String,
    pub inside: String,
    pub key: String,
    pub host_linked: Vec<String>,
}

impl Keyrings {
    /// Run `cmd` (which runs `keyring-probe add NAME` in a container) under `probe host`.
    pub fn of(probe: &Path, cmd: &mut Command) -> Keyrings {
        let mut c = Command::new(probe);
        c.arg("host").arg(cmd.get_program()).args(cmd.get_args());
        let out = sh(&mut c);
        let field = |prefix: &str| {
            out.lines()
                .flat_map(|l| l.split_whitespace())
                .find_map(|w| w.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {out}"))
                .to_string()
        };
        Keyrings {
            host: field("host-session="),
            inside: field("session="),
            key: field("key="),
            host_linked: out
                .lines()
                .filter_map(|l| l.strip_prefix("host-linked="))
                .map(str::to_string)
                .collect(),
        }
    }

    /// The key added inside is not in the host's keyrings, and the container's session
    /// keyring is not the host's.
    pub fn assert_own(&self) {
        assert_ne!(self.inside, self.host, "{self:?}");
        assert!(!self.host_linked.contains(&self.key), "{self:?}");
    }
}

/// The busybox test images (made by umoci and skopeo, never by wharf), built once per run:
/// `layout/` (tag busybox), `busybox-oci.tar`, `busybox-oci.tar.gz`, `busybox-docker.tar`.
pub fn busybox_images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(dir) = std::env::var("WHARF_TEST_IMAGES") {
            return PathBuf::from(dir);
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("busybox-images");
        sh(Command::new("bash")
            .arg(repo_dir().join("tests/fixtures/make-busybox-image.sh"))
            .arg(&dir));
        dir
    })
}

/// The Debian services image (PostgreSQL 15, nginx, procps; made by debootstrap and umoci,
/// never by wharf): `WHARF_DEBIAN_IMAGE` (its directory, as scripts/test.sh sets it), else
/// built once into the target directory. Holds `debian-oci.tar`
/// (debian-services:latest).
pub fn debian_image() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var("WHARF_DEBIAN_IMAGE") {
            Ok(dir) => PathBuf::from(dir),
            Err(_) => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("debian-image"),
        };
        // Cached: the script returns at once when its image is there.
        sh(Command::new("bash")
            .arg(repo_dir().join("tests/fixtures/make-debian-image.sh"))
            .arg(&dir));
        dir.join("debian-oci.tar")
    })
    .clone()
}

/// The built wasm examples and .wat fixtures (`WHARF_WASM_DIR`, else wasm-examples/out,
/// building them if needed).
pub fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(dir) = std::env::var("WHARF_WASM_DIR") {
            return PathBuf::from(dir);
        }
        let dir = repo_dir().join("wasm-examples/out");
        if !dir.join("fetch.wasm").exists() {
            sh(Command::new("bash").arg(repo_dir().join("wasm-examples/build.sh")));
        }
        dir
    })
}

pub fn wasm(name: &str) -> String {
    wasm_dir().join(name).to_string_lossy().into_owned()
}

/// An OCI layout holding one multi-platform index named `name` over busybox (linux/amd64)
/// and the hello wasm artifact (wasip1/wasm), both written into `w`'s store first.
pub fn mixed_index_layout(w: &Wharf, name: &str) -> PathBuf {
    w.ok(&[
        "load",
        "-i",
        &busybox_images().join("layout").to_string_lossy(),
    ]);
    w.ok(&["package", &wasm("hello.wasm"), "-t", "hello"]);
    let both = w.path("both.tar");
    w.ok(&["save", "-o", &both.to_string_lossy(), "busybox", "hello"]);
    let dir = w.path("mixed-layout");
    std::fs::create_dir(&dir).unwrap();
    sh(Command::new("tar")
        .arg("-xf")
        .arg(&both)
        .arg("-C")
        .arg(&dir));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifests: Vec<serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let is_wasm = e["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .contains("hello");
            let platform = if is_wasm {
                serde_json::json!({"os": "wasip1", "architecture": "wasm"})
            } else {
                serde_json::json!({"os": "linux", "architecture": "amd64"})
            };
            serde_json::json!({"mediaType": e["mediaType"], "digest": e["digest"], "size": e["size"], "platform": platform})
        })
        .collect();
    let bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests
    }))
    .unwrap();
    let d = layout::digest(&bytes);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), &bytes).unwrap();
    layout::write_index(
        &dir,
        &[serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": name}
        })],
    );
    dir
}

/// Writes OCI image layouts by hand, for inputs no well-behaved tool would produce.
pub mod layout {
    use sha2::{Digest, Sha256};
    use std::path::Path;

    pub fn digest(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    fn put(dir: &Path, bytes: &[u8]) -> String {
        let d = digest(bytes);
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
        d
    }

    /// An image of tar `layers` (uncompressed, or gzip-compressed) named `name`, in a new
    /// layout at `dir`. Returns the manifest digest.
    pub fn write_image(dir: &Path, name: &str, layers: &[Vec<u8>]) -> String {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for l in layers {
            let d = put(dir, l);
            let gzip = l.starts_with(&[0x1f, 0x8b]);
            if gzip {
                let mut h = Sha256::new();
                std::io::copy(&mut flate2::read::GzDecoder::new(&l[..]), &mut h).unwrap();
                diff_ids.push(format!("sha256:{}", hex::encode(h.finalize())));
            } else {
                diff_ids.push(d.clone());
            }
            let media_type = if gzip {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            descs.push(serde_json::json!({
                "mediaType": media_type, "digest": d, "size": l.len()
            }));
        }
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        });
        let config = serde_json::to_vec(&config).unwrap();
        let cd = put(dir, &config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": descs
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let md = put(dir, &manifest);
        write_index(
            dir,
            &[serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": name}
            })],
        );
        md
    }

    pub fn write_index(dir: &Path, manifests: &[serde_json::Value]) {
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }

    /// A tar with raw names (the tar crate's setters refuse hostile ones).
    pub fn tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_ustar();
            {
                let old = h.as_old_mut();
                old.name[..name.len()].copy_from_slice(name.as_bytes());
                old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_mtime(1_700_000_000);
            h.set_uid(0);
            h.set_gid(0);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }
}

/// A private containerd (its own config, root, state and socket), stopped when dropped.
pub struct Containerd {
    child: std::process::Child,
    sock: PathBuf,
    /// Of this run only: the runc shim keeps runtime state under
    /// `/run/containerd/runc/<namespace>`, outside containerd's private state directory.
    namespace: String,
}

/// Whether process `pid` runs (a zombie does not).
pub fn pid_alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
}

/// Where the binaries under test are (wharf, wharf-runtime, wharf-monitor, the shim and the
/// example plugin host built beside them): `WHARF_BIN_DIR` (another build of them, e.g. the
/// static musl one from scripts/build-static.sh), else cargo's.
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("WHARF_BIN_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_BIN_EXE_wharf"))
            .parent()
            .unwrap()
            .to_path_buf(),
    }
}

impl Containerd {
    pub fn start(w: &Wharf) -> Containerd {
        Self::start_with(w, "version = 2\n")
    }

    /// containerd with a config of the test's, finding `containerd-shim-wharf-v1` (runtime
    /// type `io.containerd.wharf.v1`) among the built binaries.
    pub fn start_with(w: &Wharf, config_text: &str) -> Containerd {
        let sock = w.path("containerd.sock");
        let config = w.path("containerd.toml");
        std::fs::write(&config, config_text).unwrap();
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new("containerd")
            .env("PATH", path)
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(w.path("containerd-root"))
            .arg("--state")
            .arg(w.path("containerd-state"))
            .arg("--address")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting containerd");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !sock.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let namespace = format!("wharf-test-{}", std::process::id());
        Containerd {
            child,
            sock,
            namespace,
        }
    }

    pub fn sock(&self) -> &Path {
        &self.sock
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.sock)
            .args(["--namespace", &self.namespace])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(Path::new("/run/containerd/runc").join(&self.namespace));
        let _ = std::fs::remove_dir_all(Path::new("/run/containerd/wharf").join(&self.namespace));
    }
}

/// A shared mount point of the host's (a directory bound onto itself, made rshared, as a
/// node's kubelet directory is) holding a tmpfs canary; all unmounted when dropped. A
/// container whose mounts are peers of the host's must never unmount the canary.
pub struct SharedMount {
    pub path: PathBuf,
}

impl SharedMount {
    pub fn new(path: PathBuf) -> SharedMount {
        std::fs::create_dir_all(&path).unwrap();
        let p = path.to_string_lossy().into_owned();
        let guard = SharedMount { path };
        let canary = format!("{p}/canary");
        for args in [
            vec!["--bind", &p, &p],
            vec!["--make-rshared", &p],
            vec!["-t", "tmpfs", "canary", &canary],
        ] {
            if args[0] == "-t" {
                std::fs::create_dir_all(&canary).unwrap();
            }
            let ok = Command::new("mount").args(&args).status().unwrap();
            assert!(ok.success(), "mount {args:?}");
        }
        assert!(guard.canary_mounted());
        guard
    }

    /// Whether the canary is still mounted on the host.
    pub fn canary_mounted(&self) -> bool {
        let want = self.path.join("canary");
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4).is_some_and(|m| Path::new(m) == want))
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(&self.path)
            .status();
    }
}
