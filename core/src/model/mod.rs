//! The loaded bundle: tiers, policies, endpoints and network sets, validated and with every
//! Calico scoping rule already folded into plain selectors.
//!
//! Both evaluators read this model: the reference evaluator walks it directly, the compiled
//! snapshot is built from it.

mod endpoint;
mod istio;
mod policy;
mod service;
mod verdict;

use std::collections::BTreeMap;

pub use endpoint::{Endpoint, MtlsMode, NamedPort, NetworkSet, PeerMtls};
pub use istio::{
    CondValues, IstioCondition, IstioOperation, IstioRule, IstioSource, PathPattern as IstioPath, StrMatch,
    TemplateSegment, WhenKey,
};
pub use policy::{
    CalicoRule, EntityMatch, HttpMatch, IcmpMatch, PathMatch, Policy, PolicyId, PolicyKind, PortMatch, Rule,
    RuleAction, RuleMatch, StagedAction, Tier, TierDefault, TierId,
};
pub use service::{Service, ServiceMatch, ServicePort, SliceMembers, TargetPort};
pub use verdict::{Action, Side};

/// A validated bundle.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// Tiers in evaluation order (order ascending, absent last, then name).
    pub tiers: Vec<Tier>,
    /// Every policy, enforced and staged, in tie-break order within each tier.
    pub policies: Vec<Policy>,
    /// Workload endpoints (pods with an IP).
    pub endpoints: Vec<Endpoint>,
    /// Global and namespaced network sets (and host endpoints, as labelled IP sets).
    pub network_sets: Vec<NetworkSet>,
    /// Kubernetes Services (for Istio's protocol selection and `services` rules).
    pub services: Vec<Service>,
    /// EndpointSlice members by `(namespace, service name)`.
    pub service_members: BTreeMap<(String, String), Vec<SliceMembers>>,
    /// Namespace labels (including the derived `kubernetes.io/metadata.name`).
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Documents that were skipped because Palisade does not need them (Services,
    /// Deployments, IPPools ...).
    pub skipped_documents: usize,
    /// The skipped documents counted by `(apiVersion, kind)`, for `lint` and `explain` (a
    /// person can see that nothing they meant to enforce was dropped).
    pub skipped_kinds: BTreeMap<(String, String), usize>,
    /// Objects read.
    pub objects: usize,
    /// Istio `PeerAuthentication`s read (resolved into each endpoint's [`PeerMtls`]).
    pub peer_authentications: usize,
    /// Istio `RequestAuthentication`s read and validated (they never change a decision).
    pub request_authentications: usize,
}

impl Bundle {
    /// The tier with this name, if declared.
    pub fn tier_id(&self, name: &str) -> Option<TierId> {
        self.tiers.iter().position(|t| t.name == name).and_then(|i| TierId::try_from(i).ok())
    }

    /// A tier by id.
    pub fn tier(&self, id: TierId) -> Option<&Tier> {
        self.tiers.get(id as usize)
    }

    /// A policy by id.
    pub fn policy(&self, id: PolicyId) -> Option<&Policy> {
        self.policies.get(id as usize)
    }

    /// Whether the bundle holds Istio policies (and so the Istio tiers).
    pub fn has_istio(&self) -> bool {
        self.policies.iter().any(|p| p.kind == PolicyKind::AuthorizationPolicy)
    }

    /// The endpoint owning `ip` (exact match), if any.
    pub fn endpoint_by_ip(&self, ip: std::net::IpAddr) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.ips.contains(&ip))
    }
}
