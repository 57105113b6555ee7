//! The shim on Linux: the binary's actions (`start`, `delete`, serving), and the task service.

mod metrics;
mod oom;
mod runtime;
mod service;
mod stdio;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::synchronous::util::{read_options, write_address, write_options};
use containerd_shim::{Config, DeleteResponse, ExitSignal, Flags, StartOpts, spawn};

use crate::RUNTIME_TYPE;

/// The annotation CRI puts on every container of a pod: one shim serves the pod.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The crate parses Go-style flags but leaves these two to the shim.
    if args
        .iter()
        .any(|a| matches!(a.as_str(), "-v" | "--v" | "-version" | "--version"))
    {
        println!("{}:", binary_name());
        println!("  Version:  {}", env!("CARGO_PKG_VERSION"));
        println!("  Runtime:  {}", runtime::find_binary("").display());
        println!("  Task API: v2 (containerd 1.6, 1.7)");
        return;
    }
    if args
        .iter()
        .any(|a| matches!(a.as_str(), "-info" | "--info"))
    {
        std::process::exit(match info() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{}: {e}", binary_name());
                1
            }
        });
    }
    containerd_shim::run::<Shim>(RUNTIME_TYPE, None);
}

fn binary_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "containerd-shim-wharf-v1".into())
}

/// `-info`: the RuntimeInfo protobuf on stdout, with the runtime's features (containerd 2's
/// introspection; 1.6 does not ask).
fn info() -> Result<(), String> {
    // No reaper runs here: wait for the runtime directly.
    let out = std::process::Command::new(runtime::find_binary(""))
        .arg("features")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run wharf-runtime features: {e}"))?;
    if !out.status.success() {
        return Err("wharf-runtime features failed".into());
    }
    let info = RuntimeInfo {
        name: RUNTIME_TYPE.into(),
        version: MessageField::some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        }),
        features: MessageField::some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/features/Features".into(),
            value: out.stdout,
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = info.write_to_bytes().map_err(|e| e.to_string())?;
    std::io::stdout()
        .write_all(&bytes)
        .map_err(|e| e.to_string())
}

pub(crate) fn timestamp() -> Timestamp {
    containerd_shim::util::timestamp().unwrap_or_default()
}

/// The rootfs containerd hands the shim (snapshot mounts), mounted on `bundle/rootfs`.
pub(crate) mod rootfs {
    use std::path::Path;

    use containerd_shim::protos::types::mount::Mount;

    pub fn mount(mounts: &[Mount], target: &Path) -> Result<(), String> {
        std::fs::create_dir_all(target).map_err(|e| format!("{}: {e}", target.display()))?;
        for (i, m) in mounts.iter().enumerate() {
            if let Err(e) = containerd_shim::mount::mount_rootfs(
                Some(m.type_.as_str()),
                Some(m.source.as_str()),
                &m.options,
                target,
            ) {
                if i > 0 {
                    unmount(target);
                }
                return Err(format!("{} mount of {}: {e}", m.type_, m.source));
            }
        }
        Ok(())
    }

    pub fn unmount(target: &Path) {
        if let Some(t) = target.to_str()
            && let Err(e) = containerd_shim::mount::umount_recursive(Some(t), libc::MNT_DETACH)
        {
            log::warn!("unmounting {t}: {e}");
        }
    }
}

/// After a shim died (SIGKILL, OOM) its socket stays in /run/containerd/s: remove it when
/// nothing answers on it any more. A live one (the pod's shim serving other containers) stays.
fn remove_stale_socket(bundle: &Path) {
    let Ok(address) = std::fs::read_to_string(bundle.join("address")) else {
        return;
    };
    let path = Path::new(address.trim().trim_start_matches("unix://"));
    if !path.starts_with(containerd_shim::SOCKET_ROOT) {
        return;
    }
    if let Err(e) = std::os::unix::net::UnixStream::connect(path)
        && e.kind() == std::io::ErrorKind::ConnectionRefused
    {
        let _ = std::fs::remove_file(path);
    }
}

/// The shim binary's lifecycle (containerd's `start`/`delete` actions, then serving).
struct Shim {
    namespace: String,
    id: String,
    bundle: PathBuf,
    /// The socket this process serves (its `-socket`; empty in the `start`/`delete`
    /// actions).
    socket: String,
    exit: Arc<ExitSignal>,
}

