//! The summary journal: what `ps -a` shows of every container, in one file, so listing a
//! thousand containers reads one file instead of a thousand records.
//!
//! `ROOT/containers/.summary` is a journal of lines: a header (`#wharf-summary 1 BASE`,
//! BASE the size the journal had when it was last compacted), then one line per change, a
//! container's [`Summary`] as JSON when its record is written, `-ID` when it is removed;
//! the last line about a container wins. Lines are appended under `.summary.lock` (taken
//! after the container's lock and the names lock, never before them), after the record
//! they summarise is on disk; readers take the lock shared. When the journal has grown to
//! three times its compacted size it is rewritten, folded, and renamed over the old one.
//!
//! The records stay the truth. The journal is rebuilt from them when it is missing (a root
//! made before it existed), when an append failed (a full disk: the journal is deleted
//! rather than left behind the records), and by `wharf system check --repair`. Active
//! containers are re-read from their records by the lister anyway (their state is refreshed
//! from their processes), so only stopped ones are shown from the journal as written.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::health::HealthStatus;
use super::{Record, Status};
use crate::dispatch::Kind;
use crate::run::options::PortMapping;

const JOURNAL: &str = ".summary";
const LOCK: &str = ".summary.lock";
const MAGIC: &str = "#wharf-summary 1 ";
/// A journal is never compacted below this size.
const COMPACT_MIN: u64 = 128 << 10;

/// What `ps` shows of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub kind: Kind,
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The ports as asked (`ps` reads the published ones of a running container).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    /// `--network` first, then the networks connected later.
    pub networks: Vec<String>,
    /// Each volume: a named volume's name, else its host path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<String>,
    /// How many of `mounts` are named volumes.
    #[serde(default)]
    pub local_volumes: usize,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
}

impl Summary {
    pub fn of(r: &Record) -> Summary {
        let o = &r.options;
        Summary {
            id: r.id.clone(),
            name: r.name.clone(),
            created: r.created,
            image: r.image.clone(),
            image_digest: r.image_digest.clone(),
            platform: r.platform.clone(),
            kind: r.kind,
            command: r.command.clone(),
            labels: o.labels.clone(),
            ports: o.ports.clone(),
            networks: std::iter::once(o.network.to_string())
                .chain(o.connected.iter().map(|c| c.network.clone()))
                .collect(),
            mounts: o
                .volumes
                .iter()
                .map(|v| {
                    v.named
                        .clone()
                        .unwrap_or_else(|| v.host.display().to_string())
                })
                .collect(),
            local_volumes: o.volumes.iter().filter(|v| v.named.is_some()).count(),
            status: r.state.status,
            exit_code: r.state.exit_code,
            started_at: r.state.started_at,
            finished_at: r.state.finished_at,
            health: r.state.health.as_ref().map(|h| h.status),
        }
    }

    /// The first 12 digits, as `ps` shows them.
    pub fn short_id(&self) -> &str {
        crate::id::short(&self.id)
    }
}

/// The journal of the containers directory `dir`.
pub(super) struct Journal {
    path: PathBuf,
    lock: PathBuf,
}

impl Journal {
    pub(super) fn new(dir: &Path) -> Journal {
        Journal {
            path: dir.join(JOURNAL),
            lock: dir.join(LOCK),
        }
    }

