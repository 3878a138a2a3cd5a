//! The compiled program: what a snapshot decides with.
//!
//! Compilation follows Felix and Cilium:
//! * endpoints and network sets with identical labels share one numeric **security
//!   identity**;
//! * every selector (policy or rule) is resolved once to the set of identities it matches,
//!   through an inverted label index;
//! * per identity and direction, the ordered list of applicable tiers and policies is
//!   computed once and shared between identities with the same list;
//! * IP to endpoint is an exact hash lookup; IP to network sets is one binary search in a
//!   segment map that returns *every* covering set;
//! * CIDRs and ports become sorted merged ranges, named ports are interned, HTTP methods and
//!   paths are pre-normalised;
//! * a tier segment whose rules are keyed (Calico rules with a source or destination
//!   selector, Istio rules naming exact principals) gets a rule index ([`rule_index`]): per
//!   source identity, destination identity and principal, the ordered rules that can match
//!   it, so a request evaluates the rules that concern its two ends and its caller, not
//!   every rule of the tier; and an Istio rule of the common shape is matched on interned
//!   principal ids.
//!
//! A decision is then a few hash probes and binary searches plus a walk over the rules of
//! the policies that apply to the two endpoints: no scan of all policies, no selector
//! evaluation, no allocation.

mod idset;
mod istio;
mod principal_index;
mod ranges;
mod rule_index;
mod selectors;
mod walk;

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use self::idset::IdSet;
use self::principal_index::PrincipalIds;
use self::ranges::{IntervalMap, NetRanges, PortSet};
use self::rule_index::SegIndex;
use self::selectors::LabelIndex;
use crate::config::Config;
use crate::decision::Action;
use crate::model::{
    Bundle, EntityMatch, IcmpMatch, PathMatch, PolicyId, PortMatch, RuleAction, RuleMatch, StagedAction, TierDefault,
    TierId,
};
use crate::selector::Expr;

pub(crate) use walk::decide;

/// Per segment of a list, on one side: its rule index in [`Program::indexes`], if it has one.
type SideIndexes = Box<[Option<u32>]>;

/// Index of a resolved selector in [`Program::selectors`].
type SelId = u32;

/// A compiled policy decision program.
#[derive(Debug)]
pub(crate) struct Program {
    ip_v4: FxHashMap<u32, u32>,
    ip_v6: FxHashMap<u128, u32>,
    endpoints: Box<[CEndpoint]>,
    netsets: IntervalMap,
    /// Interned lists of network-set identities; entry 0 is empty.
    set_lists: Box<[Box<[u32]>]>,
    selectors: Box<[IdSet]>,
    /// Per-(identity, direction) policy lists, interned.
    lists: Box<[PolicyList]>,
    /// Per list, per side (`[ingress, egress]`), per segment: the rule index, where the
    /// segment has keyed rules.
    seg_index: Box<[[SideIndexes; 2]]>,
    /// Rule indexes, shared by identical segments on the same side.
    indexes: Box<[SegIndex]>,
    /// Principals named by indexed or simple rules.
    principals: PrincipalIds,
    /// Whether any indexed or simple rule names a principal (the request's is then looked up).
    has_principal_ids: bool,
    policies: Box<[CPolicy]>,
    tiers: Box<[TierDefault]>,
    /// Per tier: whether it is an Istio tier (skipped for requests that are not TCP).
    istio_tiers: Box<[bool]>,
    no_policy_action: Action,
    require_peer_identity: bool,
    trust_domain: Box<str>,
    trust_domain_aliases: Box<[Box<str>]>,
    has_istio: bool,
}

#[derive(Debug)]
struct CEndpoint {
    identity: u32,
    /// The SPIFFE ID of the workload.
    spiffe: Box<str>,
    /// Whether `spiffe` is itself a valid SPIFFE ID (fast path for principal checks).
    spiffe_valid: bool,
    /// The id of `spiffe` in [`Program::principals`], when a rule names it.
    principal_id: Option<u32>,
    namespace: Box<str>,
    service_account: Box<str>,
    /// `(name id, protocol, port)`.
    named_ports: Box<[(u32, u8, u16)]>,
    /// `[ingress, egress]`: enforced list, pending list (staged as enforced).
    lists: [(u32, u32); 2],
    /// Istio's mutual-TLS requirement (PeerAuthentication) by destination port.
    mtls: crate::model::PeerMtls,
}

/// An ordered policy list: tiers in order, each with its policies in order.
#[derive(Debug, PartialEq, Eq, Hash, Clone)]
struct PolicyList {
    segments: Box<[Segment]>,
}

