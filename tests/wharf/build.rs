//! `wharf build`, compared with buildah (Debian's, vfs storage, runc isolation, no network)
//! building the same Dockerfile: the root filesystems (paths, types, modes, owners, link
//! targets, contents, as umoci unpacks them) and the config fields the Dockerfile sets.
//! Then the cache, reproducible digests, a wasm final stage, and hostile contexts.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::common::{Wharf, busybox_images, s, sh, wasm};

/// A context with everything the comparison covers.
fn context(dir: &Path) {
    std::fs::create_dir_all(dir.join("app/data")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        r#"ARG BASE
FROM $BASE AS build
ARG GREETING=hello
ENV WHO=world OUT=/out
RUN mkdir -p $OUT/sub && echo "$GREETING $WHO" > $OUT/msg && ln -s msg $OUT/link \
    && chmod 0750 $OUT/sub && chown 1000:1000 $OUT/sub
RUN rm -rf /etc/group && touch /gone && rm /gone

FROM $BASE
ARG GREETING=hi
COPY --from=build /out /srv/out
COPY --chown=1000:1000 app/ /app/
COPY *.txt /texts/
COPY link.lnk /texts/link2
COPY --chmod=0600 a.txt /texts/private
COPY a.* /texts/single.txt
RUN mkdir -p /usr/lib/extra && ln -s usr/lib/extra /libalias
COPY b.txt /libalias/
WORKDIR /made/here
RUN pwd > pwd.txt
RUN rm /bin/vi && mkdir -p /data && echo "$GREETING" > /data/greeting
RUN rm -rf /data && mkdir /data && echo new > /data/file && ln /data/file /data/hard
WORKDIR /app
USER 1000:1000
RUN touch /app/made-by-user
ENV PATH=/app:$PATH
LABEL org.example.kind=test version="1.0"
EXPOSE 8080/tcp 53/udp
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /srv/out/msg"]
"#,
    )
    .unwrap();
    std::fs::write(dir.join("app/main.sh"), "#!/bin/sh\necho main\n").unwrap();
    std::fs::set_permissions(dir.join("app/main.sh"), PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("app/data/x"), "x\n").unwrap();
    std::fs::write(dir.join("app/skip.me"), "ignored\n").unwrap();
    std::fs::write(dir.join("a.txt"), "a\n").unwrap();
    std::fs::write(dir.join("b.txt"), "b\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "never copied\n").unwrap();
    std::os::unix::fs::symlink("a.txt", dir.join("link.lnk")).unwrap();
    std::fs::write(dir.join(".dockerignore"), "secret.txt\napp/skip*\n").unwrap();
    // Context files owned by someone: in the image they are root's (no --chown).
    std::os::unix::fs::chown(dir.join("a.txt"), Some(1234), Some(1234)).unwrap();
    std::os::unix::fs::chown(dir.join("app/data"), Some(1234), Some(1234)).unwrap();
}

/// Every entry under `root`: its type, mode, owner, link target and content digest.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let what = if m.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                todo.push(p.clone());
                "dir".to_string()
            } else if m.is_file() {
                use sha2::Digest;
                format!(
                    "file {}",
                    hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap()))
                )
            } else {
                format!("special {:o}", m.mode() & 0o170000)
            };
            let mode = if m.file_type().is_symlink() {
                0
            } else {
                m.mode() & 0o7777
            };
            out.insert(rel, format!("{what} {mode:o} {}:{}", m.uid(), m.gid()));
        }
    }
    out
}

/// `umoci unpack` of `layout:tag` into `bundle`: the root filesystem and the config.
fn unpack(
    layout: &Path,
    tag: &str,
    bundle: &Path,
) -> (BTreeMap<String, String>, serde_json::Value) {
    sh(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle));
    let layout_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| -> serde_json::Value {
        let hex = d.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let manifest = blob(layout_index["manifests"][0]["digest"].as_str().unwrap());
    let config = blob(manifest["config"]["digest"].as_str().unwrap());
    (tree(&bundle.join("rootfs")), config)
}

