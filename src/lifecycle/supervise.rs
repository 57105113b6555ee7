//! `supervise`: run a container in this process (the foreground `wharf run`, or the
//! supervisor a monitor starts) and record how it ended: its network up and down around
//! the run, a native container cloned from a sealed wharf.

use std::time::Duration;

use super::create::running_state;
use super::{EXIT_WHARF_FAILED, Events, LifecycleError, Session};
use crate::backend::Exit;
use crate::backend::wasm::{self, StdioOptions, WasmRun};
use crate::container::{ContainerError, Containers, Record, State};
use crate::dispatch::Kind;
use crate::run::Prepared;
use crate::run::options::{Network, PortMapping, RunOptions};

/// How a call failed, as an [`Exit`].
fn failed(e: &LifecycleError) -> Exit {
    Exit {
        code: e.exit_code(),
        message: Some(e.to_string()),
    }
}

/// Run a prepared container in this process with no record (`wharf run` where containers
/// are not recorded): wasm runs; a native image cannot, and the message says why.
pub fn run_unrecorded(
    session: &Session,
    prepared: &Prepared,
    opts: &RunOptions,
    compile_timeout: Option<Duration>,
) -> Exit {
    let (code, message) = match prepared.decision.kind {
        Kind::Wasm => run_wasm(session, prepared, opts, compile_timeout, &|| {}),
        Kind::Native => (EXIT_WHARF_FAILED, Some(native_unavailable(prepared))),
    };
    Exit { code, message }
}

/// Run container `id` in this process (the foreground `wharf run`, or the helper a monitor
/// starts): mark it running, run it, record how it ended. `ready` is told once it runs.
///
/// A foreground run passes its freshly created record (already marked running by this
/// process) with what it prepared, and `remove` for `--rm`: fewer record writes.
// Off Linux the network hold is empty: dropping it is only for the order on Linux.
#[cfg_attr(not(target_os = "linux"), allow(clippy::drop_non_drop))]
pub fn supervise(
    session: &Session,
    containers: &Containers,
    id: &str,
    fresh: Option<(Record, Prepared)>,
    ready: Option<std::fs::File>,
    remove: bool,
    events: &dyn Events,
) -> Exit {
    let ready = std::cell::RefCell::new(ready);
    let signal_ready = || {
        if let Some(mut f) = ready.borrow_mut().take() {
            let _ = std::io::Write::write_all(&mut f, b"r");
        }
    };
    // Under a monitor, the monitor marks the end once it has logged all the output, so a
    // `wait` that returns sees the whole log.
    let under_monitor = ready.borrow().is_some();
    let dir = containers.dir_of(id);
    // (Only a bridge network's teardown has something to tell, and only Linux has them.)
    #[cfg(not(target_os = "linux"))]
    let _ = events;
    let end = |code: u8, message: Option<String>| {
        // The network goes first, whatever way the run ended.
        #[cfg(target_os = "linux")]
        if let Err(e) = crate::network::detach(&session.roots, &dir) {
            events.warning(&format!("taking down the container's network: {e}"));
        }
        if remove {
            // `--rm`: the record goes now; nothing needs to know how it ended.
            if let Ok(mut l) = containers.lock(id) {
                // (Removing a container whose record says running records its `die`, with
                // this code.)
                l.record.state.exit_code = Some(i32::from(code));
                let _ = containers.remove(l);
            }
        } else if let Ok(mut l) = containers.lock(id) {
            let st = &mut l.record.state;
            if !under_monitor {
                st.status = st.status.exit();
            }
            st.exit_code = Some(i32::from(code));
            st.oom_killed = message.as_deref() == Some(crate::backend::OOM_KILLED);
            st.error = message.clone();
            st.pid = 0;
            st.pid_start_time = None;
            st.finished_at = Some(chrono::Utc::now());
            let _ = l.save();
        }
        Exit { code, message }
    };
    let (record, mut prepared) = match fresh {
        Some((r, p)) => (r, p),
        None => {
            let record = match containers.lock(id) {
                Ok(l) => l.record,
                Err(e) => return failed(&e.into()),
            };
            let platform = record.platform.as_deref().and_then(|p| p.parse().ok());
            let store = match session.store() {
                Ok(s) => s,
                Err(e) => return end(e.exit_code(), Some(e.to_string())),
            };
            match crate::run::prepare(&store, &record.target, &record.options, platform.as_ref()) {
                Ok(mut p) => {
                    // Messages name the image as the user did, not by its digest.
                    p.name = record.image.clone();
                    if let Err(e) = mark_running(containers, id, p.decision.kind) {
                        return end(EXIT_WHARF_FAILED, Some(e.to_string()));
                    }
                    (record, p)
                }
                Err(e) => {
                    let e = LifecycleError::from(e);
                    return end(e.exit_code(), Some(e.to_string()));
                }
            }
        }
    };
    #[cfg(target_os = "linux")]
    if prepared.decision.kind == Kind::Native
        && let Err(e) = continue_sealed(session, id, remove, ready.borrow().as_ref())
    {
        return end(EXIT_WHARF_FAILED, Some(e));
    }
    let opts = &record.options;
    let (net, serve_ports) = match network_up(session, &record, &dir, &mut prepared) {
        Ok(n) => n,
        Err(e) => return end(EXIT_WHARF_FAILED, Some(e)),
    };
    match prepared.decision.kind {
        Kind::Wasm => {
            // `wharf stats` reads the guest's memory from here.
            match std::fs::File::create(dir.join(GUEST_MEMORY)) {
                Ok(f) => wasm::limits::gauge::publish_to(f),
                Err(e) => tracing::warn!(error = %e, "publishing the guest's memory for stats"),
            }
            let timeout = record.compile_timeout_ms.map(Duration::from_millis);
            let opts = RunOptions {
                ports: serve_ports,
                ..opts.clone()
            };
            let (code, message) = run_wasm(session, &prepared, &opts, timeout, &signal_ready);
            drop(net);
            end(code, message)
        }
        Kind::Native => {
            // (The joined namespaces' descriptors stay open until the run ends.)
            let _joined = match join_namespaces(containers, &record, &mut prepared) {
                Ok(held) => held,
                Err(e) => {
                    drop(net);
                    return end(EXIT_WHARF_FAILED, Some(e));
                }
            };
            // `exec` reads the runtime spec of a running native container.
            if let Err(e) = std::fs::write(
                dir.join("config.json"),
                serde_json::to_vec(&prepared.spec).unwrap_or_default(),
            ) {
                return end(
                    EXIT_WHARF_FAILED,
                    Some(format!("writing the runtime spec: {e}")),
                );
            }
            let started = |pid: i32| {
                if let Ok(mut l) = containers.lock(id) {
                    l.record.state.pid = pid;
                    l.record.state.pid_start_time = crate::sys::process_start_time(pid);
                    let _ = l.save();
                }
                signal_ready();
            };
            let (code, message) =
                run_native(session, id, &dir, &prepared, opts.interactive, &started);
            drop(net);
            end(code, message)
        }
    }
}

