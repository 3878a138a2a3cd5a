//! Kubernetes RBAC (`rbac.authorization.k8s.io/v1`), evaluated as the API server's RBAC
//! authorizer evaluates it.
//!
//! Upstream facts this module follows (kubernetes/kubernetes):
//!
//! * `pkg/apis/rbac/v1/evaluation_helpers.go`: a verb, API group or resource matches when the
//!   rule lists it or `*`; a resource also matches `*/<subresource>`; `resourceNames` empty
//!   means every name, otherwise the request's name must be listed exactly (so a request
//!   without a name, `create` or `list`, only matches rules without `resourceNames`).
//! * `plugin/pkg/auth/authorizer/rbac/rbac.go`: a request is allowed when any rule reached
//!   through a binding of the user allows it; the reason is `RBAC: allowed by <binding>`.
//! * `pkg/registry/rbac/validation/rule.go`: ClusterRoleBindings first, then the
//!   RoleBindings of the request's namespace only (a RoleBinding to a ClusterRole grants the
//!   ClusterRole's rules in the binding's namespace, never cluster-wide); subjects match a
//!   User by name, a Group by membership, a ServiceAccount by the username
//!   `system:serviceaccount:<ns>:<name>` (its namespace defaulting to the RoleBinding's).
//! * `staging/src/k8s.io/apiserver/pkg/authentication/serviceaccount/util.go`: a service
//!   account's implicit groups `system:serviceaccounts` and `system:serviceaccounts:<ns>`;
//!   every authenticated user is also in `system:authenticated`.
//! * `pkg/controller/clusterroleaggregation/clusterroleaggregation_controller.go`: a
//!   ClusterRole with an `aggregationRule` holds exactly the rules of the ClusterRoles its
//!   selectors match (itself excluded, by name order per selector, duplicates dropped); the
//!   rules written in its manifest are replaced.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// The API group of RBAC objects.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// Prefix of a service account's username.
pub const SA_PREFIX: &str = "system:serviceaccount:";
/// Group of every service account.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// Group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";

/// An error reading RBAC objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: {message}", .object.as_ref().map(|o| format!(": {o}")).unwrap_or_default())]
pub struct RbacError {
    /// The file (or `<string>`).
    pub source_name: String,
    /// The object, as `Kind namespace/name`, when known.
    pub object: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRule {
    /// Verbs (`get`, `create`, ..., or `*`).
    #[serde(default)]
    pub verbs: Vec<String>,
    /// API groups (`""` is the core group, `*` any).
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Resources (`pods`, `pods/log`, `*`, `*/status`).
    #[serde(default)]
    pub resources: Vec<String>,
    /// Names the rule is limited to (empty: every name).
    #[serde(default)]
    pub resource_names: Vec<String>,
    /// Non-resource URLs (kept for completeness; never matched by resource requests).
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

impl PolicyRule {
    /// Whether this rule allows a resource request (`RuleAllows` for a resource request).
    pub fn allows(&self, a: &Attributes<'_>) -> bool {
        let combined =
            if a.subresource.is_empty() { a.resource.to_string() } else { format!("{}/{}", a.resource, a.subresource) };
        self.verbs.iter().any(|v| v == "*" || v == a.verb)
            && self.api_groups.iter().any(|g| g == "*" || g == a.api_group)
            && self.resources.iter().any(|r| {
                r == "*"
                    || *r == combined
                    || (!a.subresource.is_empty()
                        && r.len() == a.subresource.len() + 2
                        && r.starts_with("*/")
                        && r.ends_with(a.subresource))
            })
            && (self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == a.name))
    }
}

/// What is asked: a resource request, as the API server's authorizer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes<'a> {
    /// The verb.
    pub verb: &'a str,
    /// The API group (`""` for the core group).
    pub api_group: &'a str,
    /// The resource (plural).
    pub resource: &'a str,
    /// The subresource (`""` for none).
    pub subresource: &'a str,
    /// The namespace (`""` for cluster-scoped requests).
    pub namespace: &'a str,
    /// The object's name (`""` for `create`, `list`, `watch`, `deletecollection`).
    pub name: &'a str,
}

/// Who asks: a username and groups, as the authenticator produced them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The username (`alice`, `system:serviceaccount:ci:deployer`).
    pub name: String,
    /// Its groups, implicit ones included.
    pub groups: Vec<String>,
}

