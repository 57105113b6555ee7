//! Layer unpacking: applying one tar layer (plain, gzip or zstd) to its own directory.
//!
//! Each layer is unpacked once, into a directory of its own keyed by its diff id, and shared
//! by every container of every image that has it. Whiteouts are kept in the layer directory,
//! as overlayfs expects them (a 0:0 character device, the `trusted.overlay.opaque` xattr) when
//! wharf may create those, or as the tar's own `.wh.` marker files otherwise; `flatten`
//! applies either kind when layers are copied into one directory.
//!
//! Containment is the point of this module: no entry, symlink, hardlink, whiteout or implied
//! directory can create, change or delete anything outside the layer directory. Names are
//! clamped into the root, parents are resolved inside it (see `resolve`), and every change is
//! made through a directory handle and a single file name, never a joined path.

mod flatten;
mod layers;
mod resolve;

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use cap_std::fs::{Dir, OpenOptions};
use oci_spec::image::Digest;

pub use flatten::flatten;
pub use layers::{LayerDir, SIZES, ensure_layers, image_rootfs, uncompressed_size};
pub use resolve::{MAX_DEPTH, normalize, open_file_in_root, remove_entry, resolve_dir};

use super::blob::HashingReader;
use crate::sys;

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("layer entry {name:?}: refusing a {kind} at the root of the layer")]
    RootEntry { name: String, kind: String },
    #[error("layer entry {name:?}: invalid whiteout")]
    BadWhiteout { name: String },
    #[error("layer entry {name:?}: unsupported tar entry type {kind:?}")]
    UnsupportedEntry { name: String, kind: String },
    #[error("layer entry {name:?}: device number {major}:{minor} out of range")]
    BadDevice {
        name: String,
        major: u32,
        minor: u32,
    },
    #[error("layer entry {name:?}: hardlink target {target:?} {reason}")]
    BadHardlink {
        name: String,
        target: String,
        reason: String,
    },
    #[error("resolving {path} inside the layer: a path component is not a directory")]
    NotADirectory { path: String },
    #[error("resolving {path} inside the layer: too many levels of symlinks")]
    SymlinkLoop { path: String },
    #[error("resolving {path} inside the layer: {source}")]
    Resolve {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {name:?}: {source}")]
    Entry {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "layer expands to more than {limit} bytes (decompression bomb?); to allow more, set WHARF_MAX_LAYER_SIZE (or `wharf unpack --max-layer-size`)"
    )]
    TooLarge { limit: u64 },
    #[error(
        "image expands to more than {limit} bytes in all (decompression bomb?); to allow more, set WHARF_MAX_IMAGE_SIZE (or `wharf unpack --max-image-size`)"
    )]
    ImageTooLarge { limit: u64 },
    #[error("{0}")]
    BadLimit(String),
    #[error(
        "not enough free space to unpack: {available} bytes left on the filesystem of {path}, and wharf keeps {reserve} bytes free; free some space (`wharf system prune`) or set WHARF_MIN_FREE_SPACE"
    )]
    NoSpace {
        path: String,
        available: u64,
        reserve: u64,
    },
    #[error("layer has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("reading layer: {0}")]
    Read(#[source] io::Error),
    #[error(
        "layer {layer}: uncompressed content hashes to {actual}, the config's diff id is {expected}"
    )]
    DiffIdMismatch {
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("image has {layers} layers but its config lists {diff_ids} diff ids")]
    DiffIdCount { layers: usize, diff_ids: usize },
    #[error(transparent)]
    Store(#[from] Box<crate::image::StoreError>),
}

/// Caps against decompression bombs and full disks. The defaults can be changed with
/// `WHARF_MAX_LAYER_SIZE`, `WHARF_MAX_IMAGE_SIZE` and `WHARF_MIN_FREE_SPACE` (sizes such as
/// `40g`), read by [`Limits::from_env`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Uncompressed bytes in one layer.
    pub max_bytes: u64,
    /// Entries in one layer.
    pub max_entries: u64,
    /// Uncompressed bytes of all of an image's layers together.
    pub max_image_bytes: u64,
    /// Bytes to keep free on the filesystem being written (at most 5% of its size is asked
    /// for, so a small filesystem is not refused outright).
    pub min_free_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 16 << 30,
            max_entries: 2_000_000,
            max_image_bytes: 32 << 30,
            min_free_bytes: 1 << 30,
        }
    }
}

