//! `wharf pull`, `wharf push`, `wharf login`, `wharf logout`.

use std::io::Read;

use anyhow::Context;
use wharf::image::platform::PlatformSpec;
use wharf::image::registry::{self, RegistryOptions};
use wharf::image::{Reference, credentials};
use wharf::trust::sign::{self, Made, Signer};

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
    /// Sign what is pushed with this cosign private key (PEM, encrypted as `cosign
    /// generate-key-pair` writes it), as `skopeo copy --sign-by-sigstore-private-key`
    /// signs: the signature is attached in the registry beside the image (registries.d must
    /// say `use-sigstore-attachments: true` for the destination).
    #[arg(long, value_name = "KEY")]
    sign_by_sigstore_private_key: Option<std::path::PathBuf>,
    /// The signing key's passphrase: the first line of FILE (else $COSIGN_PASSWORD for a
    /// sigstore key, else it is asked for on the terminal).
    #[arg(long, value_name = "FILE")]
    sign_passphrase_file: Option<std::path::PathBuf>,
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
    if args.sign_passphrase_file.is_some()
        && args.sign_by.is_none()
        && args.sign_by_sigstore_private_key.is_none()
    {
        anyhow::bail!(
            "--sign-passphrase-file: give --sign-by or --sign-by-sigstore-private-key, whose key it unlocks"
        );
    }
    let signing = args.sign_by.is_some() || args.sign_by_sigstore_private_key.is_some();
    let lookaside = match signing {
        true => Some(
            wharf::trust::lookaside::Config::load(args.registries_d.as_deref())
                .map_err(anyhow::Error::msg)?,
        ),
        false => None,
    };
    let mut signers = Vec::new();
    if let Some(fingerprint) = &args.sign_by {
        signers.push(Signer::Gpg {
            fingerprint: fingerprint.clone(),
            passphrase_file: args.sign_passphrase_file.clone(),
        });
    }
    if let Some(path) = &args.sign_by_sigstore_private_key {
        if !lookaside
            .as_ref()
            .is_some_and(|c| c.use_sigstore_attachments(&target))
        {
            anyhow::bail!(
                "--sign-by-sigstore-private-key: writing sigstore attachments for {target} is turned off in registries.d (set use-sigstore-attachments: true for it, as skopeo requires)"
            );
        }
        let pem = std::fs::read(path)
            .with_context(|| format!("reading the signing key {}", path.display()))?;
        let passphrase = sigstore_passphrase(args.sign_passphrase_file.as_deref(), path)?;
        signers.push(Signer::Sigstore(
            wharf::trust::sigstore::private_key(&pem, &passphrase)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("the signing key {}", path.display()))?,
        ));
    }
    // Every signature is made before anything is pushed: a key that will not sign (a
    // wrong passphrase, a registries.d that says no) leaves the registry as it was. An
    // index's platforms are signed too: a pull of one platform checks its manifest.
    let mut made = Vec::new();
    if signing {
        let mut digests = vec![record.descriptor.digest().to_string()];
        if let Ok(wharf::image::Manifest::Index(index)) =
            wharf::image::read_manifest(&store, &record.descriptor)
        {
            digests.extend(
                index
                    .manifests()
                    .iter()
                    .filter(|c| store.has_blob(c))
                    .map(|c| c.digest().to_string()),
            );
        }
        for d in &digests {
            for signer in &signers {
                made.push(
                    sign::sign(signer, &target, d)
                        .map_err(anyhow::Error::msg)
                        .with_context(|| format!("signing {target}@{d} (nothing is pushed)"))?,
                );
            }
        }
    }
    let digest = registry::push(&store, &record, &target, &opts)
        .with_context(|| format!("pushing to {target}"))?;
    let mut attach = Vec::new();
    let mut stored: Vec<String> = Vec::new();
    let partly = |stored: &[String]| match stored {
        [] => format!("{target} is pushed, with no signature stored"),
        s => format!(
            "{target} is pushed; signatures stored for {} only",
            s.join(", ")
        ),
    };
    for m in made {
        match m {
            Made::Gpg { digest, signature } => {
                let config = lookaside.as_ref().expect("read when signing");
                let at = sign::write(
                    &config.lookaside(&target, true),
                    &target,
                    &digest,
                    &signature,
                )
                .map_err(anyhow::Error::msg)
                .with_context(|| {
                    format!("storing the signature of {digest} ({})", partly(&stored))
                })?;
                if !args.tls.quiet {
                    eprintln!("Signature stored at {}", at.display());
                }
                stored.push(digest);
            }
            Made::Sigstore { digest, attached } => attach.push((digest, attached)),
        }
    }
    if !attach.is_empty() {
        registry::attach_signatures(&target, &attach, &opts)
            .with_context(|| format!("attaching signatures ({})", partly(&stored)))?;
        if !args.tls.quiet {
            for (d, _) in &attach {
                let tag = wharf::trust::sigstore::signature_tag(d).unwrap_or_default();
                eprintln!("Signature attached as {}:{tag}", target.repository());
            }
        }
    }
    outln!("{target}@{digest}");
    Ok(())
}

/// A sigstore key's passphrase: `--sign-passphrase-file`'s first line, else
/// `$COSIGN_PASSWORD` (as cosign reads it), else asked on the terminal (as skopeo asks).
fn sigstore_passphrase(
    file: Option<&std::path::Path>,
    key: &std::path::Path,
) -> anyhow::Result<Vec<u8>> {
    if let Some(file) = file {
        return sign::read_passphrase_file(file).map_err(anyhow::Error::msg);
    }
    if let Some(p) = std::env::var_os("COSIGN_PASSWORD") {
        return Ok(p.into_encoded_bytes());
    }
    rpassword::prompt_password(format!("Passphrase for key {}: ", key.display()))
        .map(String::into_bytes)
        .with_context(
        || {
            format!(
                "asking for the passphrase of {} on the terminal (give --sign-passphrase-file FILE, or set COSIGN_PASSWORD)",
                key.display()
            )
        },
    )
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
