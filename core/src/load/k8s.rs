//! Kubernetes `NetworkPolicy` (`networking.k8s.io/v1`), mapped as Calico maps it: after the
//! API server's defaulting, a namespaced policy in tier `default` at order 1000 (kind
//! `knp`), one Allow rule per peer x port protocol.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::fields::{NAMESPACE_LABEL, check_name, invalid, typed};
use super::object::Obj;
use crate::error::{LoadError, LoadErrorKind};
use crate::model::{
    Bundle, CalicoRule, EntityMatch, Policy, PolicyKind, PortMatch, Rule, RuleAction, RuleMatch, StagedAction,
};
use crate::request::proto;
use crate::selector::Expr;

/// The order Calico gives every Kubernetes policy.
pub(crate) const K8S_POLICY_ORDER: f64 = 1000.0;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    pod_selector: Option<RawLabelSelector>,
    #[serde(default)]
    policy_types: Option<Vec<String>>,
    #[serde(default)]
    ingress: Option<Vec<RawRule>>,
    #[serde(default)]
    egress: Option<Vec<RawRule>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawLabelSelector {
    #[serde(default)]
    match_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    match_expressions: Option<Vec<RawRequirement>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    ports: Option<Vec<RawPort>>,
    #[serde(default)]
    from: Option<Vec<RawPeer>>,
    #[serde(default)]
    to: Option<Vec<RawPeer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPort {
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    port: Option<Value>,
    #[serde(default)]
    end_port: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPeer {
    #[serde(default)]
    pod_selector: Option<RawLabelSelector>,
    #[serde(default)]
    namespace_selector: Option<RawLabelSelector>,
    #[serde(default)]
    ip_block: Option<RawIpBlock>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIpBlock {
    cidr: String,
    #[serde(default)]
    except: Option<Vec<String>>,
}

/// A Kubernetes label selector as selector terms (ANDed; empty means everything).
pub(crate) fn label_selector(sel: &RawLabelSelector, field: &str) -> Result<Vec<Expr>, LoadError> {
    let mut out = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        out.push(Expr::Eq(k.clone(), v.clone()));
    }
    for (i, r) in sel.match_expressions.iter().flatten().enumerate() {
        let f = format!("{field}.matchExpressions[{i}]");
        let values = r.values.clone().unwrap_or_default();
        let e = match r.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(invalid(format!("{f}.values"), format!("operator {} needs values", r.operator)));
            }
            "In" => Expr::In(r.key.clone(), values.into_iter().collect()),
            "NotIn" => Expr::NotIn(r.key.clone(), values.into_iter().collect()),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(invalid(format!("{f}.values"), format!("operator {} takes no values", r.operator)));
            }
            "Exists" => Expr::Has(r.key.clone()),
            "DoesNotExist" => Expr::Not(Box::new(Expr::Has(r.key.clone()))),
            other => {
                return Err(invalid(
                    format!("{f}.operator"),
                    format!("{other:?} is not In, NotIn, Exists or DoesNotExist"),
                ));
            }
        };
        out.push(e);
    }
    Ok(out)
}

fn and_all(mut parts: Vec<Expr>) -> Expr {
    match parts.len() {
        0 => Expr::All,
        1 => parts.pop().unwrap_or(Expr::All),
        _ => Expr::And(parts),
    }
}

fn orchestrator() -> Expr {
    Expr::Eq("projectcalico.org/orchestrator".into(), "k8s".into())
}

fn peer(p: &RawPeer, field: &str, ns: &str) -> Result<EntityMatch, LoadError> {
    if let Some(b) = &p.ip_block {
        if p.pod_selector.is_some() || p.namespace_selector.is_some() {
            return Err(invalid(field, "ipBlock cannot be combined with podSelector or namespaceSelector"));
        }
        let cidr = crate::net::parse_cidr(&b.cidr).map_err(|m| invalid(format!("{field}.ipBlock.cidr"), m))?;
        let mut except = Vec::new();
        for (i, e) in b.except.iter().flatten().enumerate() {
            let f = format!("{field}.ipBlock.except[{i}]");
            let n = crate::net::parse_cidr(e).map_err(|m| invalid(&f, m))?;
            // As the API server: an except must be a strict subset of its cidr.
            if !cidr.contains(&n) || n.prefix_len() <= cidr.prefix_len() {
                return Err(invalid(&f, format!("{n} is not strictly inside {cidr}")));
            }
            except.push(n);
        }
        return Ok(EntityMatch { nets: vec![cidr], not_nets: except, ..EntityMatch::default() });
    }
    if p.pod_selector.is_none() && p.namespace_selector.is_none() {
        // `from: [{}]`: the API server refuses it ("must specify a peer").
        return Err(invalid(field, "a peer must specify podSelector, namespaceSelector or ipBlock"));
    }
    let mut pod_terms = vec![orchestrator()];
    if let Some(ps) = &p.pod_selector {
        pod_terms.extend(label_selector(ps, &format!("{field}.podSelector"))?);
    }
    let scope = match &p.namespace_selector {
        Some(nsel) => and_all(label_selector(nsel, &format!("{field}.namespaceSelector"))?)
            .prefixed("pcns.", Some(NAMESPACE_LABEL)),
        None => Expr::Eq(NAMESPACE_LABEL.into(), ns.into()),
    };
    let mut parts = vec![scope];
    parts.extend(pod_terms);
    Ok(EntityMatch { selector: Some(Expr::And(parts)), ..EntityMatch::default() })
}

