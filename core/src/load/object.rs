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
    pub skipped: usize,
    pub total: usize,
}

impl Objects {
    pub fn policy_objects(&self) -> usize {
        self.policies.len() + self.network_sets.len()
    }

    pub fn inventory_objects(&self) -> usize {
        self.pods.len() + self.namespaces.len() + self.service_accounts.len()
    }

    fn all(&self) -> impl Iterator<Item = &Obj> {
        self.tiers
            .iter()
            .chain(&self.policies)
            .chain(&self.network_sets)
            .chain(&self.pods)
            .chain(&self.namespaces)
            .chain(&self.service_accounts)
    }
}

enum Role {
    Tier,
    Policy,
    NetworkSet,
    Pod,
    Namespace,
    ServiceAccount,
    Skip,
}

const CALICO_READ: &[&str] = &[
    "Tier",
    "GlobalNetworkPolicy",
    "NetworkPolicy",
    "StagedGlobalNetworkPolicy",
    "StagedNetworkPolicy",
    "GlobalNetworkSet",
    "NetworkSet",
];
const CALICO_REJECT: &[&str] = &["HostEndpoint", "Profile", "StagedKubernetesNetworkPolicy", "WorkloadEndpoint"];

fn namespaced(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("projectcalico.org", "NetworkPolicy" | "StagedNetworkPolicy" | "NetworkSet")
            | ("", "Pod" | "ServiceAccount")
            | ("networking.k8s.io", "NetworkPolicy")
            | ("security.istio.io", _)
    )
}

fn unsupported(msg: String) -> LoadError {
    LoadError::new(LoadErrorKind::Unsupported, msg)
}

fn role(api_version: &str, kind: &str) -> Result<Role, LoadError> {
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let calico_kind = CALICO_READ.contains(&kind) || CALICO_REJECT.contains(&kind);
    match group {
        "projectcalico.org" | "crd.projectcalico.org" => {
            let supported_version = (group == "projectcalico.org" && version == "v3")
                || (group == "crd.projectcalico.org" && version == "v1");
            if CALICO_REJECT.contains(&kind) {
                return Err(unsupported(format!(
                    "{kind} is not supported: ignoring it would silently change access, so the bundle is rejected"
                )));
            }
            if !supported_version {
                if calico_kind {
                    return Err(unsupported(format!(
                        "apiVersion {api_version} is not supported for {kind} (use projectcalico.org/v3)"
                    )));
                }
                return Ok(Role::Skip);
            }
            Ok(match kind {
                "Tier" => Role::Tier,
                "GlobalNetworkPolicy" | "NetworkPolicy" | "StagedGlobalNetworkPolicy" | "StagedNetworkPolicy" => {
                    Role::Policy
                }
                "GlobalNetworkSet" | "NetworkSet" => Role::NetworkSet,
                _ => Role::Skip,
            })
        }
        "networking.k8s.io" => match kind {
            "NetworkPolicy" if version == "v1" => Ok(Role::Policy),
            "NetworkPolicy" => Err(unsupported(format!(
                "apiVersion {api_version} is not supported for NetworkPolicy (use networking.k8s.io/v1)"
            ))),
            _ => Ok(Role::Skip),
        },
        "policy.networking.k8s.io" => Err(unsupported(format!(
            "{kind} ({api_version}) is not supported: admin network policies would change access"
        ))),
        "security.istio.io" => match kind {
            "AuthorizationPolicy" if version == "v1" || version == "v1beta1" => Ok(Role::Policy),
            _ => Err(unsupported(format!(
                "{kind} ({api_version}) is not supported: only AuthorizationPolicy (v1, v1beta1) is read, and ignoring \
                 this kind could change access"
            ))),
        },
        "" => Ok(match (version, kind) {
            ("v1", "Pod") => Role::Pod,
            ("v1", "Namespace") => Role::Namespace,
            ("v1", "ServiceAccount") => Role::ServiceAccount,
            _ => Role::Skip,
        }),
        _ => Ok(Role::Skip),
    }
}

/// Sorts documents into roles, rejecting kinds that must not be ignored.
pub(crate) fn classify(docs: Vec<Doc>) -> Result<Objects, LoadError> {
    let mut out = Objects::default();
    for doc in docs {
        out.total += 1;
        if !doc.value.is_object() {
            return Err(doc.err(LoadError::new(LoadErrorKind::Schema, "a document must be a mapping")));
        }
        let api_version = doc.value.get("apiVersion").and_then(Value::as_str);
        let kind = doc.value.get("kind").and_then(Value::as_str);
        let (api_version, kind) = match (api_version, kind) {
            (Some(a), Some(k)) => (a.to_string(), k.to_string()),
            (None, _) => {
                return Err(doc.err(LoadError::new(LoadErrorKind::Schema, "missing apiVersion").at_field("apiVersion")));
            }
            (_, None) => {
                return Err(doc.err(LoadError::new(LoadErrorKind::Schema, "missing kind").at_field("kind")));
            }
        };
        let meta: RawMeta = match doc.value.get("metadata") {
            Some(m) => serde_path_to_error::deserialize(m.clone()).map_err(|e| {
                let path = e.path().to_string();
                let name = m.get("name").and_then(Value::as_str);
                let ns = m.get("namespace").and_then(Value::as_str);
                let object = match (ns, name) {
                    (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
                    (None, Some(n)) => format!("{kind} {n}"),
                    _ => kind.clone(),
                };
                doc.err(
                    LoadError::new(LoadErrorKind::Schema, e.into_inner().to_string())
                        .at_field(format!("metadata.{path}"))
                        .in_object(object),
                )
            })?,
            None => RawMeta::default(),
        };
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
            out.skipped += 1;
            continue;
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
            Some(meta.namespace.filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into()))
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
            Role::Skip => {}
        }
    }
    Ok(out)
}

/// Two objects with the same group, kind, namespace and name are an error.
pub(crate) fn check_duplicates(objects: &Objects) -> Result<(), LoadError> {
    let mut seen: HashMap<&ObjectRef, &Obj> = HashMap::new();
    for obj in objects.all() {
        if let Some(first) = seen.insert(&obj.id, obj) {
            return Err(obj.err(LoadError::new(
                LoadErrorKind::Duplicate,
                format!("duplicate object: also declared in {} (document {})", first.doc.file, first.doc.index),
            )));
        }
    }
    Ok(())
}
