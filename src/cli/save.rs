//! `wharf save -o FILE IMAGE...`: write images to an oci-archive (default) or a
//! docker-archive.

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use wharf::image::archive::{self, SaveFormat};
use wharf::image::platform::PlatformSpec;

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to write.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Archive format.
    #[arg(long, value_enum, default_value_t = Format::OciArchive)]
    format: Format,
    /// Platform to save from a multi-platform image (docker-archive only; oci-archive
    /// keeps indexes whole).
    #[arg(long)]
    platform: Option<PlatformSpec>,
    /// Images to save.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    OciArchive,
    DockerArchive,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let images = args
        .images
        .iter()
        .map(|i| store.resolve(i))
        .collect::<Result<Vec<_>, _>>()?;
    let format = match args.format {
        Format::OciArchive => SaveFormat::OciArchive,
        Format::DockerArchive => SaveFormat::DockerArchive,
    };
    archive::save(
        &store,
        &images,
        &args.output,
        format,
        args.platform.as_ref(),
    )
    .with_context(|| format!("saving to {}", args.output.display()))?;
    Ok(())
}
