//! Containers without a daemon: records on disk, names and id prefixes, the state refreshed
//! from the processes before every verb, logs, and (on Unix) the monitor that keeps a
//! detached container's stdio, log and restart policy.
//!
//! Layout: `ROOT/containers/<id>/` holds `container.json` (the [`Record`]), `lock` (one
//! lock per container), `image.json` (what it pins in the image store), `config.json` (the
//! runtime spec of the current run), the log (`<id>-json.log` and its rotations), and for a
//! native container its upper directory and runtime files. `ROOT/containers/.lock` guards
//! names while a container is created or removed. Three indexes are derived from the
//! records and rebuilt from them: `.names/<name>` (the id), `.active/<id>` (the active
//! ones) and `.summary` (what `ps -a` shows of each, [`summary`]).

pub mod health;
pub mod logs;
pub mod names;
pub mod record;
pub mod summary;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use chrono::Utc;

pub use crate::id::new_id;
pub use record::{LogConfig, Proc, Record, RestartPolicy, State, Status};
pub use summary::Summary;

use crate::image::store::InUse;
use crate::paths::Roots;

/// What can go wrong with containers.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("{query:?} matches more than one container: {}", matches.join(", "))]
    Ambiguous { query: String, matches: Vec<String> },
    #[error(
        "the container name {0:?} is already in use (remove that container or choose another name)"
    )]
    NameInUse(String),
    #[error("the container is already named {0:?}")]
    SameName(String),
    #[error(
        "invalid container name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
    )]
    BadName(String),
    #[error("container {0} is running: stop it first, or remove it with -f")]
    Running(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: corrupt container record: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("container {0} did not stop, even after SIGKILL")]
    StopFailed(String),
    #[error("container {0} is paused: unpause it first")]
    Paused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error("pausing container {id}: {reason}")]
    Pause { id: String, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContainerError + '_ {
    move |source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const RECORD: &str = "container.json";
const LOCK: &str = "lock";

/// The containers of one wharf root.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
    clean_up: CleanUp,
}

/// What removes the traces a container's processes left outside its directory (cgroup,
/// network namespace, pasta) once they are gone: given by the caller (the lifecycle passes
/// the backends'), so records never call a backend.
pub type CleanUp = fn(id: &str, dir: &Path);

/// A container's record, read with its lock held; `save` writes it back.
pub struct Locked {
    _lock: File,
    path: PathBuf,
    pub record: Record,
    /// The state last read or saved: `save` records the events between it and the new one.
    seen: std::cell::RefCell<Seen>,
    /// What `ps` showed of it when last read or saved: `save` appends to the summary only
    /// when that changes (a health probe's save usually does not).
    shown: std::cell::RefCell<Summary>,
}

/// What a state change is told from.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    status: Status,
    oom_killed: bool,
    health: Option<String>,
}

impl Seen {
    fn of(r: &Record) -> Seen {
        Seen {
            status: r.state.status,
            oom_killed: r.state.oom_killed,
            health: r.state.health.as_ref().map(|h| h.status.to_string()),
        }
    }
}

/// Whether a container in `s` has a workload (Docker's running: paused too).
fn runs(s: Status) -> bool {
    matches!(s, Status::Running | Status::Paused)
}

/// The events between `before` and the state of `r` now, in order.
fn transitions(before: &Seen, r: &Record) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let now = Seen::of(r);
    let mut out = Vec::new();
    if !runs(before.status) && runs(now.status) {
        out.push(("start", vec![]));
    }
    if before.status == Status::Running && now.status == Status::Paused {
        out.push(("pause", vec![]));
    }
    if before.status == Status::Paused && now.status == Status::Running {
        out.push(("unpause", vec![]));
    }
    if now.oom_killed && !before.oom_killed {
        out.push(("oom", vec![]));
    }
    if runs(before.status) && !runs(now.status) {
        let code = r.state.exit_code.unwrap_or(0).to_string();
        out.push(("die", vec![("exitCode", code)]));
    }
    if now.health != before.health
        && let Some(h) = &now.health
    {
        out.push(("health_status", vec![("healthStatus", h.clone())]));
    }
    out
}

impl Locked {
    /// Write the record back, atomically.
    ///
    /// The active index follows: its marker is made before a record says active and
    /// removed after it says otherwise, so an active container always has one (a marker
    /// left for an ended one is only skipped by `ps`).
    pub fn save(&self) -> Result<(), ContainerError> {
        let marker = active_marker(&self.path);
        let active = self.record.state.is_active();
        if active {
            mark_active(&marker)?;
        }
        write_atomic(&self.path.join(RECORD), &self.record)?;
        if !active {
            let _ = fs::remove_file(&marker);
        }
        let shown = Summary::of(&self.record);
        if *self.shown.borrow() != shown {
            summary::Journal::new(self.path.parent().unwrap_or(&self.path)).put(&shown);
            self.shown.replace(shown);
        }
        let before = self.seen.replace(Seen::of(&self.record));
        for (action, extra) in transitions(&before, &self.record) {
            self.event(action, &extra);
        }
        Ok(())
    }

