//! The container's root filesystem: an overlay of the shared, read-only layer directories
//! with a private upper directory, the standard mounts (`/proc`, `/dev`, `/sys`, …), volumes,
//! masked and read-only paths, then `pivot_root` into it.
//!
//! Every mount target is resolved inside the new root (symlinks followed as the container
//! would see them, never out of it) and the mount is made onto the resolved file
//! descriptor, so an image cannot redirect a mount onto the host (CVE-2021-30465). A target
//! that is itself a symlink in the image (`/proc -> /`) is refused.

use std::ffi::OsString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};

use super::{ChildError, NativeError};
use crate::image::unpack::{self, LayerDir, normalize};

/// What kind of object a mount target must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Dir,
    File,
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ChildError {
    let what = what.into();
    move |e| ChildError::Setup(format!("{what}: {e}"))
}

/// Resolve `dest` inside `root` (creating it as `kind` when missing) and return an `O_PATH`
/// descriptor of it. Refuses a final component that is a symlink.
fn resolve_target(root: &Dir, dest: &str, kind: Target) -> Result<OwnedFd, ChildError> {
    let comps = normalize(dest.as_bytes())
        .map_err(|e| ChildError::Setup(format!("mount target {dest}: {e}")))?;
    let parent_dir = match comps.split_last() {
        None => root
            .try_clone()
            .map_err(|e| ChildError::Setup(format!("{dest}: {e}")))?,
        Some((_, parent)) => unpack::resolve_dir(root, parent, true)
            .map_err(|e| ChildError::Setup(format!("mount target {dest}: {e}")))?,
    };
    let name: OsString = comps.last().cloned().unwrap_or_else(|| ".".into());
    match parent_dir.symlink_metadata(&name) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(ChildError::Setup(format!(
                "mount target {dest} is a symlink in the image; refusing to mount over it"
            )));
        }
        Ok(m) if kind == Target::Dir && !m.is_dir() => {
            return Err(ChildError::Setup(format!(
                "mount target {dest} is not a directory"
            )));
        }
        Ok(m) if kind == Target::File && m.is_dir() => {
            return Err(ChildError::Setup(format!(
                "mount target {dest} is a directory"
            )));
        }
        Ok(_) => {}
        Err(_) => match kind {
            Target::Dir => parent_dir
                .create_dir(&name)
                .map_err(|e| ChildError::Setup(format!("creating mount target {dest}: {e}")))?,
            Target::File => {
                let mut o = cap_std::fs::OpenOptions::new();
                o.write(true).create(true);
                parent_dir
                    .open_with(&name, &o)
                    .map_err(|e| ChildError::Setup(format!("creating mount target {dest}: {e}")))?;
            }
        },
    }
    let fd = rustix::fs::openat(
        &parent_dir,
        name.as_os_str(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| ChildError::Setup(format!("opening mount target {dest}: {e}")))?;
    Ok(fd)
}

/// Files under /proc a bind mount may cover (runc's list: lxcfs's virtualised views).
const PROC_FILES_ALLOWED: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Refuse a mount whose target (already resolved inside the root) is on procfs or sysfs:
/// an image's symlink (`/data -> /proc/self`) must not turn a volume or tmpfs at `/data/attr`
/// into a mount over the container's `/proc/1/attr` (CVE-2019-16884, CVE-2019-19921). Only
/// the files runc allows under /proc may be covered, and only by a bind mount.
fn refuse_proc_and_sys(fd: &OwnedFd, dest: &str, bind: bool) -> Result<(), ChildError> {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    let st = nix::sys::statfs::fstatfs(fd).map_err(sys(format!(
        "checking the filesystem of mount target {dest}"
    )))?;
    let magic = st.filesystem_type().0 as i64;
    let what = match magic {
        PROC_SUPER_MAGIC if bind && PROC_FILES_ALLOWED.contains(&dest) => return Ok(()),
        PROC_SUPER_MAGIC => "procfs",
        SYSFS_MAGIC => "sysfs",
        _ => return Ok(()),
    };
    Err(ChildError::Setup(format!(
        "mount target {dest} is on {what} (through a symlink in the image?): refusing to mount over it"
    )))
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Map OCI mount options to flags and the data string.
fn parse_options(options: &[String]) -> (MsFlags, bool, String) {
    let mut flags = MsFlags::empty();
    let mut bind = false;
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "bind" => bind = true,
            "rbind" => {
                bind = true;
                flags |= MsFlags::MS_REC;
            }
            // Propagation is applied after the mount (`propagation`), not with it.
            o if propagation(o).is_some() => {}
            other => data.push(other.to_string()),
        }
    }
    (flags, bind, data.join(","))
}

