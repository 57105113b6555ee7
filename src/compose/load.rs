//! Reading a project's compose files into one model: YAML (with its line and column on a
//! syntax error), interpolation per file, `include`, the files merged in order, `extends`,
//! unknown keys named and dropped, then the Compose Specification's types (compose_spec).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::ComposeError;
use super::interpolate::{interpolate, parse_dotenv};

/// Top-level keys of the specification.
const TOP_KEYS: &[&str] = &[
    "version", "name", "include", "services", "networks", "volumes", "configs", "secrets",
];

/// Service keys of the specification (compose_spec's `Service`).
const SERVICE_KEYS: &[&str] = &[
    "attach",
    "build",
    "blkio_config",
    "cpu_count",
    "cpu_percent",
    "cpu_shares",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_runtime",
    "cpu_rt_period",
    "cpus",
    "cpuset",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "annotations",
    "external_links",
    "extra_hosts",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "uts",
    "isolation",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "privileged",
    "profiles",
    "pull_policy",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "userns_mode",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// Sequences that merge by adding (later files add entries) rather than by replacing.
const APPENDED: &[&str] = &[
    "ports",
    "expose",
    "volumes",
    "cap_add",
    "cap_drop",
    "dns",
    "dns_search",
    "tmpfs",
    "devices",
    "security_opt",
    "external_links",
    "profiles",
    "env_file",
    "configs",
    "secrets",
];

/// Mappings written as `KEY=VALUE` lists too: made mappings before merging.
const LIST_OR_MAP: &[&str] = &["environment", "labels", "annotations", "sysctls"];

/// What loading found: the merged document and what the user should hear about.
pub struct Loaded {
    pub value: Value,
    pub warnings: Vec<String>,
}

/// The variables interpolation sees: `.env` in `dir` (if any), then `env_files`, with the
/// process's own environment winning, as Compose does.
pub fn environment(
    dir: &Path,
    env_files: &[PathBuf],
) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut vars = BTreeMap::new();
    let default = dir.join(".env");
    let files: Vec<PathBuf> = if env_files.is_empty() {
        default.exists().then_some(default).into_iter().collect()
    } else {
        env_files.to_vec()
    };
    for f in files {
        let text =
            crate::sys::read_text_file(&f, MAX_FILE_BYTES).map_err(|source| ComposeError::Io {
                path: f.clone(),
                source,
            })?;
        for (k, v) in parse_dotenv(&text).map_err(|m| ComposeError::Invalid {
            file: f.clone(),
            message: m,
        })? {
            vars.insert(k, v);
        }
    }
    for (k, v) in std::env::vars() {
        vars.insert(k, v);
    }
    Ok(vars)
}

/// Read, interpolate and merge `files` (with their includes and extends).
pub fn load(files: &[PathBuf], env: BTreeMap<String, String>) -> Result<Loaded, ComposeError> {
    let mut warnings = Vec::new();
    let mut merged = Value::Mapping(Mapping::new());
    for f in files {
        let doc = read_file(f, &env, &mut warnings, 0)?;
        merge(&mut merged, doc, &[]);
    }
    resolve_extends(
        &mut merged,
        files.first().map(PathBuf::as_path),
        &env,
        &mut warnings,
    )?;
    strip_unknown(&mut merged, &mut warnings);
    declare_default_network(&mut merged);
    Ok(Loaded {
        value: merged,
        warnings,
    })
}

