//! A container's log in Docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-29T13:31:10.123456789Z"}`, capped in
//! size with rotation (`<id>-json.log`, then `.1`, `.2`, … oldest last).

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::LogConfig;
use crate::sys::file_id;

/// Longest piece of a line one entry holds (Docker splits long lines at 16 KiB too).
pub const MAX_ENTRY: usize = 16 << 10;

/// One log entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

impl Entry {
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.time)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The log file of the container whose directory is `dir`.
pub fn path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Appends entries, rotating when the current file would pass `max_size`.
pub struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    config: LogConfig,
}

impl Writer {
    pub fn open(path: &Path, config: LogConfig) -> io::Result<Writer> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            size,
            config,
        })
    }

    /// Write one entry for `bytes` (a line, or a piece of one) from `stream`.
    pub fn write(&mut self, stream: &str, bytes: &[u8]) -> io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.to_string(),
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
        };
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.config.max_size {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.config.max_files.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
            self.file.seek(SeekFrom::Start(0))?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(rotated(&self.path, keep - 1));
        for n in (1..keep - 1).rev() {
            let _ = fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// How long logging pauses after a write failed (a full disk): output meanwhile is read and
/// dropped, a pipe-full at a time, so the container neither blocks nor makes the monitor
/// spin on one failing write per line.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Copy `from` into the log as `stream` entries, a line (or 16 KiB of one) at a time,
/// until it closes. When the log cannot be written, output is dropped for a while (see
/// `PAUSE_AFTER_FAILURE`); logging resumes once a write succeeds again.
pub fn copy(from: impl io::Read, stream: &str, log: &std::sync::Mutex<Writer>) {
    let mut r = BufReader::with_capacity(MAX_ENTRY, from);
    let mut buf = Vec::with_capacity(1024);
    let mut paused_until: Option<std::time::Instant> = None;
    loop {
        if let Some(until) = paused_until {
            if std::time::Instant::now() < until {
                match drop_some(&mut r) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
            paused_until = None;
        }
        buf.clear();
        match io::Read::take(&mut r, MAX_ENTRY as u64).read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) => {
                let mut w = log.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = w.write(stream, &buf) {
                    tracing::warn!(error = %e, "writing the container log: dropping output for a second");
                    paused_until = Some(std::time::Instant::now() + PAUSE_AFTER_FAILURE);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Read and drop what is buffered, or one read's worth: how many bytes.
fn drop_some(r: &mut BufReader<impl io::Read>) -> io::Result<usize> {
    let n = r.fill_buf()?.len();
    r.consume(n);
    Ok(n)
}

/// What `wharf logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Only the last N entries.
    pub tail: Option<usize>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Keep reading while the container runs.
    pub follow: bool,
}

fn parse(line: &str) -> Option<Entry> {
    serde_json::from_str(line.trim_end()).ok()
}

/// Read the log at `path` (rotations first, oldest first), handing each entry to `out`.
/// With `follow`, keeps reading new entries (across rotations) until `running` says the
/// container has ended and everything written has been read.
pub fn read(
    path: &Path,
    opts: &ReadOptions,
    running: &mut dyn FnMut() -> bool,
    out: &mut dyn FnMut(&Entry) -> io::Result<()>,
) -> io::Result<()> {
    let keep = |e: &Entry| match opts.since {
        Some(t) => e.timestamp().is_some_and(|ts| ts >= t),
        None => true,
    };
    // Everything present now: the rotations, oldest first, then the current file up to its
    // last complete line (a partial one is the writer's, still being written). Memory stays
    // bounded whatever the log's size: without --tail entries stream straight through; with
    // it the files are read backwards from the end, holding at most N entries.
    // The current file is opened first, then the rotations are opened (not just listed):
    // a rotation while we look shifts every name by one, but an open file keeps its bytes.
    let mut current = match File::open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut files = rotations(path, None, current.as_ref().and_then(file_id));
    files.reverse();
    let complete = match current.as_mut() {
        Some(f) => complete_len(f)?,
        None => 0,
    };
    match opts.tail {
        None => {
            for file in files {
                drain(&mut BufReader::new(file), &mut String::new(), &keep, out)?;
            }
            if let Some(f) = current.as_mut() {
                f.seek(SeekFrom::Start(0))?;
                let mut r = BufReader::new(io::Read::take(&mut *f, complete));
                drain(&mut r, &mut String::new(), &keep, out)?;
            }
        }
        Some(n) => {
            let mut last: Vec<Entry> = Vec::new();
            if let Some(f) = current.as_mut() {
                tail_entries(f, complete, n, &keep, &mut last)?;
            }
            for mut file in files.into_iter().rev() {
                if last.len() >= n {
                    break;
                }
                let len = complete_len(&mut file)?;
                tail_entries(&mut file, len, n, &keep, &mut last)?;
            }
            for e in last.iter().rev() {
                out(e)?;
            }
        }
    }
    let mut reader = match current {
        Some(mut f) => {
            f.seek(SeekFrom::Start(complete))?;
            Some(BufReader::new(f))
        }
        None => None,
    };
    let mut partial = String::new();
    if !opts.follow {
        return Ok(());
    }
    loop {
        // Checked before reading, so entries written before the container ended are read.
        let still_running = running();
        if reader.is_none() {
            reader = File::open(path).ok().map(BufReader::new);
        }
        let mut progressed = false;
        if let Some(r) = reader.as_mut() {
            progressed |= drain(r, &mut partial, &keep, out)?;
            if is_replaced(r.get_ref(), path) {
                // Once its successor exists the held file gets no more writes: its tail is
                // final. Then the files rotated after it (the writer may have rotated more
                // than once since we looked), oldest first, then the current one.
                drain(r, &mut partial, &keep, out)?;
                partial.clear();
                let current = File::open(path).ok();
                let newer = rotations(
                    path,
                    file_id(r.get_ref()),
                    current.as_ref().and_then(file_id),
                );
                for f in newer.into_iter().rev() {
                    drain(&mut BufReader::new(f), &mut String::new(), &keep, out)?;
                }
                reader = current.map(BufReader::new);
                progressed = true;
            }
        }
        if !still_running && !progressed {
            return Ok(());
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The rotated files of the log at `path`, opened, newest first: those newer than `held`
/// when it is given (the file a follower was reading), all of them otherwise; never
/// `current`. A rotation during the scan shifts every name by one, so the same file can
/// come up twice (kept once) and a name can be missing for a moment (the scan goes on past
/// it). Files are told apart by device and inode, for this look only: a deleted
/// rotation's inode is soon reused.
fn rotations(path: &Path, held: Option<FileId>, current: Option<FileId>) -> Vec<File> {
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    for n in 1..100 {
        let Ok(f) = File::open(rotated(path, n)) else {
            continue;
        };
        let id = file_id(&f);
        if id.is_some() && id == held {
            break;
        }
        if id.is_none() || (id != current && seen.insert(id)) {
            found.push(f);
        }
    }
    found
}

/// Bytes of `f` up to and including its last newline (a trailing partial line excluded).
fn complete_len(f: &mut File) -> io::Result<u64> {
    let len = f.metadata()?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        io::Read::read_exact(f, chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Read `f` backwards from `end`, pushing the entries `keep` accepts onto `last` (newest
/// first) until it holds `n`. Reads 64 KiB at a time; only the line being assembled and the
/// `n` entries are held.
fn tail_entries(
    f: &mut File,
    end: u64,
    n: usize,
    keep: &dyn Fn(&Entry) -> bool,
    last: &mut Vec<Entry>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    // The bytes of the line being assembled, reversed (read back to front).
    let mut line_rev: Vec<u8> = Vec::new();
    let mut pos = end;
    let take = |line_rev: &mut Vec<u8>, last: &mut Vec<Entry>| {
        if !line_rev.is_empty() {
            line_rev.reverse();
            if let Some(e) = std::str::from_utf8(line_rev).ok().and_then(parse)
                && keep(&e)
            {
                last.push(e);
            }
            line_rev.clear();
        }
    };
    while pos > 0 && last.len() < n {
        let start = pos.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(pos - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        io::Read::read_exact(f, chunk)?;
        for &b in chunk.iter().rev() {
            if b == b'\n' {
                take(&mut line_rev, last);
                if last.len() >= n {
                    return Ok(());
                }
            } else {
                line_rev.push(b);
            }
        }
        pos = start;
    }
    if last.len() < n {
        take(&mut line_rev, last);
    }
    last.truncate(n);
    Ok(())
}

/// Hand every complete line left in `r` to `out` (a trailing partial line stays in
/// `partial` for the next look). True if anything was read.
fn drain(
    r: &mut impl BufRead,
    partial: &mut String,
    keep: &dyn Fn(&Entry) -> bool,
    out: &mut dyn FnMut(&Entry) -> io::Result<()>,
) -> io::Result<bool> {
    let mut any = false;
    loop {
        let mut line = std::mem::take(partial);
        if r.read_line(&mut line)? == 0 || !line.ends_with('\n') {
            *partial = line;
            return Ok(any);
        }
        any = true;
        if let Some(e) = parse(&line).filter(|e| keep(e)) {
            out(&e)?;
        }
    }
}

type FileId = (u64, u64);

/// Whether the file at `path` is no longer `file` (renamed away and replaced), or was
/// truncated (rotation with one file).
fn is_replaced(file: &File, path: &Path) -> bool {
    let Ok(now) = File::open(path) else {
        return false;
    };
    match (file.metadata(), now.metadata()) {
        (Ok(a), Ok(b)) => file_id(file) != file_id(&now) || b.len() < a.len(),
        _ => false,
    }
}

/// `--since`: an RFC 3339 time, a Unix timestamp, or a duration back from now (`10m`).
pub fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        let nanos = (secs * 1e9) as i64;
        return Some(DateTime::from_timestamp_nanos(nanos));
    }
    let d = crate::run::options::parse_duration(s).ok()?;
    Some(Utc::now() - chrono::Duration::from_std(d).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path, opts: &ReadOptions) -> Vec<Entry> {
        let mut v = Vec::new();
        read(path, opts, &mut || false, &mut |e| {
            v.push(e.clone());
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn lines_rotate_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut w = Writer::open(
            &p,
            LogConfig {
                max_size: 300,
                max_files: 3,
            },
        )
        .unwrap();
        for i in 0..20 {
            let stream = if i % 2 == 0 { "stdout" } else { "stderr" };
            w.write(stream, format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(rotated(&p, 1).exists() && rotated(&p, 2).exists());
        assert!(!rotated(&p, 3).exists(), "only max_files files are kept");
        for f in [p.clone(), rotated(&p, 1), rotated(&p, 2)] {
            assert!(fs::metadata(&f).unwrap().len() <= 300);
        }
        let all = entries(&p, &ReadOptions::default());
        let nums: Vec<usize> = all
            .iter()
            .map(|e| e.log.trim()[5..].parse().unwrap())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert_eq!(*nums.last().unwrap(), 19);
        assert!(nums[0] > 0, "the oldest lines were rotated away");
        assert!(all.iter().all(|e| e.stream
            == if e.log.trim()[5..].parse::<usize>().unwrap() % 2 == 0 {
                "stdout"
            } else {
                "stderr"
            }));
        let tail = entries(
            &p,
            &ReadOptions {
                tail: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[1].log, "line 19\n");
        assert!(all[0].timestamp().is_some());
        let future = entries(
            &p,
            &ReadOptions {
                since: Some(Utc::now() + chrono::Duration::seconds(5)),
                ..Default::default()
            },
        );
        assert!(future.is_empty());
    }

    #[test]
    fn long_lines_are_split_and_odd_bytes_survive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let w = std::sync::Mutex::new(Writer::open(&p, LogConfig::default()).unwrap());
        let mut input = vec![b'x'; MAX_ENTRY + 10];
        input.extend_from_slice(b"\n\xff\"quoted\"\n");
        copy(&input[..], "stdout", &w);
        let all = entries(&p, &ReadOptions::default());
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].log.len(), MAX_ENTRY);
        assert_eq!(all[1].log, "xxxxxxxxxx\n");
        assert_eq!(all[2].log, "\u{fffd}\"quoted\"\n");
    }

    #[test]
    fn follow_keeps_up_with_a_writer_that_rotates_often() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let config = LogConfig {
            max_size: 400,
            max_files: 50,
        };
        let mut w = Writer::open(&p, config).unwrap();
        w.write("stdout", b"line 0\n").unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let done = done.clone();
            std::thread::spawn(move || {
                for i in 1..600 {
                    w.write("stdout", format!("line {i}\n").as_bytes()).unwrap();
                    if i % 50 == 0 {
                        // Bursts: several rotations between two looks of the reader.
                        std::thread::sleep(Duration::from_millis(60));
                    }
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        };
        let mut seen = Vec::new();
        let opts = ReadOptions {
            follow: true,
            ..ReadOptions::default()
        };
        read(
            &p,
            &opts,
            &mut || !done.load(std::sync::atomic::Ordering::SeqCst),
            &mut |e| {
                seen.push(e.log.trim()[5..].parse::<usize>().unwrap());
                Ok(())
            },
        )
        .unwrap();
        writer.join().unwrap();
        assert_eq!(seen, (0..600).collect::<Vec<_>>());
    }

    #[test]
    fn since_accepts_times_and_durations() {
        assert!(parse_since("2026-11-29T13:31:10Z").is_some());
        assert!(parse_since("1700000000").is_some());
        let t = parse_since("10m").unwrap();
        assert!(t < Utc::now() - chrono::Duration::minutes(9));
        assert!(parse_since("yesterday").is_none());
    }
}
