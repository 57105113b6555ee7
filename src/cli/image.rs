//! `wharf image prune|history|ls|rm`: Docker's `image` group (`ls` and `rm` are `images`
//! and `rmi`).

use std::collections::HashSet;

use super::Session;
use super::format::human_size;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Remove images no container uses: untagged ones, or with -a every one.
    Prune {
        /// Every image no container uses, not only untagged ones.
        #[arg(short, long)]
        all: bool,
        /// Accepted for Docker's scripts: wharf does not ask.
        #[arg(short, long)]
        force: bool,
    },
    /// How an image was made.
    History(super::history::Args),
    /// List images.
    #[command(alias = "list")]
    Ls(super::images::Args),
    /// Remove images.
    #[command(alias = "remove")]
    Rm(super::rmi::Args),
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Prune { all, force: _ } => prune(ctx, all),
        Command::History(a) => super::history::run(ctx, a),
        Command::Ls(a) => super::images::run(ctx, a),
        Command::Rm(a) => super::rmi::run(ctx, a),
    }
}

/// The digests of the images no container uses: every one with `all`, else the untagged.
pub fn unused(store: &wharf::image::Store, all: bool) -> anyhow::Result<Vec<String>> {
    let used: HashSet<String> = store.in_use().into_iter().filter_map(|u| u.image).collect();
    let mut doomed: Vec<String> = store
        .images()?
        .iter()
        .filter(|i| all || i.name.is_none())
        .map(|i| i.digest().to_string())
        .filter(|d| !used.contains(d))
        .collect();
    doomed.sort();
    doomed.dedup();
    Ok(doomed)
}

fn prune(ctx: &Session, all: bool) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let doomed = unused(&store, all)?;
    let mut reclaimed = 0;
    if !doomed.is_empty() {
        outln!("Deleted Images:");
    }
    for d in &doomed {
        let (names, gc) = store.remove(d, true)?;
        for n in names {
            outln!("untagged: {n}");
        }
        outln!("deleted: {d}");
        reclaimed += gc.bytes;
    }
    let gc = store.gc(&HashSet::new())?;
    reclaimed += gc.bytes;
    outln!("");
    outln!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(())
}