/// The largest compose or `.env` file read (an `include` of `/dev/zero` must not read until
/// memory runs out).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// One file: parsed, interpolated, its relative paths left for the caller (they are
/// relative to the project directory, as Compose's), its `include`s merged under it.
fn read_file(
    path: &Path,
    env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
    depth: usize,
) -> Result<Value, ComposeError> {
    if depth > 8 {
        return Err(ComposeError::Invalid {
            file: path.to_path_buf(),
            message: "includes nest deeper than 8 files (a cycle?)".into(),
        });
    }
    let text =
        crate::sys::read_text_file(path, MAX_FILE_BYTES).map_err(|source| ComposeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut doc: Value = serde_yaml::from_str(&text).map_err(|e| syntax(path, &e))?;
    // `<<: *anchor` merge keys, resolved per file before anything looks at the keys.
    doc.apply_merge().map_err(|e| ComposeError::Invalid {
        file: path.to_path_buf(),
        message: format!("merge keys: {e}"),
    })?;
    if doc.is_null() {
        doc = Value::Mapping(Mapping::new());
    }
    if !doc.is_mapping() {
        return Err(ComposeError::Invalid {
            file: path.to_path_buf(),
            message: "the top level must be a mapping (services:, networks:, ...)".into(),
        });
    }
    let mut unset = Vec::new();
    let lookup = |k: &str| env.get(k).cloned();
    interpolate_value(&mut doc, &lookup, &mut unset, &mut Vec::new()).map_err(|message| {
        ComposeError::Invalid {
            file: path.to_path_buf(),
            message,
        }
    })?;
    unset.sort();
    unset.dedup();
    for v in unset {
        warnings.push(format!(
            "{}: the {v:?} variable is not set: it is a blank string",
            path.display()
        ));
    }
    normalize(&mut doc);
    // `include`: other files' definitions, under this one's.
    let includes = doc
        .as_mapping_mut()
        .and_then(|m| m.remove("include"))
        .unwrap_or(Value::Null);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut base = Value::Mapping(Mapping::new());
    for inc in includes.as_sequence().into_iter().flatten() {
        let paths: Vec<&Value> = match inc {
            Value::String(_) => vec![inc],
            Value::Mapping(m) => match m.get("path") {
                Some(Value::Sequence(list)) => list.iter().collect(),
                Some(p) => vec![p],
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        for p in paths.into_iter().filter_map(Value::as_str) {
            let file = dir.join(p);
            let mut included = read_file(&file, env, warnings, depth + 1)?;
            rebase(&mut included, file.parent().unwrap_or(Path::new(".")));
            merge(&mut base, included, &[]);
        }
    }
    merge(&mut base, doc, &[]);
    Ok(base)
}

fn syntax(path: &Path, e: &serde_yaml::Error) -> ComposeError {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let message = e.to_string();
    // serde_yaml appends " at line L column C": the location is said once, in front.
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    ComposeError::Syntax {
        file: path.to_path_buf(),
        line,
        column,
        message,
    }
}

fn interpolate_value(
    v: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
    path: &mut Vec<String>,
) -> Result<(), String> {
    match v {
        Value::String(s) => {
            *s = interpolate(s, lookup, unset).map_err(|e| format!("{}: {e}", path.join(".")))?;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                interpolate_value(item, lookup, unset, path)?;
                path.pop();
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                path.push(k.as_str().unwrap_or("?").to_string());
                interpolate_value(item, lookup, unset, path)?;
                path.pop();
            }
        }
        Value::Tagged(t) => interpolate_value(&mut t.value, lookup, unset, path)?,
        _ => {}
    }
    Ok(())
}

/// `environment: [A=1]` → `environment: {A: "1"}` (and labels, ...), so files merge key by key.
fn normalize(doc: &mut Value) {
    let Some(services) = doc.get_mut("services").and_then(Value::as_mapping_mut) else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        let Some(svc) = svc.as_mapping_mut() else {
            continue;
        };
        // depends_on: [a] → {a: {condition: service_started}}; networks: [n] → {n: null}:
        // so a list in one file and a mapping in another merge.
        if let Some(Value::Sequence(items)) = svc.get("depends_on") {
            let mut m = Mapping::new();
            for s in items.iter().filter_map(Value::as_str) {
                let mut c = Mapping::new();
                c.insert("condition".into(), "service_started".into());
                m.insert(s.into(), Value::Mapping(c));
            }
            svc.insert("depends_on".into(), Value::Mapping(m));
        }
        if let Some(Value::Sequence(items)) = svc.get("networks") {
            let mut m = Mapping::new();
            for n in items.iter().filter_map(Value::as_str) {
                m.insert(n.into(), Value::Null);
            }
            svc.insert("networks".into(), Value::Mapping(m));
        }
        for key in LIST_OR_MAP {
            if let Some(Value::Sequence(items)) = svc.get(*key) {
                let mut m = Mapping::new();
                for item in items {
                    if let Some(s) = item.as_str() {
                        match s.split_once('=') {
                            Some((k, v)) => m.insert(k.into(), v.into()),
                            None => m.insert(s.into(), Value::Null),
                        };
                    }
                }
                svc.insert((*key).into(), Value::Mapping(m));
            }
        }
    }
}

/// Merge `over` into `base`: mappings key by key, [`APPENDED`] sequences by adding what
/// is new, anything else replaced.
pub fn merge(base: &mut Value, over: Value, path: &[&str]) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let key = k.as_str().unwrap_or("").to_string();
                match b.get_mut(&k) {
                    Some(existing) => {
                        let mut p = path.to_vec();
                        p.push(&key);
                        merge(existing, v, &p);
                    }
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o))
            if path.len() == 3 && path[0] == "services" && APPENDED.contains(&path[2]) =>
        {
            for item in o {
                // A volume (and a secret or config) is one per target: a later file's
                // entry for the same target replaces the earlier one.
                let target = mount_target(&item);
                if let Some(i) = target
                    .as_ref()
                    .and_then(|t| b.iter().position(|x| mount_target(x).as_ref() == Some(t)))
                {
                    b[i] = item;
                } else if !b.contains(&item) {
                    b.push(item);
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Where a service volume (short `src:dst[:mode]` or long `{target: ...}`) is mounted.
fn mount_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(parts.get(1).copied().unwrap_or(parts[0]).to_string())
        }
        Value::Mapping(m) => m.get("target").and_then(Value::as_str).map(String::from),
        _ => None,
    }
}

