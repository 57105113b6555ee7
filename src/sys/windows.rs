use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use super::NodeKind;

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not supported on Windows"),
    )
}

/// Directories carry no Unix metadata on Windows; this only checks the directory opens.
pub fn open_dir_for_metadata(parent: &Dir, name: &OsStr) -> io::Result<Dir> {
    parent.open_dir(Path::new(name))
}

/// Windows has no uid 0; wharf never needs elevation there.
pub fn is_root() -> bool {
    false
}

/// Create a relative symlink (absolute targets only make sense inside a Linux root).
pub fn symlink(parent: &Dir, name: &OsStr, target: &OsStr) -> io::Result<()> {
    parent.symlink_file(Path::new(target), Path::new(name))
}

pub fn read_link(parent: &Dir, name: &OsStr) -> io::Result<PathBuf> {
    parent.read_link(Path::new(name))
}

pub fn mknod(_: &Dir, _: &OsStr, _: NodeKind, _: u32, _: u32, _: u32) -> io::Result<()> {
    Err(unsupported("creating special files"))
}

pub fn whiteout(_: &Dir, _: &OsStr) -> io::Result<()> {
    Err(unsupported("overlay whiteouts"))
}

pub fn set_opaque(_: &Dir) -> io::Result<()> {
    Err(unsupported("overlay opaque directories"))
}

pub fn is_opaque(_: &Dir) -> bool {
    false
}

pub fn is_whiteout(_: &cap_std::fs::Metadata) -> bool {
    false
}

pub fn lchown(_: &Dir, _: &OsStr, _: u32, _: u32) -> io::Result<()> {
    Ok(())
}

pub fn fchown<T>(_: T, _: u32, _: u32) -> io::Result<()> {
    Ok(())
}

pub fn fchmod<T>(_: T, _: u32) -> io::Result<()> {
    Ok(())
}

pub fn set_mtime_nofollow(_: &Dir, _: &OsStr, _: i64) -> io::Result<()> {
    Ok(())
}

pub fn set_mtime_fd<T>(_: T, _: i64) -> io::Result<()> {
    Ok(())
}

pub fn set_xattr<T>(_: T, _: &str, _: &[u8]) -> io::Result<()> {
    Ok(())
}

pub fn can_mknod() -> bool {
    false
}

/// Process identity and signals need a Unix host (container lifecycle is Unix-only for now).
pub fn process_start_time(_: i32) -> Option<u64> {
    None
}

pub fn send_signal(_: i32, _: i32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "signals need a Unix host",
    ))
}

pub fn parse_signal(name: &str) -> Option<i32> {
    match name.to_ascii_uppercase().trim_start_matches("SIG") {
        "TERM" | "15" => Some(SIGTERM),
        "KILL" | "9" => Some(SIGKILL),
        _ => None,
    }
}

pub const SIGTERM: i32 = 15;
pub const SIGKILL: i32 = 9;
pub const SIGSTOP: i32 = 19;
pub const SIGCONT: i32 = 18;

/// Ctrl-C ends the process on Windows (a server stops through tokio's handler).
pub fn catch_termination() {}

pub fn termination_requested() -> Option<i32> {
    None
}

pub fn die_of(sig: i32) -> ! {
    std::process::exit(128 + sig)
}

/// Free space and total size of the volume holding `dir` (not measured on Windows yet:
/// unpacking there is bounded by the size limits alone).
pub fn free_space(_: &Dir) -> Option<(u64, u64)> {
    None
}

/// What identifies a file's content without reading it: nothing on Windows, where every
/// time stamp can be set back by the file's owner; files given by path are hashed on every
/// run there (store blobs are named by their digest and need no identity).
pub fn file_identity(_: &std::fs::Metadata) -> Vec<i64> {
    Vec::new()
}
