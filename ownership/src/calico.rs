//! Calico's tier check on top of Kubernetes RBAC, as the Calico API server applies it.
//!
//! Upstream facts (projectcalico/calico):
//!
//! * `apiserver/pkg/registry/projectcalico/authorizer/authorizer.go`: a tiered policy
//!   operation needs `get` on `tiers/<tier>` (cluster scope, API group `projectcalico.org`)
//!   **and** the request's verb on the pseudo-resource `tier.<resource>` in the request's
//!   namespace, either with the request's own name or with the name `<tier>.*`. Its denial:
//!   `<resource>.projectcalico.org "<policy>" is forbidden: User "<u>" cannot <verb>
//!   <resource>.projectcalico.org in tier "<tier>" [and namespace "<ns>"]`, with
//!   ` (user cannot get tier)` appended when the `get` on the tier was refused.
//! * `apiserver/pkg/registry/projectcalico/{networkpolicy,globalpolicy,stagednetworkpolicy,
//!   stagedglobalnetworkpolicy}/storage.go`: create checks the new object's tier, update the
//!   old tier and, when the update moves the policy, the new tier too; delete the stored
//!   tier; an absent `spec.tier` is `default`.
//! * The request's name is the one Kubernetes puts in the request: none for `create` and
//!   `list` (so a rule with `resourceNames` never grants them; `<tier>.*` does, being asked
//!   for explicitly).
//! * Before the storage layer runs, the generic API server has authorized the request itself
//!   (verb on `<resource>` in `projectcalico.org`, e.g. `networkpolicies`), with Kubernetes'
//!   denial `... is forbidden: User "<u>" cannot <verb> resource "<resource>" in API group
//!   "<group>" in the namespace "<ns>"` (`responsewriters/errors.go`); Calico's e2e test
//!   `e2e/pkg/tests/policy/tiered_rbac.go` grants both.
//!
//! Kubernetes NetworkPolicies (`networking.k8s.io`) are served by kube-apiserver, so they
//! only need plain RBAC on `networkpolicies`; Calico places them in tier `default`. Calico's
//! `StagedKubernetesNetworkPolicy` storage has no tier check either (plain RBAC on
//! `stagedkubernetesnetworkpolicies`). Istio
//! AuthorizationPolicies need plain RBAC on `authorizationpolicies` in `security.istio.io`
//! (Palisade maps them to the `istio-deny` / `istio-allow` tiers, but no tier check guards
//! them upstream). Tiers, GlobalNetworkSets and NetworkSets are plain RBAC too.

use std::fmt;

use palisade::model::PolicyKind;

use crate::rbac::{Attributes, Rbac, User, go_quote};

/// Calico's API group.
pub const CALICO_GROUP: &str = "projectcalico.org";