/// A propagation option's flags (runc's table): `shared`, `rslave`, `runbindable`...
fn propagation(option: &str) -> Option<MsFlags> {
    let (rec, kind) = match option.strip_prefix('r') {
        Some(k) if matches!(k, "private" | "slave" | "shared" | "unbindable") => {
            (MsFlags::MS_REC, k)
        }
        _ => (MsFlags::empty(), option),
    };
    let flag = match kind {
        "private" => MsFlags::MS_PRIVATE,
        "slave" => MsFlags::MS_SLAVE,
        "shared" => MsFlags::MS_SHARED,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(flag | rec)
}

/// The propagation a mount's options ask for, last one winning.
fn propagation_of(options: &[String]) -> Option<MsFlags> {
    options.iter().filter_map(|o| propagation(o)).next_back()
}

/// The spec's `rootfsPropagation` as flags (checked before clone by the preflight).
pub(super) fn rootfs_propagation(spec: &Spec) -> Result<Option<MsFlags>, String> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => Ok(None),
        Some(p) => propagation(p)
            .map(Some)
            .ok_or_else(|| format!("rootfsPropagation {p:?} is not a mount propagation")),
    }
}

/// Makes the mount holding `path` private in this (the container's) mount namespace if
/// it is shared, as runc does: a root filesystem mounted under a shared mount would be
/// propagated to the host's peers, and `pivot_root` refuses a shared parent.
fn make_parent_private(path: &Path) -> Result<(), ChildError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| ChildError::Setup(format!("/proc/self/mountinfo: {e}")))?;
    let unescape = |f: &str| {
        f.replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
    };
    let mut best: Option<(PathBuf, bool)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(dash)) = (fields.get(4), fields.iter().position(|f| *f == "-"))
        else {
            continue;
        };
        let point = PathBuf::from(unescape(point));
        if path.starts_with(&point)
            && best
                .as_ref()
                .is_none_or(|(b, _)| point.as_os_str().len() >= b.as_os_str().len())
        {
            let shared = fields[6.min(dash)..dash]
                .iter()
                .any(|f| f.starts_with("shared:"));
            best = Some((point, shared));
        }
    }
    if let Some((point, true)) = best {
        mount(
            None::<&str>,
            &point,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(sys(format!("making {} private", point.display())))?;
    }
    Ok(())
}

/// What the container's root filesystem needs, prepared by the parent.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    /// The unpacked layers, lowest first.
    pub layers: &'a [LayerDir],
    /// `layers/`: lower directories are given relative to it (overlay's option length limit).
    pub layers_dir: &'a Path,
    pub state_dir: &'a Path,
    /// The container's cgroup directories (bind-mounted read-only at `/sys/fs/cgroup`).
    pub cgroup_dirs: &'a [PathBuf],
    pub cgroup_v2: bool,
    pub private_network: bool,
    /// The image was copied into `rootfs/` (no overlayfs): bind it instead of stacking.
    pub copy_root: bool,
    /// A bundle's own root filesystem (`wharf-runtime`): bound onto itself and entered as
    /// it is, instead of an overlay of layers.
    pub bundle_rootfs: Option<&'a Path>,
}

