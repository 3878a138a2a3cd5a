//! Deciding with a compiled program: validation, the identity binding, and the tier walk
//! over precomputed per-identity policy lists. Nothing here allocates.

use super::ranges::ip_key;
use super::{CEndpoint, CEntity, CHttp, CRule, NO_SELECTOR, Overlay, Program};
use crate::decision::{Action, Decision, Peer, Reason, Side};
use crate::http_path::{self, PathBuffer};
use crate::model::{IcmpMatch, PolicyId, RuleAction, TierDefault, TierId};
use crate::net::canonical_ip;
use crate::request::validate::{self, InvalidRequest};
use crate::request::{Direction, Request, proto};
use crate::spiffe::SpiffeId;
use crate::trace::{Hit, HitAction, HitSource, Recorder};

/// What is known about one end's IP.
struct IpInfo<'p> {
    /// The address, IPv4-mapped IPv6 folded to IPv4.
    ip: std::net::IpAddr,
    key: (bool, u128),
    endpoint: Option<&'p CEndpoint>,
    endpoint_index: u32,
    /// Network-set identities covering the IP.
    sets: &'p [u32],
}

impl Program {
    /// What is known about `ip`; endpoint changes in `live` win over the program's own.
    #[inline]
    fn ip_info<'p>(&'p self, live: Option<&'p Overlay>, ip: std::net::IpAddr) -> IpInfo<'p> {
        let ip = canonical_ip(ip);
        let key = ip_key(ip);
        let (idx, endpoint) = match live {
            None => {
                let idx = self.base_index(key);
                (idx, idx.and_then(|i| self.endpoints.get(i as usize)))
            }
            Some(o) => {
                let idx = o.owner(self, key);
                (idx, idx.and_then(|i| o.endpoint(self, i)))
            }
        };
        let sets = if self.set_lists.len() > 1 {
            let list = self.netsets.lookup(key);
            self.set_lists.get(list as usize).map(|b| &**b).unwrap_or_default()
        } else {
            &[]
        };
        IpInfo { ip, key, endpoint, endpoint_index: idx.unwrap_or(0), sets }
    }

    #[inline]
    fn selects(&self, sel: u32, info: &IpInfo<'_>) -> bool {
        let Some(s) = self.selectors.get(sel as usize) else {
            return false;
        };
        info.endpoint.is_some_and(|e| s.contains(e.identity)) || info.sets.iter().any(|&i| s.contains(i))
    }
}

/// Per-request context for rule matching.
struct Ctx<'r, 'p> {
    req: &'r Request<'r>,
    src: IpInfo<'p>,
    dst: IpInfo<'p>,
    version: u8,
    /// The Calico-normalised HTTP path, when the request has HTTP.
    path: &'r str,
    istio: super::istio::IstioFacts<'r>,
    /// The source principal's id in the principal index, when indexed rules name it.
    principal_id: Option<u32>,
}

impl Ctx<'_, '_> {
    /// The request's keys for the rule index.
    #[inline]
    fn keys(&self) -> super::rule_index::Keys<'_> {
        super::rule_index::Keys {
            principal: self.principal_id,
            src_identity: self.src.endpoint.map(|e| e.identity),
            src_sets: self.src.sets,
            dst_identity: self.dst.endpoint.map(|e| e.identity),
            dst_sets: self.dst.sets,
        }
    }
}

/// A presented principal, checked once.
enum Principal<'a> {
    Absent,
    /// Exactly the owning endpoint's own (valid) SPIFFE ID: valid and bound, no parse.
    Own,
    Parsed(SpiffeId<'a>),
}

/// Validates a principal; `None` when it is not a valid SPIFFE ID.
#[inline]
fn principal<'a>(p: Option<&'a str>, ep: Option<&CEndpoint>) -> Option<Principal<'a>> {
    match p {
        None => Some(Principal::Absent),
        Some(p) if ep.is_some_and(|e| e.spiffe_valid && *e.spiffe == *p) => Some(Principal::Own),
        Some(p) => SpiffeId::parse(p).map(Principal::Parsed),
    }
}

