//! Istio rule matching for the compiled engine. Written apart from the reference's: no
//! allocation (wildcards matched in place, templates walked over the path text, hosts
//! compared case-insensitively without lower-casing), principal facts derived once per
//! request.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{
    CondValues, IstioCondition, IstioOperation, IstioPath, IstioRule, IstioSource, StrMatch, TemplateSegment, WhenKey,
};
use crate::request::{Request, proto};

/// Request facts the Istio matchers read, computed once per decision.
pub(crate) struct IstioFacts<'r> {
    pub req: &'r Request<'r>,
    /// The full SPIFFE URI of the source, if presented.
    pub uri: Option<&'r str>,
    /// The URI without `spiffe://` (Istio's principal string).
    pub principal: Option<&'r str>,
    pub src_ip: IpAddr,
    pub remote_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// Destination port, for protocols that have ports.
    pub port: Option<u16>,
    /// Istio-normalised path (query stripped), when the request has HTTP.
    pub path: Option<&'r str>,
    pub has_http: bool,
}

#[inline]
fn sm(m: &StrMatch, v: &str) -> bool {
    match m {
        StrMatch::Exact(x) => v == x,
        StrMatch::Prefix(p) => v.starts_with(p.as_str()),
        StrMatch::Suffix(s) => v.ends_with(s.as_str()),
        StrMatch::Presence => !v.is_empty(),
    }
}

/// Case-insensitive match; the pattern is already lower case.
fn sm_ci(m: &StrMatch, v: &str) -> bool {
    let (v, n) = (v.as_bytes(), |p: &str| p.len());
    match m {
        StrMatch::Exact(x) => v.eq_ignore_ascii_case(x.as_bytes()),
        StrMatch::Prefix(p) => v.len() >= n(p) && v.get(..n(p)).is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes())),
        StrMatch::Suffix(s) => {
            v.len() >= n(s) && v.get(v.len() - n(s)..).is_some_and(|t| t.eq_ignore_ascii_case(s.as_bytes()))
        }
        StrMatch::Presence => !v.is_empty(),
    }
}

