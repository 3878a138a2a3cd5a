//! Loading a bundle: YAML/JSON documents to a validated [`Bundle`].
//!
//! The YAML crate is `serde-saphyr`: a maintained, pure-Rust, panic-free YAML 1.2 parser
//! with a parse budget (events, nodes, depth, documents) and alias-replay limits, so a
//! "billion laughs" document fails fast instead of exhausting memory. It builds for
//! `wasm32-unknown-unknown`. (`serde_yaml` is archived; `serde_yml` is unmaintained.)
//!
//! Each document is read as a JSON value first, then dispatched on `apiVersion` and `kind`
//! and deserialised into a typed spec with `deny_unknown_fields`, with
//! `serde_path_to_error` supplying the field path of any error.

mod admin;
mod calico;
mod fields;
mod inventory;
mod istio;
mod istio_authn;
mod k8s;
mod object;
mod services;

#[cfg(feature = "fs")]
mod fs;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::config::Config;
use crate::error::{LoadError, LoadErrorKind};
use crate::model::Bundle;

pub use object::ObjectRef;

#[cfg(feature = "fs")]
pub use fs::read_paths;

/// One source of documents: a name for error messages and its text.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The file path, or `<string>`.
    pub name: &'a str,
    /// The YAML or JSON text.
    pub text: &'a str,
}

/// A document, located.
#[derive(Clone)]
pub(crate) struct Doc {
    pub file: String,
    pub index: usize,
    /// The path inside the document's lists (`items[3]`, `items[0].items[2]`), when the
    /// object came from one.
    pub item: Option<String>,
    /// Shared, so that the engine's object store and a build read one parsed copy.
    pub value: Arc<Value>,
}

impl Doc {
    pub(crate) fn err(&self, e: LoadError) -> LoadError {
        let e = match &self.item {
            Some(i) => {
                let field = match &e.field {
                    Some(f) => format!("{i}.{f}"),
                    None => i.clone(),
                };
                LoadError { field: Some(field), ..e }
            }
            None => e,
        };
        e.in_source(&self.file, Some(self.index))
    }
}

fn yaml_options(config: &Config) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    // Real inventories are large: let size limits come from the configuration and keep
    // the alias limits (which stop expansion bombs) at their defaults.
    budget.max_reader_input_bytes = Some(config.max_bundle_bytes);
    budget.max_documents = config.max_documents;
    budget.max_events = usize::MAX;
    budget.max_nodes = usize::MAX;
    budget.max_total_scalar_bytes = config.max_bundle_bytes;
    budget.max_depth = 128;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    // YAML 1.2 booleans only: `n`, `no`, `on` stay strings (a namespace named `n`).
    options.strict_booleans = true;
    // One-line messages (the location is in the text): errors travel through the bindings.
    options.with_snippet = false;
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_alias_expansions_per_anchor = 1_000;
    options
}

/// The errors of one load: at most [`Errors::LIMIT`] are kept, the first is the headline.
#[derive(Default)]
pub(crate) struct Errors {
    list: Vec<LoadError>,
    /// Errors found past the limit (counted, not kept).
    dropped: usize,
}

impl Errors {
    /// How many errors one load reports.
    pub const LIMIT: usize = 100;

    pub fn push(&mut self, e: LoadError) {
        if self.list.len() < Self::LIMIT {
            self.list.push(e);
        } else {
            self.dropped += 1;
        }
    }

