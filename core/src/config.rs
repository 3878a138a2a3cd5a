//! Engine configuration: identity options, the profile default, and resource limits.

use serde::Deserialize;

use crate::error::ConfigError;
use crate::model::Action;
use crate::selector::ParseLimits;

/// How the engine decides, and how much input it accepts.
///
/// Built with [`Config::default`] and adjusted field by field, or read from YAML with
/// [`Config::from_yaml`] (unknown keys, wrong types and unknown values are errors).
///
/// ```
/// let cfg = palisade::Config::from_yaml("trust_domain: prod.example\nno_policy_action: deny\n").unwrap();
/// assert_eq!(cfg.trust_domain, "prod.example");
/// assert!(palisade::Config::from_yaml("trust_domian: x\n").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The SPIFFE trust domain of this cluster (default `cluster.local`).
    pub trust_domain: String,
    /// Other trust domains that name the same identities as `trust_domain` (Istio's
    /// `trustDomainAliases`, for a trust-domain migration; default empty). A principal in an
    /// alias domain binds to its workload as one in `trust_domain` does, and Istio principal
    /// values in any of these domains match all of them.
    pub trust_domain_aliases: Vec<String>,
    /// Deny requests from a known workload that present no principal, when the ingress
    /// side is evaluated (default false). A mesh-wide `STRICT` that no `PeerAuthentication`
    /// relaxes.
    pub require_peer_identity: bool,
    /// The verdict when every tier passed or none applied (Calico's namespace profile
    /// allows; default `allow`).
    pub no_policy_action: Action,
    /// Istio's root namespace, whose AuthorizationPolicies apply mesh-wide (default `istio-system`).
    pub istio_root_namespace: String,
    /// The namespace of a namespaced object that names none (default `default`), as
    /// `kubectl apply -n <ns>` would place manifests written without one.
    pub default_namespace: String,
    /// Largest bundle, in bytes of source text (default 64 MiB).
    pub max_bundle_bytes: usize,
    /// Most documents (objects, counting `List` items) in a bundle (default 1,000,000).
    pub max_documents: usize,
    /// Deepest selector nesting (default 64).
    pub max_selector_depth: usize,
    /// Longest selector, in bytes (default 16 KiB).
    pub max_selector_len: usize,
    /// Most rules per policy and direction (default 1024, Calico's own limit).
    pub max_rules_per_policy: usize,
    /// Most CIDRs in one rule, counting `nets` and `notNets` of both entities (default 10,000).
    pub max_cidrs_per_rule: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            trust_domain: "cluster.local".into(),
            trust_domain_aliases: Vec::new(),
            require_peer_identity: false,
            no_policy_action: Action::Allow,
            istio_root_namespace: "istio-system".into(),
            default_namespace: "default".into(),
            max_bundle_bytes: 64 * 1024 * 1024,
            max_documents: 1_000_000,
            max_selector_depth: 64,
            max_selector_len: 16 * 1024,
            max_rules_per_policy: 1024,
            max_cidrs_per_rule: 10_000,
        }
    }
}

impl Config {
    /// Reads a configuration from YAML (or JSON) text. Omitted keys keep their defaults.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let mut options = serde_saphyr::Options::default();
        options.strict_booleans = true;
        options.with_snippet = false;
        let value: serde_json::Value = serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| ConfigError { field: "-".into(), message: e.to_string() })?;
        Config::from_value(&value)
    }

    /// Reads a configuration from an already parsed value (what a binding gets from its
    /// host: a dict, an object), with the same strict checks as [`Config::from_yaml`].
    /// `null` is the default configuration.
    pub fn from_value(value: &serde_json::Value) -> Result<Config, ConfigError> {
        if value.is_null() {
            return Ok(Config::default());
        }
        let cfg: Config = crate::strict::from_value(value)
            .map_err(|(path, message)| ConfigError { field: if path == "." { "-".into() } else { path }, message })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that are well-typed but unusable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let domain_ok = |td: &str| {
            !td.is_empty() && td.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        let td = &self.trust_domain;
        if !domain_ok(td) {
            return Err(ConfigError {
                field: "trust_domain".into(),
                message: format!("{td:?} is not a SPIFFE trust domain (lower-case letters, digits, '.', '_', '-')"),
            });
        }
        for (i, a) in self.trust_domain_aliases.iter().enumerate() {
            let field = format!("trust_domain_aliases[{i}]");
            if !domain_ok(a) {
                return Err(ConfigError {
                    field,
                    message: format!("{a:?} is not a SPIFFE trust domain (lower-case letters, digits, '.', '_', '-')"),
                });
            }
            if a == td || self.trust_domain_aliases[..i].contains(a) {
                return Err(ConfigError { field, message: format!("{a:?} is given twice") });
            }
        }
        let dns_label = |n: &str| {
            !n.is_empty()
                && n.len() <= 63
                && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !n.starts_with('-')
                && !n.ends_with('-')
        };
        if !dns_label(&self.default_namespace) {
            return Err(ConfigError {
                field: "default_namespace".into(),
                message: format!("{:?} is not a namespace name (a DNS label)", self.default_namespace),
            });
        }
        if self.istio_root_namespace.is_empty() {
            return Err(ConfigError { field: "istio_root_namespace".into(), message: "must not be empty".into() });
        }
        for (name, v) in [
            ("max_bundle_bytes", self.max_bundle_bytes),
            ("max_documents", self.max_documents),
            ("max_selector_depth", self.max_selector_depth),
            ("max_selector_len", self.max_selector_len),
            ("max_rules_per_policy", self.max_rules_per_policy),
            ("max_cidrs_per_rule", self.max_cidrs_per_rule),
        ] {
            if v == 0 {
                return Err(ConfigError { field: name.into(), message: "must be at least 1".into() });
            }
        }
        Ok(())
    }

    /// Whether `td` is this cluster's trust domain or one of its aliases.
    pub fn is_local_trust_domain(&self, td: &str) -> bool {
        self.trust_domain == td || self.trust_domain_aliases.iter().any(|a| a == td)
    }

    pub(crate) fn selector_limits(&self) -> ParseLimits {
        ParseLimits { max_len: self.max_selector_len, max_depth: self.max_selector_depth }
    }
}
