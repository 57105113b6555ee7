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

/// Special files a layer can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Fifo,
    Char,
    Block,
}
