//! The compiler: a validated [`Bundle`] to a [`Program`], in steps (each a function below):
//! security identities, policies, per-identity policy lists, rule indexes, endpoints and
//! network sets.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::idset::IdSet;
use super::principal_index::PrincipalIds;
use super::ranges::{IntervalMap, NetRanges, PortSet};
use super::rule_index::SegIndex;
use super::selectors::LabelIndex;
use super::{
    CEndpoint, CEntity, CHttp, CIstio, CPolicy, CRule, EntityExtra, KnownIdentities, NO_SELECTOR, PolicyList, Program,
    Rep, Segment, SelId, SideIndexes, istio,
};
use crate::config::Config;
use crate::model::{Bundle, EntityMatch, PathMatch, PolicyId, PortMatch, RuleMatch, StagedAction, TierId};
use crate::selector::Expr;

type Labels = BTreeMap<String, String>;

/// Step 1: one security identity per distinct *relevant* label set (endpoints and network
/// sets), as Cilium's identity-relevant labels: only the keys some selector reads can make
/// two label sets match differently, so label sets that differ elsewhere (a
/// `pod-template-hash`, a pod's own name label) share an identity.
struct Identities<'a> {
    /// The label set of each identity (its first member's).
    labels: Vec<&'a Labels>,
    /// Per endpoint, its identity.
    endpoints: Vec<u32>,
    /// Per network set, its identity.
    sets: Vec<u32>,
    /// The label keys selectors read.
    relevant: rustc_hash::FxHashSet<&'a str>,
}

/// The keys every selector of the bundle reads (policy selectors and Calico rule peers).
fn relevant_keys(bundle: &Bundle) -> rustc_hash::FxHashSet<&str> {
    let mut keys = rustc_hash::FxHashSet::default();
    let mut add = |k| {
        keys.insert(k);
    };
    for p in &bundle.policies {
        p.selector.visit_keys(&mut add);
        for r in p.ingress.iter().chain(&p.egress).flatten() {
            if let RuleMatch::Calico(c) = &r.matcher {
                for e in [&c.source, &c.destination] {
                    for s in e.selector.iter().chain(&e.not_selector) {
                        s.visit_keys(&mut add);
                    }
                }
            }
        }
    }
    keys
}

/// The part of a label set that selectors read, in key order.
fn projection<'l>(labels: &'l Labels, relevant: &rustc_hash::FxHashSet<&str>) -> Vec<(&'l str, &'l str)> {
    labels.iter().filter(|(k, _)| relevant.contains(k.as_str())).map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn identities<'a>(bundle: &'a Bundle) -> Identities<'a> {
    let relevant = relevant_keys(bundle);
    let mut identity_of: FxHashMap<Vec<(&str, &str)>, u32> = FxHashMap::default();
    let mut labels: Vec<&Labels> = Vec::new();
    let mut intern = |l: &'a Labels| -> u32 {
        *identity_of.entry(projection(l, &relevant)).or_insert_with(|| {
            labels.push(l);
            (labels.len() - 1) as u32
        })
    };
    let endpoints = bundle.endpoints.iter().map(|e| intern(&e.labels)).collect();
    let sets = bundle.network_sets.iter().map(|s| intern(&s.labels)).collect();
    Identities { labels, endpoints, sets, relevant }
}

/// Step 2: the compiled policies, which policies select each identity (in evaluation
/// order), and which enforced policies a staged one stands for.
struct Policies {
    compiled: Vec<CPolicy>,
    selecting: Vec<Vec<PolicyId>>,
    overridden: Vec<bool>,
}

fn policies<'a>(bundle: &'a Bundle, c: &mut Compiler<'a>, n_identities: usize) -> Policies {
    let compiled: Vec<CPolicy> = bundle
        .policies
        .iter()
        .map(|p| CPolicy { ingress: c.rules(p.ingress.as_deref()), egress: c.rules(p.egress.as_deref()) })
        .collect();
    // Enforced policies that a staged policy of the same name, namespace and tier stands for.
    let staged_keys: rustc_hash::FxHashSet<_> = bundle
        .policies
        .iter()
        .filter(|q| q.staged.is_some())
        .map(|q| (q.kind.enforced_counterpart(), q.namespace.as_deref(), q.name.as_str(), q.tier))
        .collect();
    let overridden: Vec<bool> = bundle
        .policies
        .iter()
        .map(|p| p.staged.is_none() && staged_keys.contains(&(p.kind, p.namespace.as_deref(), p.name.as_str(), p.tier)))
        .collect();
    // Which policies select each identity, in evaluation order.
    let mut selecting: Vec<Vec<PolicyId>> = vec![Vec::new(); n_identities];
    for (pid, p) in bundle.policies.iter().enumerate() {
        for ident in c.index.eval(&p.selector).iter() {
            if let Some(v) = selecting.get_mut(ident as usize) {
                v.push(pid as PolicyId);
            }
        }
    }

    Policies { compiled, selecting, overridden }
}

