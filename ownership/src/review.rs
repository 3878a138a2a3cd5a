//! Reviewing a change: two bundles compared, every created, changed or deleted object
//! authorized for one user.

use std::collections::BTreeMap;
use std::path::Path;

use palisade::model::{Bundle, NetworkSet, Policy, Tier, TierDefault};
use palisade::{Config, LoadError, LoadErrorKind};
use serde_json::json;

use crate::calico::{Kind, Operation, Outcome, authorize};
use crate::rbac::{Rbac, User};

/// What happens to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// New in the head bundle.
    Create,
    /// In both, different.
    Update,
    /// Gone from the head bundle.
    Delete,
}

impl Op {
    /// `created`, `changed`, `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "created",
            Op::Update => "changed",
            Op::Delete => "deleted",
        }
    }
}

/// One object created, changed or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happens.
    pub op: Op,
    /// The object's kind.
    pub kind: Kind,
    /// Its namespace (namespaced kinds).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The tier before (`None` when created, or for untiered kinds).
    pub old_tier: Option<String>,
    /// The tier after (`None` when deleted, or for untiered kinds).
    pub new_tier: Option<String>,
}

impl Change {
    /// `kind [ns/]name`, as the tables print it.
    pub fn object(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}/{}", self.kind.short(), ns, self.name),
            None => format!("{} {}", self.kind.short(), self.name),
        }
    }

    /// `a`, or `a -> b` for a move.
    pub fn tier(&self) -> String {
        match (&self.old_tier, &self.new_tier) {
            (Some(a), Some(b)) if a != b => format!("{a} -> {b}"),
            (Some(a), _) | (None, Some(a)) => a.clone(),
            (None, None) => "-".into(),
        }
    }

    /// The tiers whose rights the change needs, in upstream's order (old, then new).
    pub fn tiers(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for t in [&self.old_tier, &self.new_tier].into_iter().flatten() {
            if !out.contains(&t.as_str()) {
                out.push(t.as_str());
            }
        }
        out
    }
}

/// The verbs changes are made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verbs {
    /// For a changed object: `update` (a PUT, `kubectl replace`) or `patch` (`kubectl
    /// apply`, server-side apply, most GitOps controllers).
    pub update: String,
}

impl Default for Verbs {
    fn default() -> Verbs {
        Verbs { update: "update".into() }
    }
}

/// A change and whether the user may make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The change.
    pub change: Change,
    /// The verb it takes.
    pub verb: String,
    /// The authorization steps and the outcome.
    pub outcome: Outcome,
}

/// Every change between two bundles, and the verdict on each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The user reviewed.
    pub user: User,
    /// One verdict per change, tiers first, then policies by tier, then network sets.
    pub verdicts: Vec<Verdict>,
}

impl Review {
    /// Whether every change is allowed (true when nothing changed).
    pub fn allowed(&self) -> bool {
        self.verdicts.iter().all(|v| v.outcome.allowed)
    }

    /// How many changes are refused.
    pub fn refused(&self) -> usize {
        self.verdicts.iter().filter(|v| !v.outcome.allowed).count()
    }
}

/// Implicit tiers: their values when the bundle does not declare them (SPEC section 2).
fn implicit_tier(name: &str) -> Option<Tier> {
    let (order, default_action) = match name {
        "default" => (1_000_000.0, TierDefault::Deny),
        "istio-deny" => (999_998.0, TierDefault::Pass),
        "istio-allow" => (999_999.0, TierDefault::Deny),
        _ => return None,
    };
    Some(Tier { name: name.into(), order: Some(order), default_action })
}

fn tier_name(b: &Bundle, p: &Policy) -> String {
    b.tier(p.tier).map(|t| t.name.clone()).unwrap_or_else(|| "default".into())
}

/// A policy as evaluated, without what only says where it sits (tier id, file).
fn comparable(p: &Policy) -> Policy {
    let mut p = p.clone();
    p.tier = 0;
    p.origin.clear();
    p
}

/// A network set without the labels derived from its namespace (namespace edits are not
/// network-set edits).
fn comparable_set(s: &NetworkSet) -> NetworkSet {
    let mut s = s.clone();
    s.labels.retain(|k, _| !k.starts_with("pcns.") && k != "projectcalico.org/namespace");
    s
}

type Key = (Kind, Option<String>, String);

