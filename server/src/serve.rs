//! Listeners and lifecycle: gRPC on TCP and on a Unix socket, `grpc.health.v1`, `/metrics`,
//! the bundle watcher, graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::authorization_server::AuthorizationServer;
use palisade::{Config, Engine};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::metrics::Metrics;
use crate::reload;
use crate::service::AuthzService;
use crate::translate;

/// What to serve, and how.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// TCP addresses for gRPC (port 0 picks a free port; see [`Running::grpc_addrs`]).
    pub listen: Vec<SocketAddr>,
    /// A Unix socket path for gRPC (Dikastes' deployment: Envoy beside the pod).
    pub unix: Option<PathBuf>,
    /// The HTTP address of `/metrics`.
    pub metrics: Option<SocketAddr>,
    /// Bundle paths (files or directories).
    pub bundles: Vec<PathBuf>,
    /// The engine configuration.
    pub config: Config,
    /// How checks are translated.
    pub translate: translate::Options,
    /// Reload the bundle when its files change (and on `SIGHUP`).
    pub watch: bool,
    /// Largest `CheckRequest` accepted, in bytes (larger ones are refused with
    /// `OUT_OF_RANGE`, never read whole).
    pub max_message_bytes: usize,
    /// Most concurrent streams per HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// Largest HTTP/2 header list (gRPC metadata) per stream, in bytes.
    pub max_header_list_bytes: u32,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: Vec::new(),
            unix: None,
            metrics: None,
            bundles: Vec::new(),
            config: Config::default(),
            translate: translate::Options::default(),
            watch: true,
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_streams: 1024,
            max_header_list_bytes: 64 * 1024,
        }
    }
}

/// A running server.
pub struct Running {
    /// The bound gRPC TCP addresses, in the order given.
    pub grpc_addrs: Vec<SocketAddr>,
    /// The bound `/metrics` address.
    pub metrics_addr: Option<SocketAddr>,
    /// The engine deciding checks.
    pub engine: Arc<Engine>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Whether the initial bundle load succeeded.
    pub initial_load: Result<u64, String>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), String>>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("grpc_addrs", &self.grpc_addrs)
            .field("metrics_addr", &self.metrics_addr)
            .field("initial_load", &self.initial_load)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Stops accepting, finishes the checks in flight, and returns once every listener is
    /// closed, or after `drain` at the latest.
    pub async fn shutdown(self, drain: Duration) -> Result<(), String> {
        let _ = self.shutdown.send(true);
        let tasks = self.tasks;
        let all = async move {
            let mut first_err = Ok(());
            for t in tasks {
                let r = match t.await {
                    Ok(r) => r,
                    Err(e) => Err(e.to_string()),
                };
                if first_err.is_ok() {
                    first_err = r;
                }
            }
            first_err
        };
        match tokio::time::timeout(drain, all).await {
            Ok(r) => r,
            Err(_) => Err(format!("checks still in flight after {drain:?}; stopped anyway")),
        }
    }
}

fn shutdown_signal(rx: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Binds every listener, loads the bundle, and serves until [`Running::shutdown`]. Checks
/// that arrive before the first snapshot is in force are denied (`no_bundle`), and the health
/// service says `NOT_SERVING` until then.
pub async fn start(opts: ServeOptions) -> Result<Running, String> {
    opts.config.validate().map_err(|e| e.to_string())?;
    let engine = Arc::new(Engine::new(opts.config.clone()));
    let metrics = Arc::new(Metrics::new());
    let (health, health_svc) = tonic_health::server::health_reporter();
    reload::set_not_serving(&health).await;
    let authz = AuthzService::new(engine.clone(), metrics.clone(), opts.translate.clone());
    let (stop_tx, stop_rx) = watch::channel(false);

    let router = || {
        Server::builder()
            .tcp_nodelay(true)
            .max_concurrent_streams(opts.max_concurrent_streams)
            .http2_max_header_list_size(opts.max_header_list_bytes)
            .add_service(health_svc.clone())
            .add_service(AuthorizationServer::new(authz.clone()).max_decoding_message_size(opts.max_message_bytes))
    };

    let mut tasks = Vec::new();
    let mut grpc_addrs = Vec::new();
    for addr in &opts.listen {
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        grpc_addrs.push(bound);
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = router();
        let signal = shutdown_signal(&stop_rx);
        tasks.push(tokio::spawn(async move {
            server.serve_with_incoming_shutdown(incoming, signal).await.map_err(|e| format!("grpc {bound}: {e}"))
        }));
    }
    #[cfg(unix)]
    if let Some(path) = &opts.unix {
        // A socket file left by a previous run would make bind fail.
        if std::fs::symlink_metadata(path).map(|m| !m.is_dir()).unwrap_or(false) {
            let _ = std::fs::remove_file(path);
        }
        let listener = tokio::net::UnixListener::bind(path)
            .map_err(|e| format!("cannot listen on unix socket {}: {e}", path.display()))?;
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let server = router();
        let signal = shutdown_signal(&stop_rx);
        let shown = path.display().to_string();
        tasks.push(tokio::spawn(async move {
            server.serve_with_incoming_shutdown(incoming, signal).await.map_err(|e| format!("grpc unix {shown}: {e}"))
        }));
    }
    let mut metrics_addr = None;
    if let Some(addr) = &opts.metrics {
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        metrics_addr = Some(listener.local_addr().map_err(|e| e.to_string())?);
        let m = metrics.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let m = m.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.render(),
                    )
                }
            }),
        );
        let signal = shutdown_signal(&stop_rx);
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(signal).await.map_err(|e| format!("metrics: {e}"))
        }));
    }

    let initial_load = if opts.bundles.is_empty() {
        Err("no --bundle given".to_string())
    } else {
        let (e, p, m) = (engine.clone(), opts.bundles.clone(), metrics.clone());
        tokio::task::spawn_blocking(move || reload::load_once(&e, &p, &m)).await.map_err(|e| e.to_string())?
    };
    if initial_load.is_ok() {
        reload::set_serving(&health).await;
    }
    let watcher = if opts.watch && !opts.bundles.is_empty() {
        Some(reload::watch(engine.clone(), opts.bundles.clone(), metrics.clone(), health)?)
    } else {
        None
    };
    Ok(Running { grpc_addrs, metrics_addr, engine, metrics, initial_load, shutdown: stop_tx, tasks, _watcher: watcher })
}