/// Wildcard match (`*` = any run) by the two-pointer method, in place.
fn wild(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if Some(&c) == s.get(si) => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// `.*/ns/<pattern>/.*` over the whole URI.
fn ns_match(uri: &str, pattern: &str) -> bool {
    let b = uri.as_bytes();
    let mut i = 0;
    while let Some(off) = b.get(i..).and_then(|r| r.windows(4).position(|w| w == b"/ns/")) {
        let start = i + off + 4;
        let rest = b.get(start..).unwrap_or_default();
        for (k, &c) in rest.iter().enumerate() {
            if c == b'/' && rest.get(..k).is_some_and(|seg| wild(pattern.as_bytes(), seg)) {
                return true;
            }
        }
        i = i + off + 1;
    }
    false
}

/// `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` over the whole URI.
fn sa_match(uri: &str, ns: &str, sa: &str) -> bool {
    let Some(body) = uri.strip_prefix("spiffe://") else { return false };
    let b = body.as_bytes();
    let (nsb, sab) = (ns.as_bytes(), sa.as_bytes());
    // Every place where `/ns/<ns>/` starts, after a non-empty trust domain.
    for i in 1..b.len() {
        let Some(r) = b.get(i..) else { break };
        if !(r.starts_with(b"/ns/") && r.get(4..4 + nsb.len()) == Some(nsb) && r.get(4 + nsb.len()) == Some(&b'/')) {
            continue;
        }
        let rest = r.get(5 + nsb.len()..).unwrap_or_default();
        // `sa/<sa>` at the start of `rest`, or after a '/' that ends a non-empty prefix.
        for j in 0..=rest.len() {
            if j != 0 && !(j >= 2 && rest.get(j - 1) == Some(&b'/')) {
                continue;
            }
            let Some(t) = rest.get(j..) else { continue };
            if t.starts_with(b"sa/") && t.get(3..3 + sab.len()) == Some(sab) {
                let tail = t.get(3 + sab.len()..).unwrap_or_default();
                if tail.is_empty() || (tail.first() == Some(&b'/') && tail.len() > 1) {
                    return true;
                }
            }
        }
    }
    false
}

fn td_match(uri: &str, pattern: &str) -> bool {
    let Some(body) = uri.strip_prefix("spiffe://") else { return false };
    if pattern == "*" {
        return true;
    }
    match body.find('/') {
        Some(end) => body.get(..end).is_some_and(|td| wild(pattern.as_bytes(), td.as_bytes())),
        None => false,
    }
}

fn nets(list: &[IpNet], ip: IpAddr) -> bool {
    list.iter().any(|n| n.contains(&ip))
}

/// Walks a template over the path segments (text after the leading '/').
fn template(t: &[TemplateSegment], rest: Option<&str>) -> bool {
    let Some((first, more)) = t.split_first() else { return rest.is_none() };
    let Some(rest) = rest else { return false };
    let (seg, after) = match rest.split_once('/') {
        Some((s, a)) => (s, Some(a)),
        None => (rest, None),
    };
    match first {
        TemplateSegment::Literal(l) => seg == l && template(more, after),
        TemplateSegment::One => !seg.is_empty() && template(more, after),
        TemplateSegment::Many => {
            // One or more segments: consume this one, then try every later cut.
            let mut next = after;
            loop {
                if template(more, next) {
                    return true;
                }
                match next {
                    None => return false,
                    Some(n) => next = n.split_once('/').map(|(_, a)| a),
                }
            }
        }
    }
}

fn path_ok(p: &IstioPath, path: &str) -> bool {
    match p {
        IstioPath::Str(m) => sm(m, path),
        IstioPath::Template(t) => template(t, Some(path.strip_prefix('/').unwrap_or(path))),
    }
}

fn source(f: &IstioFacts<'_>, s: &IstioSource, drop_http: bool) -> bool {
    let p = f.principal;
    let u = f.uri;
    let auth = if f.has_http { f.req.auth.as_ref().and_then(|a| a.principal) } else { None };
    let any_p = |ms: &[StrMatch]| p.is_some_and(|p| ms.iter().any(|m| sm(m, p)));
    let any_auth = |ms: &[StrMatch]| auth.is_some_and(|a| ms.iter().any(|m| sm(m, a)));
    let any_ns = |ps: &[String]| u.is_some_and(|u| ps.iter().any(|x| ns_match(u, x)));
    let any_sa = |ps: &[(String, String)]| u.is_some_and(|u| ps.iter().any(|(n, a)| sa_match(u, n, a)));
    let any_td = |ps: &[String]| u.is_some_and(|u| ps.iter().any(|x| td_match(u, x)));
    (s.principals.is_empty() || any_p(&s.principals))
        && (s.not_principals.is_empty() || !any_p(&s.not_principals))
        && (drop_http || s.request_principals.is_empty() || any_auth(&s.request_principals))
        && (drop_http || s.not_request_principals.is_empty() || !any_auth(&s.not_request_principals))
        && (s.namespaces.is_empty() || any_ns(&s.namespaces))
        && (s.not_namespaces.is_empty() || !any_ns(&s.not_namespaces))
        && (s.service_accounts.is_empty() || any_sa(&s.service_accounts))
        && (s.not_service_accounts.is_empty() || !any_sa(&s.not_service_accounts))
        && (s.ip_blocks.is_empty() || nets(&s.ip_blocks, f.src_ip))
        && (s.not_ip_blocks.is_empty() || !nets(&s.not_ip_blocks, f.src_ip))
        && (s.remote_ip_blocks.is_empty() || nets(&s.remote_ip_blocks, f.remote_ip))
        && (s.not_remote_ip_blocks.is_empty() || !nets(&s.not_remote_ip_blocks, f.remote_ip))
        && (s.trust_domains.is_empty() || any_td(&s.trust_domains))
        && (s.not_trust_domains.is_empty() || !any_td(&s.not_trust_domains))
}

fn operation(f: &IstioFacts<'_>, o: &IstioOperation, drop_http: bool) -> bool {
    let http = f.req.http.as_ref();
    let host = http.and_then(|h| h.host);
    let method = http.map(|h| h.method);
    let any_host = |ms: &[StrMatch]| host.is_some_and(|h| ms.iter().any(|m| sm_ci(m, h)));
    let any_method = |ms: &[StrMatch]| method.is_some_and(|v| ms.iter().any(|m| sm(m, v)));
    let any_path = |ps: &[IstioPath]| f.path.is_some_and(|v| ps.iter().any(|p| path_ok(p, v)));
    let port_in = |ps: &[u16]| f.port.is_some_and(|p| ps.contains(&p));
    (o.ports.is_empty() || port_in(&o.ports))
        && (o.not_ports.is_empty() || !port_in(&o.not_ports))
        && (drop_http
            || ((o.hosts.is_empty() || any_host(&o.hosts))
                && (o.not_hosts.is_empty() || !any_host(&o.not_hosts))
                && (o.methods.is_empty() || any_method(&o.methods))
                && (o.not_methods.is_empty() || !any_method(&o.not_methods))
                && (o.paths.is_empty() || any_path(&o.paths))
                && (o.not_paths.is_empty() || !any_path(&o.not_paths))))
}

fn claim_any(claims: Option<&serde_json::Value>, path: &[String], ms: &[StrMatch]) -> bool {
    let mut v = claims;
    for p in path {
        v = v.and_then(|x| x.get(p.as_str()));
    }
    match v {
        Some(serde_json::Value::String(s)) => ms.iter().any(|m| sm(m, s)),
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str()).any(|s| ms.iter().any(|m| sm(m, s))),
        _ => false,
    }
}