/// `--ipc container:NAME`, `--pid container:NAME`: the spec joins that container's
/// namespace, which must be a running native container's (looked up at each start, as
/// Docker's, so a restarted owner is followed). The namespace is opened here, under the
/// owner's lock and checked to still be its process's after the open (a pid reused
/// meanwhile is not joined), and named to the runtime as `/proc/self/fd/N`: the returned
/// descriptors must stay open until it has started.
#[cfg(target_os = "linux")]
fn join_namespaces(
    containers: &Containers,
    record: &Record,
    prepared: &mut Prepared,
) -> Result<Vec<std::fs::File>, String> {
    let mut held = Vec::new();
    use oci_spec::runtime::LinuxNamespaceType;
    let n = &record.options.native;
    for (owner, typ, which) in [
        (&n.ipc_container, LinuxNamespaceType::Ipc, "ipc"),
        (&n.pid_container, LinuxNamespaceType::Pid, "pid"),
    ] {
        let Some(owner) = owner else { continue };
        let flag = || format!("--{which} container:{owner}");
        let id = containers
            .find(owner)
            .map_err(|e| format!("{}: {e}", flag()))?;
        if id == record.id {
            return Err(format!("{}: a container cannot join itself", flag()));
        }
        let l = containers
            .lock(&id)
            .map_err(|e| format!("{}: {e}", flag()))?;
        if l.record.kind != Kind::Native {
            return Err(format!(
                "{}: {} is a wasm container: it has no namespaces to join",
                flag(),
                l.record.shown_name()
            ));
        }
        let pid = l
            .record
            .state
            .workload()
            .filter(|_| l.record.state.is_active())
            .ok_or_else(|| format!("{}: {} is not running", flag(), l.record.shown_name()))?;
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/{which}"))
            .map_err(|e| format!("{}: {e}", flag()))?;
        if l.record.state.workload() != Some(pid) {
            return Err(format!(
                "{}: {} ended meanwhile",
                flag(),
                l.record.shown_name()
            ));
        }
        let path = std::path::PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&ns)
        ));
        crate::bundle::set_namespace_path(&mut prepared.spec, typ, &path);
        held.push(ns);
    }
    Ok(held)
}

