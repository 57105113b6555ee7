//! Driving `wharf-runtime`, as containerd-shim-runc-v2 drives runc: every call carries
//! `--root R --log BUNDLE/log.json --log-format json`, and a failure's reason is the runtime's
//! last json log line (its stderr may be the container's).
//!
//! The shim's SIGCHLD handler reaps every child (`waitpid(-1)`), so a command's exit status is
//! taken from the reaper's monitor, subscribed before the command is spawned.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use containerd_shim::monitor::{Subject, monitor_subscribe};
use containerd_shim::monitor::{Subscription, Topic};

/// What went wrong running the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot run {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("wharf-runtime {verb} failed: {message}")]
    Failed { verb: String, message: String },
    #[error("wharf-runtime {verb} printed what the shim cannot read: {why}")]
    Output { verb: String, why: String },
}

/// The runtime binary and where it keeps its containers' state.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub binary: PathBuf,
    pub root: PathBuf,
    /// The json log of the bundle being served (one per container, as runc's).
    pub log: Option<PathBuf>,
}

/// The standard streams of a command that are not captured.
pub struct Streams {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Streams {
    pub fn null() -> Streams {
        Streams {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }
}

/// Where `wharf-runtime` is: the options' BinaryName, else beside this shim (the three
/// binaries are installed together), else on PATH.
pub fn find_binary(configured: &str) -> PathBuf {
    if !configured.is_empty() {
        return PathBuf::from(configured);
    }
    if let Some(beside) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("wharf-runtime")))
        .filter(|p| p.is_file())
    {
        return beside;
    }
    PathBuf::from("wharf-runtime")
}

/// The state root for a containerd namespace: the options' Root, else
/// `/run/containerd/wharf/<namespace>` (runc's is `/run/containerd/runc/<namespace>`).
pub fn root_for(configured: &str, namespace: &str) -> PathBuf {
    if configured.is_empty() {
        Path::new("/run/containerd/wharf").join(namespace)
    } else {
        Path::new(configured).join(namespace)
    }
}

impl Runtime {
    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root);
        if let Some(log) = &self.log {
            cmd.arg("--log").arg(log).args(["--log-format", "json"]);
        }
        cmd.args(args);
        cmd
    }

    /// Runs a verb whose output the shim reads; `input` goes to its stdin.
    pub fn output<I, S>(&self, args: I, input: Option<&[u8]>) -> Result<Vec<u8>, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args);
        let verb = verb_of(&cmd);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let subscription = subscribe();
        let mut child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            // A runtime that exits early closes the pipe: its status says why.
            let _ = stdin.write_all(data);
        }
        let mut stderr = child.stderr.take().expect("piped stderr");
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut out = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = stdout.read_to_end(&mut out);
        }
        let code = wait_exit(child.id() as i32, subscription);
        let errors = errors.join().unwrap_or_default();
        if code != 0 {
            return Err(RuntimeError::Failed {
                verb,
                message: self.reason(errors.trim()),
            });
        }
        Ok(out)
    }

    /// Runs a verb whose standard streams belong to a container process (`create`, `exec`).
    pub fn spawn_with<I, S>(&self, args: I, streams: Streams) -> Result<(), RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args);
        let verb = verb_of(&cmd);
        cmd.stdin(streams.stdin)
            .stdout(streams.stdout)
            .stderr(streams.stderr);
        let subscription = subscribe();
        let child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        // The command holds the streams: the shim keeps no copy of the container's ends.
        drop(cmd);
        let code = wait_exit(child.id() as i32, subscription);
        if code != 0 {
            return Err(RuntimeError::Failed {
                verb,
                message: self.reason(""),
            });
        }
        Ok(())
    }

    /// The runtime's own words for its last failure: the last error line of its json log,
    /// else what it printed.
    fn reason(&self, printed: &str) -> String {
        let logged = self
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|log| {
                log.lines().rev().find_map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).ok()?;
                    (v["level"] == "error").then(|| v["msg"].as_str().map(str::to_owned))?
                })
            });
        match logged {
            Some(m) => m,
            None if !printed.is_empty() => printed.to_owned(),
            None => "no reason given".to_owned(),
        }
    }

    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        streams: Streams,
    ) -> Result<(), RuntimeError> {
        let verb = ["create".as_ref(), "--bundle".as_ref(), bundle.as_os_str()];
        self.start_process(&verb, id, pid_file, console_socket, streams)
    }

    /// `exec --detach`: returns once the process runs (its pid in `pid_file`).
    pub fn exec(
        &self,
        id: &str,
        process: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        streams: Streams,
    ) -> Result<(), RuntimeError> {
        let verb = [
            "exec".as_ref(),
            "--process".as_ref(),
            process.as_os_str(),
            "--detach".as_ref(),
        ];
        self.start_process(&verb, id, pid_file, console_socket, streams)
    }

    /// A verb that makes a container process: its pid file, its terminal's console socket.
    fn start_process(
        &self,
        verb: &[&OsStr],
        id: &str,
        pid_file: &Path,
        console_socket: Option<&Path>,
        streams: Streams,
    ) -> Result<(), RuntimeError> {
        let mut args = verb.to_vec();
        args.extend(["--pid-file".as_ref(), pid_file.as_os_str()]);
        if let Some(s) = console_socket {
            args.extend(["--console-socket".as_ref(), s.as_os_str()]);
        }
        args.push(id.as_ref());
        self.spawn_with(args, streams)
    }

    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.output(["start", id], None).map(drop)
    }

    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError> {
        let signal = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, signal.as_str()]);
        self.output(args, None).map(drop)
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        self.output(args, None).map(drop)
    }

    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.output(["pause", id], None).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.output(["resume", id], None).map(drop)
    }

    /// `update --resources -`: the runtime-spec LinuxResources as JSON on stdin.
    pub fn update(&self, id: &str, resources_json: &[u8]) -> Result<(), RuntimeError> {
        self.output(["update", "--resources", "-", id], Some(resources_json))
            .map(drop)
    }

    /// The container's processes (host pids).
    pub fn ps(&self, id: &str) -> Result<Vec<u32>, RuntimeError> {
        let out = self.output(["ps", "--format", "json", id], None)?;
        serde_json::from_slice(&out).map_err(|e| RuntimeError::Output {
            verb: "ps".into(),
            why: e.to_string(),
        })
    }

    /// One stats sample (`events --stats`): the `data` object.
    pub fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let out = self.output(["events", "--stats", id], None)?;
        let v: serde_json::Value =
            serde_json::from_slice(&out).map_err(|e| RuntimeError::Output {
                verb: "events".into(),
                why: e.to_string(),
            })?;
        Ok(v["data"].clone())
    }
}

