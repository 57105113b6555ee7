//! A process's standard streams as containerd hands them to the shim: FIFO paths (ctr, CRI),
//! `file://` and `binary://` log URIs, a terminal (the pty master comes back from the runtime
//! over a console socket and the shim relays it), or nothing at all (CRI sandboxes).
//!
//! No RPC ever blocks on a FIFO: stdout/stderr FIFOs are opened read-write (which never waits
//! for a reader, and leaves a reader in place so a detached client causes no EPIPE) and handed
//! to the container as they are; the stdin FIFO is opened by a relay thread, which may wait
//! for a writer without holding anything up.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::runtime::Streams;

/// What went wrong setting up a process's streams.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("cannot open {what} {path}: {source}")]
    Open {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("log URI {0:?} is not file:// or binary:// with an absolute path")]
    BadUri(String),
    #[error("cannot start the logger {path}: {why}")]
    Logger { path: String, why: String },
    #[error("the console socket: {0}")]
    Console(String),
}

/// The stream paths of one process, as in CreateTaskRequest/ExecProcessRequest.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// The shim's side of a process's streams, for as long as the process is known.
#[derive(Default)]
pub struct Io {
    /// Where the shim writes the process's stdin (a pipe, or the pty master): taken by
    /// CloseIO.
    stdin: Arc<Mutex<Option<File>>>,
    /// While the relay copies the stdin FIFO: CloseIO lets it drain first.
    relaying: Arc<AtomicBool>,
    /// The pty master, for ResizePty.
    console: Option<Arc<File>>,
    /// A `binary://` logger.
    logger: Option<u32>,
}

/// Streams ready to hand to the runtime, and what the shim finishes once it has run.
pub struct Prepared {
    pub streams: Streams,
    console: Option<(UnixListener, PathBuf)>,
    stdin_fifo: Option<String>,
    stdin_pipe: Option<File>,
    stdout_fifo: Option<String>,
    logger: Option<u32>,
}

fn open_err<'a>(
    what: &'static str,
    path: &'a str,
) -> impl FnOnce(std::io::Error) -> StdioError + 'a {
    move |source| StdioError::Open {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Opens an output path: a FIFO read-write (never blocks, never EPIPE), a file for appending.
fn open_output(what: &'static str, path: &str) -> Result<File, StdioError> {
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    let mut o = OpenOptions::new();
    if is_fifo {
        o.read(true).write(true);
    } else {
        o.append(true).create(true).mode(0o640);
    }
    o.custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(open_err(what, path))
}

/// A `file://` path, made with its directory if missing.
fn open_log_file(path: &str) -> Result<File, StdioError> {
    if let Some(dir) = Path::new(path).parent() {
        std::fs::create_dir_all(dir).map_err(open_err("the log directory of", path))?;
    }
    open_output("log file", path)
}

fn pipe() -> Result<(File, File), StdioError> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| StdioError::Open {
            what: "a pipe",
            path: String::new(),
            source: e.into(),
        })?;
    Ok((File::from(r), File::from(w)))
}

