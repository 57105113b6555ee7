//! Bridge networks (netavark + aardvark-dns), each test inside a fake host of its own: a
//! network and mount namespace the test makes (`unshare -n -m`), so bridges, firewall rules,
//! DNS servers and namespaces stay in it and no packet leaves the machine.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Wharf, bin, busybox_images, s, wasm, wharf_command};

/// A network and mount namespace standing for a host, kept by a sleeping process; every
/// command of the test runs inside it through nsenter.
pub(crate) struct FakeHost {
    holder: Child,
    root: String,
}

impl FakeHost {
    pub(crate) fn new(w: &Wharf) -> FakeHost {
        let mut holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
            ])
            // A /run of its own, as a host has: wharf's per-boot state goes there.
            .arg("mount -t tmpfs run /run && ip link set lo up && echo ready && exec sleep 100000")
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare");
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the fake host did not start");
        FakeHost {
            holder,
            root: s(&w.root()),
        }
    }

    /// `prog args` inside the fake host.
    pub(crate) fn cmd(&self, prog: &str, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-n", "-m", "--", prog])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub(crate) fn sh(&self, script: &str) -> Output {
        self.cmd("sh", &["-c", script]).output().unwrap()
    }

    pub(crate) fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "{script}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn wharf(&self, args: &[&str]) -> Output {
        let bin = wharf_command().get_program().to_string_lossy().into_owned();
        let mut all = vec!["--root", &self.root];
        all.extend_from_slice(args);
        self.cmd(&bin, &all).output().unwrap()
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.wharf(args);
        assert!(
            out.status.success(),
            "wharf {args:?} failed ({:?}):\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.wharf(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "wharf {args:?}: expected {code}\n{}\n{err}",
            String::from_utf8_lossy(&out.stdout)
        );
        err
    }

    /// The fake host's firewall, without the shared chains netavark keeps by design (empty
    /// `NETAVARK-HOSTPORT-*`, `NETAVARK_FORWARD` and their jumps) and comments/counters.
    pub(crate) fn rules(&self) -> BTreeSet<String> {
        let out = self.sh_ok("iptables-save");
        let builtin = [
            ":INPUT ACCEPT",
            ":FORWARD ACCEPT",
            ":OUTPUT ACCEPT",
            ":PREROUTING ACCEPT",
            ":POSTROUTING ACCEPT",
        ];
        out.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with('*') && *l != "COMMIT")
            .filter(|l| !builtin.iter().any(|b| l.starts_with(b)))
            .filter(|l| {
                !(l.contains("NETAVARK-HOSTPORT-")
                    || l.contains("NETAVARK_FORWARD - ")
                    || l.contains("-j NETAVARK_FORWARD"))
            })
            .map(|l| l.split(" [").next().unwrap_or(l).to_string())
            .collect()
    }

    /// Network namespace files wharf keeps in the fake host's /run.
    pub(crate) fn netns_files(&self) -> usize {
        self.sh_ok("find /run/wharf -path '*/netns/*' 2>/dev/null | wc -l")
            .trim()
            .parse()
            .unwrap()
    }

    /// Interfaces of the fake host.
    pub(crate) fn links(&self) -> String {
        self.sh_ok("ip -o link show | cut -d: -f2")
    }

    /// The aardvark-dns servers running in this fake host's network namespace.
    pub(crate) fn dns_pids(&self) -> Vec<String> {
        let ours = std::fs::read_link(format!("/proc/{}/ns/net", self.holder.id())).ok();
        let out = Command::new("pgrep")
            .args(["-x", "aardvark-dns"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/net")).ok() == ours)
            .map(String::from)
            .collect()
    }

    pub(crate) fn dns_servers(&self) -> usize {
        self.dns_pids().len()
    }

    /// Nothing of any container's network is left: no namespace file, no lease, no bridge
    /// but `keep`, no DNS server, and the firewall as it was.
    pub(crate) fn assert_clean(&self, w: &Wharf, before: &BTreeSet<String>) {
        assert_eq!(self.netns_files(), 0, "namespace files left");
        let mounts = self.sh_ok("grep ' /run/wharf/' /proc/self/mountinfo || true");
        assert_eq!(mounts, "", "mounts left under /run/wharf");
        let leases: Vec<_> = std::fs::read_dir(w.root().join("networks"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".leases"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(leases.is_empty(), "leases left: {leases:?}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.dns_servers() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(self.dns_servers(), 0, "aardvark-dns still runs");
        let links = self.links();
        assert!(!links.contains("wharf"), "bridges left: {links}");
        assert!(!links.contains("veth"), "veth left: {links}");
        let after = self.rules();
        assert_eq!(
            &after,
            before,
            "firewall rules left:\n+ {:?}\n- {:?}",
            after.difference(before).collect::<Vec<_>>(),
            before.difference(&after).collect::<Vec<_>>()
        );
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        // Containers first (their monitors live in here), then any DNS server still holding
        // the namespaces, then the host itself.
        let out = String::from_utf8_lossy(&self.wharf(&["ps", "-aq"]).stdout).into_owned();
        let ids: Vec<&str> = out.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let _ = self.wharf(&args);
        }
        for pid in self.dns_pids() {
            let _ = Command::new("kill").arg(&pid).status();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// One test's fake host, with busybox in its wharf's store. Tests take turns: others look
/// for stray container processes and cgroups machine-wide. The host goes first, then the
/// store, then the turn.
pub(crate) struct Setup {
    pub(crate) host: FakeHost,
    pub(crate) w: Wharf,
    _serial: std::sync::MutexGuard<'static, ()>,
}

pub(crate) fn setup() -> Setup {
    let serial = crate::native::serial();
    let w = Wharf::new();
    let host = FakeHost::new(&w);
    host.ok(&["load", "-i", &s(&busybox_images().join("busybox-oci.tar"))]);
    Setup {
        host,
        w,
        _serial: serial,
    }
}

pub(crate) fn inspect(host: &FakeHost, name: &str) -> serde_json::Value {
    let mut all: serde_json::Value = serde_json::from_str(&host.ok(&["inspect", name])).unwrap();
    all[0].take()
}

/// SIGKILL a container's monitor, supervisor and workload (as if wharf were killed).
pub(crate) fn kill_processes_of(host: &FakeHost, name: &str) {
    let st = &inspect(host, name)["State"];
    for p in ["MonitorPid", "SupervisorPid", "Pid"] {
        if let Some(pid) = st[p].as_i64().filter(|p| *p > 0) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

pub(crate) fn ip_of(host: &FakeHost, name: &str, network: &str) -> String {
    inspect(host, name)["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Wait until `url` answers inside the fake host (a server that just started).
pub(crate) fn wait_for(host: &FakeHost, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // The image's busybox on the fake host's network (the host's own may not have wget;
        // busybox's `wget -T` crashes, hence timeout).
        let out = host.wharf(&[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "timeout",
            "3",
            "wget",
            "-qO-",
            url,
        ]);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn native_containers_reach_each_other_by_name_and_alias_and_publish_ports() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let before = host.rules();
    let listed = host.ok(&["network", "ls"]);
    assert!(
        listed.contains("bridge"),
        "the default network is listed: {listed}"
    );
    host.ok(&["network", "create", "app"]);
    let nets: serde_json::Value =
        serde_json::from_str(&host.ok(&["network", "ls", "--format", "json"])).unwrap();
    let app = nets
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Name"] == "app")
        .expect("app listed");
    assert_eq!(app["DNSEnabled"], true);

    host.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "app",
        "--network-alias",
        "www",
        "-p",
        "18080:80",
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo served-by-web > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    // Another container resolves it by name and alias, reaches it, and has a resolver and
    // hosts file of its network.
    let out = host.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; ping -c1 -W2 web >/dev/null && echo ping-web-ok; \
         ping -c1 -W2 www >/dev/null && echo ping-www-ok; nslookup www 2>&1; \
         for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://web/ && break; sleep 0.2; done",
    ]);
    assert!(
        out.contains("ping-web-ok") && out.contains("ping-www-ok"),
        "{out}"
    );
    assert!(out.contains("served-by-web"), "{out}");
    let web = inspect(host, "web");
    let settings = &web["NetworkSettings"];
    let ip = settings["Networks"]["app"]["IPAddress"].as_str().unwrap();
    assert!(ip.starts_with("10.90."), "{settings}");
    assert!(
        out.contains(ip),
        "nslookup answers web's address {ip}: {out}"
    );
    let gateway = settings["Networks"]["app"]["Gateway"].as_str().unwrap();
    assert!(out.contains(&format!("nameserver {gateway}")), "{out}");
    // --add-host and --dns-search/--dns-option on a network: over its own files (its name
    // server kept, as no --dns replaces it).
    let files = host.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "--add-host",
        "legacy:10.9.9.9",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:2",
        "busybox",
        "cat",
        "/etc/hosts",
        "/etc/resolv.conf",
    ]);
    assert!(files.contains("10.9.9.9\tlegacy\n"), "{files}");
    assert!(files.contains(&format!("nameserver {gateway}")), "{files}");
    assert!(
        files.contains("search corp.example\n") && files.contains("options ndots:2\n"),
        "{files}"
    );
    assert_eq!(
        settings["Networks"]["app"]["MacAddress"]
            .as_str()
            .unwrap()
            .len(),
        17,
        "{settings}"
    );
    assert!(
        settings["Networks"]["app"]["Aliases"]
            .as_array()
            .unwrap()
            .contains(&"www".into())
    );
    // The published port answers on the fake host's loopback, and `ps` shows it.
    assert!(wait_for(host, "http://127.0.0.1:18080/").contains("served-by-web"));
    let ps = host.ok(&["ps"]);
    assert!(ps.contains("127.0.0.1:18080->80/tcp"), "{ps}");
    // -P: the image exposes nothing, so a -p without host port shows a chosen one.
    host.ok(&[
        "run",
        "-d",
        "--name",
        "any",
        "--network",
        "app",
        "-p",
        "80",
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo any > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    // Docker's shape: {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "N"}]}, and `port`.
    let ports = inspect(host, "any")["NetworkSettings"]["Ports"].clone();
    assert_eq!(ports["80/tcp"][0]["HostIp"], "127.0.0.1", "{ports}");
    let port = ports["80/tcp"][0]["HostPort"].as_str().unwrap().to_string();
    assert_ne!(port, "0", "{ports}");
    assert_eq!(
        host.ok(&["port", "any", "80"]).trim(),
        format!("127.0.0.1:{port}")
    );
    assert_eq!(
        host.ok(&["port", "any"]).trim(),
        format!("80/tcp -> 127.0.0.1:{port}")
    );
    assert!(wait_for(host, &format!("http://127.0.0.1:{port}/")).contains("any"));
    // The network cannot go while used.
    let e = host.fails(&["network", "rm", "app"], 1);
    assert!(e.contains("in use by"), "{e}");

    host.ok(&["rm", "-f", "web", "any"]);
    host.ok(&["network", "rm", "app"]);
    host.assert_clean(w, &before);
}

#[test]
fn wasm_and_native_containers_call_each_other_by_name() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    host.ok(&["package", &wasm("http-hello.wasm"), "-t", "web:1"]);
    host.ok(&["package", &wasm("fetch.wasm"), "-t", "fetch:1"]);
    let before = host.rules();
    host.ok(&["network", "create", "mixed"]);
    host.ok(&[
        "run",
        "-d",
        "--name",
        "backend",
        "--network",
        "mixed",
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo native-backend > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    host.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "mixed",
        "-p",
        "18081:8080",
        "web:1",
    ]);
    // Through the published port, from the fake host.
    let hello = wait_for(host, "http://127.0.0.1:18081/from-host");
    assert!(hello.contains("GET /from-host"), "{hello}");
    // A native busybox reaches the wasm server by name.
    let out = host.ok(&[
        "run",
        "--rm",
        "--network",
        "mixed",
        "busybox",
        "wget",
        "-qO-",
        "http://web:8080/by-name",
    ]);
    assert!(out.contains("hello from wasi:http: GET /by-name"), "{out}");
    // The wasm server's outgoing wasi:http request reaches the native one by name.
    let out = wait_for(host, "http://127.0.0.1:18081/fetch/backend/index.html");
    assert!(out.contains("native-backend"), "{out}");
    // A wasm command (wasi-sockets, name lookup) fetches from it by name...
    let out = host.ok(&[
        "run",
        "--rm",
        "--network",
        "mixed",
        "fetch:1",
        "http://backend/",
    ]);
    assert!(out.contains("native-backend"), "{out}");
    // ...and without a network it cannot even look the name up.
    let out = host.wharf(&["run", "--rm", "fetch:1", "http://backend/"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("native-backend"));
    // The wasm container has an address of its own on the network.
    assert!(ip_of(host, "web", "mixed").starts_with("10.90."));

    host.ok(&["stop", "web"]);
    host.ok(&["rm", "-f", "web", "backend"]);
    host.ok(&["network", "rm", "mixed"]);
    host.assert_clean(w, &before);
}

#[test]
fn an_internal_network_has_no_route_out() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    // An address on the fake host outside any container network.
    host.sh_ok("ip addr add 198.51.100.1/32 dev lo");
    let before = host.rules();
    host.ok(&["network", "create", "--internal", "closed"]);
    host.ok(&["network", "create", "open"]);
    let probe =
        "ip route; ping -c1 -W1 198.51.100.1 >/dev/null && echo reached || echo unreachable";
    let open = host.ok(&[
        "run",
        "--rm",
        "--network",
        "open",
        "busybox",
        "sh",
        "-c",
        probe,
    ]);
    assert!(
        open.contains("default via") && open.contains("reached"),
        "{open}"
    );
    let closed = host.ok(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "busybox",
        "sh",
        "-c",
        probe,
    ]);
    assert!(
        !closed.contains("default via") && closed.contains("unreachable"),
        "{closed}"
    );
    host.ok(&["network", "rm", "closed", "open"]);
    host.assert_clean(w, &before);
}

#[test]
fn the_network_goes_however_the_container_ends() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let before = host.rules();
    host.ok(&["network", "create", "n"]);
    let leases = || std::fs::read_to_string(w.root().join("networks/n.leases")).unwrap_or_default();
    let netns_files = || host.netns_files();
    // It exits by itself (foreground, kept record).
    host.ok(&["run", "--name", "a", "--network", "n", "busybox", "true"]);
    assert_eq!((leases(), netns_files()), (String::new(), 0));
    // Its workload fails.
    let out = host.wharf(&[
        "run",
        "--name",
        "f",
        "--network",
        "n",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!((leases(), netns_files()), (String::new(), 0));
    // stop, kill, rm -f.
    for (name, verb) in [("s", "stop"), ("k", "kill")] {
        host.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "n",
            "busybox",
            "sleep",
            "60",
        ]);
        assert!(leases().contains(name));
        host.ok(&[verb, name]);
        host.ok(&["wait", name]);
        assert!(!leases().contains(name), "{verb}: {}", leases());
    }
    host.ok(&[
        "run",
        "-d",
        "--name",
        "r",
        "--network",
        "n",
        "busybox",
        "sleep",
        "60",
    ]);
    host.ok(&["rm", "-f", "r"]);
    assert_eq!((leases(), netns_files()), (String::new(), 0));
    // Its supervisor and monitor are killed: the next verb takes the network down.
    host.ok(&[
        "run",
        "-d",
        "--name",
        "x",
        "--network",
        "n",
        "busybox",
        "sleep",
        "60",
    ]);
    kill_processes_of(host, "x");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(netns_files(), 1, "the namespace outlives the processes");
    let ps = host.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited"), "{ps}");
    assert_eq!((leases(), netns_files()), (String::new(), 0));
    // A reboot: every process, mount, bridge, rule and /run file is gone, the records stay.
    host.ok(&[
        "run",
        "-d",
        "--name",
        "y",
        "--network",
        "n",
        "busybox",
        "sleep",
        "60",
    ]);
    kill_processes_of(host, "y");
    for pid in host.dns_pids() {
        let _ = Command::new("kill").args(["-9", &pid]).status();
    }
    host.sh_ok(
        "for f in $(find /run/wharf -path '*/netns/*'); do umount $f; done; umount -l /run; \
         mount -t tmpfs run /run; for l in $(ip -o link show | cut -d: -f2 | grep -E 'wharf|veth' | cut -d@ -f1); do \
         ip link del $l; done; iptables -t nat -F; iptables -t nat -X; iptables -F; iptables -X",
    );
    assert!(
        leases().contains("\"y\""),
        "the lease is on disk: {}",
        leases()
    );
    let ps = host.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited"), "{ps}");
    assert_eq!(leases(), "", "the next verb gave the lease back");
    let dir = w
        .root()
        .join("containers")
        .join(inspect(host, "y")["Id"].as_str().unwrap());
    assert!(!dir.join("network.json").exists());
    // And the network works again after it.
    host.ok(&["run", "--rm", "--network", "n", "busybox", "true"]);
    // A wasm guest's network goes when its server stops.
    host.ok(&["package", &wasm("http-hello.wasm"), "-t", "web:1"]);
    host.ok(&["run", "-d", "--name", "w", "--network", "n", "web:1"]);
    assert!(leases().contains("\"w\""));
    host.ok(&["stop", "w"]);
    assert_eq!((leases(), netns_files()), (String::new(), 0));
    host.ok(&["rm", "a", "f", "s", "k", "x", "y", "w"]);
    host.ok(&["network", "prune", "-f"]);
    let nets = host.ok(&["network", "ls", "-q"]);
    assert_eq!(nets.trim(), "bridge");
    host.assert_clean(w, &before);
}

#[test]
fn thirty_containers_started_at_once_get_thirty_addresses() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    // A network created twice at once is one network.
    let twice: Vec<_> = (0..2)
        .map(|_| {
            let bin = wharf_command().get_program().to_string_lossy().into_owned();
            host.cmd(&bin, &["--root", &host.root, "network", "create", "many"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<Output> = twice
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|o| o.status.success()).count(),
        1,
        "one creation wins"
    );
    let loser = results.iter().find(|o| !o.status.success()).unwrap();
    assert!(String::from_utf8_lossy(&loser.stderr).contains("already exists"));
    assert_eq!(
        host.ok(&["network", "ls", "-q"])
            .lines()
            .filter(|l| *l == "many")
            .count(),
        1
    );
    let bin = wharf_command().get_program().to_string_lossy().into_owned();
    let children: Vec<Child> = (0..30)
        .map(|i| {
            let name = format!("c{i}");
            host.cmd(
                &bin,
                &[
                    "--root",
                    &host.root,
                    "run",
                    "-d",
                    "--name",
                    &name,
                    "--network",
                    "many",
                    "busybox",
                    "sleep",
                    "120",
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ips: BTreeSet<String> = (0..30)
        .map(|i| {
            let name = format!("c{i}");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let ip = ip_of(host, &name, "many");
                if !ip.is_empty() {
                    break ip;
                }
                assert!(Instant::now() < deadline, "{name} never got an address");
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .collect();
    assert_eq!(ips.len(), 30, "{ips:?}");
    // The last one reaches the first by name.
    let out = host.ok(&["exec", "c29", "ping", "-c1", "-W2", "c0"]);
    assert!(out.contains(&ip_of(host, "c0", "many")), "{out}");
    let ids = host.ok(&["ps", "-q"]);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.split_whitespace());
    host.ok(&args);
    assert!(!w.root().join("networks/many.leases").exists());
}

#[test]
fn bad_network_input_is_refused_and_nothing_is_half_made() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let before = host.rules();
    host.ok(&["network", "create", "--subnet", "10.123.0.0/24", "one"]);
    let e = host.fails(
        &["network", "create", "--subnet", "10.123.0.128/25", "two"],
        125,
    );
    assert!(e.contains("overlaps network \"one\""), "{e}");
    let e = host.fails(
        &["network", "create", "--subnet", "10.300.0.0/24", "two"],
        125,
    );
    assert!(e.contains("10.300.0.0/24"), "{e}");
    let e = host.fails(
        &["network", "create", "--subnet", "10.124.0.1/24", "two"],
        125,
    );
    assert!(e.contains("it should be 10.124.0.0/24"), "{e}");
    let e = host.fails(&["network", "create", "one"], 125);
    assert!(e.contains("already exists"), "{e}");
    let e = host.fails(&["network", "create", "host"], 125);
    assert!(e.contains("network mode"), "{e}");
    let e = host.fails(
        &[
            "network",
            "create",
            "--subnet",
            "10.125.0.0/24",
            "--gateway",
            "10.126.0.1",
            "two",
        ],
        125,
    );
    assert!(e.contains("invalid gateway"), "{e}");
    let nets = host.ok(&["network", "ls", "-q"]);
    assert!(!nets.contains("two"), "{nets}");
    // A missing network, to run on or connect to.
    let e = host.fails(
        &["run", "--rm", "--network", "nope", "busybox", "true"],
        125,
    );
    assert!(e.contains("network \"nope\" not found"), "{e}");
    host.ok(&[
        "create",
        "--name",
        "c",
        "--network",
        "one",
        "busybox",
        "true",
    ]);
    let e = host.fails(&["network", "connect", "nope", "c"], 125);
    assert!(e.contains("network \"nope\" not found"), "{e}");
    // An address outside the subnet, and one taken.
    let e = host.fails(
        &[
            "run",
            "--rm",
            "--network",
            "one",
            "--ip",
            "10.9.9.9",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(e.contains("not in network \"one\"'s subnet"), "{e}");
    host.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "one",
        "--ip",
        "10.123.0.50",
        "-p",
        "18090:80",
        "busybox",
        "sleep",
        "60",
    ]);
    let e = host.fails(
        &[
            "run",
            "--rm",
            "--network",
            "one",
            "--ip",
            "10.123.0.50",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(e.contains("in use by container holder"), "{e}");
    // A published port in use (by the first container).
    let e = host.fails(
        &[
            "run",
            "--rm",
            "--network",
            "one",
            "-p",
            "18090:80",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(e.contains("18090") && e.contains("already in use"), "{e}");
    let leases = std::fs::read_to_string(w.root().join("networks/one.leases")).unwrap();
    assert_eq!(leases.matches("container").count(), 1, "{leases}");
    assert_eq!(host.netns_files(), 1);
    host.ok(&["rm", "-f", "holder", "c"]);
    host.ok(&["network", "rm", "one"]);
    host.assert_clean(w, &before);
}

#[test]
fn a_running_container_connects_to_another_network_and_disconnects() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let before = host.rules();
    host.ok(&["network", "create", "front"]);
    host.ok(&["network", "create", "back"]);
    host.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        "busybox",
        "sleep",
        "60",
    ]);
    host.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--network",
        "front",
        "busybox",
        "sleep",
        "60",
    ]);
    let reach = || {
        host.wharf(&["exec", "app", "ping", "-c1", "-W1", "db"])
            .status
            .success()
    };
    assert!(!reach(), "front and back are apart");
    host.ok(&[
        "network",
        "connect",
        "--alias",
        "application",
        "back",
        "app",
    ]);
    assert!(reach(), "connected: db resolves and answers");
    let settings = &inspect(host, "app")["NetworkSettings"]["Networks"];
    assert!(
        settings["back"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.90.")
    );
    assert_eq!(settings["back"]["Interface"], "eth1");
    let out = host.ok(&["exec", "db", "ping", "-c1", "-W1", "application"]);
    assert!(out.contains("1 packets received"), "{out}");
    let e = host.fails(&["network", "connect", "back", "app"], 125);
    assert!(e.contains("already connected"), "{e}");
    host.ok(&["network", "disconnect", "back", "app"]);
    assert!(!reach(), "disconnected");
    host.ok(&["rm", "-f", "app", "db"]);
    host.ok(&["network", "rm", "front", "back"]);
    host.assert_clean(w, &before);
}

#[test]
fn a_rootless_container_reaches_the_host_and_publishes_ports_through_pasta() {
    let t = setup();
    let (w, host) = (&t.w, &t.host);
    let user = crate::native::rootless_user();
    // pasta needs a default route in the namespace it starts from, and the user must be
    // able to open /dev/net/tun. This machine's is 0600: in the fake host's own mount
    // namespace a node the user may open stands in for it (the machine's stays as it is).
    host.sh_ok(
        "ip link add up0 type veth peer name up1 && ip addr add 192.0.2.1/24 dev up0 && \
         ip link set up0 up && ip link set up1 up && ip route add default via 192.0.2.2",
    );
    let tun = host.sh(&format!(
        "mkdir -p {dir} && mount -t tmpfs tun {dir} && mknod -m 0666 {dir}/tun c 10 200 && \
         mount --bind {dir}/tun /dev/net/tun && runuser -u {user} -- sh -c 'exec 3<>/dev/net/tun'",
        dir = s(&w.path("tun"))
    ));
    if !tun.status.success() {
        eprintln!(
            "skipped: /dev/net/tun cannot be opened by an unprivileged user here ({})",
            String::from_utf8_lossy(&tun.stderr).trim()
        );
        return;
    }
    // Everything the user needs, readable by it: the binary, the image, a root of its own.
    let base = w.path("rootless");
    std::fs::create_dir_all(base.join("root")).unwrap();
    std::fs::create_dir_all(base.join("www")).unwrap();
    std::fs::set_permissions(
        w.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::copy(bin("wharf"), base.join("wharf")).unwrap();
    std::fs::copy(
        busybox_images().join("busybox-oci.tar"),
        base.join("busybox.tar"),
    )
    .unwrap();
    std::fs::write(base.join("www/index.html"), "page-of-the-host\n").unwrap();
    host.sh_ok(&format!("chown {user} {}", s(&base.join("root"))));
    let as_user = |args: &str| {
        host.sh(&format!(
            "cd {b} && runuser -u {user} -- {b}/wharf --root {b}/root {args}",
            b = s(&base)
        ))
    };
    let ok = |args: &str| {
        let out = as_user(args);
        assert!(
            out.status.success(),
            "{args}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&format!("load -i {}", s(&base.join("busybox.tar"))));
    // A server on another address of the fake host, and one on its loopback only, which
    // the container must not reach (pasta runs with --no-map-gw).
    host.sh_ok("ip addr add 198.51.100.7/32 dev lo");
    let www = s(&base.join("www"));
    let mut server = host
        .cmd(
            "busybox",
            &["httpd", "-f", "-p", "198.51.100.7:18096", "-h", &www],
        )
        .spawn()
        .unwrap();
    let mut local_only = host
        .cmd(
            "busybox",
            &["httpd", "-f", "-p", "127.0.0.1:18098", "-h", &www],
        )
        .spawn()
        .unwrap();
    let out = ok(
        "run --rm --network pasta busybox sh -c 'id -u; ip -o -4 addr show; \
                  for i in 1 2 3 4 5; do wget -qO- http://198.51.100.7:18096/ && break; sleep 0.2; done; \
                  timeout 3 wget -qO- http://192.0.2.2:18098/ || echo host-loopback-refused'",
    );
    assert!(out.starts_with("0\n"), "root inside: {out}");
    assert!(
        out.contains("192.0.2.1/24"),
        "the host's address, copied: {out}"
    );
    assert!(out.contains("page-of-the-host"), "{out}");
    assert!(out.contains("host-loopback-refused"), "{out}");
    // A published port, answered on the fake host's loopback.
    ok(
        "run -d --name srv --network pasta -p 18097:80 busybox sh -c \
        'mkdir /www && echo rootless-page > /www/index.html && exec httpd -f -p 80 -h /www'",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = host.sh("timeout 3 busybox wget -qO- http://127.0.0.1:18097/");
        if String::from_utf8_lossy(&out.stdout).contains("rootless-page") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the published port never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok("ps").contains("127.0.0.1:18097->80/tcp"));
    ok("rm -f srv");
    // Bridge networks need root: said clearly, nothing made.
    let out = as_user("run --rm --network bridge busybox true");
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bridge networks need root"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for s in [&mut server, &mut local_only] {
        let _ = s.kill();
        let _ = s.wait();
    }
    // No pasta, no process of the user left.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = Command::new("pgrep").args(["-u", user]).output().unwrap();
        if left.stdout.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes of {user} left: {}",
            String::from_utf8_lossy(&left.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
