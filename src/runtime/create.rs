//! `create`: read and check the bundle, decide the backend, set the container up and leave
//! its first process waiting for `start`.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::hooks::run_hooks;
use super::spec::read_spec;
use super::{Runtime, RuntimeError, Saved, Status, io, state_json};
use crate::backend::native::create::{self as native, NativeCreate};

/// `create`'s options.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// The wasm engine, for wasm bundles (only the `wharf` binary carries one; without it
    /// a wasm bundle is refused, see [`needs_engine`]).
    pub engine: Option<super::guest::Engine>,
    /// `--no-new-keyring`: the container keeps the caller's session keyring instead of one
    /// of its own.
    pub no_new_keyring: bool,
}

/// Why the bundle at `bundle` is WebAssembly (and so needs the engine), if it is.
pub fn needs_engine(bundle: &Path) -> Option<String> {
    let spec = read_spec(bundle).ok()?;
    let root = rootfs(bundle, &spec).ok()?;
    says_wasm(&spec, &root)
}

/// Why the bundle is WebAssembly, if it is (crun's rules: annotations, an entrypoint named
/// `.wasm`/`.wat`, or wasm magic in the entrypoint file, looked up inside the rootfs).
fn says_wasm(spec: &Spec, rootfs: &Path) -> Option<String> {
    if let Some(why) = crate::dispatch::bundle_says_wasm(spec) {
        return Some(why);
    }
    let entry = spec.process().as_ref()?.args().as_ref()?.first()?.clone();
    let root = cap_std::fs::Dir::open_ambient_dir(rootfs, cap_std::ambient_authority()).ok()?;
    let mut f = crate::image::unpack::open_file_in_root(&root, &entry).ok()?;
    let mut head = [0u8; 4];
    std::io::Read::read_exact(&mut f, &mut head).ok()?;
    (&head == b"\0asm").then(|| format!("entrypoint {entry} holds wasm magic"))
}

/// The spec's root filesystem: inside the bundle unless absolute, a real directory (a
/// symlink could point anywhere on the host).
fn rootfs(bundle: &Path, spec: &Spec) -> Result<PathBuf, RuntimeError> {
    let root = spec.root().as_ref().ok_or_else(|| RuntimeError::Spec {
        path: bundle.join("config.json"),
        why: "no root".into(),
    })?;
    let path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let bad = |why: &str| RuntimeError::Bundle {
        path: path.clone(),
        why: why.into(),
    };
    let meta = fs::symlink_metadata(&path).map_err(|e| bad(&format!("root filesystem: {e}")))?;
    if meta.file_type().is_symlink() {
        return Err(bad(
            "the root filesystem is a symlink; refusing it (it could point anywhere on the host)",
        ));
    }
    if !meta.is_dir() {
        return Err(bad("the root filesystem is not a directory"));
    }
    Ok(path)
}

