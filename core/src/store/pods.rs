//! Incremental pod changes: a change set of Pods alone, each of whose label sets is already
//! a security identity of the snapshot in force, is applied without parsing or compiling
//! anything but the pods themselves.
//!
//! What a pod's endpoint depends on besides the pod (its namespace's and service account's
//! labels, the PeerAuthentications, whether the bundle shows sidecar injection) is kept
//! from the last full build ([`Inventory`]); a pod's endpoint is made from it exactly as the
//! full build makes it, then laid over the compiled program
//! ([`Overlay`](crate::compiled::Overlay)). Anything else makes the change set take the
//! full path ([`super::build`]), which also reports any error: a change of another kind, an
//! invalid pod, a pod whose labels are a new identity, an IP claimed twice, the first pod
//! to show (or the last to stop showing) a sidecar, a delete in a bundle of nothing but
//! pods (it may leave the bundle empty, which a full build refuses). An overlay grown to [`MAX_OVERLAY`]
//! changes is first folded in ([`compact`]: the snapshot's own bundle compiled again, no
//! object re-read).
//!
//! `core/tests/incremental.rs` checks, over random change sequences, that every snapshot
//! made here decides as a full build of the same objects.

use std::collections::HashMap;

use super::{ApplyReport, Change, Staged, Store, stage};
use crate::compiled::Overlay;
use crate::load::{Doc, Inventory, ObjectRef};
use crate::snapshot::Snapshot;

/// Endpoint changes an overlay holds before the next change set is compiled in full.
///
/// An overlay is copied per change set (its entries are shared, its IP maps are not), so a
/// change costs more as it grows; the full compile it defers costs a fixed amount. At this
/// size a copy costs well under a millisecond, and at 1,000 pod changes a second a full
/// compile comes every few seconds.
pub const MAX_OVERLAY: usize = 4096;

/// The outcome of an incremental apply, to be committed by the caller (under the writers'
/// turn): the overlay of the next snapshot, the report, and the pods' documents and
/// endpoint indices to record.
pub(crate) struct Incremental {
    pub overlay: Overlay,
    pub report: ApplyReport,
    docs: HashMap<ObjectRef, Option<Doc>>,
    index: HashMap<ObjectRef, Option<u32>>,
    sidecar_pods: usize,
}

impl Incremental {
    /// Records the pods in the store and inventory the outcome was computed from.
    pub(crate) fn commit(self, store: &mut Store, inventory: &mut Inventory) -> (Overlay, ApplyReport) {
        for (key, doc) in self.docs {
            match doc {
                Some(d) => store.objects.insert(key, d),
                None => store.objects.remove(&key),
            };
        }
        for (key, i) in self.index {
            match i {
                Some(i) => inventory.pod_index.insert(key, i),
                None => inventory.pod_index.remove(&key),
            };
        }
        inventory.sidecar_pods = self.sidecar_pods;
        let report = ApplyReport { objects: store.objects.len(), ..self.report };
        (self.overlay, report)
    }
}

