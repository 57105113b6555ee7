//! A layer written straight into the store: a tar stream (gzip, names sorted, owners and
//! modes kept, whiteouts as the OCI image spec writes them), hashed uncompressed for its
//! diff id while it is compressed into a blob. A layer that fails half-way leaves nothing:
//! the blob's temp file goes with the writer.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use oci_spec::image::Descriptor;
use sha2::{Digest as _, Sha256};

use crate::image::blob::BlobWriter;
use crate::image::media;
use crate::image::store::{Store, StoreError, descriptor};

/// A layer made: its blob's descriptor and its diff id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: String,
}

struct Sink(BlobWriter);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_chunk(buf).map_err(|e| {
            // The cause (no space left, ...) is in the chain: said in one message.
            let mut message = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                message.push_str(&format!(": {c}"));
                cause = c.source();
            }
            io::Error::other(message)
        })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Who owns an entry, and its mode (permission bits and the set-id and sticky bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// A layer being written.
pub struct LayerWriter {
    tar: tar::Builder<Hashing<flate2::write::GzEncoder<Sink>>>,
    /// Every entry's mtime, when the build fixes one (`SOURCE_DATE_EPOCH`, `--timestamp`).
    timestamp: Option<u64>,
    /// Files seen (device, inode) → the name first written, for hard links.
    #[cfg_attr(not(unix), allow(dead_code))]
    links: HashMap<(u64, u64), PathBuf>,
}

impl LayerWriter {
    pub fn new(store: &Store, timestamp: Option<u64>) -> Result<Self, StoreError> {
        let blob = store.blob_writer(None)?;
        let gz = flate2::GzBuilder::new().write(Sink(blob), flate2::Compression::fast());
        let mut tar = tar::Builder::new(Hashing {
            inner: gz,
            hasher: Sha256::new(),
        });
        tar.mode(tar::HeaderMode::Complete);
        Ok(LayerWriter {
            tar,
            timestamp,
            links: HashMap::new(),
        })
    }

    fn header(&self, kind: tar::EntryType, m: Meta) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(m.mode & 0o7777);
        h.set_uid(m.uid);
        h.set_gid(m.gid);
        h.set_mtime(self.timestamp.unwrap_or(m.mtime));
        h
    }

    /// A directory entry (`path` relative to the root, no leading `/`).
    pub fn dir(&mut self, path: &Path, m: Meta) -> io::Result<()> {
        let mut h = self.header(tar::EntryType::Directory, m);
        self.tar.append_data(&mut h, path, io::empty())
    }

    /// A regular file with `size` bytes from `body` (exactly: a file that changes while read
    /// is cut or padded, so the tar stays whole).
    pub fn file(&mut self, path: &Path, m: Meta, size: u64, body: impl io::Read) -> io::Result<()> {
        let mut h = self.header(tar::EntryType::Regular, m);
        h.set_size(size);
        let body = io::Read::take(
            io::Read::chain(io::Read::take(body, size), io::repeat(0)),
            size,
        );
        self.tar.append_data(&mut h, path, body)
    }

    pub fn symlink(&mut self, path: &Path, m: Meta, target: &Path) -> io::Result<()> {
        let mut h = self.header(tar::EntryType::Symlink, m);
        self.tar.append_link(&mut h, path, target)
    }

    /// A file already written under another name (`first`): a hard link to it.
    pub fn hard_link(&mut self, path: &Path, m: Meta, first: &Path) -> io::Result<()> {
        let mut h = self.header(tar::EntryType::Link, m);
        self.tar.append_link(&mut h, path, first)
    }

    #[cfg_attr(not(unix), allow(dead_code))]
    fn special(&mut self, path: &Path, m: Meta, kind: tar::EntryType, rdev: u64) -> io::Result<()> {
        let mut h = self.header(kind, m);
        let _ = h.set_device_major(((rdev >> 8) & 0xfff) as u32 | ((rdev >> 32) & !0xfff) as u32);
        let _ = h.set_device_minor((rdev & 0xff) as u32 | ((rdev >> 12) & !0xff) as u32);
        self.tar.append_data(&mut h, path, io::empty())
    }

    /// `path` deleted: `.wh.NAME` beside it.
    pub fn whiteout(&mut self, path: &Path) -> io::Result<()> {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let wh = path.with_file_name(format!(".wh.{name}"));
        let m = Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        };
        self.file(&wh, m, 0, io::empty())
    }

    /// Directory `path` replaces what the layers below had there (`.wh..wh..opq` in it).
    fn opaque(&mut self, path: &Path) -> io::Result<()> {
        let m = Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        };
        self.file(&path.join(".wh..wh..opq"), m, 0, io::empty())
    }

    /// `name` in `dir` (metadata `md`) as `path`, following nothing; a directory's handle is
    /// returned for its entries to follow. Sockets are left out, as Docker leaves them.
    pub fn entry(
        &mut self,
        dir: &Dir,
        name: &OsStr,
        md: &cap_std::fs::Metadata,
        path: &Path,
        owner: Option<(u64, u64)>,
        mode: Option<u32>,
    ) -> io::Result<Option<Dir>> {
        let mut m = meta_of(md);
        if let Some((uid, gid)) = owner {
            (m.uid, m.gid) = (uid, gid);
        }
        let ft = md.file_type();
        if ft.is_dir() {
            if let Some(mode) = mode {
                m.mode = mode;
            }
            self.dir(path, m)?;
            return Ok(crate::sys::open_dir_nofollow(dir, name).ok());
        }
        if ft.is_symlink() {
            let target = crate::sys::read_link(dir, name)?;
            return self.symlink(path, m, &target).map(|()| None);
        }
        if let Some(mode) = mode {
            m.mode = mode;
        }
        #[cfg(unix)]
        {
            use cap_std::fs::{FileTypeExt, MetadataExt};
            if ft.is_file() && md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = self.links.get(&key).cloned() {
                    return self.hard_link(path, m, &first).map(|()| None);
                }
                self.links.insert(key, path.to_path_buf());
            }
            let kind = if ft.is_char_device() {
                Some(tar::EntryType::Char)
            } else if ft.is_block_device() {
                Some(tar::EntryType::Block)
            } else if ft.is_fifo() {
                Some(tar::EntryType::Fifo)
            } else {
                None
            };
            if let Some(kind) = kind {
                return self.special(path, m, kind, md.rdev()).map(|()| None);
            }
        }
        if ft.is_file() {
            let f = crate::lifecycle::copy::open_regular(dir, name)?;
            let size = f.metadata()?.len();
            self.file(path, m, size, f)?;
        }
        Ok(None)
    }

    /// Finish the stream and store the blob.
    pub fn finish(self, store: &Store) -> Result<Layer, StoreError> {
        let io_err = |e: io::Error| StoreError::Io {
            path: store.tmp_dir().to_path_buf(),
            source: e,
        };
        let hashing = self.tar.into_inner().map_err(io_err)?;
        let diff_id = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
        let sink = hashing.inner.finish().map_err(io_err)?;
        let (digest, size) = store.commit(sink.0)?;
        Ok(Layer {
            descriptor: descriptor(media::OCI_LAYER_GZIP, digest, size),
            diff_id,
        })
    }
}

