//! Classifying documents by `apiVersion` and `kind`: read, skip, or reject.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::Value;

use super::Doc;
use crate::error::{LoadError, LoadErrorKind};

/// The identity of an object, for messages and duplicate detection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// API group with `crd.projectcalico.org` folded into `projectcalico.org`.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace for namespaced kinds (`default` when omitted).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[derive(Deserialize, Default)]
struct RawMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// An object that Palisade reads, with its metadata already taken apart.
pub(crate) struct Obj {
    pub doc: Doc,
    pub id: ObjectRef,
    pub labels: BTreeMap<String, String>,
}

impl Obj {
    /// Wraps an error with this object's location.
    pub fn err(&self, e: LoadError) -> LoadError {
        self.doc.err(e.in_object(self.id.to_string()))
    }

    /// The object's `spec` (or `null`).
    pub fn spec(&self) -> &Value {
        self.doc.value.get("spec").unwrap_or(&Value::Null)
    }

    /// The namespace of a namespaced object.
    pub fn namespace(&self) -> &str {
        self.id.namespace.as_deref().unwrap_or("default")
    }
}

/// Objects by role.
#[derive(Default)]
pub(crate) struct Objects {
    pub tiers: Vec<Obj>,
    pub policies: Vec<Obj>,
    pub network_sets: Vec<Obj>,
    pub pods: Vec<Obj>,
    pub namespaces: Vec<Obj>,
    pub service_accounts: Vec<Obj>,
    pub peer_authentications: Vec<Obj>,
    pub k8s_services: Vec<Obj>,
    pub endpoint_slices: Vec<Obj>,
    pub workload_endpoints: Vec<Obj>,
    pub profiles: Vec<Obj>,
    pub request_authentications: Vec<Obj>,
    /// Skipped documents by `(apiVersion, kind)`.
    pub skipped: BTreeMap<(String, String), usize>,
    pub total: usize,
}

impl Objects {
    pub fn policy_objects(&self) -> usize {
        self.policies.len() + self.network_sets.len()
    }

    pub fn inventory_objects(&self) -> usize {
        self.pods.len()
            + self.namespaces.len()
            + self.service_accounts.len()
            + self.peer_authentications.len()
            + self.request_authentications.len()
            + self.k8s_services.len()
            + self.endpoint_slices.len()
            + self.workload_endpoints.len()
            + self.profiles.len()
    }

    fn all(&self) -> impl Iterator<Item = &Obj> {
        self.tiers
            .iter()
            .chain(&self.policies)
            .chain(&self.network_sets)
            .chain(&self.pods)
            .chain(&self.namespaces)
            .chain(&self.service_accounts)
            .chain(&self.peer_authentications)
            .chain(&self.request_authentications)
            .chain(&self.k8s_services)
            .chain(&self.endpoint_slices)
            .chain(&self.workload_endpoints)
            .chain(&self.profiles)
    }
}

enum Role {
    Tier,
    Policy,
    NetworkSet,
    Pod,
    Namespace,
    ServiceAccount,
    PeerAuthentication,
    RequestAuthentication,
    Service,
    EndpointSlice,
    WorkloadEndpoint,
    Profile,
    Skip,
}

/// The API groups whose objects carry access rules (SPEC 9.1). In these groups a kind is
/// read, known to carry no access rule (skipped), or an error; it is never silently skipped.
const POLICY_GROUPS: &[&str] = &[
    "projectcalico.org",
    "crd.projectcalico.org",
    "networking.k8s.io",
    "security.istio.io",
    "policy.networking.k8s.io",
];