/// A kind of object whose writes are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Calico `Tier`.
    Tier,
    /// Calico `GlobalNetworkPolicy` (tiered).
    GlobalNetworkPolicy,
    /// Calico `NetworkPolicy` (tiered).
    NetworkPolicy,
    /// Calico `StagedGlobalNetworkPolicy` (tiered).
    StagedGlobalNetworkPolicy,
    /// Calico `StagedNetworkPolicy` (tiered).
    StagedNetworkPolicy,
    /// Kubernetes `NetworkPolicy` (plain RBAC; tier `default`).
    KubernetesNetworkPolicy,
    /// Calico `StagedKubernetesNetworkPolicy` (plain RBAC; tier `default`).
    StagedKubernetesNetworkPolicy,
    /// Istio `AuthorizationPolicy` (plain RBAC).
    AuthorizationPolicy,
    /// Calico `GlobalNetworkSet`.
    GlobalNetworkSet,
    /// Calico `NetworkSet`.
    NetworkSet,
    /// A policy kind this crate does not know (a newer core): every write is refused.
    Unsupported,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 10] = [
        Kind::Tier,
        Kind::GlobalNetworkPolicy,
        Kind::NetworkPolicy,
        Kind::StagedGlobalNetworkPolicy,
        Kind::StagedNetworkPolicy,
        Kind::KubernetesNetworkPolicy,
        Kind::StagedKubernetesNetworkPolicy,
        Kind::AuthorizationPolicy,
        Kind::GlobalNetworkSet,
        Kind::NetworkSet,
    ];

    /// The kind of a Palisade policy (by its kind name, so that a kind added to the core
    /// later is [`Kind::Unsupported`], refused, rather than a build failure).
    pub fn of_policy(k: PolicyKind) -> Kind {
        match k.long() {
            "GlobalNetworkPolicy" => Kind::GlobalNetworkPolicy,
            "NetworkPolicy" => Kind::NetworkPolicy,
            "StagedGlobalNetworkPolicy" => Kind::StagedGlobalNetworkPolicy,
            "StagedNetworkPolicy" => Kind::StagedNetworkPolicy,
            "KubernetesNetworkPolicy" => Kind::KubernetesNetworkPolicy,
            "StagedKubernetesNetworkPolicy" => Kind::StagedKubernetesNetworkPolicy,
            "AuthorizationPolicy" => Kind::AuthorizationPolicy,
            _ => Kind::Unsupported,
        }
    }

    /// The API group.
    pub fn group(self) -> &'static str {
        match self {
            Kind::KubernetesNetworkPolicy => "networking.k8s.io",
            Kind::AuthorizationPolicy => "security.istio.io",
            _ => CALICO_GROUP,
        }
    }

    /// The resource (plural) RBAC rules name.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Tier => "tiers",
            Kind::GlobalNetworkPolicy => "globalnetworkpolicies",
            Kind::NetworkPolicy | Kind::KubernetesNetworkPolicy => "networkpolicies",
            Kind::StagedGlobalNetworkPolicy => "stagedglobalnetworkpolicies",
            Kind::StagedNetworkPolicy => "stagednetworkpolicies",
            Kind::StagedKubernetesNetworkPolicy => "stagedkubernetesnetworkpolicies",
            Kind::AuthorizationPolicy => "authorizationpolicies",
            Kind::GlobalNetworkSet => "globalnetworksets",
            Kind::NetworkSet => "networksets",
            Kind::Unsupported => "unsupported",
        }
    }

    /// The kind's name in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tier => "Tier",
            Kind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::StagedGlobalNetworkPolicy => "StagedGlobalNetworkPolicy",
            Kind::StagedNetworkPolicy => "StagedNetworkPolicy",
            Kind::KubernetesNetworkPolicy => "NetworkPolicy.networking.k8s.io",
            Kind::StagedKubernetesNetworkPolicy => "StagedKubernetesNetworkPolicy",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::GlobalNetworkSet => "GlobalNetworkSet",
            Kind::NetworkSet => "NetworkSet",
            Kind::Unsupported => "(unsupported policy kind)",
        }
    }

    /// Palisade's short name (`gnp`, `np`, `knp`, `sgnp`, `snp`, `iap`, `tier`, `gns`, `ns`).
    pub fn short(self) -> &'static str {
        match self {
            Kind::Tier => "tier",
            Kind::GlobalNetworkPolicy => "gnp",
            Kind::NetworkPolicy => "np",
            Kind::StagedGlobalNetworkPolicy => "sgnp",
            Kind::StagedNetworkPolicy => "snp",
            Kind::KubernetesNetworkPolicy => "knp",
            Kind::StagedKubernetesNetworkPolicy => "sknp",
            Kind::AuthorizationPolicy => "iap",
            Kind::GlobalNetworkSet => "gns",
            Kind::NetworkSet => "netset",
            Kind::Unsupported => "unsupported",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        matches!(
            self,
            Kind::NetworkPolicy
                | Kind::StagedNetworkPolicy
                | Kind::KubernetesNetworkPolicy
                | Kind::StagedKubernetesNetworkPolicy
                | Kind::AuthorizationPolicy
                | Kind::NetworkSet
        )
    }

    /// Whether Calico's tier check guards it.
    pub fn tiered(self) -> bool {
        matches!(
            self,
            Kind::GlobalNetworkPolicy
                | Kind::NetworkPolicy
                | Kind::StagedGlobalNetworkPolicy
                | Kind::StagedNetworkPolicy
        )
    }

    /// Parses a kind as the command line gives it: Palisade's short name, the Kind, the
    /// resource (`networkpolicies.projectcalico.org`, `networkpolicies.p`); bare
    /// `networkpolicies` is Kubernetes', as kubectl resolves it.
    pub fn parse(s: &str) -> Option<Kind> {
        let l = s.to_ascii_lowercase();
        if l == "networkpolicies" || l == "networkpolicy" {
            return Some(Kind::KubernetesNetworkPolicy);
        }
        Kind::ALL.into_iter().find(|k| {
            l == k.short()
                || l == k.resource()
                || l == format!("{}.{}", k.resource(), k.group())
                || (k.group() == CALICO_GROUP && l == format!("{}.p", k.resource()))
                || l == k.name().to_ascii_lowercase()
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One write (or read) to authorize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<'a> {
    /// `create`, `update`, `patch`, `delete`, `get`, `list`, ...
    pub verb: &'a str,
    /// The kind.
    pub kind: Kind,
    /// The namespace (namespaced kinds).
    pub namespace: Option<&'a str>,
    /// The object's name (the policy's name for tiered kinds, also for `create`, as
    /// upstream's denial names it).
    pub name: &'a str,
    /// The tier(s) whose rights are needed, in upstream's order: for a tiered update that
    /// moves the policy, the old tier then the new one. Ignored for untiered kinds; `[]`
    /// means `default`.
    pub tiers: Vec<&'a str>,
}

/// One authorization step and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was asked, e.g. `create networkpolicies.projectcalico.org in namespace shop`.
    pub asked: String,
    /// Whether it was allowed.
    pub allowed: bool,
    /// Upstream's message: the `RBAC: allowed by ...` reason, or the denial.
    pub message: String,
}

/// The outcome of [`authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the operation is allowed (every step allowed).
    pub allowed: bool,
    /// The steps, in upstream's order.
    pub steps: Vec<Step>,
}

