//! The event log: what happened to containers, images, networks and volumes, in the order
//! it happened, kept on disk (`ROOT/events.log`, one JSON object a line, Docker's
//! `events --format json` shape) so that `wharf events --since` reads the past and follows
//! what comes without a daemon.
//!
//! Every writer appends one whole line under an exclusive lock of the log, so lines never
//! interleave and the file's order is the order of events (a container's events are also
//! written under that container's lock: per container the order is its lifecycle's). The
//! log is bounded: past [`MAX_BYTES`] it is renamed to `events.log.1` (the one before is
//! dropped) and a new one begins; a reader reads both.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Size at which the log is rotated.
pub const MAX_BYTES: u64 = 4 << 20;

/// One event, as Docker's `events --format '{{json .}}'` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// container, image, network or volume.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    /// Docker's older fields, kept for scripts that read them.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// What the event is about: its id and attributes (name, image, exitCode, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event happening now.
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Event {
        let now = chrono::Utc::now();
        let nano = now.timestamp_nanos_opt().unwrap_or(0);
        Event {
            kind: kind.to_string(),
            action: action.to_string(),
            from: attributes.get("image").cloned(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: now.timestamp(),
            time_nano: nano,
            status: action.to_string(),
            id: id.to_string(),
        }
    }

    /// The attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.actor.attributes.get(key).map(String::as_str)
    }
}

/// The log under the root whose data directory is `data`.
pub fn log_path(data: &Path) -> PathBuf {
    data.join("events.log")
}

fn rotated(log: &Path) -> PathBuf {
    log.with_extension("log.1")
}

/// The environment variable that turns the log off: `WHARF_EVENTS_LOGGER=none` (Podman's
/// `events_logger = "none"`), for hosts whose storage should not take a write per event.
pub const LOGGER_VAR: &str = "WHARF_EVENTS_LOGGER";

/// Whether events are recorded (not with `WHARF_EVENTS_LOGGER=none`).
pub fn enabled() -> bool {
    std::env::var_os(LOGGER_VAR).is_none_or(|v| v != "none")
}

/// Append `event` to `log`. An event that cannot be written is reported (tracing) and
/// otherwise dropped: a full disk must not fail the verb that caused it.
pub fn append(log: &Path, event: &Event) {
    if !enabled() {
        return;
    }
    if let Err(e) = try_append(log, event) {
        tracing::warn!(log = %log.display(), error = %e, "recording an event");
    }
}

fn try_append(log: &Path, event: &Event) -> io::Result<()> {
    let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
    line.push(b'\n');
    // One descriptor per process and log, kept between events (a verb such as `run --rm`
    // writes four): each append only takes the lock, checks the file is still the log and
    // writes.
    static OPEN: std::sync::Mutex<Option<(PathBuf, File)>> = std::sync::Mutex::new(None);
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    let cached = match open.take() {
        Some((path, f)) if path == log => Some(f),
        _ => None,
    };
    let mut f = locked(log, cached)?;
    if f.metadata()?.len() + line.len() as u64 > MAX_BYTES {
        // Under the lock: every other writer waits, and finds the new file after.
        fs::rename(log, rotated(log))?;
        f.unlock()?;
        f = locked(log, None)?;
    }
    let written = f.write_all(&line);
    f.unlock()?;
    *open = Some((log.to_path_buf(), f));
    written
}

/// `file` (else the log opened for appending, made if missing) with its lock held; a
/// file rotated away meanwhile is left for the new log.
fn locked(log: &Path, file: Option<File>) -> io::Result<File> {
    let mut file = file;
    loop {
        let f = match file.take() {
            Some(f) => f,
            None => OpenOptions::new().create(true).append(true).open(log)?,
        };
        f.lock()?;
        if same_file(&f, log) {
            return Ok(f);
        }
    }
}

fn same_identity(a: &File, b: &File) -> bool {
    match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) => crate::sys::file_identity(&a) == crate::sys::file_identity(&b),
        _ => false,
    }
}

fn same_file(f: &File, path: &Path) -> bool {
    match (f.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => crate::sys::file_identity(&a) == crate::sys::file_identity(&b),
        _ => false,
    }
}

/// Every event kept, oldest first.
pub fn read_all(log: &Path) -> Vec<Event> {
    let mut out = read_file(&rotated(log));
    out.extend(read_file(log));
    out
}