/// The binding: a principal must be its IP owner's identity; without an owner, it must
/// not claim this trust domain.
#[inline]
fn bound(prog: &Program, p: &Principal<'_>, ep: Option<&CEndpoint>) -> bool {
    match (p, ep) {
        (Principal::Absent | Principal::Own, _) => true,
        (Principal::Parsed(id), Some(e)) => {
            prog.is_local_trust_domain(id.trust_domain) && id.workload() == Some((&*e.namespace, &*e.service_account))
        }
        (Principal::Parsed(id), None) => !prog.is_local_trust_domain(id.trust_domain),
    }
}

struct SideOut {
    action: Action,
    reason: Reason,
    tier: Option<TierId>,
    policy: Option<PolicyId>,
    rule: Option<i32>,
    l7_pending: bool,
}

/// Buffers for a path that needs normalising; plain paths never touch them (`None`s cost
/// nothing to create).
#[derive(Default)]
struct PathBuffers {
    decoded: Option<PathBuffer>,
    cleaned: Option<PathBuffer>,
    istio_cleaned: Option<PathBuffer>,
}

/// Decides `req` with `prog` (and the endpoint changes laid over it, `live`), recording the
/// enforced walk into `rec`: validate, bind the identities, walk the sides, then the staged
/// verdict.
pub(crate) fn decide<R: Recorder>(
    prog: &Program,
    live: Option<&Overlay>,
    req: &Request<'_>,
    generation: u64,
    rec: &mut R,
) -> Decision {
    if let Err(e) = validate::check_l4(req) {
        return Decision::invalid(e.message(), generation);
    }
    let src = prog.ip_info(live, req.source.ip);
    let dst = prog.ip_info(live, req.destination.ip);
    // 1. Validation (the shared steps of `request::validate`); the path is normalised into
    // `bufs` when it is not plain. In this frame: returned from a function, the results
    // were copied (about 150 instructions a decision, measured with callgrind).
    if let Err(e) = validate::check_families(src.key.0, dst.key.0) {
        return Decision::invalid(e.message(), generation);
    }
    let Some(src_principal) = principal(req.source.principal, src.endpoint) else {
        let e = InvalidRequest::bad_principal(req.source.principal.unwrap_or_default(), true);
        return Decision::invalid(e.message(), generation);
    };
    let Some(dst_principal) = principal(req.destination.principal, dst.endpoint) else {
        let e = InvalidRequest::bad_principal(req.destination.principal.unwrap_or_default(), false);
        return Decision::invalid(e.message(), generation);
    };
    let mut bufs = PathBuffers::default();
    let (path, istio_path) = match http_paths(prog, req, &mut bufs) {
        Ok(p) => p,
        Err(e) => return Decision::invalid(e.message(), generation),
    };
    // 2-5. The identity binding and a required peer identity.
    if let Some(refused) = bind(prog, req, src.endpoint, dst.endpoint, &src_principal, &dst_principal, generation) {
        return refused;
    }
    let no_side =
        Decision { action: prog.no_policy_action, ..Decision::pre_policy(Reason::NoPolicy, None, generation) };
    let egress_ep = if req.direction != Direction::Ingress { src.endpoint } else { None };
    let ingress_ep = if req.direction != Direction::Egress { dst.endpoint } else { None };
    if egress_ep.is_none() && ingress_ep.is_none() {
        return no_side;
    }
    // The per-request context the rule matchers read, built in place (it is large: built
    // by a function and returned, it was copied, about 100 instructions).
    let istio = super::istio::IstioFacts {
        req,
        uri: req.source.principal,
        principal: req.source.principal.map(|u| u.strip_prefix("spiffe://").unwrap_or(u)),
        src_ip: src.ip,
        remote_ip: req.remote_ip.map_or(src.ip, canonical_ip),
        dst_ip: dst.ip,
        port: super::istio::port_of(req),
        path: istio_path,
        has_http: req.http.is_some(),
    };
    let principal_id = match src_principal {
        _ if !prog.has_principal_ids => None,
        Principal::Own => src.endpoint.and_then(|e| e.principal_id),
        _ => istio.principal.and_then(|p| prog.principals.get(p)),
    };
    let ctx = Ctx { req, version: if src.key.0 { 4 } else { 6 }, src, dst, path, istio, principal_id };
    let outcome = sides(prog, &ctx, egress_ep, ingress_ep, rec);
    let staged = staged(prog, &ctx, egress_ep, ingress_ep);
    let Some((side, o)) = outcome else {
        return no_side;
    };
    Decision {
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
    }
}

