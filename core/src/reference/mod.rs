//! The reference evaluator: walks the model directly, in the obvious way, allocating
//! freely. It is the executable statement of the semantics that the compiled engine is
//! tested against; it shares no matching code with it.

mod istio;

use std::net::IpAddr;

use crate::config::Config;
use crate::decision::{Action, Decision, Peer, Reason, Side};
use crate::http_path::{self, PathBuffer};
use crate::model::{
    Bundle, CalicoRule, EntityMatch, HttpMatch, IcmpMatch, MtlsMode, PathMatch, Policy, PolicyId, PortMatch,
    RuleAction, RuleMatch, StagedAction, TierDefault, TierId,
};
use crate::net::canonical_ip;
use crate::request::validate::validate;
use crate::request::{Direction, Request, proto};
use crate::selector::Expr;
use crate::spiffe::SpiffeId;
use crate::trace::{Hit, HitAction, HitSource, Trace};

/// Evaluates `req` against `bundle`, returning the decision and the full trace.
pub fn evaluate(bundle: &Bundle, config: &Config, req: &Request<'_>, generation: u64) -> (Decision, Trace) {
    let mut trace = Trace::default();
    let mut decoded = Box::<PathBuffer>::default();
    if let Err(why) = validate(req, &mut decoded) {
        return (Decision::invalid(why.message(), generation), trace);
    }
    let src_ip = canonical_ip(req.source.ip);
    let dst_ip = canonical_ip(req.destination.ip);
    let src_ep = find_endpoint(bundle, src_ip);
    let dst_ep = find_endpoint(bundle, dst_ip);

    // Two identities: bind each presented principal to the IP that presents it.
    for (principal, ep, peer) in
        [(req.source.principal, src_ep, Peer::Source), (req.destination.principal, dst_ep, Peer::Destination)]
    {
        let Some(p) = principal else { continue };
        let ok = match ep {
            Some(i) => bundle.endpoints.get(i).is_some_and(|e| {
                let id = SpiffeId::parse(p);
                id.is_some_and(|id| {
                    config.is_local_trust_domain(id.trust_domain)
                        && id.workload() == Some((e.namespace.as_str(), e.service_account.as_str()))
                })
            }),
            None => SpiffeId::parse(p).is_some_and(|id| !config.is_local_trust_domain(id.trust_domain)),
        };
        if !ok {
            return (Decision::pre_policy(Reason::IdentityMismatch, Some(peer), generation), trace);
        }
    }
    let eval_egress = req.direction != Direction::Ingress && src_ep.is_some();
    let eval_ingress = req.direction != Direction::Egress && dst_ep.is_some();
    // 5. Required peer identity: the global switch (known source workloads), or the
    // destination workload's PeerAuthentication STRICT for the destination port (any source).
    let strict = || {
        req.protocol == proto::TCP
            && dst_ep
                .and_then(|i| bundle.endpoints.get(i))
                .is_some_and(|e| e.mtls.mode_for(req.destination.port) == MtlsMode::Strict)
    };
    if req.source.principal.is_none()
        && eval_ingress
        && ((config.require_peer_identity && src_ep.is_some()) || strict())
    {
        return (Decision::pre_policy(Reason::MissingPeerIdentity, Some(Peer::Source), generation), trace);
    }

    let istio = istio::IstioInput::new(req, &decoded);
    let ctx = Ctx { bundle, config, req, src_ip, dst_ip, decoded: &decoded, istio };
    let no_side = |action| Decision {
        action,
        reason: Reason::NoPolicy,
        ..Decision::pre_policy(Reason::NoPolicy, None, generation)
    };
    if !eval_egress && !eval_ingress {
        return (no_side(config.no_policy_action), trace);
    }

    let sides: Vec<(Side, usize)> = [(Side::Egress, eval_egress, src_ep), (Side::Ingress, eval_ingress, dst_ep)]
        .into_iter()
        .filter_map(|(s, on, ep)| if on { ep.map(|e| (s, e)) } else { None })
        .collect();

    // Enforced verdict: egress first, the first deny is reported.
    let mut outcome: Option<(Side, SideOutcome)> = None;
    for &(side, ep) in &sides {
        let mut hits = Vec::new();
        let o = walk(&ctx, ep, side, Mode::Enforced, &mut hits);
        match side {
            Side::Egress => trace.egress = Some(hits),
            Side::Ingress => trace.ingress = Some(hits),
        }
        let deny = o.action == Action::Deny;
        outcome = Some((side, o));
        if deny {
            break;
        }
    }

    // Staged verdict: both sides with staged policies as if enforced.
    let staged_relevant = sides
        .iter()
        .any(|&(side, ep)| applicable(&ctx, ep, side, Mode::Enforced) != applicable(&ctx, ep, side, Mode::Pending));
    let staged = staged_relevant.then(|| {
        let mut verdict = Action::Allow;
        for &(side, ep) in &sides {
            let o = walk(&ctx, ep, side, Mode::Pending, &mut Vec::new());
            if o.action == Action::Deny {
                verdict = Action::Deny;
                break;
            }
        }
        verdict
    });

    let Some((side, o)) = outcome else {
        return (no_side(config.no_policy_action), trace);
    };
    let decision = Decision {
        action: o.action,
        reason: o.reason,
        side: Some(side),
        tier: o.tier,
        policy: o.policy,
        rule: o.rule,
        peer: None,
        l7_pending: o.action == Action::Allow && o.l7_pending,
        staged,
        generation,
        detail: None,
    };
    (decision, trace)
}