/// An entry's owner, mode and time.
pub fn meta_of(md: &cap_std::fs::Metadata) -> Meta {
    #[cfg(unix)]
    {
        use cap_std::fs::MetadataExt;
        Meta {
            mode: md.mode() & 0o7777,
            uid: md.uid().into(),
            gid: md.gid().into(),
            mtime: u64::try_from(md.mtime()).unwrap_or(0),
        }
    }
    #[cfg(not(unix))]
    Meta {
        mode: if md.is_dir() { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        mtime: 0,
    }
}

/// Files wharf makes in a container's upper directory to bind its own /etc files on: not
/// what a RUN step wrote (Docker's and buildah's builders leave them out too).
const MOUNT_POINTS: &[&str] = &["etc/hostname", "etc/hosts", "etc/resolv.conf"];

/// A RUN step's changes, read from the container's upper directory `upper`: overlay's
/// whiteouts (0/0 character devices) become `.wh.` files, opaque directories get
/// `.wh..wh..opq`. Walked on directory handles, names sorted.
pub fn write_upper(w: &mut LayerWriter, upper: &Path) -> io::Result<()> {
    let top = match Dir::open_ambient_dir(upper, cap_std::ambient_authority()) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    walk(w, top, PathBuf::new(), &mut |w, dir, name, md, path| {
        let rel = path.to_string_lossy();
        if MOUNT_POINTS.contains(&rel.as_ref()) {
            return Ok(None);
        }
        if crate::sys::is_whiteout(md) {
            w.whiteout(path)?;
            return Ok(None);
        }
        let child = w.entry(dir, name, md, path, None, None)?;
        if let Some(c) = &child
            && crate::sys::is_opaque(c)
        {
            w.opaque(path)?;
        }
        Ok(child)
    })
}

type Visit<'a> = dyn FnMut(&mut LayerWriter, &Dir, &OsStr, &cap_std::fs::Metadata, &Path) -> io::Result<Option<Dir>>
    + 'a;

/// Every entry under `root` (named `prefix/...`), depth first in name order, each handed
/// to `visit`, which writes it and returns a directory's handle to descend into.
pub fn walk(
    w: &mut LayerWriter,
    root: Dir,
    prefix: PathBuf,
    visit: &mut Visit<'_>,
) -> io::Result<()> {
    // Depth first with a stack of open directories: each level holds one descriptor, and
    // the depth is bounded as the unpacker bounds it.
    let mut stack: Vec<(Dir, PathBuf, std::vec::IntoIter<std::ffi::OsString>)> = Vec::new();
    let names = sorted(&root)?;
    stack.push((root, prefix, names.into_iter()));
    while let Some((dir, at, names)) = stack.last_mut() {
        let Some(name) = names.next() else {
            stack.pop();
            continue;
        };
        let Ok(md) = dir.symlink_metadata(&name) else {
            continue; // gone meanwhile
        };
        let path = at.join(&name);
        if let Some(child) = visit(w, dir, &name, &md, &path)? {
            if stack.len() >= crate::image::unpack::MAX_DEPTH {
                return Err(io::Error::other(format!(
                    "{}: nests deeper than {} directories",
                    path.display(),
                    crate::image::unpack::MAX_DEPTH
                )));
            }
            let names = sorted(&child)?;
            stack.push((child, path, names.into_iter()));
        }
    }
    Ok(())
}

fn sorted(dir: &Dir) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for e in dir.entries()? {
        names.push(e?.file_name());
    }
    names.sort();
    Ok(names)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Read;

    /// A RUN step's upper directory as overlayfs leaves it: a file deleted (a 0/0 character
    /// device), a directory replaced (opaque), a hard link, a symlink, and the /etc files
    /// wharf binds in.
    #[test]
    fn an_upper_directory_becomes_an_oci_layer() {
        if !crate::sys::can_mknod() {
            eprintln!("skipped: whiteouts need root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&crate::paths::Roots::new(tmp.path().join("root"))).unwrap();
        let upper = tmp.path().join("upper");
        std::fs::create_dir_all(upper.join("data")).unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("data/file"), "new\n").unwrap();
        std::fs::hard_link(upper.join("data/file"), upper.join("data/hard")).unwrap();
        std::os::unix::fs::symlink("file", upper.join("data/link")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        std::fs::write(upper.join("etc/motd"), "hi\n").unwrap();
        let top = Dir::open_ambient_dir(&upper, cap_std::ambient_authority()).unwrap();
        crate::sys::whiteout(&top, OsStr::new("gone")).unwrap();
        crate::sys::set_opaque(&top.open_dir("data").unwrap()).unwrap();
        let mut w = LayerWriter::new(&store, Some(1_700_000_000)).unwrap();
        write_upper(&mut w, &upper).unwrap();
        let layer = w.finish(&store).unwrap();
        let blob = store.open_blob(layer.descriptor.digest()).unwrap();
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut tar_bytes)
            .unwrap();
        use sha2::Digest as _;
        assert_eq!(
            layer.diff_id,
            format!("sha256:{}", hex::encode(Sha256::digest(&tar_bytes)))
        );
        let mut seen = Vec::new();
        for e in tar::Archive::new(&tar_bytes[..]).entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(
                h.mtime().unwrap(),
                1_700_000_000,
                "the timestamp fixes every time"
            );
            let kind = match h.entry_type() {
                tar::EntryType::Link => "hardlink",
                tar::EntryType::Symlink => "symlink",
                tar::EntryType::Directory => "dir",
                _ => "file",
            };
            seen.push(format!("{} {kind}", e.path().unwrap().display()));
        }
        assert_eq!(
            seen,
            [
                "data dir",
                "data/.wh..wh..opq file",
                "data/file file",
                "data/hard hardlink",
                "data/link symlink",
                "etc dir",
                "etc/motd file",
                ".wh.gone file",
            ]
        );
    }
}
