//! The rule index of a tier segment: which rules can match a given request, by the
//! request's keys (issue 21).
//!
//! A rule whose every way to match requires one key of the request to take one of a few
//! values can be skipped when the request's key has none of them. Three keys are used:
//!
//! * **the source principal**, for Istio rules whose every source names exact principals
//!   (the principal index of the side-by-side issue);
//! * **the source's security identities**, for Calico rules with a positive source
//!   selector (`selector`, `namespaceSelector`, `serviceAccounts`, folded into one): the
//!   rule's selector was resolved at compile time to an identity set, and the rule matches
//!   only a source whose endpoint identity or one of whose network-set identities is in
//!   that set (exactly what the walk's selector test checks);
//! * **the destination's security identities**, likewise, for Calico rules keyed on a
//!   destination selector (egress rules, mostly).
//!
//! Each rule is keyed on at most one of them (a source selector if it has one that is
//! small enough, else a destination selector, else a principal list), or kept in `rest`,
//! the rules no key decides (nets-only rules, bare `Pass`, not-selectors alone, Istio rules
//! without exact principals, selectors matching too many identities).
//!
//! Deciding looks up the request's keys (one hash probe per key and per network-set
//! identity of each end), merges the ascending position lists it finds with `rest` in
//! segment order (a rule found under two keys is visited once) and evaluates only those
//! rules, with the walk's own matcher and in the walk's order: the outcome and the trace
//! are the plain walk's, a rule that is skipped could not have matched. The merge holds
//! its cursors in a fixed array; a request with more lists than that (an IP covered by
//! many network sets) walks the segment plainly.
//!
//! Memory: per indexed segment and side, 8 bytes per rule (its position) plus 4 bytes per
//! (rule, key) pair and about 16 bytes per distinct key; a rule is keyed on at most
//! [`MAX_KEY_IDS`] identities, so the index is at most `8 + 4 * MAX_KEY_IDS` bytes per
//! rule beyond the hash tables. Identical segments (the same tier and policies, on the
//! same side) share one index.

use rustc_hash::FxHashMap;

use super::principal_index::{PrincipalIds, keys as principal_keys};
use super::{CRule, IdSet, NO_SELECTOR};

/// A rule whose selector matches more identities than this is not keyed (kept in `rest`):
/// it bounds the index at `4 * MAX_KEY_IDS` bytes per rule.
pub(super) const MAX_KEY_IDS: usize = 256;

/// Segments with fewer keyed rules than this are walked plainly. One is enough: the index
/// costs a hash probe or two per decision, and indexing every such segment keeps the fast
/// path under the differential test.
pub(super) const MIN_KEYED_RULES: usize = 1;

/// The most position lists one decision merges; beyond, the segment is walked plainly.
const MAX_LISTS: usize = 8;

/// A position list: `(start, len)` in [`SegIndex::positions`].
type Span = (u32, u32);

/// The index of one segment on one side.
#[derive(Debug, Default)]
pub(super) struct SegIndex {
    /// Principal id -> the rules keyed on it.
    by_principal: FxHashMap<u32, Span>,
    /// Source identity -> the source-keyed rules whose selector contains it.
    by_src: FxHashMap<u32, Span>,
    /// Destination identity -> the destination-keyed rules whose selector contains it.
    by_dst: FxHashMap<u32, Span>,
    /// Every position list, ascending within each span.
    positions: Box<[u32]>,
    /// Ascending positions of the rules no key decides.
    rest: Box<[u32]>,
    /// Position -> (policy index within the segment, rule index within the policy).
    refs: Box<[(u32, u32)]>,
    /// Counts, for tests and reports: rules keyed on principals, sources, destinations.
    keyed: [u32; 3],
}

/// The request's keys, as the walk knows them.
pub(super) struct Keys<'a> {
    pub principal: Option<u32>,
    pub src_identity: Option<u32>,
    pub src_sets: &'a [u32],
    pub dst_identity: Option<u32>,
    pub dst_sets: &'a [u32],
}