fn find_endpoint(bundle: &Bundle, ip: IpAddr) -> Option<usize> {
    bundle.endpoints.iter().position(|e| e.ips.contains(&ip))
}

struct Ctx<'a> {
    bundle: &'a Bundle,
    config: &'a Config,
    req: &'a Request<'a>,
    src_ip: IpAddr,
    dst_ip: IpAddr,
    decoded: &'a PathBuffer,
    istio: istio::IstioInput<'a>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Enforced,
    /// Staged policies as if enforced.
    Pending,
}

struct SideOutcome {
    action: Action,
    reason: Reason,
    tier: Option<TierId>,
    policy: Option<PolicyId>,
    rule: Option<i32>,
    l7_pending: bool,
}

fn is_overridden(bundle: &Bundle, p: &Policy) -> bool {
    bundle.policies.iter().any(|q| {
        q.staged.is_some()
            && q.kind.enforced_counterpart() == p.kind
            && q.namespace == p.namespace
            && q.name == p.name
            && q.tier == p.tier
    })
}

/// The policies in play for an endpoint and direction, in evaluation order.
fn applicable(ctx: &Ctx<'_>, ep: usize, side: Side, mode: Mode) -> Vec<PolicyId> {
    let Some(e) = ctx.bundle.endpoints.get(ep) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, p) in ctx.bundle.policies.iter().enumerate() {
        let in_play = match mode {
            Mode::Enforced => p.staged.is_none(),
            Mode::Pending => match p.staged {
                None => !is_overridden(ctx.bundle, p),
                Some(StagedAction::Set) => true,
                Some(StagedAction::Delete) => false,
            },
        };
        if in_play && p.rules(side).is_some() && p.selector.matches(&e.labels) {
            out.push(i as PolicyId);
        }
    }
    out
}

