//! `wharf import`: a tarball of a root filesystem (plain, gzip or zstd; as `export` writes
//! them) made into a one-layer image, as `docker import` does, with Dockerfile-style
//! `--change`s for how it runs.

use std::collections::BTreeMap;
use std::io::{self, Read};

use serde::Serialize;

use super::content::{ImageConfig, RootFs, RunConfig};
use super::reference::Reference;
use super::store::{Store, StoreError, descriptor};
use super::{blob, media};

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the archive: {0}")]
    Io(#[from] io::Error),
    #[error("not a tar archive (plain, gzip or zstd): {0}")]
    NotTar(String),
    #[error("invalid --change {change:?}: {why}")]
    BadChange { change: String, why: String },
}

/// `import` options.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `-m`: the history entry's comment.
    pub message: Option<String>,
    /// `-c`: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL lines.
    pub changes: Vec<String>,
    /// The image's os/architecture (default linux and this host's architecture).
    pub os: String,
    pub architecture: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestOut<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: &'a oci_spec::image::Descriptor,
    layers: &'a [oci_spec::image::Descriptor],
}

/// How a stored archive is read back uncompressed.
type Decoder = fn(std::fs::File) -> io::Result<Box<dyn Read>>;

/// Store the archive read from `input` as a one-layer image, named `name` if given.
/// Returns the image's digest.
pub fn import(
    store: &Store,
    input: &mut dyn Read,
    name: Option<&Reference>,
    opts: &ImportOptions,
) -> Result<String, ImportError> {
    let mut run = RunConfig::default();
    for c in &opts.changes {
        apply_change(&mut run, c)?;
    }
    let _guard = store.lock_shared()?;
    // The archive is stored as it came, then read back to check it and find its diff id.
    let mut w = store.blob_writer(None)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 8 {
            head.extend_from_slice(&buf[..n.min(8 - head.len())]);
        }
        w.write_chunk(&buf[..n]).map_err(StoreError::from)?;
    }
    let (layer_type, decoder): (&str, Decoder) = if head.starts_with(&[0x1f, 0x8b]) {
        (media::OCI_LAYER_GZIP, |f| {
            Ok(Box::new(flate2::read::GzDecoder::new(f)))
        })
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        (media::OCI_LAYER_ZSTD, |f| {
            Ok(Box::new(zstd::stream::read::Decoder::new(f)?))
        })
    } else {
        (media::OCI_LAYER_TAR, |f| Ok(Box::new(f)))
    };
    let (digest, size) = store.commit(w)?;
    let layer = descriptor(layer_type, digest.clone(), size);
    let uncompressed = decoder(store.open_blob(&digest)?)?;
    let mut hashing = blob::HashingReader::new(uncompressed);
    let mut entries = 0usize;
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for e in archive
            .entries()
            .map_err(|e| ImportError::NotTar(e.to_string()))?
        {
            e.map_err(|e| ImportError::NotTar(e.to_string()))?;
            entries += 1;
        }
    }
    let (diff_id, _) = hashing.finish()?;
    if entries == 0 {
        return Err(ImportError::NotTar("it holds no entries".into()));
    }
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut config = serde_json::to_value(ImageConfig {
        created: Some(created.clone()),
        architecture: opts.architecture.clone(),
        os: opts.os.clone(),
        config: Some(run),
        rootfs: Some(RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id.to_string()],
        }),
        ..ImageConfig::default()
    })
    .expect("a config serialises");
    config["history"] = serde_json::json!([{
        "created": created,
        "created_by": "wharf import",
        "comment": opts.message.clone().unwrap_or_default(),
    }]);
    let config_bytes = serde_json::to_vec(&config).expect("a config serialises");
    let config_desc = store.put_blob(media::OCI_CONFIG, &config_bytes)?;
    let manifest = ManifestOut {
        schema_version: 2,
        media_type: media::OCI_MANIFEST,
        config: &config_desc,
        layers: std::slice::from_ref(&layer),
    };
    let bytes = serde_json::to_vec(&manifest).expect("a manifest serialises");
    let desc = store.put_blob(media::OCI_MANIFEST, &bytes)?;
    store.add_image(name, &desc)?;
    store.event(
        "import",
        desc.digest().as_ref(),
        name.map(|n| n.to_string()).as_deref(),
    );
    Ok(desc.digest().to_string())
}

/// One `--change` line, as a Dockerfile instruction (JSON or shell form for CMD and
/// ENTRYPOINT).
fn apply_change(run: &mut RunConfig, change: &str) -> Result<(), ImportError> {
    let bad = |why: &str| ImportError::BadChange {
        change: change.to_string(),
        why: why.to_string(),
    };
    let (instr, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let rest = rest.trim();
    let argv = || -> Result<Vec<String>, ImportError> {
        if rest.starts_with('[') {
            serde_json::from_str(rest).map_err(|_| bad("not a JSON list of strings"))
        } else if rest.is_empty() {
            Err(bad("it needs a command"))
        } else {
            Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
        }
    };
    let pair = || -> Result<(String, String), ImportError> {
        let (k, v) = rest
            .split_once('=')
            .or_else(|| rest.split_once(' '))
            .ok_or_else(|| bad("expected KEY=VALUE"))?;
        Ok((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
    };
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => run.cmd = Some(argv()?),
        "ENTRYPOINT" => run.entrypoint = Some(argv()?),
        "ENV" => {
            let (k, v) = pair()?;
            let env = run.env.get_or_insert_with(Vec::new);
            env.retain(|e| e.split('=').next() != Some(k.as_str()));
            env.push(format!("{k}={v}"));
        }
        "LABEL" => {
            let (k, v) = pair()?;
            run.labels.get_or_insert_with(BTreeMap::new).insert(k, v);
        }
        "WORKDIR" if rest.starts_with('/') => run.working_dir = Some(rest.to_string()),
        "WORKDIR" => return Err(bad("WORKDIR needs an absolute path")),
        "USER" if !rest.is_empty() => run.user = Some(rest.to_string()),
        "STOPSIGNAL" if !rest.is_empty() => run.stop_signal = Some(rest.to_string()),
        "EXPOSE" => {
            let ports = run.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p, serde_json::json!({}));
            }
        }
        other => {
            return Err(bad(&format!(
                "{other}: import takes CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, EXPOSE and STOPSIGNAL"
            )));
        }
    }
    Ok(())
}

/// This host's architecture as OCI names it.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_dockerfile_lines() {
        let mut run = RunConfig::default();
        for c in [
            r#"CMD ["/bin/app", "-v"]"#,
            "ENTRYPOINT /init",
            "ENV A=1",
            "ENV A=2",
            "LABEL team=core",
            "WORKDIR /srv",
            "USER 1000:1000",
            "EXPOSE 80 53/udp",
        ] {
            apply_change(&mut run, c).unwrap();
        }
        assert_eq!(run.cmd.unwrap(), ["/bin/app", "-v"]);
        assert_eq!(run.entrypoint.unwrap(), ["/bin/sh", "-c", "/init"]);
        assert_eq!(run.env.unwrap(), ["A=2"]);
        assert_eq!(run.labels.unwrap()["team"], "core");
        assert_eq!(run.working_dir.as_deref(), Some("/srv"));
        assert_eq!(run.user.as_deref(), Some("1000:1000"));
        assert_eq!(run.exposed_ports.unwrap().len(), 2);
        let mut run = RunConfig::default();
        for bad in ["RUN make", "WORKDIR rel", "CMD [not json", "ENV"] {
            assert!(apply_change(&mut run, bad).is_err(), "{bad}");
        }
    }
}
