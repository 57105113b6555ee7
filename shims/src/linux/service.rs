//! The task service: containerd's task API v2, each RPC a call (or a few) of `wharf-runtime`.
//!
//! Exits come from the crate's reaper (the shim is the subreaper of every container process):
//! one thread follows them, records the exit, and publishes TaskOOM/TaskExit. A lifecycle
//! lock orders them after the TaskStart/TaskExecStarted of the same process, and a process
//! whose pid is not yet known when it exits (an exec that ends at once) is matched once it is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex};

use containerd_shim::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, ExecProcessRequest, KillRequest, Options, PauseRequest,
    PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest, StartRequest,
    StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse, Status,
    UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim::monitor::{Subject, Topic, monitor_subscribe};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{Message, MessageDyn, MessageField};
use containerd_shim::protos::shim::oci::ProcessDetails;
use containerd_shim::protos::topics;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::protos::types::empty::Empty;
use containerd_shim::protos::types::task::ProcessInfo;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Context, ExitSignal, Task, TtrpcContext, TtrpcResult};

use super::runtime::{self, Runtime, RuntimeError};
use super::stdio::{self, Io, Paths};
use super::{rootfs, timestamp};

type Event = (&'static str, Box<dyn MessageDyn>);

/// An exit, once known.
#[derive(Default)]
struct ExitCell {
    exit: Mutex<Option<(u32, Timestamp)>>,
    cv: Condvar,
}

impl ExitCell {
    fn set(&self, code: u32, at: Timestamp) {
        *self.exit.lock().unwrap() = Some((code, at));
        self.cv.notify_all();
    }

    fn wait(&self) -> (u32, Timestamp) {
        let mut g = self.exit.lock().unwrap();
        loop {
            if let Some(e) = g.as_ref() {
                return e.clone();
            }
            g = self.cv.wait(g).unwrap();
        }
    }

    fn get(&self) -> Option<(u32, Timestamp)> {
        self.exit.lock().unwrap().clone()
    }
}

struct Process {
    pid: u32,
    status: Status,
    paths: Paths,
    io: Io,
    exit: Arc<ExitCell>,
    /// An exec's process JSON (runtime-spec Process), written for `wharf-runtime exec`.
    spec: Option<PathBuf>,
}

impl Process {
    fn new(paths: Paths) -> Process {
        Process {
            pid: 0,
            status: Status::CREATED,
            paths,
            io: Io::default(),
            exit: Arc::default(),
            spec: None,
        }
    }
}

struct Container {
    bundle: PathBuf,
    runtime: Runtime,
    /// Where the shim mounted the rootfs containerd handed it (unmounted on delete).
    mounted: Option<PathBuf>,
    /// The container joins another's pid namespace (a CRI pod sharing one): when its first
    /// process ends, the rest do not end with it.
    shared_pid_ns: bool,
    /// TaskOOM events published while it ran (the exit check adds one only if none was).
    ooms: Arc<std::sync::atomic::AtomicU64>,
    init: Process,
    execs: HashMap<String, Process>,
}

impl Container {
    fn process(&mut self, exec_id: &str) -> TtrpcResult<&mut Process> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| status(Code::NOT_FOUND, format!("exec {exec_id} not found")))
    }
}

/// The shim's containers (one, or every container of a pod).
pub struct Service {
    namespace: String,
    exit: Arc<ExitSignal>,
    events: Mutex<Sender<Event>>,
    containers: Arc<Mutex<HashMap<String, Container>>>,
    /// Held while a process starts and its start is published; exits wait for it.
    lifecycle: Arc<Mutex<()>>,
}

fn status(code: Code, msg: impl ToString) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg))
}

fn runtime_error(e: RuntimeError) -> ttrpc::Error {
    status(Code::UNKNOWN, e)
}

/// A kill that found nothing to signal is NotFound, as runc's shim maps "not running"
/// and ESRCH: containerd tolerates only that when it stops a pod whose container has just
/// exited (anything else fails StopPodSandbox and leaves the pod and its shim).
fn kill_error(e: RuntimeError) -> ttrpc::Error {
    let text = e.to_string();
    let gone = [
        "there is no process to signal",
        "does not exist",
        "not running",
        "no such process",
    ];
    if gone.iter().any(|g| text.to_lowercase().contains(g)) {
        return status(Code::NOT_FOUND, format!("process already finished: {text}"));
    }
    runtime_error(e)
}