/// Build the root filesystem and pivot into it. Runs in the child, in its own mount
/// namespace, before any capability is dropped.
pub fn setup(plan: &RootfsPlan<'_>) -> Result<(), ChildError> {
    // The host's mounts as the spec's rootfsPropagation asks (runc's default is rslave;
    // wharf's is rprivate: nothing mounted on the host appears in the container later,
    // and nothing of the container's reaches the host), but never the root filesystem's
    // own mount: what is mounted on and in it stays the container's.
    let requested = rootfs_propagation(plan.spec).map_err(ChildError::Setup)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        requested.unwrap_or(MsFlags::MS_REC | MsFlags::MS_PRIVATE),
        None::<&str>,
    )
    .map_err(sys("setting the propagation of /"))?;
    let rootfs = match plan.bundle_rootfs {
        Some(r) => {
            make_parent_private(r)?;
            mount(
                Some(r),
                r,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(sys("bind-mounting the bundle's root filesystem"))?;
            r.to_path_buf()
        }
        None => {
            let rootfs = plan.state_dir.join("rootfs");
            make_parent_private(&rootfs)?;
            mount_overlay(plan, &rootfs)?;
            rootfs
        }
    };
    let root = Dir::open_ambient_dir(&rootfs, ambient_authority())
        .map_err(|e| ChildError::Setup(format!("opening the root filesystem: {e}")))?;

    let mounts: Vec<Mount> = plan.spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        mount_one(&root, m, plan)?;
        if m.destination() == Path::new("/dev") {
            populate_dev(&root)?;
        }
    }
    for d in super::launch::devices(plan.spec) {
        make_device(&root, d)?;
    }
    for (file, name) in [
        ("hosts", "/etc/hosts"),
        ("hostname", "/etc/hostname"),
        ("resolv.conf", "/etc/resolv.conf"),
    ] {
        let src = plan.state_dir.join(file);
        if src.exists() {
            let fd = resolve_target(&root, name, Target::File)?;
            mount(
                Some(&src),
                &fd_path(&fd),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(sys(format!("bind-mounting {name}")))?;
        }
    }
    let linux = plan.spec.linux().as_ref();
    // The spec's sysctls, through the container's own /proc (its namespaces), before
    // /proc/sys is made read-only below.
    for (key, value) in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        write_sysctl(&root, key, value)?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask(&root, p)?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        make_readonly(&root, p)?;
    }
    drop(root);

    // pivot_root(".", "."): the old root ends up stacked on the new one; detach it. As
    // runc: from a descriptor of the old root taken before (what "." names after the
    // pivot is the kernel's to choose), made a slave first: with a shared propagation
    // asked for, its mounts are peers of the host's, and detaching them would unmount the
    // host's; and the new root's mounts must keep their peers.
    let old_root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys("opening the old root"))?;
    chdir(&rootfs).map_err(sys("entering the root filesystem"))?;
    pivot_root(".", ".").map_err(sys("pivot_root"))?;
    nix::unistd::fchdir(&old_root).map_err(sys("entering the old root"))?;
    drop(old_root);
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("making the old root a slave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detaching the old root"))?;
    chdir("/").map_err(sys("chdir /"))?;
    // The root's own propagation, now that pivot_root (which has its rules) is done.
    if let Some(flags) = requested {
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .map_err(sys("setting the propagation of the root"))?;
    }
    if plan
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        // (A remount sets every flag anew: the overlay root's nodev is kept.)
        let keep = if plan.bundle_rootfs.is_none() && !plan.copy_root {
            root_flags(plan.spec)
        } else {
            MsFlags::empty()
        };
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | keep,
            None::<&str>,
        )
        .map_err(sys("making the root read-only"))?;
    }
    Ok(())
}

fn mount_overlay(plan: &RootfsPlan<'_>, rootfs: &Path) -> Result<(), ChildError> {
    let upper = plan.state_dir.join("upper");
    let work = plan.state_dir.join("work");
    if plan.copy_root {
        return mount(
            Some(rootfs),
            rootfs,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(sys("bind-mounting the copied root filesystem"));
    }
    if plan.layers.is_empty() {
        return mount(
            Some(&upper),
            rootfs,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys("bind-mounting an empty root"));
    }
    // Lower directories relative to `layers/`, topmost first, to stay within the page-size
    // limit on mount options.
    let lowers: Vec<String> = plan
        .layers
        .iter()
        .rev()
        .map(|l| {
            l.root
                .strip_prefix(plan.layers_dir)
                .unwrap_or(&l.root)
                .display()
                .to_string()
        })
        .collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        upper.display(),
        work.display()
    );
    chdir(plan.layers_dir).map_err(sys("entering the layer directory"))?;
    mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        root_flags(plan.spec),
        Some(data.as_str()),
    )
    .map_err(sys("mounting the overlay root filesystem"))?;
    Ok(())
}

/// The overlay root's flags: `nodev` when the container's devices all live on a `/dev` of
/// its own (a tmpfs wharf fills), so a device node an image layer carries, or one made on
/// the root filesystem, cannot be opened, whether or not a device cgroup holds (cgroup v2
/// has none without an eBPF program, which wharf does not load).
fn root_flags(spec: &Spec) -> MsFlags {
    let own_dev = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("tmpfs"));
    let devices_in_dev = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .all(|d| d.path().starts_with("/dev/"));
    if own_dev && devices_in_dev {
        MsFlags::MS_NODEV
    } else {
        MsFlags::empty()
    }
}

