//! `wharf build`: a Dockerfile (or Containerfile) made into an image in wharf's store.
//!
//! Each stage starts from an image, `scratch` or an earlier stage; each instruction that
//! changes files makes one layer, written straight into the store ([`layer`]): `RUN` runs
//! the step as a native container through the lifecycle (the same confinement as
//! `wharf run`) and keeps its upper directory; `COPY`/`ADD` read the context or another
//! stage ([`context`]). Every step's result is cached under a key chained from its parent's
//! (the instruction, the build args it sees, the content it copies), so a rebuild with
//! nothing changed runs nothing, and a changed source rebuilds from its step on.
//! `SOURCE_DATE_EPOCH` (`--timestamp`) fixes every time written, for the same digest twice.

pub mod context;
pub mod dockerfile;
pub mod layer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use oci_spec::image::Descriptor;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::image::content::{ImageConfig, RootFs, RunConfig};
use crate::image::platform::PlatformSpec;
use crate::image::reference::Reference;
use crate::image::store::{Store, StoreError};
use crate::image::{media, unpack};
use crate::lifecycle::{Events, LifecycleError, Session};
use crate::run::options::Network;
use crate::trust::TrustOptions;
use context::{Found, Ignore, Overrides};
use dockerfile::{CopyStep, Dockerfile, DockerfileError, Step, StepKind};
use layer::{Layer, LayerWriter};

/// What went wrong in a build. Every one exits 1, as `docker build` does.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Dockerfile(#[from] DockerfileError),
    #[error("step {step} (line {line}: {text}): {why}")]
    Step {
        step: usize,
        line: usize,
        text: String,
        why: String,
    },
    #[error(
        "step {step} (line {line}: {text}): the command returned a non-zero code: {code}{detail}"
    )]
    Failed {
        step: usize,
        line: usize,
        text: String,
        code: u8,
        /// What wharf said of the end, if anything (an entrypoint not found, a limit).
        detail: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
}

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    #[default]
    Missing,
    Always,
    Never,
}

/// What to build, and how.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// `-f` (default: `Dockerfile`, else `Containerfile`, in the context).
    pub file: Option<PathBuf>,
    pub tags: Vec<Reference>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<PlatformSpec>,
    pub no_cache: bool,
    pub pull: PullPolicy,
    /// The network RUN steps get (default none).
    pub network: Network,
    pub labels: BTreeMap<String, String>,
    /// Seconds since the epoch for every time written (`--timestamp`, `SOURCE_DATE_EPOCH`).
    pub timestamp: Option<u64>,
    pub trust: TrustOptions,
}

/// An image built.
#[derive(Debug, Clone)]
pub struct Built {
    /// The manifest's digest (`sha256:...`): the image id.
    pub digest: String,
    pub steps: usize,
    /// Steps whose result came from the cache.
    pub cached: usize,
}

/// Where a stage stands: its layers and config so far, and the cache key they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    layers: Vec<Layer>,
    config: ImageConfig,
    history: Vec<serde_json::Value>,
    /// `SHELL` (not part of the config, but of how later RUNs read).
    shell: Vec<String>,
    key: String,
    /// The final image is a wasm module's (see `wasm_shape`).
    #[serde(default)]
    wasm: bool,
}

impl State {
    /// WORKDIR so far (`/` when none).
    fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_else(|| "/".into())
    }

    fn run_config(&mut self) -> &mut RunConfig {
        self.config.config.get_or_insert_with(RunConfig::default)
    }

    fn env(&self) -> Vec<(String, String)> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect()
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let env = self.run_config().env.get_or_insert_with(Vec::new);
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(e) => *e = format!("{key}={value}"),
            None => env.push(format!("{key}={value}")),
        }
    }
}

/// The default `SHELL`.
fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// Build args every Dockerfile may use without declaring them (Docker's predefined ones).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// Build what `opts` says. Steps' progress goes to `events`; RUN steps' output to this
/// process's stdout and stderr. The caller must not have started threads (RUN clones).
pub fn build(
    session: &Session,
    opts: &BuildOptions,
    events: &dyn Events,
) -> Result<Built, BuildError> {
    let context_dir =
        Dir::open_ambient_dir(&opts.context, cap_std::ambient_authority()).map_err(|e| {
            BuildError::Invalid(format!("build context {}: {e}", opts.context.display()))
        })?;
    let text = read_dockerfile(&opts.context, &context_dir, opts.file.as_deref())?;
    let df = dockerfile::parse(&text)?;
    let ignore = match read_in(&context_dir, ".dockerignore", 1 << 20) {
        Ok(Some(t)) => Ignore::parse(&t).map_err(BuildError::Invalid)?,
        Ok(None) => Ignore::default(),
        Err(e) => return Err(BuildError::Invalid(format!(".dockerignore: {e}"))),
    };
    let target = match &opts.target {
        Some(t) => df
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| BuildError::Invalid(format!("--target {t}: no stage has that name")))?,
        None => df.stages.len() - 1,
    };
    let store = session.store()?;
    // Held for the whole build: a gc meanwhile would take the layers made so far, which no
    // image in the index names yet.
    let _guard = store.lock_shared()?;
    let mut b = Builder {
        session,
        store,
        opts,
        events,
        context: context_dir,
        ignore,
        stages: Vec::new(),
        step_no: 0,
        total: df.stages[..=target].iter().map(|s| s.steps.len() + 1).sum(),
        cached: 0,
    };
    #[cfg(target_os = "linux")]
    remove_stale_steps(session, events);
    let global = b.global_args(&df);
    for stage in &df.stages[..=target] {
        let state = b.stage(stage, &global)?;
        b.stages.push((stage.name.clone(), state));
    }
    let (_, mut state) = b.stages.pop().expect("at least one stage");
    if !opts.labels.is_empty() {
        let labels = state.run_config().labels.get_or_insert_with(BTreeMap::new);
        labels.extend(opts.labels.clone());
    }
    b.wasm_shape(&mut state)?;
    if state.wasm && opts.platform.as_ref().is_some_and(PlatformSpec::is_wasm) {
        return b.wasm_artifact(&state);
    }
    let desc = b.materialize(&state)?;
    if opts.tags.is_empty() {
        b.store.add_image(None, &desc)?;
    }
    for tag in &opts.tags {
        b.store.add_image(Some(tag), &desc)?;
        b.store
            .event("tag", desc.digest().as_ref(), Some(&tag.to_string()));
    }
    b.store.event("build", desc.digest().as_ref(), None);
    Ok(Built {
        digest: desc.digest().to_string(),
        steps: b.total,
        cached: b.cached,
    })
}