fn values_match(f: &IstioFacts<'_>, key: &WhenKey, vals: &CondValues) -> bool {
    let auth = if f.has_http { f.req.auth.as_ref() } else { None };
    let u = f.uri;
    match (key, vals) {
        (WhenKey::Header(name), CondValues::Str(ms)) => f
            .req
            .http
            .as_ref()
            .and_then(|h| h.headers.get(name))
            .is_some_and(|v| ms.iter().any(|m| *m == StrMatch::Presence || sm(m, v))),
        (WhenKey::SourceIp, CondValues::Nets(n)) => nets(n, f.src_ip),
        (WhenKey::RemoteIp, CondValues::Nets(n)) => nets(n, f.remote_ip),
        (WhenKey::DestinationIp, CondValues::Nets(n)) => nets(n, f.dst_ip),
        (WhenKey::DestinationPort, CondValues::Ports(ps)) => f.port.is_some_and(|p| ps.contains(&p)),
        (WhenKey::SourceNamespace, CondValues::Namespaces(ps)) => u.is_some_and(|u| ps.iter().any(|x| ns_match(u, x))),
        (WhenKey::SourceServiceAccount, CondValues::ServiceAccounts(ps)) => {
            u.is_some_and(|u| ps.iter().any(|(n, a)| sa_match(u, n, a)))
        }
        (WhenKey::SourceTrustDomain, CondValues::TrustDomains(ps)) => {
            u.is_some_and(|u| ps.iter().any(|x| td_match(u, x)))
        }
        (WhenKey::SourcePrincipal, CondValues::Str(ms)) => f.principal.is_some_and(|p| ms.iter().any(|m| sm(m, p))),
        (WhenKey::AuthPrincipal, CondValues::Str(ms)) => {
            auth.and_then(|a| a.principal).is_some_and(|p| ms.iter().any(|m| sm(m, p)))
        }
        (WhenKey::AuthPresenter, CondValues::Str(ms)) => {
            auth.and_then(|a| a.presenter).is_some_and(|p| ms.iter().any(|m| sm(m, p)))
        }
        (WhenKey::AuthAudiences, CondValues::Str(ms)) => {
            auth.is_some_and(|a| a.audiences.iter().any(|x| ms.iter().any(|m| sm(m, x))))
        }
        (WhenKey::AuthClaim(path), CondValues::Str(ms)) => claim_any(auth.and_then(|a| a.claims), path, ms),
        (WhenKey::Sni, CondValues::Str(ms)) => f.req.sni.is_some_and(|s| ms.iter().any(|m| sm(m, s))),
        _ => false,
    }
}

fn condition(f: &IstioFacts<'_>, c: &IstioCondition, drop_http: bool) -> bool {
    if drop_http && c.key.is_http() {
        return true;
    }
    (c.values.is_empty() || values_match(f, &c.key, &c.values))
        && (c.not_values.is_empty() || !values_match(f, &c.key, &c.not_values))
}

/// Whether a compiled Istio rule matches. `allow_layer` is true for ALLOW rules (which a
/// request without HTTP attributes cannot meet when they need them).
pub(crate) fn matches(f: &IstioFacts<'_>, r: &IstioRule, uses_http: bool, allow_layer: bool) -> bool {
    if !f.has_http && allow_layer && uses_http {
        return false;
    }
    let drop_http = !f.has_http;
    (r.from.is_empty() || r.from.iter().any(|s| source(f, s, drop_http)))
        && (r.to.is_empty() || r.to.iter().any(|o| operation(f, o, drop_http)))
        && r.when.iter().all(|c| condition(f, c, drop_http))
}