/// A `binary://PATH?k=v` logger, as containerd starts one: fd 3 the process's stdout, fd 4
/// its stderr, fd 5 a pipe it closes (or writes to) once ready; CONTAINER_ID and
/// CONTAINER_NAMESPACE in its environment. Returns the two write ends and its pid.
fn start_logger(uri: &str, id: &str, namespace: &str) -> Result<(File, File, u32), StdioError> {
    let rest = uri.strip_prefix("binary://").unwrap_or(uri);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !path.starts_with('/') {
        return Err(StdioError::BadUri(uri.to_owned()));
    }
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        args.push(unescape(k));
        if !v.is_empty() {
            args.push(unescape(v));
        }
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = Command::new(path);
    cmd.args(&args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec the child only calls dup2 and fcntl, which are
    // async-signal-safe; the fds are open in the parent for the whole spawn.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            // First out of the way of 3..=5, then into place (dup2 clears CLOEXEC).
            let mut moved = [0; 3];
            for (i, fd) in fds.iter().enumerate() {
                let m = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                if m < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved[i] = m;
            }
            for (i, m) in moved.iter().enumerate() {
                if libc::dup2(*m, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| StdioError::Logger {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    drop((out_r, err_r, ready_w, cmd));
    // Ready once it writes or closes fd 5 (it exiting closes it too).
    let mut byte = [0u8; 1];
    let _ = (&ready_r).read(&mut byte);
    Ok((out_w, err_w, child.id()))
}

/// %XX and + in a URI query, as Go's url.ParseQuery reads them.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Makes the streams for the runtime command that starts a process.
pub fn prepare(p: &Paths, id: &str, namespace: &str) -> Result<Prepared, StdioError> {
    let mut prepared = Prepared {
        streams: Streams::null(),
        console: None,
        stdin_fifo: None,
        stdin_pipe: None,
        stdout_fifo: None,
        logger: None,
    };
    if p.terminal {
        // A directory of its own (0700, an unguessable name), short enough for a socket path.
        let dir = nix::unistd::mkdtemp(&std::env::temp_dir().join("wharf-shim-XXXXXX"))
            .map_err(|e| StdioError::Console(format!("a directory for the console socket: {e}")))?;
        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path)
            .map_err(|e| StdioError::Console(format!("{}: {e}", path.display())))?;
        prepared.console = Some((listener, path));
        prepared.stdin_fifo = Some(p.stdin.clone()).filter(|s| !s.is_empty());
        prepared.stdout_fifo = Some(p.stdout.clone()).filter(|s| !s.is_empty());
        return Ok(prepared);
    }
    if !p.stdin.is_empty() {
        let (r, w) = pipe()?;
        prepared.streams.stdin = r.into();
        prepared.stdin_pipe = Some(w);
        prepared.stdin_fifo = Some(p.stdin.clone());
    }
    if let Some(uri) = p
        .stdout
        .strip_prefix("binary://")
        .map(|_| p.stdout.as_str())
    {
        let (out, err, pid) = start_logger(uri, id, namespace)?;
        prepared.streams.stdout = out.into();
        prepared.streams.stderr = err.into();
        prepared.logger = Some(pid);
        return Ok(prepared);
    }
    let output = |what, path: &str| -> Result<Option<File>, StdioError> {
        if path.is_empty() {
            Ok(None)
        } else if let Some(file) = path.strip_prefix("file://") {
            if !file.starts_with('/') {
                return Err(StdioError::BadUri(path.to_owned()));
            }
            open_log_file(file).map(Some)
        } else if path.contains("://") {
            Err(StdioError::BadUri(path.to_owned()))
        } else {
            open_output(what, path).map(Some)
        }
    };
    let out = output("stdout", &p.stdout)?;
    let err = if !p.stderr.is_empty() && p.stderr == p.stdout {
        match &out {
            Some(f) => Some(f.try_clone().map_err(open_err("stderr", &p.stderr))?),
            None => None,
        }
    } else {
        output("stderr", &p.stderr)?
    };
    if let Some(f) = out {
        prepared.streams.stdout = f.into();
    }
    if let Some(f) = err {
        prepared.streams.stderr = f.into();
    }
    Ok(prepared)
}

impl Prepared {
    /// The streams for the runtime command (which then holds the only copy).
    pub fn take_streams(&mut self) -> Streams {
        std::mem::replace(&mut self.streams, Streams::null())
    }

    pub fn console_socket(&self) -> Option<&Path> {
        self.console.as_ref().map(|(_, p)| p.as_path())
    }

    /// After the runtime ran: takes the pty master from the console socket and starts the
    /// relays. `name` labels the relay threads.
    pub fn finish(mut self, name: &str) -> Result<Io, StdioError> {
        let mut io = Io {
            logger: self.logger.take(),
            ..Io::default()
        };
        if let Some((listener, path)) = self.console.take() {
            let master = receive_master(&listener);
            drop(listener);
            remove_socket_dir(&path);
            let master = Arc::new(master?);
            io.console = Some(master.clone());
            let writer = master
                .try_clone()
                .map_err(|e| StdioError::Console(e.to_string()))?;
            *io.stdin.lock().unwrap() = Some(writer);
            if let Some(fifo) = self.stdin_fifo.take() {
                relay_stdin(name, fifo, io.stdin.clone(), io.relaying.clone(), false);
            }
            if let Some(fifo) = self.stdout_fifo.take() {
                let out = open_output("stdout", &fifo)?;
                let reader = master
                    .try_clone()
                    .map_err(|e| StdioError::Console(e.to_string()))?;
                relay_output(name, reader, out);
            }
            return Ok(io);
        }
        if let (Some(fifo), Some(w)) = (self.stdin_fifo.take(), self.stdin_pipe.take()) {
            *io.stdin.lock().unwrap() = Some(w);
            relay_stdin(name, fifo, io.stdin.clone(), io.relaying.clone(), true);
        }
        Ok(io)
    }
}

fn remove_socket_dir(socket: &Path) {
    let _ = std::fs::remove_file(socket);
    if let Some(dir) = socket.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// A process that never started leaves no socket, and no logger behind.
impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some((_, path)) = self.console.take() {
            remove_socket_dir(&path);
        }
        if let Some(pid) = self.logger.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Accepts the runtime's connection (it connected before exiting) and receives the one fd
/// it sends.
fn receive_master(listener: &UnixListener) -> Result<File, StdioError> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let fail = |why: String| StdioError::Console(why);
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(fail(format!("the runtime sent no terminal: {e}"))),
        }
    };
    stream
        .set_nonblocking(false)
        .map_err(|e| fail(e.to_string()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| fail(e.to_string()))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 2]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| fail(format!("receiving the terminal: {e}")))?;
    let mut master = None;
    for c in msg.cmsgs().map_err(|e| fail(e.to_string()))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed this fd in our table for us alone.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if master.is_none() {
                    master = Some(File::from(owned));
                }
            }
        }
    }
    master.ok_or_else(|| fail("the runtime's message carried no file descriptor".into()))
}