    /// Record event `action` about this container (with its name and image), under its
    /// lock: a container's events are in the order its lifecycle went.
    pub fn event(&self, action: &str, extra: &[(&str, String)]) {
        // `health_status` reads as Docker's `health_status: healthy`.
        let action = match extra.iter().find(|(k, _)| *k == "healthStatus") {
            Some((_, h)) => format!("{action}: {h}"),
            None => action.to_string(),
        };
        event(&self.path, &self.record, &action, extra);
    }

    /// The container's directory.
    pub fn dir(&self) -> &Path {
        &self.path
    }
}

/// Append a container event to the log of the root whose container directory is `dir`.
fn event(dir: &Path, r: &Record, action: &str, extra: &[(&str, String)]) {
    let Some(data) = dir.parent().and_then(Path::parent) else {
        return;
    };
    let mut attributes: std::collections::BTreeMap<String, String> = [
        ("name".to_string(), r.name.clone()),
        ("image".to_string(), r.image.clone()),
    ]
    .into_iter()
    .collect();
    for (k, v) in &r.options.labels {
        attributes.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in extra {
        attributes.insert((*k).to_string(), v.clone());
    }
    crate::events::append(
        &crate::events::log_path(data),
        &crate::events::Event::new("container", action, &r.id, attributes),
    );
}

/// Write a record whole: a temporary file renamed over the old one. On a full disk (the
/// temporary file cannot be written), the old record is overwritten in place instead, in
/// the blocks it already has: a state change (a pid, a time, an exit code) barely changes
/// a record's size, so `stop`, `kill` and the monitor can still record how a container
/// ended when a container has filled the disk with its log.
fn write_atomic(path: &Path, record: &Record) -> Result<(), ContainerError> {
    let bytes = serde_json::to_vec_pretty(record).expect("a record serialises");
    // Unsynced: a record is checked against its processes whenever it is read.
    match crate::sys::write_atomic(None, path, &bytes, crate::sys::Durability::Unsynced) {
        Err(e) if is_full(&e) && overwrite_in_place(path, &bytes).is_ok() => Ok(()),
        other => other.map_err(io_err(path)),
    }
}

/// No space (or quota) left on the device.
fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Replace the content of `path` by `bytes` without allocating: refused (nothing written)
/// when `bytes` would need more than the blocks the file already has.
fn overwrite_in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::{Seek, Write};
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    let allocated = allocated_bytes(&f.metadata()?);
    if bytes.len() as u64 > allocated {
        return Err(io::Error::from(io::ErrorKind::StorageFull));
    }
    f.seek(io::SeekFrom::Start(0))?;
    f.write_all(bytes)?;
    f.set_len(bytes.len() as u64)?;
    f.sync_data()
}

#[cfg(unix)]
fn allocated_bytes(m: &fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::blocks(m) * 512
}

#[cfg(not(unix))]
fn allocated_bytes(m: &fs::Metadata) -> u64 {
    m.len()
}

fn lock_file(path: &Path, create: bool) -> Result<File, ContainerError> {
    let f = fs::OpenOptions::new()
        .create(create)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    f.lock().map_err(io_err(path))?;
    Ok(f)
}

impl Containers {
    /// The containers under `roots`; `clean_up` is called for a container found dead (its
    /// record refreshed) and for one removed.
    pub fn new(roots: &Roots, clean_up: CleanUp) -> Self {
        Containers {
            dir: roots.containers(),
            clean_up,
        }
    }

    /// What removes a dead container's traces outside its directory (given at `new`).
    pub fn clean_up(&self) -> CleanUp {
        self.clean_up
    }

