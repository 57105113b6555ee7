//! `wharf pull`, `wharf push`, `wharf login`, `wharf logout`.

use std::io::Read;

use anyhow::Context;
use wharf::image::platform::PlatformSpec;
use wharf::image::registry::{self, RegistryOptions};
use wharf::image::{Reference, credentials};

use super::Session;

/// How to reach the registry.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// Verify TLS (false: plain HTTP for this registry; localhost never uses TLS).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    tls_verify: bool,
    /// Directory of extra CA certificates (*.crt, *.pem) to trust.
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<std::path::PathBuf>,
    /// Print only errors.
    #[arg(short, long)]
    quiet: bool,
}

impl TlsArgs {
    pub fn options(&self, registry: &str) -> anyhow::Result<RegistryOptions> {
        Ok(RegistryOptions {
            insecure: !self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            credentials: credentials::lookup(registry)?,
            quiet: self.quiet,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image to pull (name[:tag] or name@digest).
    image: String,
    /// Platform to pull from a multi-platform image.
    #[arg(long)]
    platform: Option<PlatformSpec>,
    /// Pull every platform of a multi-platform image.
    #[arg(long)]
    all_platforms: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

pub fn pull(ctx: &Session, args: PullArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.image)?;
    let store = ctx.store()?;
    let opts = args.tls.options(reference.registry())?;
    let desc = registry::pull(
        &store,
        &reference,
        args.platform.as_ref(),
        args.all_platforms,
        &opts,
    )
    .with_context(|| format!("pulling {reference}"))?;
    if !args.tls.quiet {
        outln!("Digest: {}", desc.digest());
    }
    outln!("{reference}");
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The image in the store.
    image: String,
    /// Where to push it (default: the image's own name).
    destination: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
}

pub fn push(ctx: &Session, args: PushArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let record = store.resolve(&args.image)?;
    let target = match &args.destination {
        Some(d) => Reference::parse(d)?,
        None => record
            .name
            .clone()
            .with_context(|| format!("{} has no name: give a destination", args.image))?,
    };
    let opts = args.tls.options(target.registry())?;
    let digest = registry::push(&store, &record, &target, &opts)
        .with_context(|| format!("pushing to {target}"))?;
    outln!("{target}@{digest}");
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry (host[:port]).
    registry: String,
    #[arg(short, long)]
    username: String,
    /// The password (prefer --password-stdin).
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    password_stdin: bool,
}

pub fn login(args: LoginArgs) -> anyhow::Result<()> {
    let password = match (&args.password, args.password_stdin) {
        (Some(p), false) => p.clone(),
        (None, true) => {
            let mut p = String::new();
            std::io::stdin().read_to_string(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        _ => anyhow::bail!("give exactly one of --password and --password-stdin"),
    };
    credentials::store(&args.registry, &args.username, &password)?;
    outln!(
        "Login credentials saved in {}",
        credentials::config_path().display()
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    registry: String,
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    credentials::remove(&args.registry)?;
    outln!("Removed login credentials for {}", args.registry);
    Ok(())
}
