//! What a `COPY`/`ADD` reads: the build context (less what `.dockerignore` excludes) or
//! another stage's or image's files. Every source is looked up inside its root on open
//! directory handles, symlinks followed as if the root were `/`: nothing outside the root
//! is ever named, whatever the context or the Dockerfile holds.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use globset::{GlobBuilder, GlobMatcher};

use super::layer::{LayerWriter, Meta, walk};
use crate::image::unpack::{normalize, resolve_dir};

/// `.dockerignore`: patterns, the last that matches a path (or one of its parents) decides,
/// `!` re-includes.
#[derive(Debug, Default)]
pub struct Ignore {
    patterns: Vec<(GlobMatcher, bool)>,
}

impl Ignore {
    /// Read `.dockerignore` text (comments and blank lines skipped, paths cleaned).
    pub fn parse(text: &str) -> Result<Ignore, String> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let clean: Vec<&str> = pat
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .collect();
            if clean.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&clean.join("/"))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!(".dockerignore: {line:?}: {e}"))?;
            patterns.push((glob.compile_matcher(), negate));
        }
        Ok(Ignore { patterns })
    }

    /// Whether `rel` (relative to the context, `/`-separated) is left out.
    pub fn excluded(&self, rel: &str) -> bool {
        let mut out = false;
        for (glob, negate) in &self.patterns {
            // A pattern matches the path or any of its parents.
            let mut hit = glob.is_match(rel);
            let mut at = rel;
            while !hit && let Some((parent, _)) = at.rsplit_once('/') {
                hit = glob.is_match(parent);
                at = parent;
            }
            if hit {
                out = !negate;
            }
        }
        out
    }
}

/// Whether a COPY source is a pattern.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// A source found: its directory handle, its name there, its path relative to its root.
pub struct Found {
    pub parent: Dir,
    pub name: OsString,
    pub rel: String,
    pub meta: cap_std::fs::Metadata,
}

/// Why a source cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}: not found in the build context, or excluded by .dockerignore")]
    NotFound(String),
    #[error("{0}: outside the build context (sources are named relative to it)")]
    Outside(String),
    #[error("{0}: no source files match")]
    NoMatch(String),
    #[error("{path}: {why}")]
    Bad { path: String, why: String },
}

/// Find `source` under `root`: one path (its last symlink followed inside the root), or
/// every path a pattern matches. `ignore` applies to the build context only.
pub fn find(root: &Dir, source: &str, ignore: Option<&Ignore>) -> Result<Vec<Found>, SourceError> {
    if ignore.is_some() && source.split('/').any(|p| p == "..") {
        return Err(SourceError::Outside(source.to_string()));
    }
    let bad = |why: String| SourceError::Bad {
        path: source.to_string(),
        why,
    };
    if is_glob(source) {
        let clean: Vec<&str> = source
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let glob = GlobBuilder::new(&clean.join("/"))
            .literal_separator(true)
            .build()
            .map_err(|e| bad(e.to_string()))?
            .compile_matcher();
        let depth = clean.len();
        let mut out = Vec::new();
        let mut todo: Vec<(Dir, String, usize)> = vec![(
            root.try_clone().map_err(|e| bad(e.to_string()))?,
            String::new(),
            1,
        )];
        while let Some((dir, at, level)) = todo.pop() {
            let mut names: Vec<OsString> = dir
                .entries()
                .map_err(|e| bad(e.to_string()))?
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for name in names {
                let n = name.to_string_lossy();
                let rel = if at.is_empty() {
                    n.to_string()
                } else {
                    format!("{at}/{n}")
                };
                if ignore.is_some_and(|i| i.excluded(&rel)) {
                    continue;
                }
                let Ok(meta) = dir.symlink_metadata(&name) else {
                    continue;
                };
                if level == depth {
                    if glob.is_match(&rel) {
                        out.push(Found {
                            parent: dir.try_clone().map_err(|e| bad(e.to_string()))?,
                            name: name.clone(),
                            rel,
                            meta,
                        });
                    }
                } else if meta.is_dir()
                    && let Ok(child) = crate::sys::open_dir_nofollow(&dir, &name)
                {
                    todo.push((child, rel, level + 1));
                }
            }
        }
        if out.is_empty() {
            return Err(SourceError::NoMatch(source.to_string()));
        }
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        return Ok(out);
    }
    let not_found = || SourceError::NotFound(source.to_string());
    let wanted = normalize(source.as_bytes()).map_err(|e| bad(e.to_string()))?;
    // Resolved one name at a time, symlinks (among the parents too) replaced by their
    // targets inside the root, so what `.dockerignore` is asked about is the path that is
    // read: an unignored link to an ignored directory reaches nothing in it.
    let mut done: Vec<OsString> = Vec::new();
    let mut pending: std::collections::VecDeque<OsString> = wanted.into_iter().collect();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            done.pop();
            continue;
        }
        let parent = resolve_dir(root, &done, false).map_err(|_| not_found())?;
        let meta = parent.symlink_metadata(&c).map_err(|_| not_found())?;
        done.push(c.clone());
        let rel = done
            .iter()
            .map(|c| c.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if ignore.is_some_and(|i| i.excluded(&rel)) {
            return Err(not_found());
        }
        if meta.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return Err(bad("too many levels of symbolic links".into()));
            }
            let target = crate::sys::read_link(&parent, &c).map_err(|e| bad(e.to_string()))?;
            done.pop();
            let t = target.to_string_lossy().into_owned();
            if t.starts_with('/') {
                done.clear();
            }
            for part in t.split('/').rev() {
                match part {
                    "" | "." => {}
                    p => pending.push_front(OsString::from(p)),
                }
            }
            continue;
        }
        if pending.is_empty() {
            return Ok(vec![Found {
                parent,
                name: c,
                rel,
                meta,
            }]);
        }
        if !meta.is_dir() {
            return Err(not_found());
        }
    }
    // The root itself (`.`, `/`).
    let parent = resolve_dir(root, &done, false).map_err(|_| not_found())?;
    let meta = parent.dir_metadata().map_err(|e| bad(e.to_string()))?;
    Ok(vec![Found {
        parent,
        name: OsString::from("."),
        rel: done
            .iter()
            .map(|c| c.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        meta,
    }])
}

