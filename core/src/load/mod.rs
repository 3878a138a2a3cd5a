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

mod calico;
mod fields;
mod inventory;
mod istio;
mod k8s;
mod object;

#[cfg(feature = "fs")]
mod fs;

use std::collections::BTreeMap;

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
pub(crate) struct Doc {
    pub file: String,
    pub index: usize,
    /// `items[i]` inside a `List`, when the object came from one.
    pub item: Option<usize>,
    pub value: Value,
}

impl Doc {
    pub(crate) fn err(&self, e: LoadError) -> LoadError {
        let e = match self.item {
            Some(i) => {
                let field = match &e.field {
                    Some(f) => format!("items[{i}].{f}"),
                    None => format!("items[{i}]"),
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

/// Parses sources into documents, unwrapping `kind: List`.
fn documents(sources: &[Source<'_>], config: &Config) -> Result<Vec<Doc>, LoadError> {
    let total: usize = sources.iter().map(|s| s.text.len()).sum();
    if total > config.max_bundle_bytes {
        return Err(LoadError::new(
            LoadErrorKind::Limit,
            format!("bundle is {total} bytes, the limit (max_bundle_bytes) is {}", config.max_bundle_bytes),
        ));
    }
    let mut out = Vec::new();
    for src in sources {
        let values: Vec<Value> = serde_saphyr::from_multiple_with_options(src.text, yaml_options(config))
            .map_err(|e| LoadError::new(LoadErrorKind::Syntax, e.to_string()).in_source(src.name, None))?;
        for (index, value) in values.into_iter().enumerate() {
            if value.is_null() {
                continue;
            }
            let is_list = value.get("kind").and_then(Value::as_str) == Some("List")
                || (value.get("kind").is_none() && value.get("items").is_some_and(Value::is_array));
            if is_list {
                let items = match value {
                    Value::Object(mut m) => m.remove("items"),
                    _ => None,
                };
                match items {
                    Some(Value::Array(items)) => {
                        for (i, item) in items.into_iter().enumerate() {
                            out.push(Doc { file: src.name.to_string(), index, item: Some(i), value: item });
                        }
                    }
                    Some(Value::Null) | None => {}
                    Some(_) => {
                        return Err(LoadError::new(LoadErrorKind::Schema, "`items` of a List must be a sequence")
                            .at_field("items")
                            .in_source(src.name, Some(index)));
                    }
                }
            } else {
                out.push(Doc { file: src.name.to_string(), index, item: None, value });
            }
            if out.len() > config.max_documents {
                return Err(LoadError::new(
                    LoadErrorKind::Limit,
                    format!("more than {} documents (max_documents)", config.max_documents),
                )
                .in_source(src.name, Some(index)));
            }
        }
    }
    Ok(out)
}

/// Loads a bundle from sources, all-or-nothing.
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
    let docs = documents(sources, config)?;
    let objects = object::classify(docs)?;
    if objects.policy_objects() == 0 && objects.inventory_objects() == 0 && objects.tiers.is_empty() {
        return Err(LoadError::new(
            LoadErrorKind::Empty,
            "the bundle holds no document of a kind Palisade reads (Calico policy, tiers, network sets, \
             Kubernetes or Istio policy, Pods, Namespaces, ServiceAccounts)",
        ));
    }
    object::check_duplicates(&objects)?;

    let namespaces = inventory::namespaces(&objects.namespaces)?;
    let service_accounts = inventory::service_accounts(&objects.service_accounts)?;
    let has_istio = objects.policies.iter().any(|o| o.id.group == "security.istio.io");
    let tiers = calico::tiers(&objects.tiers, has_istio)?;
    let mut bundle =
        Bundle { tiers, namespaces, skipped_documents: objects.skipped, objects: objects.total, ..Bundle::default() };
    let mut policies = Vec::with_capacity(objects.policies.len());
    for obj in &objects.policies {
        let p = match obj.id.group.as_str() {
            "networking.k8s.io" => k8s::policy(obj, &bundle),
            "security.istio.io" => istio::policy(obj, &bundle, config),
            _ => calico::policy(obj, &bundle, config),
        };
        policies.push(p.map_err(|e| obj.err(e))?);
    }
    calico::sort_policies(&mut policies);
    bundle.policies = policies;
    bundle.endpoints = inventory::endpoints(&objects.pods, &bundle.namespaces, &service_accounts, config)?;
    bundle.network_sets = calico::network_sets(&objects.network_sets, &bundle.namespaces)?;
    Ok(bundle)
}

/// Namespace label maps with the derived name label, and which namespaces exist.
pub(crate) type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;
/// `(namespace, name)` to service-account labels.
pub(crate) type ServiceAccountLabels = BTreeMap<(String, String), BTreeMap<String, String>>;

#[cfg(test)]
mod tests;