fn read_dockerfile(context: &Path, dir: &Dir, file: Option<&Path>) -> Result<String, BuildError> {
    let read = |p: &Path| -> std::io::Result<String> {
        let f = std::fs::File::open(p)?;
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(f, dockerfile::MAX_BYTES as u64 + 1),
            &mut s,
        )?;
        Ok(s)
    };
    match file {
        // `-f -`: the Dockerfile on stdin.
        Some(p) if p == Path::new("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(
                &mut std::io::Read::take(std::io::stdin(), dockerfile::MAX_BYTES as u64 + 1),
                &mut s,
            )
            .map_err(|e| BuildError::Invalid(format!("reading the Dockerfile from stdin: {e}")))?;
            Ok(s)
        }
        Some(p) => read(p).map_err(|e| BuildError::Invalid(format!("{}: {e}", p.display()))),
        None => {
            for name in ["Dockerfile", "Containerfile"] {
                match read_in(dir, name, dockerfile::MAX_BYTES as u64 + 1) {
                    Ok(Some(text)) => return Ok(text),
                    Ok(None) => {}
                    Err(e) => return Err(BuildError::Invalid(format!("{name}: {e}"))),
                }
            }
            Err(BuildError::Invalid(format!(
                "no Dockerfile or Containerfile in {} (name one with -f)",
                context.display()
            )))
        }
    }
}

/// `name` in the context, if it is there: read through the context's handle (no path
/// joined by hand), a regular file only (a FIFO is never waited on), at most `cap` bytes.
fn read_in(dir: &Dir, name: &str, cap: u64) -> std::io::Result<Option<String>> {
    let f = match crate::lifecycle::copy::open_regular(dir, std::ffi::OsStr::new(name)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(f, cap), &mut s)?;
    Ok(Some(s))
}

struct Builder<'a> {
    session: &'a Session,
    store: Store,
    opts: &'a BuildOptions,
    events: &'a dyn Events,
    context: Dir,
    ignore: Ignore,
    /// Finished stages: name and final state.
    stages: Vec<(Option<String>, State)>,
    step_no: usize,
    total: usize,
    cached: usize,
}