/// The changes from `base` to `head`: tiers, policies (every kind Palisade reads) and
/// network sets. "Changed" means what Palisade evaluates changed (selector, rules, order,
/// types, tier, staged action; for a tier its order and default action; for a network set
/// its nets and labels); an edit of comments, formatting, or of labels and annotations
/// that do not change evaluation is not a change. Inventory (Pods, Namespaces,
/// ServiceAccounts) is not reviewed.
pub fn diff(base: &Bundle, head: &Bundle) -> Vec<Change> {
    let mut out = Vec::new();
    // Tiers: the implicit ones compare against their implicit values.
    let tiers =
        |b: &Bundle| -> BTreeMap<String, Tier> { b.tiers.iter().map(|t| (t.name.clone(), t.clone())).collect() };
    let (bt, ht) = (tiers(base), tiers(head));
    let mut names: Vec<&String> = bt.keys().chain(ht.keys()).collect();
    names.sort();
    names.dedup();
    for n in names {
        let (a, b) = (bt.get(n).cloned().or_else(|| implicit_tier(n)), ht.get(n).cloned().or_else(|| implicit_tier(n)));
        let op = match (&a, &b) {
            (None, Some(_)) => Op::Create,
            (Some(_), None) => Op::Delete,
            (Some(x), Some(y)) if x != y => Op::Update,
            _ => continue,
        };
        out.push(Change { op, kind: Kind::Tier, namespace: None, name: n.clone(), old_tier: None, new_tier: None });
    }
    // Policies.
    let policies = |b: &Bundle| -> BTreeMap<Key, (String, Policy)> {
        b.policies
            .iter()
            .map(|p| ((Kind::of_policy(p.kind), p.namespace.clone(), p.name.clone()), (tier_name(b, p), comparable(p))))
            .collect()
    };
    let (bp, hp) = (policies(base), policies(head));
    let mut keys: Vec<&Key> = bp.keys().chain(hp.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut pchanges = Vec::new();
    for k in keys {
        let (a, b) = (bp.get(k), hp.get(k));
        let op = match (a, b) {
            (None, Some(_)) => Op::Create,
            (Some(_), None) => Op::Delete,
            (Some((ta, pa)), Some((tb, pb))) if ta != tb || pa != pb => Op::Update,
            _ => continue,
        };
        pchanges.push(Change {
            op,
            kind: k.0,
            namespace: k.1.clone(),
            name: k.2.clone(),
            old_tier: a.map(|x| x.0.clone()),
            new_tier: b.map(|x| x.0.clone()),
        });
    }
    // Policies by the tier order of the head (or base) bundle, then kind, namespace, name.
    let position =
        |t: &str| head.tiers.iter().position(|x| x.name == t).or_else(|| base.tiers.iter().position(|x| x.name == t));
    pchanges.sort_by_key(|c| {
        let t = c.new_tier.as_deref().or(c.old_tier.as_deref()).unwrap_or("default");
        (position(t).unwrap_or(usize::MAX), c.kind, c.namespace.clone(), c.name.clone())
    });
    out.extend(pchanges);
    // Network sets.
    let sets = |b: &Bundle| -> BTreeMap<Key, NetworkSet> {
        b.network_sets
            .iter()
            .map(|s| {
                let kind = if s.namespace.is_some() { Kind::NetworkSet } else { Kind::GlobalNetworkSet };
                ((kind, s.namespace.clone(), s.name.clone()), comparable_set(s))
            })
            .collect()
    };
    let (bs, hs) = (sets(base), sets(head));
    let mut keys: Vec<&Key> = bs.keys().chain(hs.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let op = match (bs.get(k), hs.get(k)) {
            (None, Some(_)) => Op::Create,
            (Some(_), None) => Op::Delete,
            (Some(a), Some(b)) if a != b => Op::Update,
            _ => continue,
        };
        out.push(Change { op, kind: k.0, namespace: k.1.clone(), name: k.2.clone(), old_tier: None, new_tier: None });
    }
    out
}

/// The verdict on one change.
pub fn judge(rbac: &Rbac, user: &User, change: &Change, verbs: &Verbs) -> Verdict {
    let verb = match change.op {
        Op::Create => "create".to_string(),
        Op::Update => verbs.update.clone(),
        Op::Delete => "delete".to_string(),
    };
    let op = Operation {
        verb: &verb,
        kind: change.kind,
        namespace: change.namespace.as_deref(),
        name: &change.name,
        tiers: change.tiers(),
    };
    let outcome = authorize(rbac, user, &op);
    Verdict { change: change.clone(), verb, outcome }
}

/// Reviews the change from `base` to `head` for `user`.
pub fn review(rbac: &Rbac, user: &User, base: &Bundle, head: &Bundle, verbs: &Verbs) -> Review {
    let verdicts = diff(base, head).iter().map(|c| judge(rbac, user, c, verbs)).collect();
    Review { user: user.clone(), verdicts }
}

/// Loads a bundle directory (or file) with Palisade's loader; a directory with no
/// Palisade object (a repository's first commit) is the empty bundle.
pub fn load_bundle<P: AsRef<Path>>(paths: &[P], config: &Config) -> Result<Bundle, LoadError> {
    let files = palisade::load::read_paths(paths, config.max_bundle_bytes)?;
    let sources: Vec<palisade::load::Source<'_>> =
        files.iter().map(|(n, t)| palisade::load::Source { name: n, text: t }).collect();
    match palisade::load::load(&sources, config) {
        Err(e) if e.kind == LoadErrorKind::Empty => Ok(Bundle::default()),
        r => r,
    }
}

/// How a review is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal or a CI log.
    Table,
    /// One JSON document.
    Json,
    /// A Markdown table, for a pull-request comment.
    Markdown,
}

