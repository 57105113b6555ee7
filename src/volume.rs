//! Named volumes: directories wharf manages (`ROOT/volumes/<name>/_data`, with
//! `volume.json` beside), made on first use or by `wharf volume create`, kept until removed.
//! A native container's first use of an empty volume copies the image's files at the mount
//! point into it (as Docker does); a wasm container gets it preopened.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::paths::Roots;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {0:?} not found")]
    NotFound(String),
    #[error(
        "invalid volume name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
    )]
    BadName(String),
    #[error("volume {name:?} is in use by {users}: remove those containers first")]
    InUse { name: String, users: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One named volume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    /// Where its files are on the host.
    pub mountpoint: PathBuf,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Whether `s` (the part before `:` in `-v`) names a volume rather than a host path.
pub fn is_name(s: &str) -> bool {
    check_name(s).is_ok()
}

fn check_name(name: &str) -> Result<(), VolumeError> {
    if crate::run::options::is_volume_name(name) {
        Ok(())
    } else {
        Err(VolumeError::BadName(name.into()))
    }
}

/// The volumes of one wharf root.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    pub fn new(roots: &Roots) -> Self {
        Volumes {
            dir: roots.data().join("volumes"),
        }
    }

    fn meta(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("volume.json")
    }

    /// Volume `name`, made if it does not exist (with `labels`); an existing one is kept
    /// as it is, as Docker does.
    pub fn create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        check_name(name)?;
        if let Ok(v) = self.get(name) {
            return Ok(v);
        }
        let dir = self.dir.join(name);
        let data = dir.join("_data");
        fs::create_dir_all(&data).map_err(io_err(&data))?;
        let v = Volume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: data,
            created: Utc::now(),
            labels: labels.clone(),
        };
        // Written last, atomically: two creations at once make one volume.
        let meta = self.meta(name);
        let tmp = dir.join(format!("volume.json.tmp{}", std::process::id()));
        fs::write(&tmp, serde_json::to_vec_pretty(&v).expect("serialises"))
            .map_err(io_err(&tmp))?;
        let made = fs::hard_link(&tmp, &meta).is_ok();
        if !made && !meta.exists() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&meta)(io::Error::last_os_error()));
        }
        let _ = fs::remove_file(&tmp);
        if made {
            self.event("create", name);
        }
        self.get(name)
    }

    /// Record a volume event in the root's event log.
    fn event(&self, action: &str, name: &str) {
        if let Some(data) = self.dir.parent() {
            let attributes = [("driver".to_string(), "local".to_string())]
                .into_iter()
                .collect();
            crate::events::append(
                &crate::events::log_path(data),
                &crate::events::Event::new("volume", action, name, attributes),
            );
        }
    }

    /// Where volume `name`'s files are (or would be), without making it (`--print-spec`).
    pub fn mountpoint(&self, name: &str) -> Result<PathBuf, VolumeError> {
        check_name(name)?;
        Ok(self.dir.join(name).join("_data"))
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        check_name(name).map_err(|_| VolumeError::NotFound(name.into()))?;
        let bytes = fs::read(self.meta(name)).map_err(|_| VolumeError::NotFound(name.into()))?;
        serde_json::from_slice(&bytes).map_err(|e| VolumeError::Io {
            path: self.meta(name),
            source: io::Error::other(e),
        })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.get(&e.file_name().into_string().ok()?).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Remove volume `name` and its files (refused while a container uses it: `users_of`
    /// names the containers that mount a volume; the store does not know containers).
    pub fn remove(
        &self,
        name: &str,
        users_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<(), VolumeError> {
        self.get(name)?;
        let users = users_of(name);
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.into(),
                users: users.join(", "),
            });
        }
        let dir = self.dir.join(name);
        // The record goes first: a half-removed directory is no longer a volume.
        fs::remove_file(self.meta(name)).map_err(io_err(&self.meta(name)))?;
        self.event("destroy", name);
        crate::image::store::remove_tree(&dir).map_err(|e| VolumeError::Io {
            path: dir.clone(),
            source: io::Error::other(e.to_string()),
        })
    }

    /// Remove every volume no container uses (`users_of`, as for [`Volumes::remove`]);
    /// their names.
    pub fn prune(
        &self,
        users_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<Vec<String>, VolumeError> {
        let mut removed = Vec::new();
        for v in self.list() {
            if users_of(&v.name).is_empty() {
                self.remove(&v.name, users_of)?;
                removed.push(v.name);
            }
        }
        Ok(removed)
    }
}