impl Builder<'_> {
    fn global_args(&self, df: &Dockerfile) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        // Docker's automatic platform args, for `FROM --platform=$BUILDPLATFORM` and the like.
        let build = PlatformSpec::host();
        let target = self
            .opts
            .platform
            .clone()
            .unwrap_or_else(PlatformSpec::host);
        for (prefix, p) in [("BUILD", &build), ("TARGET", &target)] {
            out.insert(format!("{prefix}PLATFORM"), p.to_string());
            out.insert(format!("{prefix}OS"), p.os.clone());
            out.insert(format!("{prefix}ARCH"), p.architecture.clone());
            out.insert(
                format!("{prefix}VARIANT"),
                p.variant.clone().unwrap_or_default(),
            );
        }
        for (name, default) in &df.global_args {
            let value = self.opts.build_args.get(name).cloned().or_else(|| {
                default
                    .as_ref()
                    .map(|d| dockerfile::expand(d, &|v| out.get(v).cloned()).unwrap_or_default())
            });
            if let Some(v) = value {
                out.insert(name.clone(), v);
            }
        }
        out
    }

    fn progress(&mut self, text: &str) {
        self.step_no += 1;
        self.events
            .progress(&format!("STEP {}/{}: {text}", self.step_no, self.total));
    }

    fn stage(
        &mut self,
        stage: &dockerfile::Stage,
        global: &BTreeMap<String, String>,
    ) -> Result<State, BuildError> {
        let from_text = format!("FROM {}", stage.base);
        self.progress(&from_text);
        let step_err = |why: String| BuildError::Step {
            step: 0,
            line: stage.line,
            text: from_text.clone(),
            why,
        };
        let base =
            dockerfile::expand(&stage.base, &|v| global.get(v).cloned()).map_err(step_err)?;
        let platform = match &stage.platform {
            Some(p) => {
                let p = dockerfile::expand(p, &|v| global.get(v).cloned()).map_err(step_err)?;
                Some(
                    p.parse::<PlatformSpec>()
                        .map_err(|e| step_err(format!("--platform: {e}")))?,
                )
            }
            None => self.opts.platform.clone(),
        };
        let mut state = self.base(&base, platform.as_ref()).map_err(|e| match e {
            BuildError::Invalid(why) => step_err(why),
            other => other,
        })?;
        // ARGs declared in this stage, with their values.
        let mut args: BTreeMap<String, String> = BTreeMap::new();
        // Whether this stage set CMD (an ENTRYPOINT after it keeps it; one after a CMD
        // only inherited from the base clears it, as BuildKit does).
        let mut cmd_set = false;
        for step in &stage.steps {
            self.progress(&step.text);
            let n = self.step_no;
            let err = |why: String| BuildError::Step {
                step: n,
                line: step.line,
                text: step.text.clone(),
                why,
            };
            let env = state.env();
            let vars = |name: &str| -> Option<String> {
                env.iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .or_else(|| args.get(name).cloned())
            };
            match &step.kind {
                StepKind::Arg(decls) => {
                    for (name, default) in decls {
                        // A build arg, else the stage's own default, else the global one
                        // (BuildKit's order); a default sees the stage's variables.
                        let value = self
                            .opts
                            .build_args
                            .get(name)
                            .cloned()
                            .or_else(|| {
                                // The stage's variables as they are now (ENV first).
                                let known = args.clone();
                                let seen = |v: &str| {
                                    env.iter()
                                        .rev()
                                        .find(|(k, _)| k == v)
                                        .map(|(_, x)| x.clone())
                                        .or_else(|| known.get(v).cloned())
                                };
                                default
                                    .as_ref()
                                    .map(|d| dockerfile::expand(d, &seen).unwrap_or_default())
                            })
                            .or_else(|| global.get(name).cloned());
                        if let Some(v) = value {
                            args.insert(name.clone(), v);
                        }
                    }
                    state.key = hash(&[
                        &state.key,
                        &format!("{:?}", step.kind),
                        &format!("{args:?}"),
                    ]);
                }
                StepKind::Run(cmd) => {
                    // Build args reach RUN as variables (ENV of the same name wins), and
                    // are part of its cache key, as Docker keys them.
                    let mut run_env: Vec<(String, String)> = args
                        .iter()
                        .filter(|(k, _)| !env.iter().any(|(e, _)| e == *k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    for p in PREDEFINED_ARGS {
                        if let Some(v) = self.opts.build_args.get(*p) {
                            run_env.push((p.to_string(), v.clone()));
                        }
                    }
                    let argv = cmd.argv(&state.shell);
                    let key = hash(&[
                        &state.key,
                        "RUN",
                        &serde_json::to_string(&argv).unwrap_or_default(),
                        &format!("{run_env:?}"),
                    ]);
                    if !self.cached_step(&mut state, &key) {
                        let layer = self.run(&state, &argv, &run_env, step, n)?;
                        self.add_layer(&mut state, layer, &step.text);
                        state.key = key;
                        self.save_cache(&state);
                    }
                }
                StepKind::Copy(c) => {
                    let plan = self.plan_copy(&state, c, &vars).map_err(err)?;
                    let key = hash(&[&state.key, &step.text, &plan.digest]);
                    if !self.cached_step(&mut state, &key) {
                        let layer = self.write_copy(&plan).map_err(err)?;
                        self.add_layer(&mut state, layer, &step.text);
                        state.key = key;
                        self.save_cache(&state);
                    }
                }
                other => {
                    // Keyed by what the instruction reads, so a cached one keeps its
                    // history's time (and the image its digest).
                    let key = hash(&[&state.key, &format!("{other:?}"), &format!("{args:?}")]);
                    if !self.cached_step(&mut state, &key) {
                        config_step(&mut state, other, &vars, cmd_set).map_err(err)?;
                        // WORKDIR makes its directory when the image lacks it.
                        let made = match other {
                            StepKind::Workdir(_) => self.workdir_layer(&state).map_err(err)?,
                            _ => None,
                        };
                        match made {
                            Some(layer) => self.add_layer(&mut state, layer, &step.text),
                            None => self.add_history(&mut state, &step.text, true),
                        }
                        state.key = key;
                        self.save_cache(&state);
                    }
                    if matches!(other, StepKind::Cmd(_)) {
                        cmd_set = true;
                    }
                }
            }
        }
        Ok(state)
    }

    /// The state a stage starts from.
    fn base(&mut self, base: &str, platform: Option<&PlatformSpec>) -> Result<State, BuildError> {
        let os_arch = platform.cloned().unwrap_or_else(PlatformSpec::host);
        if base == "scratch" {
            return Ok(State {
                layers: Vec::new(),
                config: ImageConfig {
                    architecture: os_arch.architecture.clone(),
                    os: os_arch.os.clone(),
                    variant: os_arch.variant.clone(),
                    rootfs: Some(RootFs {
                        kind: "layers".into(),
                        diff_ids: Vec::new(),
                    }),
                    ..ImageConfig::default()
                },
                history: Vec::new(),
                shell: default_shell(),
                key: hash(&["scratch", &os_arch.to_string(), &self.time_key()]),
                wasm: false,
            });
        }
        let lower = base.to_ascii_lowercase();
        if let Some((_, s)) = self
            .stages
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(&lower))
        {
            return Ok(s.clone());
        }
        let resolved = self.image(base, platform)?;
        let mut config = resolved.config.clone();
        let history = self.history_of(&resolved);
        let diff_ids = config.diff_ids().to_vec();
        let tar_layers: Vec<&Descriptor> = resolved
            .manifest
            .layers()
            .iter()
            .filter(|l| media::is_tar_layer(l.media_type().as_ref()))
            .collect();
        if tar_layers.len() != diff_ids.len() {
            return Err(BuildError::Invalid(format!(
                "{base}: not an image of filesystem layers (a wasm artifact cannot be built on)"
            )));
        }
        let layers = tar_layers
            .into_iter()
            .zip(diff_ids)
            .map(|(d, diff_id)| Layer {
                descriptor: d.clone(),
                diff_id,
            })
            .collect();
        config.created = None;
        Ok(State {
            layers,
            config,
            history,
            shell: default_shell(),
            key: hash(&[resolved.manifest_desc.digest().as_ref(), &self.time_key()]),
            wasm: false,
        })
    }

    fn history_of(
        &self,
        resolved: &crate::image::resolved::ResolvedImage,
    ) -> Vec<serde_json::Value> {
        let Ok(bytes) =
            self.store
                .read_blob_capped(resolved.manifest.config(), "image config", 4 << 20)
        else {
            return Vec::new();
        };
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("history").and_then(|h| h.as_array().cloned()))
            .unwrap_or_default()
    }

    /// An image from the store, pulled as `--pull` says.
    fn image(
        &mut self,
        name: &str,
        platform: Option<&PlatformSpec>,
    ) -> Result<crate::image::resolved::ResolvedImage, BuildError> {
        let found = self.store.resolve(name);
        let pull = match self.opts.pull {
            PullPolicy::Always => true,
            PullPolicy::Missing => found.is_err(),
            PullPolicy::Never => false,
        };
        let record = if pull {
            let ok = crate::lifecycle::pull::pull_in_child(
                self.session,
                name,
                platform,
                &self.opts.trust,
            )?;
            if !ok {
                return Err(BuildError::Invalid(format!("pulling {name} failed")));
            }
            self.store.resolve(name)?
        } else {
            found.map_err(|e| BuildError::Invalid(format!("{e} (and --pull never)")))?
        };
        Ok(crate::image::resolved::ResolvedImage::new(
            &self.store,
            record,
            platform,
        )?)
    }

    fn cached_step(&mut self, state: &mut State, key: &str) -> bool {
        if self.opts.no_cache {
            return false;
        }
        let path = self.cache_dir().join(key);
        let Ok(bytes) = std::fs::read(&path) else {
            return false;
        };
        let Ok(cached) = serde_json::from_slice::<State>(&bytes) else {
            return false;
        };
        if !cached
            .layers
            .iter()
            .all(|l| self.store.has_blob(&l.descriptor))
        {
            return false;
        }
        *state = cached;
        self.cached += 1;
        self.events.progress("--> Using cache");
        true
    }

    fn save_cache(&self, state: &State) {
        let dir = self.cache_dir();
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(bytes) = serde_json::to_vec(state) {
            let _ = crate::sys::write_atomic(
                None,
                &dir.join(&state.key),
                &bytes,
                crate::sys::Durability::Unsynced,
            );
        }
    }

    fn cache_dir(&self) -> PathBuf {
        self.store.data_root().join("build-cache")
    }

    /// What of the build's time is in every key: the fixed timestamp, if any (a build
    /// without one must not lend its layers, which hold real times, to one with).
    fn time_key(&self) -> String {
        format!("timestamp {:?}", self.opts.timestamp)
    }

    fn now(&self) -> String {
        let t = match self.opts.timestamp {
            Some(s) => chrono::DateTime::from_timestamp(s as i64, 0).unwrap_or_default(),
            None => chrono::Utc::now(),
        };
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn add_history(&self, state: &mut State, text: &str, empty: bool) {
        let mut h = serde_json::json!({
            "created": self.now(),
            "created_by": text,
            "comment": "wharf build",
        });
        if empty {
            h["empty_layer"] = serde_json::json!(true);
        }
        state.history.push(h);
    }

    fn add_layer(&self, state: &mut State, layer: Layer, text: &str) {
        state
            .config
            .rootfs
            .get_or_insert_with(|| RootFs {
                kind: "layers".into(),
                diff_ids: Vec::new(),
            })
            .diff_ids
            .push(layer.diff_id.clone());
        state.layers.push(layer);
        self.add_history(state, text, false);
    }

    /// A final image whose entrypoint is a wasm module (`FROM scratch`, `COPY app.wasm`,
    /// `ENTRYPOINT ["/app.wasm"]`) made a wasm image of the compat shape crun and wharf
    /// read: platform `wasip1/wasm` or `wasip2/wasm`, and the manifest annotated
    /// `module.wasm.image/variant=compat`.
    fn wasm_shape(&self, state: &mut State) -> Result<(), BuildError> {
        let rc = state.config.config.clone().unwrap_or_default();
        let Some(entry) = rc
            .entrypoint
            .as_ref()
            .filter(|e| !e.is_empty())
            .or(rc.cmd.as_ref())
            .and_then(|v| v.first().cloned())
        else {
            return Ok(());
        };
        if state.layers.is_empty() {
            return Ok(());
        }
        let (_, dirs) = self.layer_dirs(state)?;
        let mut head = Vec::new();
        if let Some(f) = open_in_layers(&dirs, &entry) {
            let _ = std::io::Read::read_to_end(&mut std::io::Read::take(f, 8), &mut head);
        }
        let Some(kind) = crate::image::package::WasmKind::detect(&head) else {
            return Ok(());
        };
        state.config.os = kind.os().to_string();
        state.config.architecture = "wasm".into();
        state.config.variant = None;
        state.wasm = true;
        Ok(())
    }

    /// `--platform wasip1|wasip2` and a wasm final stage: the module packaged as the CNCF
    /// Wasm OCI artifact `wharf package` makes (its entrypoint's file, its cmd and env),
    /// tagged with every `-t`.
    fn wasm_artifact(&self, state: &State) -> Result<Built, BuildError> {
        let Some(first) = self.opts.tags.first() else {
            return Err(BuildError::Invalid(
                "--platform of a wasm artifact: name it with -t".into(),
            ));
        };
        let rc = state.config.config.clone().unwrap_or_default();
        let mut argv: Vec<String> = rc
            .entrypoint
            .clone()
            .filter(|e| !e.is_empty())
            .unwrap_or_default();
        argv.extend(rc.cmd.clone().unwrap_or_default());
        let entry = argv.first().cloned().unwrap_or_default();
        let (_, dirs) = self.layer_dirs(state)?;
        let mut bytes = Vec::new();
        if let Some(f) = open_in_layers(&dirs, &entry) {
            std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 30), &mut bytes)
                .map_err(|e| BuildError::Invalid(format!("reading {entry}: {e}")))?;
        }
        let opts = crate::image::package::PackageOptions {
            compat: false,
            cmd: (argv.len() > 1).then(|| argv[1..].to_vec()),
            env: rc.env.clone().unwrap_or_default(),
            created: self.opts.timestamp.map(|_| self.now()),
        };
        let made = crate::image::package::package(&self.store, &bytes, first, &opts)
            .map_err(|e| BuildError::Invalid(format!("packaging {entry}: {e}")))?;
        for tag in &self.opts.tags[1..] {
            self.store.tag(&made.digest, tag)?;
        }
        Ok(Built {
            digest: made.digest,
            steps: self.total,
            cached: self.cached,
        })
    }

    /// `state` as an image in the store (config and manifest blobs; not in the index).
    fn materialize(&self, state: &State) -> Result<Descriptor, BuildError> {
        let mut config = serde_json::to_value(&state.config).expect("a config serialises");
        let created = state
            .history
            .last()
            .and_then(|h| h.get("created").cloned())
            .unwrap_or_else(|| serde_json::json!(self.now()));
        config["created"] = created;
        config["history"] = serde_json::Value::Array(state.history.clone());
        let config_desc = self.store.put_blob(
            media::OCI_CONFIG,
            &serde_json::to_vec(&config).expect("serialises"),
        )?;
        let layers: Vec<&Descriptor> = state.layers.iter().map(|l| &l.descriptor).collect();
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": config_desc,
            "layers": layers,
        });
        if state.wasm {
            manifest["annotations"] =
                serde_json::json!({ media::ANNOTATION_WASM_VARIANT: "compat" });
        }
        Ok(self.store.put_blob(
            media::OCI_MANIFEST,
            &serde_json::to_vec(&manifest).expect("serialises"),
        )?)
    }

    /// The unpacked layers of `state`, top first.
    fn layer_dirs(&self, state: &State) -> Result<(Descriptor, Vec<unpack::LayerDir>), BuildError> {
        let desc = self.materialize(state)?;
        let manifest = match crate::image::content::read_manifest(&self.store, &desc)? {
            crate::image::content::Manifest::Image(m) => *m,
            crate::image::content::Manifest::Index(_) => unreachable!("a manifest was written"),
        };
        let opts =
            unpack::UnpackOptions::from_env().map_err(|e| BuildError::Invalid(e.to_string()))?;
        let dirs = unpack::ensure_layers(&self.store, &manifest, &state.config, &opts)
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
        Ok((desc, dirs))
    }

    /// COPY/ADD: what it reads and where it goes, and a digest of all of it (the step's
    /// cache key: nothing is written for a step the cache has).
    fn plan_copy(
        &mut self,
        state: &State,
        c: &CopyStep,
        vars: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CopyPlan, String> {
        let what = if c.add { "ADD" } else { "COPY" };
        let dest_raw = dockerfile::expand(&c.dest, vars)?;
        let workdir = state.workdir();
        let dest_abs = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{dest_raw}", workdir.trim_end_matches('/'))
        };
        let dir_syntax = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
        let dest_comps: Vec<std::ffi::OsString> = dest_abs
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .map(std::ffi::OsString::from)
            .collect();
        let lower = self.layer_dirs(state).map_err(|e| e.to_string())?.1;
        // The destination as the image resolves it: its parents' symlinks followed inside
        // the image (`/bin -> usr/bin`), so a copy lands in the directory the link names
        // rather than shadowing the link; the last name too when it links to a directory.
        let mut dest: PathBuf = resolve_in_layers(&lower, &dest_comps, false)
            .into_iter()
            .collect();
        if let Some(Lower::Link(_)) = lower_entry(&lower, &dest) {
            let followed: PathBuf = resolve_in_layers(&lower, &dest_comps, true)
                .into_iter()
                .collect();
            if matches!(lower_entry(&lower, &followed), Some(Lower::Dir)) {
                dest = followed;
            }
        }
        let from_context = c.from.is_none();
        // Files from the context are root's unless --chown says otherwise (Docker's rule);
        // another stage's keep their owners.
        let owner = match &c.chown {
            Some(spec) => Some(chown(&dockerfile::expand(spec, vars)?, &lower)?),
            None if from_context => Some((0, 0)),
            None => None,
        };
        let mode = match &c.chmod {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| format!("--chmod={m}: not an octal mode"))?,
            ),
            None => None,
        };
        let root = match &c.from {
            None => self.context.try_clone().map_err(|e| e.to_string())?,
            Some(from) => {
                let from = dockerfile::expand(from, vars)?;
                self.root_of(&from).map_err(|e| e.to_string())?
            }
        };
        let ignore = from_context.then_some(&self.ignore);
        let mut found: Vec<Found> = Vec::new();
        let mut sources = 0;
        for s in &c.sources {
            let s = dockerfile::expand(s, vars)?;
            if c.add
                && (s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@"))
            {
                return Err(format!(
                    "ADD {s}: remote sources are not supported by wharf build; download in a RUN step or beforehand"
                ));
            }
            let mut f = context::find(&root, &s, ignore).map_err(|e| format!("{what} {e}"))?;
            sources += f.len();
            found.append(&mut f);
        }
        if sources > 1 && !dir_syntax {
            return Err(format!(
                "{what} with more than one source needs a destination ending in /"
            ));
        }
        let dest_is_dir = matches!(lower_entry(&lower, &dest), Some(Lower::Dir));
        let into_dir = dir_syntax || sources > 1 || dest_is_dir;
        let mut plan = CopyPlan {
            add: c.add,
            found,
            dest,
            into_dir,
            overrides: Overrides { owner, mode },
            from_context,
            exists: Vec::new(),
            digest: String::new(),
        };
        // Which of the destination's parents the image has already.
        let mut at = PathBuf::new();
        for comp in plan.dest.components() {
            at.push(comp);
            if lower_entry(&lower, &at).is_some() {
                plan.exists.push(at.clone());
            }
        }
        plan.digest = content_digest(&plan, ignore);
        Ok(plan)
    }

    /// The layer a COPY/ADD plan makes.
    fn write_copy(&self, plan: &CopyPlan) -> Result<Layer, String> {
        let what = if plan.add { "ADD" } else { "COPY" };
        let io = |e: std::io::Error| format!("{what}: {e}");
        let mut w =
            LayerWriter::new(&self.store, self.opts.timestamp).map_err(|e| e.to_string())?;
        let exists = |p: &Path| plan.exists.iter().any(|e| e == p);
        let dest = &plan.dest;
        let ignore = plan.from_context.then_some(&self.ignore);
        if plan.into_dir || plan.found.iter().any(|f| f.meta.is_dir()) {
            context::parents(&mut w, &dest.join("x"), &exists).map_err(io)?;
            if !exists(dest) && !dest.as_os_str().is_empty() {
                let (uid, gid) = plan.overrides.owner.unwrap_or((0, 0));
                w.dir(
                    dest,
                    layer::Meta {
                        mode: 0o755,
                        uid,
                        gid,
                        mtime: 0,
                    },
                )
                .map_err(io)?;
            }
        } else {
            context::parents(&mut w, dest, &exists).map_err(io)?;
        }
        for f in &plan.found {
            let target = if !f.meta.is_dir() && plan.into_dir {
                dest.join(Path::new(&f.rel).file_name().unwrap_or_default())
            } else {
                dest.clone()
            };
            if plan.add && f.meta.is_file() && add_archive(&mut w, f, dest).map_err(io)? {
                continue;
            }
            context::copy_into(&mut w, f, &target, plan.overrides, ignore).map_err(io)?;
        }
        w.finish(&self.store).map_err(|e| e.to_string())
    }

    /// WORKDIR's directory as a layer, when the image does not have it (root's, 0755, and
    /// its missing parents); `None` when it is there.
    fn workdir_layer(&self, state: &State) -> Result<Option<Layer>, String> {
        let wd = state.workdir();
        let comps: Vec<std::ffi::OsString> = wd
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .map(std::ffi::OsString::from)
            .collect();
        if comps.is_empty() {
            return Ok(None);
        }
        let lower = self.layer_dirs(state).map_err(|e| e.to_string())?.1;
        let dest: PathBuf = resolve_in_layers(&lower, &comps, true)
            .into_iter()
            .collect();
        if lower_entry(&lower, &dest).is_some() {
            return Ok(None);
        }
        let mut w =
            LayerWriter::new(&self.store, self.opts.timestamp).map_err(|e| e.to_string())?;
        let exists = |p: &Path| lower_entry(&lower, p).is_some();
        let io = |e: std::io::Error| format!("WORKDIR: {e}");
        context::parents(&mut w, &dest, &exists).map_err(io)?;
        let m = layer::Meta {
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
        };
        w.dir(&dest, m).map_err(io)?;
        w.finish(&self.store).map(Some).map_err(|e| e.to_string())
    }

    /// The merged files of stage or image `from`, read-only.
    fn root_of(&mut self, from: &str) -> Result<Dir, BuildError> {
        let lower = from.to_ascii_lowercase();
        let state = match self
            .stages
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(&lower))
        {
            Some((_, s)) => s.clone(),
            None => match from.parse::<usize>() {
                Ok(i) if i < self.stages.len() => self.stages[i].1.clone(),
                _ => self.base(from, self.opts.platform.clone().as_ref())?,
            },
        };
        let (desc, dirs) = self.layer_dirs(&state)?;
        let path = if dirs.is_empty() {
            let empty = self.store.data_root().join("build-cache").join("empty");
            std::fs::create_dir_all(&empty).map_err(|e| BuildError::Invalid(e.to_string()))?;
            empty
        } else {
            unpack::image_rootfs(&self.store, desc.digest(), &dirs)
                .map_err(|e| BuildError::Invalid(e.to_string()))?
        };
        Dir::open_ambient_dir(&path, cap_std::ambient_authority())
            .map_err(|e| BuildError::Invalid(format!("{}: {e}", path.display())))
    }

    /// RUN: `argv` as a native container on `state`, its upper directory as the layer.
    fn run(
        &mut self,
        state: &State,
        argv: &[String],
        env: &[(String, String)],
        step: &Step,
        n: usize,
    ) -> Result<Layer, BuildError> {
        let fail = |why: String| BuildError::Step {
            step: n,
            line: step.line,
            text: step.text.clone(),
            why,
        };
        // The step's changes are its container's upper directory only when the image's
        // layers are stacked by overlayfs (as root); copied layers leave it empty.
        let (desc, dirs) = self.layer_dirs(state)?;
        if dirs
            .iter()
            .any(|l| l.whiteouts != unpack::WhiteoutFormat::Overlay)
        {
            return Err(fail(
                "RUN needs the image's layers stacked by overlayfs (wharf as root): these were unpacked as copies, and the step's changes could not be told apart"
                    .into(),
            ));
        }
        // Recorded (untagged) for the step's container, and forgotten after, unless the
        // store had it already (an earlier build's untagged image is not ours to drop).
        let had = self
            .store
            .images()?
            .iter()
            .any(|i| i.name.is_none() && i.digest() == desc.digest());
        if !had {
            self.store.add_image(None, &desc)?;
        }
        let result = run_step(
            self.session,
            &self.store,
            &desc,
            argv,
            env,
            (&self.opts.network, self.opts.timestamp),
            self.events,
        );
        if !had && let Err(e) = self.store.forget_untagged(desc.digest()) {
            self.events
                .warning(&format!("forgetting the step's image: {e}"));
        }
        match result {
            Ok(Ran::Layer(layer)) => Ok(*layer),
            Ok(Ran::Exited(code, message)) => Err(BuildError::Failed {
                step: n,
                line: step.line,
                text: step.text.clone(),
                code,
                detail: message.map(|m| format!(" ({m})")).unwrap_or_default(),
            }),
            Err(RunStepError::Lifecycle(e)) => Err(fail(e.to_string())),
            Err(RunStepError::Layer(e)) => Err(fail(e)),
        }
    }
}