    /// Keeps `Ok` values, records the error of an `Err`.
    pub fn keep<T>(&mut self, r: Result<T, LoadError>) -> Option<T> {
        r.map_err(|e| self.push(e)).ok()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `Ok(value)` when nothing went wrong, else the headline with the others, in the order
    /// of the documents they are about (files are read in name order).
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, LoadError> {
        self.list.sort_by(|a, b| {
            (a.file.as_str(), a.document.unwrap_or(usize::MAX))
                .cmp(&(b.file.as_str(), b.document.unwrap_or(usize::MAX)))
        });
        let mut it = self.list.into_iter();
        match it.next() {
            None => Ok(value),
            Some(mut first) => {
                first.others = it.collect();
                if self.dropped > 0 {
                    first.others.push(LoadError::new(
                        LoadErrorKind::Limit,
                        format!("{} more errors were found and not listed", self.dropped),
                    ));
                }
                Err(first)
            }
        }
    }
}

/// How deep `List`s may nest inside one another.
const MAX_LIST_DEPTH: usize = 8;

/// Whether a document is a list to unwrap: `kind: List`, any `<Kind>List` with `items`
/// (`GlobalNetworkPolicyList`, `PodList`, as calicoctl and kubectl print them), or a
/// kind-less document with `items`.
fn is_list(value: &Value) -> bool {
    match value.get("kind") {
        Some(Value::String(k)) => k == "List" || (k.ends_with("List") && value.get("items").is_some()),
        None => value.get("items").is_some(),
        Some(_) => false,
    }
}

/// Unwraps `value` into `out`, lists recursively. Items of a typed list that lack their own
/// `apiVersion` or `kind` (as the API server's list responses print them) take the list's.
pub(crate) fn unwrap_lists(
    value: Value,
    file: &str,
    index: usize,
    path: Option<String>,
    depth: usize,
    out: &mut Vec<Doc>,
    errors: &mut Errors,
) {
    if value.is_null() {
        return;
    }
    if !is_list(&value) {
        out.push(Doc { file: file.to_string(), index, item: path, value: Arc::new(value) });
        return;
    }
    let here = |e: LoadError| {
        let e = match &path {
            Some(p) => e.at_field(p.clone()),
            None => e,
        };
        e.in_source(file, Some(index))
    };
    if depth >= MAX_LIST_DEPTH {
        errors.push(here(LoadError::new(
            LoadErrorKind::Limit,
            format!("lists nest deeper than {MAX_LIST_DEPTH} levels"),
        )));
        return;
    }
    let Value::Object(mut m) = value else { return };
    let item_kind = match m.get("kind").and_then(Value::as_str) {
        Some(k) if k != "List" => k.strip_suffix("List").map(str::to_string),
        _ => None,
    };
    let list_api = m.get("apiVersion").and_then(Value::as_str).map(str::to_string);
    let items = match m.remove("items") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => return,
        Some(_) => {
            let field = match &path {
                Some(p) => format!("{p}.items"),
                None => "items".into(),
            };
            errors.push(
                LoadError::new(LoadErrorKind::Schema, "`items` of a list must be a sequence")
                    .at_field(field)
                    .in_source(file, Some(index)),
            );
            return;
        }
    };
    for (i, mut item) in items.into_iter().enumerate() {
        if let (Some(k), Value::Object(obj)) = (&item_kind, &mut item) {
            obj.entry("kind").or_insert_with(|| Value::String(k.clone()));
            if let Some(a) = &list_api {
                obj.entry("apiVersion").or_insert_with(|| Value::String(a.clone()));
            }
        }
        let p = match &path {
            Some(p) => format!("{p}.items[{i}]"),
            None => format!("items[{i}]"),
        };
        unwrap_lists(item, file, index, Some(p), depth + 1, out, errors);
    }
}

/// Rewrites the YAML parser's messages that speak to a programmer.
fn syntax_message(e: &serde_saphyr::Error) -> String {
    e.to_string().replace(", set DuplicateKeyPolicy in Options if acceptable", "")
}

