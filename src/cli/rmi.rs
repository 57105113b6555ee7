//! `wharf rmi`: remove image names, and images no name refers to any more.

use super::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images to remove (name, name:tag, id or digest).
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove an image by id even when several names refer to it.
    #[arg(short, long)]
    force: bool,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let mut failed = Vec::new();
    for image in &args.images {
        match store.remove(image, args.force) {
            Ok((names, gc)) => {
                for n in names {
                    outln!("Untagged: {n}");
                }
                if gc.blobs > 0 {
                    outln!(
                        "Deleted: {} blobs ({} bytes), {} layers",
                        gc.blobs,
                        gc.bytes,
                        gc.layers
                    );
                }
            }
            Err(e) => {
                eprintln!("wharf: {e}");
                failed.push(image.clone());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("could not remove {}", failed.join(", "));
    }
    Ok(())
}
