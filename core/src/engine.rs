//! The engine: holds the snapshot in force behind `arc-swap`, so any number of threads
//! decide without locks while a writer compiles new policy off to the side and swaps it in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

use crate::config::Config;
use crate::decision::{Decision, Reason};
use crate::error::LoadError;
use crate::explain::Explanation;
use crate::load::Source;
use crate::request::Request;
use crate::snapshot::Snapshot;

/// A policy decision point.
///
/// `decide` takes `&self`, takes no lock and allocates nothing; `load` compiles a new
/// snapshot and swaps it in atomically. A failed load leaves the previous snapshot serving.
/// An engine with nothing loaded denies everything with reason `no_bundle`.
///
/// ```
/// use palisade::{Engine, Config, OwnedRequest, Reason};
///
/// let engine = Engine::new(Config::default());
/// let req = OwnedRequest::from_json(
///     r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
/// ).unwrap();
/// assert_eq!(engine.decide(&req.as_request()).reason, Reason::NoBundle);
///
/// engine.load_str(r#"
/// apiVersion: v1
/// kind: Pod
/// metadata: {name: web, namespace: shop}
/// status: {podIP: 10.0.0.2}
/// ---
/// apiVersion: projectcalico.org/v3
/// kind: NetworkPolicy
/// metadata: {name: web, namespace: shop}
/// spec:
///   ingress: [{action: Allow, protocol: TCP, destination: {ports: [80]}}]
/// "#).unwrap();
/// let d = engine.decide(&req.as_request());
/// assert!(d.allowed());
/// assert_eq!(d.generation, 1);
/// ```
pub struct Engine {
    config: Config,
    current: ArcSwapOption<Snapshot>,
    generation: AtomicU64,
    writer: Mutex<()>,
}

impl Engine {
    /// An engine with nothing loaded.
    pub fn new(config: Config) -> Engine {
        Engine { config, current: ArcSwapOption::empty(), generation: AtomicU64::new(0), writer: Mutex::new(()) }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Loads, compiles and swaps in a bundle; returns its generation. All-or-nothing.
    pub fn load(&self, sources: &[Source<'_>]) -> Result<u64, LoadError> {
        // Writers take turns so generations are swapped in order; readers never wait.
        let _turn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let generation = self.generation.load(Ordering::Acquire) + 1;
        let snapshot = Snapshot::build(sources, &self.config, generation)?;
        self.current.store(Some(Arc::new(snapshot)));
        self.generation.store(generation, Ordering::Release);
        Ok(generation)
    }

    /// Loads a bundle given as one YAML or JSON text.
    pub fn load_str(&self, text: &str) -> Result<u64, LoadError> {
        self.load(&[Source { name: "<string>", text }])
    }

    /// Loads a bundle from files and directories.
    #[cfg(feature = "fs")]
    pub fn load_paths<P: AsRef<std::path::Path>>(&self, paths: &[P]) -> Result<u64, LoadError> {
        let files = crate::load::read_paths(paths, self.config.max_bundle_bytes)?;
        let sources: Vec<Source<'_>> = files.iter().map(|(n, t)| Source { name: n, text: t }).collect();
        self.load(&sources)
    }

    /// Pins the snapshot in force (`None` when nothing is loaded). Decisions made against a
    /// pinned snapshot can be rendered with its names even after a reload.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// Decides a request. Lock-free and allocation-free.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        let guard = self.current.load();
        match guard.as_deref() {
            Some(s) => s.decide(req),
            None => Decision::pre_policy(Reason::NoBundle, None, 0),
        }
    }

    /// Decides a request and returns the readable tier walk and Calico-format trace.
    pub fn explain(&self, req: &Request<'_>) -> Explanation {
        match self.snapshot() {
            Some(s) => s.explain(req),
            None => Explanation::no_bundle(),
        }
    }
}
