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
use crate::store::{self, ApplyReport, Change, Store};

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
    /// The objects of the snapshot in force; the lock is also the writers' turn.
    writer: Mutex<Writer>,
}

/// What writers share: the objects of the snapshot in force, and what its last full build
/// knows about pods (for incremental pod changes, [`store::pods`]).
#[derive(Default)]
struct Writer {
    store: Store,
    inventory: Option<crate::load::Inventory>,
}

impl Engine {
    /// An engine with nothing loaded.
    pub fn new(config: Config) -> Engine {
        Engine {
            config,
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            writer: Mutex::new(Writer::default()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Loads, compiles and swaps in a bundle; returns its generation. All-or-nothing.
    pub fn load(&self, sources: &[Source<'_>]) -> Result<u64, LoadError> {
        // Writers take turns so generations are swapped in order; readers never wait.
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut errors = crate::load::Errors::default();
        let docs = crate::load::documents(sources, &self.config, &mut errors);
        let (bundle, inventory) = crate::load::build_with_inventory(docs.clone(), &self.config, errors)?;
        let objects = Store::from_docs(docs, &self.config)?;
        let generation = self.swap(bundle);
        *writer = Writer { store: objects, inventory: Some(inventory) };
        Ok(generation)
    }

    fn swap(&self, bundle: crate::model::Bundle) -> u64 {
        self.swap_in(|generation| Snapshot::from_bundle(bundle, &self.config, generation))
    }

    /// Swaps in the snapshot `make` builds for the next generation (under the writers' turn).
    fn swap_in(&self, make: impl FnOnce(u64) -> Snapshot) -> u64 {
        let generation = self.generation.load(Ordering::Acquire) + 1;
        self.current.store(Some(Arc::new(make(generation))));
        self.generation.store(generation, Ordering::Release);
        generation
    }

    /// Applies a change set (upserts and deletes) to the objects in force, all-or-nothing:
    /// if any change or the resulting set of objects fails validation, nothing changes
    /// (an object keeps its last valid version, a new invalid object is not added) and the
    /// error lists every failure. The new snapshot is built from the stored, already
    /// parsed objects; only the changes' own text is parsed. Readers keep deciding on the
    /// old snapshot until the swap. See [`crate::store`].
    ///
    /// ```
    /// use palisade::{Engine, Config, OwnedRequest, store::Change};
    /// use serde_json::json;
    ///
    /// let engine = Engine::new(Config::default());
    /// let pod = json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "web", "namespace": "shop"}, "status": {"podIP": "10.0.0.2"}});
    /// engine.apply(vec![Change::upsert(pod)]).unwrap();
    /// let policy = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
    ///     metadata: {name: web, namespace: shop}\n\
    ///     spec: {ingress: [{action: Allow, protocol: TCP, destination: {ports: [80]}}]}\n";
    /// engine.apply(vec![Change::upsert_text("web.yaml", policy)]).unwrap();
    /// let to = |port: u16| OwnedRequest::from_json(&format!(
    ///     r#"{{"source": {{"ip": "10.0.0.1"}}, "destination": {{"ip": "10.0.0.2", "port": {port}}}}}"#,
    /// )).unwrap();
    /// assert!(engine.decide(&to(80).as_request()).allowed());
    /// assert!(!engine.decide(&to(81).as_request()).allowed());
    /// // Without the policy the namespace profile allows again.
    /// engine.apply(vec![Change::delete("projectcalico.org", "NetworkPolicy", Some("shop"), "web")]).unwrap();
    /// assert!(engine.decide(&to(81).as_request()).allowed());
    /// ```
    pub fn apply(&self, changes: Vec<Change>) -> Result<ApplyReport, LoadError> {
        self.apply_with(changes, store::build)
    }

    /// Applies a change set, leaving out the upserts that fail validation and returning
    /// them in [`ApplyReport::rejected`] (an existing object keeps its last valid version, a
    /// new one stays absent). Fails, changing nothing, only when the objects do not validate
    /// even without them (a delete that breaks another object). What live sources use.
    pub fn apply_lenient(&self, changes: Vec<Change>) -> Result<ApplyReport, LoadError> {
        self.apply_with(changes, store::build_lenient)
    }

    fn apply_with(
        &self,
        changes: Vec<Change>,
        build: fn(&Store, &[Change], &Config) -> Result<store::Built, LoadError>,
    ) -> Result<ApplyReport, LoadError> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Writer { store, inventory } = &mut *writer;
        // Pods alone, of known label sets: laid over the compiled program (folding a full
        // overlay in first).
        if let (Some(inv), Some(current)) = (inventory.as_mut(), self.current.load_full())
            && store::pods::may_apply(&changes)
        {
            let mut compacted = (current.incremental_changes() >= store::pods::MAX_OVERLAY)
                .then(|| store::pods::compact(&current, inv));
            let (snapshot, inv) = match &mut compacted {
                Some((s, i)) => (&*s, i),
                None => (&*current, inv),
            };
            if let Some(inc) = store::pods::apply(store, inv, snapshot, &changes, &self.config) {
                let (overlay, report) = inc.commit(store, inv);
                let generation = self.swap_in(|g| snapshot.with_overlay(overlay, report.objects, g));
                if let Some((_, folded)) = compacted {
                    *inventory = Some(folded);
                }
                return Ok(ApplyReport { generation, ..report });
            }
        }
        let built = build(store, &changes, &self.config)?;
        let generation = self.swap(built.bundle);
        *writer = Writer { store: built.store, inventory: Some(built.inventory) };
        Ok(ApplyReport { generation, ..built.report })
    }

    /// How many objects the engine holds (those of the snapshot in force).
    pub fn object_count(&self) -> usize {
        self.writer.lock().unwrap_or_else(|p| p.into_inner()).store.len()
    }

    /// The objects in force, in key order (group, kind, namespace, name), each as the parsed
    /// document it was given as (a `List` item on its own), with the generation of the
    /// snapshot they built (0 and none before anything is loaded). The two are read together,
    /// under the writers' turn, so they always agree; the values are shared, not copied.
    /// Writing the values out as documents gives a bundle that loads back to the same
    /// decisions (`palisade sync --dump`).
    ///
    /// ```
    /// use palisade::{Engine, Config};
    ///
    /// let engine = Engine::new(Config::default());
    /// assert_eq!(engine.objects(), (0, vec![]));
    /// engine.load_str("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n").unwrap();
    /// let (generation, objects) = engine.objects();
    /// assert_eq!(generation, 1);
    /// assert_eq!((objects[0].0.kind.as_str(), objects[0].0.name.as_str()), ("Namespace", "shop"));
    /// assert_eq!(objects[0].1["metadata"]["name"], "shop");
    /// ```
    pub fn objects(&self) -> (u64, Vec<(crate::load::ObjectRef, Arc<serde_json::Value>)>) {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        (self.generation.load(Ordering::Acquire), writer.store.entries())
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

    /// A per-thread reader: [`Reader::decide`] costs what deciding on a pinned
    /// [`Snapshot`] costs (one pointer compare instead of `arc-swap`'s guard), and still
    /// sees every new snapshot on its next call. For a thread that decides in a loop.
    ///
    /// ```
    /// use palisade::{Config, Engine, OwnedRequest, Reason};
    /// let engine = Engine::new(Config::default());
    /// let mut reader = engine.reader();
    /// let req = OwnedRequest::from_json(r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#).unwrap();
    /// assert_eq!(reader.decide(&req.as_request()).reason, Reason::NoBundle);
    /// engine.load_str("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n").unwrap();
    /// assert_eq!(reader.decide(&req.as_request()).reason, Reason::NoPolicy);
    /// ```
    pub fn reader(&self) -> Reader<'_> {
        Reader { cache: arc_swap::cache::Cache::new(&self.current) }
    }

    /// Decides a request and returns the readable tier walk and Calico-format trace.
    pub fn explain(&self, req: &Request<'_>) -> Explanation {
        match self.snapshot() {
            Some(s) => s.explain(req),
            None => Explanation::no_bundle(),
        }
    }
}

/// A per-thread handle on an [`Engine`] for deciding in a loop (see [`Engine::reader`]).
/// Not `Sync`: one per thread. It holds the last snapshot it saw until its next call.
pub struct Reader<'e> {
    cache: arc_swap::cache::Cache<&'e ArcSwapOption<Snapshot>, Option<Arc<Snapshot>>>,
}

impl Reader<'_> {
    /// Decides on the snapshot in force. Allocation-free.
    #[inline]
    pub fn decide(&mut self, req: &Request<'_>) -> Decision {
        match self.cache.load() {
            Some(s) => s.decide(req),
            None => Decision::pre_policy(Reason::NoBundle, None, 0),
        }
    }
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}
