//! Cluster-scoped Kubernetes network policy, as Calico maps it (SPEC 9.2):
//! `policy.networking.k8s.io/v1alpha2` `ClusterNetworkPolicy` into the tiers `kube-admin`
//! (order 1,000) and `kube-baseline` (order 10,000,000) by its `tier`, with its `priority` as
//! order; and the older `v1alpha1` `AdminNetworkPolicy` / `BaselineAdminNetworkPolicy`, which
//! Calico read until late 2025 into the tiers `adminnetworkpolicy` and
//! `baselineadminnetworkpolicy`. Every one of these tiers passes by default.
//!
//! The conversion follows Calico's (`libcalico-go/lib/backend/k8s/conversion`): a subject
//! `namespaces` selects pods (`projectcalico.org/orchestrator == 'k8s'`) of the selected
//! namespaces, `pods` adds the pod selector; a peer `namespaces` is a namespace selector
//! only, `pods` adds the orchestrator term and the pod selector, `networks` are CIDRs; one rule
//! per protocol and per peer. What Calico does not implement (`nodes` and `domainNames` peers,
//! `namedPort` in the v1alpha1 API) is a load error, where Calico would have replaced the rule
//! by a deny-all (Deny, Pass) or dropped it (Allow): refusing is the only answer that neither
//! widens nor silently narrows access.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::fields::{NAMESPACE_LABEL, check_name, invalid, typed};
use super::k8s::{RawLabelSelector, label_selector};
use super::object::Obj;
use crate::error::LoadError;
use crate::model::{Bundle, CalicoRule, EntityMatch, Policy, PolicyKind, PortMatch, Rule, RuleAction, RuleMatch};
use crate::request::proto;
use crate::selector::Expr;

/// The tiers of `ClusterNetworkPolicy` (current Calico).
pub(crate) const KUBE_ADMIN_TIER: (&str, f64) = ("kube-admin", 1_000.0);
/// See [`KUBE_ADMIN_TIER`].
pub(crate) const KUBE_BASELINE_TIER: (&str, f64) = ("kube-baseline", 10_000_000.0);
/// The tiers of the older `AdminNetworkPolicy` / `BaselineAdminNetworkPolicy`.
pub(crate) const ANP_TIER: (&str, f64) = ("adminnetworkpolicy", 1_000.0);
/// See [`ANP_TIER`].
pub(crate) const BANP_TIER: (&str, f64) = ("baselineadminnetworkpolicy", 10_000_000.0);

/// Which API a document is written in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    /// v1alpha2 ClusterNetworkPolicy.
    Cnp,
    /// v1alpha1 AdminNetworkPolicy.
    Anp,
    /// v1alpha1 BaselineAdminNetworkPolicy.
    Banp,
}

impl Api {
    fn of(obj: &Obj) -> Api {
        match obj.id.kind.as_str() {
            "AdminNetworkPolicy" => Api::Anp,
            "BaselineAdminNetworkPolicy" => Api::Banp,
            _ => Api::Cnp,
        }
    }

