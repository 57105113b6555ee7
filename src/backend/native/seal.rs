//! An executable that a container cannot rewrite (CVE-2019-5736). Every process that starts
//! a program inside a container (a container's first process, `exec`, a health check) is
//! cloned or forked from wharf, so until its exec that program's `/proc/self/exe` is wharf's
//! own binary: an entrypoint whose interpreter is `#!/proc/self/exe` runs wharf inside the
//! container, where a process watching `/proc` can keep a descriptor to it and reopen it for
//! writing once it ends. So wharf runs from a file nobody can write before it starts
//! anything inside a container ([`ensure_sealed`]), and the native backend refuses to start
//! one otherwise ([`require_protected`]).
//!
//! Sealing does not copy the binary: it is opened through a private, detached, read-only
//! overlayfs mount of its directory (runc 1.2's way), so `/proc/PID/exe` of the process
//! points into a filesystem that refuses writes. Costs a few syscalls where a sealed memfd
//! copy of the 46 MB `wharf` costs ~17 ms per container. Needs the new mount API (Linux
//! 5.2+) and CAP_SYS_ADMIN; without them (rootless) a binary this user cannot write needs no
//! seal, and one it can write is run from pentacle's sealed memfd copy.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(r: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(r)? as RawFd;
    // SAFETY: the syscall just returned this new descriptor, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cstr(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in a path"))
}

/// overlayfs' lowerdir syntax: `:` and `,` separate, `\` escapes.
fn escape(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in dir.as_os_str().as_bytes() {
        if matches!(b, b':' | b',' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// An `O_PATH` descriptor of the executable `exe`, through a read-only overlay of its
/// directory that is mounted nowhere (only this descriptor reaches it). Exec it as
/// `/proc/self/fd/N`.
pub fn sealed_exe(exe: &Path) -> io::Result<OwnedFd> {
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file path",
        ));
    };
    // Overlayfs mounts read-only ("lower-only") with two lower layers: the binary's
    // directory on top, an empty one under it.
    let empty = std::env::temp_dir().join(format!(
        "wharf-seal-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir(&empty)?;
    let mounted = mount_lower_only(dir, &empty);
    let _ = std::fs::remove_dir(&empty);
    let mnt = mounted?;
    let name = cstr(name.as_bytes())?;
    // SAFETY: openat with a descriptor we own, a NUL-terminated name and plain flags.
    let fd = unsafe {
        libc::openat(
            mnt.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    owned(fd as libc::c_long)
}

fn mount_lower_only(top: &Path, bottom: &Path) -> io::Result<OwnedFd> {
    let overlay = cstr(b"overlay")?;
    // SAFETY: fsopen reads a NUL-terminated filesystem name; returns a new descriptor.
    let fs = owned(unsafe { libc::syscall(libc::SYS_fsopen, overlay.as_ptr(), FSOPEN_CLOEXEC) })?;
    let mut lower = escape(top);
    lower.push(b':');
    lower.extend(escape(bottom));
    let (key, value) = (cstr(b"lowerdir")?, cstr(&lower)?);
    // SAFETY: fsconfig on our fs context with NUL-terminated key and value, which outlive
    // the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    })?;
    // SAFETY: the create command takes no key or value.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: fsmount on our configured context; returns a new descriptor of a detached
    // mount.
    owned(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        )
    })
}

/// Whether this process runs from a file nobody can write through `/proc/self/exe`: on a
/// read-only mount (the overlay above), or a sealed memfd (pentacle's copy).
pub fn running_sealed() -> bool {
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        || pentacle::is_sealed()
}

/// Whether no container this process starts could rewrite its executable: it runs sealed,
/// or (not root) from a file another user owns and this one cannot write. A rootless
/// container's users are this user and its subordinate ids, with capabilities only over
/// files their user namespace maps, so they cannot write (or chmod) it either. Root can
/// write any file, whatever its mode: for root only a seal counts. (`ETXTBSY` is no
/// protection: the file is writable again once the last process running it ends.)
pub fn is_protected() -> bool {
    if running_sealed() {
        return true;
    }
    let me = nix::unistd::geteuid();
    if me.is_root() {
        return false;
    }
    let owned_by_me = std::fs::metadata("/proc/self/exe")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == me.as_raw())
        .unwrap_or(true);
    !owned_by_me
        && matches!(
            nix::unistd::faccessat(
                nix::fcntl::AT_FDCWD,
                "/proc/self/exe",
                nix::unistd::AccessFlags::W_OK,
                nix::fcntl::AtFlags::AT_EACCESS,
            ),
            Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM | nix::errno::Errno::EROFS)
        )
}

