use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps};

use super::NodeKind;

/// Open the directory `name` in `parent` (`.` for `parent` itself) with a descriptor that
/// metadata calls accept (cap-std's directory handles are `O_PATH`), never following a
/// symlink.
pub fn open_dir_for_metadata(parent: &Dir, name: &OsStr) -> io::Result<cap_std::fs::File> {
    use cap_std::fs::OpenOptionsExt;
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.read(true)
        .custom_flags((rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW).bits() as i32);
    parent.open_with(name, &opts)
}

/// Open the directory `name` in `parent` as a directory handle, failing if `name` is a
/// symlink now (a walk of a running container's files never re-enters a directory swapped
/// for `d -> .`, nor goes where a link points).
pub fn open_dir_nofollow(parent: &Dir, name: &OsStr) -> io::Result<Dir> {
    let f = open_dir_for_metadata(parent, name)?;
    Ok(Dir::from_std_file(f.into_std()))
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Create a symlink `name` in `parent` pointing at `target`, which is stored verbatim (it may be
/// absolute: it is only ever resolved inside a container's root).
pub fn symlink(parent: &Dir, name: &OsStr, target: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::symlinkat(target, parent.as_fd(), name)?)
}

/// Read the target of the symlink `name` in `parent`, verbatim (absolute targets included).
pub fn read_link(parent: &Dir, name: &OsStr) -> io::Result<PathBuf> {
    let target = rustix::fs::readlinkat(parent.as_fd(), name, Vec::new())?;
    Ok(PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(target.into_bytes()),
    ))
}

/// Create a fifo or device node `name` in `parent`.
pub fn mknod(
    parent: &Dir,
    name: &OsStr,
    kind: NodeKind,
    mode: u32,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    let file_type = match kind {
        NodeKind::Fifo => FileType::Fifo,
        NodeKind::Char => FileType::CharacterDevice,
        NodeKind::Block => FileType::BlockDevice,
    };
    let dev = rustix::fs::makedev(major, minor);
    Ok(rustix::fs::mknodat(
        parent.as_fd(),
        name,
        file_type,
        Mode::from_raw_mode(mode & 0o7777),
        dev,
    )?)
}

/// Create an overlayfs whiteout (a 0:0 character device) named `name` in `parent`.
pub fn whiteout(parent: &Dir, name: &OsStr) -> io::Result<()> {
    mknod(parent, name, NodeKind::Char, 0, 0, 0)
}

/// Mark `dir` opaque for overlayfs: lower layers' content of this directory is hidden.
pub fn set_opaque(dir: &Dir) -> io::Result<()> {
    set_xattr(readable(dir)?, "trusted.overlay.opaque", b"y")
}

/// Whether `dir` carries the overlayfs opaque mark.
pub fn is_opaque(dir: &Dir) -> bool {
    let mut buf = [0u8; 4];
    let Ok(fd) = readable(dir) else {
        return false;
    };
    matches!(rustix::fs::fgetxattr(&fd, "trusted.overlay.opaque", &mut buf), Ok(1) if buf[0] == b'y')
}

