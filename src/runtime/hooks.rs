//! OCI hooks: programs the bundle names, run on the host at the phases of a container's
//! life (prestart, createRuntime, poststart, poststop) with its state on their stdin.

use std::os::unix::process::CommandExt;

use super::RuntimeError;

/// Run the hooks of one phase on the host, the state on their stdin (runc's behaviour:
/// a failing hook fails the operation).
pub(super) fn run_hooks(
    hooks: Option<&Vec<oci_spec::runtime::Hook>>,
    state: &serde_json::Value,
    phase: &str,
) -> Result<(), RuntimeError> {
    for h in hooks.into_iter().flatten() {
        if !h.path().is_absolute() {
            return Err(RuntimeError::Unsupported(format!(
                "{phase} hook path {:?} is not absolute",
                h.path()
            )));
        }
        let mut cmd = std::process::Command::new(h.path());
        if let Some(args) = h.args()
            && let Some((first, rest)) = args.split_first()
        {
            cmd.arg0(first);
            cmd.args(rest);
        }
        cmd.env_clear();
        for kv in h.env().iter().flatten() {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
        cmd.stdin(std::process::Stdio::piped());
        let hook_err = |why: String| {
            RuntimeError::Unsupported(format!("{phase} hook {}: {why}", h.path().display()))
        };
        let mut child = cmd.spawn().map_err(|e| hook_err(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = std::io::Write::write_all(&mut stdin, state.to_string().as_bytes());
        }
        let deadline = h
            .timeout()
            .map(|t| std::time::Instant::now() + std::time::Duration::from_secs(t.max(1) as u64));
        let status = loop {
            if let Some(s) = child.try_wait().map_err(|e| hook_err(e.to_string()))? {
                break s;
            }
            if deadline.is_some_and(|d| std::time::Instant::now() > d) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(hook_err("timed out".into()));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        if !status.success() {
            return Err(hook_err(format!("failed ({status})")));
        }
    }
    Ok(())
}