/// buildah with its state under `dir`: vfs storage, runc, no network.
fn buildah(dir: &Path) -> Command {
    let mut c = Command::new("buildah");
    c.arg("--storage-driver")
        .arg("vfs")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"));
    c
}

/// The config fields a Dockerfile sets.
fn set_fields(config: &serde_json::Value) -> serde_json::Value {
    let c = &config["config"];
    serde_json::json!({
        "User": c["User"], "WorkingDir": c["WorkingDir"], "Env": c["Env"],
        "Entrypoint": c["Entrypoint"], "Cmd": c["Cmd"], "Labels": c["Labels"],
        "ExposedPorts": c["ExposedPorts"], "StopSignal": c["StopSignal"],
    })
}

#[test]
fn build_matches_buildah() {
    let w = Wharf::new();
    let images = busybox_images();
    w.ok(&["load", "-i", &s(&images.join("busybox-oci.tar"))]);
    let ctx = w.path("ctx");
    context(&ctx);
    let out = w.ok(&[
        "build",
        "-q",
        "--build-arg",
        "BASE=busybox",
        "-t",
        "mine:1",
        &s(&ctx),
    ]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    // wharf's image, as skopeo would read it: saved, then unpacked by umoci.
    let saved = w.path("wharf.tar");
    w.ok(&["save", "-o", &s(&saved), "mine:1"]);
    let wharf_layout = w.path("wharf-layout");
    std::fs::create_dir_all(&wharf_layout).unwrap();
    sh(Command::new("tar")
        .arg("-xf")
        .arg(&saved)
        .arg("-C")
        .arg(&wharf_layout));
    let tag = {
        let idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(wharf_layout.join("index.json")).unwrap())
                .unwrap();
        idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (wharf_tree, wharf_config) = unpack(&wharf_layout, &tag, &w.path("wharf-bundle"));

    let b = w.path("buildah");
    sh(buildah(&b)
        .args([
            "bud",
            "--runtime",
            "runc",
            "--isolation",
            "oci",
            "--network",
            "none",
        ])
        .arg("--build-arg")
        .arg(format!(
            "BASE=oci-archive:{}",
            images.join("busybox-oci.tar").display()
        ))
        .args(["-t", "theirs"])
        .arg(&ctx));
    let their_layout = w.path("buildah-layout");
    sh(buildah(&b)
        .args(["push", "theirs"])
        .arg(format!("oci:{}:latest", their_layout.display())));
    let (their_tree, their_config) = unpack(&their_layout, "latest", &w.path("buildah-bundle"));
    let _ = buildah(&b).args(["rmi", "--all", "--force"]).output();

    // buildah leaves the mount points of its RUN containers in the image (an empty
    // /etc/hostname and /run, where the base image has neither); Docker's builder and wharf's
    // do not. Only these, and only empty, are set aside.
    let mut their_tree = their_tree;
    for (artefact, kind) in [("etc/hostname", "file e3b0c442"), ("run", "dir")] {
        if !wharf_tree.contains_key(artefact)
            && their_tree
                .get(artefact)
                .is_some_and(|v| v.starts_with(kind))
        {
            their_tree.remove(artefact);
        }
    }
    let differ: Vec<String> = their_tree
        .iter()
        .filter(|(k, v)| wharf_tree.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: buildah {v}, wharf {:?}", wharf_tree.get(k)))
        .chain(
            wharf_tree
                .keys()
                .filter(|k| !their_tree.contains_key(*k))
                .map(|k| format!("{k}: only in wharf's ({})", wharf_tree[k])),
        )
        .collect();
    assert!(
        differ.is_empty(),
        "root filesystems differ:\n{}",
        differ.join("\n")
    );
    // What the comparison covered, present in both.
    for (path, want) in [
        ("srv/out/msg", "file"),
        ("srv/out/link", "link -> msg"),
        ("app/main.sh", "file"),
        ("texts/link2", "file"),
        ("data/hard", "file"),
        ("app/made-by-user", "file"),
        ("texts/single.txt", "file"),
        ("texts/private", "file"),
        ("libalias", "link -> usr/lib/extra"),
        ("usr/lib/extra/b.txt", "file"),
        ("made/here/pwd.txt", "file"),
    ] {
        assert!(
            wharf_tree.get(path).is_some_and(|v| v.starts_with(want)),
            "{path}: {:?}",
            wharf_tree.get(path)
        );
    }
    assert!(
        wharf_tree["texts/private"].ends_with(" 600 0:0"),
        "{}",
        wharf_tree["texts/private"]
    );
    assert!(
        wharf_tree["texts/a.txt"].ends_with(" 0:0"),
        "{}",
        wharf_tree["texts/a.txt"]
    );
    for gone in [
        "secret.txt",
        "app/skip.me",
        "bin/vi",
        "data/greeting",
        "texts/secret.txt",
    ] {
        assert!(!wharf_tree.contains_key(gone), "{gone} is there");
    }
    // buildah signs its images with a label of its own version.
    let mut their_config = their_config;
    if let Some(labels) = their_config["config"]["Labels"].as_object_mut() {
        labels.remove("io.buildah.version");
    }
    assert_eq!(set_fields(&wharf_config), set_fields(&their_config));
    // And it runs.
    assert_eq!(w.ok(&["run", "--rm", "mine:1"]).trim(), "hello world");
    assert!(
        w.ok(&["ps", "-aq"]).trim().is_empty(),
        "a step's container was left"
    );
}

#[test]
fn cache_rebuilds_from_the_changed_step_and_timestamps_fix_the_digest() {
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let ctx = w.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM busybox\nRUN echo one > /one\nCOPY a /a\nRUN cat /a > /b\nCOPY c /c\n",
    )
    .unwrap();
    std::fs::write(ctx.join("a"), "a\n").unwrap();
    std::fs::write(ctx.join("c"), "c\n").unwrap();
    let build = |extra: &[&str]| -> (String, String) {
        let mut args = vec!["build", "-t", "cached"];
        args.extend_from_slice(extra);
        let ctx = s(&ctx);
        args.push(&ctx);
        let out = w.run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (first, log) = build(&[]);
    assert!(log.contains("5 steps, 0 from the cache"), "{log}");
    let (again, log) = build(&[]);
    assert_eq!(
        again, first,
        "a rebuild with nothing changed is the same image"
    );
    assert!(log.contains("5 steps, 4 from the cache"), "{log}");
    std::fs::write(ctx.join("a"), "changed\n").unwrap();
    let (changed, log) = build(&[]);
    assert_ne!(changed, first);
    // FROM, then the first RUN cached; the COPY of `a` and everything after it rebuilt.
    assert!(log.contains("5 steps, 1 from the cache"), "{log}");
    assert_eq!(w.ok(&["run", "--rm", "cached", "cat", "/b"]), "changed\n");
    // A file moved to another directory of a copied tree is another input.
    std::fs::create_dir_all(ctx.join("tree/x")).unwrap();
    std::fs::write(ctx.join("tree/x/f"), "f\n").unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM busybox\nRUN echo one > /one\nCOPY a /a\nRUN cat /a > /b\nCOPY c /c\nCOPY tree /tree\n",
    )
    .unwrap();
    build(&[]);
    std::fs::rename(ctx.join("tree/x/f"), ctx.join("tree/f")).unwrap();
    let (_, log) = build(&[]);
    assert!(log.contains("6 steps, 4 from the cache"), "{log}");
    assert_eq!(w.ok(&["run", "--rm", "cached", "cat", "/tree/f"]), "f\n");
    // A build with a fixed time lends nothing to one without, and takes nothing from it.
    let (fixed, log) = build(&["--timestamp", "1700000000"]);
    assert!(log.contains("6 steps, 0 from the cache"), "{log}");
    let (again, log) = build(&["--timestamp", "1700000000"]);
    assert!(log.contains("6 steps, 5 from the cache"), "{log}");
    assert_eq!(again, fixed);
    // The same input at the same time: the same digest, built twice without the cache.
    let (t1, _) = build(&["--no-cache", "--timestamp", "1700000000"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = w
        .cmd(&["build", "--no-cache", "-q", "-t", "cached", &s(&ctx)])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), t1);
    let (t3, _) = build(&["--no-cache", "--timestamp", "1700000001"]);
    assert_ne!(t3, t1, "another time is another image");
}

#[test]
fn a_wasm_final_stage_runs() {
    let w = Wharf::new();
    let ctx = w.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(wasm("hello.wasm"), ctx.join("hello.wasm")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch AS files\nCOPY hello.wasm /out/app.wasm\n\nFROM scratch\nCOPY --from=files /out/app.wasm /app.wasm\nENTRYPOINT [\"/app.wasm\"]\n",
    )
    .unwrap();
    w.ok(&["build", "-q", "-t", "hello-built", &s(&ctx)]);
    let out = w.ok(&["run", "--rm", "hello-built", "x"]);
    assert!(
        out.contains("hello from wasm") && out.contains("arg[1]=x"),
        "{out}"
    );
    let inspect = crate::common::inspect(&w, "hello-built");
    assert!(inspect.to_string().contains("wasip1"), "{inspect}");
    // With --platform, the Wasm OCI artifact `wharf package` makes.
    w.ok(&[
        "build",
        "-q",
        "--platform",
        "wasip1/wasm",
        "-t",
        "hello-artifact",
        &s(&ctx),
    ]);
    let out = w.ok(&["run", "--rm", "hello-artifact", "y"]);
    assert!(
        out.contains("hello from wasm") && out.contains("arg[1]=y"),
        "{out}"
    );
    let inspect = crate::common::inspect(&w, "hello-artifact");
    assert!(
        inspect.to_string().contains("application/vnd.wasm.config"),
        "{inspect}"
    );
}

#[test]
fn failures_are_named_and_leave_nothing() {
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let ctx = w.path("ctx");
    std::fs::create_dir_all(ctx.join("d")).unwrap();
    std::fs::write(w.path("outside"), "secret\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ctx.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../../outside", ctx.join("d/up-link")).unwrap();
    let images_before = w.ok(&["images", "-q"]);
    let fail = |dockerfile: &str, expect: &[&str]| {
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        let err = w.fails(&["build", "-t", "never", &s(&ctx)], 1);
        for e in expect {
            assert!(err.contains(e), "{dockerfile:?}: {err}");
        }
    };
    fail(
        "FROM busybox\nCOPY ../outside /x\n",
        &["line 2", "outside the build context"],
    );
    fail(
        "FROM busybox\nCOPY abs-link /x\n",
        &["line 2", "not found in the build context"],
    );
    fail(
        "FROM busybox\nCOPY d/up-link /x\n",
        &["line 2", "not found in the build context"],
    );
    fail(
        "FROM busybox\nCOPY /etc/passwd /x\n",
        &["line 2", "not found"],
    );
    fail("FROM busybox\nRUN false\n", &["line 2", "non-zero code: 1"]);
    fail(
        "FROM busybox\nRUN --mount=type=cache,target=/c true\n",
        &["line 2", "--mount"],
    );
    fail("FROM busybox\nONBUILD RUN true\n", &["line 2", "ONBUILD"]);
    std::fs::write(ctx.join("Dockerfile"), "FROM nothing-here\n").unwrap();
    let err = w.fails(&["build", "--pull=never", "-t", "never", &s(&ctx)], 1);
    assert!(
        err.contains("line 1") && err.contains("nothing-here"),
        "{err}"
    );
    // A 100 000-line Dockerfile with a mistake on its last line.
    let mut long = String::from("FROM busybox\n");
    for _ in 0..99_998 {
        long.push_str("# a comment\n");
    }
    long.push_str("BOGUS x\n");
    fail(&long, &["100000"]);
    // A context nesting 300 directories (past the unpacker's bound of 256; 10 000 cannot
    // even be made through paths, PATH_MAX): an error, not a stack overflow.
    let mut deep = ctx.join("deep");
    for _ in 0..300 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    fail(
        "FROM busybox\nCOPY deep /deep\n",
        &["line 2", "deeper than"],
    );
    std::fs::remove_dir_all(ctx.join("deep")).unwrap();
    // A FIFO in the context is archived as one, never opened (no build hangs on it).
    nix::unistd::mkfifo(
        &ctx.join("d/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY d/ /d/\n").unwrap();
    w.ok(&["build", "-q", "-t", "with-fifo", &s(&ctx)]);
    assert!(
        w.ok(&["run", "--rm", "with-fifo", "ls", "-l", "/d/fifo"])
            .starts_with('p')
    );
    w.ok(&["rmi", "with-fifo"]);
    // Nothing tagged, no container left, no blob but the cache's layers.
    assert_eq!(w.ok(&["images", "-q"]), images_before);
    assert!(w.ok(&["ps", "-aq"]).trim().is_empty());
}

/// Unmounts a test's tmpfs when dropped, whatever happened.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_step_that_fills_the_disk_fails_and_leaves_nothing() {
    let w = Wharf::new();
    // wharf's whole root on a 40 MiB tmpfs: the step's writes and the layer made of them
    // run out of room there.
    std::fs::create_dir_all(w.root()).unwrap();
    sh(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=40m", "tmpfs"])
        .arg(w.root()));
    let _mounted = Mounted(w.root());
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let ctx = w.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let used = || {
        let out = sh(Command::new("df")
            .arg("--output=used")
            .arg("-k")
            .arg(w.root()));
        out.lines().nth(1).unwrap().trim().parse::<u64>().unwrap()
    };
    let before = used();
    let tmp_files = || {
        std::fs::read_dir(w.root().join("tmp"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    // The step itself fills the disk: it fails, as dd does.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=64\n",
    )
    .unwrap();
    let err = w.fails(&["build", "-t", "full", &s(&ctx)], 1);
    assert!(
        err.contains("line 2") && err.contains("non-zero code"),
        "{err}"
    );
    // The step fits, its layer does not.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN head -c 22000000 /dev/urandom > /big\n",
    )
    .unwrap();
    let err = w.fails(&["build", "-t", "full", &s(&ctx)], 1);
    assert!(
        err.contains("line 2") && err.contains("No space left"),
        "{err}"
    );
    // Nothing tagged, no container, no half-written blob; the space is back.
    assert!(!w.ok(&["images"]).contains("full"));
    assert!(w.ok(&["ps", "-aq"]).trim().is_empty());
    assert_eq!(tmp_files(), 0, "a temp file was left in the store");
    assert!(
        used() < before + 2048,
        "{} KiB used after, {before} before",
        used()
    );
}

#[test]
fn entrypoint_keeps_a_cmd_its_stage_set_and_drops_an_inherited_one() {
    let w = Wharf::new();
    w.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    let ctx = w.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox AS base\nCMD [\"inherited\"]\nFROM base AS dropped\nENTRYPOINT [\"/bin/echo\"]\nFROM base\nCMD [\"kept\"]\nENTRYPOINT [\"/bin/echo\"]\n",
    )
    .unwrap();
    w.ok(&["build", "-q", "-t", "kept", &s(&ctx)]);
    assert_eq!(w.ok(&["run", "--rm", "kept"]), "kept\n");
    w.ok(&[
        "build",
        "-q",
        "--target",
        "dropped",
        "-t",
        "dropped",
        &s(&ctx),
    ]);
    assert_eq!(w.ok(&["run", "--rm", "dropped"]), "\n");
    // And a glob matching one file may name a file as its destination; two may not.
    std::fs::write(ctx.join("one.txt"), "1").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY one.* /only.txt\n",
    )
    .unwrap();
    w.ok(&["build", "-q", "-t", "glob", &s(&ctx)]);
    assert_eq!(w.ok(&["run", "--rm", "glob", "cat", "/only.txt"]), "1");
    std::fs::write(ctx.join("one.md"), "2").unwrap();
    let err = w.fails(&["build", "-t", "glob", &s(&ctx)], 1);
    assert!(err.contains("destination ending in /"), "{err}");
}