impl User {
    /// A user with the given groups plus the implicit ones Kubernetes adds: for a service
    /// account username `system:serviceaccount:<ns>:<name>`, `system:serviceaccounts` and
    /// `system:serviceaccounts:<ns>`; for everyone but `system:anonymous`,
    /// `system:authenticated` (anonymous gets `system:unauthenticated`).
    pub fn new(name: impl Into<String>, groups: impl IntoIterator<Item = impl Into<String>>) -> User {
        let name = name.into();
        let mut out: Vec<String> = Vec::new();
        let mut push = |g: String| {
            if !out.contains(&g) {
                out.push(g);
            }
        };
        for g in groups {
            push(g.into());
        }
        if let Some((ns, _)) = split_service_account(&name) {
            push(ALL_SERVICE_ACCOUNTS.to_string());
            push(format!("{ALL_SERVICE_ACCOUNTS}:{ns}"));
        }
        if name == "system:anonymous" {
            push("system:unauthenticated".to_string());
        } else {
            push(AUTHENTICATED.to_string());
        }
        User { name, groups: out }
    }

    /// The user a service account authenticates as.
    pub fn service_account(namespace: &str, name: &str) -> User {
        User::new(format!("{SA_PREFIX}{namespace}:{name}"), Vec::<String>::new())
    }
}

/// `(namespace, name)` of a service-account username (`SplitUsername`: exactly two parts
/// after the prefix, both non-empty).
pub fn split_service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SA_PREFIX)?;
    let mut parts = rest.split(':');
    let (ns, name) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || ns.is_empty() || name.is_empty() {
        return None;
    }
    Some((ns, name))
}

/// A binding subject.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    /// The name.
    pub name: String,
    /// For a ServiceAccount, its namespace (a RoleBinding's own when empty).
    #[serde(default)]
    pub namespace: Option<String>,
    /// `rbac.authorization.k8s.io` for users and groups, `""` for service accounts.
    #[serde(default)]
    pub api_group: Option<String>,
}

impl Subject {
    /// `appliesToUser`.
    fn applies(&self, user: &User, binding_namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => {
                let ns = match self.namespace.as_deref() {
                    Some(ns) if !ns.is_empty() => ns,
                    _ => binding_namespace,
                };
                !ns.is_empty() && user.name == format!("{SA_PREFIX}{ns}:{}", self.name)
            }
            _ => false,
        }
    }

    /// `describeSubject`, as upstream prints it (a service account as `name/namespace`).
    fn describe(&self, binding_namespace: &str) -> String {
        match (self.kind.as_str(), self.namespace.as_deref()) {
            ("ServiceAccount", Some(ns)) if !ns.is_empty() => {
                format!("{} {}", self.kind, go_quote(&format!("{}/{}", self.name, ns)))
            }
            ("ServiceAccount", _) => {
                format!("{} {}", self.kind, go_quote(&format!("{}/{}", self.name, binding_namespace)))
            }
            _ => format!("{} {}", self.kind, go_quote(&self.name)),
        }
    }
}

/// A binding's role reference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    /// `Role` or `ClusterRole`.
    pub kind: String,
    /// The role's name.
    pub name: String,
    /// `rbac.authorization.k8s.io`.
    #[serde(default)]
    pub api_group: String,
}

/// A label selector (`metav1.LabelSelector`), for aggregation rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must be equal.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Requirements.
    #[serde(default)]
    pub match_expressions: Vec<LabelRequirement>,
}

/// One `matchExpressions` requirement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    /// Values for `In` / `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether the labels satisfy the selector (an empty selector matches everything, as
    /// `LabelSelectorAsSelector` makes it).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let v = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => v.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => v.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    _ => false,
                }
            })
    }

    fn validate(&self) -> Result<(), String> {
        for r in &self.match_expressions {
            match r.operator.as_str() {
                "In" | "NotIn" if r.values.is_empty() => {
                    return Err(format!("operator {} on {:?} needs values", r.operator, r.key));
                }
                "Exists" | "DoesNotExist" if !r.values.is_empty() => {
                    return Err(format!("operator {} on {:?} takes no values", r.operator, r.key));
                }
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                op => return Err(format!("{op:?} is not a valid label selector operator")),
            }
        }
        Ok(())
    }
}

/// A namespaced Role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Rules.
    pub rules: Vec<PolicyRule>,
}

