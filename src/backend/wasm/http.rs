//! Serving a `wasi:http` component: each published port listens on the host, requests are
//! handled concurrently, and Ctrl-C / SIGTERM stop the server gracefully: it stops
//! accepting, lets requests in flight finish (up to a grace period), then exits 0.
//!
//! A WASI 0.2 `wasi:http/proxy` component gets a fresh instance per request (from the
//! pooling allocator, pre-linked once). A WASI 0.3 `wasi:http/service` component is made to
//! be reused: as `wasmtime serve` does, an instance takes up to 16 requests at once and 128
//! in all (wasmtime-wasi-http's `ProxyHandler` runs them), unless a run-time or fuel limit is
//! set: then every request has an instance of its own, so the limit is a request's, as for
//! 0.2.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use wasmtime::component::{Component, GuestTaskId, ResourceTable};
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{
    self, HandlerState, ProxyHandler, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::WasmError;
use super::ctx;
use super::limits::{Limiter, RunLimits, classify};
use crate::backend::Exit;
use crate::image::package::WasiVersion;

/// How long requests in flight may take to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(10);

/// Requests one WASI 0.3 instance takes in all, and at once (`wasmtime serve`'s defaults).
const P3_REUSE: usize = 128;
const P3_CONCURRENT: usize = 16;

/// How long an idle WASI 0.3 instance is kept for the next request (as `wasmtime serve`).
const P3_IDLE: Duration = Duration::from_secs(1);

struct HttpState {
    ctx: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limiter: Limiter,
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// What every instance needs: the guest's view of the world, its limits, and a permit of
/// the pool (one per instance the pool can hold at once: a request beyond waits for one
/// rather than failing).
struct Setup {
    spec: oci_spec::runtime::Spec,
    rootfs: Option<std::path::PathBuf>,
    stdio: ctx::StdioOptions,
    limits: RunLimits,
    instances: Arc<tokio::sync::Semaphore>,
    /// Set once the server has drained: workers still alive are dropped with the runtime.
    stopping: std::sync::atomic::AtomicBool,
}

impl Setup {
    /// A fresh store with its limits, and the pool permit it holds.
    async fn store(
        &self,
        engine: &Engine,
    ) -> Result<(Store<HttpState>, tokio::sync::OwnedSemaphorePermit), String> {
        let wasi = ctx::builder(&self.spec, self.rootfs.as_deref(), self.stdio)
            .map_err(|e| e.to_string())?
            .build();
        let mut store = Store::new(
            engine,
            HttpState {
                ctx: wasi,
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                limiter: Limiter::new(self.limits.memory),
            },
        );
        store.limiter(|s| &mut s.limiter);
        self.limits
            .apply(&mut store)
            .map_err(|e| format!("{e:#}"))?;
        let permit = self
            .instances
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        Ok((store, permit))
    }
}

/// The guest, by the WASI version it targets.
enum Guest {
    P2(ProxyPre<HttpState>),
    P3(ProxyHandler<P3Handler>),
}

/// What every request needs.
struct Server {
    guest: Guest,
    setup: Arc<Setup>,
    in_flight: AtomicUsize,
    idle: Notify,
}

/// Whether a component exports `wasi:http/incoming-handler` (WASI 0.2) or
/// `wasi:http/handler` (0.3).
pub fn is_http_component(engine: &Engine, component: &Component) -> bool {
    component.component_type().exports(engine).any(|(name, _)| {
        name.starts_with("wasi:http/incoming-handler") || name.starts_with("wasi:http/handler@")
    })
}

/// Serve until stopped.
#[allow(clippy::too_many_arguments)]
pub fn serve(
    engine: &Engine,
    component: &Component,
    spec: &oci_spec::runtime::Spec,
    rootfs: Option<&std::path::Path>,
    addrs: &[SocketAddr],
    stdio: ctx::StdioOptions,
    limits: RunLimits,
    name: &str,
    started: &dyn Fn(),
) -> Result<Exit, WasmError> {
    let link = |e: wasmtime::Error| WasmError::Link(format!("{e:#}"));
    let mut linker = wasmtime::component::Linker::<HttpState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(link)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(link)?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| super::wasi::link_error(component, &e))?;
    let version = super::wasi::version_of(component);
    // Check the context can be built (volumes exist) before listening.
    ctx::builder(spec, rootfs, stdio)?;
    // How many instances fit the pool at once (each takes its memories and tables).
    let per_instance = component
        .resources_required()
        .map_or(1, |r| r.num_memories.max(r.num_tables.div_ceil(4)).max(1));
    let instances = (super::engine::http_pool_slots() / per_instance).max(1);
    tracing::debug!(instances, "wasi:http instance pool");
    let setup = Arc::new(Setup {
        spec: spec.clone(),
        rootfs: rootfs.map(|p| p.to_path_buf()),
        stdio,
        limits,
        instances: Arc::new(tokio::sync::Semaphore::new(instances as usize)),
        stopping: std::sync::atomic::AtomicBool::new(false),
    });
    let guest = if version == WasiVersion::P3 {
        let pre = ServicePre::new(pre).map_err(link)?;
        // Limits per request need an instance per request.
        let shared = limits.timeout.is_none() && limits.fuel.is_none();
        Guest::P3(ProxyHandler::new(P3Handler {
            pre,
            setup: setup.clone(),
            reuse: if shared { P3_REUSE } else { 1 },
            concurrent: if shared { P3_CONCURRENT } else { 1 },
        }))
    } else {
        Guest::P2(ProxyPre::new(pre).map_err(link)?)
    };
    let server = Arc::new(Server {
        guest,
        setup,
        in_flight: AtomicUsize::new(0),
        idle: Notify::new(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wharf-http")
        .build()
        .map_err(WasmError::Runtime)?;
    runtime.block_on(async move {
        let mut listeners = Vec::new();
        for addr in addrs {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| WasmError::Listen {
                    addr: *addr,
                    source,
                })?;
            eprintln!(
                "wharf: serving {name} on http://{}",
                l.local_addr().unwrap_or(*addr)
            );
            listeners.push(l);
        }
        started();
        let accepting: Vec<_> = listeners
            .into_iter()
            .map(|l| tokio::spawn(accept_loop(l, server.clone())))
            .collect();
        shutdown_signal().await;
        for a in &accepting {
            a.abort();
        }
        eprintln!("wharf: stopping {name}: no new connections");
        let drained = tokio::time::timeout(GRACE, async {
            while server.in_flight.load(Ordering::SeqCst) > 0 {
                server.idle.notified().await;
            }
        })
        .await;
        if drained.is_err() {
            eprintln!(
                "wharf: {} requests still running after {GRACE:?}; stopping anyway",
                server.in_flight.load(Ordering::SeqCst)
            );
        }
        server.setup.stopping.store(true, Ordering::SeqCst);
        Ok(Exit::code(0))
    })
}

async fn accept_loop(listener: TcpListener, server: Arc<Server>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        // A response is written as it is produced (a 0.3 guest streams its body after the
        // head): Nagle's algorithm would hold the later writes for the peer's delayed ACK.
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

impl Server {
    async fn handle(
        self: &Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<HyperOutgoingBody> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = self.clone().call(req).await;
        super::limits::gauge::served();
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
        match result {
            Ok(resp) => resp,
            Err(message) => {
                tracing::warn!(error = %message, "request failed");
                text_response(500, format!("{message}\n"))
            }
        }
    }

    async fn call(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, String> {
        let pre = match &self.guest {
            Guest::P2(pre) => pre.clone(),
            Guest::P3(handler) => {
                let req = req.map(|body| body.map_err(Into::into).boxed_unsync());
                let limits = &self.setup.limits;
                return handler.handle((), req).await.map_err(|e| {
                    // The request outlived its deadline (`on_request_start`'s sleep): the
                    // same words as a 0.2 request stopped by its epoch deadline.
                    let exit = if e.downcast_ref::<handler::ExpirationError>().is_some() {
                        super::limits::timed_out(limits)
                    } else {
                        classify(&e, limits)
                    };
                    exit.message.unwrap_or_else(|| format!("{e:#}"))
                });
            }
        };
        let (mut store, permit) = self.setup.store(pre.engine()).await?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .map_err(|e| format!("{e:#}"))?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(|e| format!("{e:#}"))?;
        let limits = self.setup.limits;
        // The guest may go on writing the body after it has sent the response head. The
        // instance's slot is free again once its store is gone.
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            let r = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await;
            drop(store);
            drop(permit);
            r
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(format!("the guest answered with an error: {code:?}")),
            Err(_) => {
                let why = match task.await {
                    Ok(Ok(())) => "the guest never set a response".to_string(),
                    Ok(Err(e)) => classify(&e, &limits)
                        .message
                        .unwrap_or_else(|| format!("{e:#}")),
                    Err(e) => format!("the request task failed: {e}"),
                };
                Err(why)
            }
        }
    }
}

/// WASI 0.3 instances for wasmtime-wasi-http's `ProxyHandler`: it starts a worker per
/// instance, queues requests to workers that take more, and ends a worker when its instance
/// has served its share, or sat idle for [`P3_IDLE`].
struct P3Handler {
    pre: ServicePre<HttpState>,
    setup: Arc<Setup>,
    reuse: usize,
    concurrent: usize,
}

impl HandlerState for P3Handler {
    type StoreData = HttpState;
    type WorkerExpiration = P3Expiration;
    type WorkerState = P3Worker;

    async fn instantiate(
        &self,
    ) -> wasmtime::Result<handler::Instance<HttpState, P3Expiration, P3Worker>> {
        let (mut store, permit) = self
            .setup
            .store(self.pre.engine())
            .await
            .map_err(wasmtime::Error::msg)?;
        let proxy = handler::ProxyPre::P3(self.pre.clone())
            .instantiate_async(&mut store)
            .await?;
        let timeout = self.setup.limits.timeout.unwrap_or(Duration::MAX);
        Ok(handler::Instance {
            store,
            proxy,
            view: HttpState::http,
            expiration: P3Expiration {
                request_timeout: timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
            },
            state: P3Worker {
                setup: self.setup.clone(),
                reuse: self.reuse,
                concurrent: self.concurrent,
                _permit: permit,
            },
        })
    }
}

struct P3Worker {
    setup: Arc<Setup>,
    reuse: usize,
    concurrent: usize,
    /// The instance's place in the pool, given back when the worker ends.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl WorkerState for P3Worker {
    type StoreData = HttpState;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse {
            ShouldAccept::Never
        } else if concurrent >= self.concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _: StoreContextMut<'_, HttpState>,
        _: (),
        _: GuestTaskId,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync>> {
        let timeout = self.setup.limits.timeout.unwrap_or(Duration::MAX);
        Box::pin(tokio::time::sleep(timeout))
    }

    fn drop(&self, store: Store<HttpState>, result: wasmtime::Result<()>) {
        match result {
            // Dropped with the runtime once the server stopped (an idle instance).
            Err(_) if self.setup.stopping.load(Ordering::SeqCst) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "wasi:http 0.3 instance failed"),
            Ok(()) => {}
        }
        drop(store);
    }
}

/// When a worker ends: idle for [`P3_IDLE`], or busy past the run-time limit.
struct P3Expiration {
    request_timeout: Duration,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for P3Expiration {
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        status: WorkerStatus,
        start: std::time::Instant,
    ) -> std::task::Poll<()> {
        let timeout = match status {
            WorkerStatus::Idle => P3_IDLE,
            WorkerStatus::Requests | WorkerStatus::PostReturn => self.request_timeout,
        };
        let Some(deadline) = start.checked_add(timeout) else {
            return std::task::Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

fn text_response(status: u16, body: String) -> hyper::Response<HyperOutgoingBody> {
    let body = http_body_util::Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .expect("a static response is valid")
}

/// Ctrl-C, or SIGTERM on Unix; on Windows Ctrl-C, Ctrl-Break or the stop event `wharf
/// stop` sets (see `sys::catch_termination`).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(windows)]
    {
        crate::sys::catch_termination();
        while crate::sys::termination_requested().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