/// What a COPY/ADD reads and where it puts it.
struct CopyPlan {
    add: bool,
    found: Vec<Found>,
    /// In the image, without a leading `/`.
    dest: PathBuf,
    into_dir: bool,
    overrides: Overrides,
    from_context: bool,
    /// The destination's parents (and itself) the image already has.
    exists: Vec<PathBuf>,
    digest: String,
}

/// How a RUN step ended: its layer, or its exit code and what wharf said of it.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum Ran {
    Layer(Box<Layer>),
    Exited(u8, Option<String>),
}

// (Off Linux RUN is refused before any lifecycle call.)
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum RunStepError {
    Lifecycle(LifecycleError),
    Layer(String),
}

/// The label on a RUN step's container.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const STEP_LABEL: &str = "io.wharf.build";

/// Step containers a killed build left behind (labelled, ended): removed. A running build's
/// step container is running, and left alone.
#[cfg(target_os = "linux")]
fn remove_stale_steps(session: &Session, events: &dyn Events) {
    let containers = session.containers();
    for r in containers.list() {
        if r.options.labels.get(STEP_LABEL).map(String::as_str) == Some("step")
            && !r.state.is_active()
            && let Err(e) = crate::lifecycle::stop::remove(&containers, &r.id, true)
        {
            events.warning(&format!(
                "removing an earlier build's step container {}: {e}",
                r.id
            ));
        }
    }
}

