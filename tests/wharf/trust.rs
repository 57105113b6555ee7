//! Trust before pull: containers-policy.json(5) with GPG simple signing made by skopeo
//! (Debian's, through gpgme and gpg) in lookaside storage, and sigstore signatures made by
//! an independent implementation (Python's `cryptography`, P-256) attached in the registry
//! as cosign attaches them; images on Debian's docker-registry on 127.0.0.1. What is
//! refused is not stored.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::registry::{Registry, test_ca};
use crate::wasm::free_port;

/// A throwaway GnuPG home with one key; its fingerprint and exported public key.
struct GpgKey {
    home: PathBuf,
    fingerprint: String,
    public: PathBuf,
}

fn gpg_key(dir: &Path, name: &str, algo: &str) -> GpgKey {
    gpg_key_with(dir, name, algo, "", "never")
}

/// As [`gpg_key`], the secret key protected by `passphrase` (which gpg-agent does not keep:
/// every signing must be given it), expiring as `expire` says (gpg's `--quick-gen-key`
/// argument), and gpg in that home living at the time a `gpg.conf` already there may fake.
fn gpg_key_with(dir: &Path, name: &str, algo: &str, passphrase: &str, expire: &str) -> GpgKey {
    let home = dir.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(
        home.join("gpg-agent.conf"),
        "default-cache-ttl 0\nmax-cache-ttl 0\n",
    )
    .unwrap();
    let gpg = |args: &[&str]| {
        sh(Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args([
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                passphrase,
            ])
            .args(args))
    };
    gpg(&[
        "--quick-gen-key",
        &format!("{name} <{name}@wharf.test>"),
        algo,
        "sign",
        expire,
    ]);
    let listing = gpg(&["--with-colons", "--list-keys"]);
    let fingerprint = listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|l| l.split(':').find(|f| f.len() == 40))
        .expect("a fingerprint")
        .to_string();
    let public = dir.join(format!("{name}.gpg"));
    let out = Command::new("gpg")
        .env("GNUPGHOME", &home)
        .args(["--batch", "--export", &fingerprint])
        .output()
        .unwrap();
    assert!(out.status.success() && !out.stdout.is_empty());
    std::fs::write(&public, out.stdout).unwrap();
    GpgKey {
        home,
        fingerprint,
        public,
    }
}

fn skopeo(dir: &Path, gpg_home: Option<&Path>, args: &[&str]) -> String {
    let policy = dir.join("skopeo-policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    sh(&mut skopeo_under(dir, &policy, gpg_home, args))
}

/// skopeo obeying `policy`, with the test's registries.d.
fn skopeo_under(dir: &Path, policy: &Path, gpg_home: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new("skopeo");
    if let Some(h) = gpg_home {
        c.env("GNUPGHOME", h);
    }
    c.arg("--policy")
        .arg(policy)
        .arg("--registries.d")
        .arg(dir.join("registries.d"));
    c.args(args);
    c
}

/// A test server process, stopped when dropped: a failing test leaves none running.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cmd` (its output dropped) and wait until it listens on 127.0.0.1:`port`.
fn serve(cmd: &mut Command, port: u16) -> Server {
    let server = Server(
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the test server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server
}

/// `skopeo copy` of `image` under `policy` into `dir/to` (a `dir:` copy): what skopeo said.
fn skopeo_copy_out(dir: &Path, policy: &Path, image: &str, to: &str) -> std::process::Output {
    skopeo_under(
        dir,
        policy,
        None,
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{image}"),
            &format!("dir:{}", s(&dir.join(to))),
        ],
    )
    .output()
    .unwrap()
}

/// The digest of `image`'s manifest as the registry serves it (`inspect --raw`: skopeo
/// reads no config of a wasm artifact).
fn digest_of(dir: &Path, image: &str) -> String {
    use sha2::Digest;
    let policy = dir.join("skopeo-policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let out = skopeo_under(
        dir,
        &policy,
        None,
        &[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{image}"),
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&out.stdout)))
}

/// Files under `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                if e.file_type().unwrap().is_dir() {
                    count_files(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

/// `dir/registries.d` keeping the signatures of every image on `host` in lookaside storage
/// `dir/sigs` (returned).
fn lookaside_in(dir: &Path, host: &str) -> PathBuf {
    let sigs = dir.join("sigs");
    std::fs::create_dir_all(dir.join("registries.d")).unwrap();
    std::fs::write(
        dir.join("registries.d/test.yaml"),
        format!("docker:\n  {host}:\n    lookaside: file://{}\n", s(&sigs)),
    )
    .unwrap();
    sigs
}

/// `wharf pull` of `image` under `policy`, with `dir`'s registries.d.
fn pull_args(dir: &Path, policy: &Path, image: &str) -> Vec<String> {
    vec![
        "pull".into(),
        "-q".into(),
        "--signature-policy".into(),
        s(policy),
        "--registries.d".into(),
        s(&dir.join("registries.d")),
        image.into(),
    ]
}

/// `w` refuses to pull `image` under `policy`, saying `says`, and stores nothing.
fn refused(w: &Wharf, dir: &Path, policy: &Path, image: &str, says: &str) {
    let before = count_files(&w.root().join("store/blobs"));
    let args = pull_args(dir, policy, image);
    let err = w.fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 125);
    assert!(err.contains(says), "pulling {image}: {err}");
    assert_eq!(
        count_files(&w.root().join("store/blobs")),
        before,
        "{image}: a refused pull stored blobs"
    );
}

