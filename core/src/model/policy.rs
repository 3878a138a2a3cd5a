//! Tiers, policies and rules, as the engine evaluates them (after scoping and defaulting).

use ipnet::IpNet;

use crate::selector::Expr;

/// Index of a tier in [`crate::model::Bundle::tiers`] (tiers are kept in evaluation order).
pub type TierId = u32;
/// Index of a policy in [`crate::model::Bundle::policies`].
pub type PolicyId = u32;

/// What a tier does with traffic that a selecting policy did not decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierDefault {
    /// Drop (end-of-tier deny).
    Deny,
    /// Go on to the next tier.
    Pass,
}

/// A tier: a layer of policy, evaluated in `order` (absent is last), then by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    /// The tier's name.
    pub name: String,
    /// Its order; `None` sorts after every number.
    pub order: Option<f64>,
    /// What happens when a selecting policy reached no verdict.
    pub default_action: TierDefault,
}

impl Tier {
    /// Whether this is one of the two tiers holding Istio AuthorizationPolicies. They apply
    /// to TCP only: a sidecar intercepts TCP, and UDP, ICMP and SCTP pass it by.
    pub fn is_istio(&self) -> bool {
        self.name == "istio-deny" || self.name == "istio-allow"
    }
}

/// The kind of a policy, as it appears in traces (`gnp:`, `np:` ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// Calico `GlobalNetworkPolicy`.
    GlobalNetworkPolicy,
    /// Calico `NetworkPolicy`.
    NetworkPolicy,
    /// Kubernetes `NetworkPolicy`.
    KubernetesNetworkPolicy,
    /// Calico `StagedGlobalNetworkPolicy`.
    StagedGlobalNetworkPolicy,
    /// Calico `StagedNetworkPolicy`.
    StagedNetworkPolicy,
    /// Calico `StagedKubernetesNetworkPolicy`.
    StagedKubernetesNetworkPolicy,
    /// Istio `AuthorizationPolicy`.
    AuthorizationPolicy,
    /// Kubernetes `ClusterNetworkPolicy` (`policy.networking.k8s.io/v1alpha2`).
    ClusterNetworkPolicy,
    /// Kubernetes `AdminNetworkPolicy` (`v1alpha1`, as Calico read it until late 2025).
    AdminNetworkPolicy,
    /// Kubernetes `BaselineAdminNetworkPolicy` (`v1alpha1`).
    BaselineAdminNetworkPolicy,
    /// Calico `Profile` (the etcd datastore's namespace and service-account profiles), in
    /// the profile tier after every other.
    Profile,
}

impl PolicyKind {
    /// The short name used in traces and decisions.
    pub fn short(self) -> &'static str {
        match self {
            PolicyKind::GlobalNetworkPolicy => "gnp",
            PolicyKind::NetworkPolicy => "np",
            PolicyKind::KubernetesNetworkPolicy => "knp",
            PolicyKind::StagedGlobalNetworkPolicy => "sgnp",
            PolicyKind::StagedNetworkPolicy => "snp",
            PolicyKind::StagedKubernetesNetworkPolicy => "sknp",
            PolicyKind::AuthorizationPolicy => "iap",
            PolicyKind::ClusterNetworkPolicy => "cnp",
            PolicyKind::AdminNetworkPolicy => "anp",
            PolicyKind::BaselineAdminNetworkPolicy => "banp",
            PolicyKind::Profile => "pro",
        }
    }

    /// The kind name used in Calico's tie-break key.
    pub fn long(self) -> &'static str {
        match self {
            PolicyKind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
            PolicyKind::NetworkPolicy => "NetworkPolicy",
            PolicyKind::KubernetesNetworkPolicy => "KubernetesNetworkPolicy",
            PolicyKind::StagedGlobalNetworkPolicy => "StagedGlobalNetworkPolicy",
            PolicyKind::StagedNetworkPolicy => "StagedNetworkPolicy",
            PolicyKind::StagedKubernetesNetworkPolicy => "StagedKubernetesNetworkPolicy",
            PolicyKind::AuthorizationPolicy => "AuthorizationPolicy",
            PolicyKind::ClusterNetworkPolicy => "KubernetesClusterNetworkPolicy",
            PolicyKind::AdminNetworkPolicy => "AdminNetworkPolicy",
            PolicyKind::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
            PolicyKind::Profile => "Profile",
        }
    }

    /// Whether this kind is a staged (never enforced) kind.
    pub fn is_staged(self) -> bool {
        matches!(
            self,
            PolicyKind::StagedGlobalNetworkPolicy
                | PolicyKind::StagedNetworkPolicy
                | PolicyKind::StagedKubernetesNetworkPolicy
        )
    }

    /// The enforced kind a staged kind stands for.
    pub fn enforced_counterpart(self) -> PolicyKind {
        match self {
            PolicyKind::StagedGlobalNetworkPolicy => PolicyKind::GlobalNetworkPolicy,
            PolicyKind::StagedNetworkPolicy => PolicyKind::NetworkPolicy,
            PolicyKind::StagedKubernetesNetworkPolicy => PolicyKind::KubernetesNetworkPolicy,
            k => k,
        }
    }
}

/// How a staged policy would change the enforced set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagedAction {
    /// The staged policy would be applied (replacing an enforced one of the same name).
    Set,
    /// The enforced policy of the same name, namespace and tier would be deleted.
    Delete,
}