/// Run one RUN step in a container of image `desc`; its exit code and, when it succeeded,
/// its layer. The container is removed whatever happens.
#[cfg(target_os = "linux")]
fn run_step(
    session: &Session,
    store: &Store,
    desc: &Descriptor,
    argv: &[String],
    env: &[(String, String)],
    (network, timestamp): (&Network, Option<u64>),
    events: &dyn Events,
) -> Result<Ran, RunStepError> {
    use crate::lifecycle::CreateRequest;
    if !crate::backend::native::seal::is_protected() {
        // A foreground run would re-execute this process sealed, ending the build.
        return Err(RunStepError::Layer(
            "RUN needs this process to run from a sealed wharf: call backend::native::seal::ensure_sealed before the build".into(),
        ));
    }
    let mut options = crate::run::options::RunOptions {
        entrypoint: argv.first().cloned(),
        args: argv.iter().skip(1).cloned().collect(),
        env: env.to_vec(),
        network: network.clone(),
        ..Default::default()
    };
    options.labels.insert(STEP_LABEL.into(), "step".into());
    let req = CreateRequest {
        image: desc.digest().to_string(),
        options,
        ..Default::default()
    };
    let (record, prepared) =
        crate::lifecycle::create(session, store, req, events).map_err(RunStepError::Lifecycle)?;
    let id = record.id.clone();
    let containers = session.containers();
    let exit = crate::lifecycle::supervise(
        session,
        &containers,
        &id,
        Some((record, prepared)),
        None,
        false,
        events,
    );
    let layer = if exit.code == 0 {
        let upper = containers.dir_of(&id).join("upper");
        (|| -> Result<Layer, String> {
            let mut w = LayerWriter::new(store, timestamp).map_err(|e| e.to_string())?;
            layer::write_upper(&mut w, &upper)
                .map_err(|e| format!("reading the step's changes: {e}"))?;
            w.finish(store).map_err(|e| e.to_string())
        })()
    } else {
        Err(exit.message.clone().unwrap_or_default())
    };
    if let Err(e) = crate::lifecycle::stop::remove(&containers, &id, true) {
        events.warning(&format!("removing the step's container {id}: {e}"));
    }
    match layer {
        Ok(l) => Ok(Ran::Layer(Box::new(l))),
        Err(_) if exit.code != 0 => Ok(Ran::Exited(exit.code, exit.message)),
        Err(e) => Err(RunStepError::Layer(e)),
    }
}

