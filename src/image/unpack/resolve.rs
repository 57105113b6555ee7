//! Resolving a layer entry's name inside the layer root, the way a container will see it:
//! `..` stops at the root, and symlinks (absolute ones included) are followed as if the root
//! were `/`. Every step is an operation on an open directory handle and one file name, so
//! nothing a layer contains can redirect a write outside the root.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::Component;

use cap_std::fs::Dir;

use super::UnpackError;
use crate::sys;

/// Symlinks followed while resolving one name before giving up (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// Deepest directory nesting of one entry. Copying and removing a tree hold a descriptor
/// per level, so a layer nesting directories without end would exhaust them (or the
/// stack); no real image comes near this.
pub const MAX_DEPTH: usize = 256;

/// Split a tar entry name into clean components: empty and `.` parts dropped, `..` applied
/// lexically and clamped at the root, a leading `/` ignored.
pub fn normalize(name: &[u8]) -> Result<Vec<OsString>, UnpackError> {
    let mut out: Vec<OsString> = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            part => out.push(os_string(part, name)?),
        }
        if out.len() > MAX_DEPTH {
            return Err(UnpackError::BadName {
                name: String::from_utf8_lossy(&name[..name.len().min(200)]).into_owned() + "...",
                reason: format!("nests deeper than {MAX_DEPTH} directories"),
            });
        }
    }
    Ok(out)
}

#[cfg(unix)]
fn os_string(part: &[u8], _name: &[u8]) -> Result<OsString, UnpackError> {
    use std::os::unix::ffi::OsStrExt;
    Ok(OsStr::from_bytes(part).to_os_string())
}

#[cfg(not(unix))]
fn os_string(part: &[u8], name: &[u8]) -> Result<OsString, UnpackError> {
    let s = std::str::from_utf8(part).map_err(|_| UnpackError::BadName {
        name: String::from_utf8_lossy(name).into_owned(),
        reason: "not UTF-8".into(),
    })?;
    if s.contains(['\\', ':']) {
        return Err(UnpackError::BadName {
            name: s.to_string(),
            reason: "contains a character Windows paths reserve".into(),
        });
    }
    Ok(OsString::from(s))
}

/// Open the directory `comps` names under `root`, following symlinks inside the root.
/// With `create`, missing directories are made (mode 0755), as tar's implied parents are.
pub fn resolve_dir(root: &Dir, comps: &[OsString], create: bool) -> Result<Dir, UnpackError> {
    let io_err = |source: io::Error| UnpackError::Resolve {
        path: display(comps),
        source,
    };
    let mut stack: Vec<Dir> = vec![root.try_clone().map_err(io_err)?];
    let mut pending: VecDeque<OsString> = comps.iter().cloned().collect();
    let mut links = 0;
    while let Some(comp) = pending.pop_front() {
        if comp == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        if comp == "." {
            continue;
        }
        let top = stack.last().expect("root stays on the stack");
        match top.symlink_metadata(&comp) {
            Ok(meta) if meta.is_dir() => {
                let next = top.open_dir(&comp).map_err(io_err)?;
                stack.push(next);
            }
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(UnpackError::SymlinkLoop {
                        path: display(comps),
                    });
                }
                let target = sys::read_link(top, &comp).map_err(io_err)?;
                let mut parts: Vec<OsString> = Vec::new();
                for c in target.components() {
                    match c {
                        Component::RootDir | Component::Prefix(_) => {
                            stack.truncate(1);
                            parts.clear();
                        }
                        Component::CurDir => {}
                        Component::ParentDir => parts.push(OsString::from("..")),
                        Component::Normal(p) => parts.push(p.to_os_string()),
                    }
                }
                for p in parts.into_iter().rev() {
                    pending.push_front(p);
                }
            }
            Ok(_) => {
                return Err(UnpackError::NotADirectory {
                    path: display(comps),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                top.create_dir(&comp).map_err(io_err)?;
                let next = top.open_dir(&comp).map_err(io_err)?;
                stack.push(next);
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(stack.pop().expect("root stays on the stack"))
}

/// Open the regular file at `path` inside `root`, following symlinks (the last component's
/// too) as the container would: never out of the root.
pub fn open_file_in_root(root: &Dir, path: &str) -> Result<cap_std::fs::File, UnpackError> {
    let mut comps = normalize(path.as_bytes())?;
    for _ in 0..MAX_SYMLINKS {
        let Some((base, parent_comps)) = comps.split_last() else {
            return Err(UnpackError::NotADirectory {
                path: path.to_string(),
            });
        };
        let parent = resolve_dir(root, parent_comps, false)?;
        let meta = parent
            .symlink_metadata(base)
            .map_err(|source| UnpackError::Resolve {
                path: display(&comps),
                source,
            })?;
        if meta.file_type().is_symlink() {
            let target = sys::read_link(&parent, base).map_err(|source| UnpackError::Resolve {
                path: display(&comps),
                source,
            })?;
            let target = target.to_string_lossy();
            comps = if target.starts_with('/') {
                normalize(target.as_bytes())?
            } else {
                let mut joined = parent_comps.to_vec();
                joined.extend(normalize_relative(target.as_bytes()));
                joined
            };
            continue;
        }
        if !meta.is_file() {
            return Err(UnpackError::Resolve {
                path: display(&comps),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        return parent.open(base).map_err(|source| UnpackError::Resolve {
            path: display(&comps),
            source,
        });
    }
    Err(UnpackError::SymlinkLoop {
        path: path.to_string(),
    })
}

/// Components of a relative symlink target, `..` kept (resolved against the real parent by
/// `resolve_dir`).
fn normalize_relative(target: &[u8]) -> Vec<OsString> {
    target
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .filter_map(|p| os_string(p, target).ok())
        .collect()
}

/// Remove whatever `name` in `parent` is (a directory with all its content), without
/// following a symlink.
pub fn remove_entry(parent: &Dir, name: &OsStr) -> io::Result<()> {
    match parent.symlink_metadata(name) {
        Ok(m) if m.is_dir() => parent.remove_dir_all(name),
        Ok(_) => parent.remove_file(name),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A printable form of a component list.
pub fn display(comps: &[OsString]) -> String {
    let mut s = String::from("/");
    s.push_str(
        &comps
            .iter()
            .map(|c| c.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurdly_deep_names_are_refused() {
        let deep = "a/".repeat(MAX_DEPTH + 1);
        let err = normalize(deep.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("nests deeper"), "{err}");
        assert_eq!(
            normalize("a/".repeat(MAX_DEPTH).as_bytes()).unwrap().len(),
            MAX_DEPTH
        );
    }

    #[test]
    fn normalize_clamps_at_root() {
        let n = |s: &str| display(&normalize(s.as_bytes()).unwrap());
        assert_eq!(n("/etc/passwd"), "/etc/passwd");
        assert_eq!(n("../../x"), "/x");
        assert_eq!(n("a/../../x"), "/x");
        assert_eq!(n("./a//b/."), "/a/b");
        assert_eq!(n("/"), "/");
    }
}