impl Outcome {
    /// The first denial, as the API server would return it.
    pub fn denial(&self) -> Option<&str> {
        self.steps.iter().find(|s| !s.allowed).map(|s| s.message.as_str())
    }
}

/// Whether Kubernetes puts the object's name in a request with this verb.
pub fn verb_has_name(verb: &str) -> bool {
    !matches!(verb, "create" | "list" | "watch" | "deletecollection")
}

fn kube_denial(user: &User, a: &Attributes<'_>, reason: &str) -> String {
    let resource =
        if a.subresource.is_empty() { a.resource.to_string() } else { format!("{}/{}", a.resource, a.subresource) };
    let mut msg = if a.namespace.is_empty() {
        format!(
            "User {} cannot {} resource {} in API group {} at the cluster scope",
            go_quote(&user.name),
            a.verb,
            go_quote(&resource),
            go_quote(a.api_group)
        )
    } else {
        format!(
            "User {} cannot {} resource {} in API group {} in the namespace {}",
            go_quote(&user.name),
            a.verb,
            go_quote(&resource),
            go_quote(a.api_group),
            go_quote(a.namespace)
        )
    };
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    forbidden(a.api_group, a.resource, a.name, &msg)
}

/// `apierrors.NewForbidden`'s message.
fn forbidden(group: &str, resource: &str, name: &str, err: &str) -> String {
    let gr = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
    if name.is_empty() {
        format!("{gr} is forbidden: {err}")
    } else {
        format!("{gr} {} is forbidden: {err}", go_quote(name))
    }
}

