//! The principal index: within one tier segment, which rules can match a given source
//! principal.
//!
//! Istio ALLOW policies are mostly "this caller may do that": every source of the rule
//! names exact principals. Such a rule can only match a request whose principal is one of
//! them, so a segment with many of them keeps, per principal, the ordered positions of the
//! rules that name it, and apart the positions of every other rule (Calico rules, Istio
//! rules without exact principals). Deciding merges the two ordered lists and evaluates
//! only those rules, with the same matcher and in the same order as the plain walk: the
//! outcome and the trace are the walk's, at a cost set by the rules that concern the caller
//! rather than by the size of the segment.

use rustc_hash::FxHashMap;

use super::CRule;
use crate::model::{IstioRule, StrMatch};

/// Segments with fewer keyed rules than this are walked plainly. One is enough: the index
/// costs one hash probe per decision, and indexing every such segment keeps the fast path
/// under the differential test.
pub(super) const MIN_KEYED_RULES: usize = 1;

/// Interned principals (Istio form: the SPIFFE ID without `spiffe://`).
#[derive(Debug, Default)]
pub(super) struct PrincipalIds {
    ids: FxHashMap<Box<str>, u32>,
}

impl PrincipalIds {
    /// The id of `p`, interning it.
    pub fn intern(&mut self, p: &str) -> u32 {
        if let Some(&id) = self.ids.get(p) {
            return id;
        }
        let id = self.ids.len() as u32;
        self.ids.insert(p.into(), id);
        id
    }

    /// The id of `p`, if any rule or endpoint names it.
    #[inline]
    pub fn get(&self, p: &str) -> Option<u32> {
        self.ids.get(p).copied()
    }

    /// Whether no principal is interned.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.ids.keys().map(|k| k.len() + 24).sum::<usize>() * 8 / 7
    }
}

/// The index of one segment on one side.
#[derive(Debug)]
pub(super) struct SegIndex {
    /// Principal id -> ascending positions of the rules that name it.
    by_principal: FxHashMap<u32, Box<[u32]>>,
    /// Ascending positions of the rules the principal does not decide.
    rest: Box<[u32]>,
    /// Position -> (policy index within the segment, rule index within the policy).
    refs: Box<[(u32, u32)]>,
}

/// The exact principals a rule requires, or `None` when it can match other principals too.
fn keys(r: &IstioRule) -> Option<Vec<&str>> {
    if r.from.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for s in &r.from {
        if s.principals.is_empty() {
            return None;
        }
        for m in &s.principals {
            match m {
                StrMatch::Exact(p) => out.push(p.as_str()),
                _ => return None,
            }
        }
    }
    Some(out)
}

impl SegIndex {
    /// Builds the index of a segment whose policies' rules (on one side) are `rules`, or
    /// `None` when too few rules are keyed for the index to pay.
    pub fn build<'r>(rules: impl Iterator<Item = &'r [CRule]>, ids: &mut PrincipalIds) -> Option<SegIndex> {
        let mut refs = Vec::new();
        let mut rest = Vec::new();
        let mut by_principal: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        let mut keyed = 0usize;
        for (pp, list) in rules.enumerate() {
            for (ri, rule) in list.iter().enumerate() {
                let pos = refs.len() as u32;
                refs.push((pp as u32, ri as u32));
                match rule.istio.as_deref().and_then(|i| keys(&i.rule)) {
                    Some(ks) => {
                        keyed += 1;
                        for k in ks {
                            let v = by_principal.entry(ids.intern(k)).or_default();
                            if v.last() != Some(&pos) {
                                v.push(pos);
                            }
                        }
                    }
                    None => rest.push(pos),
                }
            }
        }
        (keyed >= MIN_KEYED_RULES).then(|| SegIndex {
            by_principal: by_principal.into_iter().map(|(k, v)| (k, v.into_boxed_slice())).collect(),
            rest: rest.into_boxed_slice(),
            refs: refs.into_boxed_slice(),
        })
    }

    /// Calls `f(policy index, rule index)` for every rule that may match a request with
    /// this principal, in segment order, until `f` returns `true`.
    #[inline]
    pub fn for_candidates(&self, principal: Option<u32>, mut f: impl FnMut(u32, u32) -> bool) {
        let keyed: &[u32] = principal.and_then(|p| self.by_principal.get(&p)).map(|b| &**b).unwrap_or_default();
        let (mut a, mut b) = (keyed.iter().peekable(), self.rest.iter().peekable());
        loop {
            let pos = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_), None) => a.next(),
                (_, Some(_)) => b.next(),
                (None, None) => return,
            };
            let Some(&(pp, ri)) = pos.and_then(|&p| self.refs.get(p as usize)) else { return };
            if f(pp, ri) {
                return;
            }
        }
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        let lists: usize = self.by_principal.values().map(|v| v.len() * 4 + 28).sum();
        lists * 8 / 7 + self.rest.len() * 4 + self.refs.len() * 8
    }
}
