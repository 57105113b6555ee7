//! The processes the lifecycle starts (a container's monitor and supervisor) speak the
//! library's process protocol (`wharf::lifecycle::monitor::Protocol`), read before any
//! command line of a user's is parsed: no commands of the CLI. This door only prints what
//! a supervisor has to say and exits with its container's code.

use std::process::ExitCode;

use wharf::lifecycle::monitor::{self, Protocol};

/// Serve `p` in this process (at its starter's log level, else `WHARF_LOG`'s, as a
/// command's).
pub fn serve(mut p: Protocol) -> ExitCode {
    let level = p
        .log_level()
        .map(String::from)
        .or_else(|| std::env::var("WHARF_LOG").ok())
        .unwrap_or_else(|| "warn".into());
    super::init_logging(&level);
    match &mut p {
        Protocol::Supervise { log_level, .. } | Protocol::Monitor { log_level, .. } => {
            *log_level = Some(level)
        }
    }
    let exit = monitor::serve(p, &super::Printer { explain: false });
    super::run::report(&exit)
}
