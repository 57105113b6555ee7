//! `wharf rename CONTAINER NEW_NAME`: give a container another name (running or not).

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container (name or id).
    container: String,
    /// Its new name (letters, digits, `_`, `.`, `-`; free).
    new_name: String,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let id = containers.find(&args.container)?;
    let mut locked = containers.lock(&id)?;
    containers.rename(
        &mut locked,
        args.new_name.strip_prefix('/').unwrap_or(&args.new_name),
    )?;
    Ok(())
}