/// How one rule is keyed.
enum Key<'r> {
    Principals(Vec<&'r str>),
    Src(&'r IdSet),
    Dst(&'r IdSet),
    Rest,
}

fn key_of<'r>(rule: &'r CRule, selectors: &'r [IdSet]) -> Key<'r> {
    if let Some(i) = rule.istio.as_deref() {
        return principal_keys(&i.rule).map_or(Key::Rest, Key::Principals);
    }
    if rule.matches_all {
        return Key::Rest;
    }
    let small = |sel: u32| {
        if sel == NO_SELECTOR {
            return None;
        }
        selectors.get(sel as usize).filter(|s| s.len() <= MAX_KEY_IDS)
    };
    match (small(rule.src.selector), small(rule.dst.selector)) {
        (Some(s), Some(d)) if d.len() < s.len() => Key::Dst(d),
        (Some(s), _) => Key::Src(s),
        (None, Some(d)) => Key::Dst(d),
        (None, None) => Key::Rest,
    }
}

/// Flattens per-key position lists into spans of one array.
fn flatten(map: FxHashMap<u32, Vec<u32>>, positions: &mut Vec<u32>) -> FxHashMap<u32, Span> {
    let mut out = FxHashMap::default();
    out.reserve(map.len());
    for (k, v) in map {
        out.insert(k, (positions.len() as u32, v.len() as u32));
        positions.extend(v);
    }
    out
}

/// Appends a non-empty list to the merge's cursors; `false` when they are full.
#[inline]
fn push<'a>(lists: &mut [&'a [u32]; MAX_LISTS], n: &mut usize, l: &'a [u32]) -> bool {
    if l.is_empty() {
        return true;
    }
    match lists.get_mut(*n) {
        Some(slot) => {
            *slot = l;
            *n += 1;
            true
        }
        None => false,
    }
}