fn mount_one(root: &Dir, m: &Mount, plan: &RootfsPlan<'_>) -> Result<(), ChildError> {
    let dest = m.destination().to_string_lossy().into_owned();
    let typ = m.typ().as_deref().unwrap_or("none");
    let options = m.options().clone().unwrap_or_default();
    let (flags, bind, data) = parse_options(&options);
    if bind || typ == "bind" {
        let src = m.source().clone().unwrap_or_default();
        let kind = if src.is_dir() {
            Target::Dir
        } else {
            Target::File
        };
        if kind == Target::Dir && copies_up(plan, &dest) {
            copy_up(root, &dest, &src)?;
        }
        let fd = resolve_target(root, &dest, kind)?;
        refuse_proc_and_sys(&fd, &dest, true)?;
        let target = fd_path(&fd);
        mount(
            Some(&src),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | (flags & MsFlags::MS_REC),
            None::<&str>,
        )
        .map_err(sys(format!("bind-mounting {} at {dest}", src.display())))?;
        if flags.contains(MsFlags::MS_RDONLY) {
            remount_readonly_at(root, &dest, kind, flags)?;
        }
        if let Some(p) = propagation_of(&options) {
            // Resolved again: the descriptor above is of the directory under the mount.
            let top = resolve_target(root, &dest, kind)?;
            mount(None::<&str>, &fd_path(&top), None::<&str>, p, None::<&str>)
                .map_err(sys(format!("setting the propagation of {dest}")))?;
        }
        return Ok(());
    }
    match typ {
        "sysfs" if !plan.private_network => {
            // Sharing the host's network: bind the host's /sys read-only instead.
            let fd = resolve_target(root, &dest, Target::Dir)?;
            let target = fd_path(&fd);
            mount(
                Some("/sys"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(sys("bind-mounting /sys"))?;
            remount_readonly_at(root, &dest, Target::Dir, flags)
        }
        "cgroup" | "cgroup2" => mount_cgroups(root, &dest, plan),
        _ => {
            let fd = resolve_target(root, &dest, Target::Dir)?;
            refuse_proc_and_sys(&fd, &dest, false)?;
            let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
            let attempt = |data: &str| {
                mount(
                    Some(&src),
                    &fd_path(&fd),
                    Some(typ),
                    flags,
                    (!data.is_empty()).then_some(data),
                )
            };
            match attempt(&data) {
                // In a user namespace the tty group (gid=5) may not be mapped: devpts
                // refuses it, so mount without (as rootless runc does).
                Err(nix::errno::Errno::EINVAL) if typ == "devpts" && data.contains("gid=") => {
                    let without: Vec<&str> =
                        data.split(',').filter(|o| !o.starts_with("gid=")).collect();
                    attempt(&without.join(","))
                }
                other => other,
            }
            .map_err(sys(format!("mounting {typ} at {dest}")))
        }
    }
}

/// Whether `dest` is a named volume's mount point (the spec's copy-up annotation).
fn copies_up(plan: &RootfsPlan<'_>, dest: &str) -> bool {
    plan.spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(crate::bundle::ANNOTATION_COPY_UP))
        .and_then(|j| serde_json::from_str::<Vec<String>>(j).ok())
        .is_some_and(|list| list.iter().any(|d| d == dest))
}

/// A named volume's first use: when it is empty, the image's files at `dest` (looked up
/// inside the root filesystem, never outside it) are copied into it.
fn copy_up(root: &Dir, dest: &str, volume: &Path) -> Result<(), ChildError> {
    // Two first users at once: one copies, the other then finds it filled.
    let _lock = volume
        .parent()
        .map(|d| d.join("volume.json"))
        .and_then(|meta| fs::File::open(meta).ok())
        .filter(|f| f.lock().is_ok());
    let to = Dir::open_ambient_dir(volume, ambient_authority())
        .map_err(|e| ChildError::Setup(format!("opening volume {}: {e}", volume.display())))?;
    if to.entries().map_or(true, |mut e| e.next().is_some()) {
        return Ok(());
    }
    let rel = dest.trim_start_matches('/');
    let Ok(from) = root.open_dir(rel) else {
        // Nothing in the image there: the volume starts empty.
        return Ok(());
    };
    let copy = || -> std::io::Result<()> {
        crate::volume::copy_up(&from, &to)?;
        // The mount point's own owner and mode too (Docker's copy does): a service that runs
        // as its own user writes at the top of its volume (PostgreSQL's /var/lib/postgresql).
        let top = from.dir_metadata()?;
        crate::volume::copy_owner_and_mode(volume, &top)
    };
    copy()
        .map_err(|e| ChildError::Setup(format!("copying the image's {dest} into its volume: {e}")))
}

/// Remount what is now mounted at `dest` read-only. The descriptor used to mount it names
/// the covered directory, so the target is resolved again to reach the new mount.
fn remount_readonly_at(
    root: &Dir,
    dest: &str,
    kind: Target,
    flags: MsFlags,
) -> Result<(), ChildError> {
    let fd = resolve_target(root, dest, kind)?;
    remount_readonly(&fd_path(&fd), flags, dest)
}

fn remount_readonly(target: &Path, flags: MsFlags, dest: &str) -> Result<(), ChildError> {
    let keep = flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | keep,
        None::<&str>,
    )
    .map_err(sys(format!("making {dest} read-only")))
}

