//! `wharf cp`: files into and out of a container, never through a symlink out of it.
//!
//! Every path in the container is resolved as the container itself would resolve it
//! ([`resolve_dir`]: `..` stops at its root, symlinks, absolute ones included, are followed
//! inside it), one name at a time on open directory handles, so a container that plants a
//! symlink (`/out -> /`, `/etc/passwd -> /host/etc/passwd`) never redirects a read or a write
//! to the host (Docker's CVE-2014-6407, CVE-2018-15664, CVE-2019-14271 taught this).
//!
//! Where a path lives: under a volume's mount point (`-v`), in that volume's directory;
//! otherwise in the container's root filesystem: a running native container's through
//! `/proc/PID/root` (its mounts, tmpfs and volumes included), a stopped one's overlay
//! mounted in a mount namespace private to this process. A wasm container's files beyond
//! its volumes are its image's, read-only to it and not copied.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::{Dir, Metadata};

use super::{LifecycleError, Session};
use crate::container::Record;
use crate::dispatch::Kind;
use crate::image::unpack::{normalize, resolve_dir};

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    Host(PathBuf),
    Container { container: String, path: String },
}

impl Side {
    /// Docker's reading of a `cp` argument: `CONTAINER:PATH` unless it names a local path
    /// (starts with `/` or `.`, or has no `:`; `./a:b` is the file `a:b`).
    pub fn parse(arg: &str) -> Side {
        let drive = cfg!(windows)
            && matches!(arg.as_bytes(), [d, b':', b'\\' | b'/', ..] if d.is_ascii_alphabetic());
        if arg.starts_with('/') || arg.starts_with('.') || drive {
            return Side::Host(PathBuf::from(arg));
        }
        match arg.split_once(':') {
            Some((c, p)) if !c.is_empty() && !c.contains('/') && !c.contains('\\') => {
                Side::Container {
                    container: c.to_string(),
                    path: p.to_string(),
                }
            }
            _ => Side::Host(PathBuf::from(arg)),
        }
    }
}

/// `cp` flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// `-L`: follow a symlink named as the source.
    pub follow_link: bool,
    /// `-a`: keep the source's owners (default into a container: root).
    pub archive: bool,
}

/// What a copy did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
    /// Sockets, FIFOs and devices, which are not copied.
    pub skipped: u64,
}

fn io_at(path: impl std::fmt::Display) -> impl FnOnce(io::Error) -> LifecycleError {
    move |cause| LifecycleError::Io {
        what: path.to_string(),
        cause,
    }
}

fn invalid(msg: impl Into<String>) -> LifecycleError {
    LifecycleError::Invalid(msg.into())
}

/// Copy `from` to `to` (exactly one of them in a container), with Docker's rules for
/// what lands where.
pub fn copy(
    session: &Session,
    from: &Side,
    to: &Side,
    opts: CopyOptions,
) -> Result<Copied, LifecycleError> {
    if [from, to]
        .iter()
        .any(|s| **s == Side::Host(PathBuf::from("-")))
    {
        return Err(invalid(
            "- (a tar stream on standard input or output) needs a container on the other side: wharf cp - CONTAINER:DIR, or wharf cp CONTAINER:PATH -",
        ));
    }
    let containers = session.containers();
    match (from, to) {
        (Side::Container { container, path }, Side::Host(dest)) => {
            let id = containers.find(container)?;
            // Held for the whole copy: no start, stop or removal meanwhile.
            let locked = containers.lock(&id)?;
            let fs = ContainerFs::open(session, &locked.record, locked.dir(), path, false)?;
            copy_out(&fs, path, dest, opts)
        }
        (Side::Host(src), Side::Container { container, path }) => {
            let id = containers.find(container)?;
            let locked = containers.lock(&id)?;
            let fs = ContainerFs::open(session, &locked.record, locked.dir(), path, true)?;
            copy_in(src, &fs, path, opts)
        }
        (Side::Container { .. }, Side::Container { .. }) => Err(invalid(
            "copying between containers is not supported: copy to the host first",
        )),
        (Side::Host(_), Side::Host(_)) => Err(invalid(
            "one side of a copy must be a container: CONTAINER:PATH",
        )),
    }
}