/// Who a copied entry belongs to and its mode, as `--chown` and `--chmod` say.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    pub owner: Option<(u64, u64)>,
    pub mode: Option<u32>,
}

/// Copy `found` to `dest` (a path in the image, no leading `/`): a directory's contents
/// into `dest`, anything else as `dest` itself.
pub fn copy_into(
    w: &mut LayerWriter,
    found: &Found,
    dest: &Path,
    ov: Overrides,
    ignore: Option<&Ignore>,
) -> io::Result<()> {
    if found.meta.is_dir() {
        let dir = if found.name == "." {
            found.parent.try_clone()?
        } else {
            found.parent.open_dir(&found.name)?
        };
        let base = found.rel.clone();
        let prefix = dest.to_path_buf();
        walk(w, dir, prefix.clone(), &mut |w, d, name, md, path| {
            if let Some(ignore) = ignore {
                let under = path.strip_prefix(&prefix).unwrap_or(path);
                let rel = if base.is_empty() {
                    under.to_string_lossy().into_owned()
                } else {
                    format!("{base}/{}", under.to_string_lossy())
                };
                if ignore.excluded(&rel) {
                    return Ok(None);
                }
            }
            w.entry(d, name, md, path, ov.owner, ov.mode)
        })
    } else if found.meta.file_type().is_file() || !found.meta.is_dir() {
        w.entry(
            &found.parent,
            &found.name,
            &found.meta,
            dest,
            ov.owner,
            ov.mode,
        )
        .map(|_| ())
    } else {
        Ok(())
    }
}

/// Directory entries for `dest`'s parents that the image does not have yet (root-owned,
/// 0755, as Docker makes them).
pub fn parents(w: &mut LayerWriter, dest: &Path, exists: &dyn Fn(&Path) -> bool) -> io::Result<()> {
    let mut at = PathBuf::new();
    let comps: Vec<_> = dest.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        at.push(c);
        if !exists(&at) {
            w.dir(
                &at,
                Meta {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                },
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_as_docker_reads_it() {
        let i = Ignore::parse("# c\n*.log\nsecret/\n!keep.log\nbuild/**/tmp\n/abs\n").unwrap();
        assert!(i.excluded("a.log"));
        assert!(!i.excluded("keep.log"));
        assert!(!i.excluded("dir/a.log"), "* does not cross /");
        assert!(i.excluded("secret"));
        assert!(i.excluded("secret/inner/x"), "a parent matched");
        assert!(i.excluded("build/x/y/tmp"));
        assert!(i.excluded("abs"));
        assert!(!i.excluded("src/main.rs"));
    }

    #[test]
    fn sources_stay_in_their_root() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir_all(ctx.join("d")).unwrap();
        std::fs::write(ctx.join("d/f"), "x").unwrap();
        std::fs::write(tmp.path().join("outside"), "secret").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", ctx.join("abs")).unwrap();
            std::os::unix::fs::symlink("../../outside", ctx.join("d/up")).unwrap();
            std::os::unix::fs::symlink("d/f", ctx.join("rel")).unwrap();
        }
        let root = Dir::open_ambient_dir(&ctx, cap_std::ambient_authority()).unwrap();
        let ignore = Ignore::default();
        assert!(matches!(
            find(&root, "../outside", Some(&ignore)),
            Err(SourceError::Outside(_))
        ));
        assert_eq!(find(&root, "/d/f", Some(&ignore)).unwrap()[0].rel, "d/f");
        #[cfg(unix)]
        {
            // Followed as if the context were `/`: to names inside it, which do not exist.
            assert!(matches!(
                find(&root, "abs", Some(&ignore)),
                Err(SourceError::NotFound(_))
            ));
            assert!(matches!(
                find(&root, "d/up", Some(&ignore)),
                Err(SourceError::NotFound(_))
            ));
            assert_eq!(find(&root, "rel", Some(&ignore)).unwrap()[0].rel, "d/f");
        }
        assert_eq!(
            find(&root, "d/*", Some(&ignore)).unwrap().len(),
            if cfg!(unix) { 2 } else { 1 }
        );
        assert!(matches!(
            find(&root, "*.none", Some(&ignore)),
            Err(SourceError::NoMatch(_))
        ));
        let ignore = Ignore::parse("d\n").unwrap();
        assert!(matches!(
            find(&root, "d/f", Some(&ignore)),
            Err(SourceError::NotFound(_))
        ));
        #[cfg(unix)]
        {
            // An unignored link to an ignored directory reaches nothing in it.
            std::os::unix::fs::symlink("d", ctx.join("alias")).unwrap();
            assert!(matches!(
                find(&root, "alias/f", Some(&ignore)),
                Err(SourceError::NotFound(_))
            ));
            assert!(find(&root, "alias/f", Some(&Ignore::default())).is_ok());
        }
    }
}