fn read_file(path: &Path) -> Vec<Event> {
    let Ok(f) = File::open(path) else {
        return Vec::new();
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

/// Events as they are appended: from the end of the log as it is now ([`Follower::new`]),
/// or from the oldest one kept ([`Follower::from_start`]: the past, then what comes, with
/// no event missed or seen twice in between); follows the log across a rotation.
pub struct Follower {
    log: PathBuf,
    file: Option<File>,
    offset: u64,
    partial: Vec<u8>,
    /// The rotated file's events, not yet handed out.
    backlog: Vec<Event>,
}

impl Follower {
    /// Follow `log` from the oldest event it keeps.
    pub fn from_start(log: &Path) -> Follower {
        // The current file first: a rotation after this leaves it as the one read on.
        let file = File::open(log).ok();
        let old = rotated(log);
        let backlog = match (&file, File::open(&old)) {
            (Some(f), Ok(o)) if same_identity(f, &o) => Vec::new(),
            _ => read_file(&old),
        };
        Follower {
            log: log.to_path_buf(),
            file,
            offset: 0,
            partial: Vec::new(),
            backlog,
        }
    }

    /// Follow `log` from its current end.
    pub fn new(log: &Path) -> Follower {
        let file = File::open(log).ok();
        let offset = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Follower {
            log: log.to_path_buf(),
            file,
            offset,
            partial: Vec::new(),
            backlog: Vec::new(),
        }
    }

    /// The events appended since the last call.
    pub fn poll(&mut self) -> Vec<Event> {
        let mut out = std::mem::take(&mut self.backlog);
        // Rotated: read what is left of the old file, then go on with the new one.
        let rotated_away = self.file.as_ref().is_some_and(|f| !same_file(f, &self.log));
        out.extend(self.read_new());
        if rotated_away {
            // Rotated twice since the last look: the file in between is `.1` now.
            let old = rotated(&self.log);
            if let (Some(f), Ok(middle)) = (&self.file, File::open(&old))
                && !same_identity(f, &middle)
            {
                out.extend(read_file(&old));
            }
        }
        if rotated_away || self.file.is_none() {
            self.file = File::open(&self.log).ok();
            self.offset = 0;
            self.partial.clear();
            out.extend(self.read_new());
        }
        out
    }

    fn read_new(&mut self) -> Vec<Event> {
        let Some(f) = self.file.as_mut() else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let Ok(n) = io::Read::read_to_end(f, &mut bytes) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.partial.extend_from_slice(&bytes);
        let mut out = Vec::new();
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            if let Ok(e) = serde_json::from_slice(&line) {
                out.push(e);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str, id: &str) -> Event {
        Event::new("container", action, id, BTreeMap::new())
    }

    #[test]
    fn appends_are_read_back_in_order_and_followed_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_path(dir.path());
        let mut follower = Follower::new(&log);
        append(&log, &ev("create", "a"));
        append(&log, &ev("start", "a"));
        let seen: Vec<String> = follower.poll().into_iter().map(|e| e.action).collect();
        assert_eq!(seen, ["create", "start"]);
        // Enough to rotate: every event is still read once, in order.
        let big: BTreeMap<String, String> = [("pad".to_string(), "x".repeat(1 << 20))]
            .into_iter()
            .collect();
        let mut seen: Vec<String> = Vec::new();
        for i in 0..10 {
            append(
                &log,
                &Event::new("container", &format!("big{i}"), "b", big.clone()),
            );
            if i % 3 == 2 && i != 5 {
                seen.extend(follower.poll().into_iter().map(|e| e.action));
            }
        }
        seen.extend(follower.poll().into_iter().map(|e| e.action));
        let want: Vec<String> = (0..10).map(|i| format!("big{i}")).collect();
        assert_eq!(seen, want);
        assert!(fs::metadata(&log).unwrap().len() <= MAX_BYTES);
        assert!(rotated(&log).exists());
        let kept: Vec<String> = read_all(&log).into_iter().map(|e| e.action).collect();
        assert!(kept.ends_with(&["big9".to_string()]), "{kept:?}");
        assert!(
            !kept.contains(&"create".to_string()),
            "dropped after two rotations"
        );
    }

    #[test]
    fn concurrent_writers_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_path(dir.path());
        std::thread::scope(|s| {
            for t in 0..8 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..50 {
                        append(log, &ev(&format!("a{i}"), &format!("t{t}")));
                    }
                });
            }
        });
        let all = read_all(&log);
        assert_eq!(all.len(), 400);
        for t in 0..8 {
            let mine: Vec<String> = all
                .iter()
                .filter(|e| e.id == format!("t{t}"))
                .map(|e| e.action.clone())
                .collect();
            let want: Vec<String> = (0..50).map(|i| format!("a{i}")).collect();
            assert_eq!(mine, want);
        }
    }
}