const CALICO_READ: &[&str] = &[
    "Tier",
    "StagedKubernetesNetworkPolicy",
    "HostEndpoint",
    "WorkloadEndpoint",
    "Profile",
    "GlobalNetworkPolicy",
    "NetworkPolicy",
    "StagedGlobalNetworkPolicy",
    "StagedNetworkPolicy",
    "GlobalNetworkSet",
    "NetworkSet",
];
/// Calico kinds that carry access rules Palisade cannot evaluate yet: an error.
const CALICO_REJECT: &[&str] = &[];
/// Calico kinds that carry no access rule (networking, IPAM, BGP, component configuration).
const CALICO_NO_ACCESS: &[&str] = &[
    "IPPool",
    "IPReservation",
    "IPAMConfig",
    "IPAMConfiguration",
    "IPAMBlock",
    "IPAMHandle",
    "BlockAffinity",
    "BGPConfiguration",
    "BGPPeer",
    "BGPFilter",
    "FelixConfiguration",
    "ClusterInformation",
    "KubeControllersConfiguration",
    "CalicoNodeStatus",
    "Node",
];
/// `networking.k8s.io` kinds that carry no access rule.
const K8S_NETWORKING_NO_ACCESS: &[&str] = &["Ingress", "IngressClass", "ServiceCIDR", "IPAddress"];
/// Kinds Palisade reads (or rejects as unsupported) in the policy groups: one of these under
/// another group is a mistake that would otherwise drop a policy.
const POLICY_KINDS: &[&str] = &[
    "Tier",
    "GlobalNetworkPolicy",
    "NetworkPolicy",
    "StagedGlobalNetworkPolicy",
    "StagedNetworkPolicy",
    "StagedKubernetesNetworkPolicy",
    "GlobalNetworkSet",
    "NetworkSet",
    "HostEndpoint",
    "Profile",
    "WorkloadEndpoint",
    "AuthorizationPolicy",
    "PeerAuthentication",
    "RequestAuthentication",
    "AdminNetworkPolicy",
    "BaselineAdminNetworkPolicy",
    "ClusterNetworkPolicy",
];
/// Core (`v1`) kinds Palisade reads.
const CORE_READ: &[&str] = &["Pod", "Namespace", "ServiceAccount"];

fn namespaced(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        (
            "projectcalico.org",
            "NetworkPolicy"
                | "StagedNetworkPolicy"
                | "StagedKubernetesNetworkPolicy"
                | "NetworkSet"
                | "WorkloadEndpoint"
        ) | ("", "Pod" | "ServiceAccount" | "Service")
            | ("discovery.k8s.io", "EndpointSlice")
            | ("networking.k8s.io", "NetworkPolicy")
            | ("security.istio.io", _)
    )
}

fn unsupported(msg: String) -> LoadError {
    LoadError::new(LoadErrorKind::Unsupported, msg)
}

fn invalid_kind(msg: String) -> LoadError {
    LoadError::new(LoadErrorKind::Schema, msg).at_field("kind")
}

/// A kind folded for near-miss detection: lower case, no separators, no plural ending.
fn fold_kind(kind: &str) -> String {
    let k: String = kind.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    if let Some(stem) = k.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = k.strip_suffix('s') {
        stem.to_string()
    } else {
        k
    }
}

/// The read kind that `kind` misspells (other case, spacing or a plural), if any.
fn near_miss(kind: &str) -> Option<&'static str> {
    let folded = fold_kind(kind);
    POLICY_KINDS.iter().chain(CORE_READ).copied().find(|k| *k != kind && fold_kind(k) == folded)
}