fn not_found(id: &str) -> ttrpc::Error {
    status(Code::NOT_FOUND, format!("container {id} not found"))
}

/// containerd checks identifiers the same way; the shim makes files from them.
fn check_id(what: &str, id: &str) -> TtrpcResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 76
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(status(
            Code::INVALID_ARGUMENT,
            format!("{what} {id:?} is not a valid identifier"),
        ))
    }
}

impl Service {
    pub fn new(namespace: String, exit: Arc<ExitSignal>, publisher: RemotePublisher) -> Service {
        let (tx, rx) = channel::<Event>();
        let ns = namespace.clone();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                for (topic, event) in rx {
                    if let Err(e) = publisher.publish(Context::default(), topic, &ns, event) {
                        log::error!("publishing {topic}: {e}");
                    }
                }
            })
            .expect("the events thread starts");
        let service = Service {
            namespace,
            exit,
            events: Mutex::new(tx),
            containers: Arc::default(),
            lifecycle: Arc::default(),
        };
        service.follow_exits();
        service
    }

    fn publish(&self, topic: &'static str, event: Box<dyn MessageDyn>) {
        let _ = self.events.lock().unwrap().send((topic, event));
    }

    /// The thread that turns reaped pids into exits of the processes the shim knows.
    fn follow_exits(&self) {
        let subscription = monitor_subscribe(Topic::Pid).expect("the monitor subscribes");
        let containers = self.containers.clone();
        let lifecycle = self.lifecycle.clone();
        let events = self.events.lock().unwrap().clone();
        std::thread::Builder::new()
            .name("exits".into())
            .spawn(move || {
                for e in subscription.rx.iter() {
                    let Subject::Pid(pid) = e.subject else {
                        continue;
                    };
                    let code = e.exit_code as u32;
                    let at = timestamp();
                    // A process being started is recorded before this lock is free.
                    let found = {
                        let _l = lifecycle.lock().unwrap();
                        let mut all = containers.lock().unwrap();
                        all.iter_mut().find_map(|(id, c)| {
                            let runtime = c.runtime.clone();
                            let shared = c.shared_pid_ns;
                            let ooms = c.ooms.clone();
                            let (exec_id, p) = std::iter::once(("", &mut c.init))
                                .chain(c.execs.iter_mut().map(|(k, p)| (k.as_str(), p)))
                                .find(|(_, p)| p.pid == pid as u32 && p.exit.get().is_none())?;
                            p.status = Status::STOPPED;
                            Some((
                                id.clone(),
                                exec_id.to_owned(),
                                p.exit.clone(),
                                runtime,
                                shared,
                                ooms,
                            ))
                        })
                    };
                    let Some((id, exec_id, cell, runtime, shared, ooms)) = found else {
                        continue;
                    };
                    if exec_id.is_empty() {
                        // An OOM kill the live watch did not report (cgroup v2, or a kill
                        // that raced the exit).
                        if ooms.load(std::sync::atomic::Ordering::SeqCst) == 0
                            && let Ok(stats) = runtime.stats(&id)
                            && super::metrics::oom_kills(&stats) > 0
                        {
                            let _ = events.send((
                                topics::TASK_OOM_EVENT_TOPIC,
                                Box::new(TaskOOM {
                                    container_id: id.clone(),
                                    ..Default::default()
                                }),
                            ));
                        }
                        // In a pid namespace of its own the kernel ends the rest; in a shared
                        // one the shim does, as runc's shim does.
                        if shared {
                            let _ = runtime.kill(&id, libc::SIGKILL as u32, true);
                        }
                    }
                    let _ = events.send((
                        topics::TASK_EXIT_EVENT_TOPIC,
                        Box::new(TaskExit {
                            container_id: id.clone(),
                            id: if exec_id.is_empty() { id } else { exec_id },
                            pid: pid as u32,
                            exit_status: code,
                            exited_at: MessageField::some(at.clone()),
                            ..Default::default()
                        }),
                    ));
                    cell.set(code, at);
                }
            })
            .expect("the exits thread starts");
    }

    fn with<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Container) -> TtrpcResult<T>,
    ) -> TtrpcResult<T> {
        let mut all = self.containers.lock().unwrap();
        let c = all.get_mut(id).ok_or_else(|| not_found(id))?;
        f(c)
    }

    fn runtime_of(&self, id: &str) -> TtrpcResult<Runtime> {
        self.with(id, |c| Ok(c.runtime.clone()))
    }

    fn create_task(&self, req: &CreateTaskRequest) -> TtrpcResult<u32> {
        check_id("container id", &req.id)?;
        if !req.checkpoint.is_empty() {
            return Err(status(
                Code::UNIMPLEMENTED,
                "restoring from a checkpoint is not supported by wharf",
            ));
        }
        if self.containers.lock().unwrap().contains_key(&req.id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("container {} already exists", req.id),
            ));
        }
        let options = parse_options(req.options.as_ref())?;
        let bundle = PathBuf::from(&req.bundle);
        // For the binary's `delete` action, which is handed no options.
        if let Err(e) = bundle
            .to_str()
            .ok_or_else(|| "a bundle path that is not UTF-8".to_string())
            .and_then(|b| super::write_options(b, &options).map_err(|e| e.to_string()))
        {
            log::warn!("saving the runtime options in {}: {e}", bundle.display());
        }
        let runtime = Runtime {
            binary: runtime::find_binary(&options.binary_name),
            root: runtime::root_for(&options.root, &self.namespace),
            log: Some(bundle.join("log.json")),
        };
        let rootfs_dir = bundle.join("rootfs");
        let mounted = if req.rootfs.is_empty() {
            None
        } else {
            rootfs::mount(&req.rootfs, &rootfs_dir)
                .map_err(|e| status(Code::INTERNAL, format!("mounting the rootfs: {e}")))?;
            Some(rootfs_dir.clone())
        };
        let paths = Paths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let undo = |rt: &Runtime| {
            let _ = rt.delete(&req.id, true);
            if let Some(m) = &mounted {
                rootfs::unmount(m);
            }
        };
        let _l = self.lifecycle.lock().unwrap();
        let result = (|| {
            let mut prepared = stdio::prepare(&paths, &req.id, &self.namespace)
                .map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
            let streams = prepared.take_streams();
            let pid_file = bundle.join("init.pid");
            runtime
                .create(
                    &req.id,
                    &bundle,
                    &pid_file,
                    prepared.console_socket(),
                    streams,
                )
                .map_err(runtime_error)?;
            let io = prepared
                .finish(&req.id)
                .map_err(|e| status(Code::INTERNAL, e))?;
            let pid = read_pid(&pid_file)?;
            Ok((pid, io))
        })();
        let (pid, io) = match result {
            Ok(v) => v,
            Err(e) => {
                undo(&runtime);
                return Err(e);
            }
        };
        let mut init = Process::new(paths.clone());
        init.pid = pid;
        init.io = io;
        let ooms: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let (events, counted, cid) = (
            self.events.lock().unwrap().clone(),
            ooms.clone(),
            req.id.clone(),
        );
        if let Err(e) = super::oom::watch(pid, &req.id, move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = events.send((
                topics::TASK_OOM_EVENT_TOPIC,
                Box::new(TaskOOM {
                    container_id: cid.clone(),
                    ..Default::default()
                }),
            ));
        }) {
            log::debug!("no OOM watch for {}: {e}", req.id);
        }
        let container = Container {
            ooms,
            shared_pid_ns: shares_pid_namespace(&bundle),
            bundle: bundle.clone(),
            runtime,
            mounted,
            init,
            execs: HashMap::new(),
        };
        self.containers
            .lock()
            .unwrap()
            .insert(req.id.clone(), container);
        self.publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: paths.stdin,
                    stdout: paths.stdout,
                    stderr: paths.stderr,
                    terminal: paths.terminal,
                    ..Default::default()
                }),
                pid,
                ..Default::default()
            }),
        );
        Ok(pid)
    }

    fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<u32> {
        let (runtime, bundle, paths, spec) = self.with(id, |c| {
            let (runtime, bundle) = (c.runtime.clone(), c.bundle.clone());
            let p = c.process(exec_id)?;
            if p.status != Status::CREATED {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("exec {exec_id} was started already"),
                ));
            }
            Ok((
                runtime,
                bundle,
                p.paths.clone(),
                p.spec.clone().expect("an exec has its spec"),
            ))
        })?;
        let pid_file = bundle.join(format!("{exec_id}.pid"));
        let _l = self.lifecycle.lock().unwrap();
        let result = (|| {
            let mut prepared = stdio::prepare(&paths, exec_id, &self.namespace)
                .map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
            let streams = prepared.take_streams();
            runtime
                .exec(id, &spec, &pid_file, prepared.console_socket(), streams)
                .map_err(runtime_error)?;
            let io = prepared
                .finish(exec_id)
                .map_err(|e| status(Code::INTERNAL, e))?;
            read_pid(&pid_file).map(|pid| (pid, io))
        })();
        let _ = std::fs::remove_file(&pid_file);
        let (pid, io) = result?;
        self.with(id, |c| {
            let p = c.process(exec_id)?;
            p.pid = pid;
            p.io = io;
            p.status = Status::RUNNING;
            Ok(())
        })?;
        self.publish(
            topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            Box::new(TaskExecStarted {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
                pid,
                ..Default::default()
            }),
        );
        Ok(pid)
    }

    fn delete_task(&self, id: &str) -> TtrpcResult<DeleteResponse> {
        let (runtime, pid, exit) = self.with(id, |c| {
            if c.init.status == Status::RUNNING || c.init.status == Status::PAUSED {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("container {id} must be stopped before it is deleted"),
                ));
            }
            Ok((c.runtime.clone(), c.init.pid, c.init.exit.clone()))
        })?;
        runtime.delete(id, true).map_err(runtime_error)?;
        let Some(mut c) = self.containers.lock().unwrap().remove(id) else {
            return Err(not_found(id));
        };
        c.init.io.release();
        for p in c.execs.values_mut() {
            p.io.release();
            if let Some(s) = &p.spec {
                let _ = std::fs::remove_file(s);
            }
        }
        if let Some(m) = &c.mounted {
            rootfs::unmount(m);
        }
        let (code, at) = exit.get().unwrap_or((0, timestamp()));
        self.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: id.to_owned(),
                id: id.to_owned(),
                pid,
                exit_status: code,
                exited_at: MessageField::some(at.clone()),
                ..Default::default()
            }),
        );
        Ok(DeleteResponse {
            pid,
            exit_status: code,
            exited_at: MessageField::some(at),
            ..Default::default()
        })
    }
}