/// Ports grouped by protocol, in order of first appearance: `(protocol, ports)`.
fn port_groups(ports: &[RawPort], field: &str) -> Result<Vec<(u8, Vec<PortMatch>)>, LoadError> {
    let mut groups: Vec<(u8, bool, Vec<PortMatch>)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let protocol = match p.protocol.as_deref() {
            None | Some("TCP") => proto::TCP,
            Some("UDP") => proto::UDP,
            Some("SCTP") => proto::SCTP,
            Some(other) => return Err(invalid(format!("{f}.protocol"), format!("{other:?} is not TCP, UDP or SCTP"))),
        };
        let m = match &p.port {
            None | Some(Value::Null) => {
                if p.end_port.is_some() {
                    return Err(invalid(format!("{f}.endPort"), "endPort requires a numeric port"));
                }
                None
            }
            Some(Value::Number(n)) => {
                let lo = n
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| invalid(format!("{f}.port"), format!("{n} is not a port in 1-65535")))?;
                let hi = match p.end_port {
                    None => lo,
                    Some(e) => u16::try_from(e)
                        .ok()
                        .filter(|&e| e >= lo)
                        .ok_or_else(|| invalid(format!("{f}.endPort"), format!("{e} is not a port in {lo}-65535")))?,
                };
                Some(PortMatch::Range(lo, hi))
            }
            Some(Value::String(s)) => {
                if p.end_port.is_some() {
                    return Err(invalid(format!("{f}.endPort"), "endPort requires a numeric port"));
                }
                let ok = !s.is_empty()
                    && s.len() <= 15
                    && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    return Err(invalid(format!("{f}.port"), format!("{s:?} is not a port name")));
                }
                Some(PortMatch::Named(s.clone()))
            }
            Some(other) => return Err(invalid(format!("{f}.port"), format!("{other} is not a port"))),
        };
        let idx = match groups.iter().position(|(p, _, _)| *p == protocol) {
            Some(i) => i,
            None => {
                groups.push((protocol, false, Vec::new()));
                groups.len() - 1
            }
        };
        if let Some(g) = groups.get_mut(idx) {
            match m {
                // A protocol with no port: every port of that protocol.
                None => g.1 = true,
                Some(m) => g.2.push(m),
            }
        }
    }
    Ok(groups.into_iter().map(|(p, all, ports)| (p, if all { Vec::new() } else { ports })).collect())
}

fn rules(raw: &[RawRule], dir: &str, egress: bool, ns: &str) -> Result<Vec<Rule>, LoadError> {
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let field = format!("spec.{dir}[{i}]");
        let peers = if egress { &r.to } else { &r.from };
        if (if egress { &r.from } else { &r.to }).is_some() {
            let wrong = if egress { "from" } else { "to" };
            return Err(LoadError::new(LoadErrorKind::Schema, format!("unknown field `{wrong}` in a {dir} rule"))
                .at_field(format!("{field}.{wrong}")));
        }
        let groups = port_groups(r.ports.as_deref().unwrap_or_default(), &format!("{field}.ports"))?;
        let peer_list: Vec<EntityMatch> = match peers.as_deref() {
            None | Some([]) => vec![EntityMatch::default()],
            Some(ps) => ps
                .iter()
                .enumerate()
                .map(|(j, p)| peer(p, &format!("{field}.{}[{j}]", if egress { "to" } else { "from" }), ns))
                .collect::<Result<_, _>>()?,
        };
        let protocols: Vec<(Option<u8>, Vec<PortMatch>)> = if groups.is_empty() {
            vec![(None, Vec::new())]
        } else {
            groups.into_iter().map(|(p, ports)| (Some(p), ports)).collect()
        };
        for entity in &peer_list {
            for (protocol, ports) in &protocols {
                let dst_ports = EntityMatch { ports: ports.clone(), ..EntityMatch::default() };
                let (source, destination) = if egress {
                    (EntityMatch::default(), EntityMatch { ports: ports.clone(), ..entity.clone() })
                } else {
                    (entity.clone(), dst_ports)
                };
                let version = entity.nets.first().map(crate::net::net_version);
                out.push(Rule {
                    action: RuleAction::Allow,
                    matcher: RuleMatch::Calico(CalicoRule {
                        protocol: *protocol,
                        ip_version: version,
                        source,
                        destination,
                        ..CalicoRule::default()
                    }),
                });
            }
        }
    }
    Ok(out)
}