/// Applies `changes` to `snapshot` incrementally, or `None` when they need the full path.
/// Nothing is changed here: the caller swaps the outcome in.
pub(crate) fn apply(
    store: &Store,
    inventory: &Inventory,
    snapshot: &Snapshot,
    changes: &[Change],
    config: &crate::Config,
) -> Option<Incremental> {
    if snapshot.incremental_changes() >= MAX_OVERLAY || !may_apply(changes) {
        return None;
    }
    // Deleting the last pods of a bundle of pods alone may empty it: a full build decides.
    if !inventory.more_than_pods && changes.iter().any(|c| matches!(c, Change::Delete(_))) {
        return None;
    }
    let mut staged = Vec::with_capacity(changes.len());
    for s in stage(changes, config) {
        staged.push(s.ok()?);
    }
    let (prog, base) = snapshot.base();
    let mut overlay = snapshot.overlay();
    // The pods this change set touches: their document (or none, deleted) and endpoint.
    let mut docs: HashMap<ObjectRef, Option<Doc>> = HashMap::new();
    let mut index: HashMap<ObjectRef, Option<u32>> = HashMap::new();
    let shows_injection = inventory.sidecar_pods > 0;
    let mut sidecar_pods = inventory.sidecar_pods as isize;
    let (mut upserted, mut deleted) = (0, 0);
    let each = staged.iter().flat_map(|s| match s {
        Staged::Upsert(items) => items.iter().map(|(k, d)| (k, Some(d))).collect::<Vec<_>>(),
        Staged::Delete(k) => vec![(k, None)],
    });
    for (key, new_doc) in each {
        let key = key.clone();
        if !(key.group.is_empty() && key.kind == "Pod" && key.namespace.is_some()) {
            return None;
        }
        let old_doc = match docs.get(&key) {
            Some(d) => d.clone(),
            None => match store.objects.get(&key) {
                Some(d) => Some(d.clone()),
                // A delete whose key names the object otherwise (scope) takes the full path.
                None if new_doc.is_none() && store.find(&key).is_some() => return None,
                None => None,
            },
        };
        if new_doc.is_none() && old_doc.is_none() {
            continue;
        }
        let new_obj = match new_doc {
            Some(d) => Some(crate::load::pod_object(d, config)?),
            None => None,
        };
        let old_sidecar = old_doc.as_ref().is_some_and(|d| crate::load::pod_shows_sidecar(d, config));
        let new_sidecar = new_obj.as_ref().is_some_and(crate::load::obj_shows_sidecar);
        sidecar_pods += new_sidecar as isize - old_sidecar as isize;
        if (sidecar_pods > 0) != shows_injection {
            return None;
        }
        let endpoint = match &new_obj {
            Some(o) => inventory.pod_endpoint(o, base, shows_injection, config).ok()?,
            None => None,
        };
        let old_index = match index.get(&key) {
            Some(i) => *i,
            None => inventory.pod_index.get(&key).copied(),
        };
        if let Some(i) = old_index {
            overlay.remove(prog, base, i);
        }
        let new_index = match endpoint {
            Some(e) => Some(overlay.add(prog, base, e).ok()?),
            None => None,
        };
        index.insert(key.clone(), new_index);
        match new_doc {
            Some(d) => {
                upserted += 1;
                docs.insert(key, Some(d.clone()));
            }
            None => {
                deleted += 1;
                docs.insert(key, None);
            }
        }
    }
    Some(Incremental {
        overlay,
        report: ApplyReport { upserted, deleted, incremental: true, ..ApplyReport::default() },
        docs,
        index,
        sidecar_pods: sidecar_pods.max(0) as usize,
    })
}

/// Whether every change could be a pod's (the incremental path may apply).
pub(crate) fn may_apply(changes: &[Change]) -> bool {
    changes.iter().all(is_pod_change)
}

/// `snapshot` with its overlay folded in: compiled again from its own bundle (the model is
/// not rebuilt from the objects, so this costs the compile alone), with `inventory`'s pod
/// indices renumbered to it. What an overlay of [`MAX_OVERLAY`] changes becomes before the
/// next pod change is laid over it.
pub(crate) fn compact(snapshot: &Snapshot, inventory: &Inventory) -> (Snapshot, Inventory) {
    let mut inventory = inventory.clone();
    for i in inventory.pod_index.values_mut() {
        *i = snapshot.live_index(*i);
    }
    (snapshot.compacted(), inventory)
}

/// Whether a change could be a pod's (deletes are checked once keyed).
fn is_pod_change(c: &Change) -> bool {
    match c {
        Change::Delete(k) => k.group.is_empty() && k.kind == "Pod",
        Change::Upsert { value, .. } => {
            value.get("kind").and_then(|k| k.as_str()) == Some("Pod")
                && value.get("apiVersion").and_then(|k| k.as_str()) == Some("v1")
        }
        // Text may hold any number of documents of any kind: parsed by `stage`, checked there.
        Change::UpsertText { .. } => true,
    }
}