fn role(api_version: &str, kind: &str) -> Result<Role, LoadError> {
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    // A policy group spelt in another case, or named without a version.
    let lower = group.to_ascii_lowercase();
    let bare = api_version.to_ascii_lowercase();
    if (POLICY_GROUPS.contains(&lower.as_str()) && group != lower) || POLICY_GROUPS.contains(&bare.as_str()) {
        return Err(LoadError::new(
            LoadErrorKind::Schema,
            format!(
                "{api_version:?} is not a valid API version (write the group in lower case, with its \
                 version: projectcalico.org/v3, networking.k8s.io/v1, security.istio.io/v1)"
            ),
        )
        .at_field("apiVersion"));
    }
    let policy_group = POLICY_GROUPS.contains(&group);
    if (policy_group || group.is_empty())
        && let Some(meant) = near_miss(kind)
    {
        return Err(invalid_kind(format!("{kind:?} is not a kind Palisade reads; did you mean {meant}?")));
    }
    // (Kubeflow has a `Profile` of its own: only Calico's would carry access rules.)
    if !policy_group && POLICY_KINDS.contains(&kind) && kind != "Profile" {
        return Err(invalid_kind(format!(
            "{kind} under apiVersion {api_version:?} is not a policy Palisade reads: Calico kinds are \
             projectcalico.org/v3, Kubernetes NetworkPolicy is networking.k8s.io/v1, Istio kinds are \
             security.istio.io/v1"
        )));
    }
    match group {
        "projectcalico.org" | "crd.projectcalico.org" => {
            let supported_version = (group == "projectcalico.org" && version == "v3")
                || (group == "crd.projectcalico.org" && version == "v1");
            if CALICO_NO_ACCESS.contains(&kind) {
                return Ok(Role::Skip);
            }
            if CALICO_REJECT.contains(&kind) {
                return Err(unsupported(format!(
                    "{kind} is not supported: ignoring it would silently change access, so the bundle is rejected"
                )));
            }
            if !CALICO_READ.contains(&kind) {
                return Err(unsupported(format!(
                    "{kind} ({api_version}) is not a Calico kind Palisade reads or knows to carry no access rule; \
                     ignoring it could change access"
                )));
            }
            if !supported_version {
                return Err(unsupported(format!(
                    "apiVersion {api_version} is not supported for {kind} (use projectcalico.org/v3)"
                )));
            }
            Ok(match kind {
                "Tier" => Role::Tier,
                "GlobalNetworkSet" | "NetworkSet" | "HostEndpoint" => Role::NetworkSet,
                "WorkloadEndpoint" => Role::WorkloadEndpoint,
                "Profile" => Role::Profile,
                _ => Role::Policy,
            })
        }
        "networking.k8s.io" => match kind {
            "NetworkPolicy" if version == "v1" => Ok(Role::Policy),
            "NetworkPolicy" => Err(unsupported(format!(
                "apiVersion {api_version} is not supported for NetworkPolicy (use networking.k8s.io/v1)"
            ))),
            k if K8S_NETWORKING_NO_ACCESS.contains(&k) => Ok(Role::Skip),
            _ => Err(unsupported(format!(
                "{kind} ({api_version}) is not a networking.k8s.io kind Palisade reads or knows to carry no \
                 access rule; ignoring it could change access"
            ))),
        },
        "policy.networking.k8s.io" => match (kind, version) {
            ("ClusterNetworkPolicy", "v1alpha2")
            | ("AdminNetworkPolicy" | "BaselineAdminNetworkPolicy", "v1alpha1") => Ok(Role::Policy),
            _ => Err(unsupported(format!(
                "{kind} ({api_version}) is not supported: ClusterNetworkPolicy (v1alpha2) and AdminNetworkPolicy / \
                 BaselineAdminNetworkPolicy (v1alpha1) are read, and ignoring this kind could change access"
            ))),
        },
        "security.istio.io" => match (kind, version) {
            ("AuthorizationPolicy", "v1" | "v1beta1") => Ok(Role::Policy),
            ("PeerAuthentication", "v1" | "v1beta1") => Ok(Role::PeerAuthentication),
            ("RequestAuthentication", "v1" | "v1beta1") => Ok(Role::RequestAuthentication),
            _ => Err(unsupported(format!(
                "{kind} ({api_version}) is not supported: AuthorizationPolicy, PeerAuthentication and \
                 RequestAuthentication (v1, v1beta1) are read, and ignoring this kind could change access"
            ))),
        },
        "" => Ok(match (version, kind) {
            ("v1", "Pod") => Role::Pod,
            ("v1", "Namespace") => Role::Namespace,
            ("v1", "ServiceAccount") => Role::ServiceAccount,
            ("v1", "Service") => Role::Service,
            _ => Role::Skip,
        }),
        "discovery.k8s.io" if version == "v1" && kind == "EndpointSlice" => Ok(Role::EndpointSlice),
        _ => Ok(Role::Skip),
    }
}

