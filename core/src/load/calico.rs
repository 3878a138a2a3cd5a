//! Calico `Tier`, (Staged)(Global)NetworkPolicy and (Global)NetworkSet: typed specs,
//! API-server validation and defaulting, and the scoping rules folded into selectors.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::NamespaceLabels;
use super::fields::{
    self, NAMESPACE_LABEL, SERVICE_ACCOUNT_LABEL, check_name, cidrs, invalid, namespace_selector, ports, protocol,
    selector, typed,
};
use super::object::Obj;
use crate::config::Config;
use crate::error::{LoadError, LoadErrorKind};
use crate::model::{
    Bundle, CalicoRule, EntityMatch, HttpMatch, IcmpMatch, NetworkSet, PathMatch, Policy, PolicyKind, PortMatch, Rule,
    RuleAction, RuleMatch, ServiceMatch, StagedAction, Tier, TierDefault,
};
use crate::request::proto;
use crate::selector::Expr;

/// Built-in tier names and orders.
pub(crate) const DEFAULT_TIER: &str = "default";
pub(crate) const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;
pub(crate) const ISTIO_DENY_TIER: &str = "istio-deny";
pub(crate) const ISTIO_ALLOW_TIER: &str = "istio-allow";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTierSpec {
    #[serde(default)]
    order: Option<f64>,
    #[serde(default)]
    default_action: Option<String>,
}