/// The container's own cgroup, read-only: cgroup2 in its cgroup namespace on v2; on v1 a
/// read-only tmpfs with each controller's container cgroup bound under it.
fn mount_cgroups(root: &Dir, dest: &str, plan: &RootfsPlan<'_>) -> Result<(), ChildError> {
    let ro = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
    let fd = resolve_target(root, dest, Target::Dir)?;
    if plan.cgroup_v2 {
        return mount(
            Some("cgroup2"),
            &fd_path(&fd),
            Some("cgroup2"),
            ro,
            None::<&str>,
        )
        .map_err(sys("mounting cgroup2"));
    }
    mount(
        Some("tmpfs"),
        &fd_path(&fd),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(sys("mounting the cgroup tmpfs"))?;
    for dir in plan.cgroup_dirs {
        let controller = dir
            .strip_prefix("/sys/fs/cgroup")
            .ok()
            .and_then(|p| p.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let sub = format!("{dest}/{controller}");
        let sub_fd = resolve_target(root, &sub, Target::Dir)?;
        mount(
            Some(dir),
            &fd_path(&sub_fd),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(format!("binding the {controller} cgroup")))?;
        remount_readonly_at(root, &sub, Target::Dir, ro)?;
    }
    let fd = resolve_target(root, dest, Target::Dir)?;
    mount(
        None::<&str>,
        &fd_path(&fd),
        None::<&str>,
        MsFlags::MS_REMOUNT | ro,
        Some("mode=755"),
    )
    .map_err(sys(format!("making {dest} read-only")))
}

/// The standard device nodes on the fresh `/dev` tmpfs, and its symlinks.
fn populate_dev(root: &Dir) -> Result<(), ChildError> {
    let dev = unpack::resolve_dir(root, &normalize(b"/dev").expect("a static path"), false)
        .map_err(|e| ChildError::Setup(format!("/dev: {e}")))?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        crate::sys::mknod(
            &dev,
            name.as_ref(),
            crate::sys::NodeKind::Char,
            0o666,
            major,
            minor,
        )
        // Without CAP_MKNOD (rootless), bind the host's node instead.
        .or_else(|_| bind_host_node(&dev, name.as_ref(), &Path::new("/dev").join(name)))
        .map_err(|e| ChildError::Setup(format!("creating /dev/{name}: {e}")))?;
        let _ = rustix::fs::chmodat(
            &dev,
            name,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::AtFlags::empty(),
        );
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = crate::sys::symlink(&dev, name.as_ref(), target.as_ref());
    }
    Ok(())
}

/// Checks a `linux.devices` entry before anything is made: an absolute path, not the
/// root, of a known type.
pub(super) fn check_device(d: &oci_spec::runtime::LinuxDevice) -> Result<(), String> {
    let path = d.path().to_string_lossy();
    if !path.starts_with('/') || normalize(path.as_bytes()).map_or(true, |c| c.is_empty()) {
        return Err(format!(
            "linux.devices: {path:?} is not an absolute path of a file"
        ));
    }
    if d.typ() == LinuxDeviceType::A {
        return Err(format!(
            "linux.devices: {path}: type \"a\" is not a device type"
        ));
    }
    Ok(())
}

/// Makes a `linux.devices` node inside the root (its directories too), with the spec's
/// mode and owner, as runc: an existing file is left as it is; where the node cannot be
/// made (a user namespace), the host's node at the same path is bound instead.
fn make_device(root: &Dir, d: &oci_spec::runtime::LinuxDevice) -> Result<(), ChildError> {
    let path = d.path().to_string_lossy().into_owned();
    let fail = |e: std::io::Error| ChildError::Setup(format!("creating device {path}: {e}"));
    let comps = normalize(path.as_bytes())
        .map_err(|e| ChildError::Setup(format!("device path {path:?}: {e}")))?;
    let Some((name, parent)) = comps.split_last() else {
        return Err(ChildError::Setup(format!(
            "device path {path:?} names no file"
        )));
    };
    let name = name.as_os_str();
    let dir = unpack::resolve_dir(root, parent, true)
        .map_err(|e| ChildError::Setup(format!("creating device {path}: {e}")))?;
    if dir.symlink_metadata(name).is_ok() {
        return Ok(());
    }
    let kind = match d.typ() {
        LinuxDeviceType::B => crate::sys::NodeKind::Block,
        LinuxDeviceType::P => crate::sys::NodeKind::Fifo,
        _ => crate::sys::NodeKind::Char,
    };
    let mode = d.file_mode().unwrap_or(0o666);
    let number = |n: i64| {
        u32::try_from(n).map_err(|_| {
            fail(std::io::Error::other(format!(
                "device number {n} is out of range"
            )))
        })
    };
    let made = crate::sys::mknod(
        &dir,
        name,
        kind,
        mode,
        number(d.major())?,
        number(d.minor())?,
    );
    if let Err(e) = made {
        if e.raw_os_error() != Some(libc::EPERM) {
            return Err(fail(e));
        }
        return bind_host_node(&dir, name, d.path()).map_err(fail);
    }
    rustix::fs::chmodat(
        &dir,
        name,
        rustix::fs::Mode::from_raw_mode(mode & 0o7777),
        rustix::fs::AtFlags::empty(),
    )
    .map_err(|e| fail(e.into()))?;
    rustix::fs::chownat(
        &dir,
        name,
        Some(rustix::fs::Uid::from_raw(d.uid().unwrap_or(0))),
        Some(rustix::fs::Gid::from_raw(d.gid().unwrap_or(0))),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| fail(e.into()))
}

/// Where a node cannot be made (no CAP_MKNOD: rootless, or a user namespace): an empty
/// file `name` in `dir` with the host's node at `host` bound onto it.
fn bind_host_node(dir: &Dir, name: &std::ffi::OsStr, host: &Path) -> std::io::Result<()> {
    let mut o = cap_std::fs::OpenOptions::new();
    o.write(true).create(true);
    dir.open_with(name, &o).map(drop)?;
    let fd = rustix::fs::openat(
        dir,
        name,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    mount(
        Some(host),
        &fd_path(&fd),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(std::io::Error::from)
}

/// `net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`, written inside the root. The
/// key was checked before clone (`bundle::sysctl::check`): a valid name, and in a namespace
/// of the container's own.
fn write_sysctl(root: &Dir, key: &str, value: &str) -> Result<(), ChildError> {
    let path = format!("proc/sys/{}", key.replace('.', "/"));
    let mut f = root
        .open_with(&path, cap_std::fs::OpenOptions::new().write(true))
        .map_err(|e| ChildError::Setup(format!("sysctl {key}: {e}")))?;
    std::io::Write::write_all(&mut f, value.as_bytes())
        .map_err(|e| ChildError::Setup(format!("sysctl {key}={value}: {e}")))
}

/// Hide a path: `/dev/null` over a file, an empty read-only tmpfs over a directory.
fn mask(root: &Dir, path: &str) -> Result<(), ChildError> {
    let comps = normalize(path.as_bytes()).map_err(|e| ChildError::Setup(e.to_string()))?;
    let Some((name, parent)) = comps.split_last() else {
        return Ok(());
    };
    let Ok(parent) = unpack::resolve_dir(root, parent, false) else {
        return Ok(());
    };
    let Ok(meta) = parent.symlink_metadata(name) else {
        return Ok(());
    };
    let fd = rustix::fs::openat(
        &parent,
        name.as_os_str(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| ChildError::Setup(format!("masking {path}: {e}")))?;
    let fd = fd;
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            &fd_path(&fd),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0"),
        )
        .map_err(sys(format!("masking {path}")))
    } else {
        mount(
            Some("/dev/null"),
            &fd_path(&fd),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(format!("masking {path}")))
    }
}

fn make_readonly(root: &Dir, path: &str) -> Result<(), ChildError> {
    let comps = normalize(path.as_bytes()).map_err(|e| ChildError::Setup(e.to_string()))?;
    let Some((name, parent)) = comps.split_last() else {
        return Ok(());
    };
    let Ok(parent) = unpack::resolve_dir(root, parent, false) else {
        return Ok(());
    };
    if parent.symlink_metadata(name).is_err() {
        return Ok(());
    }
    let open = || {
        rustix::fs::openat(
            &parent,
            name.as_os_str(),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| ChildError::Setup(format!("{path}: {e}")))
    };
    let fd = open()?;
    let target = fd_path(&fd);
    mount(
        Some(&target),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys(format!("binding {path}")))?;
    // Reopen: the first descriptor names the covered object, not the new bind mount.
    let fd = open()?;
    remount_readonly(
        &fd_path(&fd),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        path,
    )
}

/// Write only the container's /etc/hostname (its network wrote hosts and resolv.conf).
pub fn write_hostname(state_dir: &Path, hostname: &str) -> std::io::Result<()> {
    fs::write(state_dir.join("hostname"), format!("{hostname}\n"))
}

/// Write the per-container /etc files the way Docker does.
pub fn write_etc_files(
    state_dir: &Path,
    hostname: &str,
    host_network: bool,
) -> std::io::Result<()> {
    let hosts = if host_network {
        fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        )
    };
    fs::write(state_dir.join("hosts"), hosts)?;
    fs::write(state_dir.join("hostname"), format!("{hostname}\n"))?;
    let resolv = if host_network {
        fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
    } else {
        String::new()
    };
    fs::write(state_dir.join("resolv.conf"), resolv)
}

/// Show a container's root filesystem, running or not, read-only, at `STATE_DIR/export`
/// to this process only (`wharf export`): its upper directory stacked as the top lower
/// layer of a read-only overlay (no upper directory of its own, so a running container's
/// writes are never disturbed), in a mount namespace of this process's own (nothing to
/// unmount, whatever happens). Returns the directory to read.
pub fn show_root_read_only(state_dir: &Path, layers: &[LayerDir]) -> Result<PathBuf, NativeError> {
    let rootfs = state_dir.join("rootfs");
    let at = state_dir.join("export");
    let state = |what: &str, e: nix::Error| NativeError::State {
        path: at.clone(),
        source: std::io::Error::other(format!("{what}: {e}")),
    };
    if layers
        .iter()
        .any(|l| l.whiteouts != unpack::WhiteoutFormat::Overlay)
    {
        // Layers that could not be stacked were copied: the files are the root's own.
        return Ok(rootfs);
    }
    private_mount_namespace().map_err(|(what, e)| state(what, e))?;
    fs::create_dir_all(&at).map_err(|source| NativeError::State {
        path: at.clone(),
        source,
    })?;
    let upper = state_dir.join("upper");
    if layers.is_empty() {
        mount(
            Some(&upper),
            &at,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| state("bind-mounting the container's files", e))?;
        mount(
            None::<&str>,
            &at,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| state("making them read-only", e))?;
        return Ok(at);
    }
    mount_layers(layers, &at, Some(&upper), None, MsFlags::MS_RDONLY)
        .map_err(|(what, e)| state(what, e))?;
    Ok(at)
}

/// Move this process to a mount namespace of its own whose mounts propagate nowhere: what
/// it mounts then is seen by no one else and goes when the process ends.
fn private_mount_namespace() -> Result<(), (&'static str, nix::Error)> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| ("a private mount namespace", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| ("making mounts private", e))
}

/// Mount `layers` (lowest first) as an overlay at `at`, for this process's `wharf cp` or
/// `export`: `top` stacked above them as another lower layer, `upper_work` as the upper
/// and work directories. The layers are named relative to their directory (entered for
/// the mount), to stay within the page-size limit on mount options.
fn mount_layers(
    layers: &[LayerDir],
    at: &Path,
    top: Option<&Path>,
    upper_work: Option<&(PathBuf, PathBuf)>,
    flags: MsFlags,
) -> Result<(), (&'static str, nix::Error)> {
    let layers_dir = layers[0]
        .root
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let mut lowers: Vec<String> = top.map(|t| t.display().to_string()).into_iter().collect();
    lowers.extend(layers.iter().rev().map(|l| {
        l.root
            .strip_prefix(&layers_dir)
            .unwrap_or(&l.root)
            .display()
            .to_string()
    }));
    let mut data = format!("lowerdir={}", lowers.join(":"));
    if let Some((upper, work)) = upper_work {
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            upper.display(),
            work.display()
        ));
    }
    let cwd = std::env::current_dir().ok();
    chdir(&layers_dir).map_err(|e| ("entering the layer directory", e))?;
    let mounted = mount(
        Some("overlay"),
        at,
        Some("overlay"),
        flags,
        Some(data.as_str()),
    );
    if let Some(cwd) = cwd {
        let _ = chdir(&cwd);
    }
    mounted.map_err(|e| ("mounting the container's root filesystem", e))
}

