//! `wharf info [-f json|TEMPLATE]`: what wharf keeps and what this host offers it, as
//! `docker info` shows (containers, images, kernel, cgroup version, security features,
//! networking helpers), plus the wasm engine: wasmtime's version, WASI versions, features.

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// json, or a Go template over the json's fields (`{{.CgroupVersion}}`).
    #[arg(short, long)]
    format: Option<String>,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let info = wharf::host::probe(&ctx.roots);
    let json = serde_json::to_value(&info)?;
    match args.format.as_deref() {
        Some("json") => outln!("{json}"),
        Some(t) => outln!("{}", super::template::Format::parse(t)?.render(&json)?),
        None => {
            let yes_no = |f: &wharf::host::Feature| {
                format!("{} ({})", if f.available { "yes" } else { "no" }, f.detail)
            };
            outln!("Containers: {}", info.containers);
            outln!(" Running: {}", info.containers_running);
            outln!(" Paused: {}", info.containers_paused);
            outln!(" Stopped: {}", info.containers_stopped);
            outln!("Images: {}", info.images);
            outln!("Volumes: {}", info.volumes);
            outln!("Networks: {}", info.networks);
            outln!("Root Dir: {}", info.root_dir);
            outln!("Run Dir: {}", info.run_dir);
            outln!(
                "Runtimes: native (wharf), wasm (wasmtime {})",
                info.wasmtime
            );
            outln!(" Native containers: {}", yes_no(&info.native));
            outln!(" Cgroup Version: {}", info.cgroup_version);
            outln!(" Overlay: {}", yes_no(&info.overlay));
            outln!(" Seccomp: {}", yes_no(&info.seccomp));
            outln!(" User Namespaces: {}", yes_no(&info.user_namespaces));
            outln!(" Bridge networks (netavark): {}", yes_no(&info.netavark));
            outln!(" WASI: {}", info.wasi);
            outln!(" Wasm features: {}", info.wasm_features.join(", "));
            outln!(" Signature policy: {}", info.signature_policy);
            outln!("Kernel Version: {}", info.kernel_version);
            outln!("Operating System: {}", info.operating_system);
            outln!("OSType: {}", info.os_type);
            outln!("Architecture: {}", info.architecture);
            outln!("CPUs: {}", info.ncpu);
            if let Some(m) = info.mem_total {
                outln!("Total Memory: {}", super::stats::binary_size(m));
            }
        }
    }
    Ok(())
}