/// Parses sources into documents, unwrapping lists. Every source is parsed; the errors go
/// to `errors`.
pub(crate) fn documents(sources: &[Source<'_>], config: &Config, errors: &mut Errors) -> Vec<Doc> {
    let total: usize = sources.iter().map(|s| s.text.len()).sum();
    if total > config.max_bundle_bytes {
        errors.push(LoadError::new(
            LoadErrorKind::Limit,
            format!("bundle is {total} bytes, the limit (max_bundle_bytes) is {}", config.max_bundle_bytes),
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for src in sources {
        let values: Vec<Value> = match serde_saphyr::from_multiple_with_options(src.text, yaml_options(config)) {
            Ok(v) => v,
            Err(e) => {
                errors.push(LoadError::new(LoadErrorKind::Syntax, syntax_message(&e)).in_source(src.name, None));
                continue;
            }
        };
        for (index, value) in values.into_iter().enumerate() {
            unwrap_lists(value, src.name, index, None, 0, &mut out, errors);
            if out.len() > config.max_documents {
                errors.push(
                    LoadError::new(
                        LoadErrorKind::Limit,
                        format!("more than {} documents (max_documents)", config.max_documents),
                    )
                    .in_source(src.name, Some(index)),
                );
                return out;
            }
        }
    }
    out
}

/// Loads a bundle from sources, all-or-nothing. A rejected bundle's error lists every error
/// found (up to [`Errors::LIMIT`], in [`LoadError::others`]), not only the first.
///
/// ```
/// let yaml = r#"
/// apiVersion: projectcalico.org/v3
/// kind: GlobalNetworkPolicy
/// metadata: {name: deny-all}
/// spec: {selector: all(), types: [Ingress]}
/// "#;
/// let bundle = palisade::load::load(&[palisade::load::Source { name: "<string>", text: yaml }], &palisade::Config::default()).unwrap();
/// assert_eq!(bundle.policies.len(), 1);
/// assert_eq!(bundle.policies[0].display_name(), "gnp:deny-all");
/// ```
pub fn load(sources: &[Source<'_>], config: &Config) -> Result<Bundle, LoadError> {
    let mut errors = Errors::default();
    let docs = documents(sources, config, &mut errors);
    build(docs, config, errors)
}

/// Loads a bundle from documents that are already parsed (`(source name, value)` pairs, one
/// object or `List` each), all-or-nothing, with the same validation and errors as [`load`].
/// Nothing is parsed from text: this is the entry point for callers that hold objects as
/// values (an informer's cache, the engine's object store).
///
/// ```
/// let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
///     "metadata": {"name": "web", "namespace": "shop"}, "status": {"podIP": "10.0.0.2"}});
/// let bundle = palisade::load::load_values(vec![("pod".to_string(), pod)], &palisade::Config::default()).unwrap();
/// assert_eq!(bundle.endpoints.len(), 1);
/// ```
pub fn load_values(values: Vec<(String, Value)>, config: &Config) -> Result<Bundle, LoadError> {
    let mut errors = Errors::default();
    let mut docs = Vec::with_capacity(values.len());
    for (index, (name, value)) in values.into_iter().enumerate() {
        unwrap_lists(value, &name, index, None, 0, &mut docs, &mut errors);
    }
    build(docs, config, errors)
}

/// Validates and converts documents into a bundle; `errors` may already hold errors found
/// while parsing (they are reported with the others).
pub(crate) fn build(docs: Vec<Doc>, config: &Config, errors: Errors) -> Result<Bundle, LoadError> {
    build_with_inventory(docs, config, errors).map(|(b, _)| b)
}

/// What a pod's endpoint depends on beyond the pod itself, kept from a full build so that a
/// change of pods alone can redo just those pods ([`crate::incremental`]).
#[derive(Clone)]
pub(crate) struct Inventory {
    /// Service-account labels.
    pub service_accounts: ServiceAccountLabels,
    /// The validated PeerAuthentications.
    pub peer_auth: std::sync::Arc<Vec<istio_authn::PeerAuth>>,
    /// The index in the bundle's endpoints of each pod that has one.
    pub pod_index: std::collections::HashMap<ObjectRef, u32>,
    /// How many pods show a sidecar.
    pub sidecar_pods: usize,
    /// Whether the bundle holds a readable object besides pods: if not, deleting pods may
    /// leave it empty, which a full build refuses.
    pub more_than_pods: bool,
}

impl Inventory {
    /// One pod's endpoint, as a full build would make it (PeerAuthentication resolved), given
    /// whether the bundle shows sidecar injection.
    pub(crate) fn pod_endpoint(
        &self,
        obj: &object::Obj,
        bundle: &Bundle,
        shows_injection: bool,
        config: &Config,
    ) -> Result<Option<crate::model::Endpoint>, LoadError> {
        let Some(e) =
            inventory::pod_endpoint(obj, &bundle.namespaces, &self.service_accounts, shows_injection, config)?
        else {
            return Ok(None);
        };
        let mut one = [e];
        istio_authn::resolve(&mut one, &self.peer_auth, &config.istio_root_namespace);
        let [e] = one;
        Ok(Some(e))
    }
}

/// `doc` as a Pod object, if it is one that classifies without error.
pub(crate) fn pod_object(doc: &Doc, config: &Config) -> Option<object::Obj> {
    let mut errors = Errors::default();
    let mut objects = object::classify(vec![doc.clone()], &config.default_namespace, &mut errors);
    (errors.is_empty() && objects.pods.len() == 1 && objects.total == 1).then(|| objects.pods.pop()).flatten()
}

/// Whether a pod object shows an Istio sidecar (what makes a bundle show injection).
pub(crate) fn obj_shows_sidecar(obj: &object::Obj) -> bool {
    inventory::pod_sidecar(obj) == Some(true)
}

/// Whether a stored pod document shows an Istio sidecar.
pub(crate) fn pod_shows_sidecar(doc: &Doc, config: &Config) -> bool {
    pod_object(doc, config).is_some_and(|o| obj_shows_sidecar(&o))
}

/// As [`build`], also returning the [`Inventory`] an incremental pod change needs.
pub(crate) fn build_with_inventory(
    docs: Vec<Doc>,
    config: &Config,
    mut errors: Errors,
) -> Result<(Bundle, Inventory), LoadError> {
    let objects = object::classify(docs, &config.default_namespace, &mut errors);
    if errors.is_empty()
        && objects.policy_objects() == 0
        && objects.inventory_objects() == 0
        && objects.tiers.is_empty()
    {
        return Err(LoadError::new(
            LoadErrorKind::Empty,
            "the bundle holds no document of a kind Palisade reads (Calico policy, tiers, network sets, \
             Kubernetes or Istio policy, Pods, Namespaces, ServiceAccounts)",
        ));
    }
    object::check_duplicates(&objects, &mut errors);

    let namespaces = errors.keep(inventory::namespaces(&objects.namespaces)).unwrap_or_default();
    let service_accounts = errors.keep(inventory::service_accounts(&objects.service_accounts)).unwrap_or_default();
    let has_istio = objects.policies.iter().any(|o| o.id.group == "security.istio.io");
    let mut admin_tiers = Vec::new();
    for (kind, pair) in [
        ("ClusterNetworkPolicy", [admin::KUBE_ADMIN_TIER, admin::KUBE_BASELINE_TIER]),
        ("AdminNetworkPolicy", [admin::ANP_TIER, admin::BANP_TIER]),
        ("BaselineAdminNetworkPolicy", [admin::ANP_TIER, admin::BANP_TIER]),
    ] {
        if objects.policies.iter().any(|o| o.id.group == "policy.networking.k8s.io" && o.id.kind == kind) {
            for t in pair {
                if !admin_tiers.contains(&t) {
                    admin_tiers.push(t);
                }
            }
        }
    }
    let has_profiles = !objects.profiles.is_empty();
    let more_than_pods =
        objects.policy_objects() + objects.inventory_objects() + objects.tiers.len() > objects.pods.len();
    let tiers = errors.keep(calico::tiers(&objects.tiers, has_istio, &admin_tiers, has_profiles)).unwrap_or_default();
    let mut bundle = Bundle {
        tiers,
        namespaces,
        skipped_documents: objects.skipped.values().sum(),
        skipped_kinds: objects.skipped.clone(),
        objects: objects.total,
        ..Bundle::default()
    };
    bundle.services =
        objects.k8s_services.iter().filter_map(|o| errors.keep(services::service(o).map_err(|e| o.err(e)))).collect();
    for o in &objects.endpoint_slices {
        if let Some(Some((key, members))) = errors.keep(services::endpoint_slice(o).map_err(|e| o.err(e))) {
            bundle.service_members.entry(key).or_default().push(members);
        }
    }
    let mut policies = Vec::with_capacity(objects.policies.len());
    for obj in &objects.policies {
        let p = match obj.id.group.as_str() {
            "networking.k8s.io" => k8s::policy(obj, &bundle),
            "policy.networking.k8s.io" => admin::policy(obj, &bundle),
            _ if obj.id.kind == "StagedKubernetesNetworkPolicy" => k8s::policy(obj, &bundle),
            "security.istio.io" => istio::policy(obj, &bundle, config),
            _ => calico::policy(obj, &bundle, config),
        };
        if let Some(p) = errors.keep(p.map_err(|e| obj.err(e))) {
            policies.push(p);
        }
    }
    let mut profile_labels = BTreeMap::new();
    for obj in &objects.profiles {
        if let Some(labels) = errors.keep(calico::profile_labels(obj).map_err(|e| obj.err(e))) {
            profile_labels.insert(obj.id.name.clone(), labels);
        }
        if let Some(p) = errors.keep(calico::profile(obj, &bundle, config).map_err(|e| obj.err(e))) {
            policies.push(p);
        }
    }
    calico::sort_policies(&mut policies);
    bundle.policies = policies;
    let eps = errors.keep(inventory::endpoints(
        &objects.pods,
        &objects.workload_endpoints,
        &profile_labels,
        &bundle.namespaces,
        &service_accounts,
        config,
    ));
    let (pod_index, sidecar_pods) = match eps {
        Some(e) => {
            bundle.endpoints = e.endpoints;
            (e.pod_index, e.sidecar_pods)
        }
        None => Default::default(),
    };
    let peer_auth: Vec<_> = objects
        .peer_authentications
        .iter()
        .filter_map(|o| errors.keep(istio_authn::peer_authentication(o).map_err(|e| o.err(e))))
        .collect();
    istio_authn::resolve(&mut bundle.endpoints, &peer_auth, &config.istio_root_namespace);
    bundle.peer_authentications = objects.peer_authentications.len();
    for o in &objects.request_authentications {
        errors.keep(istio_authn::request_authentication(o).map_err(|e| o.err(e)));
    }
    bundle.request_authentications = objects.request_authentications.len();
    let sets = calico::network_sets(&objects.network_sets, &bundle.namespaces, &mut errors);
    bundle.network_sets = sets;
    let peer_auth = std::sync::Arc::new(peer_auth);
    let inventory = Inventory { service_accounts, peer_auth, pod_index, sidecar_pods, more_than_pods };
    errors.finish((bundle, inventory))
}

/// The identity under which the object store keeps a document: the loader's own
/// [`ObjectRef`] for a kind it reads (group folded, namespace defaulted), the raw metadata
/// for a kind it skips. An error when the document is invalid on its own.
pub(crate) fn object_key(doc: &Doc, config: &Config) -> Result<ObjectRef, LoadError> {
    let mut errors = Errors::default();
    let objects = object::classify(vec![doc.clone()], &config.default_namespace, &mut errors);
    errors.finish(())?;
    let read = objects
        .tiers
        .iter()
        .chain(&objects.policies)
        .chain(&objects.network_sets)
        .chain(&objects.pods)
        .chain(&objects.namespaces)
        .chain(&objects.service_accounts)
        .chain(&objects.peer_authentications)
        .chain(&objects.request_authentications)
        .chain(&objects.k8s_services)
        .chain(&objects.endpoint_slices)
        .chain(&objects.workload_endpoints)
        .chain(&objects.profiles)
        .next();
    if let Some(o) = read {
        return Ok(o.id.clone());
    }
    let v = &doc.value;
    let text = |x: Option<&Value>| x.and_then(Value::as_str).unwrap_or_default().to_string();
    let api = text(v.get("apiVersion"));
    let group = match api.rsplit_once('/') {
        Some(("crd.projectcalico.org", _)) => "projectcalico.org".to_string(),
        Some((g, _)) => g.to_string(),
        None => String::new(),
    };
    let meta = v.get("metadata");
    let namespace = Some(text(meta.and_then(|m| m.get("namespace")))).filter(|n| !n.is_empty());
    Ok(ObjectRef { group, kind: text(v.get("kind")), namespace, name: text(meta.and_then(|m| m.get("name"))) })
}

/// Namespace label maps with the derived name label, and which namespaces exist.
pub(crate) type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;
/// `(namespace, name)` to service-account labels.
pub(crate) type ServiceAccountLabels = BTreeMap<(String, String), BTreeMap<String, String>>;

#[cfg(test)]
mod tests;