/// Step 1, for HTTP: the method checked and the path normalised (into `bufs` unless it is
/// plain): `(Calico path, Istio path)`; `("", None)` without HTTP.
#[inline(always)] // a step of `decide`, split out for reading: no call in the hot path
fn http_paths<'a>(
    prog: &Program,
    req: &'a Request<'a>,
    bufs: &'a mut PathBuffers,
) -> Result<(&'a str, Option<&'a str>), InvalidRequest> {
    Ok(match &req.http {
        None => ("", None),
        Some(h) if http_path::is_plain(h.path) => {
            validate::check_method(h)?;
            (h.path, Some(h.path))
        }
        Some(h) => {
            let d = bufs.decoded.insert(PathBuffer::default());
            validate::check_http(h, d)?;
            let c = bufs.cleaned.insert(PathBuffer::default());
            http_path::clean_calico(d.as_str(), c).map_err(InvalidRequest::Path)?;
            let istio_path = if prog.has_istio {
                let i = bufs.istio_cleaned.insert(PathBuffer::default());
                http_path::clean_istio(d.as_str(), i).map_err(InvalidRequest::Path)?;
                Some(i.as_str())
            } else {
                None
            };
            (c.as_str(), istio_path)
        }
    })
}

/// Steps 2-5: the two-identity binding (source first), then a required peer identity. The
/// global switch applies to known source workloads; a PeerAuthentication STRICT destination
/// port to every source, as in Istio. `Some` is the refusal.
#[inline(always)] // a step of `decide`, split out for reading: no call in the hot path
fn bind(
    prog: &Program,
    req: &Request<'_>,
    src: Option<&CEndpoint>,
    dst: Option<&CEndpoint>,
    src_principal: &Principal<'_>,
    dst_principal: &Principal<'_>,
    generation: u64,
) -> Option<Decision> {
    if !bound(prog, src_principal, src) {
        return Some(Decision::pre_policy(Reason::IdentityMismatch, Some(Peer::Source), generation));
    }
    if !bound(prog, dst_principal, dst) {
        return Some(Decision::pre_policy(Reason::IdentityMismatch, Some(Peer::Destination), generation));
    }
    let ingress_ep = if req.direction != Direction::Egress { dst } else { None };
    let strict_missing = req.source.principal.is_none()
        && ingress_ep.is_some_and(|e| {
            (prog.require_peer_identity && src.is_some())
                || (req.protocol == proto::TCP
                    && e.mtls.mode_for(req.destination.port) == crate::model::MtlsMode::Strict)
        });
    strict_missing.then(|| Decision::pre_policy(Reason::MissingPeerIdentity, Some(Peer::Source), generation))
}

/// Step 6: the enforced walk, egress first; the first deny is reported.
#[inline(always)] // a step of `decide`, split out for reading: no call in the hot path
fn sides<R: Recorder>(
    prog: &Program,
    ctx: &Ctx<'_, '_>,
    egress_ep: Option<&CEndpoint>,
    ingress_ep: Option<&CEndpoint>,
    rec: &mut R,
) -> Option<(Side, SideOut)> {
    let mut outcome: Option<(Side, SideOut)> = None;
    if let Some(ep) = egress_ep {
        outcome = Some((Side::Egress, side(prog, ctx, ep, ctx.src.endpoint_index, Side::Egress, rec)));
    }
    let egress_denied = outcome.as_ref().is_some_and(|(_, o)| o.action == Action::Deny);
    if !egress_denied && let Some(ep) = ingress_ep {
        outcome = Some((Side::Ingress, side(prog, ctx, ep, ctx.dst.endpoint_index, Side::Ingress, rec)));
    }
    outcome
}

/// One side's enforced outcome: the profile when no policy applies, else the tier walk.
#[inline(always)] // a step of `decide`, split out for reading: no call in the hot path
fn side<R: Recorder>(prog: &Program, ctx: &Ctx<'_, '_>, ep: &CEndpoint, idx: u32, side: Side, rec: &mut R) -> SideOut {
    rec.side(side);
    if no_policies(prog, ep, side) { profile(prog, idx, side, rec) } else { walk(prog, ctx, ep, idx, side, false, rec) }
}

