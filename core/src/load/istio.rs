//! Istio `AuthorizationPolicy` (`security.istio.io/v1`, `v1beta1`): selection by namespace,
//! root namespace and `matchLabels`; DENY and AUDIT policies go to the `istio-deny` tier (as
//! Deny and Log rules), ALLOW policies to `istio-allow` (as Pass rules: "this layer allows,
//! go on"). CUSTOM is rejected; unknown and `experimental.*` `when` keys are load errors.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::calico::{ISTIO_ALLOW_TIER, ISTIO_DENY_TIER};
use super::fields::{NAMESPACE_LABEL, check_name, invalid, typed};
use super::object::Obj;
use crate::config::Config;
use crate::error::{LoadError, LoadErrorKind};
use crate::model::{
    Bundle, CondValues, IstioCondition, IstioOperation, IstioPath, IstioRule, IstioSource, Policy, PolicyKind, Rule,
    RuleAction, RuleMatch, StrMatch, TemplateSegment, WhenKey,
};
use crate::selector::Expr;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    selector: Option<RawWorkloadSelector>,
    #[serde(default)]
    target_ref: Option<Value>,
    #[serde(default)]
    target_refs: Option<Vec<Value>>,
    #[serde(default)]
    rules: Option<Vec<RawRule>>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    provider: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWorkloadSelector {
    #[serde(default)]
    match_labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    from: Option<Vec<RawFrom>>,
    #[serde(default)]
    to: Option<Vec<RawTo>>,
    #[serde(default)]
    when: Option<Vec<RawCondition>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFrom {
    #[serde(default)]
    source: Option<RawSource>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTo {
    #[serde(default)]
    operation: Option<RawOperation>,
}

type Strs = Option<Vec<String>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSource {
    #[serde(default)]
    principals: Strs,
    #[serde(default)]
    not_principals: Strs,
    #[serde(default)]
    request_principals: Strs,
    #[serde(default)]
    not_request_principals: Strs,
    #[serde(default)]
    namespaces: Strs,
    #[serde(default)]
    not_namespaces: Strs,
    #[serde(default)]
    service_accounts: Strs,
    #[serde(default)]
    not_service_accounts: Strs,
    #[serde(default)]
    ip_blocks: Strs,
    #[serde(default)]
    not_ip_blocks: Strs,
    #[serde(default)]
    remote_ip_blocks: Strs,
    #[serde(default)]
    not_remote_ip_blocks: Strs,
    #[serde(default)]
    trust_domains: Strs,
    #[serde(default)]
    not_trust_domains: Strs,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawOperation {
    #[serde(default)]
    hosts: Strs,
    #[serde(default)]
    not_hosts: Strs,
    #[serde(default)]
    ports: Strs,
    #[serde(default)]
    not_ports: Strs,
    #[serde(default)]
    methods: Strs,
    #[serde(default)]
    not_methods: Strs,
    #[serde(default)]
    paths: Strs,
    #[serde(default)]
    not_paths: Strs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCondition {
    key: String,
    #[serde(default)]
    values: Strs,
    #[serde(default)]
    not_values: Strs,
}

fn strs(v: &Strs) -> Vec<StrMatch> {
    v.iter().flatten().map(|s| StrMatch::parse(s)).collect()
}

fn nets(v: &Strs, field: &str) -> Result<Vec<IpNet>, LoadError> {
    super::fields::cidrs(v, field)
}

fn ports(v: &Strs, field: &str) -> Result<Vec<u16>, LoadError> {
    v.iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| {
            p.parse::<u16>().map_err(|_| invalid(format!("{field}[{i}]"), format!("{p:?} is not a port in 0-65535")))
        })
        .collect()
}

/// `ns/sa`, or `sa` in the policy's namespace; no wildcards.
fn service_accounts(v: &Strs, field: &str, ns: &str) -> Result<Vec<(String, String)>, LoadError> {
    let list = v.as_deref().unwrap_or_default();
    if list.len() > 16 {
        return Err(invalid(field, "at most 16 service accounts"));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            if s.contains('*') || s.is_empty() {
                return Err(invalid(format!("{field}[{i}]"), format!("{s:?}: service accounts take no wildcards")));
            }
            Ok(match s.split_once('/') {
                Some((n, a)) if !n.is_empty() && !a.is_empty() && !a.contains('/') => (n.to_string(), a.to_string()),
                Some(_) => return Err(invalid(format!("{field}[{i}]"), format!("{s:?} is not <namespace>/<name>"))),
                None => (ns.to_string(), s.clone()),
            })
        })
        .collect()
}

fn path_pattern(p: &str, field: &str) -> Result<IstioPath, LoadError> {
    if !p.contains('{') {
        return Ok(IstioPath::Str(StrMatch::parse(p)));
    }
    if !p.starts_with('/') {
        return Err(invalid(field, format!("{p:?}: a path template must start with '/'")));
    }
    let mut segs = Vec::new();
    for seg in p.get(1..).unwrap_or_default().split('/') {
        segs.push(match seg {
            "{*}" => TemplateSegment::One,
            "{**}" => TemplateSegment::Many,
            s if s.contains(['{', '}', '*']) => {
                return Err(invalid(field, format!("{p:?}: {{*}} and {{**}} must be whole segments")));
            }
            s => TemplateSegment::Literal(s.to_string()),
        });
    }
    if let Some(i) = segs.iter().position(|s| *s == TemplateSegment::Many)
        && segs.iter().skip(i + 1).any(|s| *s == TemplateSegment::Many)
    {
        return Err(invalid(field, format!("{p:?}: at most one {{**}}")));
    }
    Ok(IstioPath::Template(segs))
}

fn paths(v: &Strs, field: &str) -> Result<Vec<IstioPath>, LoadError> {
    v.iter().flatten().enumerate().map(|(i, p)| path_pattern(p, &format!("{field}[{i}]"))).collect()
}

/// The trust-domain bundle: the local trust domain, then its aliases (Istio's
/// `trustDomainAliases`).
pub(crate) struct Domains<'a>(Vec<&'a str>);

impl<'a> Domains<'a> {
    pub(crate) fn of(config: &'a Config) -> Self {
        Domains(
            std::iter::once(config.trust_domain.as_str())
                .chain(config.trust_domain_aliases.iter().map(String::as_str))
                .collect(),
        )
    }

    /// A principal value `<td>/ns/<ns>/sa/<sa>` whose trust domain is in the bundle (or is
    /// the literal `cluster.local`, which Istio always reads as the local domain) stands for
    /// the same identity in every domain of the bundle; other values stay as written
    /// (prefix and suffix patterns, `*`, other domains).
    fn principals(&self, v: &Strs) -> Vec<StrMatch> {
        let mut out = Vec::new();
        for p in v.iter().flatten() {
            let parts: Vec<&str> = p.split('/').collect();
            match parts.as_slice() {
                [td, "ns", ns, "sa", sa] if !p.contains('*') && (self.0.contains(td) || *td == "cluster.local") => {
                    for d in &self.0 {
                        let m = StrMatch::parse(&format!("{d}/ns/{ns}/sa/{sa}"));
                        if !out.contains(&m) {
                            out.push(m);
                        }
                    }
                }
                _ => out.push(StrMatch::parse(p)),
            }
        }
        out
    }

    /// A trust-domain value in the bundle stands for every domain of the bundle.
    fn trust_domains(&self, v: &Strs) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in v.iter().flatten() {
            let expanded: Vec<String> = if self.0.contains(&t.as_str()) {
                self.0.iter().map(|d| d.to_string()).collect()
            } else {
                vec![t.clone()]
            };
            for d in expanded {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }
}

fn source(raw: &RawSource, field: &str, ns: &str, domains: &Domains<'_>) -> Result<IstioSource, LoadError> {
    let has = |v: &Strs| v.as_ref().is_some_and(|v| !v.is_empty());
    if (has(&raw.service_accounts) || has(&raw.not_service_accounts))
        && (has(&raw.principals) || has(&raw.not_principals) || has(&raw.namespaces) || has(&raw.not_namespaces))
    {
        return Err(invalid(field, "serviceAccounts cannot be combined with principals or namespaces"));
    }
    Ok(IstioSource {
        principals: domains.principals(&raw.principals),
        not_principals: domains.principals(&raw.not_principals),
        request_principals: strs(&raw.request_principals),
        not_request_principals: strs(&raw.not_request_principals),
        namespaces: raw.namespaces.clone().unwrap_or_default(),
        not_namespaces: raw.not_namespaces.clone().unwrap_or_default(),
        service_accounts: service_accounts(&raw.service_accounts, &format!("{field}.serviceAccounts"), ns)?,
        not_service_accounts: service_accounts(&raw.not_service_accounts, &format!("{field}.notServiceAccounts"), ns)?,
        ip_blocks: nets(&raw.ip_blocks, &format!("{field}.ipBlocks"))?,
        not_ip_blocks: nets(&raw.not_ip_blocks, &format!("{field}.notIpBlocks"))?,
        remote_ip_blocks: nets(&raw.remote_ip_blocks, &format!("{field}.remoteIpBlocks"))?,
        not_remote_ip_blocks: nets(&raw.not_remote_ip_blocks, &format!("{field}.notRemoteIpBlocks"))?,
        trust_domains: domains.trust_domains(&raw.trust_domains),
        not_trust_domains: domains.trust_domains(&raw.not_trust_domains),
    })
}

fn operation(raw: &RawOperation, field: &str) -> Result<IstioOperation, LoadError> {
    Ok(IstioOperation {
        hosts: strs(&raw.hosts).iter().map(StrMatch::lowercased).collect(),
        not_hosts: strs(&raw.not_hosts).iter().map(StrMatch::lowercased).collect(),
        ports: ports(&raw.ports, &format!("{field}.ports"))?,
        not_ports: ports(&raw.not_ports, &format!("{field}.notPorts"))?,
        methods: strs(&raw.methods),
        not_methods: strs(&raw.not_methods),
        paths: paths(&raw.paths, &format!("{field}.paths"))?,
        not_paths: paths(&raw.not_paths, &format!("{field}.notPaths"))?,
    })
}

/// Parses `[a][b]...` into its parts.
fn brackets(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        let part = inner.get(..end)?;
        if part.is_empty() {
            return None;
        }
        out.push(part.to_string());
        rest = inner.get(end + 1..)?;
    }
    (!out.is_empty()).then_some(out)
}

fn when_key(key: &str, field: &str) -> Result<WhenKey, LoadError> {
    let unknown = || {
        LoadError::new(
            LoadErrorKind::Invalid,
            format!(
                "unknown condition key {key:?} (upstream skips the whole rule, which can drop a DENY; Palisade rejects it)"
            ),
        )
        .at_field(field.to_string())
    };
    Ok(match key {
        "source.ip" => WhenKey::SourceIp,
        "remote.ip" => WhenKey::RemoteIp,
        "source.namespace" => WhenKey::SourceNamespace,
        "source.serviceAccount" => WhenKey::SourceServiceAccount,
        "source.trustDomain" => WhenKey::SourceTrustDomain,
        "source.principal" => WhenKey::SourcePrincipal,
        "request.auth.principal" => WhenKey::AuthPrincipal,
        "request.auth.audiences" => WhenKey::AuthAudiences,
        "request.auth.presenter" => WhenKey::AuthPresenter,
        "destination.ip" => WhenKey::DestinationIp,
        "destination.port" => WhenKey::DestinationPort,
        "connection.sni" => WhenKey::Sni,
        k if k.starts_with("experimental.") => {
            return Err(LoadError::new(
                LoadErrorKind::Unsupported,
                format!("condition key {k:?}: experimental keys are not supported"),
            )
            .at_field(field.to_string()));
        }
        k => {
            if let Some(rest) = k.strip_prefix("request.headers") {
                match brackets(rest).as_deref() {
                    Some([name]) => WhenKey::Header(name.to_ascii_lowercase()),
                    _ => return Err(unknown()),
                }
            } else if let Some(rest) = k.strip_prefix("request.auth.claims") {
                WhenKey::AuthClaim(brackets(rest).ok_or_else(unknown)?)
            } else {
                return Err(unknown());
            }
        }
    })
}

fn cond_values(key: &WhenKey, v: &Strs, field: &str, ns: &str, domains: &Domains<'_>) -> Result<CondValues, LoadError> {
    Ok(match key {
        WhenKey::SourceIp | WhenKey::RemoteIp | WhenKey::DestinationIp => CondValues::Nets(nets(v, field)?),
        WhenKey::DestinationPort => CondValues::Ports(ports(v, field)?),
        WhenKey::SourceNamespace => CondValues::Namespaces(v.clone().unwrap_or_default()),
        WhenKey::SourceServiceAccount => CondValues::ServiceAccounts(service_accounts(v, field, ns)?),
        WhenKey::SourceTrustDomain => CondValues::TrustDomains(domains.trust_domains(v)),
        WhenKey::SourcePrincipal => CondValues::Str(domains.principals(v)),
        _ => CondValues::Str(strs(v)),
    })
}

fn rule(raw: &RawRule, field: &str, ns: &str, domains: &Domains<'_>) -> Result<IstioRule, LoadError> {
    let mut out = IstioRule::default();
    for (i, f) in raw.from.iter().flatten().enumerate() {
        let src = f.source.as_ref().ok_or_else(|| invalid(format!("{field}.from[{i}]"), "`source` is required"))?;
        out.from.push(source(src, &format!("{field}.from[{i}].source"), ns, domains)?);
    }
    for (i, t) in raw.to.iter().flatten().enumerate() {
        let op = t.operation.as_ref().ok_or_else(|| invalid(format!("{field}.to[{i}]"), "`operation` is required"))?;
        out.to.push(operation(op, &format!("{field}.to[{i}].operation"))?);
    }
    for (i, c) in raw.when.iter().flatten().enumerate() {
        let f = format!("{field}.when[{i}]");
        let key = when_key(&c.key, &format!("{f}.key"))?;
        if c.values.as_ref().is_none_or(Vec::is_empty) && c.not_values.as_ref().is_none_or(Vec::is_empty) {
            return Err(invalid(&f, "a condition needs values or notValues"));
        }
        let values = cond_values(&key, &c.values, &format!("{f}.values"), ns, domains)?;
        let not_values = cond_values(&key, &c.not_values, &format!("{f}.notValues"), ns, domains)?;
        out.when.push(IstioCondition { key, values, not_values });
    }
    Ok(out)
}

/// The `istio.io/dry-run` annotation, read as Go's `strconv.ParseBool` reads it (as Istio does).
pub(crate) fn dry_run(obj: &Obj) -> Result<bool, LoadError> {
    let field = "metadata.annotations.istio.io/dry-run";
    let v = obj.doc.value.get("metadata").and_then(|m| m.get("annotations")).and_then(|a| a.get("istio.io/dry-run"));
    match v {
        None => Ok(false),
        Some(serde_json::Value::String(s)) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            other => Err(invalid(field, format!("{other:?} is not a boolean (\"true\" or \"false\")"))),
        },
        Some(other) => Err(invalid(field, format!("{other} is not a string (annotations are strings)"))),
    }
}