/// Native containers run on Linux only (refused before this).
#[cfg(not(target_os = "linux"))]
fn join_namespaces(_: &Containers, _: &Record, _: &mut Prepared) -> Result<Vec<()>, String> {
    Ok(Vec::new())
}

/// Before a native container is cloned from this process: go on from a sealed wharf (see
/// `backend::native::seal`), as `container-run ID` (this process keeps its pid, stdio and
/// readiness pipe, so to the monitor, the record and the user nothing changes). Returns at
/// once when this process already runs sealed (the re-executed one); otherwise only if it
/// could not be done.
#[cfg(target_os = "linux")]
fn continue_sealed(
    session: &Session,
    id: &str,
    remove: bool,
    ready: Option<&std::fs::File>,
) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    if crate::backend::native::seal::is_protected() {
        return Ok(());
    }
    if let Some(r) = ready {
        // SAFETY: F_SETFD on a descriptor this process owns; only its close-on-exec flag
        // changes, so the re-executed process inherits it (under the same number, which
        // the environment still names).
        unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFD, 0) };
    }
    let args =
        super::monitor::supervisor_args(session.roots.data(), Some(&session.log_level), id, remove);
    crate::backend::native::seal::ensure_sealed_as(args)
        .map_err(|e| format!("cannot run from a sealed copy of wharf: {e}"))
}

/// What a run holds on its network: the host ports it published.
#[cfg(target_os = "linux")]
type NetworkHold = Option<crate::network::HeldPorts>;
#[cfg(not(target_os = "linux"))]
type NetworkHold = Option<NoHold>;

/// Nothing is held off Linux (bridge networks are refused there).
#[cfg(not(target_os = "linux"))]
pub struct NoHold;

/// Set up container `record`'s bridge network, if it asked for one: the spec then names
/// the network's namespace, and a wasm supervisor (this process) has joined it. Returns
/// what to hold while it runs and the ports a wasm server listens on (inside the
/// container's namespace on a network; on the host otherwise).
fn network_up(
    session: &Session,
    record: &Record,
    dir: &std::path::Path,
    prepared: &mut Prepared,
) -> Result<(NetworkHold, Vec<PortMapping>), String> {
    let opts = &record.options;
    if opts.network == Network::Pasta && prepared.decision.kind == Kind::Wasm {
        return Err(
            "--network pasta is for native containers: a wasm container uses the host's network with --network host (rootless too), or a bridge network".into(),
        );
    }
    let Some(network) = opts.network.named() else {
        return Ok((None, opts.ports.clone()));
    };
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (session, dir, prepared, network);
        Err(crate::network::unsupported()
            .unwrap_or_default()
            .to_string())
    }
    #[cfg(target_os = "linux")]
    {
        use crate::run::options::Protocol;
        let mut ports = opts.ports.clone();
        let wasm = prepared.decision.kind == Kind::Wasm;
        if opts.publish_all {
            let exposed = prepared
                .spec
                .annotations()
                .as_ref()
                .and_then(|a| a.get(crate::bundle::ANNOTATION_EXPOSED_PORTS).cloned())
                .unwrap_or_else(|| {
                    if wasm {
                        "8080/tcp".into()
                    } else {
                        String::new()
                    }
                });
            for e in exposed.split(',').filter(|e| !e.is_empty()) {
                let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
                let Ok(container_port) = port.parse::<u16>() else {
                    continue;
                };
                ports.push(PortMapping {
                    host_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                    host_port: 0,
                    container_port,
                    protocol: if proto == "udp" {
                        Protocol::Udp
                    } else {
                        Protocol::Tcp
                    },
                });
            }
        }
        let hostname = prepared
            .spec
            .hostname()
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| record.id.chars().take(12).collect());
        let req = crate::network::Request {
            id: &record.id,
            name: &record.name,
            hostname: &hostname,
            network,
            aliases: &opts.network_aliases,
            ip: opts.ip,
            connected: &opts.connected,
            ports: &ports,
            names: &opts.names,
        };
        let (att, held) =
            crate::network::attach(&session.roots, dir, &req).map_err(|e| e.to_string())?;
        crate::bundle::set_network_namespace(&mut prepared.spec, &att.netns);
        // A wasm server listens inside the namespace, on the container ports (8080 if
        // none is published); netavark forwards the host's.
        let mut serve: Vec<PortMapping> = Vec::new();
        for p in &att.ports {
            let inner = PortMapping {
                host_ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
                host_port: p.container_port,
                ..*p
            };
            if p.protocol == Protocol::Tcp && !serve.contains(&inner) {
                serve.push(inner);
            }
        }
        if serve.is_empty() {
            serve.push("0.0.0.0:8080:8080".parse().expect("a valid mapping"));
        }
        if wasm {
            crate::network::enter(&att, dir).map_err(|e| e.to_string())?;
        }
        Ok((Some(held), serve))
    }
}