/// Unpack the tar stream `input` (plain, gzip or zstd) into the directory `path` of
/// `container`, as `docker cp - CONTAINER:DIR`. Entries are contained in that directory
/// whatever they name (`../`, absolute paths, links planted by earlier entries: the layer
/// unpacker's rules, with `cp`'s: nothing replaces a directory or is replaced by one);
/// owners are the container's root unless `-a` keeps the tar's; device nodes are not made.
pub fn copy_from_tar(
    session: &Session,
    container: &str,
    path: &str,
    opts: CopyOptions,
    input: &mut dyn io::Read,
) -> Result<Copied, LifecycleError> {
    let (_held, fs) = open_for_stream(session, container, path, true)?;
    let dir = match find(&fs.root, &fs.rel, true)? {
        Ok(f) if f.meta.is_dir() => f.open_dir().map_err(io_at(&fs.shown))?,
        Ok(_) => {
            return Err(invalid(format!(
                "{}: a tar stream is unpacked into a directory, and this is not one",
                fs.shown
            )));
        }
        Err(_) => {
            return Err(invalid(format!(
                "destination directory {} does not exist",
                fs.shown
            )));
        }
    };
    let unpack = crate::image::unpack::UnpackOptions {
        limits: crate::image::unpack::Limits::from_env().map_err(invalid)?,
        // The stream's own files: `.wh.` names are files here, not deletions.
        whiteouts: crate::image::unpack::WhiteoutFormat::Files,
        // Owners kept with -a; device nodes never made (a container could open them).
        privileged: opts.archive && crate::sys::is_root(),
        copy: true,
    };
    let report = crate::image::unpack::apply_layer(input, &dir, &unpack)
        .map_err(|e| invalid(format!("unpacking into {}: {e}", fs.shown)))?;
    Ok(Copied {
        files: report.entries,
        bytes: report.size,
        skipped: report.skipped_devices,
    })
}

/// Write `path` of `container` to `out` as a tar stream, as `docker cp CONTAINER:PATH -`:
/// entries named from the path's last name (`DIR/.`: its contents, unprefixed).
pub fn copy_to_tar(
    session: &Session,
    container: &str,
    path: &str,
    opts: CopyOptions,
    out: &mut dyn io::Write,
) -> Result<Copied, LifecycleError> {
    let (_held, fs) = open_for_stream(session, container, path, false)?;
    let found = find(&fs.root, &fs.rel, opts.follow_link)?
        .map_err(|_| invalid(format!("{}: no such file or directory", fs.shown)))?;
    let err = io_at(&fs.shown);
    let mut tar = tar::Builder::new(out);
    let mut files = 0;
    let name = copied_name(&fs.asked, &found);
    let dir = if found.meta.is_dir() && contents_only(path) {
        Some(found.open_dir().map_err(io_at(&fs.shown))?)
    } else {
        files += 1;
        match &found.name {
            Some(n) => super::export::append_entry(
                &found.parent,
                n,
                &found.meta,
                Path::new(&name),
                &mut tar,
            )
            .map_err(io_at(&fs.shown))?,
            None => {
                // The root itself: its entry, then what is in it.
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, &name, io::empty())
                    .map_err(io_at(&fs.shown))?;
                Some(found.parent.try_clone().map_err(io_at(&fs.shown))?)
            }
        }
    };
    if let Some(dir) = dir {
        let prefix = if contents_only(path) {
            PathBuf::new()
        } else {
            PathBuf::from(&name)
        };
        files += super::export::write_tree(&dir, &prefix, &mut tar).map_err(io_at(&fs.shown))?;
    }
    tar.finish().map_err(err)?;
    Ok(Copied {
        files,
        ..Copied::default()
    })
}

/// [`ContainerFs::open`] of `container`'s `path` for a tar stream, which lasts as long as
/// the other end wants (a terminal, a slow reader): a running container's files are
/// reached through the handles opened here, so its lock is let go at once (stop, kill and
/// rm need it); a stopped one's mount needs the lock kept (no start meanwhile), and is
/// returned first so that it outlives the mount.
fn open_for_stream(
    session: &Session,
    container: &str,
    path: &str,
    write: bool,
) -> Result<(Option<crate::container::Locked>, ContainerFs), LifecycleError> {
    let containers = session.containers();
    let l = containers.lock(&containers.find(container)?)?;
    let fs = ContainerFs::open(session, &l.record, l.dir(), path, write)?;
    let held = fs.mounted.is_some().then_some(l);
    Ok((held, fs))
}