/// Refuse to start anything inside a container from an executable a container could
/// rewrite (see [`is_protected`]): the caller must [`ensure_sealed`] first.
pub fn require_protected() -> Result<(), super::NativeError> {
    if is_protected() {
        Ok(())
    } else {
        Err(super::NativeError::Unsealed)
    }
}

/// Marks a process started by [`exec_sealed`] through the overlay: should it not see itself
/// sealed (an unexpected mount), [`ensure_sealed`] falls back to the memfd copy instead of
/// re-executing in a loop.
const GUARD: &str = "_WHARF_SEALED_EXEC";

/// Replaces this process with `exe` (argv `arg0`, `args`), sealed: through [`sealed_exe`],
/// else from pentacle's sealed memfd copy of it. Returns only why it could not.
pub fn exec_sealed(
    exe: &Path,
    arg0: &std::ffi::OsStr,
    args: impl IntoIterator<Item = std::ffi::OsString> + Clone,
) -> io::Error {
    if let Ok(fd) = sealed_exe(exe) {
        let e = std::process::Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .arg0(arg0)
            .args(args.clone())
            .env(GUARD, "1")
            .exec();
        tracing::debug!(error = %e, "executing through the overlay seal");
    }
    let mut file = match std::fs::File::open(exe) {
        Ok(f) => f,
        Err(e) => return e,
    };
    match pentacle::SealedCommand::new(&mut file) {
        Ok(mut cmd) => {
            cmd.arg0(arg0).args(args);
            cmd.exec()
        }
        Err(e) => io::Error::other(format!("sealing a copy: {e}")),
    }
}

/// Before anything enters a container: make sure this process runs from an executable no
/// container can rewrite ([`is_protected`]), re-executing itself (same arguments, same name)
/// through [`exec_sealed`] if not. Returns only once protected. Call it while
/// single-threaded, before anything was done that must not be done twice.
pub fn ensure_sealed() -> io::Result<()> {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    ensure_sealed_as(args)
}

/// [`ensure_sealed`], re-executing with `args` (after the program name) instead of this
/// process's own arguments: a process that has done part of its work goes on with the rest.
pub fn ensure_sealed_as(args: Vec<std::ffi::OsString>) -> io::Result<()> {
    let retried = std::env::var_os(GUARD).is_some();
    if retried {
        // SAFETY: called while single-threaded (documented above), so no other thread
        // reads the environment.
        unsafe { std::env::remove_var(GUARD) };
    }
    if is_protected() {
        return Ok(());
    }
    let arg0 = std::env::args_os().next().unwrap_or_default();
    if !retried && let Ok(exe) = std::env::current_exe() {
        let e = exec_sealed(&exe, &arg0, args.clone());
        tracing::debug!(error = %e, "re-executing sealed");
    }
    // A sealed copy of what runs now: /proc/self/exe still reaches a binary replaced or
    // removed since it started.
    let mut file = std::fs::File::open("/proc/self/exe")?;
    match pentacle::SealedCommand::new(&mut file) {
        Ok(mut cmd) => {
            cmd.arg0(arg0).args(args);
            Err(cmd.exec())
        }
        Err(e) => Err(io::Error::other(format!("sealing a copy: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdir_separators_are_escaped() {
        assert_eq!(escape(Path::new("/a:b,c\\d")), b"/a\\:b\\,c\\\\d".to_vec());
    }

    #[test]
    fn the_sealed_executable_cannot_be_written() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("prog");
        std::fs::write(&exe, b"#!/bin/sh\n").unwrap();
        let fd = sealed_exe(&exe).expect("the overlay seal works on this host");
        let via = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&via)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        assert_eq!(std::fs::read(&via).unwrap(), b"#!/bin/sh\n");
        // The directory it came from keeps no mount and no stray temporary directory.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&*dir.path().to_string_lossy()));
    }
}
