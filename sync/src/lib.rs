//! Keeps a Palisade [`Engine`] current with a live cluster.
//!
//! A source (the Kubernetes API, Calico's etcd v3 datastore, a bundle directory) sends
//! [`Event`]s about upstream items (an API object, an etcd key, a file) to a [`Syncer`], which
//! turns them into [`palisade::Change`]s, collects them for a debounce interval and applies
//! each batch with one [`Engine::apply_lenient`], so one batch is one snapshot swap. Deciding
//! never waits for any of this.
//!
//! * Before the first complete list (a [`Event::Resync`] or [`Event::ResyncScoped`]) has
//!   been applied the engine has no snapshot and decides `no_bundle`: events that come
//!   earlier (an embedder's own upserts) wait and are applied with that list's batch. The Kubernetes source ([`kube::KubeSource`]) watches
//!   one kind per watcher and sends nothing but errors until every kind has been listed
//!   once, then one [`Event::ResyncScoped`] of every kind.
//! * A relist replaces what it covers: [`Event::Resync`] the whole upstream state,
//!   [`Event::ResyncScoped`] only the items whose ids start with one of its scopes (one
//!   Kubernetes kind after a `410 Gone`), leaving every other item alone.
//! * An upsert that fails validation is left out of its batch and reported in
//!   [`Status::rejected`]; the object's last valid version (or, for a new object, its
//!   absence) stays in force, and the upsert is tried again with every later batch (it may
//!   become valid when, say, its tier arrives).
//! * A batch that fails as a whole (a delete that breaks other objects) changes nothing:
//!   the last good snapshot keeps serving, [`Status::last_error`] says why, and the batch is
//!   retried with backoff together with newer events.

pub mod dir;
pub mod etcd;
pub mod kube;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use palisade::load::ObjectRef;
use palisade::{Change, Engine};
use tokio::sync::mpsc;

/// What a source reports about its upstream items.
#[derive(Debug)]
pub enum Event {
    /// The complete upstream state (an initial list, or a relist after the watch was lost):
    /// items not named here are gone.
    Resync(Vec<(String, Change)>),
    /// The complete state of the items whose ids start with one of `scopes` (a relist of
    /// some of a source's upstream, such as one Kubernetes kind): items in those scopes not
    /// named in `items` are gone, items outside them are untouched. Like [`Event::Resync`]
    /// it counts as a complete list for [`Status::synced`], so a source sends its first one
    /// only once it covers everything it reads.
    ResyncScoped {
        /// Id prefixes (`kube:core/Pod/`).
        scopes: Vec<String>,
        /// `(item id, change)` of every item in the scopes; each id starts with a scope.
        items: Vec<(String, Change)>,
    },
    /// One item was added or changed: `(item id, change)`.
    Upsert(String, Change),
    /// One item was removed.
    Remove(String),
    /// The source hit an error (it keeps retrying): recorded in the status.
    Error(String),
    /// What the source reads but its upstream does not serve (a Kubernetes CRD that is not
    /// installed), treated as empty: the complete current list, kept in
    /// [`Status::unserved`] until the next `Unserved`.
    Unserved(Vec<String>),
}

/// How batches are formed and retried.
#[derive(Debug, Clone)]
pub struct Options {
    /// A batch is applied once no event has arrived for this long (default 50 ms)...
    pub debounce: Duration,
    /// ...or this long after its first event, whichever is first (default 500 ms).
    pub max_delay: Duration,
    /// First retry delay after a failed batch; doubles up to `max_backoff` (default 100 ms).
    pub backoff: Duration,
    /// Longest retry delay (default 10 s).
    pub max_backoff: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            debounce: Duration::from_millis(50),
            max_delay: Duration::from_millis(500),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The state of a sync, as [`Syncer::status`] reports it.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Whether a complete list has been applied (decisions before that are `no_bundle`).
    pub synced: bool,
    /// The generation of the engine's snapshot after the last applied batch (0: none yet).
    pub generation: u64,
    /// When the last event arrived from the source.
    pub last_event: Option<SystemTime>,
    /// The last error (a source error or a batch that failed as a whole); cleared when a
    /// batch applies.
    pub last_error: Option<String>,
    /// Upserts left out because they fail validation: `item id: error`. Their objects keep
    /// their last valid version (a new object stays absent).
    pub rejected: Vec<String>,
    /// Batches applied.
    pub batches: u64,
    /// Objects in the engine.
    pub objects: usize,
    /// Kinds a source reads and its upstream does not serve, treated as empty (from
    /// [`Event::Unserved`]; a Kubernetes CRD that is not installed).
    pub unserved: Vec<String>,
    /// How long the last applied batch took (validate, compile, swap).
    pub build_time: Duration,
}