/// A ClusterRole (its rules already aggregated when it has an `aggregationRule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRole {
    /// Name.
    pub name: String,
    /// Labels (what aggregation selectors match).
    pub labels: BTreeMap<String, String>,
    /// Rules in force.
    pub rules: Vec<PolicyRule>,
    /// `aggregationRule.clusterRoleSelectors`, when present.
    pub aggregation: Option<Vec<LabelSelector>>,
}

/// A RoleBinding (`namespace` set) or ClusterRoleBinding (`namespace` `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Namespace of a RoleBinding; `None` for a ClusterRoleBinding.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// The role granted.
    pub role_ref: RoleRef,
    /// Who it is granted to.
    pub subjects: Vec<Subject>,
}

impl Binding {
    fn describe(&self, subject: &Subject) -> String {
        match &self.namespace {
            None => format!(
                "ClusterRoleBinding {} of {} {} to {}",
                go_quote(&self.name),
                self.role_ref.kind,
                go_quote(&self.role_ref.name),
                subject.describe("")
            ),
            Some(ns) => format!(
                "RoleBinding {} of {} {} to {}",
                go_quote(&format!("{}/{}", self.name, ns)),
                self.role_ref.kind,
                go_quote(&self.role_ref.name),
                subject.describe(ns)
            ),
        }
    }
}

/// The RBAC objects of a cluster (or a Git checkout of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rbac {
    /// Roles.
    pub roles: Vec<Role>,
    /// ClusterRoles.
    pub cluster_roles: Vec<ClusterRole>,
    /// RoleBindings and ClusterRoleBindings.
    pub bindings: Vec<Binding>,
    /// Documents of other kinds that were skipped.
    pub skipped: usize,
}