fn accepted(w: &Wharf, dir: &Path, policy: &Path, image: &str) {
    let args = pull_args(dir, policy, image);
    w.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// `wharf push --sign-by` of `image` to `target` with `key`, from its GnuPG home.
fn push_signed(w: &Wharf, key: &GpgKey, dir: &Path, image: &str, target: &str) {
    let out = w
        .cmd(&[
            "push",
            "--sign-by",
            &key.fingerprint,
            "--registries.d",
            &s(&dir.join("registries.d")),
            image,
            target,
        ])
        .env("GNUPGHOME", &key.home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_policy(dir: &Path, name: &str, scopes: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{{scopes}}}}}}}"#),
    )
    .unwrap();
    p
}

#[test]
fn gpg_signatures_made_by_skopeo_are_required_and_checked() {
    let reg = Registry::start();
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sigs = lookaside_in(dir, &host);
    let builder = gpg_key(dir, "builder", "rsa2048");
    let other = gpg_key(dir, "other", "ed25519");
    let layout = format!("oci:{}:busybox", s(&busybox_images().join("layout")));
    let signed = format!("{host}/tools/busybox:signed");
    skopeo(
        dir,
        Some(&builder.home),
        &[
            "copy",
            "--dest-tls-verify=false",
            "--sign-by",
            &builder.fingerprint,
            &layout,
            &format!("docker://{signed}"),
        ],
    );
    let digest = digest_of(dir, &signed);
    let hex = digest.strip_prefix("sha256:").unwrap();
    let sig1 = sigs.join(format!("tools/busybox@sha256={hex}/signature-1"));
    assert!(sig1.is_file(), "skopeo wrote no signature at {}", s(&sig1));
    // The same manifest under another tag, in another repository (skopeo copies the
    // signature along), and unsigned.
    let unsigned = format!("{host}/tools/unsigned:1");
    for (to, keep) in [
        ("tools/busybox:retag", true),
        ("mirror/busybox:signed", true),
        ("tools/unsigned:1", false),
    ] {
        skopeo(
            dir,
            None,
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                if keep {
                    "--quiet"
                } else {
                    "--remove-signatures"
                },
                &format!("docker://{signed}"),
                &format!("docker://{host}/{to}"),
            ],
        );
    }
    let hello = format!("{host}/tools/hello:1");
    let w = Wharf::new();
    w.ok(&["package", &wasm("hello.wasm"), "-t", "hello"]);
    w.ok(&["push", "hello", &hello]);
    let hello_digest = digest_of(dir, &hello);

    let builder_key = s(&builder.public);
    let trusts = |identity: &str| {
        format!(
            r#""{host}/tools":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{builder_key}"{identity}}}],
               "{host}/mirror":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{builder_key}"{identity}}}]"#
        )
    };
    let policy = write_policy(dir, "policy.json", &trusts(""));
    // Made by skopeo, signed by the trusted key: pulled, and it runs.
    let fresh = Wharf::new();
    accepted(&fresh, dir, &policy, &signed);
    assert_eq!(fresh.images().len(), 1);
    // The same lookaside storage served over HTTP (a missing signature-2 is a 404: the end).
    let port = free_port();
    let server = serve(
        Command::new("/usr/bin/python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .arg("--directory")
            .arg(&sigs),
        port,
    );
    let http_d = dir.join("registries-http.d");
    std::fs::create_dir_all(&http_d).unwrap();
    std::fs::write(
        http_d.join("http.yaml"),
        format!("default-docker:\n  lookaside: http://127.0.0.1:{port}\n"),
    )
    .unwrap();
    let over_http = Wharf::new();
    over_http.ok(&[
        "pull",
        "-q",
        "--signature-policy",
        &s(&policy),
        "--registries.d",
        &s(&http_d),
        &signed,
    ]);
    drop(server);
    // Refusals, each naming why, none storing anything.
    let w = Wharf::new();
    refused(&w, dir, &policy, &hello, "no signature");
    refused(
        &w,
        dir,
        &policy,
        &format!("{host}/elsewhere/busybox:1"),
        "requirement reject",
    );
    // By digest, the repository is what must agree (matchRepoDigestOrExact).
    accepted(
        &fresh,
        dir,
        &policy,
        &format!("{host}/tools/busybox@{digest}"),
    );
    // Another tag of the same manifest: its signature names :signed.
    refused(
        &w,
        dir,
        &policy,
        &format!("{host}/tools/busybox:retag"),
        "signedIdentity matchRepoDigestOrExact does not accept",
    );
    // The signature copied beside another image: for another manifest.
    let copied = sigs.join(format!(
        "tools/hello@sha256={}/signature-1",
        hello_digest.strip_prefix("sha256:").unwrap()
    ));
    std::fs::create_dir_all(copied.parent().unwrap()).unwrap();
    std::fs::copy(&sig1, &copied).unwrap();
    refused(&w, dir, &policy, &hello, "a signature for another manifest");
    // The mirror has no signature of its own; copied there, the identity is the original's.
    let mirrored = sigs.join(format!("mirror/busybox@sha256={hex}/signature-1"));
    std::fs::create_dir_all(mirrored.parent().unwrap()).unwrap();
    std::fs::copy(&sig1, &mirrored).unwrap();
    let mirror = format!("{host}/mirror/busybox:signed");
    refused(&w, dir, &policy, &mirror, "does not accept");
    // Each signedIdentity form, accepting what it should.
    for (identity, image, ok) in [
        (
            r#","signedIdentity":{"type":"matchRepository"}"#.to_string(),
            format!("{host}/tools/busybox:retag"),
            true,
        ),
        (
            r#","signedIdentity":{"type":"matchExact"}"#.to_string(),
            format!("{host}/tools/busybox:retag"),
            false,
        ),
        (
            format!(
                r#","signedIdentity":{{"type":"exactReference","dockerReference":"{signed}"}}"#
            ),
            mirror.clone(),
            true,
        ),
        (
            format!(
                r#","signedIdentity":{{"type":"exactRepository","dockerRepository":"{host}/other/busybox"}}"#
            ),
            signed.clone(),
            false,
        ),
        (
            format!(
                r#","signedIdentity":{{"type":"remapIdentity","prefix":"{host}/mirror","signedPrefix":"{host}/tools"}}"#
            ),
            mirror.clone(),
            true,
        ),
    ] {
        let p = write_policy(dir, "identity.json", &trusts(&identity));
        if ok {
            accepted(&Wharf::new(), dir, &p, &image);
        } else {
            refused(&w, dir, &p, &image, "does not accept");
        }
    }
    // Another key than the one that signed.
    let other_key = s(&other.public);
    let p = write_policy(
        dir,
        "other.json",
        &format!(
            r#""{host}/tools":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{other_key}"}}]"#
        ),
    );
    refused(&w, dir, &p, &signed, "not one the policy trusts");
    // A tampered signature: one byte of its payload changed.
    let original = std::fs::read(&sig1).unwrap();
    let mut tampered = original.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x20;
    std::fs::write(&sig1, &tampered).unwrap();
    refused(&w, dir, &policy, &signed, "signature-1");
    std::fs::write(&sig1, &original).unwrap();
    // reject for one scope, however signed.
    let p = write_policy(
        dir,
        "reject.json",
        &format!(r#""{signed}":[{{"type":"reject"}}],{}"#, trusts("")),
    );
    refused(&w, dir, &p, &signed, "rejects every image");
    // A broken policy refuses everything.
    let broken = dir.join("broken.json");
    std::fs::write(
        &broken,
        r#"{"default":[{"type":"insecureAcceptAnything"}],"#,
    )
    .unwrap();
    refused(
        &w,
        dir,
        &broken,
        &signed,
        "every image is refused until it is mended",
    );
    std::fs::write(
        &broken,
        r#"{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}"#,
    )
    .unwrap();
    refused(&w, dir, &broken, &signed, "exactly one of keyPath");
    assert!(w.images().is_empty());
    // wharf signs as skopeo does; skopeo and Podman accept it under the same policy file
    // (and refuse the unsigned image under it, so the check is real).
    let signer = Wharf::new();
    signer.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let by_wharf = format!("{host}/tools/by-wharf:1");
    push_signed(&signer, &builder, dir, "busybox", &by_wharf);
    accepted(&Wharf::new(), dir, &policy, &by_wharf);
    // A multi-platform index: what is checked is the platform's manifest that is pulled.
    // wharf signs the index and each platform; skopeo (`copy --all --sign-by`) signs the
    // index alone, which Podman refuses for one platform, and so does wharf.
    let layout = mixed_index_layout(&signer, "mixed");
    signer.ok(&["load", "-i", &s(&layout)]);
    let mixed = format!("{host}/tools/mixed:1");
    push_signed(&signer, &builder, dir, "mixed", &mixed);
    let one = Wharf::new();
    accepted(&one, dir, &policy, &mixed);
    assert_eq!(one.images()[0]["Kind"], "native");
    let listed_only = format!("{host}/tools/mixed-index-signed:1");
    skopeo(
        dir,
        Some(&builder.home),
        &[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--sign-by",
            &builder.fingerprint,
            &format!("oci:{}:mixed", s(&layout)),
            &format!("docker://{listed_only}"),
        ],
    );
    // skopeo signs each platform too; with the platforms' signatures gone, the index's
    // alone does not let a platform in.
    let list_digest = digest_of(dir, &listed_only);
    let list_hex = list_digest.strip_prefix("sha256:").unwrap();
    let mut removed = 0;
    for e in std::fs::read_dir(sigs.join("tools")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("mixed-index-signed@") && !name.ends_with(list_hex) {
            std::fs::remove_dir_all(e.path()).unwrap();
            removed += 1;
        }
    }
    assert!(removed >= 1, "skopeo signed no platform");
    assert!(
        sigs.join(format!("tools/mixed-index-signed@sha256={list_hex}"))
            .is_dir()
    );
    refused(&w, dir, &policy, &listed_only, "no signature");
    let ok = skopeo_copy_out(dir, &policy, &by_wharf, "skopeo-copy");
    assert!(
        ok.status.success(),
        "skopeo refused wharf's signature: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let no = skopeo_copy_out(dir, &policy, &unsigned, "skopeo-unsigned");
    assert!(
        !no.status.success() && String::from_utf8_lossy(&no.stderr).contains("signature"),
        "skopeo took an unsigned image under the policy: {}",
        String::from_utf8_lossy(&no.stderr)
    );
    let podman_home = dir.join("podman-home");
    std::fs::create_dir_all(podman_home.join(".config/containers")).unwrap();
    sh(Command::new("cp")
        .arg("-r")
        .arg(dir.join("registries.d"))
        .arg(podman_home.join(".config/containers/registries.d")));
    let podman_pull = |image: &str| {
        Command::new("podman")
            .env("HOME", &podman_home)
            .arg("--root")
            .arg(dir.join("podman-root"))
            .arg("--runroot")
            .arg(dir.join("podman-run"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args([
                "--events-backend",
                "none",
                "pull",
                "-q",
                "--tls-verify=false",
            ])
            .arg("--signature-policy")
            .arg(&policy)
            .arg(image)
            .output()
            .unwrap()
    };
    let ok = podman_pull(&by_wharf);
    assert!(
        ok.status.success(),
        "podman refused wharf's signature: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let no = podman_pull(&unsigned);
    assert!(
        !no.status.success() && String::from_utf8_lossy(&no.stderr).contains("signature"),
        "podman took an unsigned image: {}",
        String::from_utf8_lossy(&no.stderr)
    );
    // The policy under wharf's root is obeyed without a flag, by `run`'s pull too.
    let rooted = Wharf::new();
    std::fs::create_dir_all(rooted.root()).unwrap();
    std::fs::copy(&policy, rooted.root().join("policy.json")).unwrap();
    let err = rooted.fails(&["run", "--rm", &hello], 125);
    assert!(err.contains("no signature"), "{err}");
    assert!(rooted.images().is_empty());
    let info = rooted.ok(&["info"]);
    assert!(
        info.contains("policy.json: signatures are checked where it asks"),
        "{info}"
    );
    // `load` of an archive obeys it too: refused by the default here, refused where a scope
    // for the archives' directory asks a signature, let in where it accepts anything.
    let archive = s(&busybox_images().join("busybox-oci.tar"));
    let err = rooted.fails(&["load", "-i", &archive], 125);
    assert!(err.contains("rejects every image"), "{err}");
    assert!(rooted.images().is_empty());
    let images_dir = s(&std::fs::canonicalize(busybox_images()).unwrap());
    let archives = |req: &str| {
        std::fs::write(
            rooted.root().join("policy.json"),
            format!(
                r#"{{"default":[{{"type":"reject"}}],"transports":{{"oci-archive":{{"{images_dir}":[{req}]}}}}}}"#
            ),
        )
        .unwrap();
    };
    archives(&format!(
        r#"{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{builder_key}"}}"#
    ));
    let err = rooted.fails(&["load", "-i", &archive], 125);
    assert!(err.contains("an archive carries no signatures"), "{err}");
    assert!(rooted.images().is_empty());
    archives(r#"{"type":"insecureAcceptAnything"}"#);
    rooted.ok(&["load", "-i", &archive]);
    assert_eq!(rooted.images().len(), 1);
}

/// Sign `digest` of `image` (`host/repo:tag`) as cosign does, with Python's `cryptography`
/// (P-256, SHA-256, DER), and attach it in the registry under `sha256-HEX.sig` through
/// the distribution API (tests/fixtures/cosign-sign.py, which bench/pull.sh uses too);
/// returns the public key's PEM file.
fn cosign_sign(
    dir: &Path,
    key: &str,
    host: &str,
    repo: &str,
    identity: &str,
    digest: &str,
) -> PathBuf {
    cosign_py(dir, key, host, repo, identity, digest, digest)
}

/// As [`cosign_sign`] with the "cosign" key, the payload naming `claimed` but attached
/// under `attached_to`'s signature tag.
fn cosign_sign_at(
    dir: &Path,
    host: &str,
    repo: &str,
    identity: &str,
    claimed: &str,
    attached_to: &str,
) -> PathBuf {
    cosign_py(dir, "cosign", host, repo, identity, claimed, attached_to)
}

fn cosign_py(
    dir: &Path,
    key: &str,
    host: &str,
    repo: &str,
    identity: &str,
    claimed: &str,
    attached_to: &str,
) -> PathBuf {
    let script = repo_dir().join("tests/fixtures/cosign-sign.py");
    let out = sh(Command::new("/usr/bin/python3").arg(&script).args([
        &s(&dir.join(format!("{key}.key"))),
        host,
        repo,
        identity,
        claimed,
        attached_to,
    ]));
    assert!(out.contains("attached"), "{out}");
    dir.join(format!("{key}.key.pub"))
}

#[test]
fn sigstore_signatures_attached_in_the_registry_are_required_and_checked() {
    let reg = Registry::start();
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("registries.d")).unwrap();
    std::fs::write(
        dir.join("registries.d/sigstore.yaml"),
        format!("docker:\n  {host}/signed:\n    use-sigstore-attachments: true\n"),
    )
    .unwrap();
    let pusher = Wharf::new();
    pusher.ok(&["package", &wasm("hello.wasm"), "-t", "hello"]);
    let app = format!("{host}/signed/hello:1");
    let unsigned = format!("{host}/signed/unsigned:1");
    let unattached = format!("{host}/plain/hello:1");
    for to in [&app, &unsigned, &unattached] {
        pusher.ok(&["push", "hello", to]);
    }
    let digest = digest_of(dir, &app);
    let key = cosign_sign(dir, "cosign", &host, "signed/hello", &app, &digest);
    let other = cosign_sign(dir, "other", &host, "signed/other", &app, &digest);
    let policy = |key: &Path, identity: &str| {
        let p = dir.join(format!(
            "sigstore-{}{}.json",
            key.file_name().unwrap().to_string_lossy(),
            identity.len()
        ));
        std::fs::write(
            &p,
            format!(
                r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{"{host}":[{{"type":"sigstoreSigned","keyPath":"{}"{identity}}}]}}}}}}"#,
                s(key)
            ),
        )
        .unwrap();
        p
    };
    let p = policy(&key, "");
    let fresh = Wharf::new();
    accepted(&fresh, dir, &p, &app);
    let out = fresh.ok(&["run", "--rm", &app, "checked"]);
    assert!(out.contains("arg[1]=checked"), "{out}");
    let w = Wharf::new();
    refused(&w, dir, &p, &unsigned, "nothing attached as sha256-");
    refused(&w, dir, &p, &unattached, "use-sigstore-attachments");
    refused(
        &w,
        dir,
        &policy(&other, ""),
        &app,
        "none of the keys the policy trusts",
    );
    // Attached beside another repository's image: app's signature names app; one that
    // names it is for another manifest.
    let _ = cosign_sign(dir, "cosign", &host, "signed/unsigned", &app, &digest);
    refused(&w, dir, &p, &unsigned, "does not accept");
    let elsewhere = format!("sha256:{}", "0".repeat(64));
    let _ = cosign_sign_at(
        dir,
        &host,
        "signed/unsigned",
        &unsigned,
        &elsewhere,
        &digest,
    );
    refused(&w, dir, &p, &unsigned, "another manifest");
    // matchRepository accepts a signature naming another tag of the repository.
    let p_repo = policy(&key, r#","signedIdentity":{"type":"matchRepository"}"#);
    let retag = format!("{host}/signed/hello:2");
    pusher.ok(&["push", "hello", &retag]);
    refused(&w, dir, &p, &retag, "does not accept");
    accepted(&Wharf::new(), dir, &p_repo, &retag);
    assert!(w.images().is_empty(), "the refusals stored nothing");
    // run pulls under the policy it is given, as Podman's run does; compose up under
    // wharf's own ROOT/policy.json.
    let regd = s(&dir.join("registries.d"));
    let trusted = ["--signature-policy", &s(&p), "--registries.d", &regd];
    let runner = Wharf::new();
    let mut args = vec!["run", "--rm"];
    args.extend(trusted);
    let out = runner.ok(&[args.as_slice(), &[app.as_str(), "from-run"]].concat());
    assert!(out.contains("arg[1]=from-run"), "{out}");
    let err = runner.fails(&[args.as_slice(), &[unsigned.as_str()]].concat(), 125);
    assert!(err.contains("requirement sigstoreSigned"), "{err}");
    assert_eq!(runner.images().len(), 1, "run stored only the signed image");
    let composer = Wharf::new();
    std::fs::create_dir_all(composer.root()).unwrap();
    std::fs::copy(&p, composer.root().join("policy.json")).unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(&file, format!("services:\n  app:\n    image: {unsigned}\n")).unwrap();
    let out = composer
        .cmd(&["compose", "-f", &s(&file), "up"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "refused by the signature policy {}",
            s(&composer.root().join("policy.json"))
        )),
        "{err}"
    );
    assert!(composer.images().is_empty());
    // The plugin host obeys the policy it is given: it loads the signed plugin, refuses an
    // unsigned one, and a reload to a tag that moved to an unsigned image keeps its code.
    let plugins = Wharf::new();
    let host = wharf::plugin::Host::open(
        &wharf::paths::Roots::new(plugins.root()),
        wharf::plugin::HostOptions {
            trust: wharf::trust::TrustOptions {
                policy: Some(p.clone()),
                registries_d: Some(dir.join("registries.d")),
            },
            ..Default::default()
        },
    )
    .unwrap();
    let plugin = host.load(&app, Default::default()).unwrap();
    let before = plugin.digest();
    let e = host
        .load(&unsigned, Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("requirement sigstoreSigned"), "{e}");
    pusher.ok(&["package", &wasm("plugin-upper.wasm"), "-t", "upper"]);
    pusher.ok(&["push", "upper", &app]);
    let e = plugin.reload().unwrap_err().to_string();
    assert!(e.contains("nothing attached as sha256-"), "{e}");
    assert_eq!(plugin.digest(), before, "the refused reload kept the code");
}

