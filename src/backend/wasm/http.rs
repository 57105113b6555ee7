//! Serving a `wasi:http/proxy` component: each published port listens on the host, every
//! request gets a fresh instance (from the pooling allocator, pre-linked once), requests are
//! handled concurrently, and Ctrl-C / SIGTERM stop the server gracefully: it stops
//! accepting, lets requests in flight finish (up to a grace period), then exits 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::WasmError;
use super::ctx;
use super::limits::{Limiter, RunLimits, classify};
use crate::backend::Exit;

/// How long requests in flight may take to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(10);

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

/// What every request needs.
struct Server {
    pre: ProxyPre<HttpState>,
    spec: oci_spec::runtime::Spec,
    rootfs: Option<std::path::PathBuf>,
    stdio: ctx::StdioOptions,
    limits: RunLimits,
    in_flight: AtomicUsize,
    idle: Notify,
    /// One permit per instance the pool can hold at once: a request beyond waits for one
    /// rather than failing.
    instances: Arc<tokio::sync::Semaphore>,
}

/// Whether a component exports `wasi:http/incoming-handler`.
pub fn is_http_component(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name.starts_with("wasi:http/incoming-handler"))
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
    let mut linker = wasmtime::component::Linker::<HttpState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| WasmError::Link(format!("{e:#}")))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| WasmError::Link(format!("{e:#}")))?;
    let pre = linker
        .instantiate_pre(component)
        .and_then(ProxyPre::new)
        .map_err(|e| WasmError::Link(format!("{e:#}")))?;
    // Check the context can be built (volumes exist) before listening.
    ctx::builder(spec, rootfs, stdio)?;
    // How many instances fit the pool at once (each takes its memories and tables).
    let per_instance = component
        .resources_required()
        .map_or(1, |r| r.num_memories.max(r.num_tables.div_ceil(4)).max(1));
    let instances = (super::engine::http_pool_slots() / per_instance).max(1);
    tracing::debug!(instances, "wasi:http instance pool");
    let server = Arc::new(Server {
        pre,
        spec: spec.clone(),
        rootfs: rootfs.map(|p| p.to_path_buf()),
        stdio,
        limits,
        in_flight: AtomicUsize::new(0),
        idle: Notify::new(),
        instances: Arc::new(tokio::sync::Semaphore::new(instances as usize)),
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
        let wasi = ctx::builder(&self.spec, self.rootfs.as_deref(), self.stdio)
            .map_err(|e| e.to_string())?
            .build();
        let mut store = Store::new(
            self.pre.engine(),
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
        let pre = self.pre.clone();
        let limits = self.limits;
        let permit = self
            .instances
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
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