fn verb_of(cmd: &Command) -> String {
    // The first argument after the global flags.
    let mut args = cmd.get_args().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" | "--log" | "--log-format" => {
                args.next();
            }
            _ => return a,
        }
    }
    String::new()
}

fn subscribe() -> Subscription {
    monitor_subscribe(Topic::Pid).expect("the monitor always subscribes")
}

/// The exit status of `pid` as the reaper saw it.
fn wait_exit(pid: i32, s: Subscription) -> i32 {
    loop {
        match s.rx.recv() {
            Ok(e) => {
                if let Subject::Pid(p) = e.subject
                    && p == pid
                {
                    return e.exit_code;
                }
            }
            // The monitor lives as long as the process: unreachable in practice.
            Err(_) => return -1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_skips_global_flags() {
        let rt = Runtime {
            binary: "/bin/true".into(),
            root: "/r".into(),
            log: Some("/b/log.json".into()),
        };
        assert_eq!(verb_of(&rt.command(["kill", "--all", "x", "9"])), "kill");
    }

    #[test]
    fn roots_per_namespace() {
        assert_eq!(
            root_for("", "k8s.io"),
            Path::new("/run/containerd/wharf/k8s.io")
        );
        assert_eq!(root_for("/x", "default"), Path::new("/x/default"));
    }

    #[test]
    fn reason_is_the_last_logged_error() {
        let dir = tempfile_dir();
        let log = dir.join("log.json");
        std::fs::write(
            &log,
            "{\"level\":\"error\",\"msg\":\"first\"}\n{\"level\":\"info\",\"msg\":\"x\"}\n{\"level\":\"error\",\"msg\":\"no such file: /bin/nope\"}\n",
        )
        .unwrap();
        let rt = Runtime {
            binary: "/bin/false".into(),
            root: dir.clone(),
            log: Some(log),
        };
        assert_eq!(rt.reason("printed"), "no such file: /bin/nope");
        let rt = Runtime { log: None, ..rt };
        assert_eq!(rt.reason("printed"), "printed");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("wharf-shim-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
