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

/// Write `bytes` to `path` (a temporary file beside it, renamed into place) and record the
/// identity of the file written beside it (`path` with the extension `id`), so that
/// [`is_recorded`] later recognises that very file and nothing else: a replaced or
/// rewritten file has another inode or change time. For wharf's caches of code it runs.
pub fn write_recorded(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a cache file has a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path)?;
    let identity = file_identity(&std::fs::metadata(path)?);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut tmp, &identity)?;
    tmp.persist(path.with_extension("id"))?;
    Ok(())
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
