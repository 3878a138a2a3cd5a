//! The engine's object store and incremental changes ([`Engine::apply`](crate::Engine::apply)).
//!
//! The store keeps every object of the snapshot in force as a parsed document (a shared
//! `serde_json::Value`), keyed by group, kind, namespace and name ([`ObjectRef`]). A change
//! set ([`Change`]s: upserts and deletes) is staged against a copy of the store, the new
//! snapshot is built from the stored values (no object's text is parsed again, only the
//! changed objects' own text when they come as text), and the store and snapshot are swapped
//! together. Readers never wait: they keep deciding on the old snapshot until the swap.
//!
//! What happens to invalid objects:
//! * [`Engine::apply`](crate::Engine::apply) is all-or-nothing: if any change, or the whole
//!   set of objects after the changes, fails validation, nothing changes and the error lists
//!   every failure. An object whose new version is invalid keeps its last valid version; a
//!   new invalid object is not added.
//! * [`Engine::apply_lenient`](crate::Engine::apply_lenient) (what live sources use) drops the
//!   upserts that failed, applies the rest, and returns the dropped ones in
//!   [`ApplyReport::rejected`]. A dropped upsert of an existing object leaves its last valid
//!   version in force; a dropped new object is absent. Absent is not "silently more
//!   permissive": the rejection is returned (and `palisade-sync` reports it in its status
//!   and retries it with every later batch, since it may become valid when, say, its tier
//!   arrives). A delete is never dropped: the cluster has deleted the object.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::LoadError;
use crate::load::{self, Doc, Errors, ObjectRef, Source};

/// One change to the engine's objects.
#[derive(Debug, Clone)]
pub enum Change {
    /// Adds or replaces an object (or each item of a `List`), given as a parsed value.
    Upsert {
        /// A name for error messages (a file path, an etcd key, `Pod shop/web`).
        source: String,
        /// The object: `apiVersion`, `kind`, `metadata`, `spec`...
        value: Value,
    },
    /// Adds or replaces the objects in a YAML or JSON text (several documents allowed).
    UpsertText {
        /// A name for error messages.
        source: String,
        /// The text.
        text: String,
    },
    /// Removes an object. Removing an object that is not there does nothing.
    Delete(ObjectRef),
}

impl Change {
    /// An upsert of a parsed object, named `<apply>` in errors.
    pub fn upsert(value: Value) -> Change {
        Change::Upsert { source: "<apply>".into(), value }
    }

    /// An upsert of a parsed object, with a name for errors.
    pub fn upsert_from(source: impl Into<String>, value: Value) -> Change {
        Change::Upsert { source: source.into(), value }
    }

    /// An upsert of the objects in a YAML or JSON text.
    pub fn upsert_text(source: impl Into<String>, text: impl Into<String>) -> Change {
        Change::UpsertText { source: source.into(), text: text.into() }
    }

    /// A delete. `group` is the API group (`""` for core, `projectcalico.org`; the CRD
    /// group `crd.projectcalico.org` is folded into it), `namespace` `None` for a
    /// cluster-scoped kind.
    pub fn delete(group: &str, kind: &str, namespace: Option<&str>, name: &str) -> Change {
        let group = if group == "crd.projectcalico.org" { "projectcalico.org" } else { group };
        Change::Delete(ObjectRef {
            group: group.to_string(),
            kind: kind.to_string(),
            namespace: namespace.filter(|n| !n.is_empty()).map(str::to_string),
            name: name.to_string(),
        })
    }

    /// The objects this change names (an upsert's objects, parsed; a delete's key): what a
    /// live source must delete when the upstream item that produced it goes away.
    pub fn object_refs(&self, config: &crate::Config) -> Result<Vec<ObjectRef>, LoadError> {
        match stage(std::slice::from_ref(self), config).pop() {
            Some(Ok(Staged::Upsert(docs))) => Ok(docs.into_iter().map(|(k, _)| k).collect()),
            Some(Ok(Staged::Delete(k))) => Ok(vec![k]),
            Some(Err(e)) => Err(e),
            None => Ok(Vec::new()),
        }
    }

