//! `wharf compose`, in a fake host of its own (see network.rs): the mixed example app,
//! dependency conditions, health, scale, idempotent `up`, merging and interpolation, and
//! bad files.

use std::path::Path;

use crate::common::{eventually, repo_dir, s, wasm};
use crate::network::{FakeHost, inspect, setup, wait_for};

/// Write `text` as `dir/name`.
fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    s(&p)
}

fn compose(host: &FakeHost, file: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["compose", "-f", file];
    all.extend_from_slice(args);
    host.wharf(&all)
}

fn compose_ok(host: &FakeHost, file: &str, args: &[&str]) -> (String, String) {
    let out = compose(host, file, args);
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "compose {args:?} failed:\n{o}\n{e}");
    (o, e)
}

fn started_at(host: &FakeHost, name: &str) -> String {
    inspect(host, name)["State"]["StartedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_mixed_example_comes_up_in_order_serves_both_kinds_and_goes_down_clean() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    host.ok(&[
        "package",
        &wasm("fs-demo.wasm"),
        "-t",
        "wasm-examples/fs-demo:latest",
    ]);
    host.ok(&[
        "package",
        &wasm("http-hello.wasm"),
        "-t",
        "wasm-examples/http-hello:latest",
    ]);
    host.ok(&[
        "package",
        &wasm("p3-http.wasm"),
        "-t",
        "wasm-examples/p3-http:latest",
    ]);
    let before = host.rules();
    let file = s(&repo_dir().join("wasm-examples/mixed-app/compose.yaml"));
    let (_, err) = compose_ok(host, &file, &["up", "-d"]);
    assert!(err.contains("network mixed_default created"), "{err}");
    // In dependency order: the worker completed before the backend started, which was
    // healthy before the front started.
    let worker = inspect(host, "mixed-worker-1");
    assert_eq!(worker["State"]["ExitCode"], 0);
    let worker_end = worker["State"]["FinishedAt"].as_str().unwrap().to_string();
    let backend = inspect(host, "mixed-backend-1");
    assert!(worker_end <= started_at(host, "mixed-backend-1"));
    let healthy_at = backend["State"]["Health"]["Log"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["ExitCode"] == 0)
        .map(|p| p["End"].as_str().unwrap().to_string())
        .expect("a passing probe");
    assert!(healthy_at <= started_at(host, "mixed-front-1"));
    // Both kinds' data through the wasm front's published port.
    let json = wait_for(host, "http://127.0.0.1:18090/fetch/backend/index.json");
    assert!(json.contains("a native busybox"), "{json}");
    let file_from_wasm = wait_for(
        host,
        "http://127.0.0.1:18090/fetch/backend/shared/output.txt",
    );
    assert_eq!(file_from_wasm, "written by wasm\n");
    // A WASI 0.2 and a 0.3 component side by side: the 0.3 front (healthy only after the 0.2
    // one) asks the 0.2 one by service name with its own outgoing wasi:http 0.3 request.
    // (`up -d` waits for the health only of services others depend on: front3 gets there.)
    eventually(15, "front3's health check to pass", || {
        inspect(host, "mixed-front3-1")["State"]["Health"]["Status"] == "healthy"
    });
    assert!(started_at(host, "mixed-front-1") <= started_at(host, "mixed-front3-1"));
    assert_eq!(
        wait_for(host, "http://127.0.0.1:18091/fetch/front:8080/from-p3"),
        "hello from wasi:http: GET /from-p3\n"
    );
    assert_eq!(
        wait_for(
            host,
            "http://127.0.0.1:18091/fetch/backend/shared/output.txt"
        ),
        "written by wasm\n"
    );
    let (ps, _) = compose_ok(host, &file, &["ps", "-a", "--format", "json"]);
    let ps: serde_json::Value = serde_json::from_str(&ps).unwrap();
    let kinds: Vec<(&str, &str)> = ps
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["Service"].as_str().unwrap(), c["Kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("worker", "wasm"),
            ("backend", "native"),
            ("front", "wasm"),
            ("front3", "wasm")
        ]
    );
    // Labels find them too.
    let labelled = host.ok(&[
        "ps",
        "-a",
        "-q",
        "-f",
        "label=com.docker.compose.project=mixed",
    ]);
    assert_eq!(labelled.lines().count(), 4);
    // A second up changes nothing.
    let ids = host.ok(&["ps", "-a", "-q", "--no-trunc"]);
    let all = [
        "mixed-worker-1",
        "mixed-backend-1",
        "mixed-front-1",
        "mixed-front3-1",
    ];
    let starts: Vec<String> = all.iter().map(|n| started_at(host, n)).collect();
    let (_, err) = compose_ok(host, &file, &["up", "-d"]);
    assert!(
        !err.contains("started") && !err.contains("recreating"),
        "{err}"
    );
    assert_eq!(host.ok(&["ps", "-a", "-q", "--no-trunc"]), ids);
    for (n, st) in all.iter().zip(&starts) {
        assert_eq!(&started_at(host, n), st, "{n} untouched");
    }
    let (logs, _) = compose_ok(host, &file, &["logs", "--no-color"]);
    assert!(logs.contains("mixed-worker-1  | write: ok"), "{logs}");
    let (ls, _) = compose_ok(host, &file, &["ls"]);
    assert!(ls.contains("mixed") && ls.contains("running(3)"), "{ls}");
    // down -v: every container, network and volume it made.
    compose_ok(host, &file, &["down", "-v"]);
    assert_eq!(host.ok(&["ps", "-a", "-q"]), "");
    assert!(!host.ok(&["network", "ls", "-q"]).contains("mixed"));
    assert_eq!(host.ok(&["volume", "ls", "-q"]), "");
    host.assert_clean(w, &before);
}