fn metadata(doc: &Doc, kind: &str) -> Result<RawMeta, LoadError> {
    let Some(m) = doc.value.get("metadata") else { return Ok(RawMeta::default()) };
    crate::strict::from_value(m).map_err(|(path, message)| {
        let name = m.get("name").and_then(Value::as_str);
        let ns = m.get("namespace").and_then(Value::as_str);
        let object = match (ns, name) {
            (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
            (None, Some(n)) => format!("{kind} {n}"),
            _ => kind.to_string(),
        };
        let field = if path == "." { "metadata".to_string() } else { format!("metadata.{path}") };
        doc.err(LoadError::new(LoadErrorKind::Schema, message).at_field(field).in_object(object))
    })
}

/// Classifies one document; `Ok(None)` when it is skipped.
fn classify_one(doc: Doc, default_namespace: &str, out: &mut Objects) -> Result<(), LoadError> {
    if !doc.value.is_object() {
        return Err(doc.err(LoadError::new(LoadErrorKind::Schema, "a document must be a mapping")));
    }
    let api_version = doc.value.get("apiVersion").and_then(Value::as_str);
    let kind = doc.value.get("kind").and_then(Value::as_str);
    let (api_version, kind) = match (api_version, kind) {
        (Some(a), Some(k)) => (a.to_string(), k.to_string()),
        (None, _) => {
            return Err(
                doc.err(LoadError::new(LoadErrorKind::Schema, "missing apiVersion (a string)").at_field("apiVersion"))
            );
        }
        (_, None) => {
            return Err(doc.err(LoadError::new(LoadErrorKind::Schema, "missing kind (a string)").at_field("kind")));
        }
    };
    let meta = metadata(&doc, &kind)?;
    let r = role(&api_version, &kind).map_err(|e| {
        let named = match &meta.name {
            Some(n) => match &meta.namespace {
                Some(ns) => format!("{kind} {ns}/{n}"),
                None => format!("{kind} {n}"),
            },
            None => kind.clone(),
        };
        doc.err(e.in_object(named))
    })?;
    if matches!(r, Role::Skip) {
        *out.skipped.entry((api_version, kind)).or_default() += 1;
        return Ok(());
    }
    let group = match api_version.rsplit_once('/') {
        Some(("crd.projectcalico.org", _)) => "projectcalico.org".to_string(),
        Some((g, _)) => g.to_string(),
        None => String::new(),
    };
    let name = match meta.name {
        Some(n) if !n.is_empty() => n,
        _ => {
            return Err(doc.err(
                LoadError::new(LoadErrorKind::Schema, "metadata.name is required")
                    .in_object(kind.clone())
                    .at_field("metadata.name"),
            ));
        }
    };
    let namespace = if namespaced(&group, &kind) {
        Some(meta.namespace.filter(|n| !n.is_empty()).unwrap_or_else(|| default_namespace.into()))
    } else {
        None
    };
    let obj = Obj { doc, id: ObjectRef { group, kind, namespace, name }, labels: meta.labels.unwrap_or_default() };
    match r {
        Role::Tier => out.tiers.push(obj),
        Role::Policy => out.policies.push(obj),
        Role::NetworkSet => out.network_sets.push(obj),
        Role::Pod => out.pods.push(obj),
        Role::Namespace => out.namespaces.push(obj),
        Role::ServiceAccount => out.service_accounts.push(obj),
        Role::PeerAuthentication => out.peer_authentications.push(obj),
        Role::RequestAuthentication => out.request_authentications.push(obj),
        Role::Service => out.k8s_services.push(obj),
        Role::EndpointSlice => out.endpoint_slices.push(obj),
        Role::WorkloadEndpoint => out.workload_endpoints.push(obj),
        Role::Profile => out.profiles.push(obj),
        Role::Skip => {}
    }
    Ok(())
}

/// Sorts documents into roles, rejecting kinds that must not be ignored. Every document is
/// classified; the errors go to `errors`.
pub(crate) fn classify(docs: Vec<Doc>, default_namespace: &str, errors: &mut super::Errors) -> Objects {
    let mut out = Objects::default();
    for doc in docs {
        out.total += 1;
        if let Err(e) = classify_one(doc, default_namespace, &mut out) {
            errors.push(e);
        }
    }
    out
}

/// Two objects with the same group, kind, namespace and name are an error.
pub(crate) fn check_duplicates(objects: &Objects, errors: &mut super::Errors) {
    let mut seen: HashMap<&ObjectRef, &Obj> = HashMap::new();
    for obj in objects.all() {
        if let Some(first) = seen.insert(&obj.id, obj) {
            errors.push(obj.err(LoadError::new(
                LoadErrorKind::Duplicate,
                format!("duplicate object: also declared in {} (document {})", first.doc.file, first.doc.index),
            )));
        }
    }
}
