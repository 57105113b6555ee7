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
            trust: Default::default(),
        })
    }
}

/// Which images are let in (containers-policy.json(5), as skopeo and Podman read it).
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The signature policy to obey instead of ROOT/policy.json,
    /// ~/.config/containers/policy.json or /etc/containers/policy.json.
    #[arg(long, value_name = "FILE")]
    signature_policy: Option<std::path::PathBuf>,
    /// The registries.d directory saying where signatures are kept, instead of
    /// ~/.config/containers/registries.d or /etc/containers/registries.d.
    #[arg(long = "registries.d", value_name = "DIR")]
    registries_d: Option<std::path::PathBuf>,
}

impl TrustArgs {
    pub fn options(&self) -> wharf::trust::TrustOptions {
        wharf::trust::TrustOptions {
            policy: self.signature_policy.clone(),
            registries_d: self.registries_d.clone(),
        }
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
    #[command(flatten)]
    trust: TrustArgs,
}

pub fn pull(ctx: &Session, args: PullArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.image)?;
    let store = ctx.store()?;
    let mut opts = args.tls.options(reference.registry())?;
    opts.trust = args.trust.options();
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
    /// Sign what is pushed with this GPG key (its fingerprint, from your GnuPG keyring),
    /// as `skopeo copy --sign-by` signs: into the lookaside storage registries.d names.
    #[arg(long, value_name = "FINGERPRINT")]
    sign_by: Option<String>,
    /// The registries.d directory saying where signatures are written, instead of
    /// ~/.config/containers/registries.d or /etc/containers/registries.d.
    #[arg(long = "registries.d", value_name = "DIR")]
    registries_d: Option<std::path::PathBuf>,
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
    // Where the signature goes is read before anything is pushed.
    let lookaside = match &args.sign_by {
        Some(_) => Some(
            wharf::trust::lookaside::Config::load(args.registries_d.as_deref())
                .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let digest = registry::push(&store, &record, &target, &opts)
        .with_context(|| format!("pushing to {target}"))?;
    if let (Some(fpr), Some(config)) = (&args.sign_by, &lookaside) {
        // An index's platforms are signed too: a pull of one platform checks its manifest.
        let mut signed = vec![digest.clone()];
        if let Ok(wharf::image::Manifest::Index(index)) =
            wharf::image::read_manifest(&store, &record.descriptor)
        {
            signed.extend(
                index
                    .manifests()
                    .iter()
                    .filter(|c| store.has_blob(c))
                    .map(|c| c.digest().to_string()),
            );
        }
        for d in &signed {
            let at = wharf::trust::sign::sign_gpg(config, &target, d, fpr)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("signing {target}@{d} (it is pushed, unsigned)"))?;
            if !args.tls.quiet {
                eprintln!("Signature stored at {}", at.display());
            }
        }
    }
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
