//! Resolving selectors to identity sets at compile time, with an inverted label index so
//! that a selector costs set algebra over postings, not an evaluation per identity.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::idset::Bits;
use crate::selector::Expr;

/// Label postings: key -> value -> identities carrying `key=value`.
pub(crate) struct LabelIndex<'a> {
    n: usize,
    by_key: FxHashMap<&'a str, FxHashMap<&'a str, Vec<u32>>>,
}

impl<'a> LabelIndex<'a> {
    /// Indexes the label sets of identities `0..n`.
    pub fn new(identities: &'a [&'a BTreeMap<String, String>]) -> Self {
        let mut by_key: FxHashMap<&str, FxHashMap<&str, Vec<u32>>> = FxHashMap::default();
        for (i, labels) in identities.iter().enumerate() {
            for (k, v) in labels.iter() {
                by_key.entry(k.as_str()).or_default().entry(v.as_str()).or_default().push(i as u32);
            }
        }
        LabelIndex { n: identities.len(), by_key }
    }

    fn postings(&self, key: &str, pred: impl Fn(&str) -> bool) -> Bits {
        let mut b = Bits::empty(self.n);
        if let Some(values) = self.by_key.get(key) {
            for (v, ids) in values {
                if pred(v) {
                    for &i in ids {
                        b.set(i);
                    }
                }
            }
        }
        b
    }

    /// The identities whose labels satisfy `e`.
    pub fn eval(&self, e: &Expr) -> Bits {
        match e {
            Expr::All | Expr::Global => Bits::full(self.n),
            Expr::Has(k) => self.postings(k, |_| true),
            Expr::Eq(k, v) => self.postings(k, |x| x == v),
            Expr::Ne(k, v) => {
                let mut b = self.postings(k, |x| x == v);
                b.not();
                b
            }
            Expr::Contains(k, v) => self.postings(k, |x| x.contains(v.as_str())),
            Expr::StartsWith(k, v) => self.postings(k, |x| x.starts_with(v.as_str())),
            Expr::EndsWith(k, v) => self.postings(k, |x| x.ends_with(v.as_str())),
            Expr::In(k, set) => self.postings(k, |x| set.contains(x)),
            Expr::NotIn(k, set) => {
                let mut b = self.postings(k, |x| set.contains(x));
                b.not();
                b
            }
            Expr::Not(inner) => {
                let mut b = self.eval(inner);
                b.not();
                b
            }
            Expr::And(es) => {
                let mut b = Bits::full(self.n);
                for e in es {
                    b.and(&self.eval(e));
                }
                b
            }
            Expr::Or(es) => {
                let mut b = Bits::empty(self.n);
                for e in es {
                    b.or(&self.eval(e));
                }
                b
            }
        }
    }
}
