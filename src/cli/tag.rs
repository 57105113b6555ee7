//! `wharf tag`: give an image another name.

use anyhow::Context;
use wharf::image::Reference;

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image to name.
    source: String,
    /// The new name (`name[:tag]`).
    target: String,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let target = Reference::parse(&args.target).context("parsing the target name")?;
    if target.digest().is_some() {
        anyhow::bail!("cannot tag with a digest reference: {}", args.target);
    }
    store.tag(&args.source, &target)?;
    Ok(())
}