/// Step 3: per identity and direction, the enforced and pending policy lists, interned.
/// Returns the lists and, per identity, `[ingress, egress]` as `(enforced, pending)`.
fn policy_lists(bundle: &Bundle, p: &Policies, n_identities: usize) -> (Vec<PolicyList>, Vec<[(u32, u32); 2]>) {
    let (selecting, overridden) = (&p.selecting, &p.overridden);
    let mut lists: Vec<PolicyList> = Vec::new();
    let mut list_index: FxHashMap<PolicyList, u32> = FxHashMap::default();
    let mut per_identity: Vec<[(u32, u32); 2]> = Vec::with_capacity(n_identities);
    for ident in 0..n_identities as u32 {
        let mut out = [(0, 0); 2];
        for (slot, side) in [(0usize, crate::Side::Ingress), (1, crate::Side::Egress)] {
            let mut enforced = Vec::new();
            let mut pending = Vec::new();
            for &pid in selecting.get(ident as usize).map(Vec::as_slice).unwrap_or_default() {
                let Some(p) = bundle.policy(pid) else {
                    continue;
                };
                if p.rules(side).is_none() {
                    continue;
                }
                let pid = pid as usize;
                match p.staged {
                    None => {
                        enforced.push(pid as PolicyId);
                        if !overridden.get(pid).copied().unwrap_or(false) {
                            pending.push(pid as PolicyId);
                        }
                    }
                    Some(StagedAction::Set) => pending.push(pid as PolicyId),
                    Some(StagedAction::Delete) => {}
                }
            }
            let e = intern_list(&mut lists, &mut list_index, segments(bundle, &enforced));
            let pe = intern_list(&mut lists, &mut list_index, segments(bundle, &pending));
            if let Some(o) = out.get_mut(slot) {
                *o = (e, pe);
            }
        }
        per_identity.push(out);
    }

    (lists, per_identity)
}

/// Step 4: rule indexes of the segments with keyed rules, one per distinct (segment,
/// side); returns the per-list, per-side, per-segment index ids and the indexes.
fn rule_indexes(
    lists: &[PolicyList],
    policies: &[CPolicy],
    selectors: &[IdSet],
    principals: &mut PrincipalIds,
) -> (Vec<[SideIndexes; 2]>, Vec<SegIndex>) {
    let mut indexes: Vec<SegIndex> = Vec::new();
    let mut index_of: FxHashMap<(&Segment, usize), Option<u32>> = FxHashMap::default();
    let mut seg_index: Vec<[SideIndexes; 2]> = Vec::with_capacity(lists.len());
    for l in lists {
        let mut sides: [SideIndexes; 2] = Default::default();
        for (slot, side) in [(0usize, crate::Side::Ingress), (1, crate::Side::Egress)] {
            let mut per_seg = Vec::with_capacity(l.segments.len());
            for seg in l.segments.iter() {
                let id = *index_of.entry((seg, slot)).or_insert_with(|| {
                    let rules = seg
                        .policies
                        .iter()
                        .map(|&pid| policies.get(pid as usize).map(|p| p.rules(side)).unwrap_or_default());
                    let ix = SegIndex::build(rules, selectors, principals)?;
                    indexes.push(ix);
                    Some((indexes.len() - 1) as u32)
                });
                per_seg.push(id);
            }
            if let Some(s) = sides.get_mut(slot) {
                *s = per_seg.into_boxed_slice();
            }
        }
        seg_index.push(sides);
    }
    (seg_index, indexes)
}

/// Step 5: endpoints and the IP to endpoint maps.
struct Endpoints {
    ip_v4: FxHashMap<u32, u32>,
    ip_v6: FxHashMap<u128, u32>,
    endpoints: Vec<CEndpoint>,
}