/// `dir` opened again for reading: cap-std opens directories `O_PATH`, on which the
/// extended-attribute calls fail (EBADF).
fn readable(dir: &Dir) -> io::Result<rustix::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::openat(
        dir.as_fd(),
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// The host's device node at `path` (a symlink followed, as Docker's `--device` does); an
/// error naming what it is if it is no character or block device.
pub fn device_node(path: &Path) -> io::Result<super::DeviceNode> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path)?;
    let kind = if meta.file_type().is_char_device() {
        NodeKind::Char
    } else if meta.file_type().is_block_device() {
        NodeKind::Block
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a character or block device",
        ));
    };
    let rdev = meta.rdev();
    Ok(super::DeviceNode {
        kind,
        major: rustix::fs::major(rdev),
        minor: rustix::fs::minor(rdev),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

/// Whether the metadata describes an overlayfs whiteout.
pub fn is_whiteout(meta: &cap_std::fs::Metadata) -> bool {
    use cap_std::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// chown `name` in `parent` without following a symlink.
pub fn lchown(parent: &Dir, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    let (uid, gid) = (
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(gid),
    );
    Ok(rustix::fs::chownat(
        parent.as_fd(),
        name,
        Some(uid),
        Some(gid),
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// chown an open file or directory.
pub fn fchown(fd: impl AsFd, uid: u32, gid: u32) -> io::Result<()> {
    let (uid, gid) = (
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(gid),
    );
    Ok(rustix::fs::fchown(fd, Some(uid), Some(gid))?)
}

/// chmod an open file or directory (never a symlink: those have no fd of their own here).
pub fn fchmod(fd: impl AsFd, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(fd, Mode::from_raw_mode(mode & 0o7777))?)
}

/// Set access and modification time of `name` in `parent` to `mtime` (seconds since the
/// epoch), without following a symlink.
pub fn set_mtime_nofollow(parent: &Dir, name: &OsStr, mtime: i64) -> io::Result<()> {
    let ts = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    Ok(rustix::fs::utimensat(
        parent.as_fd(),
        name,
        &times,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// Set modification time on an open file or directory.
pub fn set_mtime_fd(fd: impl AsFd, mtime: i64) -> io::Result<()> {
    let ts = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Ok(rustix::fs::futimens(
        fd,
        &Timestamps {
            last_access: ts,
            last_modification: ts,
        },
    )?)
}

/// Set an extended attribute on an open file or directory.
pub fn set_xattr(fd: impl AsFd, name: &str, value: &[u8]) -> io::Result<()> {
    Ok(rustix::fs::fsetxattr(
        fd,
        name,
        value,
        rustix::fs::XattrFlags::empty(),
    )?)
}

/// Whether special files (device nodes, overlay whiteouts) and ownership changes can be made.
pub fn can_mknod() -> bool {
    is_root()
}

/// The kernel's start time of process `pid` (clock ticks since boot), if it runs (a zombie
/// does not): with the pid, it names a process without confusing it with a later one that
/// reuses the pid.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after it
    // start at the last ')'.
    let mut rest = stat[stat.rfind(')')? + 2..].split(' ');
    if matches!(rest.next(), Some("Z" | "X")) {
        return None;
    }
    rest.nth(18)?.parse().ok()
}

/// Send signal `signal` to process `pid`.
pub fn send_signal(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A signal by name (`TERM`, `SIGTERM`, any case) or number.
pub fn parse_signal(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    Some(match bare {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "WINCH" => libc::SIGWINCH,
        _ => return None,
    })
}

pub const SIGINT: i32 = libc::SIGINT;
pub const SIGTERM: i32 = libc::SIGTERM;
pub const SIGKILL: i32 = libc::SIGKILL;
pub const SIGSTOP: i32 = libc::SIGSTOP;
pub const SIGCONT: i32 = libc::SIGCONT;

/// The termination signal (SIGTERM, SIGINT) this process received, if any.
static TERMINATION: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn note_termination(sig: libc::c_int) {
    TERMINATION.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// Record SIGTERM and SIGINT instead of dying of them: a wasm guest is then interrupted at
/// its next epoch check and reports 128+N.
pub fn catch_termination() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; the
        // sigaction struct is zeroed (empty mask, no flags) and then given the handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = note_termination as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The termination signal received since [`catch_termination`], if any.
pub fn termination_requested() -> Option<i32> {
    match TERMINATION.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}

/// End this process by signal `sig`, as if no handler had been installed.
pub fn die_of(sig: i32) -> ! {
    // SAFETY: restoring the default disposition and raising a signal take plain integers.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}

/// Free space for an unprivileged writer and total size of the filesystem holding `dir`.
pub fn free_space(dir: &Dir) -> Option<(u64, u64)> {
    let st = rustix::fs::fstatvfs(dir).ok()?;
    Some((
        st.f_bavail.saturating_mul(st.f_frsize),
        st.f_blocks.saturating_mul(st.f_frsize),
    ))
}

/// What identifies a file's content without reading it: device, inode, size, and the
/// modification and change times (the change time moves on every write and no user can
/// set it back).
pub fn file_identity(m: &std::fs::Metadata) -> Vec<i64> {
    use std::os::unix::fs::MetadataExt;
    vec![
        m.dev() as i64,
        m.ino() as i64,
        m.size() as i64,
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ]
}

/// Which file an open file is (device, inode), among the files of one directory, to tell a
/// renamed file from its successor.
pub fn file_id(f: &std::fs::File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    f.metadata().ok().map(|m| (m.dev(), m.ino()))
}

/// How many bits of user address space this process has (47 on x86_64, 39 to 48 on
/// arm64 depending on the kernel): from the top of its stack, which Linux places at the
/// top of the user address space.
pub fn address_space_bits() -> Option<u32> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let end = line.split_whitespace().next()?.split_once('-')?.1;
    let end = u64::from_str_radix(end, 16).ok()?;
    Some(64 - end.leading_zeros())
}

/// The descriptor a child gets its end of a pipe on (see [`pass_to_child`]).
const PASSED_FD: i32 = 3;

/// Make `fd` the child's descriptor [`PASSED_FD`] (inheritable) between fork and exec.
///
/// # Safety
/// Only async-signal-safe calls: for `pre_exec`.
unsafe fn install_passed_fd(fd: i32) -> io::Result<()> {
    // SAFETY: dup2/fcntl on descriptors this process owns.
    unsafe {
        if fd == PASSED_FD {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
        } else if libc::dup2(fd, PASSED_FD) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Give the child `cmd` starts the write end `w` of a pipe (its descriptor 3), named to it
/// by the environment variable `env`; the child takes it with [`inherited_from_env`]. Call
/// before [`detach`], which closes every other descriptor.
pub fn pass_to_child(cmd: &mut std::process::Command, w: &std::io::PipeWriter, env: &str) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let raw = w.as_raw_fd();
    cmd.env(env, PASSED_FD.to_string());
    // SAFETY: install_passed_fd makes only async-signal-safe calls.
    unsafe {
        cmd.pre_exec(move || install_passed_fd(raw));
    }
}

/// The pipe end our parent passed with [`pass_to_child`] under `env`, if it did and it is
/// open. Not passed on to our own children (close-on-exec).
pub fn inherited_from_env(env: &str) -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    let fd: i32 = std::env::var(env).ok()?.parse().ok()?;
    // SAFETY: fcntl F_GETFD only queries the descriptor's flags.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the descriptor was opened for us by our parent (the protocol above) and
    // nothing else in this process owns it; it is made close-on-exec before any spawn.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        Some(std::fs::File::from_raw_fd(fd))
    }
}

/// Start `cmd`'s child detached: a session of its own (no controlling terminal, no
/// hangup when ours closes), with no descriptor of ours but stdio and a passed pipe.
pub fn detach(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid and close_range are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::syscall(libc::SYS_close_range, PASSED_FD as u32 + 1, u32::MAX, 0);
            Ok(())
        });
    }
}

/// Run `f` (Unix has no transient sharing violations to wait out; see the Windows twin).
pub fn retry_transient<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    f()
}

/// Make `cmd`'s child die with this process (SIGKILL when we die), with the default
/// disposition of the signals a monitor ignores.
pub fn tie_to_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let me = std::process::id() as i32;
    // SAFETY: prctl, getppid, _exit and signal are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // We died before the signal was armed.
            if libc::getppid() != me {
                libc::_exit(137);
            }
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        });
    }
}

