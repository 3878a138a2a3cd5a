//! Istio rule matching for the reference evaluator: the obvious reading of Istio's rules,
//! including "ALLOW narrows, DENY widens" for requests without HTTP attributes.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::http_path::{self, PathBuffer};
use crate::model::{
    CondValues, IstioCondition, IstioOperation, IstioPath, IstioRule, IstioSource, RuleAction, StrMatch,
    TemplateSegment, WhenKey,
};
use crate::net::canonical_ip;
use crate::request::{Request, proto};

/// What the reference needs from the request.
pub(super) struct IstioInput<'a> {
    pub req: &'a Request<'a>,
    /// The Istio-normalised path, when the request has HTTP.
    pub path: Option<String>,
}

impl<'a> IstioInput<'a> {
    pub fn new(req: &'a Request<'a>, decoded: &PathBuffer) -> Self {
        let path = req.http.as_ref().map(|h| {
            if http_path::is_plain(h.path) {
                h.path.to_string()
            } else {
                let mut out = Box::<PathBuffer>::default();
                match http_path::clean_istio(decoded.as_str(), &mut out) {
                    Ok(()) => out.as_str().to_string(),
                    Err(_) => String::new(),
                }
            }
        });
        IstioInput { req, path }
    }
}

fn str_match(m: &StrMatch, v: &str) -> bool {
    match m {
        StrMatch::Exact(x) => v == x,
        StrMatch::Prefix(p) => v.starts_with(p.as_str()),
        StrMatch::Suffix(s) => v.ends_with(s.as_str()),
        StrMatch::Presence => !v.is_empty(),
    }
}

/// `*` matches any run of characters (Istio's namespace values become such regexes).
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else { return false };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

fn in_nets(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&canonical_ip(ip)))
}

/// `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?`, matched in full.
fn service_account_matches(uri: &str, ns: &str, sa: &str) -> bool {
    let Some(after_scheme) = uri.strip_prefix("spiffe://") else { return false };
    let marker = format!("/ns/{ns}/");
    let mut from = 1; // the trust domain is at least one character
    while let Some(pos) = after_scheme.get(from..).and_then(|s| s.find(&marker)) {
        let start = from + pos;
        let rest = &after_scheme[start + marker.len()..];
        // (.+/|) then `sa/<sa>` then end or `/.+`
        let target = format!("sa/{sa}");
        for (j, _) in rest.char_indices().chain(std::iter::once((rest.len(), ' '))) {
            let prefix_ok = j == 0 || (j >= 2 && rest[..j].ends_with('/'));
            if prefix_ok
                && let Some(tail) = rest[j..].strip_prefix(target.as_str())
                && (tail.is_empty() || (tail.starts_with('/') && tail.len() > 1))
            {
                return true;
            }
        }
        from = start + 1;
    }
    false
}

fn trust_domain_matches(uri: &str, pattern: &str) -> bool {
    let Some(rest) = uri.strip_prefix("spiffe://") else { return false };
    if pattern == "*" {
        return true;
    }
    match rest.split_once('/') {
        Some((td, _)) => glob(pattern, td) && (pattern.contains('*') || td == pattern),
        None => false,
    }
}

fn namespace_matches(uri: &str, pattern: &str) -> bool {
    glob(&format!("*/ns/{pattern}/*"), uri)
}

/// OR over a principal-based field; a plaintext request matches none.
fn any_principal<T>(principal: Option<&str>, vals: &[T], f: impl Fn(&str, &T) -> bool) -> bool {
    principal.is_some_and(|p| vals.iter().any(|v| f(p, v)))
}

fn source_matches(input: &IstioInput<'_>, s: &IstioSource, drop_http: bool) -> bool {
    let req = input.req;
    let uri = req.source.principal;
    let istio = uri.map(|u| u.strip_prefix("spiffe://").unwrap_or(u));
    let remote = req.remote_ip.unwrap_or(req.source.ip);
    let auth_principal = if req.http.is_some() { req.auth.as_ref().and_then(|a| a.principal) } else { None };
    let checks: [(bool, bool); 14] = [
        (s.principals.is_empty(), any_principal(istio, &s.principals, |p, m| str_match(m, p))),
        (s.not_principals.is_empty(), !any_principal(istio, &s.not_principals, |p, m| str_match(m, p))),
        (
            s.request_principals.is_empty() || drop_http,
            auth_principal.is_some_and(|p| s.request_principals.iter().any(|m| str_match(m, p))),
        ),
        (
            s.not_request_principals.is_empty() || drop_http,
            !auth_principal.is_some_and(|p| s.not_request_principals.iter().any(|m| str_match(m, p))),
        ),
        (s.namespaces.is_empty(), any_principal(uri, &s.namespaces, |u, n| namespace_matches(u, n))),
        (s.not_namespaces.is_empty(), !any_principal(uri, &s.not_namespaces, |u, n| namespace_matches(u, n))),
        (
            s.service_accounts.is_empty(),
            any_principal(uri, &s.service_accounts, |u, (n, a)| service_account_matches(u, n, a)),
        ),
        (
            s.not_service_accounts.is_empty(),
            !any_principal(uri, &s.not_service_accounts, |u, (n, a)| service_account_matches(u, n, a)),
        ),
        (s.ip_blocks.is_empty(), in_nets(&s.ip_blocks, req.source.ip)),
        (s.not_ip_blocks.is_empty(), !in_nets(&s.not_ip_blocks, req.source.ip)),
        (s.remote_ip_blocks.is_empty(), in_nets(&s.remote_ip_blocks, remote)),
        (s.not_remote_ip_blocks.is_empty(), !in_nets(&s.not_remote_ip_blocks, remote)),
        (s.trust_domains.is_empty(), any_principal(uri, &s.trust_domains, |u, t| trust_domain_matches(u, t))),
        (s.not_trust_domains.is_empty(), !any_principal(uri, &s.not_trust_domains, |u, t| trust_domain_matches(u, t))),
    ];
    checks.iter().all(|&(skip, ok)| skip || ok)
}

