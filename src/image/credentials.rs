//! Registry credentials in Docker's format (`~/.docker/config.json`, `auths`), which wharf
//! reads when it exists and writes on `wharf login` (mode 0600, replaced atomically).

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// What can go wrong with the credentials file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no credentials for {0}")]
    NotLoggedIn(String),
}

/// The Docker config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".docker").join("config.json")
}

/// The key Docker uses for a registry.
fn key(registry: &str) -> String {
    if registry == "docker.io" || registry == "index.docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

fn read() -> Result<Map<String, Value>, CredentialsError> {
    let path = config_path();
    match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Ok(Map::new()),
            Err(source) => Err(CredentialsError::Json { path, source }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(source) => Err(CredentialsError::Io { path, source }),
    }
}

fn write(config: &Map<String, Value>) -> Result<(), CredentialsError> {
    let path = config_path();
    let io = |source| CredentialsError::Io {
        path: path.clone(),
        source,
    };
    let dir = path.parent().expect("config path has a parent");
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(
        &mut tmp,
        &serde_json::to_vec_pretty(config).expect("serialises"),
    )
    .map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    tmp.persist(&path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The stored user and password for `registry`, if any.
pub fn lookup(registry: &str) -> Result<Option<(String, String)>, CredentialsError> {
    let config = read()?;
    let Some(entry) = config.get("auths").and_then(|a| a.get(key(registry))) else {
        return Ok(None);
    };
    let Some(auth) = entry.get("auth").and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    let decoded = STANDARD
        .decode(auth)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    Ok(decoded.and_then(|s| {
        s.split_once(':')
            .map(|(u, p)| (u.to_string(), p.to_string()))
    }))
}

/// Store credentials for `registry`.
pub fn store(registry: &str, user: &str, password: &str) -> Result<(), CredentialsError> {
    let mut config = read()?;
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let encoded = STANDARD.encode(format!("{user}:{password}"));
    auths
        .as_object_mut()
        .expect("made an object above")
        .insert(key(registry), serde_json::json!({ "auth": encoded }));
    write(&config)
}

/// Forget the credentials for `registry`.
pub fn remove(registry: &str) -> Result<(), CredentialsError> {
    let mut config = read()?;
    let removed = config
        .get_mut("auths")
        .and_then(|a| a.as_object_mut())
        .and_then(|a| a.remove(&key(registry)));
    if removed.is_none() {
        return Err(CredentialsError::NotLoggedIn(registry.to_string()));
    }
    write(&config)
}
