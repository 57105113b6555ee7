//! The `wharf` command: parse, run, map the outcome to an exit code. Nothing else.

use std::process::ExitCode;

use clap::Parser;

/// The static (musl) build of `wharf` allocates with mimalloc: musl's own allocator
/// serialises threads and cost a third of wasi:http throughput (bench/static.sh). The small
/// binaries (monitor, runtime, shim) keep musl's, which keeps an idle monitor at ~1.4 MB.
#[cfg(all(target_os = "linux", target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Started as `wharf-runtime` (by the small runtime, for a wasm bundle): runc's command
    // line, with the wasm engine.
    #[cfg(target_os = "linux")]
    if std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n == "wharf-runtime")
        })
        .unwrap_or(false)
    {
        return cli::runtime::main(Some(wharf::runtime::guest::ENGINE));
    }
    // Started by the lifecycle as a container's monitor or supervisor.
    if let Some(p) = wharf::lifecycle::monitor::Protocol::from_args(std::env::args_os()) {
        return cli::monitor::serve(p);
    }
    // A command line wharf cannot read is wharf failing (125), as Docker's flag errors;
    // --help, --version and a bare `wharf` (its usage) print and succeed, as Docker's.
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let usage =
                e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand;
            return if e.use_stderr() && !usage {
                ExitCode::from(125)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    cli::init_logging(&cli.log_level);
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("wharf: {e:#}");
            ExitCode::from(cli::EXIT_WHARF_FAILED)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

mod cli;