impl Format {
    /// `table`, `json`, `markdown`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "table" => Some(Format::Table),
            "json" => Some(Format::Json),
            "markdown" | "md" => Some(Format::Markdown),
            _ => None,
        }
    }
}

fn why(v: &Verdict) -> String {
    let denials: Vec<&str> = v.outcome.steps.iter().filter(|s| !s.allowed).map(|s| s.message.as_str()).collect();
    denials.join("; ")
}

/// Renders a review.
pub fn render(r: &Review, format: Format) -> String {
    match format {
        Format::Json => {
            let changes: Vec<_> = r
                .verdicts
                .iter()
                .map(|v| {
                    json!({
                        "change": v.change.op.as_str(),
                        "kind": v.change.kind.name(),
                        "namespace": v.change.namespace,
                        "name": v.change.name,
                        "old_tier": v.change.old_tier,
                        "tier": v.change.new_tier.as_ref().or(v.change.old_tier.as_ref()),
                        "verb": v.verb,
                        "allowed": v.outcome.allowed,
                        "denial": v.outcome.denial(),
                        "steps": v.outcome.steps.iter().map(|s| json!({
                            "asked": s.asked, "allowed": s.allowed, "message": s.message,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let doc = json!({
                "user": r.user.name,
                "groups": r.user.groups,
                "allowed": r.allowed(),
                "changes": changes.len(),
                "refused": r.refused(),
                "verdicts": changes,
            });
            format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default())
        }
        Format::Table => {
            let mut rows: Vec<[String; 5]> =
                vec![["CHANGE".into(), "OBJECT".into(), "TIER".into(), "VERB".into(), "ALLOWED".into()]];
            for v in &r.verdicts {
                rows.push([
                    v.change.op.as_str().into(),
                    v.change.object(),
                    v.change.tier(),
                    v.verb.clone(),
                    if v.outcome.allowed { "yes".into() } else { "no".into() },
                ]);
            }
            let mut widths = [0usize; 5];
            for row in &rows {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let mut out = format!("review for {}\n", r.user);
            for row in &rows {
                let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
                out.push_str(cells.join("  ").trim_end());
                out.push('\n');
            }
            for v in r.verdicts.iter().filter(|v| !v.outcome.allowed) {
                out.push_str(&format!("refused: {} {}: {}\n", v.change.op.as_str(), v.change.object(), why(v)));
            }
            out.push_str(&summary(r));
            out
        }
        Format::Markdown => {
            let mut out = format!("### Tier ownership review for `{}`\n\n", r.user.name);
            if r.verdicts.is_empty() {
                out.push_str("No policy, tier or network set changes.\n");
                return out;
            }
            out.push_str("| change | object | tier | verb | allowed | why not |\n|---|---|---|---|---|---|\n");
            for v in &r.verdicts {
                let cell = |s: &str| s.replace('|', "\\|");
                out.push_str(&format!(
                    "| {} | `{}` | {} | {} | {} | {} |\n",
                    v.change.op.as_str(),
                    v.change.object(),
                    cell(&v.change.tier()),
                    v.verb,
                    if v.outcome.allowed { "yes" } else { "**no**" },
                    cell(&why(v)),
                ));
            }
            out.push('\n');
            out.push_str(&summary(r));
            out
        }
    }
}

fn summary(r: &Review) -> String {
    match (r.verdicts.len(), r.refused()) {
        (0, _) => "no policy, tier or network set changes\n".into(),
        (n, 0) => format!("{n} change(s), all allowed\n"),
        (n, k) => format!("{n} change(s), {k} refused\n"),
    }
}
