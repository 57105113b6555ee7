//! `wharf version [--format json|TEMPLATE]`: wharf's version, the wasmtime it embeds, and the
//! platform it was built for.

use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// json, or a Go template (`{{.Client.Version}}`).
    #[arg(short, long)]
    format: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let v = json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "Wasmtime": wharf::backend::wasm::wasmtime_version(),
            "Wasi": wharf::backend::wasm::SUPPORTED_WASI,
            "Os": std::env::consts::OS,
            "Arch": std::env::consts::ARCH,
            "Static": cfg!(target_env = "musl"),
        }
    });
    match args.format.as_deref() {
        Some("json") => outln!("{v}"),
        Some(t) => outln!("{}", super::template::Format::parse(t)?.render(&v)?),
        None => {
            let c = &v["Client"];
            outln!("Client:");
            outln!(" Version:     {}", env!("CARGO_PKG_VERSION"));
            outln!(
                " Wasmtime:    {}",
                c["Wasmtime"].as_str().unwrap_or_default()
            );
            outln!(" WASI:        {}", c["Wasi"].as_str().unwrap_or_default());
            outln!(
                " OS/Arch:     {}/{}",
                std::env::consts::OS,
                std::env::consts::ARCH
            );
        }
    }
    Ok(())
}
