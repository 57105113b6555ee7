//! `start`: release a created container's first process to exec its program, then run
//! the `poststart` hooks.

use super::{Runtime, RuntimeError, Status, state_json};

/// `start ID`: only a created container starts (a second start is an error, as runc's).
pub fn start(rt: &Runtime, id: &str) -> Result<(), RuntimeError> {
    let saved = rt.load(id)?;
    let status = rt.status(&saved);
    if status.start().is_err() {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status,
            why: "only a created container can be started",
        });
    }
    crate::backend::native::create::start(&rt.root.join(id))?;
    let spec = super::spec::read_spec(&saved.bundle).ok();
    if let Some(hooks) = spec.as_ref().and_then(|s| s.hooks().as_ref()) {
        // A failing poststart hook is reported, not undone (runc warns and goes on).
        if let Err(e) = super::hooks::run_hooks(
            hooks.poststart().as_ref(),
            &state_json(&saved, Status::Running),
            "poststart",
        ) {
            tracing::warn!(error = %e, "poststart hook failed");
        }
    }
    Ok(())
}