fn walk(ctx: &Ctx<'_>, ep: usize, side: Side, mode: Mode, hits: &mut Vec<Hit>) -> SideOutcome {
    let policies = applicable(ctx, ep, side, mode);
    // The Istio ALLOW rule that let this ingress walk through the mesh layer, if any: it
    // names a profile allow (the reason stays `no_policy`).
    let mut mesh: Option<(TierId, PolicyId, i32)> = None;
    for (tier_idx, tier) in ctx.bundle.tiers.iter().enumerate() {
        let tier_id = tier_idx as TierId;
        // Istio's layer is a sidecar's: it sees TCP only.
        if tier.is_istio() && ctx.req.protocol != proto::TCP {
            continue;
        }
        let in_tier: Vec<PolicyId> =
            policies.iter().copied().filter(|&p| ctx.bundle.policy(p).is_some_and(|p| p.tier == tier_id)).collect();
        let Some(&first) = in_tier.first() else {
            continue;
        };
        let mut passed = false;
        'policies: for &pid in &in_tier {
            let Some(p) = ctx.bundle.policy(pid) else {
                continue;
            };
            for (ri, rule) in p.rules(side).unwrap_or_default().iter().enumerate() {
                let Some(pending) = rule_matches(ctx, p, &rule.matcher, rule.action, side) else {
                    continue;
                };
                let src = HitSource::Policy { tier: tier_id, policy: pid };
                let decided = |action| SideOutcome {
                    action,
                    reason: Reason::Rule,
                    tier: Some(tier_id),
                    policy: Some(pid),
                    rule: Some(ri as i32),
                    l7_pending: pending,
                };
                match rule.action {
                    RuleAction::Log => hits.push(Hit { source: src, action: HitAction::Log, rule: ri as i32 }),
                    RuleAction::Allow => {
                        hits.push(Hit { source: src, action: HitAction::Allow, rule: ri as i32 });
                        return decided(Action::Allow);
                    }
                    RuleAction::Deny => {
                        hits.push(Hit { source: src, action: HitAction::Deny, rule: ri as i32 });
                        return decided(Action::Deny);
                    }
                    RuleAction::Pass => {
                        hits.push(Hit { source: src, action: HitAction::Pass, rule: ri as i32 });
                        if side == Side::Ingress && tier.name == "istio-allow" {
                            mesh = Some((tier_id, pid, ri as i32));
                        }
                        passed = true;
                        break 'policies;
                    }
                }
            }
        }
        if passed {
            continue;
        }
        let src = HitSource::Policy { tier: tier_id, policy: first };
        match tier.default_action {
            TierDefault::Pass => hits.push(Hit { source: src, action: HitAction::Pass, rule: -1 }),
            TierDefault::Deny => {
                hits.push(Hit { source: src, action: HitAction::Deny, rule: -1 });
                return SideOutcome {
                    action: Action::Deny,
                    reason: Reason::EndOfTier,
                    tier: Some(tier_id),
                    policy: Some(first),
                    rule: Some(-1),
                    l7_pending: false,
                };
            }
        }
    }
    let action = ctx.config.no_policy_action;
    let hit_action = if action == Action::Allow { HitAction::Allow } else { HitAction::Deny };
    hits.push(Hit { source: HitSource::Profile { endpoint: ep as u32 }, action: hit_action, rule: 0 });
    match mesh {
        Some((tier, policy, rule)) if action == Action::Allow => SideOutcome {
            action,
            reason: Reason::NoPolicy,
            tier: Some(tier),
            policy: Some(policy),
            rule: Some(rule),
            l7_pending: false,
        },
        _ => SideOutcome { action, reason: Reason::NoPolicy, tier: None, policy: None, rule: None, l7_pending: false },
    }
}

/// A criterion's outcome: `None` means the request lacks the attribute it tests.
type Tri = Option<bool>;

/// Whether a rule matches; `Some(true)` when it matched only because the request has no
/// HTTP attributes (`l7_pending`).
fn rule_matches(ctx: &Ctx<'_>, _policy: &Policy, m: &RuleMatch, action: RuleAction, _side: Side) -> Option<bool> {
    match m {
        RuleMatch::Calico(r) => calico_matches(ctx, r, action),
        RuleMatch::Istio(r) => istio::istio_matches(&ctx.istio, r, action).then_some(false),
    }
}

fn calico_matches(ctx: &Ctx<'_>, r: &CalicoRule, action: RuleAction) -> Option<bool> {
    let req = ctx.req;
    // A missing attribute fails Allow/Pass/Log rules and holds in Deny rules.
    let holds = |t: Tri| t.unwrap_or(action == RuleAction::Deny);
    let version = if ctx.src_ip.is_ipv4() { 4 } else { 6 };
    if r.ip_version.is_some_and(|v| v != version) {
        return None;
    }
    if r.protocol.is_some_and(|p| p != req.protocol) || r.not_protocol == Some(req.protocol) {
        return None;
    }
    if let Some(m) = &r.icmp
        && !holds(icmp_matches(m, req))
    {
        return None;
    }
    if let Some(m) = &r.not_icmp
        && !holds(icmp_matches(m, req).map(|b| !b))
    {
        return None;
    }
    if !entity_matches(ctx, &r.source, ctx.src_ip, req.source.port, action) {
        return None;
    }
    if !entity_matches(ctx, &r.destination, ctx.dst_ip, req.destination.port, action) {
        return None;
    }
    match &r.http {
        Some(h) if h.is_constraining() => match &req.http {
            None => Some(true),
            Some(_) => http_matches(ctx, h).then_some(false),
        },
        _ => Some(false),
    }
}