/// Copies the stdin FIFO into the process (pipe or pty) until the client closes it. The open
/// waits for a writer here, on this thread, never in an RPC. `close_at_end`: end the
/// process's input at EOF (a pipe; a pty stays).
fn relay_stdin(
    name: &str,
    fifo: String,
    to: Arc<Mutex<Option<File>>>,
    relaying: Arc<AtomicBool>,
    close_at_end: bool,
) {
    relaying.store(true, Ordering::SeqCst);
    let done = relaying.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("stdin {name}"))
        .spawn(move || {
            // Whatever way it ends, CloseIO stops waiting for it.
            struct Done(Arc<AtomicBool>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::SeqCst);
                }
            }
            let _done = Done(done);
            if let Ok(mut from) = File::open(&fifo) {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    let n = match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let mut guard = to.lock().unwrap();
                    let Some(w) = guard.as_mut() else { return };
                    if w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
            if close_at_end {
                to.lock().unwrap().take();
            }
        });
    if spawned.is_err() {
        relaying.store(false, Ordering::SeqCst);
    }
}

/// Copies the pty master to the stdout FIFO until the terminal closes (EIO once every slave
/// fd is gone); then the FIFO's reader sees EOF.
fn relay_output(name: &str, mut from: File, mut to: File) {
    let _ = std::thread::Builder::new()
        .name(format!("stdout {name}"))
        .spawn(move || {
            // Ends at EIO (the terminal closed) or a write error; EINTR is retried.
            let _ = std::io::copy(&mut from, &mut to);
        });
}

impl Io {
    /// CloseIO: what closes stdin (used without holding the shim's container table: its
    /// wait must not hold up other calls). The process sees the end of its input after what
    /// the client wrote before asking (ctr closes its end of the FIFO, then calls CloseIO):
    /// the relay gets a moment to drain the FIFO, as runc's shim closes only its own end and
    /// lets the copy finish. A client that keeps the FIFO open is not waited for long.
    pub fn stdin_closer(&self) -> StdinCloser {
        StdinCloser {
            stdin: self.stdin.clone(),
            relaying: self.relaying.clone(),
        }
    }
}

/// Closes a process's stdin once its relay has drained (or after half a second).
pub struct StdinCloser {
    stdin: Arc<Mutex<Option<File>>>,
    relaying: Arc<AtomicBool>,
}

impl StdinCloser {
    pub fn close(self) {
        let deadline = Instant::now() + Duration::from_millis(500);
        while self.relaying.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.stdin.lock().unwrap().take();
    }
}

impl Io {
    /// ResizePty.
    pub fn resize(&self, width: u32, height: u32) -> Result<(), String> {
        let Some(master) = &self.console else {
            return Err("the process has no terminal".into());
        };
        let ws = libc::winsize {
            ws_row: height.min(u16::MAX as u32) as u16,
            ws_col: width.min(u16::MAX as u32) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call; the
        // fd is the pty master we own.
        let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if r < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        Ok(())
    }

    /// Once the process is gone: a logger gets a moment to drain, then is stopped.
    pub fn release(&mut self) {
        // The process is gone: nothing is waited for.
        self.stdin.lock().unwrap().take();
        if let Some(pid) = self.logger.take() {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && nix::sys::signal::kill(pid, None).is_ok() {
                // A zombie is reaped by the shim's reaper: /proc says whether it still runs.
                if std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| {
                        s.rsplit(')')
                            .next()
                            .unwrap_or("")
                            .trim_start()
                            .starts_with('Z')
                    })
                    .unwrap_or(true)
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_unescapes_like_go() {
        assert_eq!(unescape("a%20b+c"), "a b c");
        assert_eq!(unescape("100%"), "100%");
        assert_eq!(unescape("%zz"), "%zz");
    }

    #[test]
    fn bad_uris_are_refused() {
        for uri in ["file://relative/log", "ftp:///x", "binary://relative"] {
            let p = Paths {
                stdout: uri.into(),
                ..Paths::default()
            };
            assert!(
                matches!(
                    prepare(&p, "c", "ns"),
                    Err(StdioError::BadUri(_) | StdioError::Logger { .. })
                ),
                "{uri}"
            );
        }
    }

    #[test]
    fn fifo_output_opens_without_a_reader() {
        let dir = std::env::temp_dir().join(format!("wharf-shim-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("out");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Would block forever (or fail ENXIO non-blocking) if opened write-only.
        let mut f = open_output("stdout", fifo.to_str().unwrap()).unwrap();
        f.write_all(b"no reader, no EPIPE\n").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_uri_makes_its_directory() {
        let dir = std::env::temp_dir().join(format!("wharf-shim-log-{}", std::process::id()));
        let log = dir.join("a/b/log");
        let p = Paths {
            stdout: format!("file://{}", log.display()),
            stderr: format!("file://{}", log.display()),
            ..Paths::default()
        };
        let prepared = prepare(&p, "c", "ns").unwrap();
        assert!(log.is_file());
        drop(prepared);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