/// Mark container `id` running in this process (keeping its monitor and restart count).
fn mark_running(containers: &Containers, id: &str, kind: Kind) -> Result<(), ContainerError> {
    let mut l = containers.lock(id)?;
    let st = &l.record.state;
    l.record.state = State {
        restart_count: st.restart_count,
        monitor: st.monitor,
        // A `stop` that came while it was restarting still applies.
        stop_requested: st.stop_requested,
        ..running_state(kind)
    };
    l.save()
}

/// The file in a wasm container's directory that holds its guest's memory in bytes, while
/// it runs ([`wasm::limits::gauge`]).
pub const GUEST_MEMORY: &str = "guest-memory";

/// Run a prepared wasm container in this process: its exit code and what to say.
fn run_wasm(
    session: &Session,
    p: &Prepared,
    opts: &RunOptions,
    compile_timeout: Option<Duration>,
    started: &dyn Fn(),
) -> (u8, Option<String>) {
    let module = p.wasm.as_ref().expect("a wasm decision carries a module");
    let result = wasm::run(WasmRun {
        name: &p.name,
        module,
        spec: &p.spec,
        rootfs: p.rootfs.as_deref(),
        ports: &opts.ports,
        stdio: StdioOptions {
            interactive: opts.interactive,
            tty: opts.tty,
        },
        cache_dir: session.roots.wasm_cache(),
        compile_timeout,
        preloaded: Vec::new(),
        started,
    });
    match result {
        Ok(exit) => (exit.code, exit.message),
        Err(e) => (e.exit_code(), Some(e.to_string())),
    }
}

#[cfg(target_os = "linux")]
fn run_native(
    session: &Session,
    id: &str,
    dir: &std::path::Path,
    p: &Prepared,
    interactive: bool,
    started: &dyn Fn(i32),
) -> (u8, Option<String>) {
    use crate::backend::native::{self, NativeRun};

    // The store was opened to prepare the run; only its layers directory is needed here.
    let layers_dir = session.roots.layers();
    let cache_dir = session.roots.seccomp_cache();
    let result = native::run(NativeRun {
        id,
        spec: &p.spec,
        layers: &p.layers,
        layers_dir: &layers_dir,
        cache_dir: Some(&cache_dir),
        state_dir: dir,
        interactive,
        tty: p
            .spec
            .process()
            .as_ref()
            .and_then(|pr| pr.terminal())
            .unwrap_or(false),
        rootless: !crate::sys::is_root(),
        started,
    });
    match result {
        Ok(exit) => (exit.code, exit.message),
        Err(e) => (e.exit_code(), Some(e.to_string())),
    }
}

#[cfg(not(target_os = "linux"))]
fn run_native(
    _: &Session,
    _: &str,
    _: &std::path::Path,
    p: &Prepared,
    _: bool,
    _: &dyn Fn(i32),
) -> (u8, Option<String>) {
    (EXIT_WHARF_FAILED, Some(native_unavailable(p)))
}

/// Why a native image cannot run here.
pub fn native_unavailable(p: &Prepared) -> String {
    if cfg!(target_os = "linux") {
        format!(
            "{} is a native Linux image: run it without --print-spec",
            p.name
        )
    } else {
        format!(
            "{} is a native Linux image ({}): it needs a Linux host; on this system wharf runs wasm images only",
            p.name, p.decision.reason
        )
    }
}