/// A cosign key pair made by an independent implementation (tests/fixtures/cosign-keygen.py:
/// Python's hashlib scrypt and PyNaCl's secretbox, as cosign seals cosign.key); returns the
/// private key's path (its public key beside it, `.pub`).
fn cosign_keygen(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
    let key = dir.join(format!("{name}.key"));
    sh(Command::new("/usr/bin/python3")
        .arg(repo_dir().join("tests/fixtures/cosign-keygen.py"))
        .arg(&key)
        .arg(passphrase));
    key
}

/// The signatures attached to `digest` in `repo`, checked by an independent verifier
/// (tests/fixtures/cosign-verify.py, Python's `cryptography`) with `public`.
fn cosign_verify(host: &str, repo: &str, digest: &str, public: &Path) -> (bool, String) {
    let out = Command::new("/usr/bin/python3")
        .arg(repo_dir().join("tests/fixtures/cosign-verify.py"))
        .args([host, repo, digest, &s(public)])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn push_signs_with_cosign_keys_and_passphrase_protected_gpg_keys() {
    let reg = Registry::start();
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sigs = dir.join("sigs");
    let regd = dir.join("registries.d");
    std::fs::create_dir_all(&regd).unwrap();
    std::fs::write(
        regd.join("sigstore.yaml"),
        format!(
            "docker:\n  {host}/signed:\n    use-sigstore-attachments: true\n  {host}/gpg:\n    lookaside: file://{}\n",
            s(&sigs)
        ),
    )
    .unwrap();
    let builder = cosign_keygen(dir, "builder", "correct horse");
    let second = cosign_keygen(dir, "second", "");
    let stranger = cosign_keygen(dir, "stranger", "x");
    let pass = dir.join("pass");
    std::fs::write(&pass, "correct horse\nsecond line is not read\n").unwrap();
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "correct hors\n").unwrap();
    let w = Wharf::new();
    w.ok(&["package", &wasm("hello.wasm"), "-t", "hello"]);
    let app = format!("{host}/signed/hello:1");
    let push = |key: &Path, target: &str, pass: Option<&Path>| {
        let mut args = vec![
            "push".to_string(),
            "--sign-by-sigstore-private-key".into(),
            s(key),
            "--registries.d".into(),
            s(&regd),
        ];
        if let Some(p) = pass {
            args.extend(["--sign-passphrase-file".into(), s(p)]);
        }
        args.extend(["hello".into(), target.into()]);
        let mut c = w.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>());
        c.env_remove("COSIGN_PASSWORD");
        // In a session of its own, without a terminal to ask a passphrase on even when the
        // tests run on one.
        // SAFETY: setsid is async-signal-safe; the closure touches nothing else.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut c, || {
                rustix::process::setsid()
                    .map(drop)
                    .map_err(std::io::Error::from)
            });
        }
        c.output().unwrap()
    };
    let not_pushed = |target: &str| {
        let probe = Wharf::new();
        probe.fails(&["pull", "-q", target], 125);
    };
    // A wrong passphrase, no passphrase at all (no terminal to ask on), attachments turned
    // off for the destination: refused before anything is pushed.
    for (key, target, pass, says) in [
        (
            &builder,
            &app,
            Some(&wrong),
            "does not open with this passphrase",
        ),
        (&builder, &app, None, "COSIGN_PASSWORD"),
        (
            &builder,
            &format!("{host}/plain/hello:1"),
            Some(&pass),
            "use-sigstore-attachments: true",
        ),
        (&pass, &app, Some(&pass), "not a PEM private key"),
    ] {
        let out = push(key, target, pass.map(PathBuf::as_path));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(err.contains(says), "{err}");
        not_pushed(target);
    }
    // Signed with the passphrase file, then again with a second key (its passphrase from
    // $COSIGN_PASSWORD, as cosign reads it): both signatures attached, the first kept.
    let out = push(&builder, &app, Some(&pass));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Signature attached as signed/hello:sha256-"),
        "{err}"
    );
    let out = w
        .cmd(&[
            "push",
            "-q",
            "--sign-by-sigstore-private-key",
            &s(&second),
            "--registries.d",
            &s(&regd),
            "hello",
            &app,
        ])
        .env("COSIGN_PASSWORD", "")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = digest_of(dir, &app);
    for key in [&builder, &second] {
        let (ok, said) = cosign_verify(
            &host,
            "signed/hello",
            &digest,
            &key.with_extension("key.pub"),
        );
        assert!(ok, "{said}");
        assert!(said.contains(&format!("verified {app} {digest}")), "{said}");
        assert!(said.contains("2 layers"), "{said}");
    }
    let (ok, said) = cosign_verify(
        &host,
        "signed/hello",
        &digest,
        &stranger.with_extension("key.pub"),
    );
    assert!(
        !ok && said.contains("bad 1") && said.contains("bad 2"),
        "{said}"
    );
    // wharf's own pull accepts each key's signature, and refuses a key that signed nothing.
    let policy = |key: &Path| {
        let p = dir.join(format!(
            "{}.json",
            key.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(
            &p,
            format!(
                r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{"{host}/signed":[{{"type":"sigstoreSigned","keyPath":"{}.pub"}}]}}}}}}"#,
                s(key)
            ),
        )
        .unwrap();
        p
    };
    for key in [&builder, &second] {
        accepted(&Wharf::new(), dir, &policy(key), &app);
    }
    refused(
        &Wharf::new(),
        dir,
        &policy(&stranger),
        &app,
        "none of the keys the policy trusts",
    );

    // A GPG key with a passphrase: gpg is given the file (loopback pinentry), a wrong one
    // signs nothing, and skopeo accepts what the right one signed.
    let key = gpg_key_with(dir, "locked", "ed25519", "open sesame", "never");
    std::fs::write(&pass, "open sesame\n").unwrap();
    let gpg_target = format!("{host}/gpg/hello:1");
    for (file, ok) in [(&wrong, false), (&pass, true)] {
        let out = w
            .cmd(&[
                "push",
                "--sign-by",
                &key.fingerprint,
                "--sign-passphrase-file",
                &s(file),
                "--registries.d",
                &s(&regd),
                "hello",
                &gpg_target,
            ])
            .env("GNUPGHOME", &key.home)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), ok, "{err}");
        if !ok {
            assert!(err.contains("gpg could not sign"), "{err}");
            assert_eq!(count_files(&sigs), 0, "a failed signing wrote a signature");
            not_pushed(&gpg_target);
        }
    }
    let gpg_policy = write_policy(
        dir,
        "gpg.json",
        &format!(
            r#""{host}/gpg":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{}"}}]"#,
            s(&key.public)
        ),
    );
    let out = skopeo_copy_out(dir, &gpg_policy, &gpg_target, "copied");
    assert!(
        out.status.success(),
        "skopeo refused what wharf signed with a passphrase-protected key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// gpg `args` in `key`'s home (no passphrase, no questions).
fn gpg_in(key: &GpgKey, args: &[&str]) -> String {
    sh(Command::new("gpg")
        .env("GNUPGHOME", &key.home)
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args))
}