/// Converts an AuthorizationPolicy into a policy of the `istio-deny` or `istio-allow` tier.
/// A dry-run policy (`istio.io/dry-run: "true"`) is staged: it never decides and does not
/// count as an ALLOW policy selecting the workload; it shows in the staged verdict.
pub(crate) fn policy(obj: &Obj, bundle: &Bundle, config: &Config) -> Result<Policy, LoadError> {
    check_name(&obj.id.name)?;
    let spec: RawSpec = typed(obj.spec(), "spec")?;
    let ns = obj.namespace().to_string();
    let (action, tier_name) = match spec.action.as_deref() {
        None | Some("ALLOW") => (RuleAction::Pass, ISTIO_ALLOW_TIER),
        Some("DENY") => (RuleAction::Deny, ISTIO_DENY_TIER),
        Some("AUDIT") => (RuleAction::Log, ISTIO_DENY_TIER),
        Some("CUSTOM") => {
            return Err(LoadError::new(
                LoadErrorKind::Unsupported,
                "action CUSTOM delegates to an external authorizer Palisade cannot call; the bundle is rejected",
            )
            .at_field("spec.action"));
        }
        Some(other) => return Err(invalid("spec.action", format!("{other:?} is not ALLOW, DENY, AUDIT or CUSTOM"))),
    };
    if spec.provider.is_some() {
        return Err(invalid("spec.provider", "provider is only for CUSTOM policies"));
    }
    let dry = dry_run(obj)?;
    if dry && action == RuleAction::Log {
        return Err(invalid(
            "metadata.annotations.istio.io/dry-run",
            "dry-run is only for ALLOW and DENY policies (as Istio validates it)",
        ));
    }
    let targeted = spec.target_ref.is_some() || spec.target_refs.as_ref().is_some_and(|t| !t.is_empty());
    if targeted && spec.selector.is_some() {
        return Err(invalid("spec", "at most one of selector, targetRef and targetRefs"));
    }
    let raw_rules = spec.rules.as_deref().unwrap_or_default();
    // Istio has no cap of its own; the same configurable limit as every policy kind.
    if raw_rules.len() > config.max_rules_per_policy {
        return Err(LoadError::new(
            LoadErrorKind::Limit,
            format!("{} rules, the limit (max_rules_per_policy) is {}", raw_rules.len(), config.max_rules_per_policy),
        )
        .at_field("spec.rules"));
    }
    let mut rules = Vec::with_capacity(raw_rules.len());
    let domains = Domains::of(config);
    for (i, r) in raw_rules.iter().enumerate() {
        let matcher = RuleMatch::Istio(Box::new(rule(r, &format!("spec.rules[{i}]"), &ns, &domains)?));
        rules.push(Rule { action, matcher });
    }
    // Selection: the policy's namespace (every namespace for the root namespace), then
    // matchLabels. A policy with targetRef(s) is for gateways and waypoints: no sidecar.
    let selector = if targeted {
        Expr::Not(Box::new(Expr::All))
    } else {
        // Only workloads that run a sidecar enforce Istio policy.
        let mut parts = vec![Expr::Eq(super::inventory::ISTIO_SIDECAR_LABEL.into(), "true".into())];
        if ns != config.istio_root_namespace {
            parts.push(Expr::Eq(NAMESPACE_LABEL.into(), ns.clone()));
        }
        for (i, (k, v)) in spec.selector.iter().flat_map(|s| s.match_labels.iter().flatten()).enumerate() {
            if k.contains('*') || v.contains('*') {
                return Err(invalid(format!("spec.selector.matchLabels[{i}]"), "labels take no wildcards"));
            }
            parts.push(Expr::Eq(k.clone(), v.clone()));
        }
        match parts.len() {
            0 => Expr::All,
            1 => parts.pop().unwrap_or(Expr::All),
            _ => Expr::And(parts),
        }
    };
    let tier = bundle.tier_id(tier_name).ok_or_else(|| invalid("spec", format!("tier {tier_name} is missing")))?;
    Ok(Policy {
        kind: PolicyKind::AuthorizationPolicy,
        name: obj.id.name.clone(),
        namespace: Some(ns),
        tier,
        order: None,
        selector,
        ingress: Some(rules),
        egress: None,
        staged: dry.then_some(crate::model::StagedAction::Set),
        origin: format!("{}#{}", obj.doc.file, obj.doc.index),
        host_only: false,
    })
}