fn read_pid(path: &Path) -> TtrpcResult<u32> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            status(
                Code::INTERNAL,
                format!("the runtime wrote no pid to {}", path.display()),
            )
        })
}

fn parse_options(any: Option<&Any>) -> TtrpcResult<Options> {
    let Some(any) = any else {
        return Ok(Options::default());
    };
    if any.type_url.ends_with("containerd.runc.v1.Options") {
        return Options::parse_from_bytes(&any.value).map_err(|e| {
            status(
                Code::INVALID_ARGUMENT,
                format!("the runtime options do not decode: {e}"),
            )
        });
    }
    // CRI's runtimeoptions.v1.Options (a config path) and anything else: nothing for wharf.
    Ok(Options::default())
}

/// Whether config.json puts the container in an existing pid namespace.
fn shares_pid_namespace(bundle: &Path) -> bool {
    let Ok(data) = std::fs::read(bundle.join("config.json")) else {
        return false;
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&data) else {
        return false;
    };
    spec["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|ns| ns["type"] == "pid" && ns["path"].as_str().is_some_and(|p| !p.is_empty()))
}

impl Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        let pid = self.create_task(&req)?;
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        if !req.exec_id.is_empty() {
            let pid = self.start_exec(&req.id, &req.exec_id)?;
            return Ok(StartResponse {
                pid,
                ..Default::default()
            });
        }
        let (runtime, pid) = self.with(&req.id, |c| {
            if c.init.status != Status::CREATED {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("container {} was started already", req.id),
                ));
            }
            Ok((c.runtime.clone(), c.init.pid))
        })?;
        let _l = self.lifecycle.lock().unwrap();
        runtime.start(&req.id).map_err(runtime_error)?;
        self.with(&req.id, |c| {
            if c.init.exit.get().is_none() {
                c.init.status = Status::RUNNING;
            }
            Ok(())
        })?;
        self.publish(
            topics::TASK_START_EVENT_TOPIC,
            Box::new(TaskStart {
                container_id: req.id.clone(),
                pid,
                ..Default::default()
            }),
        );
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        if req.exec_id.is_empty() {
            return self.delete_task(&req.id);
        }
        let mut p = self.with(&req.id, |c| {
            let p = c.process(&req.exec_id)?;
            if p.status == Status::RUNNING {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("exec {} is still running", req.exec_id),
                ));
            }
            Ok(c.execs.remove(&req.exec_id).expect("found above"))
        })?;
        p.io.release();
        if let Some(s) = &p.spec {
            let _ = std::fs::remove_file(s);
        }
        let (code, at) = p.exit.get().unwrap_or((0, timestamp()));
        Ok(DeleteResponse {
            pid: p.pid,
            exit_status: code,
            exited_at: MessageField::some(at),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        let (runtime, execs) = self.with(&req.id, |c| {
            let execs: HashMap<u32, String> =
                c.execs.iter().map(|(k, p)| (p.pid, k.clone())).collect();
            Ok((c.runtime.clone(), execs))
        })?;
        let pids = runtime.ps(&req.id).map_err(runtime_error)?;
        let mut processes = Vec::new();
        for pid in pids {
            let mut info = ProcessInfo {
                pid,
                ..Default::default()
            };
            if let Some(exec_id) = execs.get(&pid) {
                let details = ProcessDetails {
                    exec_id: exec_id.clone(),
                    ..Default::default()
                };
                info.info = MessageField::some(Any {
                    type_url: "containerd.runc.v1.ProcessDetails".into(),
                    value: details
                        .write_to_bytes()
                        .map_err(|e| status(Code::INTERNAL, e))?,
                    ..Default::default()
                });
            }
            processes.push(info);
        }
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        let runtime = self.runtime_of(&req.id)?;
        runtime.pause(&req.id).map_err(runtime_error)?;
        self.with(&req.id, |c| {
            c.init.status = Status::PAUSED;
            Ok(())
        })?;
        self.publish(
            topics::TASK_PAUSED_EVENT_TOPIC,
            Box::new(TaskPaused {
                container_id: req.id.clone(),
                ..Default::default()
            }),
        );
        Ok(Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        let runtime = self.runtime_of(&req.id)?;
        runtime.resume(&req.id).map_err(runtime_error)?;
        self.with(&req.id, |c| {
            if c.init.status == Status::PAUSED {
                c.init.status = Status::RUNNING;
            }
            Ok(())
        })?;
        self.publish(
            topics::TASK_RESUMED_EVENT_TOPIC,
            Box::new(TaskResumed {
                container_id: req.id.clone(),
                ..Default::default()
            }),
        );
        Ok(Empty::new())
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: containerd_shim::api::CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        Err(status(
            Code::UNIMPLEMENTED,
            "checkpoint is not supported by wharf",
        ))
    }

    fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        enum Target {
            Init(Runtime),
            Exec(u32),
        }
        let target = self.with(&req.id, |c| {
            let p = c.process(&req.exec_id)?;
            if p.exit.get().is_some() {
                return Err(status(Code::NOT_FOUND, "process already finished"));
            }
            Ok(if req.exec_id.is_empty() {
                Target::Init(c.runtime.clone())
            } else {
                Target::Exec(p.pid)
            })
        })?;
        match target {
            Target::Init(runtime) => runtime
                .kill(&req.id, req.signal, req.all)
                .map_err(kill_error)?,
            Target::Exec(0) => {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("exec {} has not started", req.exec_id),
                ));
            }
            Target::Exec(pid) => {
                let sig = nix::sys::signal::Signal::try_from(req.signal as i32).map_err(|_| {
                    status(
                        Code::INVALID_ARGUMENT,
                        format!("{} is not a signal", req.signal),
                    )
                })?;
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)
                    .map_err(|e| status(Code::NOT_FOUND, format!("exec {}: {e}", req.exec_id)))?;
            }
        }
        Ok(Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        check_id("exec id", &req.exec_id)?;
        let Some(spec) = req.spec.as_ref() else {
            return Err(status(Code::INVALID_ARGUMENT, "exec has no process spec"));
        };
        // typeurl's JSON encoding of runtime-spec's Process.
        serde_json::from_slice::<serde_json::Value>(&spec.value).map_err(|e| {
            status(
                Code::INVALID_ARGUMENT,
                format!(
                    "the exec's process spec is not JSON ({}): {e}",
                    spec.type_url
                ),
            )
        })?;
        self.with(&req.id, |c| {
            if c.execs.contains_key(&req.exec_id) {
                return Err(status(
                    Code::ALREADY_EXISTS,
                    format!("exec {} already exists", req.exec_id),
                ));
            }
            if c.init.exit.get().is_some() {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("container {} is not running", req.id),
                ));
            }
            let file = c.bundle.join(format!("exec-{}.json", req.exec_id));
            std::fs::write(&file, &spec.value)
                .map_err(|e| status(Code::INTERNAL, format!("writing {}: {e}", file.display())))?;
            let mut p = Process::new(Paths {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            });
            p.spec = Some(file);
            c.execs.insert(req.exec_id.clone(), p);
            Ok(())
        })?;
        self.publish(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            }),
        );
        Ok(Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        self.with(&req.id, |c| {
            c.process(&req.exec_id)?
                .io
                .resize(req.width, req.height)
                .map_err(|e| status(Code::FAILED_PRECONDITION, e))
        })?;
        Ok(Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        if req.stdin {
            let closer = self.with(&req.id, |c| Ok(c.process(&req.exec_id)?.io.stdin_closer()))?;
            closer.close();
        }
        Ok(Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        let runtime = self.runtime_of(&req.id)?;
        let Some(resources) = req.resources.as_ref() else {
            return Err(status(Code::INVALID_ARGUMENT, "update has no resources"));
        };
        runtime
            .update(&req.id, &resources.value)
            .map_err(runtime_error)?;
        Ok(Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        let cell = self.with(&req.id, |c| Ok(c.process(&req.exec_id)?.exit.clone()))?;
        let (code, at) = cell.wait();
        Ok(WaitResponse {
            exit_status: code,
            exited_at: MessageField::some(at),
            ..Default::default()
        })
    }

    fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        let runtime = self.runtime_of(&req.id)?;
        let sample = runtime.stats(&req.id).map_err(runtime_error)?;
        let any = super::metrics::to_any(&sample).map_err(|e| status(Code::INTERNAL, e))?;
        Ok(StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    fn connect(&self, _ctx: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        let task_pid = self.with(&req.id, |c| Ok(c.init.pid))?;
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, req: ShutdownRequest) -> TtrpcResult<Empty> {
        // One shim serves a pod: it ends with its last container.
        if req.now || self.containers.lock().unwrap().is_empty() {
            self.exit.signal();
        }
        Ok(Empty::new())
    }

    fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        self.with(&req.id, |c| {
            let bundle = c.bundle.to_string_lossy().into_owned();
            let p = c.process(&req.exec_id)?;
            let exit = p.exit.get();
            Ok(StateResponse {
                id: req.id.clone(),
                bundle,
                pid: p.pid,
                status: if exit.is_some() {
                    Status::STOPPED
                } else {
                    p.status
                }
                .into(),
                stdin: p.paths.stdin.clone(),
                stdout: p.paths.stdout.clone(),
                stderr: p.paths.stderr.clone(),
                terminal: p.paths.terminal,
                exit_status: exit.as_ref().map(|e| e.0).unwrap_or(0),
                exited_at: exit.map(|e| e.1).into(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            })
        })
    }
}

#[cfg(test)]
mod kill_tests {
    use super::*;

    fn code(e: ttrpc::Error) -> Code {
        match e {
            ttrpc::Error::RpcStatus(s) => s.code(),
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn a_kill_with_nothing_to_signal_is_not_found() {
        let failed = |message: &str| RuntimeError::Failed {
            verb: "kill".into(),
            message: message.into(),
        };
        for gone in [
            "container \"c1\" is stopped: there is no process to signal",
            "container \"c1\" does not exist",
        ] {
            assert_eq!(code(kill_error(failed(gone))), Code::NOT_FOUND, "{gone}");
        }
        assert_eq!(
            code(kill_error(failed("invalid signal \"SIGNOPE\""))),
            Code::UNKNOWN
        );
    }
}
