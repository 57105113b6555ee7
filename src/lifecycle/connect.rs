//! `network connect` and `network disconnect`: a container on a bridge network joins (or
//! leaves) another one, live if it runs, and for every later start.

use super::{LifecycleError, Session};
use crate::run::options::Connection;

/// Connect container `query` to `conn.network` (by name or id prefix): recorded, and
/// joined now if the container runs.
pub fn connect(session: &Session, query: &str, conn: Connection) -> Result<(), LifecycleError> {
    let net = crate::network::Networks::new(&session.roots).get(&conn.network)?;
    let containers = session.containers();
    let id = containers.find(query)?;
    let mut l = containers.lock(&id)?;
    let opts = &l.record.options;
    let shown = l.record.shown_name().to_owned();
    if opts.network.named().is_none() {
        return Err(LifecycleError::Invalid(format!(
            "container {shown} runs with --network {}: only a container on a bridge network can join another",
            opts.network
        )));
    }
    if opts.network.named() == Some(net.name.as_str())
        || opts.connected.iter().any(|c| c.network == net.name)
    {
        return Err(LifecycleError::Invalid(format!(
            "container {shown} is already connected to network {}",
            net.name
        )));
    }
    let conn = Connection {
        network: net.name.clone(),
        ..conn
    };
    #[cfg(target_os = "linux")]
    if l.record.state.is_active() {
        let dir = containers.dir_of(&id);
        if crate::network::Attachment::read(&dir).is_some() {
            crate::network::connect(&session.roots, &dir, &id, &l.record.name, &conn)?;
        }
    }
    l.record.options.connected.push(conn);
    l.save()?;
    Ok(())
}

/// Disconnect container `query` from `network` (not its own `--network`).
pub fn disconnect(session: &Session, query: &str, network: &str) -> Result<(), LifecycleError> {
    let net = crate::network::Networks::new(&session.roots).get(network)?;
    let containers = session.containers();
    let id = containers.find(query)?;
    let mut l = containers.lock(&id)?;
    if l.record.options.network.named() == Some(net.name.as_str()) {
        return Err(LifecycleError::Invalid(format!(
            "network {} is the container's --network: it stays on it while it exists",
            net.name
        )));
    }
    let Some(i) = l
        .record
        .options
        .connected
        .iter()
        .position(|c| c.network == net.name)
    else {
        return Err(LifecycleError::Invalid(format!(
            "container {query} is not connected to network {}",
            net.name
        )));
    };
    #[cfg(target_os = "linux")]
    if l.record.state.is_active() {
        crate::network::disconnect(&session.roots, &containers.dir_of(&id), &id, &net.name)?;
    }
    l.record.options.connected.remove(i);
    l.save()?;
    Ok(())
}