    fn locked(&self, exclusive: bool) -> io::Result<File> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.lock)?;
        if exclusive {
            f.lock()?;
        } else {
            f.lock_shared()?;
        }
        Ok(f)
    }

    /// Record what `ps` shows of a container now. Best effort: a journal that cannot be
    /// appended to is deleted, to be rebuilt from the records by its next reader.
    pub(super) fn put(&self, s: &Summary) {
        let mut line = serde_json::to_vec(s).expect("a summary serialises");
        line.push(b'\n');
        self.append(&line);
    }

    /// Delete the journal (under its lock when it can be had), to be rebuilt by its next
    /// reader.
    pub(super) fn discard(&self) {
        let _lock = self.locked(true);
        let _ = fs::remove_file(&self.path);
    }

    /// Record that container `id` is gone.
    pub(super) fn forget(&self, id: &str) {
        self.append(format!("-{id}\n").as_bytes());
    }

    fn append(&self, line: &[u8]) {
        let Ok(_lock) = self.locked(true) else {
            let _ = fs::remove_file(&self.path);
            return;
        };
        let appended = (|| -> io::Result<bool> {
            let mut f = match fs::OpenOptions::new()
                .read(true)
                .append(true)
                .open(&self.path)
            {
                Ok(f) => f,
                // None yet: its first reader builds it from the records.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            let len = f.metadata()?.len();
            let mut head = Vec::with_capacity(64);
            f.seek(SeekFrom::Start(0))?;
            (&mut f).take(64).read_to_end(&mut head)?;
            let Some(base) = base_of(&head) else {
                return Err(io::Error::other("not a summary journal"));
            };
            // A line cut short (a writer killed mid-write): rebuilt, as its readers do.
            let mut last = [0u8; 1];
            f.seek(SeekFrom::Start(len - 1))?;
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                return Err(io::Error::other("a line was cut short"));
            }
            f.write_all(line)?;
            Ok(len + line.len() as u64 > COMPACT_MIN.max(base.saturating_mul(3)))
        })();
        match appended {
            Ok(true) => {
                if let Some(rows) = self.read_unlocked()
                    && self.write_unlocked(&rows).is_ok()
                {
                    return;
                }
                let _ = fs::remove_file(&self.path);
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "the container summary is rebuilt at its next read");
                let _ = fs::remove_file(&self.path);
            }
        }
    }

    /// Every container the journal holds, or `None` when there is no usable journal.
    pub(super) fn read(&self) -> Option<Vec<Summary>> {
        let _lock = self.locked(false).ok()?;
        self.read_unlocked()
    }

    fn read_unlocked(&self) -> Option<Vec<Summary>> {
        let bytes = fs::read(&self.path).ok()?;
        fold(&bytes)
    }

    /// Replace the journal by one holding `rows` (the records as they are): under the
    /// lock, so no append falls between the records read and the journal written.
    pub(super) fn rebuild(&self, rows: impl FnOnce() -> Vec<Summary>) -> io::Result<Vec<Summary>> {
        let _lock = self.locked(true)?;
        let rows = rows();
        self.write_unlocked(&rows)?;
        Ok(rows)
    }

    fn write_unlocked(&self, rows: &[Summary]) -> io::Result<()> {
        let mut body = Vec::with_capacity(rows.len() * 256);
        for r in rows {
            serde_json::to_writer(&mut body, r).map_err(io::Error::other)?;
            body.push(b'\n');
        }
        // The header counts itself: BASE is the whole compacted size.
        let rest = MAGIC.len() + 1 + body.len();
        let width = (1..)
            .find(|w| (rest + w).to_string().len() == *w)
            .expect("a width fits");
        let total = rest + width;
        let mut bytes = format!("{MAGIC}{total}\n").into_bytes();
        bytes.extend_from_slice(&body);
        crate::sys::write_atomic(None, &self.path, &bytes, crate::sys::Durability::Unsynced)
    }
}

/// The compacted size a journal's header gives, if `head` starts with one.
fn base_of(head: &[u8]) -> Option<u64> {
    let line = head.split(|b| *b == b'\n').next()?;
    std::str::from_utf8(line.strip_prefix(MAGIC.as_bytes())?)
        .ok()?
        .parse()
        .ok()
}

/// The containers a journal holds: its lines folded, the last about each container
/// winning. `None` if it has no header or its last line was cut short (a writer killed
/// mid-write): such a journal is rebuilt.
///
/// Only the winning lines are parsed, each once, into a vector made to size: listing a
/// thousand containers is dominated by this, and by the memory it touches.
fn fold(bytes: &[u8]) -> Option<Vec<Summary>> {
    base_of(bytes)?;
    if bytes.last() != Some(&b'\n') {
        return None;
    }
    let lines = bytes.split(|b| *b == b'\n').skip(1);
    let mut last: HashMap<&[u8], Option<&[u8]>> = HashMap::with_capacity(bytes.len() / 256 + 1);
    let mut order: Vec<&[u8]> = Vec::with_capacity(bytes.len() / 256 + 1);
    for line in lines {
        let (id, row) = match line.first() {
            None => continue,
            Some(b'-') => (&line[1..], None),
            Some(_) => match id_of(line) {
                Some(id) => (id, Some(line)),
                None => continue,
            },
        };
        // Only containers' ids: a damaged line names none.
        if !super::is_id_bytes(id) {
            continue;
        }
        if last.insert(id, row).is_none() && row.is_some() {
            order.push(id);
        }
    }
    let mut rows = Vec::with_capacity(order.len());
    for id in order {
        if let Some(Some(line)) = last.remove(id) {
            rows.push(serde_json::from_slice::<Summary>(line).ok()?);
        }
    }
    Some(rows)
}