#[cfg(not(target_os = "linux"))]
fn run_step(
    _: &Session,
    _: &Store,
    _: &Descriptor,
    _: &[String],
    _: &[(String, String)],
    _: (&Network, Option<u64>),
    _: &dyn Events,
) -> Result<Ran, RunStepError> {
    Err(RunStepError::Layer(
        "RUN needs wharf's native backend, which runs on Linux only; a Dockerfile without RUN builds here".into(),
    ))
}

/// What the image has at a path.
enum Lower {
    Dir,
    Link(PathBuf),
    Other,
}

/// What the layers (lowest first) hold at `path` (its parents resolved already): the
/// topmost layer with an entry for it decides; a whiteout there means nothing is. Looked
/// up on directory handles, following nothing.
fn lower_entry(layers: &[unpack::LayerDir], path: &Path) -> Option<Lower> {
    if path.as_os_str().is_empty() {
        return Some(Lower::Dir);
    }
    let comps: Vec<_> = path
        .components()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let (last, parents) = comps.split_last()?;
    'layers: for l in layers.iter().rev() {
        let Ok(mut dir) = Dir::open_ambient_dir(&l.root, cap_std::ambient_authority()) else {
            continue;
        };
        for c in parents {
            match crate::sys::open_dir_nofollow(&dir, c) {
                Ok(d) => dir = d,
                Err(_) => continue 'layers,
            }
        }
        if let Ok(m) = dir.symlink_metadata(last) {
            if crate::sys::is_whiteout(&m) {
                return None;
            }
            if m.file_type().is_symlink() {
                return crate::sys::read_link(&dir, last).ok().map(Lower::Link);
            }
            return Some(if m.is_dir() { Lower::Dir } else { Lower::Other });
        }
    }
    None
}