/// Feeds a source's events into an engine. Cheap to clone.
#[derive(Clone)]
pub struct Syncer {
    engine: Arc<Engine>,
    status: Arc<Mutex<Status>>,
    options: Options,
}

impl Syncer {
    /// A syncer for `engine`.
    pub fn new(engine: Arc<Engine>, options: Options) -> Syncer {
        Syncer { engine, status: Arc::new(Mutex::new(Status::default())), options }
    }

    /// The engine it keeps current.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Consumes events until the channel closes, applying them in debounced batches.
    pub async fn run(self, mut events: mpsc::Receiver<Event>) {
        let mut state = Batcher::default();
        let mut backoff = self.options.backoff;
        loop {
            // Wait for the first event of a batch (or for a retry of a failed one).
            let first = if state.pending_work() {
                match tokio::time::timeout(backoff, events.recv()).await {
                    Ok(Some(e)) => Some(e),
                    Ok(None) => return,
                    Err(_) => None,
                }
            } else {
                match events.recv().await {
                    Some(e) => Some(e),
                    None => return,
                }
            };
            if let Some(e) = first {
                self.take(&mut state, e);
                let started = tokio::time::Instant::now();
                loop {
                    let left = self.options.max_delay.saturating_sub(started.elapsed());
                    let wait = self.options.debounce.min(left);
                    if wait.is_zero() {
                        break;
                    }
                    match tokio::time::timeout(wait, events.recv()).await {
                        Ok(Some(e)) => self.take(&mut state, e),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            if self.flush(&mut state) {
                backoff = self.options.backoff;
            } else {
                backoff = (backoff * 2).min(self.options.max_backoff);
            }
        }
    }

    fn take(&self, state: &mut Batcher, event: Event) {
        self.update(|s| s.last_event = Some(SystemTime::now()));
        match event {
            Event::Error(e) => self.update(|s| s.last_error = Some(e)),
            Event::Unserved(kinds) => self.update(|s| s.unserved = kinds),
            event => state.take(event),
        }
    }

    /// Applies the pending batch; `false` when it failed as a whole.
    fn flush(&self, state: &mut Batcher) -> bool {
        if !state.pending_work() {
            return true;
        }
        // Nothing is applied before a complete list: a snapshot with the pods an embedder sent
        // and without the policies the datastore holds would allow what the cluster denies.
        // The events wait, in order, and go with the first list's batch.
        if !state.listed {
            return true;
        }
        let (changes, ids) = state.batch(self.engine.config());
        let started = std::time::Instant::now();
        match self.engine.apply_lenient(changes) {
            Ok(report) => {
                let build_time = started.elapsed();
                let rejected_files: Vec<&str> = report.rejected.iter().map(|e| e.file.as_str()).collect();
                state.applied(&ids, &rejected_files);
                let synced = state.listed;
                let rejected = report.rejected.iter().map(|e| format!("{}: {e}", e.file)).collect();
                self.update(|s| {
                    s.generation = report.generation;
                    s.batches += 1;
                    s.objects = report.objects;
                    s.build_time = build_time;
                    s.rejected = rejected;
                    s.last_error = None;
                    s.synced |= synced;
                });
                true
            }
            Err(e) => {
                self.update(|s| s.last_error = Some(format!("batch not applied, the last good snapshot serves: {e}")));
                false
            }
        }
    }
}

/// An item of a batch and the objects its change names (`None`: a removal, or an upsert
/// that does not parse).
type Applied = (String, Option<Vec<ObjectRef>>);

/// What each upstream item contributed, and what is waiting to be applied.
#[derive(Default)]
struct Batcher {
    /// Item id to the objects its last applied version named.
    items: BTreeMap<String, Vec<ObjectRef>>,
    /// Pending changes by item id (the newest wins): `None` is a removal.
    pending: BTreeMap<String, Option<Change>>,
    /// Upserts rejected earlier, tried again with every batch.
    rejected: BTreeMap<String, Change>,
    /// Whether a complete list has been received.
    listed: bool,
}

impl Batcher {
    fn pending_work(&self) -> bool {
        !self.pending.is_empty()
    }

    fn take(&mut self, event: Event) {
        match event {
            Event::Resync(all) => self.resync(|_| true, false, all),
            Event::ResyncScoped { scopes, items } => {
                self.resync(|id| scopes.iter().any(|s| id.starts_with(s.as_str())), true, items)
            }
            Event::Upsert(id, c) => {
                self.pending.insert(id, Some(c));
            }
            Event::Remove(id) => {
                self.pending.insert(id, None);
            }
            Event::Error(_) | Event::Unserved(_) => {}
        }
    }

    /// A complete list of the items for which `in_scope` holds: those not named are removed
    /// (applied or rejected ones; with `pending`, also those upserted by an earlier event of
    /// this batch). A whole-state [`Event::Resync`] leaves pending upserts alone, as it always
    /// has: another feeder's (an embedder's own informer) may be among them. A scoped one
    /// removes them: its scope is one source's own, and an upsert that the relist does not
    /// name was deleted while the watch was lost.
    fn resync(&mut self, in_scope: impl Fn(&str) -> bool, pending: bool, all: Vec<(String, Change)>) {
        let named: std::collections::BTreeSet<&String> = all.iter().map(|(id, _)| id).collect();
        let pending_ids = self.pending.iter().filter(|(_, c)| pending && c.is_some()).map(|(id, _)| id);
        let gone: Vec<String> = self
            .items
            .keys()
            .chain(self.rejected.keys())
            .chain(pending_ids)
            .filter(|id| in_scope(id) && !named.contains(id))
            .cloned()
            .collect();
        for id in gone {
            self.pending.insert(id, None);
        }
        for (id, c) in all {
            self.pending.insert(id, Some(c));
        }
        self.listed = true;
    }

    /// The changes of the pending batch (with earlier rejections retried), and the ids they
    /// came from. Removals delete what the item named; an upsert also deletes the objects
    /// its previous version named that this one no longer does.
    fn batch(&mut self, config: &palisade::Config) -> (Vec<Change>, Vec<Applied>) {
        let mut changes = Vec::new();
        let mut ids = Vec::new();
        for (id, c) in &self.rejected {
            if !self.pending.contains_key(id) {
                self.pending.insert(id.clone(), Some(c.clone()));
            }
        }
        for (id, c) in &self.pending {
            let before = self.items.get(id).cloned().unwrap_or_default();
            match c {
                None => {
                    changes.extend(before.iter().map(|k| Change::Delete(k.clone())));
                    ids.push((id.clone(), None));
                }
                Some(c) => {
                    // An upsert that does not even parse names nothing: its old objects stay
                    // (their last valid version) and the apply reports it.
                    let now = c.object_refs(config).ok();
                    if let Some(now) = &now {
                        changes.extend(before.iter().filter(|k| !now.contains(k)).map(|k| Change::Delete(k.clone())));
                    }
                    changes.push(c.clone());
                    ids.push((id.clone(), now));
                }
            }
        }
        (changes, ids)
    }

    /// Records an applied batch: which ids now name which objects, which were rejected.
    fn applied(&mut self, ids: &[Applied], rejected_files: &[&str]) {
        let pending = std::mem::take(&mut self.pending);
        for (id, now) in ids {
            let change = pending.get(id).cloned().flatten();
            let source = change.as_ref().and_then(change_source);
            let rejected = source.is_some_and(|s| rejected_files.contains(&s)) || (change.is_some() && now.is_none());
            match (change, now) {
                (None, _) => {
                    self.items.remove(id);
                    self.rejected.remove(id);
                }
                (Some(c), _) if rejected => {
                    self.rejected.insert(id.clone(), c);
                }
                (Some(_), Some(now)) => {
                    self.items.insert(id.clone(), now.clone());
                    self.rejected.remove(id);
                }
                (Some(_), None) => {}
            }
        }
    }
}

fn change_source(c: &Change) -> Option<&str> {
    match c {
        Change::Upsert { source, .. } | Change::UpsertText { source, .. } => Some(source),
        Change::Delete(_) => None,
    }
}

/// Waits (up to `timeout`) until `pred` holds for the syncer's status; the status then.
pub async fn wait_for(syncer: &Syncer, timeout: Duration, pred: impl Fn(&Status) -> bool) -> Option<Status> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let s = syncer.status();
        if pred(&s) {
            return Some(s);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