impl SegIndex {
    /// Builds the index of a segment whose policies' rules (on one side) are `rules`, or
    /// `None` when too few rules are keyed for the index to pay.
    pub fn build<'r>(
        rules: impl Iterator<Item = &'r [CRule]>,
        selectors: &[IdSet],
        ids: &mut PrincipalIds,
    ) -> Option<SegIndex> {
        let mut refs = Vec::new();
        let mut rest = Vec::new();
        let mut maps: [FxHashMap<u32, Vec<u32>>; 3] = Default::default();
        let mut keyed = [0u32; 3];
        let push = |map: &mut FxHashMap<u32, Vec<u32>>, k: u32, pos: u32| {
            let v = map.entry(k).or_default();
            if v.last() != Some(&pos) {
                v.push(pos);
            }
        };
        for (pp, list) in rules.enumerate() {
            for (ri, rule) in list.iter().enumerate() {
                let pos = refs.len() as u32;
                refs.push((pp as u32, ri as u32));
                let (slot, keys): (usize, Vec<u32>) = match key_of(rule, selectors) {
                    Key::Principals(ps) => (0, ps.into_iter().map(|p| ids.intern(p)).collect()),
                    Key::Src(s) => (1, s.iter().collect()),
                    Key::Dst(d) => (2, d.iter().collect()),
                    Key::Rest => {
                        rest.push(pos);
                        continue;
                    }
                };
                if let (Some(map), Some(count)) = (maps.get_mut(slot), keyed.get_mut(slot)) {
                    *count += 1;
                    for k in keys {
                        push(map, k, pos);
                    }
                }
            }
        }
        if (keyed.iter().sum::<u32>() as usize) < MIN_KEYED_RULES {
            return None;
        }
        let [p, s, d] = maps;
        let mut positions = Vec::new();
        Some(SegIndex {
            by_principal: flatten(p, &mut positions),
            by_src: flatten(s, &mut positions),
            by_dst: flatten(d, &mut positions),
            positions: positions.into_boxed_slice(),
            rest: rest.into_boxed_slice(),
            refs: refs.into_boxed_slice(),
            keyed,
        })
    }

    #[inline]
    fn span(&self, map: &FxHashMap<u32, Span>, k: u32) -> &[u32] {
        match map.get(&k) {
            Some(&(start, len)) => self.positions.get(start as usize..(start + len) as usize).unwrap_or_default(),
            None => &[],
        }
    }

    /// Calls `f(policy index, rule index)` for every rule that may match a request with
    /// these keys, in segment order, until `f` returns `true`.
    #[inline]
    pub fn for_candidates(&self, k: &Keys<'_>, f: impl FnMut(u32, u32) -> bool) {
        let (src, dst) = (!self.by_src.is_empty(), !self.by_dst.is_empty());
        if (!src || k.src_sets.is_empty()) && (!dst || k.dst_sets.is_empty()) {
            // The common case: no network-set identity to look up, so one list per key
            // family (the families are disjoint), usually one of them non-empty.
            let p = match k.principal {
                Some(p) if !self.by_principal.is_empty() => self.span(&self.by_principal, p),
                _ => &[],
            };
            let s = match k.src_identity {
                Some(i) if src => self.span(&self.by_src, i),
                _ => &[],
            };
            let d = match k.dst_identity {
                Some(i) if dst => self.span(&self.by_dst, i),
                _ => &[],
            };
            let keyed = match (p.is_empty(), s.is_empty(), d.is_empty()) {
                (_, true, true) => Some(p),
                (true, _, true) => Some(s),
                (true, true, _) => Some(d),
                _ => None,
            };
            if let Some(keyed) = keyed {
                self.merge2(&self.rest, keyed, f);
                return;
            }
        }
        self.merge_all(k, f);
    }

    /// Visits the union of two ascending lists in order.
    #[inline]
    fn merge2(&self, mut a: &[u32], mut b: &[u32], mut f: impl FnMut(u32, u32) -> bool) {
        loop {
            let pos = match (a.first(), b.first()) {
                (Some(&x), Some(&y)) => {
                    if x <= y {
                        a = a.get(1..).unwrap_or_default();
                        if x == y {
                            b = b.get(1..).unwrap_or_default();
                        }
                        x
                    } else {
                        b = b.get(1..).unwrap_or_default();
                        y
                    }
                }
                (Some(&x), None) => {
                    a = a.get(1..).unwrap_or_default();
                    x
                }
                (None, Some(&y)) => {
                    b = b.get(1..).unwrap_or_default();
                    y
                }
                (None, None) => return,
            };
            let Some(&(pp, ri)) = self.refs.get(pos as usize) else { return };
            if f(pp, ri) {
                return;
            }
        }
    }

    /// The general case: every key's list, network-set identities included, merged.
    fn merge_all(&self, k: &Keys<'_>, mut f: impl FnMut(u32, u32) -> bool) {
        let mut lists: [&[u32]; MAX_LISTS] = [&[]; MAX_LISTS];
        let mut n = 0usize;
        let mut fits = push(&mut lists, &mut n, &self.rest);
        if !self.by_principal.is_empty()
            && let Some(p) = k.principal
        {
            fits &= push(&mut lists, &mut n, self.span(&self.by_principal, p));
        }
        for (map, identity, sets) in
            [(&self.by_src, k.src_identity, k.src_sets), (&self.by_dst, k.dst_identity, k.dst_sets)]
        {
            if map.is_empty() {
                continue;
            }
            if let Some(i) = identity {
                fits &= push(&mut lists, &mut n, self.span(map, i));
            }
            for &i in sets {
                fits &= push(&mut lists, &mut n, self.span(map, i));
            }
        }
        if !fits {
            // More lists than the merge holds: every rule, in order (the plain walk).
            for &(pp, ri) in self.refs.iter() {
                if f(pp, ri) {
                    return;
                }
            }
            return;
        }
        let lists = lists.get_mut(..n).unwrap_or_default();
        match *lists {
            [a] => return self.merge2(a, &[], f),
            [a, b] => return self.merge2(a, b, f),
            _ => {}
        }
        loop {
            // The smallest head; every list starting with it advances (a rule found under
            // two keys is visited once).
            let mut min = u32::MAX;
            for l in lists.iter() {
                if let Some(&x) = l.first()
                    && x < min
                {
                    min = x;
                }
            }
            if min == u32::MAX {
                return;
            }
            for l in lists.iter_mut() {
                if l.first() == Some(&min) {
                    *l = l.get(1..).unwrap_or_default();
                }
            }
            let Some(&(pp, ri)) = self.refs.get(min as usize) else { return };
            if f(pp, ri) {
                return;
            }
        }
    }

    /// Rules keyed on principals, source identities and destination identities.
    pub fn keyed(&self) -> [u32; 3] {
        self.keyed
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        let entries = self.by_principal.len() + self.by_src.len() + self.by_dst.len();
        entries * 13 * 8 / 7 + self.positions.len() * 4 + self.rest.len() * 4 + self.refs.len() * 8
    }
}
