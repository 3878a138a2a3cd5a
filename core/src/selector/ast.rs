//! The selector syntax tree, its evaluation against labels, and its canonical form.

use std::collections::BTreeSet;
use std::fmt;

use sha2::{Digest, Sha224};

/// Something that can answer "what is the value of label `k`?".
///
/// Implemented for the label maps of the model; the compiled engine never evaluates
/// selectors per decision, only at compile time.
pub trait Labels {
    /// The value of `key`, or `None` when the label is absent.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for std::collections::BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

/// A parsed Calico selector expression.
///
/// Built by [`crate::selector::parse`]; evaluated with [`Expr::matches`]; printed in
/// Calico's canonical form by its `Display` implementation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expr {
    /// `all()`: matches everything.
    All,
    /// `global()`: matches everything; its meaning comes from the namespace-selector rewrite.
    Global,
    /// `has(k)`.
    Has(String),
    /// `k == "v"`: false when `k` is missing.
    Eq(String, String),
    /// `k != "v"`: true when `k` is missing.
    Ne(String, String),
    /// `k contains "v"`.
    Contains(String, String),
    /// `k starts with "v"`.
    StartsWith(String, String),
    /// `k ends with "v"`.
    EndsWith(String, String),
    /// `k in {...}`: false when `k` is missing.
    In(String, BTreeSet<String>),
    /// `k not in {...}`: true when `k` is missing.
    NotIn(String, BTreeSet<String>),
    /// `!e`.
    Not(Box<Expr>),
    /// `a && b && ...` (two or more operands).
    And(Vec<Expr>),
    /// `a || b || ...` (two or more operands).
    Or(Vec<Expr>),
}