impl Limits {
    /// The defaults, with the environment's overrides (a bad value is an error that names it).
    pub fn from_env() -> Result<Self, String> {
        let mut l = Limits::default();
        for (var, field) in [
            ("WHARF_MAX_LAYER_SIZE", &mut l.max_bytes),
            ("WHARF_MAX_IMAGE_SIZE", &mut l.max_image_bytes),
            ("WHARF_MIN_FREE_SPACE", &mut l.min_free_bytes),
        ] {
            if let Ok(v) = std::env::var(var) {
                *field = crate::run::options::parse_size(&v)
                    .map_err(|_| format!("{var}={v:?}: expected a size such as 40g"))?;
            }
        }
        Ok(l)
    }
}

/// How much of an image may still be written, and where (for the free-space checks).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Bytes the image may still add.
    pub image_left: u64,
}

/// How whiteouts are represented in an unpacked layer directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhiteoutFormat {
    /// overlayfs: 0:0 character devices and the `trusted.overlay.opaque` xattr.
    Overlay,
    /// The tar's own `.wh.NAME` and `.wh..wh..opq` marker files.
    Files,
}

impl WhiteoutFormat {
    /// Overlay where this process may make whiteout devices, files otherwise.
    pub fn for_host() -> Self {
        if sys::can_mknod() {
            WhiteoutFormat::Overlay
        } else {
            WhiteoutFormat::Files
        }
    }
}

/// How to unpack.
#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    pub limits: Limits,
    pub whiteouts: WhiteoutFormat,
    /// chown entries and create device nodes (root only).
    pub privileged: bool,
    /// `cp`'s rules rather than a layer's: a directory and a non-directory never replace
    /// each other (Docker's NoOverwriteDirNonDir: an entry over a volume's mount point or
    /// a `/lib -> usr/lib` link is refused, not removed), and no device node is made.
    pub copy: bool,
}

impl UnpackOptions {
    /// The defaults, with the size limits from the environment ([`Limits::from_env`]).
    pub fn from_env() -> Result<Self, UnpackError> {
        Ok(UnpackOptions {
            limits: Limits::from_env().map_err(UnpackError::BadLimit)?,
            ..UnpackOptions::default()
        })
    }
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            limits: Limits::default(),
            whiteouts: WhiteoutFormat::for_host(),
            privileged: sys::is_root(),
            copy: false,
        }
    }
}

/// What unpacking one layer found.
#[derive(Debug, Clone)]
pub struct UnpackReport {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Uncompressed size.
    pub size: u64,
    pub entries: u64,
    /// Device nodes not created for lack of privilege.
    pub skipped_devices: u64,
}

/// Wrap `r` in the decompressor its first bytes call for (gzip, zstd, or none).
pub fn decompress<'a>(r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(256 * 1024, r);
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut d = zstd::stream::read::Decoder::with_buffer(r)?;
        // Refuse frames that ask for more than a 128 MiB window.
        d.window_log_max(27)?;
        Ok(Box::new(d))
    } else {
        Ok(Box::new(r))
    }
}

/// Why a [`Capped`] reader stopped.
const TRIP_LAYER: u8 = 1;
const TRIP_IMAGE: u8 = 2;
const TRIP_SPACE: u8 = 3;

/// How often (in bytes read) the free space is looked at again.
const SPACE_CHECK_EVERY: u64 = 16 << 20;

