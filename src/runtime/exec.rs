//! `exec`: another process in a running container, from a runtime-spec `process`
//! document (`--process`, as shims and conmon pass it) or from arguments.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::Process;

use super::{Runtime, RuntimeError, Status, io};
use crate::backend::native::Overrides;
use crate::backend::native::exec::{self, ExecRun};

/// `exec`'s options.
#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    /// A runtime-spec Process JSON file.
    pub process: Option<PathBuf>,
    /// The command (without `--process`).
    pub args: Vec<String>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub tty: bool,
    pub cwd: Option<String>,
    pub env: Vec<String>,
}

/// Run a process in container `id`: its exit code, or `None` with `--detach` (once it
/// has exec'd).
pub fn exec(rt: &Runtime, id: &str, o: &ExecOptions) -> Result<Option<u8>, RuntimeError> {
    let saved = rt.load(id)?;
    let status = rt.status(&saved);
    if status != Status::Running {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status,
            why: "only a running container can run another process",
        });
    }
    if let Some(why) = &saved.wasm {
        return Err(RuntimeError::Unsupported(format!(
            "container \"{id}\" runs WebAssembly ({why}): exec cannot apply, since a wasm guest has no processes or namespaces to join"
        )));
    }
    let mut spec = super::spec::read_spec(&saved.bundle)?;
    let process: Process = match &o.process {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(io(path))?;
            super::spec::parse_process(&bytes, path)?
        }
        None => {
            if o.args.is_empty() {
                return Err(RuntimeError::Unsupported(
                    "exec needs --process or a command".into(),
                ));
            }
            let mut p = spec.process().clone().unwrap_or_default();
            p.set_args(Some(o.args.clone()));
            p.set_terminal(Some(o.tty));
            if let Some(cwd) = &o.cwd {
                p.set_cwd(cwd.into());
            }
            let mut env = p.env().clone().unwrap_or_default();
            env.extend(o.env.iter().cloned());
            p.set_env(Some(env));
            p
        }
    };
    let tty = process.terminal().unwrap_or(false);
    let console: Option<OwnedFd> = match &o.console_socket {
        Some(p) => Some(
            std::os::unix::net::UnixStream::connect(p)
                .map(OwnedFd::from)
                .map_err(io(p))?,
        ),
        None => None,
    };
    if tty && console.is_none() && o.detach {
        return Err(RuntimeError::Unsupported(
            "a detached exec with a terminal needs --console-socket".into(),
        ));
    }
    spec.set_process(Some(process));
    // Opened now: once the process is spawned we are inside the container's namespaces.
    let pid_file = o
        .pid_file
        .as_deref()
        .map(super::create::PidFile::at)
        .transpose()?;
    let spawned = exec::spawn(ExecRun {
        id,
        pid: saved.pid,
        spec: &spec,
        overrides: Overrides::default(),
        tty,
        interactive: true,
        cgroup_dirs: Some(saved.cgroup_dirs.clone()),
        console,
        detached: o.detach,
    })?;
    if let Some(pf) = &pid_file {
        pf.write(spawned.pid.as_raw())?;
    }
    if o.detach {
        spawned.confirm()?;
        return Ok(None);
    }
    let exit = spawned.wait()?;
    Ok(Some(exit.code))
}