/// `comps` resolved in the image as a container would: symlinks among the parents (and
/// the last name with `follow_last`) followed, absolute ones from the image's root, `..`
/// never above it. At most 40 links.
fn resolve_in_layers(
    layers: &[unpack::LayerDir],
    comps: &[std::ffi::OsString],
    follow_last: bool,
) -> Vec<std::ffi::OsString> {
    use std::collections::VecDeque;
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: VecDeque<std::ffi::OsString> = comps.iter().cloned().collect();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            out.pop();
            continue;
        }
        if c == "." || c.is_empty() {
            continue;
        }
        out.push(c);
        if pending.is_empty() && !follow_last {
            break;
        }
        let here: PathBuf = out.iter().collect();
        if let Some(Lower::Link(target)) = lower_entry(layers, &here) {
            links += 1;
            if links > 40 {
                break;
            }
            out.pop();
            if target.has_root() {
                out.clear();
            }
            let parts: Vec<std::ffi::OsString> = target
                .components()
                .filter_map(|p| match p {
                    std::path::Component::Normal(n) => Some(n.to_os_string()),
                    std::path::Component::ParentDir => Some("..".into()),
                    _ => None,
                })
                .collect();
            for p in parts.into_iter().rev() {
                pending.push_front(p);
            }
        }
    }
    out
}

/// The regular file `path` in the topmost layer (of `layers`, lowest first) that has it,
/// resolved inside that layer's root.
fn open_in_layers(layers: &[unpack::LayerDir], path: &str) -> Option<cap_std::fs::File> {
    layers.iter().rev().find_map(|l| {
        let d = Dir::open_ambient_dir(&l.root, cap_std::ambient_authority()).ok()?;
        unpack::open_file_in_root(&d, path).ok()
    })
}

/// `--chown=USER[:GROUP]`: numbers, or names in the image's /etc/passwd and /etc/group.
/// A user without a group gets the same number as its group (as Docker gives it).
fn chown(spec: &str, layers: &[unpack::LayerDir]) -> Result<(u64, u64), String> {
    let read = |file: &str| -> String {
        let mut s = String::new();
        if let Some(f) = open_in_layers(layers, file) {
            let _ = std::io::Read::read_to_string(&mut std::io::Read::take(f, 4 << 20), &mut s);
        }
        s
    };
    let lookup = |file: &str, name: &str| -> Result<u64, String> {
        if let Ok(n) = name.parse::<u64>() {
            return Ok(n);
        }
        read(file)
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[0] == name)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| format!("--chown={spec}: no {name:?} in the image's /{file}"))
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = lookup("etc/passwd", user)?;
    let gid = match group {
        Some(g) => lookup("etc/group", g)?,
        None => uid,
    };
    Ok((uid, gid))
}

/// ADD of a local archive (plain, gzip or zstd tar): its entries unpacked into `dest`.
/// False when the file is not an archive (it is copied as it is).
fn add_archive(w: &mut LayerWriter, f: &Found, dest: &Path) -> std::io::Result<bool> {
    let mut file = crate::lifecycle::copy::open_regular(&f.parent, &f.name)?;
    let mut magic = [0u8; 4];
    let n = read_full(&mut file, &mut magic)?;
    let file = crate::lifecycle::copy::open_regular(&f.parent, &f.name)?.into_std();
    let mut reader: Box<dyn std::io::Read> = if magic[..n].starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(file))
    } else if magic[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(file)?)
    } else {
        Box::new(file)
    };
    // A tar archive once decompressed (its first header says `ustar`); anything else, a
    // gzip file of something else too, is copied as it is. (xz and bzip2 archives are
    // copied as they are.)
    let mut head = [0u8; 512];
    let n = match read_full(&mut reader, &mut head) {
        Ok(n) => n,
        Err(_) => return Ok(false),
    };
    if n < 262 || &head[257..262] != b"ustar" {
        return Ok(false);
    }
    let reader = std::io::Read::chain(std::io::Cursor::new(head[..n].to_vec()), reader);
    let mut archive = tar::Archive::new(reader);
    for e in archive.entries()? {
        let mut e = e?;
        let name = e.path_bytes().into_owned();
        let comps = unpack::normalize(&name).map_err(std::io::Error::other)?;
        if comps.is_empty() {
            continue;
        }
        let path: PathBuf = dest.join(comps.iter().collect::<PathBuf>());
        let h = e.header().clone();
        let m = layer::Meta {
            mode: h.mode().unwrap_or(0o644),
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            mtime: h.mtime().unwrap_or(0),
        };
        match h.entry_type() {
            tar::EntryType::Directory => w.dir(&path, m)?,
            tar::EntryType::Symlink => {
                let target = e.link_name()?.unwrap_or_default().into_owned();
                w.symlink(&path, m, &target)?
            }
            tar::EntryType::Link => {
                // A hard link to an earlier entry of the archive, under `dest` too.
                let target = e.link_name_bytes().unwrap_or_default().into_owned();
                let to = unpack::normalize(&target).map_err(std::io::Error::other)?;
                let to: PathBuf = dest.join(to.iter().collect::<PathBuf>());
                w.hard_link(&path, m, &to)?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = h.size().unwrap_or(0);
                w.file(&path, m, size, &mut e)?
            }
            // Devices and FIFOs of an archive are not made by ADD (no build needs them).
            _ => continue,
        }
    }
    Ok(true)
}

