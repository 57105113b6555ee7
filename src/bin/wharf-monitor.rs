//! `wharf-monitor --root ROOT --wharf EXE ID`: the monitor of one detached container (as
//! Podman's conmon), a small binary of its own. It outlives the `wharf` command that
//! started it, holds the container's stdio, writes its log and keeps its restart policy;
//! it starts the supervisor as `EXE container-run ID`. Not for users: `wharf run -d` and
//! `wharf start` start it (falling back to `wharf container-monitor` when this binary is
//! not installed beside `wharf`).
//!
//! Its own binary because an idle container costs one of these: it links only the
//! container records and logs, not the engine, so it maps and relocates far less than
//! `wharf` does (see bench/REPORT.md).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (mut root, mut exe, mut id) = (None, None, None);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--root") => root = args.next(),
            Some("--wharf") => exe = args.next(),
            _ if id.is_none() => id = a.into_string().ok(),
            _ => return usage(),
        }
    }
    let (Some(root), Some(exe), Some(id)) = (root, exe, id) else {
        return usage();
    };
    let ready = wharf::lifecycle::monitor::ready_fd_from_env();
    wharf::sys::ignore_hangup();
    let roots = wharf::paths::Roots::new(&root);
    let containers = wharf::lifecycle::containers(&roots);
    let exe = std::path::PathBuf::from(exe);
    match wharf::lifecycle::monitor::run(&containers, &id, &exe, roots.data(), ready) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf-monitor: container {id}: {e}");
            ExitCode::from(125)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: wharf-monitor --root ROOT --wharf EXE ID (started by wharf, not by users)");
    ExitCode::from(125)
}