/// The pod a container belongs to (CRI), else the container itself.
fn grouping(bundle: &Path, id: &str) -> String {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
        .and_then(|spec| spec["annotations"][SANDBOX_ID].as_str().map(str::to_owned))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| id.to_owned())
}

impl containerd_shim::Shim for Shim {
    type T = service::Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        let bundle = if args.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            PathBuf::from(&args.bundle)
        };
        Shim {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            bundle,
            socket: args.socket.clone(),
            exit: Arc::default(),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let group = grouping(&self.bundle, &opts.id);
        let (pid, address) = spawn(opts, &group, Vec::new())?;
        // When the pod's shim already runs, the new process has handed over and exited:
        // there is nothing to place.
        if let Err(e) = containerd_shim::cgroup::set_cgroup_and_oom_score(pid) {
            log::debug!("placing the shim {pid}: {e}");
        }
        write_address(&address)?;
        // Hand the address over and end here. Returning would let the crate drop its signal
        // registration (SIGCHLD among them) while the child's exit signal can still arrive,
        // which can leave this process spinning inside signal-hook's unregister: containerd
        // then waits on it forever (seen: one `start` in a few dozen, in a pod's second
        // container, whose process hands over to the running shim and exits at once).
        let mut out = std::io::stdout().lock();
        if out
            .write_all(address.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            std::process::exit(1);
        }
        std::process::exit(0);
    }

    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        // The runtime options Create saved in the bundle (binary, root), as runc's shim does.
        let options = read_options(&self.bundle).unwrap_or_default();
        let runtime = runtime::Runtime {
            binary: runtime::find_binary(&options.binary_name),
            root: runtime::root_for(&options.root, &self.namespace),
            log: Some(self.bundle.join("log.json")),
        };
        // Idempotent: a container already gone is not an error for `delete --force`.
        if let Err(e) = runtime.delete(&self.id, true) {
            log::warn!("cleaning up {}: {e}", self.id);
        }
        rootfs::unmount(&self.bundle.join("rootfs"));
        remove_stale_socket(&self.bundle);
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: MessageField::some(timestamp()),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        // The socket this shim serves: its own `-socket`. Not the bundle's `address` file:
        // the `start` process writes that only after this server signalled it started, so
        // it may not be there yet (seen: a socket left in /run/containerd/s now and then).
        let socket = Some(PathBuf::from(self.socket.trim_start_matches("unix://")))
            .filter(|p| p.starts_with(containerd_shim::SOCKET_ROOT));
        self.exit.wait();
        // Shut down. The socket goes first, as runc's shim removes it on Shutdown: the
        // crate removes it only after its server stopped and only if the bundle still
        // holds the address, which containerd may have removed meanwhile (seen: a pod whose
        // ExecSync named a missing command left its socket file).
        if let Some(socket) = &socket {
            let _ = std::fs::remove_file(socket);
        }
        // The crate now stops its server, which waits for its connections and handlers. A
        // thread blocked on a stream no one reads must not keep the shim alive after
        // containerd asked it to go: whatever still runs after a grace period, it exits.
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(2));
            log::info!("shutdown: exiting with threads still running");
            std::process::exit(0);
        });
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        service::Service::new(self.namespace.clone(), self.exit.clone(), publisher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::api::Options;

    #[test]
    fn pods_share_a_shim() {
        let dir = std::env::temp_dir().join(format!("wharf-shim-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(grouping(&dir, "c1"), "c1");
        std::fs::write(
            dir.join("config.json"),
            format!(r#"{{"annotations": {{"{SANDBOX_ID}": "pod1"}}}}"#),
        )
        .unwrap();
        assert_eq!(grouping(&dir, "c2"), "pod1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn options_survive_for_delete() {
        let dir = std::env::temp_dir().join(format!("wharf-shim-opts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_options(&dir).unwrap_or_default().root, "");
        write_options(
            dir.to_str().unwrap(),
            &Options {
                root: "/r".into(),
                binary_name: "/b".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let o = read_options(&dir).unwrap();
        assert_eq!((o.root.as_str(), o.binary_name.as_str()), ("/r", "/b"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
