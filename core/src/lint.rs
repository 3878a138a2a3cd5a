//! Lint: warnings about a bundle that loads but probably does not say what its authors
//! meant (rules that can never be reached, policies that select nothing).

use crate::Side;
use crate::model::{Bundle, CalicoRule, Policy, PolicyKind, RuleAction, RuleMatch};
use crate::selector::Expr;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where the object was declared (`file#document`).
    pub origin: String,
    /// The policy, as `<kind>:[<ns>/]<name>`.
    pub object: String,
    /// The field path, when the finding is about one rule.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "warning: {}: {}: ", self.origin, self.object)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

fn matches_everything(r: &CalicoRule) -> bool {
    r.protocol.is_none()
        && r.not_protocol.is_none()
        && r.icmp.is_none()
        && r.not_icmp.is_none()
        && r.ip_version.is_none()
        && r.source.is_empty()
        && r.destination.is_empty()
        && r.http.as_ref().is_none_or(|h| !h.is_constraining())
}

/// Lints a loaded bundle.
///
/// ```
/// let yaml = r#"
/// apiVersion: projectcalico.org/v3
/// kind: GlobalNetworkPolicy
/// metadata: {name: p}
/// spec:
///   ingress: [{action: Deny}, {action: Allow, protocol: TCP}]
/// "#;
/// let b = palisade::load::load(&[palisade::load::Source { name: "p.yaml", text: yaml }], &Default::default()).unwrap();
/// let w = palisade::lint::lint(&b);
/// assert!(w.iter().any(|w| w.message.contains("unreachable")));
/// ```
pub fn lint(bundle: &Bundle) -> Vec<Warning> {
    let mut out = Vec::new();
    for p in &bundle.policies {
        let object = p.display_name();
        let warn = |field: Option<String>, message: String| Warning {
            origin: p.origin.clone(),
            object: object.clone(),
            field,
            message,
        };
        if p.kind == PolicyKind::AuthorizationPolicy {
            out.extend(istio_findings(bundle, p).into_iter().map(|(f, m)| warn(f, m)));
            if p.selector == Expr::Not(Box::new(Expr::All)) {
                continue;
            }
        }
        if p.host_only {
            continue;
        }
        if p.staged != Some(crate::model::StagedAction::Delete)
            && !bundle.endpoints.is_empty()
            && !bundle.endpoints.iter().any(|e| p.selector.matches(&e.labels))
        {
            out.push(Warning {
                origin: p.origin.clone(),
                object: object.clone(),
                field: None,
                message: "selects no endpoint of the bundle".into(),
            });
        }
        for side in [Side::Ingress, Side::Egress] {
            let Some(rules) = p.rules(side) else { continue };
            let mut shadow: Option<(usize, RuleAction)> = None;
            for (i, r) in rules.iter().enumerate() {
                if let Some((j, a)) = shadow {
                    out.push(Warning {
                        origin: p.origin.clone(),
                        object: object.clone(),
                        field: Some(format!("spec.{}[{i}]", side.as_str())),
                        message: format!(
                            "unreachable: rule {j} ({}) matches all traffic and ends evaluation",
                            a.as_str()
                        ),
                    });
                    continue;
                }
                if let RuleMatch::Calico(c) = &r.matcher {
                    for (end, e) in [("source", &c.source), ("destination", &c.destination)] {
                        if let Some(s) = e.services.as_ref().filter(|s| s.service.starts_with('/')) {
                            out.push(Warning {
                                origin: p.origin.clone(),
                                object: object.clone(),
                                field: Some(format!("spec.{}[{i}].{end}.services", side.as_str())),
                                message: format!(
                                    "services {{name: {}}} has no namespace: Calico's API says it means the policy's \
                                     namespace, but Felix matches nothing (and so does Palisade); write the namespace",
                                    &s.service[1..]
                                ),
                            });
                        }
                    }
                }
                let everything = match &r.matcher {
                    RuleMatch::Calico(c) => matches_everything(c),
                    RuleMatch::Istio(i) => i.from.is_empty() && i.to.is_empty() && i.when.is_empty(),
                };
                if r.action != RuleAction::Log && everything {
                    shadow = Some((i, r.action));
                }
            }
        }
    }
    out
}

