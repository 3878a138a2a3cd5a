//! Endpoint changes on top of a compiled program, without compiling it again.
//!
//! A pod that starts, stops or moves changes which IP belongs to which endpoint, nothing
//! else, as long as its label set is already a security identity of the program (another
//! pod agreeing on every label a selector reads exists or existed: a replica, or a pod of a
//! new rollout whose `pod-template-hash` no selector reads): the identity's selectors, policy lists and
//! rule indexes are the same. An [`Overlay`] holds such changes: the endpoints added since
//! the program was compiled (numbered after the program's own) and, per changed IP, its new
//! owner or none. `decide` looks an IP up in the overlay first, then in the program.
//!
//! An overlay is immutable once a snapshot holds it; the next change clones it (its entries
//! are shared) and adds to the copy. A label set that is not yet an identity is
//! [`NotIncremental`]: the caller compiles the whole bundle, which also starts a new, empty
//! overlay.

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::compile::{c_endpoint, relevant_hash, same_relevant};
use super::ranges::ip_key;
use super::{CEndpoint, Program, Rep};
use crate::model::{Bundle, Endpoint};

/// An IP whose owner was removed and not replaced.
const GONE: u32 = u32::MAX;

/// Why a change cannot be laid over the program: it needs a full compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotIncremental {
    /// The endpoint's label set is not an identity of the program.
    NewIdentity,
    /// One of its IPs is held by another endpoint.
    IpTaken,
}

/// Endpoints added or removed since a program was compiled (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Overlay {
    /// The program's endpoint count: an index at or above it is an overlay entry.
    base_len: u32,
    ip_v4: FxHashMap<u32, u32>,
    ip_v6: FxHashMap<u128, u32>,
    /// Added endpoints, compiled and as the model has them.
    entries: Vec<Arc<(CEndpoint, Endpoint)>>,
    /// Indices (program's or overlay's) of endpoints no longer in force, sorted.
    dead: Vec<u32>,
}

impl Overlay {
    /// An empty overlay on `prog`.
    pub(crate) fn new(prog: &Program) -> Overlay {
        Overlay {
            base_len: prog.endpoints.len() as u32,
            ip_v4: FxHashMap::default(),
            ip_v6: FxHashMap::default(),
            entries: Vec::new(),
            dead: Vec::new(),
        }
    }

    /// How many changes it holds (added plus removed endpoints).
    pub(crate) fn len(&self) -> usize {
        self.entries.len() + self.dead.len()
    }

    /// The endpoint index of an IP, when the overlay knows it: `Some(None)` for an IP whose
    /// owner was removed, `None` for an IP it has not changed.
    #[inline]
    fn index(&self, key: (bool, u128)) -> Option<Option<u32>> {
        let i = if key.0 { self.ip_v4.get(&(key.1 as u32)) } else { self.ip_v6.get(&key.1) };
        i.map(|&i| (i != GONE).then_some(i))
    }

    /// The endpoint index owning `ip` (canonical), overlay first, then `prog`.
    #[inline]
    pub(super) fn owner(&self, prog: &Program, key: (bool, u128)) -> Option<u32> {
        match self.index(key) {
            Some(i) => i,
            None => prog.base_index(key),
        }
    }

    /// The compiled endpoint at `index`.
    #[inline]
    pub(super) fn endpoint<'p>(&'p self, prog: &'p Program, index: u32) -> Option<&'p CEndpoint> {
        match index.checked_sub(self.base_len) {
            None => prog.endpoints.get(index as usize),
            Some(k) => self.entries.get(k as usize).map(|e| &e.0),
        }
    }

    /// The model endpoint at `index`; `base` is the bundle `prog` was compiled from.
    pub(crate) fn model<'a>(&'a self, base: &'a Bundle, index: u32) -> Option<&'a Endpoint> {
        match index.checked_sub(self.base_len) {
            None => base.endpoints.get(index as usize),
            Some(k) => self.entries.get(k as usize).map(|e| &e.1),
        }
    }

    /// Takes endpoint `index` out of force: its IPs that still point at it lose their owner.
    pub(crate) fn remove(&mut self, prog: &Program, base: &Bundle, index: u32) {
        let ips: Vec<IpAddr> = self.model(base, index).map(|e| e.ips.clone()).unwrap_or_default();
        for ip in ips {
            let key = ip_key(crate::net::canonical_ip(ip));
            if self.owner(prog, key) == Some(index) {
                self.set(key, GONE);
            }
        }
        if let Err(at) = self.dead.binary_search(&index) {
            self.dead.insert(at, index);
        }
    }

    /// Puts `e` in force, compiled against `prog`'s identities; returns its index. Nothing
    /// changes on an error.
    pub(crate) fn add(&mut self, prog: &Program, base: &Bundle, e: Endpoint) -> Result<u32, NotIncremental> {
        let identity = prog.known_identity(base, &e).ok_or(NotIncremental::NewIdentity)?;
        let keys: Vec<(bool, u128)> = e.ips.iter().map(|&ip| ip_key(crate::net::canonical_ip(ip))).collect();
        if keys.iter().any(|&k| self.owner(prog, k).is_some()) {
            return Err(NotIncremental::IpTaken);
        }
        let known = &prog.known;
        let lists = known.per_identity.get(identity as usize).copied().unwrap_or_default();
        // A port name no rule names has no id: no named-port criterion can match it.
        let port_id = |n: &str| known.port_names.get(n).copied().unwrap_or(u32::MAX);
        let compiled = c_endpoint(&e, identity, lists, port_id, &prog.principals);
        let index = self.base_len + self.entries.len() as u32;
        self.entries.push(Arc::new((compiled, e)));
        for k in keys {
            self.set(k, index);
        }
        Ok(index)
    }

    fn set(&mut self, key: (bool, u128), index: u32) {
        if key.0 {
            self.ip_v4.insert(key.1 as u32, index);
        } else {
            self.ip_v6.insert(key.1, index);
        }
    }

    /// Where endpoint `index` stands in [`Overlay::live_endpoints`] (what a trace's
    /// endpoint index refers to once rendered against the snapshot's bundle).
    pub(crate) fn live_index(&self, index: u32) -> u32 {
        let below = self.dead.partition_point(|&d| d < index);
        index - below as u32
    }

    /// The endpoints in force, in index order: the program's that were not removed, then
    /// the added ones that were not removed since.
    pub(crate) fn live_endpoints(&self, base: &Bundle) -> Vec<Endpoint> {
        let total = self.base_len + self.entries.len() as u32;
        (0..total)
            .filter(|i| self.dead.binary_search(i).is_err())
            .filter_map(|i| self.model(base, i).cloned())
            .collect()
    }
}

impl Program {
    /// The program's own endpoint index of an IP key.
    #[inline]
    pub(super) fn base_index(&self, key: (bool, u128)) -> Option<u32> {
        if key.0 { self.ip_v4.get(&(key.1 as u32)) } else { self.ip_v6.get(&key.1) }.copied()
    }

    /// The identity whose label set is `e`'s, if the program has one.
    fn known_identity(&self, base: &Bundle, e: &Endpoint) -> Option<u32> {
        let relevant = &self.known.relevant;
        let id = *self.known.by_hash.get(&relevant_hash(&e.labels, relevant))?;
        let labels = match *self.known.reps.get(id as usize)? {
            Rep::Endpoint(i) => &base.endpoints.get(i as usize)?.labels,
            Rep::NetworkSet(i) => &base.network_sets.get(i as usize)?.labels,
        };
        same_relevant(labels, &e.labels, relevant).then_some(id)
    }
}