fn tier_name_ok(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Reads declared tiers, adds `default`, and sorts them by (order, absent last, name).
///
/// `admin` names the pass-by-default tiers of cluster-scoped Kubernetes policy that the
/// bundle needs (name, order); a declared tier of one of these names must say the same.
pub(crate) fn tiers(
    objs: &[Obj],
    has_istio: bool,
    admin: &[(&str, f64)],
    has_profiles: bool,
) -> Result<Vec<Tier>, LoadError> {
    let mut out = Vec::new();
    let mut has_default = false;
    for obj in objs {
        let name = obj.id.name.clone();
        let wrap = |e: LoadError| obj.err(e);
        if !tier_name_ok(&name) {
            return Err(wrap(invalid(
                "metadata.name",
                format!("{name:?} is not a valid tier name ([a-z0-9-], at most 63 characters)"),
            )));
        }
        let spec: RawTierSpec = typed(obj.spec(), "spec").map_err(wrap)?;
        if let Some(o) = spec.order
            && !o.is_finite()
        {
            return Err(wrap(invalid("spec.order", "order must be a finite number")));
        }
        let default_action = match spec.default_action.as_deref() {
            None | Some("Deny") => TierDefault::Deny,
            Some("Pass") => TierDefault::Pass,
            Some(other) => {
                return Err(wrap(invalid("spec.defaultAction", format!("{other:?} is not Deny or Pass"))));
            }
        };
        let mut order = spec.order;
        match name.as_str() {
            DEFAULT_TIER => {
                has_default = true;
                if order.is_some_and(|o| o != DEFAULT_TIER_ORDER) {
                    return Err(wrap(invalid("spec.order", "the default tier's order is fixed at 1000000")));
                }
                if default_action != TierDefault::Deny {
                    return Err(wrap(invalid(
                        "spec.defaultAction",
                        "the default tier's defaultAction is fixed at Deny",
                    )));
                }
                order = Some(DEFAULT_TIER_ORDER);
            }
            ISTIO_DENY_TIER | ISTIO_ALLOW_TIER => {
                let (fixed, label) =
                    if name == ISTIO_DENY_TIER { (TierDefault::Pass, "Pass") } else { (TierDefault::Deny, "Deny") };
                if spec.default_action.is_some() && default_action != fixed {
                    return Err(wrap(invalid(
                        "spec.defaultAction",
                        format!("the {name} tier's defaultAction is fixed at {label}"),
                    )));
                }
                if order.is_none() {
                    order = Some(if name == ISTIO_DENY_TIER { 999_998.0 } else { 999_999.0 });
                }
                out.push(Tier { name, order, default_action: fixed });
                continue;
            }
            n if admin.iter().any(|(a, _)| *a == n) => {
                let fixed = admin.iter().find(|(a, _)| *a == n).map_or(0.0, |(_, o)| *o);
                if order != Some(fixed) || default_action != TierDefault::Pass {
                    return Err(wrap(invalid(
                        "spec",
                        format!(
                            "the {n} tier is fixed at order {fixed} with defaultAction Pass (as Calico creates it)"
                        ),
                    )));
                }
            }
            _ => {}
        }
        out.push(Tier { name, order, default_action });
    }
    for (name, order) in admin {
        if !out.iter().any(|t| t.name == *name) {
            out.push(Tier { name: (*name).into(), order: Some(*order), default_action: TierDefault::Pass });
        }
    }
    if has_profiles {
        out.push(Tier { name: PROFILE_TIER.into(), order: None, default_action: TierDefault::Deny });
    }
    if !has_default {
        out.push(Tier {
            name: DEFAULT_TIER.into(),
            order: Some(DEFAULT_TIER_ORDER),
            default_action: TierDefault::Deny,
        });
    }
    if has_istio {
        for (name, order, action) in
            [(ISTIO_DENY_TIER, 999_998.0, TierDefault::Pass), (ISTIO_ALLOW_TIER, 999_999.0, TierDefault::Deny)]
        {
            if !out.iter().any(|t| t.name == name) {
                out.push(Tier { name: name.into(), order: Some(order), default_action: action });
            }
        }
    }
    out.sort_by(tier_cmp);
    Ok(out)
}

/// Calico's tier order: order ascending (absent last), then name byte-wise.
pub(crate) fn tier_cmp(a: &Tier, b: &Tier) -> std::cmp::Ordering {
    // Calico's profiles come after every tier.
    (a.name == PROFILE_TIER)
        .cmp(&(b.name == PROFILE_TIER))
        .then_with(|| order_cmp(a.order, b.order))
        .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
}

/// The tier holding Calico Profiles' rules: after every other tier, denying what no profile
/// rule decided (as Calico does). Not a valid tier name, so no user tier can take it.
pub(crate) const PROFILE_TIER: &str = "__PROFILE__"; // as Calico names the profile in flow logs

/// The label that marks an endpoint as using a profile (`<prefix><profile name>: "true"`).
pub(crate) const PROFILE_LABEL_PREFIX: &str = "palisade.dev/profile.";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProfileSpec {
    #[serde(default)]
    ingress: Option<Vec<RawRule>>,
    #[serde(default)]
    egress: Option<Vec<RawRule>>,
    #[serde(default)]
    labels_to_apply: Option<BTreeMap<String, String>>,
}

/// A Profile's `labelsToApply` (given to every workload endpoint that lists the profile).
pub(crate) fn profile_labels(obj: &Obj) -> Result<BTreeMap<String, String>, LoadError> {
    let spec: RawProfileSpec = typed(obj.spec(), "spec")?;
    Ok(spec.labels_to_apply.unwrap_or_default())
}

/// A Profile's rules as a policy of the profile tier, selecting the endpoints that list it.
/// Profiles are walked after every tier passed (or none applied), as Calico walks them; a
/// profile with no rule on a side does not govern that side.
pub(crate) fn profile(obj: &Obj, bundle: &Bundle, config: &Config) -> Result<Policy, LoadError> {
    let spec: RawProfileSpec = typed(obj.spec(), "spec")?;
    let ctx = RuleCtx { namespace: None, config, bundle };
    let convert = |rules: &Option<Vec<RawRule>>, dir: &str, egress: bool| -> Result<Option<Vec<Rule>>, LoadError> {
        match rules.as_deref() {
            None | Some([]) => Ok(None),
            Some(rs) => rs
                .iter()
                .enumerate()
                .map(|(i, r)| rule(r, &format!("spec.{dir}[{i}]"), egress, &ctx))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    };
    let tier = bundle.tier_id(PROFILE_TIER).ok_or_else(|| invalid("spec", "the profile tier is missing"))?;
    Ok(Policy {
        kind: PolicyKind::Profile,
        name: obj.id.name.clone(),
        namespace: None,
        tier,
        order: None,
        selector: Expr::Eq(format!("{PROFILE_LABEL_PREFIX}{}", obj.id.name), "true".into()),
        ingress: convert(&spec.ingress, "ingress", false)?,
        egress: convert(&spec.egress, "egress", true)?,
        staged: None,
        origin: format!("{}#{}", obj.doc.file, obj.doc.index),
        host_only: false,
    })
}

/// Orders compare as numbers, as Calico compares float64 orders (`-0.0` equals `0`), with
/// `None` after every number. Orders are finite (checked when read).
pub(crate) fn order_cmp(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    let a = a.unwrap_or(f64::INFINITY);
    let b = b.unwrap_or(f64::INFINITY);
    a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPolicySpec {
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    order: Option<f64>,
    #[serde(default)]
    selector: Option<String>,
    #[serde(default)]
    namespace_selector: Option<String>,
    #[serde(default)]
    service_account_selector: Option<String>,
    #[serde(default)]
    types: Option<Vec<String>>,
    #[serde(default)]
    ingress: Option<Vec<RawRule>>,
    #[serde(default)]
    egress: Option<Vec<RawRule>>,
    #[serde(default)]
    do_not_track: Option<bool>,
    #[serde(default, rename = "preDNAT")]
    pre_dnat: Option<bool>,
    #[serde(default)]
    apply_on_forward: Option<bool>,
    #[serde(default)]
    performance_hints: Option<Vec<String>>,
    #[serde(default)]
    staged_action: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    protocol: Option<Value>,
    #[serde(default)]
    not_protocol: Option<Value>,
    #[serde(default)]
    icmp: Option<RawIcmp>,
    #[serde(default, rename = "notICMP")]
    not_icmp: Option<RawIcmp>,
    #[serde(default)]
    ip_version: Option<u8>,
    #[serde(default)]
    source: Option<RawEntity>,
    #[serde(default)]
    destination: Option<RawEntity>,
    #[serde(default)]
    http: Option<RawHttp>,
    /// Rule annotations: validated for shape, no semantic effect.
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<RawRuleMeta>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleMeta {
    #[serde(default)]
    #[allow(dead_code)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIcmp {
    #[serde(default, rename = "type")]
    icmp_type: Option<u64>,
    #[serde(default)]
    code: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEntity {
    #[serde(default)]
    nets: Option<Vec<String>>,
    #[serde(default)]
    not_nets: Option<Vec<String>>,
    #[serde(default)]
    selector: Option<String>,
    #[serde(default)]
    not_selector: Option<String>,
    #[serde(default)]
    namespace_selector: Option<String>,
    #[serde(default)]
    ports: Option<Vec<Value>>,
    #[serde(default)]
    not_ports: Option<Vec<Value>>,
    #[serde(default)]
    service_accounts: Option<RawServiceAccounts>,
    #[serde(default)]
    services: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceAccounts {
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    selector: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    paths: Option<Vec<RawPath>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    #[serde(default)]
    exact: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
}

/// Context for converting one policy's rules.
struct RuleCtx<'a> {
    /// The namespace of a namespaced policy.
    namespace: Option<&'a str>,
    config: &'a Config,
    /// For `services` matches: the bundle's EndpointSlice members.
    bundle: &'a Bundle,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceRef {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

/// Resolves a rule end's `services` as Calico's rule scanner does: the EndpointSlices of the
/// named Service; as the destination (egress rules) their (address, port, protocol) triples,
/// as the source (ingress rules) their addresses.
fn services(
    raw: &RawEntity,
    field: &str,
    destination: bool,
    egress: bool,
    ctx: &RuleCtx<'_>,
) -> Result<Option<ServiceMatch>, LoadError> {
    let Some(v) = &raw.services else { return Ok(None) };
    let f = format!("{field}.services");
    let r: RawServiceRef = typed(v, &f)?;
    if destination && !egress {
        return Err(invalid(&f, "destination services are only allowed in egress rules"));
    }
    if !destination && egress {
        return Err(invalid(&f, "source services are only allowed in ingress rules"));
    }
    let name =
        r.name.filter(|n| !n.is_empty()).ok_or_else(|| invalid(format!("{f}.name"), "a service name is required"))?;
    // Calico's API documents that an empty namespace means the policy's own, but Felix looks
    // the service up as `/<name>` and so matches nothing: Palisade decides as Felix does
    // (`lint` warns about it).
    let namespace = match (r.namespace.filter(|n| !n.is_empty()), ctx.namespace) {
        (Some(n), _) => n,
        (None, Some(_)) => String::new(),
        (None, None) => {
            return Err(invalid(format!("{f}.namespace"), "a GlobalNetworkPolicy must give the service's namespace"));
        }
    };
    let combined = [
        (raw.selector.is_some(), "selector"),
        (raw.not_selector.is_some(), "notSelector"),
        (raw.namespace_selector.is_some(), "namespaceSelector"),
        (raw.nets.is_some(), "nets"),
        (raw.not_nets.is_some(), "notNets"),
        (raw.service_accounts.is_some(), "serviceAccounts"),
    ];
    if let Some((_, other)) = combined.iter().find(|(set, _)| *set) {
        return Err(invalid(&f, format!("services cannot be combined with {other}")));
    }
    if destination && (raw.ports.is_some() || raw.not_ports.is_some()) {
        return Err(invalid(&f, "a destination with services cannot have ports or notPorts (the service gives them)"));
    }
    let members = ctx.bundle.service_members.get(&(namespace.clone(), name.clone())).cloned().unwrap_or_default();
    Ok(Some(ServiceMatch { service: format!("{namespace}/{name}"), members, with_ports: destination }))
}

fn and_all(parts: Vec<Expr>) -> Option<Expr> {
    let mut parts = parts;
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(Expr::And(parts)),
    }
}

/// Converts an entity rule into scoped criteria, as Calico's `getEndpointSelector` does.
fn entity(
    raw: &RawEntity,
    field: &str,
    destination: bool,
    egress: bool,
    ctx: &RuleCtx<'_>,
) -> Result<EntityMatch, LoadError> {
    let services = services(raw, field, destination, egress, ctx)?;
    let ns_sel =
        namespace_selector(raw.namespace_selector.as_deref(), &format!("{field}.namespaceSelector"), ctx.config)?;
    let sel = selector(raw.selector.as_deref(), &format!("{field}.selector"), ctx.config)?;
    let not_sel = selector(raw.not_selector.as_deref(), &format!("{field}.notSelector"), ctx.config)?;
    let sa = match &raw.service_accounts {
        None => None,
        Some(sa) => {
            let sa_field = format!("{field}.serviceAccounts.selector");
            let s = selector(sa.selector.as_deref(), &sa_field, ctx.config)?
                .map(|e| e.prefixed("pcsa.", Some(SERVICE_ACCOUNT_LABEL)));
            let names = sa.names.clone().unwrap_or_default();
            let n = (!names.is_empty()).then(|| Expr::In(SERVICE_ACCOUNT_LABEL.into(), names.into_iter().collect()));
            // Only workload endpoints carry a service account (SPEC 9.1, stricter than Calico: a
            // `!has(x)` or `all()` service-account selector never matches a network set). Every
            // endpoint carries the label; reserved labels keep it off everything else.
            let workload = Expr::Has(SERVICE_ACCOUNT_LABEL.into());
            and_all(std::iter::once(workload).chain(s).chain(n).collect())
        }
    };
    let scope = match (&ns_sel, ctx.namespace) {
        (Some(n), _) => Some(n.clone()),
        (None, Some(ns)) if sel.is_some() || sa.is_some() || not_sel.is_some() => {
            Some(Expr::Eq(NAMESPACE_LABEL.into(), ns.into()))
        }
        _ => None,
    };
    let positive = and_all(scope.into_iter().chain(sel).chain(sa).collect());
    Ok(EntityMatch {
        nets: cidrs(&raw.nets, &format!("{field}.nets"))?,
        not_nets: cidrs(&raw.not_nets, &format!("{field}.notNets"))?,
        selector: positive,
        not_selector: not_sel,
        ports: ports(&raw.ports, &format!("{field}.ports"))?,
        not_ports: ports(&raw.not_ports, &format!("{field}.notPorts"))?,
        services,
    })
}

fn icmp(raw: &Option<RawIcmp>, field: &str) -> Result<Option<IcmpMatch>, LoadError> {
    let Some(r) = raw else { return Ok(None) };
    let icmp_type = match r.icmp_type {
        Some(t @ 0..=254) => t as u8,
        Some(t) => {
            return Err(invalid(format!("{field}.type"), format!("ICMP type {t} is not in 0-254")));
        }
        None if r.code.is_some() => {
            return Err(invalid(format!("{field}.code"), "an ICMP code requires a type"));
        }
        None => return Ok(None),
    };
    let code = match r.code {
        Some(c @ 0..=255) => Some(c as u8),
        Some(c) => {
            return Err(invalid(format!("{field}.code"), format!("ICMP code {c} is not in 0-255")));
        }
        None => None,
    };
    Ok(Some(IcmpMatch { icmp_type, code }))
}

fn http(raw: &RawHttp, field: &str) -> Result<HttpMatch, LoadError> {
    let mut out = HttpMatch::default();
    for (i, m) in raw.methods.iter().flatten().enumerate() {
        if m.is_empty() {
            return Err(invalid(format!("{field}.methods[{i}]"), "an HTTP method must not be empty"));
        }
        if out.methods.contains(m) {
            return Err(invalid(format!("{field}.methods[{i}]"), format!("method {m:?} is repeated")));
        }
        out.methods.push(m.clone());
    }
    for (i, p) in raw.paths.iter().flatten().enumerate() {
        let f = format!("{field}.paths[{i}]");
        let (text, exact) = match (&p.exact, &p.prefix) {
            (Some(e), None) => (e, true),
            (None, Some(p)) => (p, false),
            _ => return Err(invalid(&f, "a path has exactly one of `exact` or `prefix`")),
        };
        if !text.starts_with('/') || text.contains(['?', '#', ' ']) {
            return Err(invalid(&f, format!("{text:?} must start with '/' and contain no '?', '#' or space")));
        }
        let norm = crate::http_path::normalise_calico(text).map_err(|m| invalid(&f, m))?;
        out.paths.push(if exact { PathMatch::Exact(norm) } else { PathMatch::Prefix(norm) });
    }
    Ok(out)
}

fn rule(raw: &RawRule, field: &str, egress: bool, ctx: &RuleCtx<'_>) -> Result<Rule, LoadError> {
    let action = match raw.action.as_deref() {
        Some("Allow") => RuleAction::Allow,
        Some("Deny") => RuleAction::Deny,
        Some("Pass") => RuleAction::Pass,
        Some("Log") => RuleAction::Log,
        Some(other) => {
            return Err(invalid(format!("{field}.action"), format!("{other:?} is not Allow, Deny, Pass or Log")));
        }
        None => return Err(invalid(format!("{field}.action"), "action is required")),
    };
    let protocol_num = protocol(&raw.protocol, &format!("{field}.protocol"))?;
    let not_protocol = protocol(&raw.not_protocol, &format!("{field}.notProtocol"))?;
    let icmp_m = icmp(&raw.icmp, &format!("{field}.icmp"))?;
    let not_icmp = icmp(&raw.not_icmp, &format!("{field}.notICMP"))?;
    let is_icmp = matches!(protocol_num, Some(proto::ICMP | proto::ICMPV6));
    if (raw.icmp.is_some() || raw.not_icmp.is_some()) && !is_icmp {
        return Err(invalid(format!("{field}.icmp"), "icmp and notICMP require protocol ICMP or ICMPv6"));
    }
    let source =
        entity(raw.source.as_ref().unwrap_or(&RawEntity::default()), &format!("{field}.source"), false, egress, ctx)?;
    let destination = entity(
        raw.destination.as_ref().unwrap_or(&RawEntity::default()),
        &format!("{field}.destination"),
        true,
        egress,
        ctx,
    )?;
    for (e, side) in [(&source, "source"), (&destination, "destination")] {
        let numeric = e.ports.iter().chain(&e.not_ports).any(|p| matches!(p, PortMatch::Range(..)));
        if numeric && !matches!(protocol_num, Some(proto::TCP | proto::UDP | proto::SCTP)) {
            return Err(invalid(format!("{field}.{side}.ports"), "numeric ports require protocol TCP, UDP or SCTP"));
        }
        for n in &e.not_nets {
            if n.prefix_len() == 0 {
                return Err(invalid(format!("{field}.{side}.notNets"), format!("{n} in notNets matches everything")));
            }
        }
    }
    // IP version: explicit, implied by ICMP/ICMPv6, and the family of every CIDR must agree.
    let mut version = match raw.ip_version {
        None => None,
        Some(v @ (4 | 6)) => Some(v),
        Some(v) => {
            return Err(invalid(format!("{field}.ipVersion"), format!("{v} is not 4 or 6")));
        }
    };
    let implied = match protocol_num {
        Some(proto::ICMP) => Some(4),
        Some(proto::ICMPV6) => Some(6),
        _ => None,
    };
    if let (Some(v), Some(i)) = (version, implied)
        && v != i
    {
        return Err(invalid(format!("{field}.ipVersion"), format!("ipVersion {v} contradicts the protocol")));
    }
    version = version.or(implied);
    let nets: Vec<&IpNet> =
        source.nets.iter().chain(&source.not_nets).chain(&destination.nets).chain(&destination.not_nets).collect();
    if nets.len() > ctx.config.max_cidrs_per_rule {
        return Err(LoadError::new(
            LoadErrorKind::Limit,
            format!(
                "{} CIDRs in one rule, the limit (max_cidrs_per_rule) is {}",
                nets.len(),
                ctx.config.max_cidrs_per_rule
            ),
        )
        .at_field(field.to_string()));
    }
    for n in &nets {
        let v = crate::net::net_version(n);
        match version {
            None => version = Some(v),
            Some(x) if x != v => {
                return Err(invalid(field, "a rule mixes IPv4 and IPv6 (CIDRs, ipVersion or ICMP version)"));
            }
            _ => {}
        }
    }
    let http_m = match &raw.http {
        None => None,
        Some(h) => {
            let f = format!("{field}.http");
            if action != RuleAction::Allow {
                return Err(invalid(&f, "http is only allowed on Allow rules"));
            }
            if egress {
                return Err(invalid(&f, "http is not allowed in egress rules"));
            }
            if protocol_num.is_some_and(|p| p != proto::TCP) {
                return Err(invalid(&f, "http requires protocol TCP (or no protocol)"));
            }
            Some(http(h, &f)?)
        }
    };
    Ok(Rule {
        action,
        matcher: RuleMatch::Calico(CalicoRule {
            protocol: protocol_num,
            not_protocol,
            icmp: icmp_m,
            not_icmp,
            ip_version: version,
            source,
            destination,
            http: http_m,
        }),
    })
}

fn kind_of(obj: &Obj) -> PolicyKind {
    match obj.id.kind.as_str() {
        "GlobalNetworkPolicy" => PolicyKind::GlobalNetworkPolicy,
        "StagedGlobalNetworkPolicy" => PolicyKind::StagedGlobalNetworkPolicy,
        "StagedNetworkPolicy" => PolicyKind::StagedNetworkPolicy,
        _ => PolicyKind::NetworkPolicy,
    }
}

pub(crate) fn policy(obj: &Obj, bundle: &Bundle, config: &Config) -> Result<Policy, LoadError> {
    let kind = kind_of(obj);
    let namespaced = matches!(kind, PolicyKind::NetworkPolicy | PolicyKind::StagedNetworkPolicy);
    check_name(&obj.id.name)?;
    let spec: RawPolicySpec = typed(obj.spec(), "spec")?;
    let global_only = |v: bool, name: &str| -> Result<(), LoadError> {
        if v && namespaced {
            return Err(LoadError::new(
                LoadErrorKind::Schema,
                format!("unknown field `{name}` for a namespaced policy"),
            )
            .at_field(format!("spec.{name}")));
        }
        Ok(())
    };
    global_only(spec.namespace_selector.is_some(), "namespaceSelector")?;
    global_only(spec.do_not_track.is_some(), "doNotTrack")?;
    global_only(spec.pre_dnat.is_some(), "preDNAT")?;
    global_only(spec.apply_on_forward.is_some(), "applyOnForward")?;
    // Host-endpoint policy (Calico's validation): never both; applyOnForward with either;
    // preDNAT has no egress. Such a policy applies to host endpoints only, which Palisade
    // never evaluates: it is read and validated and kept out of every workload's walk.
    let (dnt, pre) = (spec.do_not_track == Some(true), spec.pre_dnat == Some(true));
    if dnt && pre {
        return Err(invalid("spec.preDNAT", "preDNAT and doNotTrack cannot both be true"));
    }
    if (dnt || pre) && spec.apply_on_forward != Some(true) {
        return Err(invalid("spec.applyOnForward", "applyOnForward must be true when doNotTrack or preDNAT is"));
    }
    if pre
        && (spec.egress.as_ref().is_some_and(|e| !e.is_empty())
            || spec.types.as_ref().is_some_and(|t| t.iter().any(|t| t == "Egress")))
    {
        return Err(invalid("spec.preDNAT", "a preDNAT policy can have no egress rules and no Egress type"));
    }
    let host_only = dnt || pre;
    for (i, h) in spec.performance_hints.iter().flatten().enumerate() {
        if h != "AssumeNeededOnEveryNode" {
            return Err(invalid(format!("spec.performanceHints[{i}]"), format!("unknown hint {h:?}")));
        }
    }
    let staged = if kind.is_staged() {
        match spec.staged_action.as_deref() {
            None | Some("Set") => Some(StagedAction::Set),
            Some("Delete") => Some(StagedAction::Delete),
            Some(other) => {
                return Err(LoadError::new(
                    LoadErrorKind::Unsupported,
                    format!("stagedAction {other:?} is not supported (only Set and Delete)"),
                )
                .at_field("spec.stagedAction"));
            }
        }
    } else {
        if spec.staged_action.is_some() {
            return Err(LoadError::new(LoadErrorKind::Schema, "unknown field `stagedAction` for an enforced policy")
                .at_field("spec.stagedAction"));
        }
        None
    };
    let tier_name = spec.tier.as_deref().filter(|t| !t.is_empty()).unwrap_or(super::calico::DEFAULT_TIER);
    if tier_name == ISTIO_DENY_TIER || tier_name == ISTIO_ALLOW_TIER {
        return Err(invalid("spec.tier", format!("tier {tier_name} holds Istio policies only")));
    }
    let tier = bundle.tier_id(tier_name).ok_or_else(|| {
        LoadError::new(LoadErrorKind::UnknownTier, format!("tier {tier_name:?} is not declared in the bundle"))
            .at_field("spec.tier")
    })?;
    if let Some(o) = spec.order
        && !o.is_finite()
    {
        return Err(invalid("spec.order", "order must be a finite number"));
    }
    let namespace = namespaced.then(|| obj.namespace().to_string());
    let origin = format!("{}#{}", obj.doc.file, obj.doc.index);

    if staged == Some(StagedAction::Delete) {
        let otherwise_empty = spec.selector.is_none()
            && spec.namespace_selector.is_none()
            && spec.service_account_selector.is_none()
            && spec.types.is_none()
            && spec.ingress.is_none()
            && spec.egress.is_none()
            && spec.order.is_none();
        if !otherwise_empty {
            return Err(invalid("spec", "stagedAction: Delete must have an otherwise empty spec (only `tier`)"));
        }
        return Ok(Policy {
            kind,
            name: obj.id.name.clone(),
            namespace,
            tier,
            order: None,
            selector: Expr::Not(Box::new(Expr::All)),
            ingress: None,
            egress: None,
            staged,
            origin,
            host_only: false,
        });
    }

    // Endpoint selection, with namespace and service-account scoping folded in.
    let mut parts = Vec::new();
    if let Some(s) = selector(spec.selector.as_deref(), "spec.selector", config)? {
        parts.push(s);
    }
    if let Some(ns) = &namespace {
        parts.push(Expr::Eq(NAMESPACE_LABEL.into(), ns.clone()));
    }
    if let Some(s) = selector(spec.namespace_selector.as_deref(), "spec.namespaceSelector", config)? {
        parts.push(s.prefixed("pcns.", Some(NAMESPACE_LABEL)));
    }
    if let Some(s) = selector(spec.service_account_selector.as_deref(), "spec.serviceAccountSelector", config)? {
        parts.push(s.prefixed("pcsa.", Some(SERVICE_ACCOUNT_LABEL)));
    }
    let sel = and_all(parts).unwrap_or(Expr::All);

    // Types, defaulted as Calico's API server does.
    let has_in = spec.ingress.as_ref().is_some_and(|r| !r.is_empty());
    let has_eg = spec.egress.as_ref().is_some_and(|r| !r.is_empty());
    let (gov_in, gov_eg) = match &spec.types {
        None => (!has_eg || has_in, has_eg),
        Some(t) if t.is_empty() => (!has_eg || has_in, has_eg),
        Some(t) => {
            if t.len() > 2 {
                return Err(invalid("spec.types", "at most two types"));
            }
            let mut i = false;
            let mut e = false;
            for (k, ty) in t.iter().enumerate() {
                let slot = match ty.as_str() {
                    "Ingress" => &mut i,
                    "Egress" => &mut e,
                    other => {
                        return Err(invalid(format!("spec.types[{k}]"), format!("{other:?} is not Ingress or Egress")));
                    }
                };
                if *slot {
                    return Err(invalid(format!("spec.types[{k}]"), format!("{ty} is repeated")));
                }
                *slot = true;
            }
            (i, e)
        }
    };
    let ctx = RuleCtx { namespace: namespace.as_deref(), config, bundle };
    let convert = |rules: &Option<Vec<RawRule>>, dir: &str, egress: bool| -> Result<Vec<Rule>, LoadError> {
        let rules = rules.as_deref().unwrap_or_default();
        if rules.len() > config.max_rules_per_policy {
            return Err(LoadError::new(
                LoadErrorKind::Limit,
                format!("{} rules, the limit (max_rules_per_policy) is {}", rules.len(), config.max_rules_per_policy),
            )
            .at_field(format!("spec.{dir}")));
        }
        rules.iter().enumerate().map(|(i, r)| rule(r, &format!("spec.{dir}[{i}]"), egress, &ctx)).collect()
    };
    // Rules are validated even for a direction the policy does not govern.
    let ingress = convert(&spec.ingress, "ingress", false)?;
    let egress = convert(&spec.egress, "egress", true)?;
    Ok(Policy {
        kind,
        name: obj.id.name.clone(),
        namespace,
        tier,
        order: spec.order,
        selector: if host_only { Expr::Not(Box::new(Expr::All)) } else { sel },
        ingress: gov_in.then_some(ingress),
        egress: gov_eg.then_some(egress),
        staged,
        origin,
        host_only,
    })
}

/// Sorts policies into evaluation order: tier, then order (absent last), then Calico's
/// `<name>/<namespace>/<kind>` tie-break.
pub(crate) fn sort_policies(policies: &mut [Policy]) {
    policies.sort_by(|a, b| {
        a.tier
            .cmp(&b.tier)
            .then_with(|| order_cmp(a.order, b.order))
            .then_with(|| a.tie_break_key().as_bytes().cmp(b.tie_break_key().as_bytes()))
    });
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetworkSetSpec {
    #[serde(default)]
    nets: Option<Vec<String>>,
}

/// Whether a label key is one Calico reserves for workload identity (SPEC 9.1): a network
/// set or host endpoint carrying it could pose as another namespace, service account or pod.
/// Deliberately wider than upstream's validator, which refuses only
/// `projectcalico.org/namespace`, and only on network sets.
pub(crate) fn reserved_label(key: &str) -> bool {
    key.starts_with("pcns.")
        || key.starts_with("pcsa.")
        || matches!(
            key,
            "projectcalico.org/namespace"
                | "projectcalico.org/serviceaccount"
                | "projectcalico.org/orchestrator"
                | "projectcalico.org/name"
        )
}

/// Refuses reserved label keys on an object that is not a workload.
pub(crate) fn check_reserved_labels(obj: &Obj) -> Result<(), LoadError> {
    for k in obj.labels.keys() {
        if reserved_label(k) {
            return Err(obj.err(invalid(
                format!("metadata.labels.{k}"),
                format!(
                    "label {k:?} is reserved for workload identity (a namespace, service account or \
                     orchestrator); a {} cannot carry it",
                    obj.id.kind
                ),
            )));
        }
    }
    Ok(())
}

/// Reads (Global)NetworkSets with their labels (a namespaced set also carries its
/// namespace's `pcns.*` labels and its namespace label, written over its own, as Calico does).
pub(crate) fn network_sets(objs: &[Obj], namespaces: &NamespaceLabels, errors: &mut super::Errors) -> Vec<NetworkSet> {
    let mut out = Vec::new();
    for obj in objs {
        if let Some(set) = errors.keep(network_set(obj, namespaces)) {
            out.push(set);
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawHostEndpointSpec {
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    interface_name: Option<String>,
    #[serde(default, rename = "expectedIPs")]
    expected_ips: Option<Vec<String>>,
    #[serde(default)]
    profiles: Option<Vec<String>>,
    #[serde(default)]
    ports: Option<Vec<RawEndpointPort>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpointPort {
    name: String,
    #[serde(default)]
    protocol: Option<Value>,
    port: u16,
}

/// A HostEndpoint: its `expectedIPs` and its own labels form an IP set that rule selectors
/// match, as a global network set's would (an interface-only host endpoint contributes no
/// IP). Palisade decides no host traffic, so a host endpoint is never an evaluated side.
fn host_endpoint(obj: &Obj) -> Result<NetworkSet, LoadError> {
    let spec: RawHostEndpointSpec = typed(obj.spec(), "spec")?;
    if spec.node.as_deref().is_none_or(str::is_empty) {
        return Err(invalid("spec.node", "node is required"));
    }
    if spec.interface_name.as_deref().is_none_or(str::is_empty) && spec.expected_ips.as_ref().is_none_or(Vec::is_empty)
    {
        return Err(invalid("spec", "a host endpoint needs interfaceName or expectedIPs"));
    }
    let mut nets = Vec::new();
    for (i, t) in spec.expected_ips.iter().flatten().enumerate() {
        let ip = crate::net::parse_ip(t)
            .filter(|_| !t.contains('/'))
            .ok_or_else(|| invalid(format!("spec.expectedIPs[{i}]"), format!("{t:?} is not an IP address")))?;
        nets.push(ipnet::IpNet::from(ip));
    }
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        if !fields::valid_port_name(&p.name) || p.port == 0 {
            return Err(invalid(format!("spec.ports[{i}]"), "a host endpoint port needs a name and a port in 1-65535"));
        }
        protocol(&p.protocol, &format!("spec.ports[{i}].protocol"))?;
    }
    let _ = &spec.profiles;
    Ok(NetworkSet { namespace: None, name: obj.id.name.clone(), nets, labels: obj.labels.clone() })
}

fn network_set(obj: &Obj, namespaces: &NamespaceLabels) -> Result<NetworkSet, LoadError> {
    let wrap = |e: LoadError| obj.err(e);
    check_reserved_labels(obj)?;
    if obj.id.kind == "HostEndpoint" {
        return host_endpoint(obj).map_err(wrap);
    }
    let spec: RawNetworkSetSpec = typed(obj.spec(), "spec").map_err(wrap)?;
    let nets = fields::cidrs(&spec.nets, "spec.nets").map_err(wrap)?;
    let namespace = (obj.id.kind == "NetworkSet").then(|| obj.namespace().to_string());
    let mut labels = obj.labels.clone();
    if let Some(ns) = &namespace {
        super::inventory::inherit_namespace(&mut labels, ns, namespaces);
        labels.insert(NAMESPACE_LABEL.to_string(), ns.clone());
    }
    Ok(NetworkSet { namespace, name: obj.id.name.clone(), nets, labels })
}