/// Whether Istio would treat some port of `e` as HTTP: a named container port `http*` or
/// `grpc*`, or a port of a Service selecting the workload whose name or `appProtocol` says
/// HTTP, HTTP/2 or gRPC (Istio's protocol selection).
fn endpoint_speaks_http(bundle: &Bundle, e: &crate::model::Endpoint) -> bool {
    e.ports.iter().any(|np| np.name.starts_with("http") || np.name.starts_with("grpc"))
        || bundle.services.iter().any(|s| {
            s.namespace == e.namespace
                && !s.selector.is_empty()
                && s.selector.iter().all(|(k, v)| e.labels.get(k) == Some(v))
                && s.ports.iter().any(|p| p.speaks_http())
        })
}

/// Istio-specific findings: gateway-only policies, ALLOW without rules, HTTP fields on
/// workloads that serve no HTTP port.
fn istio_findings(bundle: &Bundle, p: &Policy) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    if p.selector == Expr::Not(Box::new(Expr::All)) {
        out.push((
            Some("spec.targetRefs".into()),
            "has targetRef(s): it applies to gateways and waypoints, never to a sidecar workload".into(),
        ));
        return out;
    }
    let rules = p.ingress.as_deref().unwrap_or_default();
    let allow = rules.first().is_none_or(|r| r.action == RuleAction::Pass);
    if allow && rules.is_empty() {
        out.push((None, "ALLOW policy with no rules: it denies every request to the workloads it selects".into()));
    }
    let selected: Vec<_> = bundle.endpoints.iter().filter(|e| p.selector.matches(&e.labels)).collect();
    let serves_http = selected.iter().any(|e| endpoint_speaks_http(bundle, e));
    if !selected.is_empty() && !serves_http {
        for (i, r) in rules.iter().enumerate() {
            if let RuleMatch::Istio(ir) = &r.matcher
                && ir.uses_http()
            {
                out.push((
                    Some(format!("spec.rules[{i}]")),
                    "uses HTTP-only fields, but no selected workload has an http/grpc port: on plain TCP an ALLOW rule \
                     is dropped and a DENY rule loses these fields"
                        .into(),
                ));
            }
        }
    }
    out
}

/// One line per skipped `apiVersion`/kind: the documents of the bundle that Palisade read no
/// access rule from (Deployments, IPPools, Services ...), so that a person can check that
/// nothing they meant to enforce was dropped. `lint` and `explain` print these.
///
/// ```
/// let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n\
///             apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n";
/// let b = palisade::load::load(&[palisade::load::Source { name: "b.yaml", text: yaml }], &Default::default()).unwrap();
/// assert_eq!(palisade::lint::skipped(&b), ["note: skipped 1 document of apps/v1 Deployment (no access rules read)"]);
/// ```
pub fn skipped(bundle: &Bundle) -> Vec<String> {
    bundle
        .skipped_kinds
        .iter()
        .map(|((api, kind), n)| {
            let docs = if *n == 1 { "document" } else { "documents" };
            format!("note: skipped {n} {docs} of {api} {kind} (no access rules read)")
        })
        .collect()
}

/// The skipped documents as JSON, `[{"apiVersion", "kind", "count"}]`, for the bindings.
pub fn skipped_json(bundle: &Bundle) -> serde_json::Value {
    bundle
        .skipped_kinds
        .iter()
        .map(|((api, kind), n)| serde_json::json!({"apiVersion": api, "kind": kind, "count": n}))
        .collect()
}

/// Notes about what a bundle holds that does not change decisions the way a reader might
/// expect: skipped kinds ([`skipped`]), RequestAuthentications, host-endpoint policies.
/// `lint` prints these after its warnings.
pub fn notes(bundle: &Bundle) -> Vec<String> {
    let mut out = skipped(bundle);
    if bundle.request_authentications > 0 {
        out.push(format!(
            "note: {} RequestAuthentication(s) read and validated; they never change a decision: a request's `auth` \
             is the claims the proxy has already verified, and a request with an invalid token never reaches the \
             engine in Istio (require a token with an AuthorizationPolicy: requestPrincipals or request.auth.*)",
            bundle.request_authentications
        ));
    }
    for p in bundle.policies.iter().filter(|p| p.host_only) {
        out.push(format!(
            "note: {}: {}: doNotTrack/preDNAT policy for host endpoints: read and validated, never in a workload's walk",
            p.origin,
            p.display_name()
        ));
    }
    out
}