/// A reader that fails once more than its limits allow pass, or the filesystem being
/// written runs low, and says which through `tripped`.
struct Capped<'a, R> {
    inner: R,
    layer_left: u64,
    image_left: u64,
    since_check: u64,
    space: &'a dyn Fn() -> bool,
    tripped: Arc<AtomicU8>,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)? as u64;
        let trip = if n > self.layer_left {
            TRIP_LAYER
        } else if n > self.image_left {
            TRIP_IMAGE
        } else {
            self.since_check += n;
            if self.since_check >= SPACE_CHECK_EVERY {
                self.since_check = 0;
                if (self.space)() { 0 } else { TRIP_SPACE }
            } else {
                0
            }
        };
        if trip != 0 {
            self.tripped.store(trip, Ordering::Relaxed);
            return Err(io::Error::other("size limit exceeded"));
        }
        self.layer_left -= n;
        self.image_left -= n;
        Ok(n as usize)
    }
}

/// Unpack the (possibly compressed) layer tar `r` into `root`.
pub fn apply_layer(
    r: impl Read,
    root: &Dir,
    opts: &UnpackOptions,
) -> Result<UnpackReport, UnpackError> {
    let budget = Budget {
        image_left: opts.limits.max_image_bytes,
    };
    apply_layer_within(r, root, opts, budget)
}

/// Check there is room on `root`'s filesystem beyond the reserve.
fn check_space(root: &Dir, limits: &Limits) -> Result<(), UnpackError> {
    if let Some((available, total)) = sys::free_space(root) {
        let reserve = limits.min_free_bytes.min(total / 20);
        if available <= reserve {
            return Err(UnpackError::NoSpace {
                path: "the layer cache".into(),
                available,
                reserve,
            });
        }
    }
    Ok(())
}

/// [`apply_layer`] for one layer of an image that may add at most `budget.image_left`
/// bytes more.
pub(crate) fn apply_layer_within(
    r: impl Read,
    root: &Dir,
    opts: &UnpackOptions,
    budget: Budget,
) -> Result<UnpackReport, UnpackError> {
    check_space(root, &opts.limits)?;
    let tripped = Arc::new(AtomicU8::new(0));
    let space_ok = || check_space(root, &opts.limits).is_ok();
    let capped = Capped {
        inner: decompress(r).map_err(UnpackError::Read)?,
        layer_left: opts.limits.max_bytes,
        image_left: budget.image_left,
        since_check: 0,
        space: &space_ok,
        tripped: tripped.clone(),
    };
    let mut hashing = HashingReader::new(capped);
    let over = |e: UnpackError| match tripped.load(Ordering::Relaxed) {
        TRIP_LAYER => UnpackError::TooLarge {
            limit: opts.limits.max_bytes,
        },
        TRIP_IMAGE => UnpackError::ImageTooLarge {
            limit: opts.limits.max_image_bytes,
        },
        TRIP_SPACE => check_space(root, &opts.limits).err().unwrap_or(e),
        _ => e,
    };
    let mut state = Unpacker {
        root,
        opts,
        dirs: Vec::new(),
        cache: None,
        entries: 0,
        skipped_devices: 0,
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        // A file written past the free space fails with ENOSPC: say which limit that is.
        let over = |e: UnpackError| match over(e) {
            UnpackError::Entry { source, .. } | UnpackError::Read(source)
                if source.raw_os_error() == Some(28) =>
            {
                check_space(root, &opts.limits)
                    .err()
                    .unwrap_or(UnpackError::Read(source))
            }
            other => other,
        };
        let entries = archive.entries().map_err(UnpackError::Read).map_err(over)?;
        for entry in entries {
            let entry = entry.map_err(UnpackError::Read).map_err(over)?;
            state.entries += 1;
            if state.entries > opts.limits.max_entries {
                return Err(UnpackError::TooManyEntries {
                    limit: opts.limits.max_entries,
                });
            }
            state.entry(entry).map_err(over)?;
        }
    }
    let (diff_id, size) = hashing.finish().map_err(UnpackError::Read).map_err(over)?;
    state.finish_dirs()?;
    Ok(UnpackReport {
        diff_id,
        size,
        entries: state.entries,
        skipped_devices: state.skipped_devices,
    })
}