fn endpoints<'a>(
    bundle: &'a Bundle,
    ep_ids: &[u32],
    per_identity: &[[(u32, u32); 2]],
    c: &mut Compiler<'a>,
    principals: &PrincipalIds,
) -> Endpoints {
    let mut ip_v4 = FxHashMap::default();
    let mut ip_v6 = FxHashMap::default();
    let mut endpoints = Vec::with_capacity(bundle.endpoints.len());
    for (i, e) in bundle.endpoints.iter().enumerate() {
        for ip in &e.ips {
            match ip {
                IpAddr::V4(v4) => {
                    ip_v4.insert(u32::from(*v4), i as u32);
                }
                IpAddr::V6(v6) => {
                    ip_v6.insert(u128::from(*v6), i as u32);
                }
            }
        }
        let identity = ep_ids.get(i).copied().unwrap_or(0);
        let lists = per_identity.get(identity as usize).copied().unwrap_or_default();
        endpoints.push(c_endpoint(e, identity, lists, |n| c.port_name(n), principals));
    }
    Endpoints { ip_v4, ip_v6, endpoints }
}

/// One compiled endpoint: its identity and policy lists, named ports as interned ids.
pub(super) fn c_endpoint<'a>(
    e: &'a crate::model::Endpoint,
    identity: u32,
    lists: [(u32, u32); 2],
    mut port_id: impl FnMut(&'a str) -> u32,
    principals: &PrincipalIds,
) -> CEndpoint {
    CEndpoint {
        identity,
        spiffe_valid: crate::spiffe::SpiffeId::parse(&e.identity).is_some(),
        principal_id: principals.get(e.identity.strip_prefix("spiffe://").unwrap_or(&e.identity)),
        spiffe: e.identity.as_str().into(),
        namespace: e.namespace.as_str().into(),
        service_account: e.service_account.as_str().into(),
        named_ports: e.ports.iter().map(|p| (port_id(&p.name), p.protocol, p.port)).collect(),
        lists,
        mtls: crate::model::PeerMtls { from: Vec::new(), ..e.mtls.clone() },
    }
}

/// Step 6: IP to covering network sets, one interval map (entry 0 of the lists: none).
fn network_sets(bundle: &Bundle, set_ids: &[u32]) -> (IntervalMap, Vec<Box<[u32]>>) {
    let mut set_lists: Vec<Box<[u32]>> = vec![Box::default()];
    let sets: Vec<(u32, &[ipnet::IpNet])> = bundle
        .network_sets
        .iter()
        .enumerate()
        .map(|(i, s)| (set_ids.get(i).copied().unwrap_or(0), s.nets.as_slice()))
        .collect();
    let netsets = IntervalMap::build(&sets, &mut set_lists);
    (netsets, set_lists)
}

impl Program {
    /// Compiles a validated bundle.
    pub fn compile(bundle: &Bundle, config: &Config) -> Program {
        let ids = identities(bundle);
        let n_identities = ids.labels.len();
        let mut c = Compiler {
            index: LabelIndex::new(&ids.labels),
            selector_ids: FxHashMap::default(),
            selectors: Vec::new(),
            port_names: FxHashMap::default(),
            principals: PrincipalIds::default(),
        };
        let policies = policies(bundle, &mut c, n_identities);
        let (lists, per_identity) = policy_lists(bundle, &policies, n_identities);
        let mut principals = std::mem::take(&mut c.principals);
        let (seg_index, indexes) = rule_indexes(&lists, &policies.compiled, &c.selectors, &mut principals);
        let has_principal_ids = !principals.is_empty();
        let eps = endpoints(bundle, &ids.endpoints, &per_identity, &mut c, &principals);
        let (netsets, set_lists) = network_sets(bundle, &ids.sets);
        let known = KnownIdentities::new(&ids, per_identity, &c.port_names);
        Program {
            known,
            ip_v4: eps.ip_v4,
            ip_v6: eps.ip_v6,
            endpoints: eps.endpoints.into_boxed_slice(),
            netsets,
            set_lists: set_lists.into_boxed_slice(),
            selectors: c.selectors.into_boxed_slice(),
            lists: lists.into_boxed_slice(),
            seg_index: seg_index.into_boxed_slice(),
            indexes: indexes.into_boxed_slice(),
            principals,
            has_principal_ids,
            policies: policies.compiled.into_boxed_slice(),
            tiers: bundle.tiers.iter().map(|t| t.default_action).collect(),
            istio_tiers: bundle.tiers.iter().map(crate::model::Tier::is_istio).collect(),
            istio_allow_tier: bundle.tiers.iter().position(|t| t.name == "istio-allow").map(|i| i as TierId),
            no_policy_action: config.no_policy_action,
            require_peer_identity: config.require_peer_identity,
            trust_domain: config.trust_domain.as_str().into(),
            trust_domain_aliases: config.trust_domain_aliases.iter().map(|a| a.as_str().into()).collect(),
            has_istio: bundle.has_istio(),
        }
    }
}

