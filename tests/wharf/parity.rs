//! Docker's own CLI and daemon (Debian's docker.io, a private dockerd) next to wharf on the
//! same container: what `inspect`, `ps`, `stats`, `images`, `history`, `top`, `diff` and
//! `events` print, field for field, so that scripts written for Docker read wharf's output.

use crate::common::*;
use crate::native::{assert_clean, busybox, serial};
use crate::runtime::Dockerd;

/// Every key path in `v` (`.State.Status`, `.Config.Labels.app`, ...).
fn paths(v: &serde_json::Value, at: &str, out: &mut std::collections::BTreeSet<String>) {
    if let serde_json::Value::Object(m) = v {
        for (k, x) in m {
            let p = format!("{at}.{k}");
            paths(x, &p, out);
            out.insert(p);
        }
    }
}

fn keys(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    paths(v, "", &mut out);
    out
}

/// The keys Docker has and `ours` lacks.
fn missing(docker: &serde_json::Value, ours: &serde_json::Value) -> Vec<String> {
    keys(docker).difference(&keys(ours)).cloned().collect()
}

fn json_line(text: &str) -> serde_json::Value {
    serde_json::from_str(text.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn scripts_written_for_docker_read_wharfs_output() {
    let _serial = serial();
    let w = busybox();
    let d = Dockerd::start(&w);
    let docker = |args: &[&str]| -> String {
        let (code, out, err) = d.docker(args);
        assert_eq!(code, Some(0), "docker {args:?}: {err}");
        out
    };
    docker(&[
        "load",
        "-i",
        &s(&busybox_images().join("busybox-docker.tar")),
    ]);
    let since = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1
    );
    // The same container in both.
    let run = [
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "-e",
        "A=b",
        "-l",
        "app=demo",
        "--restart",
        "on-failure:3",
        "-v",
        "data:/data",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "echo hi > /data/f; exec sleep 1000",
    ];
    docker(&["volume", "create", "data"]);
    w.ok(&["volume", "create", "data"]);
    docker(&run);
    w.ok(&run);
    eventually(20, "both containers to write /data/f", || {
        d.docker(&["exec", "web", "cat", "/data/f"]).1 == "hi\n"
            && w.run(&["exec", "web", "cat", "/data/f"]).stdout == b"hi\n"
    });

    // inspect: every field Docker prints is there, and templates read the same.
    let theirs: serde_json::Value = serde_json::from_str(&docker(&["inspect", "web"])).unwrap();
    let ours: serde_json::Value = serde_json::from_str(&w.ok(&["inspect", "web"])).unwrap();
    assert_eq!(missing(&theirs[0], &ours[0]), Vec::<String>::new());
    for t in [
        "{{.Name}} {{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.RestartCount}}",
        "{{.Config.Image}} {{json .Config.Cmd}} {{json .Config.Env}} {{index .Config.Labels \"app\"}}",
        "{{.Config.Tty}} {{.Config.OpenStdin}} {{.Config.AttachStdout}} {{.Config.User}} {{.Config.WorkingDir}}",
        "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.NetworkMode}} {{json .HostConfig.Binds}}",
        "{{.HostConfig.IpcMode}} {{.HostConfig.PidMode}} {{.HostConfig.ShmSize}} {{.HostConfig.Privileged}}",
        "{{json .HostConfig.PortBindings}} {{json .NetworkSettings.Ports}} {{.HostConfig.AutoRemove}}",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}} {{.Driver}}{{end}}",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}} {{.NetworkSettings.IPAddress}}",
        "{{.AppArmorProfile}}|{{.MountLabel}}|{{.Config.Domainname}}",
    ] {
        assert_eq!(
            w.ok(&["inspect", "-f", t, "web"]),
            docker(&["inspect", "-f", t, "web"]),
            "inspect -f {t}"
        );
    }

    // The same paths masked and read-only (listed in another order).
    for t in [
        "{{json .HostConfig.MaskedPaths}}",
        "{{json .HostConfig.ReadonlyPaths}}",
    ] {
        let sorted = |text: String| {
            let mut v: Vec<String> = serde_json::from_str(&text).unwrap();
            v.sort();
            v
        };
        assert_eq!(
            sorted(w.ok(&["inspect", "-f", t, "web"])),
            sorted(docker(&["inspect", "-f", t, "web"])),
            "{t}"
        );
    }

    // ps, stats: Docker's JSON fields (Size is computed by Docker only when asked).
    let theirs = json_line(&docker(&["ps", "--format", "{{json .}}"]));
    let ours = json_line(&w.ok(&["ps", "--format", "{{json .}}"]));
    assert_eq!(missing(&theirs, &ours), [".Size"]);
    for field in [
        "Command",
        "Image",
        "Labels",
        "LocalVolumes",
        "Mounts",
        "Names",
        "Networks",
        "Ports",
        "State",
    ] {
        assert_eq!(ours[field], theirs[field], "ps .{field}");
    }
    let t = "table {{.Names}}\\t{{.Image}}\\t{{.Command}}";
    assert_eq!(w.ok(&["ps", "--format", t]), docker(&["ps", "--format", t]));
    let theirs = json_line(&docker(&["stats", "--no-stream", "--format", "{{json .}}"]));
    let ours = json_line(&w.ok(&["stats", "--no-stream", "--format", "{{json .}}"]));
    assert_eq!(missing(&theirs, &ours), Vec::<String>::new());
    for field in ["Name", "PIDs", "NetIO"] {
        assert_eq!(ours[field], theirs[field], "stats .{field}");
    }
    for r in [&ours, &theirs] {
        assert!(r["MemUsage"].as_str().unwrap().ends_with(" / 64MiB"), "{r}");
    }

    // images and history: the same fields; the same steps.
    let theirs = json_line(&docker(&["images", "--format", "{{json .}}"]));
    let ours = json_line(&w.ok(&["images", "--format", "{{json .}}"]));
    assert_eq!(missing(&theirs, &ours), Vec::<String>::new());
    for field in ["Repository", "Tag", "Containers", "SharedSize"] {
        assert_eq!(ours[field], theirs[field], "images .{field}");
    }
    let t = "{{.CreatedBy}}|{{.Comment}}|{{.CreatedAt}}";
    assert_eq!(
        w.ok(&["history", "--format", t, "busybox"]),
        docker(&["history", "--format", t, "busybox"])
    );
    let theirs = json_line(&docker(&["history", "--format", "{{json .}}", "busybox"]));
    let ours = json_line(&w.ok(&["history", "--format", "{{json .}}", "busybox"]));
    assert_eq!(missing(&theirs, &ours), Vec::<String>::new());

    // top: the same columns and process; diff: the same change.
    let header = |t: &str| -> Vec<String> {
        t.lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let (ours, theirs) = (w.ok(&["top", "web"]), docker(&["top", "web"]));
    assert_eq!(header(&ours), header(&theirs));
    assert!(ours.contains("sleep 1000") && theirs.contains("sleep 1000"));
    assert_eq!(w.ok(&["diff", "web"]), docker(&["diff", "web"]));

    // events: the create event's fields and attributes.
    let until = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1
    );
    let create = |text: &str| -> serde_json::Value {
        text.lines()
            .map(json_line)
            .find(|e| e["Type"] == "container" && e["Action"] == "create")
            .unwrap_or_else(|| panic!("no create event in {text}"))
    };
    let ev = [
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{json .}}",
    ];
    let theirs = create(&docker(&ev));
    let ours = create(&w.ok(&ev));
    assert_eq!(missing(&theirs, &ours), Vec::<String>::new());
    assert_eq!(
        ours["Actor"]["Attributes"], theirs["Actor"]["Attributes"],
        "the create event's attributes (name, image, labels)"
    );

    // Stopped the same way: pid 1 ignores SIGTERM, so SIGKILL after the timeout.
    docker(&["stop", "-t", "1", "web"]);
    w.ok(&["stop", "-t", "1", "web"]);
    let t = "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}} {{.State.Running}}";
    assert_eq!(
        w.ok(&["inspect", "-f", t, "web"]),
        docker(&["inspect", "-f", t, "web"])
    );
    docker(&["rm", "-f", "web"]);
    docker(&["volume", "rm", "data"]);
    w.ok(&["rm", "-f", "web"]);
    w.ok(&["volume", "rm", "data"]);
    drop(d);
    assert_clean(&w);
}