/// Converts a Kubernetes NetworkPolicy.
/// Converts a Kubernetes NetworkPolicy, or a Calico `StagedKubernetesNetworkPolicy` (the
/// same spec plus `stagedAction`; kind `sknp`).
pub(crate) fn policy(obj: &Obj, bundle: &Bundle) -> Result<Policy, LoadError> {
    check_name(&obj.id.name)?;
    let staged_kind = obj.id.kind == "StagedKubernetesNetworkPolicy";
    let mut raw = obj.spec().clone();
    let mut staged = None;
    if staged_kind {
        let action = match &mut raw {
            serde_json::Value::Object(m) => m.remove("stagedAction"),
            _ => None,
        };
        staged = Some(match action.as_ref().map(|a| a.as_str()) {
            None | Some(Some("Set")) => StagedAction::Set,
            Some(Some("Delete")) => StagedAction::Delete,
            Some(other) => {
                return Err(invalid("spec.stagedAction", format!("{other:?} is not Set or Delete")));
            }
        });
        if staged == Some(StagedAction::Delete) {
            if raw.as_object().is_some_and(|m| !m.is_empty()) {
                return Err(invalid("spec", "stagedAction: Delete must have an otherwise empty spec"));
            }
            return Ok(Policy {
                kind: PolicyKind::StagedKubernetesNetworkPolicy,
                name: obj.id.name.clone(),
                namespace: Some(obj.namespace().to_string()),
                tier: bundle.tier_id(super::calico::DEFAULT_TIER).unwrap_or(0),
                order: Some(K8S_POLICY_ORDER),
                selector: Expr::Not(Box::new(Expr::All)),
                ingress: None,
                egress: None,
                staged,
                origin: format!("{}#{}", obj.doc.file, obj.doc.index),
                host_only: false,
            });
        }
    }
    let spec: RawSpec = typed(&raw, "spec")?;
    let ns = obj.namespace().to_string();
    let mut sel = vec![Expr::Eq(NAMESPACE_LABEL.into(), ns.clone()), orchestrator()];
    if let Some(ps) = &spec.pod_selector {
        sel.extend(label_selector(ps, "spec.podSelector")?);
    }
    // The API server's defaulting: empty policyTypes is [Ingress], plus Egress when there
    // are egress rules.
    let has_egress = spec.egress.as_ref().is_some_and(|e| !e.is_empty());
    let (gov_in, gov_eg) = match spec.policy_types.as_deref() {
        None | Some([]) => (true, has_egress),
        Some(types) => {
            let mut i = false;
            let mut e = false;
            for (k, t) in types.iter().enumerate() {
                match t.as_str() {
                    "Ingress" if !i => i = true,
                    "Egress" if !e => e = true,
                    other => {
                        return Err(invalid(
                            format!("spec.policyTypes[{k}]"),
                            format!("{other:?} is not Ingress or Egress, or is repeated"),
                        ));
                    }
                }
            }
            (i, e)
        }
    };
    let ingress = rules(spec.ingress.as_deref().unwrap_or_default(), "ingress", false, &ns)?;
    let egress = rules(spec.egress.as_deref().unwrap_or_default(), "egress", true, &ns)?;
    let tier = bundle.tier_id(super::calico::DEFAULT_TIER).unwrap_or(0);
    Ok(Policy {
        kind: if staged_kind { PolicyKind::StagedKubernetesNetworkPolicy } else { PolicyKind::KubernetesNetworkPolicy },
        name: obj.id.name.clone(),
        namespace: Some(ns),
        tier,
        order: Some(K8S_POLICY_ORDER),
        selector: Expr::And(sel),
        ingress: gov_in.then_some(ingress),
        egress: gov_eg.then_some(egress),
        staged,
        origin: format!("{}#{}", obj.doc.file, obj.doc.index),
        host_only: false,
    })
}
