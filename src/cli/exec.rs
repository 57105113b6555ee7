//! `wharf exec [-it] [-u USER] [-e K=V] [-w DIR] CONTAINER CMD...`: another process in a
//! running native container, with the container's namespaces, cgroup, capabilities,
//! seccomp and `no_new_privs`.

use std::process::ExitCode;

use wharf::dispatch::Kind;

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep stdin open and connect it.
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Run as this user (name, uid, name:group or uid:gid) instead of the container's.
    #[arg(short, long, value_name = "USER")]
    pub(crate) user: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass wharf's own value).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long, value_name = "DIR")]
    pub(crate) workdir: Option<String>,
    /// The container, then the command and its arguments. wharf's options end at CONTAINER:
    /// what follows goes to the command.
    #[arg(
        value_name = "CONTAINER",
        required = true,
        num_args = 2..,
        trailing_var_arg = true
    )]
    pub(crate) argv: Vec<String>,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let id = containers.find(&args.argv[0])?;
    let l = containers.lock(&id)?;
    let record = l.record.clone();
    let dir = l.dir().to_path_buf();
    drop(l);
    if record.kind == Kind::Wasm {
        anyhow::bail!(
            "container {} runs WebAssembly: exec cannot apply, since a wasm guest has no processes or namespaces to join (it runs inside wharf, with only the files and capabilities it was given); run another command with `wharf run`",
            args.argv[0]
        );
    }
    match record.state.status.reach() {
        Err(wharf::status::Refused::Paused) => {
            anyhow::bail!("container {} is paused: unpause it first", args.argv[0])
        }
        Err(_) => anyhow::bail!("container {} is not running", args.argv[0]),
        Ok(()) if record.state.pid <= 0 => {
            anyhow::bail!("container {} is not running", args.argv[0])
        }
        Ok(()) => {}
    }
    if let Some(u) = &args.user {
        wharf::run::options::validate_user(u).map_err(|e| anyhow::anyhow!("-u: {e}"))?;
    }
    let mut env = Vec::new();
    for e in &args.env {
        if let Some((k, v)) = wharf::run::options::parse_env(e)? {
            env.push(format!("{k}={v}"));
        }
    }
    exec_native(&id, record.state.pid, &dir, args, env)
}

#[cfg(target_os = "linux")]
fn exec_native(
    id: &str,
    pid: i32,
    dir: &std::path::Path,
    args: Args,
    env: Vec<String>,
) -> anyhow::Result<ExitCode> {
    use wharf::backend::native::{Overrides, exec, seal};
    // The process that starts the command runs from a sealed wharf (re-executing this very
    // command line once): otherwise a `#!/proc/self/exe` program in the container would run,
    // and could rewrite, the host's wharf (CVE-2019-5736).
    seal::ensure_sealed()
        .map_err(|e| anyhow::anyhow!("cannot run from a sealed copy of wharf: {e}"))?;
    let spec_path = dir.join("config.json");
    let spec: oci_spec::runtime::Spec = serde_json::from_slice(
        &std::fs::read(&spec_path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", spec_path.display()))?,
    )?;
    let result = exec::exec(exec::ExecRun {
        id,
        pid,
        spec: &spec,
        overrides: Overrides {
            args: Some(args.argv[1..].to_vec()),
            env,
            cwd: args.workdir,
            user: args.user,
        },
        tty: args.tty,
        interactive: args.interactive,
        cgroup_dirs: None,
        console: None,
        detached: false,
    });
    Ok(match result {
        Ok(exit) => {
            if let Some(m) = &exit.message {
                eprintln!("wharf: {m}");
            }
            ExitCode::from(exit.code)
        }
        Err(e) => {
            eprintln!("wharf: {e}");
            ExitCode::from(e.exit_code())
        }
    })
}

#[cfg(not(target_os = "linux"))]
fn exec_native(
    _: &str,
    _: i32,
    _: &std::path::Path,
    _: Args,
    _: Vec<String>,
) -> anyhow::Result<ExitCode> {
    eprintln!("wharf: exec into native containers needs a Linux host");
    Ok(ExitCode::from(super::EXIT_WHARF_FAILED))
}
