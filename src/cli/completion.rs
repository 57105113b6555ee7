//! `wharf completion SHELL` and `wharf man DIR`: shell completions and man pages, made from
//! the same clap definitions the commands parse with (so they never drift from them).

use std::path::PathBuf;

use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish, powershell or elvish.
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Where to write the pages (`wharf.1`, `wharf-run.1`, ...); made if missing.
    dir: PathBuf,
}

/// Print the completion script for the shell.
pub fn completion(args: CompletionArgs) -> anyhow::Result<()> {
    let mut cmd = super::Cli::command();
    // Made whole first: clap_complete panics on a write error (`| head`), wharf does not.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "wharf", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
    Ok(())
}

/// Write a man page for wharf and each of its commands.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", args.dir.display()))?;
    clap_mangen::generate_to(super::Cli::command(), &args.dir)
        .map_err(|e| anyhow::anyhow!("writing man pages to {}: {e}", args.dir.display()))?;
    let pages = std::fs::read_dir(&args.dir)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".1"))
        .count();
    eprintln!("{pages} man pages in {}", args.dir.display());
    Ok(())
}