/// An Istio rule in its most common shape: at most one source naming only exact
/// principals, at most one operation naming only ports, exact methods and string paths, no
/// conditions. Principals are compared as interned ids, methods and paths without the
/// general matcher's field-by-field walk. Same semantics as [`matches`].
#[derive(Debug)]
pub(crate) struct SimpleRule {
    /// Interned principal ids; `None`: any source.
    principals: Option<Box<[u32]>>,
    ports: Box<[u16]>,
    methods: Box<[Box<str>]>,
    paths: Box<[StrMatch]>,
}

impl SimpleRule {
    /// The simple form of `r`, interning its principals, or `None` when `r` needs the
    /// general matcher.
    pub fn new(r: &IstioRule, ids: &mut super::principal_index::PrincipalIds) -> Option<SimpleRule> {
        if !r.when.is_empty() || r.from.len() > 1 || r.to.len() > 1 {
            return None;
        }
        let principals = match r.from.first() {
            None => None,
            Some(s) => {
                let only_principals = IstioSource { principals: Vec::new(), ..s.clone() } == IstioSource::default();
                if !only_principals || s.principals.is_empty() {
                    return None;
                }
                let mut out = Vec::with_capacity(s.principals.len());
                for m in &s.principals {
                    let StrMatch::Exact(p) = m else { return None };
                    out.push(ids.intern(p));
                }
                Some(out.into_boxed_slice())
            }
        };
        let empty = IstioOperation::default();
        let o = r.to.first().unwrap_or(&empty);
        let rest = IstioOperation { ports: Vec::new(), methods: Vec::new(), paths: Vec::new(), ..o.clone() };
        if rest != IstioOperation::default() {
            return None;
        }
        let mut methods = Vec::with_capacity(o.methods.len());
        for m in &o.methods {
            let StrMatch::Exact(x) = m else { return None };
            methods.push(x.as_str().into());
        }
        let mut paths = Vec::with_capacity(o.paths.len());
        for p in &o.paths {
            let IstioPath::Str(m) = p else { return None };
            paths.push(m.clone());
        }
        Some(SimpleRule {
            principals,
            ports: o.ports.clone().into_boxed_slice(),
            methods: methods.into_boxed_slice(),
            paths: paths.into_boxed_slice(),
        })
    }

    /// Whether the rule matches; `principal` is the request principal's interned id.
    #[inline]
    pub fn matches(&self, f: &IstioFacts<'_>, principal: Option<u32>, uses_http: bool, allow_layer: bool) -> bool {
        if !f.has_http && allow_layer && uses_http {
            return false;
        }
        if let Some(ps) = &self.principals
            && !principal.is_some_and(|p| ps.contains(&p))
        {
            return false;
        }
        if !self.ports.is_empty() && !f.port.is_some_and(|p| self.ports.contains(&p)) {
            return false;
        }
        let Some(http) = f.req.http.as_ref().filter(|_| f.has_http) else {
            // Without HTTP attributes, methods and paths do not apply (DENY and AUDIT).
            return true;
        };
        (self.methods.is_empty() || self.methods.iter().any(|m| **m == *http.method))
            && (self.paths.is_empty() || f.path.is_some_and(|v| self.paths.iter().any(|m| sm(m, v))))
    }
}

/// Whether `proto` carries ports (Istio's `ports` never match otherwise).
pub(crate) fn port_of(req: &Request<'_>) -> Option<u16> {
    if proto::has_ports(req.protocol) { req.destination.port } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wild(b"a*c", b"abbbc"));
        assert!(!wild(b"a*c", b"abbb"));
        assert!(wild(b"*", b""));
        assert!(wild(b"*x*", b"aaxbb"));
    }

    #[test]
    fn namespace_and_service_account() {
        assert!(ns_match("spiffe://td/ns/shop/sa/x", "shop"));
        assert!(ns_match("spiffe://td/ns/shop/sa/x", "sh*"));
        assert!(!ns_match("spiffe://td/ns/shop/sa/x", "pay"));
        assert!(sa_match("spiffe://td/ns/a/sa/b", "a", "b"));
        assert!(sa_match("spiffe://td/ns/a/x/sa/b/y", "a", "b"));
        assert!(!sa_match("spiffe://td/ns/a/sa/b/", "a", "b"));
    }
}