    /// The directory of container `id`.
    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The lock that serialises creating and removing containers (names stay unique), with
    /// the names index made first if this root has none yet.
    fn lock_names(&self) -> Result<File, ContainerError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let lock = lock_file(&self.dir.join(".lock"), true)?;
        if !self.names_dir().is_dir() {
            self.rebuild_names_locked()?;
        }
        Ok(lock)
    }

    /// The names index: `containers/.names/<name>` holds the id of the container that has
    /// that name, so creating a container and finding one by name read one small file, not
    /// every record. Written under the names lock; rebuilt from the records by
    /// `wharf system check --repair` (or when missing).
    fn names_dir(&self) -> PathBuf {
        self.dir.join(".names")
    }

    /// The id the names index gives `name`, if its container still exists.
    fn id_by_name(&self, name: &str) -> Option<String> {
        if names::validate(name).is_err() {
            return None;
        }
        let id = fs::read_to_string(self.names_dir().join(name)).ok()?;
        let id = id.trim();
        (is_id(id) && self.dir.join(id).join(RECORD).exists()).then(|| id.to_string())
    }

    /// Rebuild the names index from the records. Returns how many names it holds.
    pub fn rebuild_names(&self) -> Result<usize, ContainerError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let _lock = lock_file(&self.dir.join(".lock"), true)?;
        self.rebuild_names_locked()
    }

    /// What is wrong with the names index: a record's name missing or naming another id,
    /// an entry for no container.
    pub fn check_names(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let records = self.records();
        for r in &records {
            let entry = fs::read_to_string(self.names_dir().join(&r.name)).ok();
            if entry.as_deref().map(str::trim) != Some(r.id.as_str()) {
                problems.push(format!(
                    "names index: {} does not name container {}",
                    r.name,
                    r.short_id()
                ));
            }
        }
        for r in records.iter().filter(|r| r.state.is_active()) {
            if !self.dir.join(".active").join(&r.id).exists() {
                problems.push(format!(
                    "active index: running container {} has no marker",
                    r.short_id()
                ));
            }
        }
        for e in fs::read_dir(self.names_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !records.iter().any(|r| r.name == name) {
                problems.push(format!("names index: {name} names no container"));
            }
        }
        // The summary: none is fine (its first reader builds it), a wrong one is not.
        if let Some(rows) = summary::Journal::new(&self.dir).read() {
            let mut rows: std::collections::HashMap<String, Summary> =
                rows.into_iter().map(|s| (s.id.clone(), s)).collect();
            for r in records.iter().filter(|r| is_id(&r.id)) {
                match rows.remove(&r.id) {
                    None => {
                        problems.push(format!("summary: container {} is missing", r.short_id()))
                    }
                    Some(s) if s != Summary::of(r) => problems.push(format!(
                        "summary: container {} is out of date",
                        r.short_id()
                    )),
                    Some(_) => {}
                }
            }
            for s in rows.values() {
                problems.push(format!(
                    "summary: {} ({}) is no container",
                    s.short_id(),
                    s.name
                ));
            }
        }
        problems
    }

    fn rebuild_names_locked(&self) -> Result<usize, ContainerError> {
        let staging = self.dir.join(".names.tmp");
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir(&staging).map_err(io_err(&staging))?;
        let mut n = 0;
        for r in self.records() {
            if names::validate(&r.name).is_ok() && is_id(&r.id) {
                let path = staging.join(&r.name);
                fs::write(&path, &r.id).map_err(io_err(&path))?;
                n += 1;
            }
        }
        let dir = self.names_dir();
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&staging, &dir).map_err(io_err(&dir))?;
        // The active index: a marker for every record that says active.
        let active = self.dir.join(".active");
        let _ = fs::remove_dir_all(&active);
        fs::create_dir(&active).map_err(io_err(&active))?;
        for r in self.records() {
            if r.state.is_active() && is_id(&r.id) {
                mark_active(&active.join(&r.id))?;
            }
        }
        // Best effort: a summary that cannot be written must not stop names from working;
        // without one, `ps -a` reads the records.
        if let Err(e) = self.rebuild_summary() {
            tracing::warn!(error = %e, "rebuilding the container summary");
            summary::Journal::new(&self.dir).discard();
        }
        Ok(n)
    }

    /// Write the summary journal afresh from the records (read unlocked: a record is
    /// replaced whole, and a change being made now is appended after this).
    fn rebuild_summary(&self) -> io::Result<Vec<Summary>> {
        summary::Journal::new(&self.dir).rebuild(|| {
            self.records()
                .iter()
                .filter(|r| is_id(&r.id))
                .map(Summary::of)
                .collect()
        })
    }

    /// Record a new container (its name must be free), pinning what it uses in the store.
    pub fn create(&self, mut record: Record, pins: &InUse) -> Result<Record, ContainerError> {
        let _names = self.lock_names()?;
        if record.name.is_empty() {
            record.name = names::generate(|n| self.id_by_name(n).is_some());
        } else {
            names::validate(&record.name)?;
            if self.id_by_name(&record.name).is_some() {
                return Err(ContainerError::NameInUse(record.name));
            }
        }
        let dir = self.dir.join(&record.id);
        fs::create_dir(&dir).map_err(io_err(&dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io_err(&dir))?;
        }
        let pin = serde_json::to_vec(pins).expect("an in-use record serialises");
        if record.state.is_active() {
            mark_active(&active_marker(&dir))?;
        }
        // Its lock, held until the summary has its line: a verb that finds the new record
        // (by name or id) waits, so its own line follows this one.
        let mut lock = None;
        let written = fs::write(dir.join("image.json"), pin)
            .map_err(io_err(&dir))
            .and_then(|()| lock_file(&dir.join(LOCK), true))
            .and_then(|l| {
                lock = Some(l);
                write_atomic(&dir.join(RECORD), &record)
            });
        // The name's entry, written whole then renamed (no fsync: the index is rebuilt
        // from the records whenever it is in doubt).
        let name_entry = self.names_dir().join(&record.name);
        let tmp = self.names_dir().join(format!(".{}.tmp", record.name));
        let written = written.and_then(|()| {
            fs::write(&tmp, &record.id)
                .and_then(|()| fs::rename(&tmp, &name_entry))
                .map_err(io_err(&name_entry))
        });
        if let Err(e) = written {
            drop(lock);
            let _ = fs::remove_dir_all(&dir);
            // A rebuild may have read the record in between.
            summary::Journal::new(&self.dir).forget(&record.id);
            return Err(e);
        }
        summary::Journal::new(&self.dir).put(&Summary::of(&record));
        drop(lock);
        event(&dir, &record, "create", &[]);
        if runs(record.state.status) {
            // Made running (a `run`): it starts as it is made.
            event(&dir, &record, "start", &[]);
        }
        Ok(record)
    }

    /// Every record that parses (unrefreshed; see [`Containers::list`]).
    fn records(&self) -> Vec<Record> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| fs::read(e.path().join(RECORD)).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    /// Every container, its state refreshed, newest first. A record is replaced whole (by
    /// rename), so it is read without its lock; only one that says active is then locked and
    /// read again to refresh it from its processes.
    /// The containers (as `ps` names them) whose record mounts named volume `name`: what
    /// `Volumes::remove` and `prune` are told.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.users(|r| {
            r.options
                .volumes
                .iter()
                .any(|v| v.named.as_deref() == Some(name))
        })
    }

    /// The containers configured to join network `name` (first, or connected later): what
    /// `Networks::remove` and `prune` are told.
    pub fn network_users(&self, name: &str) -> Vec<String> {
        self.users(|r| {
            r.options.network.named() == Some(name)
                || r.options.connected.iter().any(|c| c.network == name)
        })
    }

    fn users(&self, uses: impl Fn(&Record) -> bool) -> Vec<String> {
        self.list()
            .into_iter()
            .filter(|r| uses(r))
            .map(|r| r.shown_name().to_owned())
            .collect()
    }

    pub fn list(&self) -> Vec<Record> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<Record> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| is_id(id))
            .filter_map(|id| {
                let bytes = fs::read(self.dir.join(&id).join(RECORD)).ok()?;
                let r: Record = serde_json::from_slice(&bytes).ok()?;
                if r.state.is_active() {
                    self.lock(&id).ok().map(|l| l.record)
                } else {
                    Some(r)
                }
            })
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created));
        out
    }

    /// What `ps -a` shows of every container, newest first: stopped ones from the summary
    /// journal (one file, however many containers are kept), active ones from their records,
    /// refreshed from their processes.
    pub fn summaries(&self) -> Vec<Summary> {
        if !self.dir.is_dir() {
            return Vec::new();
        }
        let journal = summary::Journal::new(&self.dir);
        // A journal that does not hold as many containers as there are directories missed a
        // create or a removal (a process killed between the record and its line): rebuilt.
        // (A create in progress, or a directory a killed create left, costs a rebuild too.)
        let rows = journal
            .read()
            .filter(|rows| rows.len() == self.directories());
        let rows = match rows {
            Some(rows) => rows,
            None => match self.rebuild_summary() {
                Ok(rows) => rows,
                // A root this process cannot write: read the records.
                Err(_) => return self.list().iter().map(Summary::of).collect(),
            },
        };
        // Newest first, sorted by index: a summary is moved once, not at every swap.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_unstable_by_key(|&i| std::cmp::Reverse(rows[i].created));
        let mut rows: Vec<Option<Summary>> = rows.into_iter().map(Some).collect();
        order
            .into_iter()
            .filter_map(|i| {
                let s = rows[i].take()?;
                if s.status.is_active() {
                    self.lock(&s.id).ok().map(|l| Summary::of(&l.record))
                } else {
                    Some(s)
                }
            })
            .collect()
    }

    /// How many container directories there are (names only: no record is read).
    fn directories(&self) -> usize {
        fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| is_id_bytes(e.file_name().as_encoded_bytes()))
                    .count()
            })
            .unwrap_or(0)
    }

    /// The active containers (running, paused, restarting), refreshed, newest first. Reads
    /// only the records the active index points at, so `ps` does not grow with the number
    /// of stopped containers kept.
    pub fn list_active(&self) -> Vec<Record> {
        if !self.names_dir().is_dir() && self.lock_names().is_err() {
            return Vec::new();
        }
        let Ok(entries) = fs::read_dir(self.dir.join(".active")) else {
            return Vec::new();
        };
        let mut out: Vec<Record> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| is_id(id))
            .filter_map(|id| self.lock(&id).ok().map(|l| l.record))
            .filter(|r| r.state.is_active())
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created));
        out
    }

    /// The id of the container `query` names: a full id, a name, or an unambiguous id
    /// prefix (as Docker).
    ///
    /// Reads no record: a full id is a directory, a name is looked up in the names index,
    /// a prefix is matched against the directory names.
    pub fn find(&self, query: &str) -> Result<String, ContainerError> {
        let q = query.strip_prefix('/').unwrap_or(query);
        if is_id(q) && self.dir.join(q).join(RECORD).exists() {
            return Ok(q.to_string());
        }
        if !self.names_dir().is_dir() {
            drop(self.lock_names()?);
        }
        if let Some(id) = self.id_by_name(q) {
            return Ok(id);
        }
        let matches: Vec<String> = if !q.is_empty() && q.bytes().all(|b| b.is_ascii_hexdigit()) {
            fs::read_dir(&self.dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|id| is_id(id) && id.starts_with(q))
                .filter(|id| self.dir.join(id).join(RECORD).exists())
                .collect()
        } else {
            Vec::new()
        };
        match matches.as_slice() {
            [] => Err(ContainerError::NotFound(query.to_string())),
            [one] => Ok(one.clone()),
            many => Err(ContainerError::Ambiguous {
                query: query.to_string(),
                matches: many.iter().map(|id| id[..12].to_string()).collect(),
            }),
        }
    }

    /// Lock container `id` and read its record, refreshed from its processes.
    pub fn lock(&self, id: &str) -> Result<Locked, ContainerError> {
        let dir = self.dir.join(id);
        if !dir.join(RECORD).exists() {
            return Err(ContainerError::NotFound(id.to_string()));
        }
        // Never created here: a directory being removed must not get its lock file back.
        let lock = match lock_file(&dir.join(LOCK), false) {
            Err(ContainerError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(ContainerError::NotFound(id.to_string()));
            }
            other => other?,
        };
        // Removed while we waited for the lock?
        let path = dir.join(RECORD);
        let bytes = match crate::sys::retry_transient(|| fs::read(&path)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ContainerError::NotFound(id.to_string()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let record: Record = serde_json::from_slice(&bytes)
            .map_err(|source| ContainerError::Corrupt { path, source })?;
        let mut locked = Locked {
            _lock: lock,
            path: dir,
            seen: std::cell::RefCell::new(Seen::of(&record)),
            shown: std::cell::RefCell::new(Summary::of(&record)),
            record,
        };
        if refresh(&mut locked.record.state) {
            (self.clean_up)(&locked.record.id, locked.dir());
            // What was seen is what is returned, saved or not: the next look sees the same
            // processes. A record that cannot be written (a full disk) must not make the
            // container unmanageable, nor hide it from `ps`.
            if let Err(e) = locked.save() {
                tracing::warn!(container = %id, error = %e, "recording the refreshed state");
            }
        }
        Ok(locked)
    }

    /// Give a container (its lock held by the caller) the name `new`, which must be free: the
    /// names index and the record change under the names lock, so no create takes the name
    /// in between and the old name is free once this returns.
    pub fn rename(&self, locked: &mut Locked, new: &str) -> Result<(), ContainerError> {
        names::validate(new)?;
        let _names = self.lock_names()?;
        let old = locked.record.name.clone();
        if old == new {
            return Err(ContainerError::SameName(new.to_string()));
        }
        if self.id_by_name(new).is_some() {
            return Err(ContainerError::NameInUse(new.to_string()));
        }
        let entry = self.names_dir().join(new);
        let tmp = self.names_dir().join(format!(".{new}.tmp"));
        fs::write(&tmp, &locked.record.id)
            .and_then(|()| fs::rename(&tmp, &entry))
            .map_err(io_err(&entry))?;
        locked.record.name = new.to_string();
        if let Err(e) = locked.save() {
            locked.record.name = old;
            let _ = fs::remove_file(&entry);
            return Err(e);
        }
        let old_entry = self.names_dir().join(&old);
        if fs::read_to_string(&old_entry).is_ok_and(|id| id.trim() == locked.record.id) {
            let _ = fs::remove_file(&old_entry);
        }
        locked.event("rename", &[("oldName", old)]);
        Ok(())
    }

    /// Remove container `id`'s directory (its lock is held by the caller and released
    /// after). The caller has made sure nothing of it runs.
    pub fn remove(&self, locked: Locked) -> Result<(), ContainerError> {
        let _names = self.lock_names()?;
        (self.clean_up)(&locked.record.id, locked.dir());
        let dir = locked.dir().to_path_buf();
        // The name is free once its entry names no container.
        let entry = self.names_dir().join(&locked.record.name);
        if fs::read_to_string(&entry).is_ok_and(|id| id.trim() == locked.record.id) {
            let _ = fs::remove_file(&entry);
        }
        // The record goes first: a half-removed directory is no longer a container.
        if runs(locked.record.state.status) {
            // Removed while its record still said running (`rm -f` ending its processes):
            // it died all the same.
            let code = locked.record.state.exit_code.unwrap_or(137);
            locked.event("die", &[("exitCode", code.to_string())]);
        }
        locked.event("destroy", &[]);
        let _ = fs::remove_file(dir.join(RECORD));
        let _ = fs::remove_file(active_marker(&dir));
        summary::Journal::new(&self.dir).forget(&locked.record.id);
        // Everything but the lock, which we hold open (Windows removes an open file only
        // once it is closed, and its directory not before); a verb that opened the lock
        // before it goes finds no record once it has it.
        let tree = |p: &Path| {
            crate::image::store::remove_tree(p).map_err(|e| ContainerError::Io {
                path: p.to_path_buf(),
                source: io::Error::other(e.to_string()),
            })
        };
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            if entry.file_name() != LOCK {
                tree(&entry.path())?;
            }
        }
        drop(locked);
        tree(&dir)
    }

    /// Remove directories with no record: left by a create or removal that was killed
    /// half-way (under the names lock, so none is being created right now). Returns how
    /// many.
    pub fn remove_leftovers(&self) -> Result<usize, ContainerError> {
        let _names = self.lock_names()?;
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(0);
        };
        let mut n = 0;
        // Container directories only: the indexes (`.names`, `.active`) have no record either.
        for dir in entries
            .flatten()
            .filter(|e| is_id_bytes(e.file_name().as_encoded_bytes()))
            .map(|e| e.path())
        {
            if dir.is_dir() && !dir.join(RECORD).exists() {
                if let Some(id) = dir.file_name().and_then(|n| n.to_str()) {
                    (self.clean_up)(id, &dir);
                }
                let _ = crate::image::store::remove_tree(&dir);
                n += 1;
            }
        }
        Ok(n)
    }
}

