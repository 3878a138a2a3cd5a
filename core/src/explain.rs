//! Rendering decisions: the JSON of SPEC 7 and the tier walk for a person to read.

use std::fmt;

use serde::Serialize;

use crate::decision::{Decision, Reason};
use crate::model::Bundle;
use crate::request::Request;
use crate::trace::Trace;

#[derive(Serialize)]
struct StagedJson {
    action: &'static str,
}

#[derive(Serialize)]
struct TraceJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    egress: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ingress: Option<Vec<String>>,
}

#[derive(Serialize)]
struct DecisionJson {
    action: &'static str,
    reason: &'static str,
    side: Option<&'static str>,
    tier: Option<String>,
    policy: Option<String>,
    rule: Option<i32>,
    peer: Option<&'static str>,
    l7_pending: bool,
    staged: Option<StagedJson>,
    generation: u64,
    detail: Option<String>,
    trace: TraceJson,
}

/// Renders a decision (and its trace) as the JSON object of SPEC 7, with names looked up
/// in `bundle`. Every key is present; keys that do not apply are `null`. `detail` is the
/// decision's own (why an `invalid_request`); see [`decision_json_with_detail`].
pub fn decision_json(bundle: Option<&Bundle>, d: &Decision, trace: &Trace) -> serde_json::Value {
    decision_json_with_detail(bundle, d, trace, d.detail.map(str::to_string))
}

/// [`decision_json`] with `detail` given by the caller (a request that did not parse: the
/// parse error).
pub fn decision_json_with_detail(
    bundle: Option<&Bundle>,
    d: &Decision,
    trace: &Trace,
    detail: Option<String>,
) -> serde_json::Value {
    let render = |hits: &Option<Vec<crate::trace::Hit>>| {
        hits.as_ref().map(|h| {
            h.iter().enumerate().map(|(i, hit)| bundle.map(|b| hit.render(i, b)).unwrap_or_default()).collect()
        })
    };
    let j = DecisionJson {
        action: d.action.as_str(),
        reason: d.reason.as_str(),
        side: d.side.map(|s| s.as_str()),
        tier: d.tier.and_then(|t| bundle.and_then(|b| b.tier(t)).map(|t| t.name.clone())),
        policy: d.policy.and_then(|p| bundle.and_then(|b| b.policy(p)).map(|p| p.display_name())),
        rule: d.rule,
        peer: d.peer.map(|p| p.as_str()),
        l7_pending: d.l7_pending,
        staged: d.staged.map(|a| StagedJson { action: a.as_str() }),
        generation: d.generation,
        detail,
        trace: TraceJson { egress: render(&trace.egress), ingress: render(&trace.ingress) },
    };
    serde_json::to_value(j).unwrap_or(serde_json::Value::Null)
}

/// A decision with its tier walk, rendered.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The decision.
    pub decision: Decision,
    /// The hits per side.
    pub trace: Trace,
    json: serde_json::Value,
    text: String,
}

