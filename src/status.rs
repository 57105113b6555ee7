//! Where a container is in its life: one status for every door (`wharf`'s records,
//! `wharf-runtime`'s state, the monitor), the transitions between them, each refusing what
//! its verb cannot do from where the container is, and the one rule that reads a status
//! from a container's processes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A container's status. Docker's names in records and listings; the runtime spec's in an
/// OCI state document ([`Status::oci`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `wharf-runtime create` is setting it up.
    Creating,
    /// Made, never started (a runtime container: its first process waits for `start`).
    #[default]
    Created,
    Running,
    /// Frozen by `pause` until `unpause`.
    Paused,
    /// Between two runs, under a restart policy.
    Restarting,
    /// Its workload ended (the runtime spec's `stopped`).
    Exited,
    /// Its monitor or supervisor vanished and could not be accounted for.
    Dead,
}

/// Why a verb cannot act on a container in its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("it is running")]
    Running,
    #[error("it is not running")]
    NotRunning,
    #[error("it is paused")]
    Paused,
    #[error("it is not paused")]
    NotPaused,
    #[error("only a created container can be started")]
    NotCreated,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        })
    }
}

impl Status {
    /// Running (paused or not) or between restarts: something of it is alive.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }

    /// The runtime spec's name: creating, created, running, paused or stopped.
    pub fn oci(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running | Status::Restarting => "running",
            Status::Paused => "paused",
            Status::Exited | Status::Dead => "stopped",
        }
    }

    /// `wharf-runtime start`: a created container's first process released (runc's rule:
    /// from created only, never twice).
    pub fn start(self) -> Result<Status, Refused> {
        match self {
            Status::Created => Ok(Status::Running),
            _ => Err(Refused::NotCreated),
        }
    }

    /// `wharf start`: a run under a new monitor, from created or ended; an active
    /// container (a restarting one has its monitor) is refused, which Docker's `start`
    /// takes as done.
    pub fn run(self) -> Result<Status, Refused> {
        if self.is_active() {
            Err(Refused::Running)
        } else {
            Ok(Status::Running)
        }
    }

    /// `pause`: a running container frozen.
    pub fn pause(self) -> Result<Status, Refused> {
        match self {
            Status::Running => Ok(Status::Paused),
            Status::Paused => Err(Refused::Paused),
            _ => Err(Refused::NotRunning),
        }
    }

    /// `unpause`: a paused container thawed.
    pub fn unpause(self) -> Result<Status, Refused> {
        match self {
            Status::Paused => Ok(Status::Running),
            _ => Err(Refused::NotPaused),
        }
    }

    /// `exec` and `kill`: a process of a running container (a frozen one cannot act).
    pub fn reach(self) -> Result<(), Refused> {
        match self {
            Status::Running => Ok(()),
            Status::Paused => Err(Refused::Paused),
            _ => Err(Refused::NotRunning),
        }
    }

    /// `rm`/`delete`: an active container only by force (which kills it first).
    pub fn remove(self, force: bool) -> Result<(), Refused> {
        if self.is_active() && !force {
            Err(Refused::Running)
        } else {
            Ok(())
        }
    }

    /// The workload ended: whatever the status was, the container has exited.
    pub fn exit(self) -> Status {
        Status::Exited
    }

    /// Waiting to run again under a restart policy: from a run that ended (or one that is
    /// still being accounted for); a paused container is not restarted.
    pub fn restart(self) -> Result<Status, Refused> {
        match self {
            Status::Paused => Err(Refused::Paused),
            _ => Ok(Status::Restarting),
        }
    }

    /// What a container's processes say its status is. `self` is what was recorded;
    /// `alive`: a process of it lives (its supervisor or monitor, or the runtime's first
    /// process); `waiting`: that process waits for `start`; `frozen`: its cgroup is
    /// frozen. A container none of whose processes lives is not active, whatever was
    /// recorded.
    pub fn observed(self, alive: bool, waiting: bool, frozen: bool) -> Status {
        if !alive {
            return if self.is_active() { self.exit() } else { self };
        }
        if waiting {
            Status::Created
        } else if frozen {
            Status::Paused
        } else if self == Status::Paused {
            // Thawed behind our back.
            Status::Running
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    const ALL: [Status; 7] = [Creating, Created, Running, Paused, Restarting, Exited, Dead];

    #[test]
    fn allowed_transitions() {
        assert_eq!(Created.start(), Ok(Running));
        for s in [Created, Exited, Dead] {
            assert_eq!(s.run(), Ok(Running), "{s}");
        }
        assert_eq!(Running.pause(), Ok(Paused));
        assert_eq!(Paused.unpause(), Ok(Running));
        assert_eq!(Running.reach(), Ok(()));
        for s in [Running, Exited, Restarting, Created] {
            assert_eq!(s.restart(), Ok(Restarting), "{s}");
        }
        for s in ALL {
            assert_eq!(s.exit(), Exited);
            assert_eq!(s.remove(true), Ok(()), "force removes anything");
        }
        for s in [Created, Exited, Dead] {
            assert_eq!(s.remove(false), Ok(()), "{s}");
        }
    }

    #[test]
    fn refused_transitions() {
        // The runtime starts a container once, from created only (runc).
        for s in [Creating, Running, Paused, Exited, Dead] {
            assert_eq!(s.start(), Err(Refused::NotCreated), "{s}");
        }
        for s in [Running, Paused, Restarting] {
            assert_eq!(s.run(), Err(Refused::Running), "{s}");
        }
        assert_eq!(Paused.pause(), Err(Refused::Paused));
        for s in [Created, Exited, Dead, Restarting] {
            assert_eq!(s.pause(), Err(Refused::NotRunning), "pause {s}");
            assert_eq!(s.reach(), Err(Refused::NotRunning), "exec in {s}");
        }
        assert_eq!(Paused.reach(), Err(Refused::Paused));
        for s in [Created, Running, Exited, Restarting] {
            assert_eq!(s.unpause(), Err(Refused::NotPaused), "{s}");
        }
        for s in [Running, Paused, Restarting] {
            assert_eq!(s.remove(false), Err(Refused::Running), "{s}");
        }
        assert_eq!(Paused.restart(), Err(Refused::Paused));
    }

    #[test]
    fn the_processes_decide() {
        // Nothing alive: an active container has exited; a created or ended one stays.
        for s in [Running, Paused, Restarting] {
            assert_eq!(s.observed(false, false, false), Exited, "{s}");
        }
        for s in [Created, Exited, Dead] {
            assert_eq!(s.observed(false, false, false), s, "{s}");
        }
        // The runtime's view: its first process waiting, frozen, or running.
        assert_eq!(Running.observed(true, true, false), Created);
        assert_eq!(Running.observed(true, false, true), Paused);
        assert_eq!(Paused.observed(true, false, false), Running);
        assert_eq!(Running.observed(true, false, false), Running);
    }

    #[test]
    fn names_for_docker_and_for_the_runtime_spec() {
        let docker: Vec<String> = ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            docker,
            [
                "creating",
                "created",
                "running",
                "paused",
                "restarting",
                "exited",
                "dead"
            ]
        );
        let oci: Vec<&str> = ALL.iter().map(|s| s.oci()).collect();
        assert_eq!(
            oci,
            [
                "creating", "created", "running", "paused", "running", "stopped", "stopped"
            ]
        );
        assert_eq!(serde_json::to_string(&Exited).unwrap(), "\"exited\"");
    }
}