/// What compiling policies shares: the label index, resolved selectors, interned port
/// names and principals.
struct Compiler<'a> {
    index: LabelIndex<'a>,
    selector_ids: FxHashMap<&'a Expr, SelId>,
    selectors: Vec<IdSet>,
    port_names: FxHashMap<&'a str, u32>,
    principals: PrincipalIds,
}

impl<'a> Compiler<'a> {
    fn selector(&mut self, e: &'a Expr) -> SelId {
        if let Some(&id) = self.selector_ids.get(e) {
            return id;
        }
        let id = self.selectors.len() as SelId;
        self.selectors.push(IdSet::from_bits(&self.index.eval(e)));
        self.selector_ids.insert(e, id);
        id
    }

    fn port_name(&mut self, n: &'a str) -> u32 {
        let next = self.port_names.len() as u32;
        *self.port_names.entry(n).or_insert(next)
    }

    fn ports(&mut self, list: &'a [PortMatch]) -> Option<PortSet> {
        if list.is_empty() {
            return None;
        }
        let mut ranges = Vec::new();
        let mut named = Vec::new();
        for p in list {
            match p {
                PortMatch::Range(lo, hi) => ranges.push((*lo, *hi)),
                PortMatch::Named(n) => named.push(self.port_name(n)),
            }
        }
        Some(PortSet::new(ranges, named))
    }

    fn entity(&mut self, e: &'a EntityMatch) -> CEntity {
        let extra = EntityExtra {
            nets: (!e.nets.is_empty()).then(|| NetRanges::new(&e.nets)),
            not_nets: (!e.not_nets.is_empty()).then(|| NetRanges::new(&e.not_nets)),
            ports: self.ports(&e.ports),
            not_ports: self.ports(&e.not_ports),
            services: e.services.clone(),
        };
        let has_extra = extra.nets.is_some()
            || extra.not_nets.is_some()
            || extra.ports.is_some()
            || extra.not_ports.is_some()
            || extra.services.is_some();
        CEntity {
            selector: e.selector.as_ref().map(|s| self.selector(s)).unwrap_or(NO_SELECTOR),
            not_selector: e.not_selector.as_ref().map(|s| self.selector(s)).unwrap_or(NO_SELECTOR),
            extra: has_extra.then(|| Box::new(extra)),
        }
    }

    fn rules(&mut self, rules: Option<&'a [crate::model::Rule]>) -> Box<[CRule]> {
        let Some(rules) = rules else {
            return Box::default();
        };
        rules
            .iter()
            .map(|r| {
                let c = match &r.matcher {
                    RuleMatch::Calico(c) => c,
                    RuleMatch::Istio(i) => {
                        return CRule {
                            action: r.action,
                            matches_all: false,
                            ip_version: 0,
                            protocol: None,
                            not_protocol: None,
                            icmp: None,
                            not_icmp: None,
                            src: CEntity { selector: NO_SELECTOR, not_selector: NO_SELECTOR, extra: None },
                            dst: CEntity { selector: NO_SELECTOR, not_selector: NO_SELECTOR, extra: None },
                            http: None,
                            istio: Some(Box::new(CIstio {
                                rule: (**i).clone(),
                                uses_http: i.uses_http(),
                                simple: istio::SimpleRule::new(i, &mut self.principals),
                            })),
                        };
                    }
                };
                let http = c.http.as_ref().filter(|h| h.is_constraining()).map(|h| {
                    let mut exact: Vec<Box<str>> = Vec::new();
                    let mut prefixes: Vec<Box<str>> = Vec::new();
                    for p in &h.paths {
                        match p {
                            PathMatch::Exact(x) => exact.push(x.as_str().into()),
                            PathMatch::Prefix(x) => prefixes.push(x.as_str().into()),
                        }
                    }
                    exact.sort();
                    exact.dedup();
                    Box::new(CHttp {
                        any_method: h.methods.is_empty() || h.methods.iter().any(|m| m == "*"),
                        methods: h.methods.iter().map(|m| m.as_str().into()).collect(),
                        any_path: h.paths.is_empty() || prefixes.iter().any(|p| &**p == "/"),
                        exact: exact.into_boxed_slice(),
                        prefixes: prefixes.into_boxed_slice(),
                    })
                });
                let mut rule = CRule {
                    action: r.action,
                    matches_all: false,
                    ip_version: c.ip_version.unwrap_or(0),
                    protocol: c.protocol,
                    not_protocol: c.not_protocol,
                    icmp: c.icmp,
                    not_icmp: c.not_icmp,
                    src: self.entity(&c.source),
                    dst: self.entity(&c.destination),
                    http,
                    istio: None,
                };
                rule.matches_all = rule.ip_version == 0
                    && rule.protocol.is_none()
                    && rule.not_protocol.is_none()
                    && rule.icmp.is_none()
                    && rule.not_icmp.is_none()
                    && rule.src.is_any()
                    && rule.dst.is_any()
                    && rule.http.is_none();
                rule
            })
            .collect()
    }
}