/// The directory a container path lives in, and the path's components below it.
struct ContainerFs {
    root: Dir,
    rel: Vec<OsString>,
    /// The whole path asked for, in the container (its last name names a copy).
    asked: Vec<OsString>,
    /// How messages name where it is.
    shown: String,
    /// A stopped container's root mounted for the copy: unmounted when this goes (before
    /// the container's lock, which the caller holds longer).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    mounted: Option<PathBuf>,
}

impl Drop for ContainerFs {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(at) = &self.mounted {
            crate::backend::native::hide_root(at);
        }
    }
}

impl ContainerFs {
    fn open(
        session: &Session,
        r: &Record,
        dir: &Path,
        path: &str,
        write: bool,
    ) -> Result<ContainerFs, LifecycleError> {
        let name = r.shown_name().to_string();
        if path.is_empty() {
            return Err(invalid(format!(
                "{name}: the path in the container is empty"
            )));
        }
        let comps = normalize(path.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        // The innermost volume whose mount point holds the path.
        let mut volumes: Vec<_> = r
            .options
            .volumes
            .iter()
            .filter_map(|v| Some((normalize(v.container.as_bytes()).ok()?, v)))
            .filter(|(at, _)| comps.starts_with(at))
            .collect();
        volumes.sort_by_key(|(at, _)| std::cmp::Reverse(at.len()));
        let running = r.state.is_active() && r.state.workload().is_some();
        let use_volume = r.kind == Kind::Wasm || !running;
        if let Some((at, v)) = volumes.first().filter(|_| use_volume) {
            if write && v.read_only {
                return Err(invalid(format!(
                    "{name}: {path} is on a read-only volume ({}:{}:ro)",
                    v.named
                        .clone()
                        .unwrap_or_else(|| v.host.display().to_string()),
                    v.container
                )));
            }
            let root = Dir::open_ambient_dir(&v.host, cap_std::ambient_authority())
                .map_err(io_at(v.host.display()))?;
            return Ok(ContainerFs {
                root,
                rel: comps[at.len()..].to_vec(),
                asked: comps.clone(),
                shown: format!("{name}:{path}"),
                mounted: None,
            });
        }
        if r.kind == Kind::Wasm {
            return Err(invalid(format!(
                "{name} is a wasm container: {path} is not on one of its volumes; its other files are its image's, read-only to it (copy to or from a -v volume's path)"
            )));
        }
        if r.state.is_active() && !running {
            return Err(invalid(format!(
                "{name} is starting or restarting: try again in a moment"
            )));
        }
        let (root, mounted) = native_root(session, r, dir, running)?;
        Ok(ContainerFs {
            root,
            asked: comps.clone(),
            rel: comps,
            shown: format!("{name}:{path}"),
            mounted,
        })
    }
}

#[cfg(target_os = "linux")]
fn native_root(
    session: &Session,
    r: &Record,
    dir: &Path,
    running: bool,
) -> Result<(Dir, Option<PathBuf>), LifecycleError> {
    if running {
        let pid = r.state.workload().unwrap_or(0);
        let at = PathBuf::from(format!("/proc/{pid}/root"));
        let root = Dir::open_ambient_dir(&at, cap_std::ambient_authority())
            .map_err(io_at(at.display()))?;
        // Still the container's process after the open: a pid reused in between (the
        // container gone, another process in its place) is not taken for it.
        if r.state.workload() != Some(pid) {
            return Err(invalid(format!("{} ended meanwhile", r.shown_name())));
        }
        return Ok((root, None));
    }
    let store = session.store()?;
    let platform = r.platform.as_deref().and_then(|p| p.parse().ok());
    let prepared = crate::run::prepare(&store, &r.target, &r.options, platform.as_ref())?;
    let (at, mounted) =
        crate::backend::native::show_stopped_root(dir, &prepared.layers).map_err(|e| {
            LifecycleError::Io {
                what: format!("showing {}'s files", r.shown_name()),
                cause: io::Error::other(e.to_string()),
            }
        })?;
    let root =
        Dir::open_ambient_dir(&at, cap_std::ambient_authority()).map_err(io_at(at.display()))?;
    Ok((root, mounted.then_some(at)))
}

#[cfg(not(target_os = "linux"))]
fn native_root(
    _: &Session,
    r: &Record,
    _: &Path,
    _: bool,
) -> Result<(Dir, Option<PathBuf>), LifecycleError> {
    Err(invalid(format!(
        "{} is a native Linux container: its files are reachable on a Linux host only",
        r.shown_name()
    )))
}

/// An entry found in the container: its parent directory, name and what it is (`None`:
/// the root itself).
struct Found {
    parent: Dir,
    name: Option<OsString>,
    meta: Metadata,
}

/// Find `comps` under `root` as the container would (symlinks in the parents followed in
/// the root; the last one too with `follow`). `Ok(Err(path))`: it does not exist, and
/// `path` is where it would be (a dangling symlink's target); its parent exists.
fn find(
    root: &Dir,
    comps: &[OsString],
    follow: bool,
) -> Result<Result<Found, Vec<OsString>>, LifecycleError> {
    let shown = || format!("/{}", display(comps));
    let mut comps = comps.to_vec();
    for _ in 0..40 {
        let Some((name, parents)) = comps.split_last() else {
            let meta = root.dir_metadata().map_err(io_at("/"))?;
            return Ok(Ok(Found {
                parent: root.try_clone().map_err(io_at("/"))?,
                name: None,
                meta,
            }));
        };
        let parent = resolve_dir(root, parents, false).map_err(|e| match e {
            crate::image::unpack::UnpackError::Resolve { source, .. }
                if source.kind() == io::ErrorKind::NotFound =>
            {
                invalid(format!(
                    "{}: no such directory",
                    format_args!("/{}", display(parents))
                ))
            }
            other => invalid(other.to_string()),
        })?;
        let meta = match parent.symlink_metadata(name) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err(comps.clone())),
            Err(e) => return Err(io_at(shown())(e)),
        };
        if follow && meta.file_type().is_symlink() {
            let target = crate::sys::read_link(&parent, name).map_err(io_at(shown()))?;
            let target = target.to_string_lossy().into_owned();
            comps = if target.starts_with('/') {
                normalize(target.as_bytes()).map_err(|e| invalid(e.to_string()))?
            } else {
                // Relative to the link's directory; `..` stops at the root.
                let mut joined = parents.to_vec();
                for part in target.split('/') {
                    if part == ".." {
                        joined.pop();
                    } else if !part.is_empty() && part != "." {
                        joined.push(OsString::from(part));
                    }
                }
                joined
            };
            continue;
        }
        return Ok(Ok(Found {
            parent,
            name: Some(name.clone()),
            meta,
        }));
    }
    Err(invalid(format!("{}: too many levels of symlinks", shown())))
}