fn describe(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> String {
    let mut s = format!("{verb} {resource}");
    if !group.is_empty() {
        s.push('.');
        s.push_str(group);
    }
    if !name.is_empty() {
        s.push('/');
        s.push_str(name);
    }
    if !namespace.is_empty() {
        s.push_str(" in namespace ");
        s.push_str(namespace);
    }
    s
}

/// Plain Kubernetes RBAC for one request, as a [`Step`] with upstream's wording.
pub fn kube_step(rbac: &Rbac, user: &User, a: &Attributes<'_>) -> Step {
    let d = rbac.authorize(user, a);
    Step {
        asked: describe(a.verb, a.api_group, a.resource, a.namespace, a.name),
        allowed: d.allowed,
        message: if d.allowed { d.reason } else { kube_denial(user, a, &d.reason) },
    }
}

/// Calico's `AuthorizeTierOperation` for one tier: the `get` on the tier and the verb on
/// `tier.<resource>` with the request's name or `<tier>.*`.
pub fn tier_step(rbac: &Rbac, user: &User, verb: &str, kind: Kind, namespace: &str, name: &str, tier: &str) -> Step {
    let request_name = if verb_has_name(verb) { name } else { "" };
    let get_tier = rbac.authorize(
        user,
        &Attributes {
            verb: "get",
            api_group: CALICO_GROUP,
            resource: "tiers",
            subresource: "",
            namespace: "",
            name: tier,
        },
    );
    let scoped = format!("tier.{}", kind.resource());
    let by_name = rbac.authorize(
        user,
        &Attributes {
            verb,
            api_group: CALICO_GROUP,
            resource: &scoped,
            subresource: "",
            namespace,
            name: request_name,
        },
    );
    let wildcard = format!("{tier}.*");
    let by_tier = rbac.authorize(
        user,
        &Attributes { verb, api_group: CALICO_GROUP, resource: &scoped, subresource: "", namespace, name: &wildcard },
    );
    let asked = format!(
        "get tiers.{CALICO_GROUP}/{tier}, and {verb} {scoped}.{CALICO_GROUP} named {} or {wildcard}{}",
        if request_name.is_empty() { "\"\"" } else { request_name },
        if namespace.is_empty() { String::new() } else { format!(" in namespace {namespace}") }
    );
    if get_tier.allowed && (by_name.allowed || by_tier.allowed) {
        let which = if by_name.allowed { by_name.reason } else { by_tier.reason };
        return Step { asked, allowed: true, message: format!("{}; {}", get_tier.reason, which) };
    }
    let resource = format!("{}.{CALICO_GROUP}", kind.resource());
    let mut msg = if namespace.is_empty() {
        format!("User {} cannot {verb} {resource} in tier {}", go_quote(&user.name), go_quote(tier))
    } else {
        format!(
            "User {} cannot {verb} {resource} in tier {} and namespace {}",
            go_quote(&user.name),
            go_quote(tier),
            go_quote(namespace)
        )
    };
    if !get_tier.allowed {
        msg.push_str(" (user cannot get tier)");
    }
    Step { asked, allowed: false, message: forbidden(CALICO_GROUP, kind.resource(), name, &msg) }
}

/// Authorizes an operation as upstream does: the generic RBAC check of the request, then,
/// for tiered kinds, Calico's tier check for each tier involved. Every step is evaluated
/// (upstream stops at the first denial, which [`Outcome::denial`] returns).
pub fn authorize(rbac: &Rbac, user: &User, op: &Operation<'_>) -> Outcome {
    let namespace = if op.kind.namespaced() { op.namespace.unwrap_or("default") } else { "" };
    let name = if verb_has_name(op.verb) { op.name } else { "" };
    let a = Attributes {
        verb: op.verb,
        api_group: op.kind.group(),
        resource: op.kind.resource(),
        subresource: "",
        namespace,
        name,
    };
    if op.kind == Kind::Unsupported {
        let step = Step {
            asked: format!("{} {}", op.verb, op.name),
            allowed: false,
            message: format!(
                "{:?}: this policy kind is not known to the ownership check, so its changes are refused",
                op.name
            ),
        };
        return Outcome { allowed: false, steps: vec![step] };
    }
    let mut steps = vec![kube_step(rbac, user, &a)];
    if op.kind.tiered() {
        let tiers: Vec<&str> = if op.tiers.is_empty() { vec!["default"] } else { op.tiers.clone() };
        for (i, t) in tiers.iter().enumerate() {
            if tiers[..i].contains(t) {
                continue;
            }
            steps.push(tier_step(rbac, user, op.verb, op.kind, namespace, op.name, t));
        }
    }
    Outcome { allowed: steps.iter().all(|s| s.allowed), steps }
}
