//! `run --invoke`: one export of an image called through the plugin API (the same loading,
//! cache, grants and limits a plugin host has), with a run's options as its grants.

use super::{CreateRequest, EXIT_WHARF_FAILED, LifecycleError, Session};
use crate::plugin::{Grants, Host, HostOptions, Output, PluginError, Preopen};
use crate::run::options::Network;

/// Call export `expr` (`name(arg, ...)`, or `name` with the arguments in
/// `req.options.args`) of the module or component `req.image` in this process, with
/// what `req` grants (volumes, env, host network, memory, fuel, timeout). Returns the
/// results, one a line as `wasmtime run --invoke` prints them.
pub fn invoke(
    session: &Session,
    mut req: CreateRequest,
    expr: &str,
) -> Result<Vec<String>, LifecycleError> {
    let bad = |m: &str| Err(LifecycleError::Invalid(m.into()));
    if req.detached {
        return bad("--invoke runs in the foreground: it cannot be used with -d");
    }
    req.validate_run()?;
    super::create::resolve_volumes(session, &mut req.options, true)?;
    let opts = req.options;
    if !matches!(opts.network, Network::None | Network::Host) || !opts.ports.is_empty() {
        return bad("--invoke calls an export in this process: --network none or host only, no -p");
    }
    let (name, call_args) =
        crate::plugin::parse_invocation(expr, &opts.args).map_err(LifecycleError::Invalid)?;
    let host_network = opts.network == Network::Host;
    let grants = Grants {
        dirs: opts
            .volumes
            .iter()
            .map(|v| Preopen {
                host: v.host.clone(),
                guest: v.container.clone(),
                read_only: v.read_only,
            })
            .collect(),
        env: opts.env.clone(),
        args: vec![req.image.clone()],
        stdout: Output::Inherit,
        stderr: Output::Inherit,
        network: if host_network {
            vec![
                ipnet::IpNet::V4(Default::default()),
                ipnet::IpNet::V6(Default::default()),
            ]
        } else {
            Vec::new()
        },
        dns: host_network,
        memory: opts.limits.memory,
        fuel: opts.limits.fuel,
        timeout: opts.limits.timeout,
    };
    let failed = |code: u8, e: &dyn std::fmt::Display| LifecycleError::Failed {
        code,
        message: e.to_string(),
    };
    let host = Host::open(
        &session.roots,
        HostOptions {
            pooling: false,
            fuel: opts.limits.fuel.is_some(),
            ..Default::default()
        },
    )
    .map_err(|e| failed(EXIT_WHARF_FAILED, &e))?;
    let plugin = host
        .load(&req.image, grants)
        .map_err(|e| failed(EXIT_WHARF_FAILED, &e))?;
    match plugin.invoke(&name, &call_args) {
        Ok(results) => Ok(results.iter().map(|r| r.to_string()).collect()),
        Err(PluginError::Guest { code, message }) => Err(failed(code, &message)),
        Err(e @ PluginError::MissingExport { .. }) => Err(failed(127, &e)),
        Err(e) => Err(failed(EXIT_WHARF_FAILED, &e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_any_address_grants_are_everything() {
        let v4 = ipnet::IpNet::V4(Default::default());
        let v6 = ipnet::IpNet::V6(Default::default());
        assert_eq!(v4.to_string(), "0.0.0.0/0");
        assert_eq!(v6.to_string(), "::/0");
    }
}