/// A policy, selecting endpoints and holding rules per direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Kind.
    pub kind: PolicyKind,
    /// Name.
    pub name: String,
    /// Namespace (`None` for global kinds).
    pub namespace: Option<String>,
    /// Tier it belongs to.
    pub tier: TierId,
    /// Order within the tier; `None` sorts last.
    pub order: Option<f64>,
    /// Which endpoints it applies to (namespace scoping already folded in).
    pub selector: Expr,
    /// Ingress rules, when the policy governs ingress.
    pub ingress: Option<Vec<Rule>>,
    /// Egress rules, when the policy governs egress.
    pub egress: Option<Vec<Rule>>,
    /// `Some` for staged kinds.
    pub staged: Option<StagedAction>,
    /// Where it was declared (`file#document`), for lint messages.
    pub origin: String,
    /// A host-endpoint policy (`doNotTrack` or `preDNAT`): read and validated, never in a
    /// workload's walk (its selector selects nothing).
    pub host_only: bool,
}

impl Policy {
    /// `<kind>:[<ns>/]<name>`, as decisions and traces name it.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}:{}/{}", self.kind.short(), ns, self.name),
            None => format!("{}:{}", self.kind.short(), self.name),
        }
    }

    /// Calico's tie-break string `<name>/<namespace>/<kind>`.
    pub fn tie_break_key(&self) -> String {
        format!("{}/{}/{}", self.name, self.namespace.as_deref().unwrap_or(""), self.kind.long())
    }

    /// The rules of one direction, when the policy governs it.
    pub fn rules(&self, dir: super::Side) -> Option<&[Rule]> {
        match dir {
            super::Side::Ingress => self.ingress.as_deref(),
            super::Side::Egress => self.egress.as_deref(),
        }
    }
}

/// A rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Allow: final.
    Allow,
    /// Deny: final.
    Deny,
    /// Pass: end this tier, go to the next.
    Pass,
    /// Log: record and go on.
    Log,
}

impl RuleAction {
    /// Lower-case name, as in traces.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Allow => "allow",
            RuleAction::Deny => "deny",
            RuleAction::Pass => "pass",
            RuleAction::Log => "log",
        }
    }
}

/// One rule: an action and what it matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The action taken when the rule matches.
    pub action: RuleAction,
    /// The match criteria, all ANDed.
    pub matcher: RuleMatch,
}

/// The criteria of a rule. Calico and Kubernetes rules share one shape; Istio rules keep
/// Istio's semantics.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // the model is built once per load, never on the decision path
pub enum RuleMatch {
    /// A Calico (or Kubernetes-mapped) rule.
    Calico(CalicoRule),
    /// An Istio AuthorizationPolicy rule.
    Istio(Box<super::istio::IstioRule>),
}

/// Calico rule criteria.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CalicoRule {
    /// Protocol number that must match.
    pub protocol: Option<u8>,
    /// Protocol number that must not match.
    pub not_protocol: Option<u8>,
    /// ICMP type/code that must match.
    pub icmp: Option<IcmpMatch>,
    /// ICMP type/code that must not match.
    pub not_icmp: Option<IcmpMatch>,
    /// The IP version the rule applies to: explicit, implied by ICMP/ICMPv6, or by the
    /// family of its CIDRs. A request of the other version never matches.
    pub ip_version: Option<u8>,
    /// Source criteria.
    pub source: EntityMatch,
    /// Destination criteria.
    pub destination: EntityMatch,
    /// HTTP criteria (ingress Allow rules only).
    pub http: Option<HttpMatch>,
}

/// ICMP criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpMatch {
    /// ICMP type (0-254).
    pub icmp_type: u8,
    /// ICMP code (0-255), when named.
    pub code: Option<u8>,
}

/// Criteria on one end of the connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityMatch {
    /// The IP is in any of these.
    pub nets: Vec<IpNet>,
    /// The IP is in none of these.
    pub not_nets: Vec<IpNet>,
    /// Some endpoint or network set holding the IP satisfies this (scoped) selector.
    pub selector: Option<Expr>,
    /// No endpoint or network set holding the IP satisfies this selector.
    pub not_selector: Option<Expr>,
    /// The port is in any of these.
    pub ports: Vec<PortMatch>,
    /// The port is in none of these.
    pub not_ports: Vec<PortMatch>,
    /// A Calico `services` match: the IP (and on the destination side the port) belongs to
    /// one of the Service's EndpointSlices.
    pub services: Option<super::ServiceMatch>,
}

impl EntityMatch {
    /// Whether the entity constrains anything.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
            && self.not_nets.is_empty()
            && self.selector.is_none()
            && self.not_selector.is_none()
            && self.ports.is_empty()
            && self.not_ports.is_empty()
            && self.services.is_none()
    }
}

/// A port criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMatch {
    /// An inclusive range (a single port is `lo == hi`).
    Range(u16, u16),
    /// A named container port.
    Named(String),
}

/// HTTP criteria: methods ORed, paths ORed, the two ANDed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpMatch {
    /// Methods (case-sensitive; `*` is any). Empty means any.
    pub methods: Vec<String>,
    /// Paths (normalised at load). Empty means any.
    pub paths: Vec<PathMatch>,
}

impl HttpMatch {
    /// Whether the rule constrains the request at all.
    pub fn is_constraining(&self) -> bool {
        !self.methods.is_empty() || !self.paths.is_empty()
    }
}

/// A path criterion, on the normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// Equal.
    Exact(String),
    /// Equal, or a prefix on a segment boundary (`/` matches every path).
    Prefix(String),
}
