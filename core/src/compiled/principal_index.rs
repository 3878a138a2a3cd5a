//! Principals for the principal key of the rule index ([`super::rule_index`]).
//!
//! Istio ALLOW policies are mostly "this caller may do that": every source of the rule
//! names exact principals. Such a rule can only match a request whose principal is one of
//! them, so the rule index keeps, per principal, the ordered positions of the rules that
//! name it. This module interns the principals and says which a rule requires.

use rustc_hash::FxHashMap;

use crate::model::{IstioRule, StrMatch};

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

/// The exact principals a rule requires, or `None` when it can match other principals too.
pub(super) fn keys(r: &IstioRule) -> Option<Vec<&str>> {
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