impl ContainerError {
    /// A verb refused by container `name`'s status, as Docker says it.
    pub fn refused(name: &str, why: crate::status::Refused) -> ContainerError {
        use crate::status::Refused;
        let name = name.to_string();
        match why {
            Refused::Running => ContainerError::Running(name),
            Refused::Paused => ContainerError::Paused(name),
            Refused::NotPaused => ContainerError::NotPaused(name),
            Refused::NotRunning | Refused::NotCreated => ContainerError::NotRunning(name),
        }
    }
}

/// Bring a record's state in line with its processes; true if it changed. A container whose
/// supervisor and monitor are both gone cannot be running, whatever the record said.
pub fn refresh(state: &mut State) -> bool {
    let alive = |p: &Option<Proc>| p.as_ref().is_some_and(Proc::alive);
    let status = state.status.observed(
        alive(&state.supervisor) || alive(&state.monitor),
        false,
        state.status == Status::Paused,
    );
    if status == state.status {
        return false;
    }
    let who = match (state.monitor, state.supervisor) {
        (Some(m), _) => format!("its monitor (pid {})", m.pid),
        (None, Some(s)) => format!("its supervisor (pid {})", s.pid),
        (None, None) => "the wharf process running it".to_string(),
    };
    state.status = status;
    state.pid = 0;
    if state.finished_at.is_some() && state.exit_code.is_some() {
        // The supervisor recorded the end; its monitor died before confirming it.
        return true;
    }
    if state.stop_requested {
        // `stop` or `kill` ended it and the supervisor went with it (a wasm guest's
        // supervisor is its process): killed, as Docker reports it.
        state.exit_code = Some(137);
    } else {
        state.exit_code = Some(255);
        state.error = Some(format!(
            "{who} died without recording how the container ended"
        ));
    }
    state.pid = 0;
    state.finished_at = Some(Utc::now());
    true
}