fn icmp_matches(m: &IcmpMatch, req: &Request<'_>) -> Tri {
    let icmp = req.icmp?;
    if icmp.icmp_type != m.icmp_type {
        return Some(false);
    }
    match m.code {
        None => Some(true),
        Some(c) => Some(icmp.code? == c),
    }
}

/// Every label set holding `ip`: its endpoint (exact IP) and every network set containing it.
fn holders(bundle: &Bundle, ip: IpAddr) -> Vec<&std::collections::BTreeMap<String, String>> {
    let mut out: Vec<_> = bundle.endpoints.iter().filter(|e| e.ips.contains(&ip)).map(|e| &e.labels).collect();
    out.extend(bundle.network_sets.iter().filter(|s| s.nets.iter().any(|n| n.contains(&ip))).map(|s| &s.labels));
    out
}

fn selector_matches_ip(bundle: &Bundle, sel: &Expr, ip: IpAddr) -> bool {
    holders(bundle, ip).into_iter().any(|l| sel.matches(l))
}

fn entity_matches(ctx: &Ctx<'_>, e: &EntityMatch, ip: IpAddr, port: Option<u16>, action: RuleAction) -> bool {
    let holds = |t: Tri| t.unwrap_or(action == RuleAction::Deny);
    if !e.nets.is_empty() && !e.nets.iter().any(|n| n.contains(&ip)) {
        return false;
    }
    if e.not_nets.iter().any(|n| n.contains(&ip)) {
        return false;
    }
    if let Some(s) = &e.services
        && !s.matches(ip, ctx.req.protocol, port)
    {
        return false;
    }
    if let Some(s) = &e.selector
        && !selector_matches_ip(ctx.bundle, s, ip)
    {
        return false;
    }
    if let Some(s) = &e.not_selector
        && selector_matches_ip(ctx.bundle, s, ip)
    {
        return false;
    }
    let has_ports = proto::has_ports(ctx.req.protocol);
    if !e.ports.is_empty() {
        let t =
            if !has_ports { Some(false) } else { port.map(|p| e.ports.iter().any(|m| port_matches(ctx, e, m, ip, p))) };
        if !holds(t) {
            return false;
        }
    }
    if !e.not_ports.is_empty() {
        let t = if !has_ports {
            Some(true)
        } else {
            port.map(|p| !e.not_ports.iter().any(|m| port_matches(ctx, e, m, ip, p)))
        };
        if !holds(t) {
            return false;
        }
    }
    true
}

fn port_matches(ctx: &Ctx<'_>, e: &EntityMatch, m: &PortMatch, ip: IpAddr, port: u16) -> bool {
    match m {
        PortMatch::Range(lo, hi) => (*lo..=*hi).contains(&port),
        PortMatch::Named(name) => ctx.bundle.endpoints.iter().filter(|ep| ep.ips.contains(&ip)).any(|ep| {
            ep.ports.iter().any(|np| np.name == *name && np.protocol == ctx.req.protocol && np.port == port)
                && e.selector.as_ref().is_none_or(|s| s.matches(&ep.labels))
        }),
    }
}

fn http_matches(ctx: &Ctx<'_>, h: &HttpMatch) -> bool {
    let Some(http) = &ctx.req.http else {
        return false;
    };
    if !h.methods.is_empty() && !h.methods.iter().any(|m| m == "*" || m == http.method) {
        return false;
    }
    if h.paths.is_empty() {
        return true;
    }
    let path = if http_path::is_plain(http.path) {
        http.path.to_string()
    } else {
        let mut out = Box::<PathBuffer>::default();
        if http_path::clean_calico(ctx.decoded.as_str(), &mut out).is_err() {
            return false;
        }
        out.as_str().to_string()
    };
    h.paths.iter().any(|p| match p {
        PathMatch::Exact(x) => *x == path,
        PathMatch::Prefix(x) => http_path::calico_prefix_matches(x, &path),
    })
}