/// Paths in `doc`'s services that are relative to the file that wrote them (binds,
/// env_file), made absolute with `dir`: an included or extended file's paths mean its own
/// directory, not the project's.
fn rebase(doc: &mut Value, dir: &Path) {
    let abs = |p: &str| -> String {
        let joined = dir.join(p);
        std::path::absolute(&joined)
            .unwrap_or(joined)
            .to_string_lossy()
            .into_owned()
    };
    let relative = |p: &str| p.starts_with("./") || p.starts_with("../") || p == "." || p == "..";
    let Some(services) = doc.get_mut("services").and_then(Value::as_mapping_mut) else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        if let Some(Value::Sequence(vols)) = svc.get_mut("volumes") {
            for v in vols.iter_mut() {
                match v {
                    Value::String(s) => {
                        if let Some((src, rest)) = s.split_once(':')
                            && relative(src)
                        {
                            *s = format!("{}:{rest}", abs(src));
                        }
                    }
                    Value::Mapping(m) => {
                        if let Some(Value::String(src)) = m.get_mut("source")
                            && relative(src)
                        {
                            *src = abs(src);
                        }
                    }
                    _ => {}
                }
            }
        }
        match svc.get_mut("env_file") {
            Some(Value::String(f)) if !Path::new(f.as_str()).is_absolute() => *f = abs(f),
            Some(Value::Sequence(list)) => {
                for e in list.iter_mut() {
                    match e {
                        Value::String(f) if !Path::new(f.as_str()).is_absolute() => *f = abs(f),
                        Value::Mapping(m) => {
                            if let Some(Value::String(f)) = m.get_mut("path")
                                && !Path::new(f.as_str()).is_absolute()
                            {
                                *f = abs(f);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// `extends: {service: S[, file: F]}`: the service starts from S's definition.
fn resolve_extends(
    doc: &mut Value,
    first_file: Option<&Path>,
    env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
    let file = first_file
        .unwrap_or(Path::new("compose.yaml"))
        .to_path_buf();
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    for _round in 0..8 {
        let Some(services) = doc.get("services").and_then(Value::as_mapping).cloned() else {
            return Ok(());
        };
        let mut changed = false;
        for (name, svc) in &services {
            let Some(ext) = svc.get("extends") else {
                continue;
            };
            let (base_name, base_file) = match ext {
                Value::String(s) => (s.clone(), None),
                Value::Mapping(m) => (
                    m.get("service")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    m.get("file").and_then(Value::as_str).map(|f| dir.join(f)),
                ),
                _ => continue,
            };
            let base = match &base_file {
                Some(f) => {
                    let mut other = read_file(f, env, warnings, 1)?;
                    rebase(&mut other, f.parent().unwrap_or(Path::new(".")));
                    other
                        .get("services")
                        .and_then(|s| s.get(base_name.as_str()))
                        .cloned()
                }
                None => services.get(base_name.as_str()).cloned(),
            };
            let Some(mut base) = base else {
                return Err(ComposeError::Invalid {
                    file: base_file.unwrap_or_else(|| file.clone()),
                    message: format!(
                        "service {:?} extends {base_name:?}, which is not defined",
                        name.as_str().unwrap_or("?")
                    ),
                });
            };
            if base.get("extends").is_some() && base_file.is_none() {
                // Resolve the base first (a later round).
                continue;
            }
            if let Some(m) = base.as_mapping_mut() {
                m.remove("extends");
            }
            let mut own = svc.clone();
            if let Some(m) = own.as_mapping_mut() {
                m.remove("extends");
            }
            let key = name.as_str().unwrap_or_default().to_string();
            merge(&mut base, own, &["services", &key]);
            doc["services"][name.as_str().unwrap_or_default()] = base;
            changed = true;
        }
        if !changed {
            return Ok(());
        }
    }
    Err(ComposeError::Invalid {
        file,
        message: "extends chains longer than 8 services (a cycle?)".into(),
    })
}

/// A service may name the `default` network without declaring it, as Compose allows.
fn declare_default_network(doc: &mut Value) {
    let uses_default = doc
        .get("services")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .any(|(_, svc)| match svc.get("networks") {
            Some(Value::Sequence(l)) => l.iter().any(|n| n.as_str() == Some("default")),
            Some(Value::Mapping(m)) => m.contains_key("default"),
            _ => false,
        });
    let Some(top) = doc.as_mapping_mut() else {
        return;
    };
    if uses_default {
        let nets = top
            .entry("networks".into())
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if nets.is_null() {
            *nets = Value::Mapping(Mapping::new());
        }
        if let Some(m) = nets.as_mapping_mut()
            && !m.contains_key("default")
        {
            m.insert("default".into(), Value::Null);
        }
    }
}

/// Drop keys the specification does not define, saying which (`x-` extensions stay).
fn strip_unknown(doc: &mut Value, warnings: &mut Vec<String>) {
    let Some(top) = doc.as_mapping_mut() else {
        return;
    };
    let unknown: Vec<Value> = top
        .keys()
        .filter(|k| {
            let k = k.as_str().unwrap_or("");
            !TOP_KEYS.contains(&k) && !k.starts_with("x-")
        })
        .cloned()
        .collect();
    for k in unknown {
        warnings.push(format!(
            "unknown top-level key {:?} is ignored",
            k.as_str().unwrap_or("?")
        ));
        top.remove(&k);
    }
    let Some(services) = top.get_mut("services").and_then(Value::as_mapping_mut) else {
        return;
    };
    for (name, svc) in services.iter_mut() {
        let Some(svc) = svc.as_mapping_mut() else {
            continue;
        };
        let unknown: Vec<Value> = svc
            .keys()
            .filter(|k| {
                let k = k.as_str().unwrap_or("");
                !SERVICE_KEYS.contains(&k) && !k.starts_with("x-")
            })
            .cloned()
            .collect();
        for k in unknown {
            warnings.push(format!(
                "service {:?}: unknown key {:?} is ignored",
                name.as_str().unwrap_or("?"),
                k.as_str().unwrap_or("?")
            ));
            svc.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn files_merge_as_compose_merges_them() {
        let mut base = yaml(
            "services:\n  web:\n    image: a\n    ports: ['80:80']\n    environment: {A: '1', B: '2'}\n    command: [x]\n",
        );
        let mut over = yaml(
            "services:\n  web:\n    image: b\n    ports: ['81:81', '80:80']\n    environment: [B=3, C=4]\n    command: [y, z]\n  db:\n    image: d\n",
        );
        normalize(&mut over);
        normalize(&mut base);
        merge(&mut base, over, &[]);
        let web = &base["services"]["web"];
        assert_eq!(web["image"], "b");
        assert_eq!(web["ports"], yaml("['80:80', '81:81']"));
        assert_eq!(web["environment"], yaml("{A: '1', B: '3', C: '4'}"));
        assert_eq!(web["command"], yaml("[y, z]"), "command is replaced");
        assert_eq!(base["services"]["db"]["image"], "d");
    }

    #[test]
    fn extends_and_unknown_keys() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("compose.yaml");
        std::fs::write(
            &f,
            "services:\n  base:\n    image: busybox\n    environment: {A: '1'}\n  app:\n    extends: base\n    environment: {B: '2'}\n    colour: blue\nfrobnicate: true\n",
        )
        .unwrap();
        let l = load(&[f], BTreeMap::new()).unwrap();
        let app = &l.value["services"]["app"];
        assert_eq!(app["image"], "busybox");
        assert_eq!(app["environment"], yaml("{A: '1', B: '2'}"));
        assert!(app.get("colour").is_none());
        assert!(
            l.warnings.iter().any(|w| w.contains("\"colour\"")),
            "{:?}",
            l.warnings
        );
        assert!(
            l.warnings.iter().any(|w| w.contains("\"frobnicate\"")),
            "{:?}",
            l.warnings
        );
    }

    #[test]
    fn volumes_merge_by_target_and_included_paths_are_the_included_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub")).unwrap();
        let main = d.path().join("compose.yaml");
        std::fs::write(
            &main,
            "include: [sub/compose.yaml]\nservices:\n  web:\n    image: x\n    volumes: ['./a:/data', './logs:/logs']\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("sub/compose.yaml"),
            "services:\n  db:\n    image: y\n    env_file: db.env\n    volumes: ['./dbdata:/var/lib/db']\n",
        )
        .unwrap();
        let over = d.path().join("override.yaml");
        std::fs::write(&over, "services:\n  web:\n    volumes: ['./b:/data:ro']\n").unwrap();
        let l = load(&[main, over], BTreeMap::new()).unwrap();
        let web = &l.value["services"]["web"]["volumes"];
        assert_eq!(
            web,
            &yaml("['./b:/data:ro', './logs:/logs']"),
            "one mount per target"
        );
        let db = &l.value["services"]["db"];
        let sub = std::path::absolute(d.path().join("sub")).unwrap();
        assert_eq!(
            db["env_file"],
            sub.join("db.env").to_string_lossy().as_ref()
        );
        let vol = db["volumes"][0].as_str().unwrap();
        assert!(
            vol.starts_with(&*sub.join("dbdata").to_string_lossy()),
            "{vol}"
        );
    }

    #[test]
    fn a_syntax_error_says_where() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("compose.yaml");
        std::fs::write(&f, "services:\n  web:\n    image: [unclosed\n").unwrap();
        let e = load(&[f], BTreeMap::new()).err().unwrap();
        let ComposeError::Syntax { line, column, .. } = e else {
            panic!("{e}")
        };
        assert!(line >= 3 && column > 0, "{line}:{column}");
    }
}