/// Step 7: the staged verdict, only when a staged policy changes the list of an evaluated
/// side.
#[inline(always)] // a step of `decide`, split out for reading: no call in the hot path
fn staged(
    prog: &Program,
    ctx: &Ctx<'_, '_>,
    egress_ep: Option<&CEndpoint>,
    ingress_ep: Option<&CEndpoint>,
) -> Option<Action> {
    let differs = |ep: Option<&CEndpoint>, slot: usize| {
        ep.and_then(|e| e.lists.get(slot)).is_some_and(|(enforced, pending)| enforced != pending)
    };
    (differs(egress_ep, 1) || differs(ingress_ep, 0)).then(|| {
        let mut none = crate::trace::NoTrace;
        let eg = egress_ep.map(|ep| walk(prog, ctx, ep, ctx.src.endpoint_index, Side::Egress, true, &mut none).action);
        if eg == Some(Action::Deny) {
            return Action::Deny;
        }
        let ig =
            ingress_ep.map(|ep| walk(prog, ctx, ep, ctx.dst.endpoint_index, Side::Ingress, true, &mut none).action);
        ig.or(eg).unwrap_or(Action::Allow)
    })
}

/// The outcome of a side no policy applies to: the profile's action.
#[inline]
fn profile<R: Recorder>(prog: &Program, ep_index: u32, side: Side, rec: &mut R) -> SideOut {
    let action = prog.no_policy_action;
    let hit = if action == Action::Allow { HitAction::Allow } else { HitAction::Deny };
    rec.hit(side, Hit { source: HitSource::Profile { endpoint: ep_index }, action: hit, rule: 0 });
    SideOut { action, reason: Reason::NoPolicy, tier: None, policy: None, rule: None, l7_pending: false }
}

/// Whether the enforced list of `ep` on `side` has no policy.
#[inline]
fn no_policies(prog: &Program, ep: &CEndpoint, side: Side) -> bool {
    let slot = usize::from(side == Side::Egress);
    let list_id = ep.lists.get(slot).map_or(0, |&(e, _)| e);
    prog.lists.get(list_id as usize).is_none_or(|l| l.segments.is_empty())
}

fn walk<R: Recorder>(
    prog: &Program,
    ctx: &Ctx<'_, '_>,
    ep: &CEndpoint,
    ep_index: u32,
    side: Side,
    pending: bool,
    rec: &mut R,
) -> SideOut {
    let slot = usize::from(side == Side::Egress);
    let list_id = ep.lists.get(slot).map(|&(e, p)| if pending { p } else { e }).unwrap_or(0);
    // The Istio ALLOW rule that let this ingress walk through the mesh layer, if any.
    let mut mesh: Option<(TierId, PolicyId, i32)> = None;
    if let Some(list) = prog.lists.get(list_id as usize).filter(|l| !l.segments.is_empty()) {
        let indexes = prog.seg_index.get(list_id as usize).and_then(|s| s.get(slot));
        for (si, seg) in list.segments.iter().enumerate() {
            // Istio's layer is a sidecar's: it sees TCP only.
            if ctx.req.protocol != proto::TCP && prog.istio_tiers.get(seg.tier as usize) == Some(&true) {
                continue;
            }
            let mut step = Step::Next;
            match indexes.and_then(|x| x.get(si)).copied().flatten().and_then(|i| prog.indexes.get(i as usize)) {
                // Only the rules that may match this request's keys, in segment order.
                Some(index) => index.for_candidates(&ctx.keys(), |pp, ri| {
                    let Some(&pid) = seg.policies.get(pp as usize) else { return false };
                    let Some(rule) = prog.policies.get(pid as usize).and_then(|p| p.rules(side).get(ri as usize))
                    else {
                        return false;
                    };
                    step = visit_rule(prog, ctx, rule, seg.tier, pid, ri as i32, side, rec);
                    !matches!(step, Step::Next)
                }),
                None => {
                    'policies: for &pid in seg.policies.iter() {
                        let Some(pol) = prog.policies.get(pid as usize) else { continue };
                        for (ri, rule) in pol.rules(side).iter().enumerate() {
                            step = visit_rule(prog, ctx, rule, seg.tier, pid, ri as i32, side, rec);
                            if !matches!(step, Step::Next) {
                                break 'policies;
                            }
                        }
                    }
                }
            }
            let passed = match step {
                Step::Done(out) => return out,
                Step::Pass(pid, ri) => {
                    if side == Side::Ingress && prog.istio_allow_tier == Some(seg.tier) {
                        mesh = Some((seg.tier, pid, ri));
                    }
                    true
                }
                Step::Next => false,
            };
            if passed {
                continue;
            }
            let Some(&first) = seg.policies.first() else {
                continue;
            };
            let source = HitSource::Policy { tier: seg.tier, policy: first };
            match prog.tiers.get(seg.tier as usize) {
                Some(TierDefault::Pass) => rec.hit(side, Hit { source, action: HitAction::Pass, rule: -1 }),
                _ => {
                    rec.hit(side, Hit { source, action: HitAction::Deny, rule: -1 });
                    return SideOut {
                        action: Action::Deny,
                        reason: Reason::EndOfTier,
                        tier: Some(seg.tier),
                        policy: Some(first),
                        rule: Some(-1),
                        l7_pending: false,
                    };
                }
            }
        }
    }
    let out = profile(prog, ep_index, side, rec);
    named_by_mesh(out, mesh)
}

