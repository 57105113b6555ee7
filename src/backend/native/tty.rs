//! `-t`: wharf relays between its own stdio and the container's pseudo-terminal, with its
//! terminal (if it has one) in raw mode for the duration and restored after.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::thread::JoinHandle;

use nix::sys::termios::{self, SetArg, Termios};

/// The running relay.
pub struct Relay {
    output: JoinHandle<()>,
    saved: Option<Termios>,
}

impl Relay {
    /// Start copying the pty's output to stdout, and (with `interactive`) stdin to the pty.
    pub fn start(master: OwnedFd, interactive: bool) -> Relay {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
            // The container's terminal starts at our size.
            let mut size: libc::winsize = zero_winsize();
            // SAFETY: TIOCGWINSZ/TIOCSWINSZ read or write one winsize we own.
            unsafe {
                if libc::ioctl(0, libc::TIOCGWINSZ, &mut size) == 0 {
                    libc::ioctl(
                        std::os::fd::AsRawFd::as_raw_fd(&master),
                        libc::TIOCSWINSZ,
                        &size,
                    );
                }
            }
        }
        let mut reader = std::fs::File::from(master.try_clone().expect("dup of the pty master"));
        let output = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut out = std::io::stdout();
            // EIO once the last slave descriptor closes: the container is gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
        });
        if interactive {
            let mut writer = std::fs::File::from(master);
            // Detached: it ends with the process (a read from our stdin cannot be interrupted).
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin(), &mut writer);
            });
        }
        Relay { output, saved }
    }

    /// Wait for the last output and restore the terminal.
    pub fn finish(self) {
        let _ = self.output.join();
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
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