/// Export `key`'s public key again (after a change to it), as its owner would publish it.
fn republish(key: &GpgKey) {
    let out = Command::new("gpg")
        .env("GNUPGHOME", &key.home)
        .args(["--batch", "--export", &key.fingerprint])
        .output()
        .unwrap();
    assert!(out.status.success() && !out.stdout.is_empty());
    std::fs::write(&key.public, out.stdout).unwrap();
}

#[test]
fn gpg_keys_that_expired_or_were_revoked_sign_nothing_for_wharf_or_skopeo() {
    let reg = Registry::start();
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    lookaside_in(dir, &host);
    // Made in 2020 to expire after a year, and signing in 2020 (gpg's own clock is faked
    // in that home): a signature made while the key was good, checked after it expired.
    // And a key that never expires making signatures that expire after a day.
    let fake_2020 = |name: &str, extra: &str| {
        let home = dir.join(format!("gnupg-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(
            home.join("gpg.conf"),
            format!("faked-system-time 20200601T000000\n{extra}"),
        )
        .unwrap();
        home.join("gpg.conf")
    };
    let expired_conf = fake_2020("expired", "");
    let expired = gpg_key_with(dir, "expired", "ed25519", "", "1y");
    fake_2020("sig-expires", "default-sig-expire 1d\n");
    let sig_expires = gpg_key(dir, "sig-expires", "ed25519");
    let revoked = gpg_key(dir, "revoked", "ed25519");
    let w = Wharf::new();
    w.ok(&["package", &wasm("hello.wasm"), "-t", "hello"]);
    let by_expired = format!("{host}/apps/expired:1");
    let by_sig_expires = format!("{host}/apps/sig-expires:1");
    let by_revoked = format!("{host}/apps/revoked:1");
    push_signed(&w, &expired, dir, "hello", &by_expired);
    push_signed(&w, &sig_expires, dir, "hello", &by_sig_expires);
    push_signed(&w, &revoked, dir, "hello", &by_revoked);
    // The expired key gets a second user id in 2020, revoked now: a user id's revocation
    // is a newer self-signature, with no expiry, which must not make the key good again.
    gpg_in(
        &expired,
        &[
            "--quick-add-uid",
            &expired.fingerprint,
            "second <second@wharf.test>",
        ],
    );
    std::fs::remove_file(&expired_conf).unwrap();
    gpg_in(
        &expired,
        &[
            "--quick-revoke-uid",
            &expired.fingerprint,
            "second <second@wharf.test>",
        ],
    );
    republish(&expired);
    let policy = |key: &GpgKey| {
        write_policy(
            dir,
            &format!("{}.json", key.home.file_name().unwrap().to_string_lossy()),
            &format!(
                r#""{host}/apps":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{}"}}]"#,
                s(&key.public)
            ),
        )
    };
    let p_revoked = policy(&revoked);
    // Before its revocation the key is good, for both.
    accepted(&Wharf::new(), dir, &p_revoked, &by_revoked);
    // gpg wrote a revocation certificate when it made the key: imported, and the key
    // exported again with it.
    let rev = std::fs::read_to_string(
        revoked
            .home
            .join(format!("openpgp-revocs.d/{}.rev", revoked.fingerprint)),
    )
    .unwrap()
    .replace(":-----BEGIN", "-----BEGIN");
    let rev_file = dir.join("revocation.asc");
    std::fs::write(&rev_file, rev).unwrap();
    gpg_in(&revoked, &["--import", &s(&rev_file)]);
    republish(&revoked);
    let w = Wharf::new();
    for (key, image, says) in [
        (&expired, &by_expired, "may not sign: it expired on 2021-"),
        (&revoked, &by_revoked, "may not sign: it is revoked"),
        (
            &sig_expires,
            &by_sig_expires,
            "the signature expired on 2020-06-02",
        ),
    ] {
        let p = policy(key);
        refused(&w, dir, &p, image, says);
        // skopeo (gpgme) refuses the same signature under the same policy file.
        let out = skopeo_copy_out(dir, &p, image, "skopeo-copy");
        assert!(
            !out.status.success(),
            "skopeo accepted {image}, whose signature wharf refuses: {says}"
        );
    }
    assert!(w.images().is_empty());
    // Its owner extends the expired key (a newer self-signature, no expiry): what it
    // signed counts again, for both.
    gpg_in(&expired, &["--quick-set-expire", &expired.fingerprint, "0"]);
    republish(&expired);
    let p = policy(&expired);
    accepted(&Wharf::new(), dir, &p, &by_expired);
    let out = skopeo_copy_out(dir, &p, &by_expired, "skopeo-extended");
    assert!(
        out.status.success(),
        "skopeo refused a signature by an extended key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lookaside_storage_over_https_trusts_what_the_registry_trusts() {
    // A registry with TLS and a login, and its signatures served over https by a server
    // whose certificate another CA signed: `--cert-dir` must trust both, as containers/image
    // reads lookaside storage with the registry's TLS settings.
    let reg = Registry::start_secure();
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sigs = dir.join("sigs");
    let ca = dir.join("lookaside-ca");
    std::fs::create_dir_all(&ca).unwrap();
    test_ca(&ca);
    let port = free_port();
    std::fs::create_dir_all(&sigs).unwrap();
    let _server = serve(
        Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import functools, http.server, ssl, sys\n\
                 ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
                 ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n\
                 h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])\n\
                 s = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[4])), h)\n\
                 s.socket = ctx.wrap_socket(s.socket, server_side=True)\n\
                 s.serve_forever()",
            ])
            .arg(ca.join("server.crt"))
            .arg(ca.join("server.key"))
            .arg(&sigs)
            .arg(port.to_string()),
        port,
    );
    std::fs::create_dir_all(dir.join("registries.d")).unwrap();
    std::fs::write(
        dir.join("registries.d/https.yaml"),
        format!(
            "docker:\n  {host}:\n    lookaside: https://127.0.0.1:{port}\n    lookaside-staging: file://{}\n",
            s(&sigs)
        ),
    )
    .unwrap();
    let key = gpg_key(dir, "builder", "ed25519");
    let policy = write_policy(
        dir,
        "policy.json",
        &format!(
            r#""{host}":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{}"}}]"#,
            s(&key.public)
        ),
    );
    let w = Wharf::new();
    let docker = w.path("docker-config");
    let run = |args: &[&str]| {
        w.cmd(args)
            .env("DOCKER_CONFIG", &docker)
            .env("GNUPGHOME", &key.home)
            .output()
            .unwrap()
    };
    w.ok(&["package", &wasm("hello.wasm"), "-t", "hello"]);
    let image = format!("{host}/signed/hello:1");
    let registry_only = s(&reg.cert_dir());
    assert!(
        run(&["login", &host, "-u", "alice", "-p", "s3cret"])
            .status
            .success()
    );
    let out = run(&[
        "push",
        "--cert-dir",
        &registry_only,
        "--sign-by",
        &key.fingerprint,
        "--registries.d",
        &s(&dir.join("registries.d")),
        "hello",
        &image,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both = dir.join("both-cas");
    std::fs::create_dir_all(&both).unwrap();
    std::fs::copy(reg.cert_dir().join("ca.crt"), both.join("registry.crt")).unwrap();
    std::fs::copy(ca.join("ca.crt"), both.join("lookaside.crt")).unwrap();
    let puller = Wharf::new();
    let pull = |cert_dir: &str| {
        puller
            .cmd(&[
                "pull",
                "-q",
                "--cert-dir",
                cert_dir,
                "--signature-policy",
                &s(&policy),
                "--registries.d",
                &s(&dir.join("registries.d")),
                &image,
            ])
            .env("DOCKER_CONFIG", &docker)
            .output()
            .unwrap()
    };
    // The lookaside server's CA not trusted: its signatures cannot be read.
    let out = pull(&registry_only);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("reading its signatures"), "{err}");
    assert!(puller.images().is_empty());
    let out = pull(&s(&both));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(puller.images().len(), 1);
}