/// A profile allow after Istio's ALLOW layer let the request through names that ALLOW rule
/// (`tier`, `policy`, `rule`; the reason stays `no_policy`: no tier decided).
#[inline]
fn named_by_mesh(out: SideOut, mesh: Option<(TierId, PolicyId, i32)>) -> SideOut {
    match mesh {
        Some((tier, policy, rule)) if out.action == Action::Allow => {
            SideOut { tier: Some(tier), policy: Some(policy), rule: Some(rule), ..out }
        }
        _ => out,
    }
}

/// What one rule does to a segment's walk.
enum Step {
    /// Not matched, or a `Log`: the next rule.
    Next,
    /// `Pass` by rule `.1` of policy `.0`: the next tier.
    Pass(PolicyId, i32),
    /// `Allow` or `Deny`: the side's verdict.
    Done(SideOut),
}

/// Evaluates one rule and records its hit.
#[allow(clippy::too_many_arguments)]
#[inline]
fn visit_rule<R: Recorder>(
    prog: &Program,
    ctx: &Ctx<'_, '_>,
    rule: &CRule,
    tier: TierId,
    pid: PolicyId,
    ri: i32,
    side: Side,
    rec: &mut R,
) -> Step {
    let Some(l7) = rule_matches(prog, ctx, rule) else {
        return Step::Next;
    };
    let source = HitSource::Policy { tier, policy: pid };
    let out = |action| SideOut {
        action,
        reason: Reason::Rule,
        tier: Some(tier),
        policy: Some(pid),
        rule: Some(ri),
        l7_pending: l7,
    };
    match rule.action {
        RuleAction::Log => {
            rec.hit(side, Hit { source, action: HitAction::Log, rule: ri });
            Step::Next
        }
        RuleAction::Allow => {
            rec.hit(side, Hit { source, action: HitAction::Allow, rule: ri });
            Step::Done(out(Action::Allow))
        }
        RuleAction::Deny => {
            rec.hit(side, Hit { source, action: HitAction::Deny, rule: ri });
            Step::Done(out(Action::Deny))
        }
        RuleAction::Pass => {
            rec.hit(side, Hit { source, action: HitAction::Pass, rule: ri });
            Step::Pass(pid, ri)
        }
    }
}

