//! Copy unpacked layers, lowest first, into one directory, applying whiteouts and opaque
//! directories: what overlayfs shows, made into real files (for `wharf unpack --to`, hosts
//! without overlayfs, and the wasm backend's read-only view of an image's files).

use std::ffi::OsStr;
use std::io;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use super::resolve::remove_entry;
use super::{LayerDir, UnpackError, WhiteoutFormat};
use crate::sys;

/// Apply `layers` in order onto `dest`.
pub fn flatten(layers: &[LayerDir], dest: &Dir) -> Result<(), UnpackError> {
    for layer in layers {
        let src = Dir::open_ambient_dir(&layer.root, ambient_authority()).map_err(|source| {
            UnpackError::Resolve {
                path: layer.root.display().to_string(),
                source,
            }
        })?;
        copy_dir(&src, dest, layer.whiteouts, &layer.diff_id).map_err(|source| {
            UnpackError::Entry {
                name: format!("layer {}", layer.diff_id),
                source,
            }
        })?;
    }
    Ok(())
}

fn is_opaque(src: &Dir, format: WhiteoutFormat) -> bool {
    match format {
        WhiteoutFormat::Overlay => sys::is_opaque(src),
        WhiteoutFormat::Files => src.symlink_metadata(".wh..wh..opq").is_ok(),
    }
}

fn copy_dir(src: &Dir, dest: &Dir, format: WhiteoutFormat, layer: &str) -> io::Result<()> {
    if is_opaque(src, format) {
        for e in dest.entries()? {
            remove_entry(dest, &e?.file_name())?;
        }
    }
    for entry in src.entries()? {
        let entry = entry?;
        let name = entry.file_name();
        let meta = src.symlink_metadata(&name)?;
        let name_str = name.to_string_lossy();
        if format == WhiteoutFormat::Files {
            if name_str == ".wh..wh..opq" {
                continue;
            }
            if let Some(target) = name_str.strip_prefix(".wh.") {
                remove_entry(dest, OsStr::new(target))?;
                continue;
            }
        }
        if format == WhiteoutFormat::Overlay && sys::is_whiteout(&meta) {
            remove_entry(dest, &name)?;
            continue;
        }
        let existing = dest.symlink_metadata(&name).ok();
        if meta.is_dir() {
            match existing {
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    dest.remove_file(&name)?;
                    dest.create_dir(&name)?;
                }
                None => dest.create_dir(&name)?,
            }
            let sub_src = src.open_dir(&name)?;
            let sub_dest = dest.open_dir(&name)?;
            copy_dir(&sub_src, &sub_dest, format, layer)?;
            copy_meta_dir(&meta, &sys::open_dir_for_metadata(dest, &name)?)?;
            continue;
        }
        if existing.is_some() {
            remove_entry(dest, &name)?;
        }
        if meta.file_type().is_symlink() {
            let target = sys::read_link(src, &name)?;
            sys::symlink(dest, &name, target.as_os_str())?;
            copy_owner_nofollow(&meta, dest, &name)?;
        } else if meta.is_file() {
            let mut from = src.open(&name)?;
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            let mut to = dest.open_with(&name, &opts)?;
            io::copy(&mut from, &mut to)?;
            copy_meta_file(&meta, &to)?;
        } else {
            copy_special(src, &meta, dest, &name, layer)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn copy_meta_file(meta: &cap_std::fs::Metadata, to: &cap_std::fs::File) -> io::Result<()> {
    use cap_std::fs::MetadataExt;
    if sys::is_root() {
        sys::fchown(to, meta.uid(), meta.gid())?;
    }
    sys::fchmod(to, meta.mode())?;
    sys::set_mtime_fd(to, meta.mtime())
}

#[cfg(unix)]
fn copy_meta_dir(meta: &cap_std::fs::Metadata, to: &cap_std::fs::File) -> io::Result<()> {
    use cap_std::fs::MetadataExt;
    if sys::is_root() {
        sys::fchown(to, meta.uid(), meta.gid())?;
    }
    sys::fchmod(to, meta.mode())?;
    sys::set_mtime_fd(to, meta.mtime())
}

#[cfg(unix)]
fn copy_owner_nofollow(meta: &cap_std::fs::Metadata, dir: &Dir, name: &OsStr) -> io::Result<()> {
    use cap_std::fs::MetadataExt;
    if sys::is_root() {
        sys::lchown(dir, name, meta.uid(), meta.gid())?;
    }
    sys::set_mtime_nofollow(dir, name, meta.mtime())
}

#[cfg(unix)]
fn copy_special(
    _src: &Dir,
    meta: &cap_std::fs::Metadata,
    dest: &Dir,
    name: &OsStr,
    layer: &str,
) -> io::Result<()> {
    use cap_std::fs::{FileTypeExt, MetadataExt};
    let ft = meta.file_type();
    let kind = if ft.is_fifo() {
        sys::NodeKind::Fifo
    } else if ft.is_char_device() {
        sys::NodeKind::Char
    } else if ft.is_block_device() {
        sys::NodeKind::Block
    } else {
        tracing::debug!(layer, name = %name.to_string_lossy(), "skipping socket");
        return Ok(());
    };
    let rdev = meta.rdev();
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    sys::mknod(dest, name, kind, meta.mode(), major, minor)?;
    copy_owner_nofollow(meta, dest, name)
}

#[cfg(not(unix))]
fn copy_meta_file(_: &cap_std::fs::Metadata, _: &cap_std::fs::File) -> io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn copy_meta_dir<T>(_: &cap_std::fs::Metadata, _: &T) -> io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn copy_owner_nofollow(_: &cap_std::fs::Metadata, _: &Dir, _: &OsStr) -> io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn copy_special(_: &Dir, _: &cap_std::fs::Metadata, _: &Dir, _: &OsStr, _: &str) -> io::Result<()> {
    Ok(())
}
