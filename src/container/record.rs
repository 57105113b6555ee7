//! A container's record: what it was created from and the state it is in, kept as
//! `ROOT/containers/<id>/container.json` and rewritten atomically (temp file + rename) while
//! the container's lock is held.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dispatch::Kind;
use crate::run::options::RunOptions;

pub use crate::status::Status;

/// A process, named so that a recycled pid is not mistaken for it: the pid plus the
/// kernel's start time of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    pub start_time: u64,
}

impl Proc {
    /// This process.
    pub fn current() -> Option<Proc> {
        Proc::of(std::process::id() as i32)
    }

    /// Process `pid`, if it exists.
    pub fn of(pid: i32) -> Option<Proc> {
        crate::sys::process_start_time(pid).map(|start_time| Proc { pid, start_time })
    }

    /// Whether this very process still runs (a zombie counts as gone).
    pub fn alive(&self) -> bool {
        crate::sys::process_start_time(self.pid) == Some(self.start_time)
    }
}

/// `--restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max_retries` times (0: no cap).
    OnFailure { max_retries: u32 },
    /// Restart whenever it ends, unless stopped by `stop` or `kill`.
    Always,
}

/// A `--restart` value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid restart policy {0:?}: expected no, on-failure[:N], always or unless-stopped")]
pub struct BadRestartPolicy(String);

impl FromStr for RestartPolicy {
    type Err = BadRestartPolicy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || BadRestartPolicy(s.to_string());
        match s.split_once(':') {
            None if s == "no" => Ok(RestartPolicy::No),
            // Without a daemon that restarts, unless-stopped and always mean the same.
            None if s == "always" || s == "unless-stopped" => Ok(RestartPolicy::Always),
            None if s == "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: 0 }),
            Some(("on-failure", n)) => Ok(RestartPolicy::OnFailure {
                max_retries: n.parse().map_err(|_| err())?,
            }),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::OnFailure { max_retries: 0 } => f.write_str("on-failure"),
            RestartPolicy::OnFailure { max_retries } => write!(f, "on-failure:{max_retries}"),
        }
    }
}

impl RestartPolicy {
    /// Whether a run that ended with `code`, after `restarts` restarts, goes again.
    pub fn restarts(&self, code: i32, restarts: u32) -> bool {
        match *self {
            RestartPolicy::No => false,
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure { max_retries } => {
                code != 0 && (max_retries == 0 || restarts < max_retries)
            }
        }
    }
}

/// The json-file log's size cap: `--log-opt max-size=…`, `--log-opt max-file=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// Bytes one file may reach before it is rotated.
    pub max_size: u64,
    /// Files kept, the current one included.
    pub max_files: u32,
}

/// As Docker's `local` log driver: 20 MB a file, 5 files.
impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: 20 << 20,
            max_files: 5,
        }
    }
}

impl LogConfig {
    /// The defaults with `--log-opt` options applied: `max-size=SIZE`, `max-file=N`.
    pub fn from_options(options: &[String]) -> Result<LogConfig, String> {
        let mut c = LogConfig::default();
        for o in options {
            match o.split_once('=') {
                Some(("max-size", v)) => {
                    c.max_size = crate::run::options::parse_size(v)
                        .map_err(|e| format!("invalid --log-opt {o:?}: {e}"))?
                }
                Some(("max-file", v)) => {
                    c.max_files = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("invalid --log-opt {o:?}: max-file must be a positive number")
                    })?
                }
                _ => {
                    return Err(format!(
                        "invalid --log-opt {o:?}: expected max-size=SIZE or max-file=N"
                    ));
                }
            }
        }
        Ok(c)
    }
}

/// How a container's runs went, and what runs it now.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// The workload's pid on the host: a native container's first process, or the wharf
    /// process running a wasm guest. 0 when not running.
    pub pid: i32,
    /// The workload's kernel start time: signals go to `pid` only while it matches.
    #[serde(default)]
    pub pid_start_time: Option<u64>,
    /// The wharf process that runs the container (the foreground `wharf run`, or the
    /// helper a monitor starts).
    pub supervisor: Option<Proc>,
    /// A detached container's monitor.
    pub monitor: Option<Proc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// Why the last run did not start, or ended abnormally.
    pub error: Option<String>,
    pub restart_count: u32,
    /// `stop` or `kill` asked for it to end: no restart follows.
    pub stop_requested: bool,
    /// Its health checks, while a monitor runs them.
    #[serde(default)]
    pub health: Option<super::health::Health>,
}

impl State {
    /// Running (paused or not) or between restarts.
    pub fn is_active(&self) -> bool {
        self.status.is_active()
    }

    /// The workload's pid, if that process still runs (not a later one reusing the pid).
    pub fn workload(&self) -> Option<i32> {
        (self.pid > 0
            && self.pid_start_time.is_some()
            && crate::sys::process_start_time(self.pid) == self.pid_start_time)
            .then_some(self.pid)
    }
}

/// One container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
    /// The image as the user named it.
    pub image: String,
    /// What each start runs: the image's digest (so a re-tag does not change the
    /// container), or a wasm file's absolute path.
    pub target: String,
    pub image_digest: Option<String>,
    pub platform: Option<String>,
    pub kind: Kind,
    /// Why dispatch chose the backend, and the signals it read.
    pub reason: String,
    pub signals: Vec<String>,
    /// The process's argv, for `ps`.
    pub command: Vec<String>,
    pub options: RunOptions,
    pub restart: RestartPolicy,
    /// `--rm`: removed when it ends for good.
    pub auto_remove: bool,
    /// Started with `-d` or `start`: a monitor holds its stdio and writes its log.
    pub detached: bool,
    pub log: LogConfig,
    pub compile_timeout_ms: Option<u64>,
    /// What `stop` sends first (the image's StopSignal or `--stop-signal`; else SIGTERM).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL when not told (`--stop-timeout`; else 10).
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    pub state: State,
}

impl Record {
    /// The first 12 digits, as `ps` shows them.
    pub fn short_id(&self) -> &str {
        crate::id::short(&self.id)
    }

    /// How messages name the container: its name, else its short id.
    pub fn shown_name(&self) -> &str {
        if self.name.is_empty() {
            self.short_id()
        } else {
            &self.name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_and_decide() {
        assert_eq!("no".parse::<RestartPolicy>().unwrap(), RestartPolicy::No);
        assert_eq!(
            "on-failure:3".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(
            "unless-stopped".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::Always
        );
        for bad in ["", "sometimes", "on-failure:x", "always:2", "no:1"] {
            assert!(bad.parse::<RestartPolicy>().is_err(), "{bad}");
        }
        let p = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(p.restarts(1, 0) && p.restarts(1, 1) && !p.restarts(1, 2));
        assert!(!p.restarts(0, 0));
        assert!(RestartPolicy::Always.restarts(0, 100));
        assert!(!RestartPolicy::No.restarts(1, 0));
        assert_eq!(p.to_string(), "on-failure:2");
    }

    #[test]
    fn the_running_process_is_alive_and_a_made_up_one_is_not() {
        if let Some(me) = Proc::current() {
            assert!(me.alive());
            let impostor = Proc {
                start_time: me.start_time + 1,
                ..me
            };
            assert!(!impostor.alive(), "a recycled pid is not the same process");
        }
    }
}