impl Expr {
    /// Calls `f` with every label key the expression reads. Nothing else about a label set
    /// changes its value: two label sets that agree on these keys are matched alike.
    pub fn visit_keys<'a>(&'a self, f: &mut impl FnMut(&'a str)) {
        match self {
            Expr::All | Expr::Global => {}
            Expr::Has(k)
            | Expr::Eq(k, _)
            | Expr::Ne(k, _)
            | Expr::Contains(k, _)
            | Expr::StartsWith(k, _)
            | Expr::EndsWith(k, _)
            | Expr::In(k, _)
            | Expr::NotIn(k, _) => f(k),
            Expr::Not(e) => e.visit_keys(f),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.visit_keys(f)),
        }
    }

    /// Evaluates the expression against a label set with Calico's missing-label rules.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// let sel = palisade::selector::parse("app == 'web' && !has(quarantine)").unwrap();
    /// let mut labels = BTreeMap::new();
    /// labels.insert("app".to_string(), "web".to_string());
    /// assert!(sel.matches(&labels));
    /// labels.insert("quarantine".to_string(), "true".to_string());
    /// assert!(!sel.matches(&labels));
    /// ```
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Expr::All | Expr::Global => true,
            Expr::Has(k) => labels.label(k).is_some(),
            Expr::Eq(k, v) => labels.label(k) == Some(v.as_str()),
            Expr::Ne(k, v) => labels.label(k) != Some(v.as_str()),
            Expr::Contains(k, v) => labels.label(k).is_some_and(|x| x.contains(v.as_str())),
            Expr::StartsWith(k, v) => labels.label(k).is_some_and(|x| x.starts_with(v.as_str())),
            Expr::EndsWith(k, v) => labels.label(k).is_some_and(|x| x.ends_with(v.as_str())),
            Expr::In(k, set) => labels.label(k).is_some_and(|x| set.contains(x)),
            Expr::NotIn(k, set) => labels.label(k).is_none_or(|x| !set.contains(x)),
            Expr::Not(e) => !e.matches(labels),
            Expr::And(es) => es.iter().all(|e| e.matches(labels)),
            Expr::Or(es) => es.iter().any(|e| e.matches(labels)),
        }
    }

    /// `a && b`, flattening nothing (the canonical form keeps the nesting).
    pub fn and(a: Expr, b: Expr) -> Expr {
        Expr::And(vec![a, b])
    }

    /// Whether `global()` appears anywhere in the expression.
    pub fn mentions_global(&self) -> bool {
        match self {
            Expr::Global => true,
            Expr::Not(e) => e.mentions_global(),
            Expr::And(es) | Expr::Or(es) => es.iter().any(Expr::mentions_global),
            _ => false,
        }
    }

    /// Rewrites every label key with `prefix` (Calico's `pcns.` / `pcsa.` scoping), and
    /// `all()` / `global()` as the namespace-selector rewrite does: `all()` becomes
    /// `has(<all_becomes>)` and `global()` becomes `!has(<all_becomes>)` when
    /// `all_becomes` is given.
    pub fn prefixed(&self, prefix: &str, all_becomes: Option<&str>) -> Expr {
        let p = |k: &String| format!("{prefix}{k}");
        match self {
            Expr::All => match all_becomes {
                Some(k) => Expr::Has(k.to_string()),
                None => Expr::All,
            },
            Expr::Global => match all_becomes {
                Some(k) => Expr::Not(Box::new(Expr::Has(k.to_string()))),
                None => Expr::Global,
            },
            Expr::Has(k) => Expr::Has(p(k)),
            Expr::Eq(k, v) => Expr::Eq(p(k), v.clone()),
            Expr::Ne(k, v) => Expr::Ne(p(k), v.clone()),
            Expr::Contains(k, v) => Expr::Contains(p(k), v.clone()),
            Expr::StartsWith(k, v) => Expr::StartsWith(p(k), v.clone()),
            Expr::EndsWith(k, v) => Expr::EndsWith(p(k), v.clone()),
            Expr::In(k, s) => Expr::In(p(k), s.clone()),
            Expr::NotIn(k, s) => Expr::NotIn(p(k), s.clone()),
            Expr::Not(e) => Expr::Not(Box::new(e.prefixed(prefix, all_becomes))),
            Expr::And(es) => Expr::And(es.iter().map(|e| e.prefixed(prefix, all_becomes)).collect()),
            Expr::Or(es) => Expr::Or(es.iter().map(|e| e.prefixed(prefix, all_becomes)).collect()),
        }
    }

    /// The canonical text, as Calico prints it (also what `Display` gives).
    pub fn canonical(&self) -> String {
        self.to_string()
    }

    /// Calico's unique id of the selector: `"s:" + base64url_nopad(SHA-224("s:" + canonical))`.
    ///
    /// ```
    /// let sel = palisade::selector::parse("").unwrap();
    /// assert_eq!(sel.unique_id(), "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug");
    /// ```
    pub fn unique_id(&self) -> String {
        use base64::Engine as _;
        let mut h = Sha224::new();
        h.update(b"s:");
        h.update(self.canonical().as_bytes());
        format!("s:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize()))
    }
}

fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    if s.contains('"') { write!(f, "'{s}'") } else { write!(f, "\"{s}\"") }
}

fn write_set(f: &mut fmt::Formatter<'_>, set: &BTreeSet<String>) -> fmt::Result {
    f.write_str("{")?;
    for (i, v) in set.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_str(f, v)?;
    }
    f.write_str("}")
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::All => f.write_str("all()"),
            Expr::Global => f.write_str("global()"),
            Expr::Has(k) => write!(f, "has({k})"),
            Expr::Eq(k, v) => {
                write!(f, "{k} == ")?;
                write_str(f, v)
            }
            Expr::Ne(k, v) => {
                write!(f, "{k} != ")?;
                write_str(f, v)
            }
            Expr::Contains(k, v) => {
                write!(f, "{k} contains ")?;
                write_str(f, v)
            }
            Expr::StartsWith(k, v) => {
                write!(f, "{k} starts with ")?;
                write_str(f, v)
            }
            Expr::EndsWith(k, v) => {
                write!(f, "{k} ends with ")?;
                write_str(f, v)
            }
            Expr::In(k, s) => {
                write!(f, "{k} in ")?;
                write_set(f, s)
            }
            Expr::NotIn(k, s) => {
                write!(f, "{k} not in ")?;
                write_set(f, s)
            }
            Expr::Not(e) => write!(f, "!{e}"),
            Expr::And(es) | Expr::Or(es) => {
                let sep = if matches!(self, Expr::And(_)) { " && " } else { " || " };
                f.write_str("(")?;
                for (i, e) in es.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str(")")
            }
        }
    }
}
