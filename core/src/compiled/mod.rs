//! The compiled program: what a snapshot decides with.
//!
//! Compilation follows Felix and Cilium:
//! * endpoints and network sets whose labels agree on every key a selector reads share one
//!   numeric **security identity**;
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
//! [`compile`] holds the compiler (its steps as functions), [`decide`] the evaluator; this
//! file holds the program's types.
//!
//! A decision is then a few hash probes and binary searches plus a walk over the rules of
//! the policies that apply to the two endpoints: no scan of all policies, no selector
//! evaluation, no allocation.

// The hot path: no indexing that could panic (a malformed program must fail closed, not abort).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod compile;
mod decide;
mod idset;
mod istio;
mod overlay;
mod principal_index;
mod ranges;
mod rule_index;
mod selectors;

use rustc_hash::FxHashMap;

use self::idset::IdSet;
use self::principal_index::PrincipalIds;
use self::ranges::{IntervalMap, NetRanges, PortSet};
use self::rule_index::SegIndex;
use crate::decision::Action;
use crate::model::{IcmpMatch, PolicyId, RuleAction, TierDefault, TierId};

pub(crate) use decide::decide;
pub(crate) use overlay::Overlay;

/// Per segment of a list, on one side: its rule index in [`Program::indexes`], if it has one.
type SideIndexes = Box<[Option<u32>]>;

/// Index of a resolved selector in [`Program::selectors`].
type SelId = u32;

/// A compiled policy decision program.
#[derive(Debug)]
pub(crate) struct Program {
    /// What placing a new endpoint needs (cold: read by [`Overlay`], never by `decide`).
    known: KnownIdentities,
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
    /// The Istio ALLOW layer's tier, if any (its passing rule names a profile allow).
    istio_allow_tier: Option<TierId>,
    no_policy_action: Action,
    require_peer_identity: bool,
    trust_domain: Box<str>,
    trust_domain_aliases: Box<[Box<str>]>,
    has_istio: bool,
}

/// The identities of a compiled program, kept so that an endpoint added later
/// ([`Overlay`]) whose label set is already an identity can be compiled alone.
#[derive(Debug)]
struct KnownIdentities {
    /// The label keys selectors read (see `compile::identities`).
    relevant: rustc_hash::FxHashSet<Box<str>>,
    /// Identity by the hash of its label set's relevant part (compared against a member's).
    by_hash: FxHashMap<u64, u32>,
    /// Per identity, a member of the compiled bundle carrying its label set.
    reps: Box<[Rep]>,
    /// Per identity, `[ingress, egress]` as `(enforced list, pending list)`.
    per_identity: Box<[[(u32, u32); 2]]>,
    /// Interned port names (those rules name, and the endpoints' own).
    port_names: FxHashMap<Box<str>, u32>,
}

/// A member of the bundle that carries an identity's label set.
#[derive(Debug, Clone, Copy)]
enum Rep {
    Endpoint(u32),
    NetworkSet(u32),
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

impl Program {
    /// Whether `td` is the trust domain or one of its aliases (no allocation).
    #[inline]
    pub(crate) fn is_local_trust_domain(&self, td: &str) -> bool {
        *self.trust_domain == *td || self.trust_domain_aliases.iter().any(|a| **a == *td)
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