fn intern_list(lists: &mut Vec<PolicyList>, index: &mut FxHashMap<PolicyList, u32>, l: PolicyList) -> u32 {
    if let Some(&i) = index.get(&l) {
        return i;
    }
    let i = lists.len() as u32;
    lists.push(l.clone());
    index.insert(l, i);
    i
}

/// Groups an ordered policy-id list into tier segments.
fn segments(bundle: &Bundle, ids: &[PolicyId]) -> PolicyList {
    let mut out: Vec<Segment> = Vec::new();
    let mut cur: Vec<PolicyId> = Vec::new();
    let mut cur_tier: Option<TierId> = None;
    for &id in ids {
        let t = bundle.policy(id).map(|p| p.tier).unwrap_or(0);
        if cur_tier != Some(t) {
            if let Some(ct) = cur_tier {
                out.push(Segment { tier: ct, policies: std::mem::take(&mut cur).into_boxed_slice() });
            }
            cur_tier = Some(t);
        }
        cur.push(id);
    }
    if let Some(ct) = cur_tier {
        out.push(Segment { tier: ct, policies: cur.into_boxed_slice() });
    }
    PolicyList { segments: out.into_boxed_slice() }
}

impl KnownIdentities {
    /// What a compiled program keeps of step 1 to place a new endpoint whose label set is
    /// already an identity.
    fn new(ids: &Identities<'_>, per_identity: Vec<[(u32, u32); 2]>, port_names: &FxHashMap<&str, u32>) -> Self {
        let relevant: rustc_hash::FxHashSet<Box<str>> = ids.relevant.iter().map(|&k| Box::from(k)).collect();
        let mut by_hash: FxHashMap<u64, u32> = FxHashMap::default();
        for (id, labels) in ids.labels.iter().enumerate() {
            // A collision keeps the first: the other identity is then "unknown" (a rebuild).
            by_hash.entry(relevant_hash(labels, &relevant)).or_insert(id as u32);
        }
        let mut first: Vec<Option<Rep>> = vec![None; ids.labels.len()];
        let members = ids.endpoints.iter().enumerate().map(|(i, &id)| (id, Rep::Endpoint(i as u32)));
        let sets = ids.sets.iter().enumerate().map(|(i, &id)| (id, Rep::NetworkSet(i as u32)));
        for (id, rep) in members.chain(sets) {
            if let Some(f) = first.get_mut(id as usize)
                && f.is_none()
            {
                *f = Some(rep);
            }
        }
        KnownIdentities {
            relevant,
            by_hash,
            reps: first.into_iter().map(|r| r.unwrap_or(Rep::NetworkSet(u32::MAX))).collect(),
            per_identity: per_identity.into_boxed_slice(),
            port_names: port_names.iter().map(|(k, &v)| (Box::from(*k), v)).collect(),
        }
    }
}

/// The hash of a label set's relevant part (for [`KnownIdentities`]; equality is checked
/// against a member).
pub(super) fn relevant_hash(labels: &Labels, relevant: &rustc_hash::FxHashSet<Box<str>>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    for (k, v) in labels.iter().filter(|(k, _)| relevant.contains(k.as_str())) {
        (k, v).hash(&mut h);
    }
    h.finish()
}

/// Whether two label sets agree on the relevant keys.
pub(super) fn same_relevant(a: &Labels, b: &Labels, relevant: &rustc_hash::FxHashSet<Box<str>>) -> bool {
    let part = |l: &'_ Labels| {
        l.iter().filter(|(k, _)| relevant.contains(k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
    };
    part(a) == part(b)
}
