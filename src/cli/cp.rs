//! `wharf cp [-a] [-L] SRC DEST`: copy files between a container and the host (one side is
//! `CONTAINER:PATH`), as `docker cp`: never through a symlink out of the container.

use wharf::lifecycle::copy::{CopyOptions, Side, copy};

use super::Session;

#[derive(Debug, clap::Args)]
#[command(
    override_usage = "wharf cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH\n       \
                            wharf cp [OPTIONS] SRC_PATH CONTAINER:DEST_PATH"
)]
pub struct Args {
    /// Keep owners (uid and gid) as the source has them (default into a container: root).
    #[arg(short, long)]
    archive: bool,
    /// Follow a symlink named as SRC_PATH.
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Print nothing.
    #[arg(short, long)]
    quiet: bool,
    src: String,
    dest: String,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let (from, to) = (Side::parse(&args.src), Side::parse(&args.dest));
    let copied = copy(
        ctx,
        &from,
        &to,
        CopyOptions {
            follow_link: args.follow_link,
            archive: args.archive,
        },
    )?;
    if !args.quiet {
        let target = match &to {
            Side::Container { container, path } => format!("{container}:{path}"),
            Side::Host(p) => p.display().to_string(),
        };
        let skipped = if copied.skipped > 0 {
            format!(" ({} sockets, FIFOs or devices not copied)", copied.skipped)
        } else {
            String::new()
        };
        eprintln!(
            "Successfully copied {} ({} files) to {target}{skipped}",
            super::format::human_size(copied.bytes),
            copied.files
        );
    }
    Ok(())
}
