//! The container lifecycle, one copy for every door: [`create`](create::create) a container
//! from a typed [`CreateRequest`], [`start`](start::start) it under a monitor,
//! [`supervise`](supervise::supervise) it (the foreground `wharf run`, or the supervisor a
//! monitor starts), [`stop`], kill, pause, wait and remove it. The `wharf` CLI and compose
//! call these; what they print is theirs.
//!
//! Processes: a detached container is kept by its [`monitor`], which starts the supervisor
//! as `EXE --root ROOT container-run ID` ([`monitor::supervisor_args`]). That is the
//! library's own process protocol ([`monitor::Protocol`]): a wharf binary reads it before
//! any user's command line and hands it to [`monitor::serve`]; it is no command of the CLI.

pub mod attach;
pub mod connect;
pub mod copy;
pub mod create;
pub mod export;
pub mod invoke;
pub mod monitor;
pub mod pull;
pub mod start;
pub mod stats;
pub mod stop;
pub mod supervise;
pub mod update;

pub use create::{CreateRequest, create};
pub use start::start;
pub use supervise::supervise;

use crate::container::{ContainerError, Containers};
use crate::image::{Store, StoreError};
use crate::paths::Roots;

/// The exit code for "wharf failed" (Docker's 125).
pub const EXIT_WHARF_FAILED: u8 = 125;

/// What the lifecycle can fail with; [`LifecycleError::exit_code`] is the code a door
/// exits with (Docker's: 125 wharf failed, 126 cannot invoke, 127 not found).
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The request says something that cannot be done (checked before anything is made).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Prepare(#[from] crate::run::RunError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    // The cause is in the message and not a `source`: shown once, by `{}` and `{:#}` alike.
    #[error("opening the image store under {root}: {cause}")]
    Store {
        root: std::path::PathBuf,
        cause: StoreError,
    },
    /// The workload could not start, or (an export invoked) failed: with its exit code.
    #[error("{message}")]
    Failed { code: u8, message: String },
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
}

impl LifecycleError {
    /// The exit code a door reports this with.
    pub fn exit_code(&self) -> u8 {
        use crate::run::RunError;
        match self {
            LifecycleError::Prepare(RunError::EntrypointNotFound { .. }) => 127,
            LifecycleError::Prepare(RunError::NotWasm { .. } | RunError::Package(_)) => 126,
            LifecycleError::Failed { code, .. } => *code,
            _ => EXIT_WHARF_FAILED,
        }
    }
}

/// The wharf a lifecycle call runs for: its roots, and the log level the processes it
/// starts (monitor, supervisor, a sealed re-execution) are given.
#[derive(Debug, Clone)]
pub struct Session {
    pub roots: Roots,
    /// `--log-level` (or `WHARF_LOG`).
    pub log_level: String,
}

impl Session {
    /// The image store under these roots.
    pub fn store(&self) -> Result<Store, LifecycleError> {
        Store::open(&self.roots).map_err(|cause| LifecycleError::Store {
            root: self.roots.data().to_path_buf(),
            cause,
        })
    }

    /// The containers under these roots (see [`containers`]).
    pub fn containers(&self) -> Containers {
        containers(&self.roots)
    }
}

/// The containers under `roots`, with the backends' clean-up for what a dead or removed
/// container left outside its directory (cgroup, network, pasta).
pub fn containers(roots: &Roots) -> Containers {
    Containers::new(roots, crate::backend::clean_up_after)
}

/// What a lifecycle call has to tell the person driving it, as it happens; a door prints
/// what it wants of it (`wharf run --explain` prints the decision).
pub trait Events {
    /// How an image will run, and why.
    fn decided(&self, _name: &str, _decision: &crate::dispatch::Decision) {}
    /// Something was done on the way (a network made, a container started).
    fn progress(&self, message: &str) {
        tracing::info!("{message}");
    }
    /// Something went wrong that does not stop the call (a network not taken down).
    fn warning(&self, message: &str) {
        tracing::warn!("{message}");
    }
}

/// Events nobody prints (warnings still go to the log).
pub struct Quiet;

impl Events for Quiet {}