impl Explanation {
    /// Renders `decision` and its `trace` for `req`, with names looked up in `bundle` (the
    /// bundle of the snapshot that decided).
    pub fn new(bundle: &Bundle, req: &Request<'_>, decision: Decision, trace: Trace) -> Explanation {
        let json = decision_json(Some(bundle), &decision, &trace);
        let mut text = String::new();
        let who = |ip: std::net::IpAddr| -> String {
            let ip = crate::net::canonical_ip(ip);
            match bundle.endpoint_by_ip(ip) {
                Some(e) => format!("{ip} (pod {}/{}, service account {})", e.namespace, e.name, e.service_account),
                None => {
                    let sets: Vec<String> = bundle
                        .network_sets
                        .iter()
                        .filter(|s| s.nets.iter().any(|n| n.contains(&ip)))
                        .map(|s| match &s.namespace {
                            Some(ns) => format!("{ns}/{}", s.name),
                            None => s.name.clone(),
                        })
                        .collect();
                    if sets.is_empty() {
                        format!("{ip} (not a known workload)")
                    } else {
                        format!("{ip} (not a known workload; in network sets {})", sets.join(", "))
                    }
                }
            }
        };
        text.push_str(&format!("source:      {}\n", who(req.source.ip)));
        text.push_str(&format!("destination: {}\n", who(req.destination.ip)));
        for (name, hits) in [("egress (source)", &trace.egress), ("ingress (destination)", &trace.ingress)] {
            let Some(hits) = hits else { continue };
            text.push_str(&format!("{name}:\n"));
            for (i, h) in hits.iter().enumerate() {
                let line = h.render(i, bundle);
                let what = match (h.action, h.rule) {
                    (crate::trace::HitAction::Log, _) => "rule matched, logged, evaluation goes on",
                    (crate::trace::HitAction::Pass, -1) => "no policy decided; the tier's default action passes",
                    (crate::trace::HitAction::Pass, _) => "rule matched: pass to the next tier",
                    (crate::trace::HitAction::Deny, -1) => "no policy decided; the tier's default action denies",
                    (_, _) if matches!(h.source, crate::trace::HitSource::Profile { .. }) => {
                        "every tier passed or none applied: the profile default decides"
                    }
                    (crate::trace::HitAction::Allow, _) => "rule matched: allow",
                    (crate::trace::HitAction::Deny, _) => "rule matched: deny",
                };
                text.push_str(&format!("  {line:<48} {what}\n"));
            }
        }
        text.push_str(&format!("decision: {} ({})", decision.action.as_str(), decision.reason.as_str()));
        if let Some(s) = decision.side {
            text.push_str(&format!(", side {}", s.as_str()));
        }
        if let Some(p) = json.get("policy").and_then(|p| p.as_str()) {
            if decision.reason == Reason::NoPolicy {
                text.push_str(&format!(", the mesh layer allowed by {p}"));
            } else {
                text.push_str(&format!(", policy {p}"));
            }
        }
        if let Some(r) = decision.rule {
            text.push_str(&format!(", rule {r}"));
        }
        if let Some(p) = decision.peer {
            text.push_str(&format!(", {} identity", p.as_str()));
        }
        if decision.l7_pending {
            text.push_str(", l7_pending: the proxy must decide again with the HTTP request");
        }
        if let Some(s) = decision.staged {
            text.push_str(&format!(", staged verdict {}", s.as_str()));
        }
        if let Some(d) = decision.detail {
            text.push_str(&format!("\n  why: {d}"));
        }
        // Identity mismatch: the identity the IP's workload owns beside the one presented.
        if decision.reason == Reason::IdentityMismatch {
            let (ip, presented) = match decision.peer {
                Some(crate::Peer::Destination) => (req.destination.ip, req.destination.principal),
                _ => (req.source.ip, req.source.principal),
            };
            let owner = bundle.endpoint_by_ip(crate::net::canonical_ip(ip));
            text.push_str(&format!("\n  presented: {}", presented.unwrap_or("-")));
            match owner {
                Some(e) => text.push_str(&format!(
                    "\n  {ip} belongs to pod {}/{}, whose identity is {}",
                    e.namespace, e.name, e.identity
                )),
                None => text.push_str(&format!(
                    "\n  {ip} belongs to no workload: a principal of this cluster's trust domain cannot come from it"
                )),
            }
        }
        // Peer authentication required: where the requirement comes from.
        if decision.reason == Reason::MissingPeerIdentity
            && let Some(e) = bundle.endpoint_by_ip(crate::net::canonical_ip(req.destination.ip))
        {
            let mode = e.mtls.mode_for(req.destination.port);
            if mode == crate::model::MtlsMode::Strict {
                text.push_str(&format!(
                    "\n  {}/{} requires mutual TLS on this port (PeerAuthentication {})",
                    e.namespace,
                    e.name,
                    e.mtls.from.join(", then ")
                ));
            } else {
                text.push_str("\n  require_peer_identity is set: a known workload must present its certificate");
            }
        }
        text.push('\n');
        Explanation { decision, trace, json, text }
    }

    pub(crate) fn no_bundle() -> Explanation {
        let decision = Decision::pre_policy(Reason::NoBundle, None, 0);
        let trace = Trace::default();
        let json = decision_json(None, &decision, &trace);
        Explanation { decision, trace, json, text: "decision: deny (no_bundle): nothing is loaded\n".into() }
    }

    /// The decision as SPEC 7 JSON, trace included.
    pub fn json(&self) -> &serde_json::Value {
        &self.json
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
