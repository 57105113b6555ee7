//! `wharf run [OPTIONS] IMAGE [COMMAND] [ARG...]`: run an image (or a `.wasm`/`.wat` file)
//! in the foreground, with Docker's flags and exit codes.

use std::process::ExitCode;

use wharf::backend::Exit;
use wharf::container::{self, Record};
use wharf::dispatch::Decision;
use wharf::lifecycle::{self, CreateRequest, LifecycleError};
use wharf::run::{self, Prepared};

pub use super::run_args::Args;
use super::{EXIT_WHARF_FAILED, Session};

/// How the workload ended: its message (if any) on stderr, its code as ours.
pub fn report(exit: &Exit) -> ExitCode {
    if let Some(m) = &exit.message {
        eprintln!("wharf: {m}");
    }
    ExitCode::from(exit.code)
}

fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("wharf: {e:#}");
    ExitCode::from(code)
}

/// A lifecycle error as the exit code and message of a failed command.
pub fn lifecycle_failure(e: LifecycleError) -> ExitCode {
    fail(e.exit_code(), anyhow::Error::from(e))
}

/// Pull `req`'s image first if `--pull` asks for it (in a child: pulling starts threads, and
/// a native container must be cloned from a single-threaded wharf).
fn pull_if_needed(
    ctx: &Session,
    req: &CreateRequest,
    args: &Args,
    store: &wharf::image::Store,
) -> anyhow::Result<bool> {
    let pull = args.pull.as_str();
    let image = req.image.as_str();
    let is_file = std::path::Path::new(image).is_file() || wharf::run::names_a_file(image);
    let missing = !is_file
        && matches!(
            store.resolve(image),
            Err(wharf::image::StoreError::NotFound(_))
        );
    if is_file || !(pull == "always" || (pull == "missing" && missing)) {
        return Ok(true);
    }
    Ok(lifecycle::pull::pull_in_child(
        ctx,
        image,
        req.platform.as_ref(),
        &args.trust.options(),
    )?)
}

/// Pull if asked, then create the container `args` describe: `Err` carries the exit code
/// (the message is printed).
pub fn create(
    ctx: &Session,
    args: &Args,
    detached: bool,
) -> anyhow::Result<Result<(Record, Prepared), ExitCode>> {
    let mut req = args.request(detached)?;
    if let Err(e) = lifecycle::create::settle(ctx, &mut req) {
        return Ok(Err(lifecycle_failure(e)));
    }
    let store = ctx.store()?;
    if !pull_if_needed(ctx, &req, args, &store)? {
        return Ok(Err(ExitCode::from(EXIT_WHARF_FAILED)));
    }
    let events = super::Printer {
        explain: args.explain,
    };
    Ok(lifecycle::create(ctx, &store, req, &events).map_err(lifecycle_failure))
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(expr) = &args.invoke {
        return invoke(ctx, &args, expr);
    }
    if args.print_spec || !container::supported() {
        if args.detach {
            anyhow::bail!("detached containers (-d) need a Linux or Windows host");
        }
        return run_unrecorded(ctx, args);
    }
    let (record, prepared) = match create(ctx, &args, args.detach)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let containers = ctx.containers();
    if args.detach {
        drop(prepared);
        return Ok(match lifecycle::start(ctx, &containers, &record.id) {
            Ok(()) => {
                outln!("{}", record.id);
                ExitCode::SUCCESS
            }
            Err(e) => lifecycle_failure(e),
        });
    }
    let id = record.id.clone();
    let events = super::Printer { explain: false };
    let exit = lifecycle::supervise(
        ctx,
        &containers,
        &id,
        Some((record, prepared)),
        None,
        args.rm,
        &events,
    );
    Ok(report(&exit))
}

/// `run --invoke`: one export called through the plugin API (the same loading, cache,
/// grants and limits a plugin host has), its results printed one a line.
fn invoke(ctx: &Session, args: &Args, expr: &str) -> anyhow::Result<ExitCode> {
    match lifecycle::invoke::invoke(ctx, args.request(args.detach)?, expr) {
        Ok(results) => {
            for r in results {
                outln!("{r}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(lifecycle_failure(e)),
    }
}

/// `wharf run` where containers are not recorded (Windows for now), or `--print-spec`.
fn run_unrecorded(ctx: &Session, args: Args) -> anyhow::Result<ExitCode> {
    let mut req = args.request(false)?;
    if let Err(e) = req
        .validate_run()
        .and_then(|()| lifecycle::create::resolve_volumes(ctx, &mut req.options, !args.print_spec))
    {
        return Ok(lifecycle_failure(e));
    }
    let store = ctx.store()?;
    if !pull_if_needed(ctx, &req, &args, &store)? {
        return Ok(ExitCode::from(EXIT_WHARF_FAILED));
    }
    let prepared = match run::prepare(&store, args.image(), &req.options, args.platform.as_ref()) {
        Ok(p) => p,
        Err(e) => return Ok(lifecycle_failure(e.into())),
    };
    if args.explain {
        explain(&prepared.name, &prepared.decision);
    }
    if args.print_spec {
        outln!("{}", serde_json::to_string_pretty(&prepared.spec)?);
        return Ok(ExitCode::SUCCESS);
    }
    let exit =
        lifecycle::supervise::run_unrecorded(ctx, &prepared, &req.options, args.compile_timeout);
    Ok(report(&exit))
}

pub fn explain(name: &str, d: &Decision) {
    eprintln!("wharf: {name}: runs as {} ({})", d.kind, d.reason);
    for s in &d.signals {
        eprintln!("wharf:   {s}");
    }
}