    /// Most rules per direction, peers per rule and ports per rule (the API's limits).
    fn limit(self) -> usize {
        if self == Api::Cnp { 25 } else { 100 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    subject: Option<RawSubject>,
    #[serde(default)]
    ingress: Option<Vec<RawRule>>,
    #[serde(default)]
    egress: Option<Vec<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSubject {
    #[serde(default)]
    namespaces: Option<RawLabelSelector>,
    #[serde(default)]
    pods: Option<RawPods>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPods {
    #[serde(default)]
    namespace_selector: Option<RawLabelSelector>,
    #[serde(default)]
    pod_selector: Option<RawLabelSelector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    from: Option<Vec<RawPeer>>,
    #[serde(default)]
    to: Option<Vec<RawPeer>>,
    /// v1alpha2.
    #[serde(default)]
    protocols: Option<Vec<RawProtocol>>,
    /// v1alpha1.
    #[serde(default)]
    ports: Option<Vec<RawAnpPort>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPeer {
    #[serde(default)]
    namespaces: Option<RawLabelSelector>,
    #[serde(default)]
    pods: Option<RawPods>,
    #[serde(default)]
    networks: Option<Vec<String>>,
    #[serde(default)]
    nodes: Option<Value>,
    #[serde(default)]
    domain_names: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProtocol {
    #[serde(default)]
    tcp: Option<RawProtoPort>,
    #[serde(default)]
    udp: Option<RawProtoPort>,
    #[serde(default)]
    sctp: Option<RawProtoPort>,
    #[serde(default)]
    destination_named_port: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProtoPort {
    #[serde(default)]
    destination_port: Option<RawPortSel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPortSel {
    #[serde(default)]
    number: Option<u16>,
    #[serde(default)]
    range: Option<RawRange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    start: u16,
    end: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAnpPort {
    #[serde(default)]
    port_number: Option<RawPortNumber>,
    #[serde(default)]
    named_port: Option<String>,
    #[serde(default)]
    port_range: Option<RawPortRange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPortNumber {
    #[serde(default)]
    protocol: Option<String>,
    port: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPortRange {
    #[serde(default)]
    protocol: Option<String>,
    start: u16,
    end: u16,
}

fn orchestrator() -> Expr {
    Expr::Eq("projectcalico.org/orchestrator".into(), "k8s".into())
}

fn and_all(mut parts: Vec<Expr>) -> Expr {
    match parts.len() {
        0 => Expr::All,
        1 => parts.pop().unwrap_or(Expr::All),
        _ => Expr::And(parts),
    }
}

/// A namespace selector over the namespaces' labels (`pcns.*`): `{}` is every namespace.
fn namespaces(sel: &RawLabelSelector, field: &str) -> Result<Expr, LoadError> {
    Ok(and_all(label_selector(sel, field)?).prefixed("pcns.", Some(NAMESPACE_LABEL)))
}

/// Pods of the selected namespaces matching the pod selector.
fn pods(p: &RawPods, field: &str) -> Result<Expr, LoadError> {
    let ns = match &p.namespace_selector {
        Some(n) => namespaces(n, &format!("{field}.namespaceSelector"))?,
        None => return Err(invalid(format!("{field}.namespaceSelector"), "namespaceSelector is required")),
    };
    let Some(ps) = &p.pod_selector else {
        return Err(invalid(format!("{field}.podSelector"), "podSelector is required"));
    };
    let mut parts = vec![ns, orchestrator()];
    parts.extend(label_selector(ps, &format!("{field}.podSelector"))?);
    Ok(Expr::And(parts))
}

fn protocol_of(p: &Option<String>, field: &str) -> Result<u8, LoadError> {
    match p.as_deref() {
        None | Some("TCP") => Ok(proto::TCP),
        Some("UDP") => Ok(proto::UDP),
        Some("SCTP") => Ok(proto::SCTP),
        Some(other) => Err(invalid(field, format!("{other:?} is not TCP, UDP or SCTP"))),
    }
}

/// A protocol key and its ports: `None` ports means every port of the protocol; a `None`
/// protocol carries named ports (of any protocol).
type PortGroups = BTreeMap<Option<u8>, Option<Vec<PortMatch>>>;

fn add(groups: &mut PortGroups, key: Option<u8>, port: Option<PortMatch>) {
    let slot = groups.entry(key).or_insert_with(|| Some(Vec::new()));
    match (slot.as_mut(), port) {
        (Some(list), Some(p)) => {
            if !list.contains(&p) {
                list.push(p);
            }
        }
        (_, None) => *slot = None,
        (None, Some(_)) => {}
    }
}

fn port_groups(r: &RawRule, api: Api, field: &str) -> Result<PortGroups, LoadError> {
    let mut groups = PortGroups::new();
    match api {
        Api::Cnp => {
            if r.ports.is_some() {
                return Err(invalid(
                    format!("{field}.ports"),
                    "ClusterNetworkPolicy rules use `protocols`, not `ports`",
                ));
            }
            let list = r.protocols.as_deref().unwrap_or_default();
            if r.protocols.is_some() && (list.is_empty() || list.len() > api.limit()) {
                return Err(invalid(format!("{field}.protocols"), "1 to 25 protocols"));
            }
            for (i, p) in list.iter().enumerate() {
                let f = format!("{field}.protocols[{i}]");
                let set = [p.tcp.is_some(), p.udp.is_some(), p.sctp.is_some(), p.destination_named_port.is_some()];
                if set.iter().filter(|s| **s).count() != 1 {
                    return Err(invalid(&f, "exactly one of tcp, udp, sctp and destinationNamedPort"));
                }
                if let Some(n) = &p.destination_named_port {
                    if !super::fields::valid_port_name(n) {
                        return Err(invalid(format!("{f}.destinationNamedPort"), format!("{n:?} is not a port name")));
                    }
                    add(&mut groups, None, Some(PortMatch::Named(n.clone())));
                    continue;
                }
                let (key, pp, name) = match (&p.tcp, &p.udp, &p.sctp) {
                    (Some(t), _, _) => (proto::TCP, t, "tcp"),
                    (_, Some(u), _) => (proto::UDP, u, "udp"),
                    (_, _, Some(s)) => (proto::SCTP, s, "sctp"),
                    _ => continue,
                };
                let f = format!("{f}.{name}.destinationPort");
                let port = match &pp.destination_port {
                    None => None,
                    Some(RawPortSel { number: Some(n), range: None }) if *n >= 1 => Some(PortMatch::Range(*n, *n)),
                    Some(RawPortSel { number: None, range: Some(rg) }) if rg.start >= 1 && rg.start < rg.end => {
                        Some(PortMatch::Range(rg.start, rg.end))
                    }
                    Some(_) => {
                        return Err(invalid(&f, "exactly one of number (1-65535) and range (start < end, from 1)"));
                    }
                };
                add(&mut groups, Some(key), port);
            }
        }
        Api::Anp | Api::Banp => {
            if r.protocols.is_some() {
                return Err(invalid(format!("{field}.protocols"), "v1alpha1 rules use `ports`, not `protocols`"));
            }
            let list = r.ports.as_deref().unwrap_or_default();
            if r.ports.is_some() && (list.is_empty() || list.len() > api.limit()) {
                return Err(invalid(format!("{field}.ports"), "1 to 100 ports"));
            }
            for (i, p) in list.iter().enumerate() {
                let f = format!("{field}.ports[{i}]");
                match (&p.port_number, &p.named_port, &p.port_range) {
                    (Some(n), None, None) if n.port >= 1 => {
                        let key = protocol_of(&n.protocol, &format!("{f}.portNumber.protocol"))?;
                        add(&mut groups, Some(key), Some(PortMatch::Range(n.port, n.port)));
                    }
                    (None, None, Some(r)) if r.start >= 1 && r.start <= r.end => {
                        let key = protocol_of(&r.protocol, &format!("{f}.portRange.protocol"))?;
                        add(&mut groups, Some(key), Some(PortMatch::Range(r.start, r.end)));
                    }
                    (None, Some(_), None) => {
                        return Err(invalid(
                            format!("{f}.namedPort"),
                            "namedPort is not implemented by Calico's v1alpha1 conversion (it would match every \
                             port): refused",
                        ));
                    }
                    _ => {
                        return Err(invalid(&f, "exactly one of portNumber, namedPort and portRange, ports 1-65535"));
                    }
                }
            }
        }
    }
    Ok(groups)
}

/// One converted peer: its criteria on the peer's end of the rule.
fn peer(p: &RawPeer, field: &str, egress: bool) -> Result<EntityMatch, LoadError> {
    let set =
        [p.namespaces.is_some(), p.pods.is_some(), p.networks.is_some(), p.nodes.is_some(), p.domain_names.is_some()];
    if set.iter().filter(|s| **s).count() != 1 {
        return Err(invalid(field, "a peer needs exactly one of namespaces, pods, networks, nodes, domainNames"));
    }
    if p.nodes.is_some() || p.domain_names.is_some() {
        let which = if p.nodes.is_some() { "nodes" } else { "domainNames" };
        return Err(invalid(
            format!("{field}.{which}"),
            format!("{which} peers are not implemented by Calico (it would replace or drop the rule): refused"),
        ));
    }
    if let Some(n) = &p.namespaces {
        return Ok(EntityMatch {
            selector: Some(namespaces(n, &format!("{field}.namespaces"))?),
            ..EntityMatch::default()
        });
    }
    if let Some(pp) = &p.pods {
        return Ok(EntityMatch { selector: Some(pods(pp, &format!("{field}.pods"))?), ..EntityMatch::default() });
    }
    let nets = p.networks.as_deref().unwrap_or_default();
    if !egress {
        return Err(invalid(format!("{field}.networks"), "networks peers are only for egress rules"));
    }
    if nets.is_empty() || nets.len() > 25 {
        return Err(invalid(format!("{field}.networks"), "1 to 25 networks"));
    }
    let nets = super::fields::cidrs(&p.networks, &format!("{field}.networks"))?;
    Ok(EntityMatch { nets, ..EntityMatch::default() })
}

fn action(raw: &Option<String>, api: Api, field: &str) -> Result<RuleAction, LoadError> {
    let f = format!("{field}.action");
    match (api, raw.as_deref()) {
        (Api::Cnp, Some("Accept")) | (Api::Anp | Api::Banp, Some("Allow")) => Ok(RuleAction::Allow),
        (_, Some("Deny")) => Ok(RuleAction::Deny),
        (Api::Cnp | Api::Anp, Some("Pass")) => Ok(RuleAction::Pass),
        (Api::Cnp, other) => Err(invalid(f, format!("{other:?} is not Accept, Deny or Pass"))),
        (Api::Anp, other) => Err(invalid(f, format!("{other:?} is not Allow, Deny or Pass"))),
        (Api::Banp, other) => Err(invalid(f, format!("{other:?} is not Allow or Deny"))),
    }
}

fn rules(list: &Option<Vec<RawRule>>, dir: &str, egress: bool, api: Api) -> Result<Vec<Rule>, LoadError> {
    let list = list.as_deref().unwrap_or_default();
    if list.len() > api.limit() {
        return Err(invalid(format!("spec.{dir}"), format!("at most {} rules", api.limit())));
    }
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let field = format!("spec.{dir}[{i}]");
        if r.name.as_ref().is_some_and(|n| n.len() > 100) {
            return Err(invalid(format!("{field}.name"), "at most 100 characters"));
        }
        let act = action(&r.action, api, &field)?;
        let (peers, peers_field) = if egress { (&r.to, "to") } else { (&r.from, "from") };
        let (other, other_field) = if egress { (&r.from, "from") } else { (&r.to, "to") };
        if other.is_some() {
            return Err(invalid(format!("{field}.{other_field}"), format!("{dir} rules have no `{other_field}`")));
        }
        let peers = peers.as_deref().unwrap_or_default();
        if peers.is_empty() || peers.len() > api.limit() {
            return Err(invalid(format!("{field}.{peers_field}"), format!("1 to {} peers", api.limit())));
        }
        let groups = port_groups(r, api, &field)?;
        for (j, p) in peers.iter().enumerate() {
            let e = peer(p, &format!("{field}.{peers_field}[{j}]"), egress)?;
            let mut emit = |protocol: Option<u8>, ports: Vec<PortMatch>| {
                let (source, destination) = if egress {
                    (EntityMatch::default(), EntityMatch { ports, ..e.clone() })
                } else {
                    (e.clone(), EntityMatch { ports, ..EntityMatch::default() })
                };
                out.push(Rule {
                    action: act,
                    matcher: RuleMatch::Calico(CalicoRule { protocol, source, destination, ..CalicoRule::default() }),
                });
            };
            if groups.is_empty() {
                emit(None, Vec::new());
            }
            for (protocol, ports) in &groups {
                emit(*protocol, ports.clone().unwrap_or_default());
            }
        }
    }
    Ok(out)
}

/// Converts a ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy.
pub(crate) fn policy(obj: &Obj, bundle: &Bundle) -> Result<Policy, LoadError> {
    check_name(&obj.id.name)?;
    let api = Api::of(obj);
    let spec: RawSpec = typed(obj.spec(), "spec")?;
    let (kind, tier_name, order) = match api {
        Api::Cnp => {
            let tier = match spec.tier.as_deref() {
                Some("Admin") => KUBE_ADMIN_TIER.0,
                Some("Baseline") => KUBE_BASELINE_TIER.0,
                other => return Err(invalid("spec.tier", format!("{other:?} is not Admin or Baseline"))),
            };
            let p = spec.priority.ok_or_else(|| invalid("spec.priority", "priority is required"))?;
            (PolicyKind::ClusterNetworkPolicy, tier, p)
        }
        Api::Anp => {
            if spec.tier.is_some() {
                return Err(invalid("spec.tier", "AdminNetworkPolicy has no tier"));
            }
            let p = spec.priority.ok_or_else(|| invalid("spec.priority", "priority is required"))?;
            (PolicyKind::AdminNetworkPolicy, ANP_TIER.0, p)
        }
        Api::Banp => {
            if spec.tier.is_some() || spec.priority.is_some() {
                return Err(invalid("spec", "BaselineAdminNetworkPolicy has no tier and no priority"));
            }
            if obj.id.name != "default" {
                return Err(invalid("metadata.name", "the BaselineAdminNetworkPolicy must be named `default`"));
            }
            (PolicyKind::BaselineAdminNetworkPolicy, BANP_TIER.0, 1000)
        }
    };
    if !(0..=1000).contains(&order) {
        return Err(invalid("spec.priority", format!("{order} is not in 0-1000")));
    }
    let subject = spec.subject.as_ref().ok_or_else(|| invalid("spec.subject", "subject is required"))?;
    let selector = match (&subject.namespaces, &subject.pods) {
        (Some(n), None) => Expr::And(vec![namespaces(n, "spec.subject.namespaces")?, orchestrator()]),
        (None, Some(p)) => pods(p, "spec.subject.pods")?,
        _ => return Err(invalid("spec.subject", "exactly one of namespaces and pods")),
    };
    let ingress = rules(&spec.ingress, "ingress", false, api)?;
    let egress = rules(&spec.egress, "egress", true, api)?;
    // Types as Calico sets them: the directions that have rules; none means both.
    let (gov_in, gov_eg) = match (ingress.is_empty(), egress.is_empty()) {
        (true, true) => (true, true),
        (i, e) => (!i, !e),
    };
    let tier = bundle.tier_id(tier_name).ok_or_else(|| invalid("spec", format!("tier {tier_name} is missing")))?;
    Ok(Policy {
        kind,
        name: obj.id.name.clone(),
        namespace: None,
        tier,
        order: Some(order as f64),
        selector,
        ingress: gov_in.then_some(ingress),
        egress: gov_eg.then_some(egress),
        staged: None,
        origin: format!("{}#{}", obj.doc.file, obj.doc.index),
        host_only: false,
    })
}
