//! `wharf-runtime`: runc's command line (see `src/cli/runtime.rs`), without the wasm engine,
//! so it stays small: it is copied into a sealed memfd at every start.

#[path = "../cli/runtime.rs"]
mod runtime;

fn main() -> std::process::ExitCode {
    runtime::main(None)
}
