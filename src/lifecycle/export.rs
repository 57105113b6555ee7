//! `export` and `diff`: a native container's root filesystem as a tar stream, and what it
//! changed against its image (Docker's `A`, `C`, `D`). Both read the container's files
//! through a read-only overlay in a mount namespace of the calling process alone
//! ([`show_root_read_only`](crate::backend::native::show_root_read_only)), so a running
//! container is read without being disturbed and nothing is left mounted.

use std::io::Write;
use std::path::{Path, PathBuf};

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
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    tar.append_dir_all(".", &root).map_err(io)?;
    tar.finish().map_err(io)?;
    Ok(l.record.clone())
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
    let mut todo: Vec<(PathBuf, String)> = vec![(upper.clone(), String::new())];
    while let Some((dir, at)) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = format!("{at}/{name}");
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            let in_image = layers.iter().any(|root| exists_in(root, &path));
            if MOUNT_POINTS.contains(&path.as_str()) && !in_image {
                // Made to bind the container's own files on: not a change it made.
                continue;
            }
            if is_whiteout(&meta) {
                out.push(('D', path));
                continue;
            }
            out.push((if in_image { 'C' } else { 'A' }, path.clone()));
            if meta.is_dir() {
                todo.push((e.path(), path));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    // A directory of the image copied up only to hold those mount points changed nothing.
    let listed: Vec<String> = out.iter().map(|(_, p)| p.clone()).collect();
    out.retain(|(kind, p)| {
        *kind != 'C'
            || !upper.join(p.trim_start_matches('/')).is_dir()
            || listed.iter().any(|q| q.starts_with(&format!("{p}/")))
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