/// The name a copy out gives what it found: the name asked for (with `-L`, a link's copy
/// is named as the link, as Docker's), `rootfs` for the root.
fn copied_name(asked: &[OsString], found: &Found) -> OsString {
    asked
        .last()
        .or(found.name.as_ref())
        .cloned()
        .unwrap_or_else(|| OsString::from("rootfs"))
}

impl Found {
    /// The directory found (which it is), opened without following a link swapped in.
    fn open_dir(&self) -> io::Result<Dir> {
        match &self.name {
            Some(n) => crate::sys::open_dir_nofollow(&self.parent, n),
            None => self.parent.try_clone(),
        }
    }
}

fn display(comps: &[OsString]) -> String {
    comps
        .iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether a `cp` path asks for a directory's contents (`DIR/.`) rather than the directory.
fn contents_only(path: &str) -> bool {
    path.ends_with("/.") || path == "."
}

fn copy_out(
    fs: &ContainerFs,
    src_path: &str,
    dest: &Path,
    opts: CopyOptions,
) -> Result<Copied, LifecycleError> {
    let found = find(&fs.root, &fs.rel, opts.follow_link)?
        .map_err(|_| invalid(format!("{}: no such file or directory", fs.shown)))?;
    let src_name = copied_name(&fs.asked, &found);
    let dest_meta = std::fs::metadata(dest).ok();
    let target = match &dest_meta {
        Some(m) if m.is_dir() && found.meta.is_dir() && contents_only(src_path) => {
            dest.to_path_buf()
        }
        Some(m) if m.is_dir() => dest.join(&src_name),
        Some(_) if found.meta.is_dir() => {
            return Err(invalid(format!(
                "cannot copy directory {} to the file {}",
                fs.shown,
                dest.display()
            )));
        }
        Some(_) => dest.to_path_buf(),
        None => {
            if dest.to_string_lossy().ends_with('/') && !found.meta.is_dir() {
                return Err(invalid(format!(
                    "destination directory {} does not exist",
                    dest.display()
                )));
            }
            let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|p| !p.is_dir()) {
                return Err(invalid(format!(
                    "{}: no such directory",
                    parent.unwrap_or(Path::new(".")).display()
                )));
            }
            dest.to_path_buf()
        }
    };
    let mut copied = Copied::default();
    // (directory in the container, entry name in it or None for the directory itself,
    //  what it is, where it goes on the host). A directory is shared by its entries: one
    //  descriptor each, however many entries wait.
    let mut todo: Vec<(Arc<Dir>, Option<OsString>, Metadata, PathBuf)> =
        vec![(Arc::new(found.parent), found.name, found.meta, target)];
    while let Some((parent, name, meta, host)) = todo.pop() {
        let shown = host.display().to_string();
        let ft = meta.file_type();
        if ft.is_dir() {
            let dir = match &name {
                Some(n) => {
                    Arc::new(crate::sys::open_dir_nofollow(&parent, n).map_err(io_at(&fs.shown))?)
                }
                None => parent,
            };
            // Never through what is there already unless it is a real directory: a link
            // left by an earlier copy (the container's own symlink) is replaced, not used.
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    std::fs::remove_file(&host).map_err(io_at(&shown))?;
                    std::fs::create_dir(&host).map_err(io_at(&shown))?;
                }
                Err(_) => std::fs::create_dir(&host).map_err(io_at(&shown))?,
            }
            set_host_mode(&host, &meta, opts)?;
            for entry in dir.entries().map_err(io_at(&fs.shown))? {
                let entry = entry.map_err(io_at(&fs.shown))?;
                let child = entry.file_name();
                let m = dir.symlink_metadata(&child).map_err(io_at(&fs.shown))?;
                let into = host.join(&child);
                todo.push((dir.clone(), Some(child), m, into));
            }
        } else if ft.is_symlink() {
            let n = name.expect("a symlink has a name");
            let link = crate::sys::read_link(&parent, &n).map_err(io_at(&fs.shown))?;
            clear_host_entry(&host)?;
            host_symlink(&link, &host).map_err(io_at(&shown))?;
            copied.files += 1;
        } else if ft.is_file() {
            let n = name.expect("a file has a name");
            let mut from = open_regular(&parent, &n).map_err(io_at(&fs.shown))?;
            clear_host_entry(&host)?;
            // Made new, never opened through a link.
            let mut to = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&host)
                .map_err(io_at(&shown))?;
            copied.bytes += io::copy(&mut from, &mut to).map_err(io_at(&shown))?;
            copied.files += 1;
            drop(to);
            set_host_mode(&host, &meta, opts)?;
        } else {
            tracing::warn!(path = %shown, "not copied: a socket, FIFO or device");
            copied.skipped += 1;
        }
    }
    Ok(copied)
}