#[test]
fn a_failing_health_check_fails_up_and_names_the_service() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let file = write(
        &w.path("sick"),
        "compose.yaml",
        "services:
  db:
    image: busybox
    command: [sleep, '60']
    init: true
    healthcheck: {test: [CMD-SHELL, 'echo not ready; exit 1'], interval: 100ms, retries: 2}
  app:
    image: busybox
    command: [sleep, '60']
    depends_on: {db: {condition: service_healthy}}
  job:
    image: busybox
    command: [sh, -c, 'exit 3']
  after_job:
    image: busybox
    command: ['true']
    depends_on: {job: {condition: service_completed_successfully}}
",
    );
    let out = compose(host, &file, &["up", "-d", "app"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("service app cannot start")
            && err.contains("service db is unhealthy")
            && err.contains("not ready"),
        "{err}"
    );
    let ps = host.ok(&["ps", "-a"]);
    assert!(!ps.contains("sick-app-1"), "app was never made: {ps}");
    let out = compose(host, &file, &["up", "-d", "after_job"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("service job did not complete successfully") && err.contains("code 3"),
        "{err}"
    );
    compose_ok(host, &file, &["down"]);
    assert_eq!(host.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn scale_three_answers_by_name_and_down_copes_with_a_killed_container() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let before = host.rules();
    let file = write(
        &w.path("scaled"),
        "compose.yaml",
        "services:
  web:
    image: busybox
    command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www']
    init: true
    scale: 3
  client:
    image: busybox
    command: [sleep, '60']
    init: true
    depends_on: [web]
",
    );
    compose_ok(host, &file, &["up", "-d"]);
    let (ps, _) = compose_ok(host, &file, &["ps", "-q"]);
    assert_eq!(ps.lines().count(), 4, "{ps}");
    let ips: std::collections::BTreeSet<String> = (1..=3)
        .map(|n| {
            inspect(host, &format!("scaled-web-{n}"))["NetworkSettings"]["Networks"]["scaled_default"]
                ["IPAddress"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ips.len(), 3);
    // The service's name answers with every replica's address.
    let (out, _) = compose_ok(host, &file, &["exec", "client", "nslookup", "web"]);
    for ip in &ips {
        assert!(out.contains(ip.as_str()), "{ip} in {out}");
    }
    // A killed container (monitor, supervisor and workload), then down.
    crate::network::kill_processes_of(host, "scaled-web-2");
    compose_ok(host, &file, &["down"]);
    assert_eq!(host.ok(&["ps", "-a", "-q"]), "");
    host.assert_clean(w, &before);
}

#[test]
fn files_merge_interpolate_and_a_changed_service_alone_is_recreated() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let dir = w.path("merged");
    write(&dir, ".env", "GREETING=hello from .env\nTAG=latest\n");
    let base = write(
        &dir,
        "compose.yaml",
        "name: merged
services:
  a:
    image: busybox:${TAG:-nope}
    command: [sleep, '60']
    init: true
    environment: [GREETING, 'WHO=${WHO:-nobody}']
    colour: blue
  b:
    image: busybox
    command: [sleep, '60']
    init: true
  extra:
    image: busybox
    profiles: [debug]
",
    );
    let over = write(
        &dir,
        "override.yaml",
        "services:\n  a:\n    environment: {WHO: override}\n    labels: {tier: front}\n",
    );
    let (config, err) = compose_ok(host, &base, &["-f", &over, "config"]);
    assert!(
        err.contains("service \"a\": unknown key \"colour\" is ignored"),
        "{err}"
    );
    assert!(
        config.contains("WHO: override") && config.contains("busybox:latest"),
        "{config}"
    );
    let (services, _) = compose_ok(host, &base, &["config", "--services"]);
    assert_eq!(services.lines().collect::<Vec<_>>(), ["a", "b", "extra"]);
    compose_ok(host, &base, &["-f", &over, "up", "-d"]);
    assert!(
        !host.ok(&["ps", "-a"]).contains("merged-extra-1"),
        "profiles off by default"
    );
    let (env, _) = compose_ok(
        host,
        &base,
        &["exec", "a", "sh", "-c", "echo $GREETING / $WHO"],
    );
    assert_eq!(env.trim(), "hello from .env / override");
    assert!(
        host.ok(&["ps", "-q", "-f", "label=tier=front"])
            .lines()
            .count()
            == 1
    );
    let a1 = inspect(host, "merged-a-1")["Id"].clone();
    let b1 = inspect(host, "merged-b-1")["Id"].clone();
    // Without the override, service a changes: it alone is recreated.
    let (_, err) = compose_ok(host, &base, &["up", "-d"]);
    assert!(err.contains("recreating merged-a-1"), "{err}");
    assert_ne!(inspect(host, "merged-a-1")["Id"], a1);
    assert_eq!(inspect(host, "merged-b-1")["Id"], b1);
    compose_ok(host, &base, &["down"]);
}

#[test]
fn bad_compose_files_are_refused_with_where_and_why() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let dir = w.path("bad");
    let syntax = write(
        &dir,
        "syntax.yaml",
        "services:\n  web:\n    image: busybox\n   command: [oops\n",
    );
    let out = compose(host, &syntax, &["up", "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("syntax.yaml: line 4, column"), "{err}");
    let required = write(
        &dir,
        "required.yaml",
        "services:\n  web:\n    image: 'busybox:${NEEDED:?set NEEDED first}'\n",
    );
    let err = String::from_utf8_lossy(&compose(host, &required, &["config"]).stderr).into_owned();
    assert!(
        err.contains("NEEDED") && err.contains("set NEEDED first"),
        "{err}"
    );
    let cycle = write(
        &dir,
        "cycle.yaml",
        "services:\n  a: {image: busybox, depends_on: [b]}\n  b: {image: busybox, depends_on: [a]}\n",
    );
    let err = String::from_utf8_lossy(&compose(host, &cycle, &["up", "-d"]).stderr).into_owned();
    assert!(err.contains("cycle"), "{err}");
    let build = write(&dir, "build.yaml", "services:\n  a: {build: .}\n");
    let err = String::from_utf8_lossy(&compose(host, &build, &["up", "-d"]).stderr).into_owned();
    assert!(err.contains("no Dockerfile or Containerfile"), "{err}");
    let wasm_health = write(
        &dir,
        "wasmhealth.yaml",
        "services:\n  h:\n    image: hello:1\n    healthcheck: {test: [CMD, ls, /]}\n",
    );
    host.ok(&["package", &wasm("hello.wasm"), "-t", "hello:1"]);
    let err =
        String::from_utf8_lossy(&compose(host, &wasm_health, &["up", "-d"]).stderr).into_owned();
    assert!(
        err.contains("a wasm container's health check must be an HTTP GET"),
        "{err}"
    );
    assert_eq!(host.ok(&["ps", "-a", "-q"]), "", "nothing half-made");
}

#[test]
fn a_built_service_comes_up_beside_a_wasm_one_and_rebuilds_on_up_build() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    host.ok(&["package", &wasm("hello.wasm"), "-t", "hello:1"]);
    let dir = w.path("built");
    write(
        &dir.join("web"),
        "Dockerfile",
        "FROM busybox\nARG MSG=default\nRUN echo \"$MSG\" > /msg\nCMD [\"sh\", \"-c\", \"cat /msg; sleep 60\"]\n",
    );
    let file = write(
        &dir,
        "compose.yaml",
        "name: built
services:
  web:
    build:
      context: ./web
      args: {MSG: first}
    init: true
  greeter:
    image: hello:1
",
    );
    compose_ok(host, &file, &["up", "-d"]);
    // Built and named as Docker Compose names it, then run.
    assert!(
        host.ok(&["images"]).contains("built-web"),
        "{}",
        host.ok(&["images"])
    );
    crate::common::eventually(10, "web's output", || {
        host.ok(&["logs", "built-web-1"]).contains("first")
    });
    assert!(
        host.ok(&["logs", "built-greeter-1"])
            .contains("hello from wasm")
    );
    // A changed build: `up` alone keeps the image it has; `up --build` builds and
    // recreates the service.
    let id = inspect(host, "built-web-1")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(
        &file,
        "name: built\nservices:\n  web:\n    build:\n      context: ./web\n      args: {MSG: second}\n    init: true\n  greeter:\n    image: hello:1\n",
    )
    .unwrap();
    compose_ok(host, &file, &["up", "-d"]);
    assert_eq!(inspect(host, "built-web-1")["Id"].as_str().unwrap(), id);
    compose_ok(host, &file, &["up", "-d", "--build"]);
    assert_ne!(inspect(host, "built-web-1")["Id"].as_str().unwrap(), id);
    crate::common::eventually(10, "the rebuilt web's output", || {
        host.ok(&["logs", "built-web-1"]).contains("second")
    });
    // `compose build` alone, from the cache now.
    let (_, err) = compose_ok(host, &file, &["build", "web"]);
    assert!(
        err.contains("from the cache") || err.contains("Using cache"),
        "{err}"
    );
    compose_ok(host, &file, &["down"]);
    assert_eq!(host.ok(&["ps", "-a", "-q"]), "");
}