fn template_matches(t: &[TemplateSegment], segs: &[&str]) -> bool {
    match t.split_first() {
        None => segs.is_empty(),
        Some((TemplateSegment::Literal(l), rest)) => {
            segs.first().is_some_and(|s| s == l) && template_matches(rest, segs.get(1..).unwrap_or_default())
        }
        Some((TemplateSegment::One, rest)) => {
            segs.first().is_some_and(|s| !s.is_empty()) && template_matches(rest, segs.get(1..).unwrap_or_default())
        }
        Some((TemplateSegment::Many, rest)) => {
            (1..=segs.len()).any(|k| template_matches(rest, segs.get(k..).unwrap_or_default()))
        }
    }
}

fn path_matches(p: &IstioPath, path: &str) -> bool {
    match p {
        IstioPath::Str(m) => str_match(m, path),
        IstioPath::Template(t) => {
            let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
            template_matches(t, &segs)
        }
    }
}

fn operation_matches(input: &IstioInput<'_>, o: &IstioOperation, drop_http: bool) -> bool {
    let req = input.req;
    let port = if proto::has_ports(req.protocol) { req.destination.port } else { None };
    let http = req.http.as_ref();
    let host = http.and_then(|h| h.host).map(|h| h.to_ascii_lowercase());
    let method = http.map(|h| h.method);
    let path = input.path.as_deref();
    let any_str = |ms: &[StrMatch], v: Option<&str>| v.is_some_and(|v| ms.iter().any(|m| str_match(m, v)));
    let any_path = |ps: &[IstioPath]| path.is_some_and(|v| ps.iter().any(|p| path_matches(p, v)));
    let checks: [(bool, bool); 8] = [
        (o.hosts.is_empty() || drop_http, any_str(&o.hosts, host.as_deref())),
        (o.not_hosts.is_empty() || drop_http, !any_str(&o.not_hosts, host.as_deref())),
        (o.ports.is_empty(), port.is_some_and(|p| o.ports.contains(&p))),
        (o.not_ports.is_empty(), !port.is_some_and(|p| o.not_ports.contains(&p))),
        (o.methods.is_empty() || drop_http, any_str(&o.methods, method)),
        (o.not_methods.is_empty() || drop_http, !any_str(&o.not_methods, method)),
        (o.paths.is_empty() || drop_http, any_path(&o.paths)),
        (o.not_paths.is_empty() || drop_http, !any_path(&o.not_paths)),
    ];
    checks.iter().all(|&(skip, ok)| skip || ok)
}