/// What wharf-runtime cannot do yet, refused clearly rather than skipped.
fn check_supported(spec: &Spec) -> Result<(), RuntimeError> {
    if let Some(h) = spec.hooks() {
        // The runtime spec: a hook's path is absolute. A relative one would run whatever
        // the caller's directory (or PATH) holds under that name.
        #[allow(deprecated)]
        let all = [
            h.prestart(),
            h.create_runtime(),
            h.create_container(),
            h.start_container(),
            h.poststart(),
            h.poststop(),
        ];
        for hook in all.into_iter().flatten().flatten() {
            if !hook.path().is_absolute() {
                return Err(RuntimeError::Unsupported(format!(
                    "hook path {:?} is not absolute (the runtime spec requires an absolute path)",
                    hook.path()
                )));
            }
        }
        let inside = h.create_container().as_ref().is_some_and(|v| !v.is_empty())
            || h.start_container().as_ref().is_some_and(|v| !v.is_empty());
        if inside {
            return Err(RuntimeError::Unsupported(
                "createContainer and startContainer hooks are not supported by wharf-runtime yet"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `create ID`: the container set up, its first process waiting for `start`.
pub fn create(rt: &Runtime, id: &str, o: &CreateOptions) -> Result<Saved, RuntimeError> {
    let dir = rt.dir(id)?;
    let bundle = std::path::absolute(&o.bundle).unwrap_or_else(|_| o.bundle.clone());
    let spec = read_spec(&bundle)?;
    let rootfs = rootfs(&bundle, &spec)?;
    check_supported(&spec)?;
    if spec.process().is_none() {
        return Err(RuntimeError::Spec {
            path: bundle.join("config.json"),
            why: "no process to run".into(),
        });
    }
    fs::create_dir_all(&rt.root).map_err(io(&rt.root))?;
    set_private(&rt.root);
    match fs::create_dir(&dir) {
        Ok(()) => set_private(&dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(RuntimeError::Exists(id.to_string()));
        }
        Err(e) => return Err(io(&dir)(e)),
    }
    let made = create_in(rt, id, &dir, &bundle, &rootfs, &spec, o);
    if made.is_err() {
        let _ = fs::remove_dir_all(&dir);
    }
    made
}

fn set_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
}

fn create_in(
    rt: &Runtime,
    id: &str,
    dir: &Path,
    bundle: &Path,
    rootfs: &Path,
    spec: &Spec,
    o: &CreateOptions,
) -> Result<Saved, RuntimeError> {
    let console: Option<OwnedFd> = match &o.console_socket {
        Some(p) => Some(
            std::os::unix::net::UnixStream::connect(p)
                .map(OwnedFd::from)
                .map_err(|e| RuntimeError::Io {
                    path: p.clone(),
                    source: e,
                })?,
        ),
        None => None,
    };
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && console.is_none() {
        return Err(RuntimeError::Unsupported(
            "process.terminal is true but no --console-socket was given".into(),
        ));
    }
    let wasm = says_wasm(spec, rootfs);
    let engine = match (&wasm, o.engine) {
        (Some(why), None) => {
            return Err(RuntimeError::Unsupported(format!(
                "this bundle is WebAssembly ({why}) and this runtime has no wasm engine (install the wharf binary beside wharf-runtime)"
            )));
        }
        (Some(_), Some(e)) => Some(e),
        (None, _) => None,
    };
    let preloaded = engine
        .map(|e| (e.prepare)(spec, rootfs, &rt.root.join(".cache").join("wasm")))
        .unwrap_or_default();
    let guest_spec = spec.clone();
    let run_engine = move || engine.map_or(127, |e| (e.run)(&guest_spec, &preloaded));
    let created = native::create(NativeCreate {
        id,
        spec,
        rootfs,
        state_dir: dir,
        console: if terminal { console } else { None },
        cache_dir: Some(&rt.root.join(".cache").join("seccomp")),
        in_place: engine.is_some().then_some(&run_engine as &dyn Fn() -> u8),
        new_keyring: !o.no_new_keyring,
    })?;
    let saved = Saved {
        id: id.to_string(),
        pid: created.pid,
        start_time: crate::sys::process_start_time(created.pid).unwrap_or(0),
        bundle: bundle.to_path_buf(),
        rootfs: rootfs.to_path_buf(),
        created: chrono::Utc::now(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        owner: nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map_or_else(|| "root".into(), |u| u.name),
        cgroup_dirs: created.cgroup_dirs.clone(),
        wasm,
    };
    let undo = |e: RuntimeError| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(created.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        crate::backend::native::cgroups::Cgroup::from_dirs(created.cgroup_dirs.clone()).destroy();
        e
    };
    rt.save(&saved).map_err(undo)?;
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, created.pid).map_err(undo)?;
    }
    let state = state_json(&saved, Status::Created);
    let hooks = spec.hooks().as_ref();
    run_hooks(
        hooks.and_then(|h| h.prestart().as_ref()),
        &state,
        "prestart",
    )
    .and_then(|()| {
        run_hooks(
            hooks.and_then(|h| h.create_runtime().as_ref()),
            &state,
            "createRuntime",
        )
    })
    .map_err(undo)?;
    Ok(saved)
}

/// The pid file, written whole then renamed (callers poll for it). Its directory is opened
/// first ([`PidFile::at`]), so it can be written after this process entered a container's
/// mount namespace (`exec`).
pub(super) struct PidFile {
    dir: cap_std::fs::Dir,
    name: std::ffi::OsString,
    path: PathBuf,
}

impl PidFile {
    pub(super) fn at(path: &Path) -> Result<PidFile, RuntimeError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let parent = path.parent().unwrap_or(Path::new("/"));
        let name = path.file_name().map(|n| n.to_os_string()).ok_or_else(|| {
            RuntimeError::Unsupported(format!("pid file {} has no file name", path.display()))
        })?;
        let dir = cap_std::fs::Dir::open_ambient_dir(parent, cap_std::ambient_authority())
            .map_err(io(parent))?;
        Ok(PidFile { dir, name, path })
    }

    pub(super) fn write(&self, pid: i32) -> Result<(), RuntimeError> {
        let mut tmp = std::ffi::OsString::from(".");
        tmp.push(&self.name);
        tmp.push(".tmp");
        self.dir
            .write(&tmp, pid.to_string())
            .and_then(|()| self.dir.rename(&tmp, &self.dir, &self.name))
            .map_err(io(&self.path))
    }
}

pub(super) fn write_pid_file(path: &Path, pid: i32) -> Result<(), RuntimeError> {
    PidFile::at(path)?.write(pid)
}
