//! `export` and `diff`: a native container's root filesystem as a tar stream, and what it
//! changed against its image (Docker's `A`, `C`, `D`). Both read the container's files
//! through a read-only overlay in a mount namespace of the calling process alone
//! ([`show_root_read_only`](crate::backend::native::show_root_read_only)), so a running
//! container is read without being disturbed and nothing is left mounted.

use std::io::Write;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use super::{LifecycleError, Session};
use crate::container::Record;
use crate::dispatch::Kind;

fn native_only(r: &Record, verb: &str) -> Result<(), LifecycleError> {
    if r.kind == Kind::Wasm {
        return Err(LifecycleError::Invalid(format!(
            "{} is a wasm container: it has no root filesystem of its own to {verb} (its image's files are read-only to it; its writes go to its volumes)",
            r.shown_name()
        )));
    }
    Ok(())
}

/// Write container `id`'s root filesystem to `out` as a tar stream (symlinks as links,
/// devices and FIFOs as such). Returns the container's record.
pub fn export(session: &Session, id: &str, out: &mut dyn Write) -> Result<Record, LifecycleError> {
    let containers = session.containers();
    let l = containers.lock(id)?;
    native_only(&l.record, "export")?;
    let root = show_root(session, &l.record, l.dir())?;
    let io = |cause| LifecycleError::Io {
        what: format!("exporting {}", l.record.shown_name()),
        cause,
    };
    let dir = Dir::open_ambient_dir(&root, cap_std::ambient_authority()).map_err(io)?;
    let mut tar = tar::Builder::new(out);
    write_tree(&dir, Path::new(""), &mut tar).map_err(io)?;
    tar.finish().map_err(io)?;
    Ok(l.record.clone())
}

/// Every entry under `root` into `tar`, walked on directory handles: a name is looked up in
/// its directory only, never followed (a running container swapping a directory for a
/// symlink to `/` meanwhile leads nowhere outside `root`); a file is read only if it is
/// a regular file once open. Sockets are left out, as Docker does. Entries are named
/// `prefix/...`.
pub(super) fn write_tree<W: Write>(
    root: &Dir,
    prefix: &Path,
    tar: &mut tar::Builder<W>,
) -> std::io::Result<u64> {
    use std::sync::Arc;
    let mut written = 0;
    let mut todo: Vec<(Arc<Dir>, PathBuf)> =
        vec![(Arc::new(root.try_clone()?), prefix.to_path_buf())];
    while let Some((dir, at)) = todo.pop() {
        let mut names = Vec::new();
        for e in dir.entries()? {
            names.push(e?.file_name());
        }
        names.sort();
        for name in names {
            let Ok(m) = dir.symlink_metadata(&name) else {
                continue; // gone meanwhile
            };
            let path = at.join(&name);
            if let Some(child) = append_entry(&dir, &name, &m, &path, tar)? {
                todo.push((Arc::new(child), path));
            }
            written += 1;
        }
    }
    Ok(written)
}

/// `name` in `dir` (which is `m`) into `tar` as `path`; a directory's handle is returned
/// for its entries to follow.
pub(super) fn append_entry<W: Write>(
    dir: &Dir,
    name: &std::ffi::OsStr,
    m: &cap_std::fs::Metadata,
    path: &Path,
    tar: &mut tar::Builder<W>,
) -> std::io::Result<Option<Dir>> {
    let mut h = header(m);
    let ft = m.file_type();
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        tar.append_data(&mut h, path, std::io::empty())?;
        return Ok(crate::sys::open_dir_nofollow(dir, name).ok());
    }
    if ft.is_symlink() {
        let target = crate::sys::read_link(dir, name)?;
        h.set_entry_type(tar::EntryType::Symlink);
        tar.append_link(&mut h, path, &target)?;
    } else if ft.is_file() {
        let Ok(f) = super::copy::open_regular(dir, name) else {
            return Ok(None); // no longer a regular file
        };
        let size = f.metadata()?.len();
        h.set_size(size);
        h.set_entry_type(tar::EntryType::Regular);
        // Exactly `size` bytes even if it changes while read.
        let body = std::io::Read::take(
            std::io::Read::chain(std::io::Read::take(f, size), std::io::repeat(0)),
            size,
        );
        tar.append_data(&mut h, path, body)?;
    } else if let Some(kind) = special(m) {
        h.set_entry_type(kind);
        tar.append_data(&mut h, path, std::io::empty())?;
    }
    Ok(None)
}

/// A tar header with `m`'s mode, owner and time (GNU format, as Docker writes).
fn header(m: &cap_std::fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    #[cfg(unix)]
    {
        use cap_std::fs::MetadataExt;
        h.set_mode(m.mode() & 0o7777);
        h.set_uid(m.uid().into());
        h.set_gid(m.gid().into());
        h.set_mtime(u64::try_from(m.mtime()).unwrap_or(0));
        let rdev = m.rdev();
        let _ = h.set_device_major(((rdev >> 8) & 0xfff) as u32 | ((rdev >> 32) & !0xfff) as u32);
        let _ = h.set_device_minor((rdev & 0xff) as u32 | ((rdev >> 12) & !0xff) as u32);
    }
    #[cfg(not(unix))]
    let _ = m;
    h
}