/// Copy the image's files under `from` into the empty volume `to` (a container's first use
/// of a volume): directories, regular files and symlinks (as links, never followed), with
/// their modes and owners. Both are capability handles: nothing outside them is touched.
#[cfg(unix)]
pub fn copy_up(from: &cap_std::fs::Dir, to: &cap_std::fs::Dir) -> io::Result<()> {
    use cap_std::fs::MetadataExt;
    for entry in from.entries()? {
        let entry = entry?;
        let name = entry.file_name();
        let meta = from.symlink_metadata(&name)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            to.create_dir(&name)?;
            let (src, dst) = (from.open_dir(&name)?, to.open_dir(&name)?);
            copy_up(&src, &dst)?;
            // Set through the parent: a directory handle may be a path-only descriptor.
            crate::sys::lchown(to, name.as_os_str(), meta.uid(), meta.gid())?;
            use std::os::unix::fs::PermissionsExt;
            to.set_permissions(
                &name,
                cap_std::fs::Permissions::from_std(std::fs::Permissions::from_mode(
                    meta.mode() & 0o7777,
                )),
            )?;
        } else if ft.is_file() {
            let mut src = from.open(&name)?;
            let mut dst = to.create(&name)?;
            io::copy(&mut src, &mut dst)?;
            crate::sys::fchown(&dst, meta.uid(), meta.gid())?;
            crate::sys::fchmod(&dst, meta.mode() & 0o7777)?;
        } else if ft.is_symlink() {
            let target = crate::sys::read_link(from, name.as_os_str())?;
            crate::sys::symlink(to, name.as_os_str(), target.as_os_str())?;
            let _ = crate::sys::lchown(to, name.as_os_str(), meta.uid(), meta.gid());
        }
        // Devices, fifos and sockets are not copied into a volume.
    }
    Ok(())
}

/// Give the volume directory at `path` (wharf's own, never a container's path) the owner and
/// permission bits of `like` (the image's directory it is first mounted over).
#[cfg(unix)]
pub fn copy_owner_and_mode(path: &Path, like: &cap_std::fs::Metadata) -> io::Result<()> {
    use cap_std::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(path, Some(like.uid()), Some(like.gid()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(like.mode() & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_are_told_apart() {
        assert!(is_name("data"));
        assert!(is_name("app_db-1.x"));
        for path in [
            "/data", "./data", "../x", "~/x", "", "a/b", ".hidden", "C:\\x",
        ] {
            assert!(!is_name(path), "{path}");
        }
    }

    #[test]
    fn volumes_are_made_once_listed_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let vols = Volumes::new(&Roots::new(d.path()));
        let a = vols.create("a", &BTreeMap::new()).unwrap();
        assert!(a.mountpoint.is_dir());
        fs::write(a.mountpoint.join("f"), "x").unwrap();
        let again = vols.create("a", &BTreeMap::new()).unwrap();
        assert_eq!(again, a);
        assert!(a.mountpoint.join("f").exists(), "kept as it was");
        vols.create("b", &BTreeMap::new()).unwrap();
        assert_eq!(
            vols.list()
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        vols.remove("a", &|_| Vec::new()).unwrap();
        assert!(!d.path().join("volumes/a").exists());
        assert!(matches!(
            vols.remove("a", &|_| Vec::new()),
            Err(VolumeError::NotFound(_))
        ));
        assert_eq!(vols.prune(&|_| Vec::new()).unwrap(), ["b"]);
    }

    #[cfg(unix)]
    #[test]
    fn copy_up_keeps_links_as_links() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/file"), "content").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("escape")).unwrap();
        let dst = d.path().join("dst");
        fs::create_dir(&dst).unwrap();
        let open = |p: &Path| cap_std::fs::Dir::open_ambient_dir(p, cap_std::ambient_authority());
        copy_up(&open(&src).unwrap(), &open(&dst).unwrap()).unwrap();
        assert_eq!(fs::read_to_string(dst.join("sub/file")).unwrap(), "content");
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        fs::set_permissions(&src, fs::Permissions::from_mode(0o1750)).unwrap();
        std::os::unix::fs::chown(&src, Some(70), Some(71)).unwrap();
        let like = open(&src).unwrap().dir_metadata().unwrap();
        copy_owner_and_mode(&dst, &like).unwrap();
        let top = fs::metadata(&dst).unwrap();
        assert_eq!(
            (top.uid(), top.gid(), top.mode() & 0o7777),
            (70, 71, 0o1750)
        );
        assert_eq!(
            fs::read_link(dst.join("escape")).unwrap(),
            Path::new("/etc/passwd")
        );
    }
}
