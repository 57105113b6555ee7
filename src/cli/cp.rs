//! `wharf cp [-a] [-L] SRC DEST`: copy files between a container and the host (one side is
//! `CONTAINER:PATH`), as `docker cp`: never through a symlink out of the container. `-` is a
//! tar stream: `wharf cp - CONTAINER:DIR` unpacks standard input into DIR, `wharf cp
//! CONTAINER:PATH -` writes PATH to standard output as a tar.

use wharf::lifecycle::copy::{CopyOptions, Side, copy, copy_from_tar, copy_to_tar};

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
    let opts = CopyOptions {
        follow_link: args.follow_link,
        archive: args.archive,
    };
    let stream = Side::Host("-".into());
    match (&from, &to) {
        (_, Side::Container { container, path }) if from == stream => {
            let copied = copy_from_tar(ctx, container, path, opts, &mut std::io::stdin().lock())?;
            if !args.quiet {
                eprintln!(
                    "Successfully copied {} ({} entries) to {container}:{path}",
                    super::format::human_size(copied.bytes),
                    copied.files
                );
            }
            return Ok(());
        }
        (Side::Container { container, path }, _) if to == stream => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            copy_to_tar(ctx, container, path, opts, &mut out)?;
            std::io::Write::flush(&mut out)?;
            return Ok(());
        }
        _ => {}
    }
    let copied = copy(ctx, &from, &to, opts)?;
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