#[derive(Debug, PartialEq, Eq, Hash, Clone)]
struct Segment {
    tier: TierId,
    policies: Box<[PolicyId]>,
}

#[derive(Debug)]
struct CPolicy {
    ingress: Box<[CRule]>,
    egress: Box<[CRule]>,
}

impl CPolicy {
    /// The rules of one side.
    #[inline]
    fn rules(&self, side: crate::Side) -> &[CRule] {
        if side == crate::Side::Ingress { &self.ingress } else { &self.egress }
    }
}

#[derive(Debug)]
struct CRule {
    action: RuleAction,
    /// The rule has no criterion at all (a bare `Pass`, `Allow` or `Deny`).
    matches_all: bool,
    /// 0 when any.
    ip_version: u8,
    protocol: Option<u8>,
    not_protocol: Option<u8>,
    icmp: Option<IcmpMatch>,
    not_icmp: Option<IcmpMatch>,
    src: CEntity,
    dst: CEntity,
    http: Option<Box<CHttp>>,
    /// An Istio rule (then the Calico criteria above are empty).
    istio: Option<Box<CIstio>>,
}

/// A compiled Istio rule.
#[derive(Debug)]
struct CIstio {
    rule: crate::model::IstioRule,
    /// Whether it uses HTTP-only attributes.
    uses_http: bool,
    /// Its simple form, when it has one.
    simple: Option<istio::SimpleRule>,
}

/// No selector.
const NO_SELECTOR: SelId = SelId::MAX;

/// Criteria on one end, kept small (16 bytes) so that a rule fits in a cache line: the
/// selectors inline, the rarer CIDR and port criteria behind one pointer.
#[derive(Debug)]
struct CEntity {
    selector: SelId,
    not_selector: SelId,
    extra: Option<Box<EntityExtra>>,
}

#[derive(Debug, Default)]
struct EntityExtra {
    nets: Option<NetRanges>,
    not_nets: Option<NetRanges>,
    ports: Option<PortSet>,
    not_ports: Option<PortSet>,
    services: Option<crate::model::ServiceMatch>,
}

impl CEntity {
    #[inline]
    fn is_any(&self) -> bool {
        self.selector == NO_SELECTOR && self.not_selector == NO_SELECTOR && self.extra.is_none()
    }
}

#[derive(Debug)]
struct CHttp {
    any_method: bool,
    methods: Box<[Box<str>]>,
    /// Sorted exact paths.
    exact: Box<[Box<str>]>,
    prefixes: Box<[Box<str>]>,
    any_path: bool,
}

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

impl Program {
    /// Whether `td` is the trust domain or one of its aliases (no allocation).
    #[inline]
    pub(crate) fn is_local_trust_domain(&self, td: &str) -> bool {
        *self.trust_domain == *td || self.trust_domain_aliases.iter().any(|a| **a == *td)
    }