/// What keeps a started child tied to us ([`tie_to_parent`] did it all on Unix).
pub struct Tie;

/// Tie a started child to this process (nothing more to do on Unix).
pub fn tie_spawned(_: &std::process::Child) -> io::Result<Tie> {
    Ok(Tie)
}

/// Ignore the hangup and interrupt a terminal sends: for a process that outlives its
/// starter.
pub fn ignore_hangup() {
    // SAFETY: ignoring SIGHUP and SIGINT (no handler code runs).
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// A child's exit status as a shell reports it: its code, or 128 + the signal that ended it.
pub fn exit_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => 255,
    }
}

/// The open-files limit a native container starts with (soft = hard), as Podman gives its
/// containers: 1048576 when wharf may raise its limits (CAP_SYS_RESOURCE, as root has), or
/// this process's hard limit when that is higher (never above the kernel's `fs.nr_open`);
/// otherwise this process's own hard limit (it cannot be raised). runc's default spec says
/// 1024, which makes servers such as redis cut their client count; a program that needs
/// the old `select()` bound lowers its soft limit itself.
pub fn container_nofile() -> u64 {
    const DEFAULT: u64 = 1 << 20;
    const CAP_SYS_RESOURCE: u32 = 24;
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    let may_raise = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|eff| eff & (1 << CAP_SYS_RESOURCE) != 0);
    if !may_raise {
        return hard;
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT);
    DEFAULT.max(hard).min(nr_open)
}

/// The path of `name` in `dir` through a descriptor of `dir` (`/proc/self/fd/N/name`): a
/// Unix socket's address holds 108 bytes, and a wharf root's container directory may be
/// longer. The descriptor is returned with it and must outlive the path's use.
fn socket_path(dir: &Path, name: &str) -> io::Result<(std::fs::File, PathBuf)> {
    use std::os::fd::AsRawFd;
    let d = std::fs::File::open(dir)?;
    let at = PathBuf::from(format!("/proc/self/fd/{}/{name}", d.as_raw_fd()));
    Ok((d, at))
}

/// A Unix socket `name` in `dir` (one left by an earlier, killed listener is replaced),
/// usable by its owner alone (mode 0600).
pub fn bind_socket(dir: &Path, name: &str) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let (_d, at) = socket_path(dir, name)?;
    match std::fs::remove_file(&at) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(&at)?;
    std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// A connection to the Unix socket `name` in `dir`.
pub fn connect_socket(dir: &Path, name: &str) -> io::Result<std::os::unix::net::UnixStream> {
    let (_d, at) = socket_path(dir, name)?;
    std::os::unix::net::UnixStream::connect(at)
}

/// This process's terminal (its stdin) in raw mode, restored when dropped.
pub struct RawTerminal(libc::termios);

/// Put stdin's terminal in raw mode (keys reach us one by one, unechoed, Ctrl-C a byte);
/// `None` if stdin is no terminal.
pub fn raw_terminal() -> Option<RawTerminal> {
    // SAFETY: tcgetattr fills the zeroed termios this function owns; cfmakeraw and tcsetattr
    // only read and write it, on descriptor 0.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return None;
        }
        let saved = t;
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
            return None;
        }
        Some(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the settings read from descriptor 0 by raw_terminal.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
    }
}