/// The answer of [`Rbac::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether some rule allows the request.
    pub allowed: bool,
    /// `RBAC: allowed by ...` when allowed; the unresolved role references otherwise (as
    /// upstream's reason lists resolution errors), or empty.
    pub reason: String,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRole {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    rules: Option<Vec<PolicyRule>>,
    #[serde(default)]
    aggregation_rule: Option<RawAggregation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAggregation {
    #[serde(default)]
    cluster_role_selectors: Vec<LabelSelector>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBinding {
    #[serde(default)]
    metadata: Meta,
    role_ref: RoleRef,
    #[serde(default)]
    subjects: Option<Vec<Subject>>,
}

fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_alias_expansions_per_anchor = 1_000;
    options
}

/// Unwraps `List` / `<Kind>List` documents (items take the list's kind and version when
/// they lack their own, as API list responses print them).
fn unwrap(value: Value, depth: usize, out: &mut Vec<Value>) {
    let is_list = match value.get("kind") {
        Some(Value::String(k)) => k == "List" || (k.ends_with("List") && value.get("items").is_some()),
        None => value.get("items").is_some(),
        Some(_) => false,
    };
    if !is_list || depth > 8 {
        if !value.is_null() {
            out.push(value);
        }
        return;
    }
    let item_kind =
        value.get("kind").and_then(Value::as_str).filter(|k| *k != "List").and_then(|k| k.strip_suffix("List"));
    let item_kind = item_kind.map(str::to_string);
    let api = value.get("apiVersion").and_then(Value::as_str).map(str::to_string);
    if let Some(Value::Array(items)) = value.get("items") {
        for mut item in items.iter().cloned() {
            if let (Some(k), Value::Object(o)) = (&item_kind, &mut item) {
                o.entry("kind").or_insert_with(|| Value::String(k.clone()));
                if let Some(a) = &api {
                    o.entry("apiVersion").or_insert_with(|| Value::String(a.clone()));
                }
            }
            unwrap(item, depth + 1, out);
        }
    }
}

fn validate_rule(r: &PolicyRule, namespaced: bool) -> Result<(), String> {
    if r.verbs.is_empty() {
        return Err("a rule needs verbs".into());
    }
    if !r.non_resource_urls.is_empty() {
        if namespaced {
            return Err("namespaced rules cannot apply to non-resource URLs".into());
        }
        if !r.api_groups.is_empty() || !r.resources.is_empty() {
            return Err("rules cannot apply to both regular resources and non-resource URLs".into());
        }
        return Ok(());
    }
    if r.api_groups.is_empty() {
        return Err("resource rules must supply at least one api group".into());
    }
    if r.resources.is_empty() {
        return Err("resource rules must supply at least one resource".into());
    }
    Ok(())
}

impl Rbac {
    /// Reads RBAC objects from `(name, text)` sources (YAML or JSON, several documents,
    /// `List`s). Documents of other kinds are skipped and counted; an RBAC object in another
    /// version than `v1`, or one the API server would reject (a rule without verbs, a
    /// ClusterRoleBinding to a Role, a subject of unknown kind), is an error.
    pub fn from_sources(sources: &[(String, String)]) -> Result<Rbac, RbacError> {
        let mut rbac = Rbac::default();
        for (src, text) in sources {
            let err = |object: Option<String>, message: String| RbacError { source_name: src.clone(), object, message };
            let docs: Vec<Value> =
                serde_saphyr::from_multiple_with_options(text, yaml_options()).map_err(|e| err(None, e.to_string()))?;
            let mut values = Vec::new();
            for d in docs {
                unwrap(d, 0, &mut values);
            }
            for v in values {
                let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
                let kind = v.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
                let Some(version) = api.strip_prefix(RBAC_GROUP).and_then(|r| r.strip_prefix('/')) else {
                    rbac.skipped += 1;
                    continue;
                };
                if !matches!(kind.as_str(), "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding") {
                    rbac.skipped += 1;
                    continue;
                }
                let meta_name = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
                let namespaced = matches!(kind.as_str(), "Role" | "RoleBinding");
                let ns = v.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_string();
                let id = if namespaced { format!("{kind} {ns}/{meta_name}") } else { format!("{kind} {meta_name}") };
                let err = |m: String| err(Some(id.clone()), m);
                if version != "v1" {
                    return Err(err(format!("{api}: only {RBAC_GROUP}/v1 is read")));
                }
                if meta_name.is_empty() {
                    return Err(err("metadata.name is required".into()));
                }
                match kind.as_str() {
                    "Role" | "ClusterRole" => {
                        let raw: RawRole = serde_json::from_value(v).map_err(|e| err(e.to_string()))?;
                        let rules = raw.rules.unwrap_or_default();
                        for r in &rules {
                            validate_rule(r, namespaced).map_err(&err)?;
                        }
                        if namespaced {
                            rbac.roles.push(Role {
                                namespace: raw.metadata.namespace.unwrap_or_else(|| "default".into()),
                                name: meta_name,
                                rules,
                            });
                        } else {
                            let aggregation = match raw.aggregation_rule {
                                Some(a) => {
                                    for s in &a.cluster_role_selectors {
                                        s.validate().map_err(&err)?;
                                    }
                                    Some(a.cluster_role_selectors)
                                }
                                None => None,
                            };
                            rbac.cluster_roles.push(ClusterRole {
                                name: meta_name,
                                labels: raw.metadata.labels.unwrap_or_default(),
                                rules,
                                aggregation,
                            });
                        }
                    }
                    _ => {
                        let raw: RawBinding = serde_json::from_value(v).map_err(|e| err(e.to_string()))?;
                        let subjects = raw.subjects.unwrap_or_default();
                        if raw.role_ref.api_group != RBAC_GROUP {
                            return Err(err(format!("roleRef.apiGroup must be {RBAC_GROUP}")));
                        }
                        match (namespaced, raw.role_ref.kind.as_str()) {
                            (true, "Role" | "ClusterRole") | (false, "ClusterRole") => {}
                            (_, k) => return Err(err(format!("roleRef.kind {k:?} is not valid here"))),
                        }
                        for s in &subjects {
                            match s.kind.as_str() {
                                "User" | "Group" if s.api_group.as_deref() == Some(RBAC_GROUP) => {}
                                "User" | "Group" => {
                                    return Err(err(format!("subject {} needs apiGroup {RBAC_GROUP}", s.name)));
                                }
                                "ServiceAccount" => {
                                    if s.api_group.as_deref().is_some_and(|g| !g.is_empty()) {
                                        return Err(err(format!("service account {} takes apiGroup \"\"", s.name)));
                                    }
                                    if !namespaced && s.namespace.as_deref().is_none_or(str::is_empty) {
                                        return Err(err(format!("service account {} needs a namespace", s.name)));
                                    }
                                }
                                k => return Err(err(format!("subject kind {k:?} is not valid"))),
                            }
                        }
                        rbac.bindings.push(Binding {
                            namespace: namespaced.then(|| raw.metadata.namespace.unwrap_or_else(|| "default".into())),
                            name: meta_name,
                            role_ref: raw.role_ref,
                            subjects,
                        });
                    }
                }
            }
        }
        rbac.aggregate();
        Ok(rbac)
    }

    /// Reads RBAC objects from files and directories (`*.yaml`, `*.yml`, `*.json`,
    /// recursively, in name order), as bundles are read.
    pub fn from_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Rbac, RbacError> {
        let files = palisade::load::read_paths(paths, palisade::Config::default().max_bundle_bytes)
            .map_err(|e| RbacError { source_name: e.file.clone(), object: None, message: e.message.clone() })?;
        Rbac::from_sources(&files)
    }

    /// Reads RBAC objects from one YAML or JSON text.
    pub fn from_yaml(text: &str) -> Result<Rbac, RbacError> {
        Rbac::from_sources(&[("<string>".to_string(), text.to_string())])
    }

    /// Computes aggregated ClusterRoles as the aggregation controller does, to a fixpoint
    /// (an aggregated role may select another aggregated role).
    fn aggregate(&mut self) {
        let mut order: Vec<usize> = (0..self.cluster_roles.len()).collect();
        order.sort_by(|a, b| self.cluster_roles[*a].name.cmp(&self.cluster_roles[*b].name));
        for _ in 0..=self.cluster_roles.len() {
            let mut changed = false;
            for i in 0..self.cluster_roles.len() {
                let Some(selectors) = self.cluster_roles[i].aggregation.clone() else { continue };
                let mut rules: Vec<PolicyRule> = Vec::new();
                for sel in &selectors {
                    for &j in &order {
                        let other = &self.cluster_roles[j];
                        if other.name == self.cluster_roles[i].name || !sel.matches(&other.labels) {
                            continue;
                        }
                        for r in &other.rules {
                            if !rules.contains(r) {
                                rules.push(r.clone());
                            }
                        }
                    }
                }
                if rules != self.cluster_roles[i].rules {
                    self.cluster_roles[i].rules = rules;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn role_rules(&self, role_ref: &RoleRef, namespace: &str) -> Option<&[PolicyRule]> {
        match role_ref.kind.as_str() {
            "Role" => self
                .roles
                .iter()
                .find(|r| r.namespace == namespace && r.name == role_ref.name)
                .map(|r| r.rules.as_slice()),
            "ClusterRole" => self.cluster_roles.iter().find(|r| r.name == role_ref.name).map(|r| r.rules.as_slice()),
            _ => None,
        }
    }

    /// Decides a resource request as Kubernetes' RBAC authorizer does.
    pub fn authorize(&self, user: &User, a: &Attributes<'_>) -> Decision {
        let mut missing: Vec<String> = Vec::new();
        let cluster = self.bindings.iter().filter(|b| b.namespace.is_none());
        let local =
            self.bindings.iter().filter(|b| !a.namespace.is_empty() && b.namespace.as_deref() == Some(a.namespace));
        for b in cluster.chain(local) {
            let ns = b.namespace.as_deref().unwrap_or("");
            let Some(subject) = b.subjects.iter().find(|s| s.applies(user, ns)) else { continue };
            let Some(rules) = self.role_rules(&b.role_ref, ns) else {
                let what = match b.role_ref.kind.as_str() {
                    "Role" => format!("role.{RBAC_GROUP} {} not found", go_quote(&b.role_ref.name)),
                    _ => format!("clusterrole.{RBAC_GROUP} {} not found", go_quote(&b.role_ref.name)),
                };
                missing.push(what);
                continue;
            };
            if rules.iter().any(|r| r.allows(a)) {
                return Decision { allowed: true, reason: format!("RBAC: allowed by {}", b.describe(subject)) };
            }
        }
        let reason = match missing.len() {
            0 => String::new(),
            1 => format!("RBAC: {}", missing[0]),
            _ => format!("RBAC: [{}]", missing.join(", ")),
        };
        Decision { allowed: false, reason }
    }

    /// The names of ClusterRoles and Roles that bindings reference but that do not exist.
    pub fn dangling_references(&self) -> Vec<String> {
        let mut out = Vec::new();
        for b in &self.bindings {
            let ns = b.namespace.as_deref().unwrap_or("");
            if self.role_rules(&b.role_ref, ns).is_none() {
                out.push(format!("{} {} -> {} {}", binding_kind(b), b.name, b.role_ref.kind, b.role_ref.name));
            }
        }
        out
    }
}

fn binding_kind(b: &Binding) -> &'static str {
    if b.namespace.is_some() { "RoleBinding" } else { "ClusterRoleBinding" }
}

/// Go's `%q` for the strings these messages quote.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (groups {})", self.name, self.groups.join(", "))
    }
}