/// Whether this host keeps container records: process identity (pid and start time) comes
/// from Linux's /proc or from Windows' process times.
pub fn supported() -> bool {
    cfg!(any(target_os = "linux", windows))
}

/// The active-index marker of the container whose directory is `dir`.
fn active_marker(dir: &Path) -> PathBuf {
    let parent = dir.parent().unwrap_or(dir);
    parent
        .join(".active")
        .join(dir.file_name().unwrap_or_default())
}

fn mark_active(marker: &Path) -> Result<(), ContainerError> {
    let made = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(marker);
    match made {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = marker.parent().expect("a marker has a directory");
            fs::create_dir_all(dir).map_err(io_err(dir))?;
            fs::File::create(marker).map(drop).map_err(io_err(marker))
        }
        Err(e) => Err(io_err(marker)(e)),
    }
}

/// Whether `s` is a container id: 64 lowercase hex digits.
fn is_id(s: &str) -> bool {
    is_id_bytes(s.as_bytes())
}

fn is_id_bytes(s: &[u8]) -> bool {
    s.len() == 64 && s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str) -> Record {
        Record {
            id: id.into(),
            name: name.into(),
            created: Utc::now(),
            image: "img".into(),
            target: "sha256:00".into(),
            image_digest: None,
            platform: None,
            kind: crate::dispatch::Kind::Wasm,
            reason: String::new(),
            signals: Vec::new(),
            command: vec!["x".into()],
            options: Default::default(),
            restart: RestartPolicy::No,
            auto_remove: false,
            detached: true,
            log: LogConfig::default(),
            compile_timeout_ms: None,
            stop_signal: None,
            stop_timeout: None,
            state: State::default(),
        }
    }

    #[test]
    fn names_ids_and_prefixes_resolve_as_dockers_do() {
        let dir = tempfile::tempdir().unwrap();
        let c = Containers::new(&Roots::new(dir.path()), |_, _| {});
        let a = "abc1".to_string() + &"0".repeat(60);
        let b = "abc2".to_string() + &"0".repeat(60);
        c.create(record(&a, "web"), &InUse::default()).unwrap();
        c.create(record(&b, "abc1"), &InUse::default()).unwrap();
        // A name wins over an id prefix; full ids and unique prefixes work.
        assert_eq!(c.find("abc1").unwrap(), b);
        assert_eq!(c.find("web").unwrap(), a);
        assert_eq!(c.find("/web").unwrap(), a);
        assert_eq!(c.find(&a).unwrap(), a);
        assert_eq!(c.find("abc2").unwrap(), b);
        match c.find("abc") {
            Err(ContainerError::Ambiguous { matches, .. }) => assert_eq!(matches.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.find("fff"), Err(ContainerError::NotFound(_))));
        assert!(matches!(c.find("nope"), Err(ContainerError::NotFound(_))));
        assert!(matches!(
            c.create(record(&("d".repeat(64)), "web"), &InUse::default()),
            Err(ContainerError::NameInUse(_))
        ));
        // Generated names are unique too.
        let made = c
            .create(record(&"e".repeat(64), ""), &InUse::default())
            .unwrap();
        assert!(!made.name.is_empty() && made.name != "web");
        assert_eq!(c.list().len(), 3);
    }

    #[test]
    fn the_names_index_follows_create_and_remove_and_is_rebuilt_when_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let c = Containers::new(&Roots::new(dir.path()), |_, _| {});
        let a = "a".repeat(64);
        c.create(record(&a, "web"), &InUse::default()).unwrap();
        assert!(c.check_names().is_empty());
        // Removing frees the name.
        c.remove(c.lock(&a).unwrap()).unwrap();
        assert!(matches!(c.find("web"), Err(ContainerError::NotFound(_))));
        let b = "b".repeat(64);
        c.create(record(&b, "web"), &InUse::default()).unwrap();
        assert_eq!(c.find("web").unwrap(), b);
        // Damage: an entry deleted, another pointing nowhere.
        std::fs::remove_file(c.names_dir().join("web")).unwrap();
        std::fs::write(c.names_dir().join("ghost"), "c".repeat(64)).unwrap();
        assert_eq!(c.check_names().len(), 2, "{:?}", c.check_names());
        // A name whose entry is gone is still not taken twice once rebuilt; the stale entry
        // never resolves.
        assert!(matches!(c.find("ghost"), Err(ContainerError::NotFound(_))));
        assert_eq!(c.rebuild_names().unwrap(), 1);
        assert!(c.check_names().is_empty());
        assert_eq!(c.find("web").unwrap(), b);
        // A root made before the index existed gets one on first use.
        std::fs::remove_dir_all(c.names_dir()).unwrap();
        assert_eq!(c.find("web").unwrap(), b);
        assert!(matches!(
            c.create(record(&"d".repeat(64), "web"), &InUse::default()),
            Err(ContainerError::NameInUse(_))
        ));
    }

    #[test]
    fn the_summary_follows_every_change_and_is_rebuilt_when_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let c = Containers::new(&Roots::new(dir.path()), |_, _| {});
        let (a, b, d) = ("a".repeat(64), "b".repeat(64), "d".repeat(64));
        // A root whose containers predate the journal: its first reader builds it.
        c.create(record(&a, "one"), &InUse::default()).unwrap();
        std::fs::remove_file(dir.path().join("containers/.summary")).ok();
        assert_eq!(c.summaries().len(), 1);
        assert!(dir.path().join("containers/.summary").exists());
        c.create(record(&b, "two"), &InUse::default()).unwrap();
        c.create(record(&d, "three"), &InUse::default()).unwrap();
        let mut l = c.lock(&a).unwrap();
        l.record.state.status = Status::Exited;
        l.record.state.exit_code = Some(3);
        l.save().unwrap();
        drop(l);
        let mut l = c.lock(&b).unwrap();
        c.rename(&mut l, "renamed").unwrap();
        drop(l);
        c.remove(c.lock(&d).unwrap()).unwrap();
        // A running record whose processes are gone is shown refreshed, as `ps` did.
        let mut l = c.lock(&b).unwrap();
        l.record.state.status = Status::Running;
        l.record.state.supervisor = Some(Proc {
            pid: std::process::id() as i32,
            start_time: 1,
        });
        l.save().unwrap();
        drop(l);
        let rows = c.summaries();
        let listed: Vec<Summary> = c.list().iter().map(Summary::of).collect();
        assert_eq!(rows, listed, "the journal shows what the records say");
        assert_eq!(rows.len(), 2);
        let one = rows.iter().find(|s| s.id == a).unwrap();
        assert_eq!((one.status, one.exit_code), (Status::Exited, Some(3)));
        let two = rows.iter().find(|s| s.id == b).unwrap();
        assert_eq!((two.name.as_str(), two.status), ("renamed", Status::Exited));
        assert!(c.check_names().is_empty(), "{:?}", c.check_names());
        // Damage (a line lost, a ghost added) is found by the check and undone by a rebuild.
        let journal = dir.path().join("containers/.summary");
        let text = std::fs::read_to_string(&journal).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.contains(&a)).collect();
        let mut ghost = Summary::of(&record(&d, "ghost"));
        ghost.status = Status::Exited;
        let damaged = format!(
            "{}\n{}\n",
            kept.join("\n"),
            serde_json::to_string(&ghost).unwrap()
        );
        std::fs::write(&journal, damaged).unwrap();
        assert_eq!(c.check_names().len(), 2, "{:?}", c.check_names());
        c.rebuild_names().unwrap();
        assert!(c.check_names().is_empty(), "{:?}", c.check_names());
        assert_eq!(c.summaries(), listed);
        // A journal that is no journal is rebuilt by its next reader.
        std::fs::write(&journal, b"garbage").unwrap();
        assert_eq!(c.summaries(), listed);
        // A save that changes nothing `ps` shows (a health probe's) appends nothing.
        let before = std::fs::metadata(&journal).unwrap().len();
        let l = c.lock(&a).unwrap();
        l.save().unwrap();
        drop(l);
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), before);
        // A process killed between a record and its line (here: a removal whose `-ID`
        // never came): the count of directories tells, and the journal is rebuilt.
        std::fs::remove_dir_all(dir.path().join("containers").join(&a)).unwrap();
        let left: Vec<String> = c.summaries().into_iter().map(|s| s.id).collect();
        assert_eq!(left, std::slice::from_ref(&b));
        // Leftover directories are containers' only: the indexes stay.
        std::fs::create_dir(dir.path().join("containers").join(&d)).unwrap();
        assert_eq!(c.remove_leftovers().unwrap(), 1);
        assert!(dir.path().join("containers/.names").is_dir());
        assert!(dir.path().join("containers/.active").is_dir());
        // The removal by hand left `one`'s name: found, and repaired.
        assert_eq!(c.check_names().len(), 1, "{:?}", c.check_names());
        c.rebuild_names().unwrap();
        assert!(c.check_names().is_empty(), "{:?}", c.check_names());
    }

    #[test]
    fn the_active_index_lists_only_active_containers() {
        let dir = tempfile::tempdir().unwrap();
        let c = Containers::new(&Roots::new(dir.path()), |_, _| {});
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        c.create(record(&a, "one"), &InUse::default()).unwrap();
        c.create(record(&b, "two"), &InUse::default()).unwrap();
        assert!(c.list_active().is_empty());
        // Running, with a live supervisor (this test process): listed.
        let mut l = c.lock(&a).unwrap();
        l.record.state.status = Status::Running;
        l.record.state.supervisor = Proc::of(std::process::id() as i32);
        l.save().unwrap();
        drop(l);
        let active: Vec<String> = c.list_active().into_iter().map(|r| r.id).collect();
        assert_eq!(active, std::slice::from_ref(&a));
        assert!(c.check_names().is_empty(), "{:?}", c.check_names());
        // Ended: its marker goes.
        let mut l = c.lock(&a).unwrap();
        l.record.state.status = Status::Exited;
        l.save().unwrap();
        drop(l);
        assert!(c.list_active().is_empty());
        assert!(!dir.path().join("containers/.active").join(&a).exists());
        // A record that says running without a marker (damage) is found by the check and
        // put back by a rebuild.
        let mut l = c.lock(&b).unwrap();
        l.record.state.status = Status::Running;
        l.record.state.supervisor = Proc::of(std::process::id() as i32);
        l.save().unwrap();
        drop(l);
        std::fs::remove_file(dir.path().join("containers/.active").join(&b)).unwrap();
        assert_eq!(c.check_names().len(), 1);
        c.rebuild_names().unwrap();
        assert_eq!(c.list_active().len(), 1);
    }

    #[test]
    fn a_running_record_without_live_processes_is_refreshed_to_exited() {
        let mut st = State {
            status: Status::Running,
            supervisor: Some(Proc {
                pid: i32::MAX - 1,
                start_time: 1,
            }),
            ..State::default()
        };
        assert!(refresh(&mut st));
        assert_eq!(st.status, Status::Exited);
        assert_eq!(st.exit_code, Some(255));
        assert!(st.error.unwrap().contains("supervisor"));
        // What the supervisor recorded before its monitor vanished is kept.
        let mut st = State {
            status: Status::Running,
            exit_code: Some(3),
            finished_at: Some(Utc::now()),
            ..State::default()
        };
        assert!(refresh(&mut st));
        assert_eq!((st.status, st.exit_code), (Status::Exited, Some(3)));
        let mut exited = State {
            status: Status::Exited,
            ..State::default()
        };
        assert!(!refresh(&mut exited));
    }
}
