//! `-t`: wharf relays between its own stdio and the container's pseudo-terminal, with its
//! terminal (if it has one) in raw mode for the duration and restored after. The relay is a
//! `poll` loop on the waiting thread, never a thread of its own: `wharf exec` has joined the
//! container's pid namespace by then, and the kernel refuses a new thread to a process whose
//! children would be born in another pid namespace (EINVAL).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, SetArg, Termios};

/// A relay between this process's stdio and a pty master, set up by [`Relay::start`] and
/// driven by [`Relay::finish`].
pub struct Relay {
    master: OwnedFd,
    interactive: bool,
    saved: Option<Termios>,
    size: Option<libc::winsize>,
}

impl Relay {
    /// Put our terminal (if stdin is one) in raw mode and give the container's terminal our
    /// size; `interactive` also copies stdin to the pty.
    pub fn start(master: OwnedFd, interactive: bool) -> Relay {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        // Non-blocking: a program that neither reads its input nor lets its output drain must
        // not stall the other direction.
        let _ = nix::fcntl::fcntl(
            &master,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let mut relay = Relay {
            master,
            interactive,
            saved,
            size: None,
        };
        relay.copy_size();
        relay
    }

    /// Give the container's terminal our terminal's size, if it changed (at start, and after
    /// a SIGWINCH interrupts the loop).
    fn copy_size(&mut self) {
        if self.saved.is_none() {
            return;
        }
        let Some(size) = stdin_size() else {
            return;
        };
        let changed = self.size.is_none_or(|s| {
            (s.ws_row, s.ws_col, s.ws_xpixel, s.ws_ypixel)
                != (size.ws_row, size.ws_col, size.ws_xpixel, size.ws_ypixel)
        });
        if changed {
            set_size(&self.master, &size);
            self.size = Some(size);
        }
    }

    /// Copy until `child` ends (what it wrote is drained first; a process it left behind
    /// holding the terminal does not keep wharf waiting, as with Docker) or the container's
    /// side of the terminal is closed by every process that had it (the master then reads
    /// EIO), then restore our terminal.
    pub fn finish(mut self, child: nix::unistd::Pid) {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0) };
        let ended = (raw >= 0).then(|| {
            // SAFETY: the kernel just returned this descriptor; nothing else owns it.
            unsafe { OwnedFd::from_raw_fd(raw as i32) }
        });
        let mut buf = [0u8; 8192];
        // Input read from stdin not yet taken by the pty.
        let mut pending: Vec<u8> = Vec::new();
        let mut stdin_open = self.interactive;
        loop {
            let want_out = if pending.is_empty() {
                PollFlags::POLLIN
            } else {
                PollFlags::POLLIN | PollFlags::POLLOUT
            };
            let stdin = std::io::stdin();
            let mut fds = vec![PollFd::new(self.master.as_fd(), want_out)];
            if let Some(pidfd) = &ended {
                fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
            }
            let stdin_at = fds.len();
            if stdin_open && pending.is_empty() {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(Errno::EINTR) => {
                    self.copy_size();
                    continue;
                }
                Err(_) => break,
                Ok(_) => {}
            }
            let master_ready = fds[0].revents().unwrap_or(PollFlags::empty());
            let child_ended = ended.is_some()
                && fds[1]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLIN));
            let stdin_ready = fds
                .get(stdin_at)
                .and_then(|f| f.revents())
                .unwrap_or(PollFlags::empty());
            drop(fds);
            if child_ended {
                self.drain(&mut buf);
                break;
            }
            if master_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                && self.copy_output(&mut buf) == Output::Closed
            {
                break;
            }
            if master_ready.contains(PollFlags::POLLOUT) && !pending.is_empty() {
                match nix::unistd::write(&self.master, &pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    Err(_) => {
                        pending.clear();
                        stdin_open = false;
                    }
                }
            }
            if stdin_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                match nix::unistd::read(stdin.as_fd(), &mut buf) {
                    Ok(0) | Err(Errno::EBADF | Errno::EIO) => stdin_open = false,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
            }
        }
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }

    /// Copy one read of the terminal's output to stdout.
    fn copy_output(&self, buf: &mut [u8]) -> Output {
        match nix::unistd::read(&self.master, buf) {
            Ok(0) => Output::Closed,
            Ok(n) => {
                let mut out = std::io::stdout().lock();
                match out.write_all(&buf[..n]).and_then(|()| out.flush()) {
                    Ok(()) => Output::Copied,
                    Err(_) => Output::Closed,
                }
            }
            Err(Errno::EAGAIN | Errno::EINTR) => Output::Empty,
            Err(_) => Output::Closed,
        }
    }

    /// Copy what the terminal still holds to stdout, without waiting for more.
    fn drain(&self, buf: &mut [u8]) {
        while self.copy_output(buf) == Output::Copied {}
    }
}

/// What one read of the terminal's output did.
#[derive(PartialEq)]
enum Output {
    Copied,
    /// Nothing to read now (the master is non-blocking).
    Empty,
    /// The container's side closed (EOF, or EIO once its last descriptor is gone), or our
    /// stdout is gone.
    Closed,
}

/// Give a new terminal our stdin's window size (if stdin is a terminal) before the program
/// starts on it: a program that asks at once (`stty size`, an editor drawing its first
/// screen) sees our size, not 0x0 waiting for the relay to catch up.
pub fn inherit_size(slave: &OwnedFd) {
    if let Some(size) = stdin_size() {
        set_size(slave, &size);
    }
}

/// Our stdin's window size, if stdin is a terminal.
fn stdin_size() -> Option<libc::winsize> {
    let mut size = zero_winsize();
    // SAFETY: TIOCGWINSZ writes one winsize, which we own, for the duration of the call.
    (unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut size) } == 0).then_some(size)
}

/// Give the terminal `fd` (either side) window size `size`.
fn set_size(fd: &OwnedFd, size: &libc::winsize) {
    // SAFETY: TIOCSWINSZ reads one winsize, which outlives the call.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size) };
}

fn zero_winsize() -> libc::winsize {
    libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A connected pair of Unix sockets (close-on-exec) to pass the terminal's master side.
pub fn socketpair() -> nix::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType};
    nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Open a pseudo-terminal from `/dev/ptmx` as the current mount namespace sees it (inside
/// the container: its own devpts instance). Returns (master, slave).
pub fn open_inside() -> nix::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: posix_openpt returned an owned descriptor; PtyMaster only wraps it.
    let master = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
    Ok((master, slave))
}

/// Send `fd` over `socket` (SCM_RIGHTS).
pub fn send_fd(socket: &OwnedFd, fd: &OwnedFd) -> nix::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"t")];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receive a descriptor sent with [`send_fd`]; `None` if the other side closed first.
pub fn receive_fd(socket: &OwnedFd) -> Option<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.ok()?,
        }
    };
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor for us (SCM_RIGHTS).
            return Some(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    None
}