/// Take away what [`show_stopped_root`] mounted (before the container's lock is given up:
/// a start must not find its upper directory in use).
pub fn hide_root(at: &Path) {
    let _ = umount2(at, MntFlags::MNT_DETACH);
}

/// Show a stopped container's root filesystem at `STATE_DIR/rootfs` to this process only
/// (`wharf cp`): this process moves to a mount namespace of its own first, so the mount
/// is never seen on the host and goes when the process ends, however it ends. The caller
/// holds the container's lock (no start can mount the same upper directory meanwhile).
/// Returns the directory to open.
pub fn show_stopped_root(
    state_dir: &Path,
    layers: &[LayerDir],
) -> Result<(PathBuf, bool), NativeError> {
    let rootfs = state_dir.join("rootfs");
    let state = |what: &str, e: nix::Error| NativeError::State {
        path: rootfs.clone(),
        source: std::io::Error::other(format!("{what}: {e}")),
    };
    // Made by a copy (layers that cannot be stacked): the files are the directory's own.
    let copied = fs::read_dir(&rootfs).is_ok_and(|mut d| d.next().is_some());
    if copied || layers.is_empty() && !state_dir.join("upper").is_dir() {
        return Ok((rootfs, false));
    }
    private_mount_namespace().map_err(|(what, e)| state(what, e))?;
    for d in ["rootfs", "upper", "work"] {
        fs::create_dir_all(state_dir.join(d)).map_err(|source| NativeError::State {
            path: state_dir.join(d),
            source,
        })?;
    }
    if layers.is_empty() {
        mount(
            Some(&state_dir.join("upper")),
            &rootfs,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| state("bind-mounting the container's files", e))?;
        return Ok((rootfs, true));
    }
    let writable = (state_dir.join("upper"), state_dir.join("work"));
    mount_layers(layers, &rootfs, None, Some(&writable), MsFlags::empty())
        .map_err(|(what, e)| state(what, e))?;
    Ok((rootfs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_options_are_runc_s() {
        assert_eq!(propagation("shared"), Some(MsFlags::MS_SHARED));
        assert_eq!(
            propagation("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(
            propagation("runbindable"),
            Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC)
        );
        assert_eq!(propagation("ro"), None);
        assert_eq!(
            propagation("rbind"),
            None,
            "rbind is a bind, not a propagation"
        );
        let opts: Vec<String> = ["rbind", "rprivate", "ro", "rshared"]
            .map(String::from)
            .into();
        assert_eq!(
            propagation_of(&opts),
            Some(MsFlags::MS_SHARED | MsFlags::MS_REC),
            "the last one wins"
        );
        let (flags, bind, data) = parse_options(&opts);
        assert!(bind && flags.contains(MsFlags::MS_RDONLY) && data.is_empty());
    }

    #[test]
    fn rootfs_propagation_is_checked() {
        let mut spec = Spec::default();
        assert_eq!(rootfs_propagation(&spec), Ok(None));
        let mut linux = spec.linux().clone().unwrap();
        linux.set_rootfs_propagation(Some("slave".into()));
        spec.set_linux(Some(linux.clone()));
        assert_eq!(rootfs_propagation(&spec), Ok(Some(MsFlags::MS_SLAVE)));
        linux.set_rootfs_propagation(Some("sideways".into()));
        spec.set_linux(Some(linux));
        let e = rootfs_propagation(&spec).unwrap_err();
        assert!(e.contains("\"sideways\""), "{e}");
    }

    #[test]
    fn device_entries_are_checked() {
        let dev = |json: serde_json::Value| -> oci_spec::runtime::LinuxDevice {
            serde_json::from_value(json).unwrap()
        };
        assert!(
            check_device(&dev(serde_json::json!(
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
            )))
            .is_ok()
        );
        for bad in ["dev/fuse", "/", "/.."] {
            let e = check_device(&dev(serde_json::json!(
                {"path": bad, "type": "c", "major": 10, "minor": 229}
            )))
            .unwrap_err();
            assert!(e.contains("not an absolute path"), "{bad}: {e}");
        }
    }
}
