//! The few filesystem and process calls that differ between Unix and Windows.
//!
//! Everything here acts on a directory handle plus a single file name, never on a joined path,
//! so callers keep untrusted names contained. Linux-only container code (namespaces, cgroups,
//! mounts) lives in `backend::native`, not here.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// Read a text file a user named (a compose file, an env file), refusing what is not a
/// regular file (a FIFO would block, `/dev/zero` never ends) and anything over `cap` bytes.
pub fn read_text_file(path: &std::path::Path, cap: u64) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading waits for a writer: not with O_NONBLOCK (which changes
    // nothing for a regular file).
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {cap} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Special files a layer can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Fifo,
    Char,
    Block,
}

/// A device node of the host's, as `--device` copies it into a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceNode {
    /// Char or Block.
    pub kind: NodeKind,
    pub major: u32,
    pub minor: u32,
    /// Permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Whether a write must reach the disk before it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced before the rename: the file survives a crash whole or not at all (the image
    /// store, network and volume definitions).
    Synced,
    /// Renamed without a sync: whole or not at all to every process, not across a crash
    /// (state rebuilt from processes anyway: container records, runtime state).
    Unsynced,
}

/// This program's executable, to start another wharf from: `std::env::current_exe`, or,
/// for a wharf running from a sealed memfd copy (a build), `/proc/self/exe`, which still
/// reaches it when the path it names does not exist.
pub fn own_exe() -> std::io::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    if cfg!(target_os = "linux") && !exe.exists() {
        return Ok(std::path::PathBuf::from("/proc/self/exe"));
    }
    Ok(exe)
}

/// Write `bytes` to `dest` whole or not at all: a temporary file in `tmp_dir` (on the same
/// file system; `dest`'s own directory when `None`), synced if asked, renamed over `dest`
/// (retrying the moment Windows refuses to replace a file being read). The temporary file
/// is gone whatever happens.
pub fn write_atomic(
    tmp_dir: Option<&std::path::Path>,
    dest: &std::path::Path,
    bytes: &[u8],
    durability: Durability,
) -> std::io::Result<()> {
    let dir = match tmp_dir {
        Some(d) => d,
        None => dest.parent().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "a file needs a directory")
        })?,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".write-")
        .tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    if durability == Durability::Synced {
        tmp.as_file().sync_all()?;
    }
    // `persist` renames (on Windows also clearing the temporary-file attribute); a failed
    // attempt hands the file back, to try again or to be removed when dropped.
    let mut pending = Some(tmp);
    retry_transient(|| {
        let tmp = pending
            .take()
            .expect("the temporary file is handed back on failure");
        tmp.persist(dest).map(drop).map_err(|e| {
            pending = Some(e.file);
            e.error
        })
    })
}

/// Write `bytes` to `path` (a temporary file beside it, renamed into place) and record the
/// identity of the file written beside it (`path` with the extension `id`), so that
/// [`is_recorded`] later recognises that very file and nothing else: a replaced or
/// rewritten file has another inode or change time. For wharf's caches of code it runs.
pub fn write_recorded(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a cache file has a directory");
    std::fs::create_dir_all(dir)?;
    write_atomic(None, path, bytes, Durability::Synced)?;
    let identity = file_identity(&std::fs::metadata(path)?);
    let identity = serde_json::to_vec(&identity)?;
    write_atomic(
        None,
        &path.with_extension("id"),
        &identity,
        Durability::Unsynced,
    )
}

/// Whether `path` is the file [`write_recorded`] wrote (and nobody changed since). Where
/// files have no identity (Windows) its presence is taken, as there is no cheaper check.
pub fn is_recorded(path: &std::path::Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let identity = file_identity(&meta);
    if identity.is_empty() {
        return true;
    }
    std::fs::read(path.with_extension("id"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<i64>>(&b).ok())
        .is_some_and(|recorded| recorded == identity)
}

/// How many threads this process runs (1 where it cannot be told). A process joining
/// namespaces or cloning a container must still be single-threaded.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}