    fn source(&self) -> Option<&str> {
        match self {
            Change::Upsert { source, .. } | Change::UpsertText { source, .. } => Some(source),
            Change::Delete(_) => None,
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// The generation of the snapshot now in force.
    pub generation: u64,
    /// Objects added or replaced.
    pub upserted: usize,
    /// Objects removed (deletes of absent objects are not counted).
    pub deleted: usize,
    /// Objects in the store after the apply.
    pub objects: usize,
    /// Upserts that failed validation and were left out (only from `apply_lenient`), one
    /// error each with every failure of that upsert in its `others`.
    pub rejected: Vec<LoadError>,
    /// Whether the change set was applied incrementally (pods laid over the compiled
    /// program, see [`pods`]) rather than by a full build.
    pub incremental: bool,
}

/// The objects of the snapshot in force, as parsed documents.
#[derive(Clone, Default)]
pub(crate) struct Store {
    objects: BTreeMap<ObjectRef, Doc>,
}

/// A change with its documents parsed and keyed.
enum Staged {
    Upsert(Vec<(ObjectRef, Doc)>),
    Delete(ObjectRef),
}

impl Store {
    /// The store of a bundle loaded from `docs` (which have already been validated).
    pub(crate) fn from_docs(docs: Vec<Doc>, config: &crate::Config) -> Result<Store, LoadError> {
        let mut objects = BTreeMap::new();
        for doc in docs {
            objects.insert(load::object_key(&doc, config)?, doc);
        }
        Ok(Store { objects })
    }

    /// How many objects it holds.
    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }

    /// The stored documents, sharing their values.
    pub(crate) fn docs(&self) -> Vec<Doc> {
        self.objects.values().cloned().collect()
    }

    /// Every object with its key, in key order, sharing the values.
    pub(crate) fn entries(&self) -> Vec<(ObjectRef, std::sync::Arc<Value>)> {
        self.objects.iter().map(|(k, d)| (k.clone(), d.value.clone())).collect()
    }

    /// Looks a delete's key up: as given, then (for a key whose scope the caller could not
    /// know) cluster-scoped, then in the default namespace.
    fn find(&self, key: &ObjectRef) -> Option<ObjectRef> {
        if self.objects.contains_key(key) {
            return Some(key.clone());
        }
        let mut alt = key.clone();
        for ns in [None, Some("default".to_string())] {
            alt.namespace = ns;
            if self.objects.contains_key(&alt) {
                return Some(alt.clone());
            }
        }
        None
    }

    /// Applies staged changes in order; returns (upserted, deleted).
    fn apply(&mut self, staged: &[Staged]) -> (usize, usize) {
        let (mut up, mut del) = (0, 0);
        for s in staged {
            match s {
                Staged::Upsert(docs) => {
                    for (k, d) in docs {
                        self.objects.insert(k.clone(), d.clone());
                        up += 1;
                    }
                }
                Staged::Delete(key) => {
                    if let Some(k) = self.find(key) {
                        self.objects.remove(&k);
                        del += 1;
                    }
                }
            }
        }
        (up, del)
    }
}

/// Parses and keys each change; one error (with the change's failures in `others`) per
/// change that fails on its own.
fn stage(changes: &[Change], config: &crate::Config) -> Vec<Result<Staged, LoadError>> {
    changes
        .iter()
        .map(|c| {
            let mut errors = Errors::default();
            let docs = match c {
                Change::Delete(k) => return Ok(Staged::Delete(k.clone())),
                Change::Upsert { source, value } => {
                    let mut docs = Vec::new();
                    load::unwrap_lists(value.clone(), source, 0, None, 0, &mut docs, &mut errors);
                    docs
                }
                Change::UpsertText { source, text } => {
                    load::documents(&[Source { name: source, text }], config, &mut errors)
                }
            };
            let keyed: Vec<(ObjectRef, Doc)> =
                docs.into_iter().filter_map(|d| errors.keep(load::object_key(&d, config)).map(|k| (k, d))).collect();
            errors.finish(Staged::Upsert(keyed))
        })
        .collect()
}

/// The outcome of trying a change set against a store: the new store and its bundle.
pub(crate) struct Built {
    pub store: Store,
    pub bundle: crate::model::Bundle,
    pub inventory: crate::load::Inventory,
    pub report: ApplyReport,
}

/// Stages `changes` on a copy of `store` and builds the bundle, all-or-nothing.
pub(crate) fn build(store: &Store, changes: &[Change], config: &crate::Config) -> Result<Built, LoadError> {
    let mut errors = Errors::default();
    let staged: Vec<Staged> = stage(changes, config).into_iter().filter_map(|r| errors.keep(r)).collect();
    errors.finish(())?;
    let mut next = store.clone();
    let (upserted, deleted) = next.apply(&staged);
    let (bundle, inventory) = load::build_with_inventory(next.docs(), config, Errors::default())?;
    let objects = next.len();
    let report = ApplyReport { upserted, deleted, objects, ..ApplyReport::default() };
    Ok(Built { store: next, bundle, inventory, report })
}

/// As [`build`], leaving out the upserts that fail (on their own, or in the whole) and
/// reporting them. Fails only when the objects still do not validate without them (a
/// delete that breaks another object, or a failure in an unchanged object).
pub(crate) fn build_lenient(store: &Store, changes: &[Change], config: &crate::Config) -> Result<Built, LoadError> {
    let first = match build(store, changes, config) {
        Ok(b) => return Ok(b),
        Err(e) => e,
    };
    let mut failed: BTreeMap<String, Vec<LoadError>> = BTreeMap::new();
    let mut all = vec![LoadError { others: Vec::new(), ..first.clone() }];
    all.extend(first.others.iter().cloned());
    let sources: std::collections::BTreeSet<&str> = changes.iter().filter_map(Change::source).collect();
    for e in all {
        if sources.contains(e.file.as_str()) {
            failed.entry(e.file.clone()).or_default().push(e);
        }
    }
    if failed.is_empty() {
        return Err(first);
    }
    let kept: Vec<Change> =
        changes.iter().filter(|c| c.source().is_none_or(|s| !failed.contains_key(s))).cloned().collect();
    let mut built = build(store, &kept, config)?;
    built.report.rejected = failed
        .into_values()
        .filter_map(|errs| {
            let mut it = errs.into_iter();
            it.next().map(|mut head| {
                head.others = it.collect();
                head
            })
        })
        .collect();
    Ok(built)
}

pub mod pods;

#[cfg(test)]
mod tests;