    /// Compiles a validated bundle.
    pub fn compile<'a>(bundle: &'a Bundle, config: &Config) -> Program {
        // 1. Security identities: one per distinct label set (endpoints and network sets).
        let mut identity_of: BTreeMap<&BTreeMap<String, String>, u32> = BTreeMap::new();
        let mut identities: Vec<&BTreeMap<String, String>> = Vec::new();
        let mut intern = |labels: &'a BTreeMap<String, String>| -> u32 {
            *identity_of.entry(labels).or_insert_with(|| {
                identities.push(labels);
                (identities.len() - 1) as u32
            })
        };
        let ep_ids: Vec<u32> = bundle.endpoints.iter().map(|e| intern(&e.labels)).collect();
        let set_ids: Vec<u32> = bundle.network_sets.iter().map(|s| intern(&s.labels)).collect();
        let n_identities = identities.len();

        let mut c = Compiler {
            index: LabelIndex::new(&identities),
            selector_ids: FxHashMap::default(),
            selectors: Vec::new(),
            port_names: FxHashMap::default(),
            principals: PrincipalIds::default(),
        };

        // 2. Policies: rules compiled, selection resolved to identity sets.
        let policies: Vec<CPolicy> = bundle
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
            .map(|p| {
                p.staged.is_none() && staged_keys.contains(&(p.kind, p.namespace.as_deref(), p.name.as_str(), p.tier))
            })
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

        // 3. Per identity and direction: enforced and pending policy lists, interned.
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

        // Rule indexes of the segments with keyed rules, one per distinct (segment, side).
        let mut principals = std::mem::take(&mut c.principals);
        let mut indexes: Vec<SegIndex> = Vec::new();
        let mut index_of: FxHashMap<(&Segment, usize), Option<u32>> = FxHashMap::default();
        let mut seg_index: Vec<[SideIndexes; 2]> = Vec::with_capacity(lists.len());
        for l in &lists {
            let mut sides: [SideIndexes; 2] = Default::default();
            for (slot, side) in [(0usize, crate::Side::Ingress), (1, crate::Side::Egress)] {
                let mut per_seg = Vec::with_capacity(l.segments.len());
                for seg in l.segments.iter() {
                    let id = *index_of.entry((seg, slot)).or_insert_with(|| {
                        let rules = seg
                            .policies
                            .iter()
                            .map(|&pid| policies.get(pid as usize).map(|p| p.rules(side)).unwrap_or_default());
                        let ix = SegIndex::build(rules, &c.selectors, &mut principals)?;
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
        let seg_index = seg_index.into_boxed_slice();
        let has_principal_ids = !principals.is_empty();

        // 4. Endpoints and addresses.
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
            let named_ports = e
                .ports
                .iter()
                .map(|p| (c.port_name(&p.name), p.protocol, p.port))
                .collect::<Vec<_>>()
                .into_boxed_slice();
            endpoints.push(CEndpoint {
                identity,
                spiffe_valid: crate::spiffe::SpiffeId::parse(&e.identity).is_some(),
                principal_id: principals.get(e.identity.strip_prefix("spiffe://").unwrap_or(&e.identity)),
                spiffe: e.identity.as_str().into(),
                namespace: e.namespace.as_str().into(),
                service_account: e.service_account.as_str().into(),
                named_ports,
                lists: per_identity.get(identity as usize).copied().unwrap_or_default(),
                mtls: crate::model::PeerMtls { from: Vec::new(), ..e.mtls.clone() },
            });
        }
        let mut set_lists: Vec<Box<[u32]>> = vec![Box::default()];
        let sets: Vec<(u32, &[ipnet::IpNet])> = bundle
            .network_sets
            .iter()
            .enumerate()
            .map(|(i, s)| (set_ids.get(i).copied().unwrap_or(0), s.nets.as_slice()))
            .collect();
        let netsets = IntervalMap::build(&sets, &mut set_lists);

        Program {
            ip_v4,
            ip_v6,
            endpoints: endpoints.into_boxed_slice(),
            netsets,
            set_lists: set_lists.into_boxed_slice(),
            selectors: c.selectors.into_boxed_slice(),
            lists: lists.into_boxed_slice(),
            seg_index,
            indexes: indexes.into_boxed_slice(),
            principals,
            has_principal_ids,
            policies: policies.into_boxed_slice(),
            tiers: bundle.tiers.iter().map(|t| t.default_action).collect(),
            istio_tiers: bundle.tiers.iter().map(crate::model::Tier::is_istio).collect(),
            no_policy_action: config.no_policy_action,
            require_peer_identity: config.require_peer_identity,
            trust_domain: config.trust_domain.as_str().into(),
            trust_domain_aliases: config.trust_domain_aliases.iter().map(|a| a.as_str().into()).collect(),
            has_istio: bundle.has_istio(),
        }
    }

    /// Number of indexed segments (over lists and sides).
    pub fn indexed_segments(&self) -> usize {
        self.seg_index.iter().flatten().flatten().filter(|i| i.is_some()).count()
    }

    /// Rules keyed by the distinct rule indexes: on principals, source identities and
    /// destination identities.
    pub fn keyed_rules(&self) -> [usize; 3] {
        let mut out = [0usize; 3];
        for ix in self.indexes.iter() {
            for (o, k) in out.iter_mut().zip(ix.keyed()) {
                *o += k as usize;
            }
        }
        out
    }

    /// Approximate heap bytes held by the program (for the memory report).
    pub fn heap_bytes(&self) -> usize {
        let eps: usize = self
            .endpoints
            .iter()
            .map(|e| {
                std::mem::size_of::<CEndpoint>()
                    + e.spiffe.len()
                    + e.namespace.len()
                    + e.service_account.len()
                    + e.named_ports.len() * 8
            })
            .sum();
        let ips = (self.ip_v4.capacity() * 9 + self.ip_v6.capacity() * 21) * 8 / 7;
        let sels: usize = self.selectors.iter().map(|s| s.heap_bytes() + 24).sum();
        let lists: usize =
            self.lists.iter().map(|l| l.segments.iter().map(|s| 24 + s.policies.len() * 4).sum::<usize>()).sum();
        let index: usize = self.seg_index.iter().flatten().map(|s| s.len() * 8).sum::<usize>()
            + self.indexes.iter().map(|i| i.heap_bytes() + std::mem::size_of::<SegIndex>()).sum::<usize>();
        eps + ips + sels + lists + index + self.principals.heap_bytes() + self.netsets.heap_bytes()
    }
}