/// Ownership, mode and times, applied to directories after all entries are in (so a
/// read-only directory does not block its own content).
struct DirMeta {
    comps: Vec<OsString>,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Unpacker<'a> {
    root: &'a Dir,
    opts: &'a UnpackOptions,
    dirs: Vec<DirMeta>,
    /// The last parent directory resolved, valid until something is removed or a symlink made.
    cache: Option<(Vec<OsString>, Dir)>,
    entries: u64,
    skipped_devices: u64,
}

impl Unpacker<'_> {
    fn parent(&mut self, comps: &[OsString]) -> Result<Dir, UnpackError> {
        if let Some((cached, dir)) = &self.cache
            && cached.as_slice() == comps
        {
            return dir.try_clone().map_err(|source| UnpackError::Resolve {
                path: resolve::display(comps),
                source,
            });
        }
        let dir = resolve_dir(self.root, comps, true)?;
        self.cache = Some((
            comps.to_vec(),
            dir.try_clone().map_err(|source| UnpackError::Resolve {
                path: resolve::display(comps),
                source,
            })?,
        ));
        Ok(dir)
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let kind = entry.header().entry_type();
        let comps = normalize(&raw_name)?;
        let entry_err = |source: io::Error| UnpackError::Entry {
            name: name.clone(),
            source,
        };
        let header = entry.header().clone();
        let mode = header.mode().map_err(entry_err)?;
        // Empty numeric fields read as 0, as Go's archive/tar (and so Docker) reads them.
        // An owner of 2^32 or more would wrap, and (uid_t)-1 means "unchanged" to lchown.
        let owner = |v: u64, what: &str| {
            crate::run::options::check_id(v, what)
                .map_err(|m| entry_err(io::Error::new(io::ErrorKind::InvalidData, m)))
        };
        let uid = owner(header.uid().unwrap_or(0), "owner")?;
        let gid = owner(header.gid().unwrap_or(0), "group")?;
        let mtime = header.mtime().unwrap_or(0) as i64;
        let xattrs = read_xattrs(&mut entry).map_err(entry_err)?;

        let Some((base, parent_comps)) = comps.split_last() else {
            // The entry names the root itself: only a directory may, and only its metadata.
            if kind.is_dir() {
                self.dirs.push(DirMeta {
                    comps: vec![],
                    mode,
                    uid,
                    gid,
                    mtime,
                    xattrs,
                });
                return Ok(());
            }
            return Err(UnpackError::RootEntry {
                name,
                kind: format!("{kind:?}"),
            });
        };
        let base_str = base.to_string_lossy();
        if let Some(target) = base_str.strip_prefix(".wh.") {
            return self.whiteout(&name, parent_comps, base, target);
        }

        let parent = self.parent(parent_comps)?;
        let existing = parent.symlink_metadata(base).ok();
        use tar::EntryType as T;
        if self.opts.copy
            && let Some(m) = &existing
            && m.is_dir() != (kind == T::Directory)
        {
            return Err(UnpackError::BadName {
                name,
                reason: if m.is_dir() {
                    "cannot overwrite a directory with a non-directory".into()
                } else {
                    "cannot overwrite a non-directory with a directory".into()
                },
            });
        }
        if self.opts.copy && matches!(kind, T::Char | T::Block) {
            tracing::debug!(entry = %name, "not copying a device node");
            self.skipped_devices += 1;
            return Ok(());
        }
        match kind {
            T::Directory => {
                if let Some(m) = existing {
                    if !m.is_dir() {
                        parent.remove_file(base).map_err(entry_err)?;
                        parent.create_dir(base).map_err(entry_err)?;
                        self.cache = None;
                    }
                } else {
                    parent.create_dir(base).map_err(entry_err)?;
                }
                self.dirs.push(DirMeta {
                    comps: comps.clone(),
                    mode,
                    uid,
                    gid,
                    mtime,
                    xattrs,
                });
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                if existing.is_some() {
                    resolve::remove_entry(&parent, base).map_err(entry_err)?;
                    self.cache = None;
                }
                let mut opts = OpenOptions::new();
                opts.write(true).create_new(true);
                let mut file = parent.open_with(base, &opts).map_err(entry_err)?;
                io::copy(&mut entry, &mut file).map_err(UnpackError::Read)?;
                if self.opts.privileged {
                    sys::fchown(&file, uid, gid).map_err(entry_err)?;
                }
                sys::fchmod(&file, mode).map_err(entry_err)?;
                for (k, v) in &xattrs {
                    set_xattr_lenient(&file, k, v);
                }
                sys::set_mtime_fd(&file, mtime).map_err(entry_err)?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| UnpackError::BadName {
                        name: name.clone(),
                        reason: "symlink without a target".into(),
                    })?
                    .into_owned();
                if existing.is_some() {
                    resolve::remove_entry(&parent, base).map_err(entry_err)?;
                }
                self.cache = None;
                sys::symlink(&parent, base, &target_os_string(&target, &name)?)
                    .map_err(entry_err)?;
                if self.opts.privileged {
                    sys::lchown(&parent, base, uid, gid).map_err(entry_err)?;
                }
                sys::set_mtime_nofollow(&parent, base, mtime).map_err(entry_err)?;
            }
            T::Link => self.hardlink(&name, &entry, &parent, base, existing.is_some())?,
            T::Fifo | T::Char | T::Block => {
                // Device numbers mean something only for devices: GNU tar and Python's tarfile
                // leave them empty (not "0") for a FIFO, which the tar crate cannot parse.
                let (major, minor) = if kind == T::Fifo {
                    (0, 0)
                } else {
                    (
                        header.device_major().map_err(entry_err)?.unwrap_or(0),
                        header.device_minor().map_err(entry_err)?.unwrap_or(0),
                    )
                };
                if major > 0xfff || minor > 0xf_ffff {
                    return Err(UnpackError::BadDevice { name, major, minor });
                }
                let node = match kind {
                    T::Fifo => sys::NodeKind::Fifo,
                    T::Char => sys::NodeKind::Char,
                    _ => sys::NodeKind::Block,
                };
                if node != sys::NodeKind::Fifo && !self.opts.privileged {
                    tracing::debug!(entry = %name, "skipping device node without privilege");
                    self.skipped_devices += 1;
                    return Ok(());
                }
                if existing.is_some() {
                    resolve::remove_entry(&parent, base).map_err(entry_err)?;
                    self.cache = None;
                }
                sys::mknod(&parent, base, node, mode, major, minor).map_err(entry_err)?;
                if self.opts.privileged {
                    sys::lchown(&parent, base, uid, gid).map_err(entry_err)?;
                }
                sys::set_mtime_nofollow(&parent, base, mtime).map_err(entry_err)?;
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => {}
            other => {
                return Err(UnpackError::UnsupportedEntry {
                    name,
                    kind: format!("{other:?}"),
                });
            }
        }
        Ok(())
    }

    fn hardlink<R: Read>(
        &mut self,
        name: &str,
        entry: &tar::Entry<'_, R>,
        parent: &Dir,
        base: &OsStr,
        exists: bool,
    ) -> Result<(), UnpackError> {
        let bad = |target: &str, reason: &str| UnpackError::BadHardlink {
            name: name.to_string(),
            target: target.to_string(),
            reason: reason.to_string(),
        };
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| bad("", "is missing"))?
            .into_owned();
        let target_name = String::from_utf8_lossy(&raw).into_owned();
        let target = normalize(&raw)?;
        let Some((tbase, tparent_comps)) = target.split_last() else {
            return Err(bad(&target_name, "is the layer root"));
        };
        let tparent = resolve_dir(self.root, tparent_comps, false)
            .map_err(|_| bad(&target_name, "does not exist in the layer"))?;
        match tparent.symlink_metadata(tbase) {
            Ok(m) if m.is_dir() => return Err(bad(&target_name, "is a directory")),
            Ok(_) => {}
            Err(_) => return Err(bad(&target_name, "does not exist in the layer")),
        }
        if exists {
            resolve::remove_entry(parent, base).map_err(|source| UnpackError::Entry {
                name: name.to_string(),
                source,
            })?;
            self.cache = None;
        }
        tparent
            .hard_link(tbase, parent, base)
            .map_err(|source| UnpackError::Entry {
                name: name.to_string(),
                source,
            })
    }

    fn whiteout(
        &mut self,
        name: &str,
        parent_comps: &[OsString],
        base: &OsStr,
        target: &str,
    ) -> Result<(), UnpackError> {
        let entry_err = |source: io::Error| UnpackError::Entry {
            name: name.to_string(),
            source,
        };
        if target == ".wh..opq" {
            let dir = self.parent(parent_comps)?;
            return match self.opts.whiteouts {
                WhiteoutFormat::Overlay => sys::set_opaque(&dir).map_err(entry_err),
                WhiteoutFormat::Files => touch(&dir, base).map_err(entry_err),
            };
        }
        if target.starts_with(".wh.") {
            // AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): nothing to apply.
            tracing::debug!(entry = %name, "skipping aufs metadata");
            return Ok(());
        }
        if target.is_empty() || target == "." || target == ".." {
            return Err(UnpackError::BadWhiteout {
                name: name.to_string(),
            });
        }
        let dir = self.parent(parent_comps)?;
        self.cache = None;
        match self.opts.whiteouts {
            WhiteoutFormat::Overlay => {
                let target = OsStr::new(target);
                resolve::remove_entry(&dir, target).map_err(entry_err)?;
                sys::whiteout(&dir, target).map_err(entry_err)
            }
            WhiteoutFormat::Files => touch(&dir, base).map_err(entry_err),
        }
    }

    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        // Deepest first, so setting a parent's mtime is not undone by work in a child.
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.comps.len()));
        for d in dirs {
            let dir_err = |source: io::Error| UnpackError::Entry {
                name: resolve::display(&d.comps),
                source,
            };
            let (parent, base) = match d.comps.split_last() {
                None => (self.root.try_clone().map_err(dir_err)?, OsString::from(".")),
                Some((base, parent_comps)) => {
                    let Ok(parent) = resolve_dir(self.root, parent_comps, false) else {
                        continue; // removed again by a later entry
                    };
                    match parent.symlink_metadata(base) {
                        Ok(m) if m.is_dir() => (parent, base.clone()),
                        _ => continue,
                    }
                }
            };
            let dir = sys::open_dir_for_metadata(&parent, &base).map_err(dir_err)?;
            if self.opts.privileged {
                sys::fchown(&dir, d.uid, d.gid).map_err(dir_err)?;
            }
            sys::fchmod(&dir, d.mode).map_err(dir_err)?;
            for (k, v) in &d.xattrs {
                set_xattr_lenient(&dir, k, v);
            }
            sys::set_mtime_fd(&dir, d.mtime).map_err(dir_err)?;
        }
        Ok(())
    }
}

