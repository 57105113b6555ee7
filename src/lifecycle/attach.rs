//! `wharf attach`'s way into a detached `-i` container's standard input: its monitor holds
//! the supervisor's stdin and serves it on a Unix socket in the container's directory
//! ([`SOCKET`], root's alone) for as long as the run lasts; what an attached client writes
//! there reaches the container. A client that goes away closes nothing (as Docker's attach
//! to a detached container, stdin stays open for the next); the run's end closes the socket.
//!
//! Detach keys (Docker's `ctrl-p,ctrl-q` unless `--detach-keys` says otherwise) are read
//! on the client's side, for a container with a terminal, as Docker reads them
//! ([`Escape`]).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The socket's name in the container's directory.
pub const SOCKET: &str = "attach.sock";

/// Docker's default detach keys.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// A run's standard input, served to attaching clients; closed (and the socket removed)
/// when dropped. One thread owns the stdin pipe and writes what the connections hand it
/// (no lock is held across a write that may block on a container not reading).
pub struct StdinRelay {
    #[cfg_attr(not(unix), allow(dead_code))]
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    /// Unix: the socket is being served.
    #[cfg_attr(not(unix), allow(dead_code))]
    serving: bool,
}

/// How long the writer waits for input before it looks whether the run ended.
const POLL: std::time::Duration = std::time::Duration::from_millis(200);

impl StdinRelay {
    /// Serve `stdin` at [`SOCKET`] in `dir`. If the socket cannot be made, stdin is still
    /// held open (the container runs as before; `attach` then says it cannot reach it).
    pub fn serve(dir: &Path, stdin: std::process::ChildStdin) -> StdinRelay {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        {
            let stop = stop.clone();
            let mut stdin = stdin;
            let _ = std::thread::Builder::new()
                .name("attach-write".into())
                .stack_size(64 << 10)
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match rx.recv_timeout(POLL) {
                            Ok(chunk) => {
                                if stdin
                                    .write_all(&chunk)
                                    .and_then(|()| stdin.flush())
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                });
        }
        #[cfg(unix)]
        let serving = match crate::sys::bind_socket(dir, SOCKET) {
            Ok(listener) => {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name("attach".into())
                    .stack_size(64 << 10)
                    .spawn(move || accept(listener, tx, stop))
                    .is_ok()
            }
            Err(e) => {
                tracing::warn!(error = %e, "serving the container's stdin to attach");
                false
            }
        };
        #[cfg(not(unix))]
        let serving = {
            drop(tx);
            false
        };
        StdinRelay {
            dir: dir.to_path_buf(),
            stop,
            serving,
        }
    }
}

#[cfg(unix)]
fn accept(
    listener: std::os::unix::net::UnixListener,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    stop: Arc<AtomicBool>,
) {
    use std::io::Read;
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut conn) = conn else {
            // Out of descriptors, say: not a reason to spin.
            std::thread::sleep(POLL);
            continue;
        };
        let (tx, stop) = (tx.clone(), stop.clone());
        let _ = std::thread::Builder::new()
            .name("attach-in".into())
            .stack_size(64 << 10)
            .spawn(move || {
                let mut buf = [0u8; 8192];
                while !stop.load(Ordering::SeqCst) {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if tx.send(buf[..n].to_vec()).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
    }
}

impl Drop for StdinRelay {
    fn drop(&mut self) {
        // The writer ends (closing the container's stdin) at its next look; nothing here
        // waits for a thread that could be stuck.
        self.stop.store(true, Ordering::SeqCst);
        #[cfg(unix)]
        if self.serving {
            // Wake the accepting thread, which then sees `stop` (if this fails, it stays
            // blocked on a socket no one can reach any more, and ends with the monitor).
            let _ = crate::sys::connect_socket(&self.dir, SOCKET);
            let _ = std::fs::remove_file(self.dir.join(SOCKET));
        }
    }
}

/// A connection to container directory `dir`'s stdin (see [`StdinRelay`]).
pub fn connect(dir: &Path) -> io::Result<Box<dyn Write + Send>> {
    #[cfg(unix)]
    {
        Ok(Box::new(crate::sys::connect_socket(dir, SOCKET)?))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "attaching to a container's stdin needs a Linux host",
        ))
    }
}

/// Docker's `--detach-keys` spelling: keys separated by commas, each a single character or
/// `ctrl-X` (X a letter or one of `@[\]^_`).
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let bad = |k: &str| {
        format!("invalid detach key {k:?}: expected a character or ctrl-<a-z, @, [, \\, ], ^, _>")
    };
    spec.split(',')
        .map(|k| {
            if let Some(c) = k.strip_prefix("ctrl-") {
                match c.as_bytes() {
                    [b @ b'a'..=b'z'] => Ok(b - b'a' + 1),
                    [b @ b'A'..=b'Z'] => Ok(b - b'A' + 1),
                    [b'@'] => Ok(0),
                    [b @ (b'[' | b'\\' | b']' | b'^' | b'_')] => Ok(b - b'@'),
                    _ => Err(bad(k)),
                }
            } else {
                match k.as_bytes() {
                    [b] if b.is_ascii() => Ok(*b),
                    _ => Err(bad(k)),
                }
            }
        })
        .collect()
}

/// Finds the detach sequence in what a client types: bytes that may begin it are held
/// back until it is complete (detach: they are dropped) or broken (they are passed on).
#[derive(Debug, Clone)]
pub struct Escape {
    keys: Vec<u8>,
    matched: usize,
}

impl Escape {
    pub fn new(keys: Vec<u8>) -> Escape {
        Escape { keys, matched: 0 }
    }

    /// Feed `input`; what is to reach the container is appended to `out`. True once the
    /// whole sequence was typed (what follows it is not passed on).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
                continue;
            }
            // Broken: what was held goes on, and this byte may begin the sequence anew.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_are_read_as_docker_spells_them() {
        assert_eq!(
            parse_detach_keys(DEFAULT_DETACH_KEYS).unwrap(),
            [0x10, 0x11]
        );
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-\\,x").unwrap(),
            [0, 0x1c, b'x']
        );
        assert_eq!(parse_detach_keys("ctrl-A").unwrap(), [1]);
        for bad in ["ctrl-", "ctrl-1", "ab", "", "ctrl-p,"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_sequence_is_found_across_reads_and_held_back_until_broken() {
        let mut e = Escape::new(vec![0x10, 0x11]);
        let mut out = Vec::new();
        assert!(!e.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab", "a possible start is held");
        assert!(!e.feed(b"c", &mut out));
        assert_eq!(out, b"ab\x10c", "broken: passed on");
        assert!(!e.feed(b"\x10\x10", &mut out));
        assert_eq!(out, b"ab\x10c\x10", "a repeated first key starts again");
        assert!(e.feed(b"\x11rest", &mut out));
        assert_eq!(
            out, b"ab\x10c\x10",
            "the sequence and what follows are not passed"
        );
        let mut none = Escape::new(Vec::new());
        let mut out = Vec::new();
        assert!(!none.feed(b"\x10\x11", &mut out));
        assert_eq!(out, b"\x10\x11");
    }
}