fn claim<'v>(claims: Option<&'v serde_json::Value>, path: &[String]) -> Vec<&'v str> {
    let mut v = claims;
    for p in path {
        v = v.and_then(|x| x.get(p.as_str()));
    }
    match v {
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// Whether the condition's value list matches (used for `values` and, negated, `not_values`).
fn cond_any(input: &IstioInput<'_>, key: &WhenKey, vals: &CondValues) -> bool {
    let req = input.req;
    let uri = req.source.principal;
    let auth = if req.http.is_some() { req.auth.as_ref() } else { None };
    match (key, vals) {
        (WhenKey::Header(name), CondValues::Str(ms)) => {
            let v = req.http.as_ref().and_then(|h| h.headers.get(name));
            v.is_some_and(|v| ms.iter().any(|m| matches!(m, StrMatch::Presence) || str_match(m, v)))
        }
        (WhenKey::SourceIp, CondValues::Nets(n)) => in_nets(n, req.source.ip),
        (WhenKey::RemoteIp, CondValues::Nets(n)) => in_nets(n, req.remote_ip.unwrap_or(req.source.ip)),
        (WhenKey::DestinationIp, CondValues::Nets(n)) => in_nets(n, req.destination.ip),
        (WhenKey::DestinationPort, CondValues::Ports(ps)) => {
            proto::has_ports(req.protocol) && req.destination.port.is_some_and(|p| ps.contains(&p))
        }
        (WhenKey::SourceNamespace, CondValues::Namespaces(ns)) => {
            any_principal(uri, ns, |u, n| namespace_matches(u, n))
        }
        (WhenKey::SourceServiceAccount, CondValues::ServiceAccounts(sas)) => {
            any_principal(uri, sas, |u, (n, a)| service_account_matches(u, n, a))
        }
        (WhenKey::SourceTrustDomain, CondValues::TrustDomains(tds)) => {
            any_principal(uri, tds, |u, t| trust_domain_matches(u, t))
        }
        (WhenKey::SourcePrincipal, CondValues::Str(ms)) => {
            let istio = uri.map(|u| u.strip_prefix("spiffe://").unwrap_or(u));
            any_principal(istio, ms, |p, m| str_match(m, p))
        }
        (WhenKey::AuthPrincipal, CondValues::Str(ms)) => {
            auth.and_then(|a| a.principal).is_some_and(|p| ms.iter().any(|m| str_match(m, p)))
        }
        (WhenKey::AuthPresenter, CondValues::Str(ms)) => {
            auth.and_then(|a| a.presenter).is_some_and(|p| ms.iter().any(|m| str_match(m, p)))
        }
        (WhenKey::AuthAudiences, CondValues::Str(ms)) => {
            auth.is_some_and(|a| a.audiences.iter().any(|aud| ms.iter().any(|m| str_match(m, aud))))
        }
        (WhenKey::AuthClaim(path), CondValues::Str(ms)) => {
            claim(auth.and_then(|a| a.claims), path).iter().any(|v| ms.iter().any(|m| str_match(m, v)))
        }
        (WhenKey::Sni, CondValues::Str(ms)) => req.sni.is_some_and(|s| ms.iter().any(|m| str_match(m, s))),
        _ => false,
    }
}

fn condition_holds(input: &IstioInput<'_>, c: &IstioCondition, drop_http: bool) -> bool {
    if drop_http && c.key.is_http() {
        return true;
    }
    (c.values.is_empty() || cond_any(input, &c.key, &c.values))
        && (c.not_values.is_empty() || !cond_any(input, &c.key, &c.not_values))
}

/// Whether an Istio rule matches. Without HTTP attributes, an ALLOW rule (here a Pass rule)
/// that needs them is dropped, and a DENY or AUDIT rule drops only its HTTP fields.
pub(super) fn istio_matches(input: &IstioInput<'_>, r: &IstioRule, action: RuleAction) -> bool {
    let no_http = input.req.http.is_none();
    if no_http && action == RuleAction::Pass && r.uses_http() {
        return false;
    }
    let drop_http = no_http;
    (r.from.is_empty() || r.from.iter().any(|s| source_matches(input, s, drop_http)))
        && (r.to.is_empty() || r.to.iter().any(|o| operation_matches(input, o, drop_http)))
        && r.when.iter().all(|c| condition_holds(input, c, drop_http))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*/ns/a*/*", "spiffe://td/ns/abc/sa/x"));
        assert!(!glob("*/ns/a*/*", "spiffe://td/ns/b/sa/x"));
        assert!(glob("a*c", "abbbc") && !glob("a*c", "abbb"));
    }

    #[test]
    fn service_account_regex() {
        assert!(service_account_matches("spiffe://td/ns/a/sa/b", "a", "b"));
        assert!(service_account_matches("spiffe://td/ns/a/x/sa/b/y", "a", "b"));
        assert!(!service_account_matches("spiffe://td/ns/a/sa/bb", "a", "b"));
        assert!(!service_account_matches("spiffe://td/ns/aa/sa/b", "a", "b"));
        assert!(!service_account_matches("spiffe:///ns/a/sa/b", "a", "b"));
    }

    #[test]
    fn trust_domains() {
        assert!(trust_domain_matches("spiffe://cluster.local/ns/a/sa/b", "cluster.local"));
        assert!(!trust_domain_matches("spiffe://cluster.local/ns/a/sa/b", "cluster"));
        assert!(trust_domain_matches("spiffe://prod.example/ns/a/sa/b", "*.example"));
        assert!(trust_domain_matches("spiffe://x/ns/a/sa/b", "*"));
    }

    #[test]
    fn templates() {
        let t = |s: &str| {
            crate::model::IstioPath::Template(
                s.trim_start_matches('/')
                    .split('/')
                    .map(|x| match x {
                        "{*}" => TemplateSegment::One,
                        "{**}" => TemplateSegment::Many,
                        l => TemplateSegment::Literal(l.into()),
                    })
                    .collect(),
            )
        };
        let m = |pat: &str, path: &str| path_matches(&t(pat), path);
        assert!(m("/allow/admin/{**}", "/allow/admin/"));
        assert!(!m("/allow/admin/{**}", "/allow/admin"));
        assert!(m("/allow/admin/{**}", "/allow/admin/foo/temp.txt"));
        assert!(m("/foo/{*}/bar/{**}", "/foo/buzz/bar/bat"));
        assert!(!m("/foo/{*}/bar/{**}", "/foo/bar/bat.txt"));
        assert!(!m("/foo/{*}/bar/{**}", "/foo//bar/bat.txt"));
        assert!(m("/store/{**}/cart", "/store//cart"));
        assert!(!m("/store/{**}/cart", "/store/cart"));
        assert!(m("/store/{**}/cart", "/store/foo/bar/cart"));
    }
}