/// The tar type of a device or FIFO (`None`: a socket, which is not archived).
fn special(m: &cap_std::fs::Metadata) -> Option<tar::EntryType> {
    #[cfg(unix)]
    {
        use cap_std::fs::FileTypeExt;
        let ft = m.file_type();
        if ft.is_char_device() {
            return Some(tar::EntryType::Char);
        }
        if ft.is_block_device() {
            return Some(tar::EntryType::Block);
        }
        if ft.is_fifo() {
            return Some(tar::EntryType::Fifo);
        }
    }
    let _ = m;
    None
}

/// One change: `A` added, `C` changed, `D` deleted, and the path in the container.
pub type Change = (char, String);

/// What container `id` changed against its image, sorted by path (a parent before what is
/// in it).
pub fn diff(session: &Session, id: &str) -> Result<Vec<Change>, LifecycleError> {
    let containers = session.containers();
    let l = containers.lock(id)?;
    native_only(&l.record, "diff")?;
    let layers = layers_of(session, &l.record)?;
    let upper = l.dir().join("upper");
    let mut out = Vec::new();
    // Walked on directory handles: a directory the container swaps for a symlink meanwhile
    // lists nothing of the host's.
    let Ok(top) = Dir::open_ambient_dir(&upper, cap_std::ambient_authority()) else {
        return Ok(out);
    };
    let mut dirs: Vec<String> = Vec::new();
    let mut todo: Vec<(Dir, String)> = vec![(top, String::new())];
    while let Some((dir, at)) = todo.pop() {
        let Ok(entries) = dir.entries() else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = format!("{at}/{name}");
            let Ok(meta) = dir.symlink_metadata(e.file_name()) else {
                continue;
            };
            let in_image = layers.iter().any(|root| exists_in(root, &path));
            if MOUNT_POINTS.contains(&path.as_str()) && !in_image {
                // Made to bind the container's own files on: not a change it made.
                continue;
            }
            if is_whiteout_cap(&meta) {
                out.push(('D', path));
                continue;
            }
            out.push((if in_image { 'C' } else { 'A' }, path.clone()));
            if meta.is_dir()
                && let Ok(child) = crate::sys::open_dir_nofollow(&dir, &e.file_name())
            {
                dirs.push(path.clone());
                todo.push((child, path));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    // A directory of the image copied up only to hold those mount points changed nothing.
    let listed: Vec<String> = out.iter().map(|(_, p)| p.clone()).collect();
    out.retain(|(kind, p)| {
        *kind != 'C' || !dirs.contains(p) || listed.iter().any(|q| q.starts_with(&format!("{p}/")))
    });
    Ok(out)
}

/// Files wharf makes in a container's writable layer to bind its own /etc files on.
const MOUNT_POINTS: &[&str] = &["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

/// Whether `path` (absolute in the container) names an entry in layer root `root`, looked
/// up without following anything (a symlink in a layer is an entry, never a way out).
fn exists_in(root: &Path, path: &str) -> bool {
    let mut at = root.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        match at.symlink_metadata() {
            Ok(m) if m.is_dir() => at.push(part),
            _ => return false,
        }
    }
    at.symlink_metadata().is_ok_and(|m| !is_whiteout(&m))
}

#[cfg(unix)]
fn is_whiteout(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    m.file_type().is_char_device() && m.rdev() == 0
}

#[cfg(not(unix))]
fn is_whiteout(_: &std::fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
fn is_whiteout_cap(m: &cap_std::fs::Metadata) -> bool {
    use cap_std::fs::{FileTypeExt, MetadataExt};
    m.file_type().is_char_device() && m.rdev() == 0
}

#[cfg(not(unix))]
fn is_whiteout_cap(_: &cap_std::fs::Metadata) -> bool {
    false
}

/// The image layers' roots, lowest first.
fn layers_of(session: &Session, r: &Record) -> Result<Vec<PathBuf>, LifecycleError> {
    let store = session.store()?;
    let platform = r.platform.as_deref().and_then(|p| p.parse().ok());
    let prepared = crate::run::prepare(&store, &r.target, &r.options, platform.as_ref())?;
    Ok(prepared.layers.into_iter().map(|l| l.root).collect())
}

#[cfg(target_os = "linux")]
fn show_root(session: &Session, r: &Record, dir: &Path) -> Result<PathBuf, LifecycleError> {
    let store = session.store()?;
    let platform = r.platform.as_deref().and_then(|p| p.parse().ok());
    let prepared = crate::run::prepare(&store, &r.target, &r.options, platform.as_ref())?;
    crate::backend::native::show_root_read_only(dir, &prepared.layers).map_err(|e| {
        LifecycleError::Io {
            what: format!("showing {}'s files", r.shown_name()),
            cause: std::io::Error::other(e.to_string()),
        }
    })
}

#[cfg(not(target_os = "linux"))]
fn show_root(_: &Session, r: &Record, _: &Path) -> Result<PathBuf, LifecycleError> {
    Err(LifecycleError::Invalid(format!(
        "{} is a native Linux container: its files are reachable on a Linux host only",
        r.shown_name()
    )))
}