fn read_full(f: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A digest of what a COPY reads: every entry's name, type, mode, owner, link target and
/// bytes, in walk order.
fn content_digest(plan: &CopyPlan, ignore: Option<&Ignore>) -> String {
    let mut h = Sha256::new();
    h.update(plan.dest.to_string_lossy().as_bytes());
    h.update(
        format!(
            "{:?}{:?}{}{:?}",
            plan.overrides, plan.into_dir, plan.add, plan.exists
        )
        .as_bytes(),
    );
    for f in &plan.found {
        hash_entry(&mut h, &f.parent, &f.name, &f.meta, &f.rel, ignore, 0);
    }
    hex::encode(h.finalize())
}

/// One entry into `h`: its path relative to its root (`rel`), type, mode, owner, size,
/// link target or bytes, then a directory's entries (what `.dockerignore` leaves out is
/// skipped, as the copy skips it) and its end, so a file moved between directories
/// changes the digest.
fn hash_entry(
    h: &mut Sha256,
    dir: &Dir,
    name: &std::ffi::OsStr,
    m: &cap_std::fs::Metadata,
    rel: &str,
    ignore: Option<&Ignore>,
    depth: usize,
) {
    let meta = layer::meta_of(m);
    let ft = m.file_type();
    let kind = if ft.is_symlink() {
        'l'
    } else if ft.is_dir() {
        'd'
    } else if ft.is_file() {
        'f'
    } else {
        's'
    };
    h.update(
        format!(
            "\0{rel}\0{kind}\0{:o}\0{}\0{}\0{}\0",
            meta.mode,
            meta.uid,
            meta.gid,
            if ft.is_file() { m.len() } else { 0 }
        )
        .as_bytes(),
    );
    if ft.is_symlink() {
        if let Ok(t) = crate::sys::read_link(dir, name) {
            h.update(t.to_string_lossy().as_bytes());
        }
    } else if ft.is_file() {
        if let Ok(f) = crate::lifecycle::copy::open_regular(dir, name) {
            let _ = std::io::copy(&mut std::io::Read::take(f, m.len()), h);
        }
    } else if ft.is_dir() && depth < unpack::MAX_DEPTH {
        let sub = if name == "." {
            dir.try_clone()
        } else {
            crate::sys::open_dir_nofollow(dir, name)
        };
        if let Ok(sub) = sub {
            let mut names: Vec<_> = sub
                .entries()
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for n in names {
                let child = if rel.is_empty() {
                    n.to_string_lossy().into_owned()
                } else {
                    format!("{rel}/{}", n.to_string_lossy())
                };
                if ignore.is_some_and(|i| i.excluded(&child)) {
                    continue;
                }
                if let Ok(cm) = sub.symlink_metadata(&n) {
                    hash_entry(h, &sub, &n, &cm, &child, ignore, depth + 1);
                }
            }
        }
        h.update(b"\0end\0");
    }
}

/// An instruction that changes only the config.
fn config_step(
    state: &mut State,
    kind: &StepKind,
    vars: &dyn Fn(&str) -> Option<String>,
    cmd_set: bool,
) -> Result<(), String> {
    let e = |s: &str| dockerfile::expand(s, vars);
    match kind {
        StepKind::Env(raw) => {
            for (k, v) in dockerfile::pairs(raw, vars)? {
                state.set_env(&k, &v);
            }
        }
        StepKind::Label(raw) => {
            let pairs = dockerfile::pairs(raw, vars)?;
            let labels = state.run_config().labels.get_or_insert_with(BTreeMap::new);
            labels.extend(pairs);
        }
        StepKind::Workdir(w) => {
            let w = e(w)?;
            let base = state.workdir();
            let abs = if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", base.trim_end_matches('/'))
            };
            state.run_config().working_dir = Some(abs);
        }
        StepKind::User(u) => state.run_config().user = Some(e(u)?),
        StepKind::Cmd(c) => state.run_config().cmd = Some(c.argv(&state.shell.clone())),
        StepKind::Entrypoint(c) => {
            let shell = state.shell.clone();
            let rc = state.run_config();
            rc.entrypoint = Some(c.argv(&shell));
            // ENTRYPOINT resets a CMD inherited from the base image, not one this stage
            // set (BuildKit's rule).
            if !cmd_set {
                rc.cmd = None;
            }
        }
        StepKind::Expose(ports) => {
            let set = state
                .run_config()
                .exposed_ports
                .get_or_insert_with(BTreeMap::new);
            for p in ports {
                let p = e(p)?;
                let p = if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                };
                set.insert(p, serde_json::json!({}));
            }
        }
        StepKind::Volume(vols) => {
            let set = state.run_config().volumes.get_or_insert_with(BTreeMap::new);
            for v in vols {
                set.insert(e(v)?, serde_json::json!({}));
            }
        }
        StepKind::StopSignal(s) => {
            let s = e(s)?;
            if crate::sys::parse_signal(&s).is_none() {
                return Err(format!("STOPSIGNAL {s}: not a signal"));
            }
            state.run_config().stop_signal = Some(s);
        }
        StepKind::Shell(sh) => {
            if sh.is_empty() {
                return Err("SHELL needs a JSON list: [\"executable\", \"parameters\"]".into());
            }
            state.shell = sh.clone();
        }
        StepKind::Maintainer(m) => state.config.author = Some(m.clone()),
        StepKind::Healthcheck(h) => {
            let v = match h {
                None => serde_json::json!({ "Test": ["NONE"] }),
                Some((test, opts)) => {
                    let mut v = serde_json::json!({ "Test": test });
                    for (k, val) in opts {
                        let field = match k.as_str() {
                            "interval" => "Interval",
                            "timeout" => "Timeout",
                            "start-period" => "StartPeriod",
                            "start-interval" => "StartInterval",
                            _ => "Retries",
                        };
                        if field == "Retries" {
                            let n: u64 = val
                                .parse()
                                .map_err(|_| format!("--retries={val}: not a number"))?;
                            v[field] = serde_json::json!(n);
                        } else {
                            let d = crate::run::options::parse_duration(val)
                                .map_err(|e| e.to_string())?;
                            v[field] = serde_json::json!(d.as_nanos() as u64);
                        }
                    }
                    v
                }
            };
            state.run_config().healthcheck = Some(v);
        }
        StepKind::Run(_) | StepKind::Copy(_) | StepKind::Arg(_) => unreachable!("not config-only"),
    }
    Ok(())
}