/// The id a summary line is about: its first field, as [`Summary`] serialises.
fn id_of(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"{\"id\":\"")?;
    let end = rest.iter().position(|b| *b == b'"')?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary of container `c` (its id: 64 times `c`).
    fn summary(c: &str, status: Status) -> Summary {
        let id = c.repeat(64);
        Summary {
            id: id.clone(),
            name: format!("n{c}"),
            created: Utc::now(),
            image: "busybox".into(),
            image_digest: None,
            platform: None,
            kind: Kind::Native,
            command: vec!["true".into()],
            labels: BTreeMap::new(),
            ports: Vec::new(),
            networks: vec!["none".into()],
            mounts: Vec::new(),
            local_volumes: 0,
            status,
            exit_code: None,
            started_at: None,
            finished_at: None,
            health: None,
        }
    }

    #[test]
    fn the_last_line_about_a_container_wins_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        assert!(j.read().is_none(), "no journal yet");
        j.rebuild(|| vec![summary("a", Status::Created), summary("b", Status::Exited)])
            .unwrap();
        let text = fs::read_to_string(dir.path().join(JOURNAL)).unwrap();
        assert_eq!(
            base_of(text.as_bytes()),
            Some(text.len() as u64),
            "the header holds the compacted size, itself included"
        );
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL))
            .unwrap();
        let mut line = serde_json::to_vec(&summary("a", Status::Exited)).unwrap();
        line.push(b'\n');
        f.write_all(&line).unwrap();
        f.write_all(format!("-{}\n", "b".repeat(64)).as_bytes())
            .unwrap();
        let rows = j.read().unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].status, Status::Exited);
        // A line cut short: no journal, to be rebuilt; an append then deletes it.
        f.write_all(b"{\"id\":\"c\",\"na").unwrap();
        drop(f);
        assert!(j.read().is_none());
        j.forget(&"a".repeat(64));
        assert!(!dir.path().join(JOURNAL).exists());
    }

    #[test]
    fn a_growing_journal_is_compacted_to_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        j.rebuild(Vec::new).unwrap();
        let mut line = serde_json::to_vec(&summary("e", Status::Running)).unwrap();
        line.push(b'\n');
        for _ in 0..2 * COMPACT_MIN as usize / line.len() {
            j.append(&line);
        }
        let len = fs::metadata(dir.path().join(JOURNAL)).unwrap().len();
        assert!(len < COMPACT_MIN, "compacted: {len} bytes");
        assert_eq!(j.read().unwrap(), vec![summary_like(&line)]);
    }

    fn summary_like(line: &[u8]) -> Summary {
        serde_json::from_slice(&line[..line.len() - 1]).unwrap()
    }

    #[test]
    fn no_header_is_no_journal_and_no_id_is_no_line() {
        assert!(fold(b"{\"id\":\"a\"}\n").is_none());
        assert_eq!(fold(b"#wharf-summary 1 20\n").unwrap(), Vec::new());
        // Lines naming no container (damage) are skipped, removals included.
        let mut bad = summary("a", Status::Exited);
        bad.id = "../x".into();
        let text = format!(
            "#wharf-summary 1 20\n{}\n-../y\n",
            serde_json::to_string(&bad).unwrap()
        );
        assert_eq!(fold(text.as_bytes()).unwrap(), Vec::new());
        // A header whose size overflows when tripled is no panic.
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(JOURNAL),
            b"#wharf-summary 1 18446744073709551615\n",
        )
        .unwrap();
        let j = Journal::new(dir.path());
        j.forget(&"a".repeat(64));
        assert_eq!(j.read().unwrap(), Vec::new());
    }
}