/// Remove what is at `host` unless it is a directory (which a file must not replace).
fn clear_host_entry(host: &Path) -> Result<(), LifecycleError> {
    match std::fs::symlink_metadata(host) {
        Ok(m) if m.is_dir() => Err(invalid(format!(
            "cannot overwrite the directory {} with a non-directory",
            host.display()
        ))),
        Ok(_) => std::fs::remove_file(host).map_err(io_at(host.display())),
        Err(_) => Ok(()),
    }
}

/// Open `name` in `parent` for reading only if it is a regular file now: a FIFO or device
/// swapped in after the listing is neither waited on nor read (opened without blocking,
/// then checked on the open handle).
pub fn open_regular(parent: &Dir, name: &OsStr) -> io::Result<cap_std::fs::File> {
    let mut o = cap_std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let f = parent.open_with(name, &o)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is no longer a regular file",
                std::path::Path::new(name).display()
            ),
        ));
    }
    Ok(f)
}

#[cfg(unix)]
fn host_symlink(target: &Path, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(windows)]
fn host_symlink(target: &Path, at: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, at)
}

#[cfg(unix)]
fn set_host_mode(host: &Path, meta: &Metadata, opts: CopyOptions) -> Result<(), LifecycleError> {
    use cap_std::fs::PermissionsExt as _;
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    std::fs::set_permissions(host, std::fs::Permissions::from_mode(mode))
        .map_err(io_at(host.display()))?;
    if opts.archive {
        use cap_std::fs::MetadataExt;
        let _ = std::os::unix::fs::lchown(host, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(())
}

#[cfg(windows)]
fn set_host_mode(_: &Path, _: &Metadata, _: CopyOptions) -> Result<(), LifecycleError> {
    Ok(())
}

fn copy_in(
    src: &Path,
    fs: &ContainerFs,
    dest_path: &str,
    opts: CopyOptions,
) -> Result<Copied, LifecycleError> {
    let src_meta = if opts.follow_link {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(io_at(src.display()))?;
    let src_name = src
        .file_name()
        .map(OsStr::to_os_string)
        .ok_or_else(|| invalid(format!("{}: names no file", src.display())))?;
    // Where it lands: (directory in the container, name in it).
    let existing = find(&fs.root, &fs.rel, true)?;
    let (parent, name) = match existing {
        Ok(f) if f.meta.is_dir() => {
            let dir = f.open_dir().map_err(io_at(&fs.shown))?;
            if src_meta.is_dir() && contents_only(&src.to_string_lossy()) {
                // DIR/. into an existing directory: the contents, merged.
                return copy_tree_in(src, &src_meta, dir, None, fs, opts);
            }
            (dir, src_name)
        }
        Ok(f) => {
            if src_meta.is_dir() {
                return Err(invalid(format!(
                    "cannot copy the directory {} over the file {}",
                    src.display(),
                    fs.shown
                )));
            }
            let name = f
                .name
                .expect("only the root has no name, and it is a directory");
            (f.parent, name)
        }
        Err(at) => {
            if dest_path.ends_with('/') {
                return Err(invalid(format!(
                    "destination directory {} does not exist",
                    fs.shown
                )));
            }
            // (A dangling symlink's target, in the container, as Docker writes through it.)
            let (name, parents) = at.split_last().expect("the root always exists");
            let parent =
                resolve_dir(&fs.root, parents, false).map_err(|e| invalid(e.to_string()))?;
            (parent, name.clone())
        }
    };
    copy_tree_in(src, &src_meta, parent, Some(name), fs, opts)
}

/// Copy host `src` to `name` in `parent` (with `None`: into `parent` itself, merged).
fn copy_tree_in(
    src: &Path,
    src_meta: &std::fs::Metadata,
    parent: Dir,
    name: Option<OsString>,
    fs: &ContainerFs,
    opts: CopyOptions,
) -> Result<Copied, LifecycleError> {
    let mut copied = Copied::default();
    let mut todo: Vec<(PathBuf, std::fs::Metadata, Arc<Dir>, Option<OsString>)> =
        vec![(src.to_path_buf(), src_meta.clone(), Arc::new(parent), name)];
    let err = |e: io::Error| io_at(&fs.shown)(e);
    while let Some((host, meta, parent, name)) = todo.pop() {
        let ft = meta.file_type();
        if ft.is_dir() {
            let dir = match &name {
                None => parent,
                Some(n) => {
                    match parent.symlink_metadata(n) {
                        Ok(m) if m.is_dir() => {}
                        Ok(_) => {
                            crate::image::unpack::remove_entry(&parent, n).map_err(err)?;
                            parent.create_dir(n).map_err(err)?;
                        }
                        Err(_) => parent.create_dir(n).map_err(err)?,
                    }
                    set_container_mode(&parent, n, &meta, opts)?;
                    Arc::new(crate::sys::open_dir_nofollow(&parent, n).map_err(err)?)
                }
            };
            for entry in std::fs::read_dir(&host).map_err(io_at(host.display()))? {
                let entry = entry.map_err(io_at(host.display()))?;
                let m = entry.metadata().map_err(io_at(entry.path().display()))?;
                todo.push((entry.path(), m, dir.clone(), Some(entry.file_name())));
            }
            continue;
        }
        let Some(n) = name else { continue };
        if let Ok(m) = parent.symlink_metadata(&n) {
            if m.is_dir() {
                return Err(invalid(format!(
                    "cannot overwrite the directory {} with the non-directory {}",
                    fs.shown,
                    host.display()
                )));
            }
            crate::image::unpack::remove_entry(&parent, &n).map_err(err)?;
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(&host).map_err(io_at(host.display()))?;
            crate::sys::symlink(&parent, &n, target.as_os_str()).map_err(err)?;
            #[cfg(unix)]
            if !opts.archive {
                let _ = crate::sys::lchown(&parent, &n, 0, 0);
            }
            copied.files += 1;
        } else if ft.is_file() {
            let mut from = std::fs::File::open(&host).map_err(io_at(host.display()))?;
            let mut to = parent
                .open_with(
                    &n,
                    cap_std::fs::OpenOptions::new().write(true).create_new(true),
                )
                .map_err(err)?;
            copied.bytes += io::copy(&mut from, &mut to).map_err(err)?;
            copied.files += 1;
            set_file_mode(&to, &meta, opts)?;
        } else {
            tracing::warn!(path = %host.display(), "not copied: a socket, FIFO or device");
            copied.skipped += 1;
        }
    }
    Ok(copied)
}

/// Who owns what is copied in: the container's root, or with `-a` the source's owner.
#[cfg(unix)]
fn owner(meta: &std::fs::Metadata, opts: CopyOptions) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    if opts.archive {
        (meta.uid(), meta.gid())
    } else {
        (0, 0)
    }
}

/// A file copied in: the source's mode; owned by the container's root, or with `-a` by the
/// source's owner.
#[cfg(unix)]
fn set_file_mode(
    f: &cap_std::fs::File,
    meta: &std::fs::Metadata,
    opts: CopyOptions,
) -> Result<(), LifecycleError> {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = owner(meta, opts);
    let _ = crate::sys::fchown(f, uid, gid);
    crate::sys::fchmod(f, meta.mode() & 0o7777).map_err(io_at("setting a copied file's mode"))
}

/// A directory copied in: `name` in `parent`.
#[cfg(unix)]
fn set_container_mode(
    parent: &Dir,
    name: &OsStr,
    meta: &std::fs::Metadata,
    opts: CopyOptions,
) -> Result<(), LifecycleError> {
    use cap_std::fs::PermissionsExt as _;
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = owner(meta, opts);
    let _ = crate::sys::lchown(parent, name, uid, gid);
    // (cap-std resolves `name` inside `parent`: swapped for a symlink meanwhile, it still
    // cannot lead out of it.)
    parent
        .set_permissions(
            name,
            cap_std::fs::Permissions::from_mode(meta.mode() & 0o7777),
        )
        .map_err(io_at("setting a copied directory's mode"))
}

#[cfg(windows)]
fn set_file_mode(
    _: &cap_std::fs::File,
    _: &std::fs::Metadata,
    _: CopyOptions,
) -> Result<(), LifecycleError> {
    Ok(())
}

#[cfg(windows)]
fn set_container_mode(
    _: &Dir,
    _: &OsStr,
    _: &std::fs::Metadata,
    _: CopyOptions,
) -> Result<(), LifecycleError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_read_as_docker_reads_them() {
        assert_eq!(
            Side::parse("web:/etc/hosts"),
            Side::Container {
                container: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(Side::parse("/tmp/a:b"), Side::Host("/tmp/a:b".into()));
        assert_eq!(Side::parse("./a:b"), Side::Host("./a:b".into()));
        assert_eq!(Side::parse("plain"), Side::Host("plain".into()));
        assert_eq!(Side::parse("-"), Side::Host("-".into()));
        assert!(contents_only("dir/.") && !contents_only("dir"));
    }
}