/// `None` when the rule does not match; `Some(l7_pending)` when it does.
#[inline]
fn rule_matches(prog: &Program, ctx: &Ctx<'_, '_>, r: &CRule) -> Option<bool> {
    if r.matches_all {
        return Some(false);
    }
    let req = ctx.req;
    if let Some(i) = &r.istio {
        let allow_layer = r.action == RuleAction::Pass;
        let hit = match &i.simple {
            Some(s) => s.matches(&ctx.istio, ctx.principal_id, i.uses_http, allow_layer),
            None => super::istio::matches(&ctx.istio, &i.rule, i.uses_http, allow_layer),
        };
        return hit.then_some(false);
    }
    // On a missing attribute, only a Deny rule's criterion holds.
    let missing_holds = r.action == RuleAction::Deny;
    if r.ip_version != 0 && r.ip_version != ctx.version {
        return None;
    }
    if r.protocol.is_some_and(|p| p != req.protocol) || r.not_protocol == Some(req.protocol) {
        return None;
    }
    if let Some(m) = &r.icmp {
        match icmp_tri(m, req) {
            Some(true) => {}
            Some(false) => return None,
            None if missing_holds => {}
            None => return None,
        }
    }
    if let Some(m) = &r.not_icmp {
        match icmp_tri(m, req) {
            Some(false) => {}
            Some(true) => return None,
            None if missing_holds => {}
            None => return None,
        }
    }
    if !r.src.is_any() && !entity(prog, &r.src, &ctx.src, req.source.port, req.protocol, missing_holds) {
        return None;
    }
    if !r.dst.is_any() && !entity(prog, &r.dst, &ctx.dst, req.destination.port, req.protocol, missing_holds) {
        return None;
    }
    match &r.http {
        None => Some(false),
        Some(h) => match &req.http {
            None => Some(true),
            Some(http) => http_matches(h, http.method, ctx.path).then_some(false),
        },
    }
}

#[inline]
fn icmp_tri(m: &IcmpMatch, req: &Request<'_>) -> Option<bool> {
    let i = req.icmp?;
    if i.icmp_type != m.icmp_type {
        return Some(false);
    }
    match m.code {
        None => Some(true),
        Some(c) => i.code.map(|x| x == c),
    }
}

fn entity(
    prog: &Program,
    e: &CEntity,
    info: &IpInfo<'_>,
    port: Option<u16>,
    protocol: u8,
    missing_holds: bool,
) -> bool {
    if e.selector != NO_SELECTOR && !prog.selects(e.selector, info) {
        return false;
    }
    if e.not_selector != NO_SELECTOR && prog.selects(e.not_selector, info) {
        return false;
    }
    match &e.extra {
        None => true,
        Some(x) => entity_extra(prog, e, x, info, port, protocol, missing_holds),
    }
}

fn entity_extra(
    prog: &Program,
    e: &CEntity,
    x: &super::EntityExtra,
    info: &IpInfo<'_>,
    port: Option<u16>,
    protocol: u8,
    missing_holds: bool,
) -> bool {
    if let Some(n) = &x.nets
        && !n.contains(info.key)
    {
        return false;
    }
    if let Some(n) = &x.not_nets
        && n.contains(info.key)
    {
        return false;
    }
    if let Some(s) = &x.services
        && !s.matches(info.ip, protocol, port)
    {
        return false;
    }
    let has_ports = proto::has_ports(protocol);
    let port_in = |ps: &super::PortSet, p: u16| {
        ps.numeric_contains(p)
            || (!ps.named.is_empty()
                && info.endpoint.is_some_and(|ep| {
                    ep.named_ports.iter().any(|&(n, pr, pt)| pr == protocol && pt == p && ps.named.contains(&n))
                        && (e.selector == NO_SELECTOR
                            || prog.selectors.get(e.selector as usize).is_some_and(|set| set.contains(ep.identity)))
                }))
    };
    if let Some(ps) = &x.ports {
        let ok = match (has_ports, port) {
            (false, _) => false,
            (true, None) => missing_holds,
            (true, Some(p)) => port_in(ps, p),
        };
        if !ok {
            return false;
        }
    }
    if let Some(ps) = &x.not_ports {
        let ok = match (has_ports, port) {
            (false, _) => true,
            (true, None) => missing_holds,
            (true, Some(p)) => !port_in(ps, p),
        };
        if !ok {
            return false;
        }
    }
    true
}

#[inline]
fn http_matches(h: &CHttp, method: &str, path: &str) -> bool {
    if !h.any_method && !h.methods.iter().any(|m| **m == *method) {
        return false;
    }
    h.any_path
        || h.exact.binary_search_by(|x| (**x).cmp(path)).is_ok()
        || h.prefixes.iter().any(|p| http_path::calico_prefix_matches(p, path))
}
