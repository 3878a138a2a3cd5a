//! The policy source: `--bundle PATH...`, loaded at start and again whenever a file under a
//! path changes (inotify through `notify`, debounced) or on `SIGHUP`. A load is all-or-nothing
//! in the core: a bad update is logged and counted, and the snapshot in force keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use palisade::Engine;
use tokio::sync::mpsc;
use tonic_health::server::HealthReporter;

use crate::metrics::Metrics;

/// The service name the health service reports for (besides the overall `""`).
pub const HEALTH_SERVICE: &str = "envoy.service.auth.v3.Authorization";

/// How long to wait after a change before reloading, so that a multi-file update (or an
/// editor's write-rename) is read once, complete.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Loads the bundle into the engine; on success marks the server healthy. Blocking: run it
/// off the async workers.
pub fn load_once(engine: &Engine, paths: &[PathBuf], metrics: &Metrics) -> Result<u64, String> {
    match engine.load_paths(paths) {
        Ok(generation) => {
            metrics.load(Ok(generation));
            tracing::info!(generation, "bundle loaded");
            Ok(generation)
        }
        Err(e) => {
            metrics.load(Err(()));
            let in_force = engine.snapshot().map_or(0, |s| s.generation());
            tracing::error!(error = %e, generation_in_force = in_force, "bundle not loaded; the snapshot in force stays");
            Err(e.to_string())
        }
    }
}

/// Marks the health service serving (both `""` and the Authorization service).
pub async fn set_serving(health: &HealthReporter) {
    health.set_service_status("", tonic_health::ServingStatus::Serving).await;
    health.set_service_status(HEALTH_SERVICE, tonic_health::ServingStatus::Serving).await;
}

/// Marks the health service not serving.
pub async fn set_not_serving(health: &HealthReporter) {
    health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    health.set_service_status(HEALTH_SERVICE, tonic_health::ServingStatus::NotServing).await;
}

async fn reload(engine: &Arc<Engine>, paths: &Arc<Vec<PathBuf>>, metrics: &Arc<Metrics>, health: &HealthReporter) {
    let (e, p, m) = (engine.clone(), paths.clone(), metrics.clone());
    match tokio::task::spawn_blocking(move || load_once(&e, &p, &m)).await {
        Ok(Ok(_)) => set_serving(health).await,
        Ok(Err(_)) => {}
        Err(e) => tracing::error!(error = %e, "the load task failed; the snapshot in force stays"),
    }
}

/// Starts watching `paths`; every change (and every `SIGHUP`) reloads. Returns the watcher,
/// which stops watching when dropped.
pub fn watch(
    engine: Arc<Engine>,
    paths: Vec<PathBuf>,
    metrics: Arc<Metrics>,
    health: HealthReporter,
) -> Result<notify::RecommendedWatcher, String> {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let notify_tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let interesting = match &event {
            Ok(ev) => !matches!(ev.kind, notify::EventKind::Access(_)),
            Err(_) => true,
        };
        if interesting {
            // A full channel already holds a pending reload.
            let _ = notify_tx.try_send(());
        }
    })
    .map_err(|e| format!("cannot watch the bundle: {e}"))?;
    for path in &paths {
        // Watch a file through its directory: editors and ConfigMap updates replace files
        // by rename, which a watch on the file itself would lose.
        let (target, mode) = if path.is_dir() {
            (path.clone(), RecursiveMode::Recursive)
        } else {
            (
                path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf(),
                RecursiveMode::NonRecursive,
            )
        };
        watcher.watch(&target, mode).map_err(|e| format!("cannot watch {}: {e}", target.display()))?;
    }
    #[cfg(unix)]
    {
        let hup_tx = tx.clone();
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                let _ = hup_tx.try_send(());
            }
        });
    }
    drop(tx);
    let paths = Arc::new(paths);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            reload(&engine, &paths, &metrics, &health).await;
        }
    });
    Ok(watcher)
}