fn touch(dir: &Dir, name: &OsStr) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    dir.open_with(name, &opts).map(drop)
}

#[cfg(unix)]
fn target_os_string(target: &[u8], _name: &str) -> Result<OsString, UnpackError> {
    use std::os::unix::ffi::OsStrExt;
    Ok(OsStr::from_bytes(target).to_os_string())
}

#[cfg(not(unix))]
fn target_os_string(target: &[u8], name: &str) -> Result<OsString, UnpackError> {
    String::from_utf8(target.to_vec())
        .map(OsString::from)
        .map_err(|_| UnpackError::BadName {
            name: name.to_string(),
            reason: "symlink target is not UTF-8".into(),
        })
}

/// The `SCHILY.xattr.*` records of an entry, minus overlayfs's own attributes (a layer must
/// not be able to steer the overlay mount).
fn read_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                if attr.starts_with("trusted.overlay.") || attr.starts_with("user.overlay.") {
                    continue;
                }
                out.push((attr.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

#[cfg(unix)]
fn set_xattr_lenient(fd: impl std::os::fd::AsFd, key: &str, value: &[u8]) {
    if let Err(e) = sys::set_xattr(fd, key, value) {
        tracing::debug!(xattr = key, error = %e, "extended attribute not set");
    }
}

#[cfg(not(unix))]
fn set_xattr_lenient<T>(_: T, _: &str, _: &[u8]) {}

#[cfg(test)]
mod tests;
