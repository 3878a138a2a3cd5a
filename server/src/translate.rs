//! `CheckRequest` to Palisade [`Request`]: a type translation, nothing decided here.
//!
//! Where each field comes from (Envoy's `check_request_utils.cc` fills them the same way for
//! the HTTP and the network filter):
//!
//! * `source.ip` / `source.port`: `attributes.source.address`, which Envoy sets from the
//!   downstream **connection's** remote address (`connectionInfoProvider().remoteAddress()`)
//!   in both HTTP and network checks: the TCP peer, never a header (SPEC 9.3).
//! * `source.principal`: `attributes.source.principal`, the peer certificate's first URI SAN.
//!   When the certificate has no URI SAN, Envoy substitutes the first DNS SAN or the subject;
//!   such a value (it has no `://`) is not a workload identity and is dropped, so the request
//!   carries network identity only. Anything with `://` goes to the core, which denies a
//!   malformed SPIFFE ID as `invalid_request`.
//! * `destination.ip` / `port` / `principal`: `attributes.destination` (the connection's local
//!   address and the local certificate's URI SAN).
//! * `http`: `attributes.request.http` `method`, `path` (with the query), `host`, and the headers
//!   (`headers`, or `header_map` when Envoy's `encode_raw_headers` is on; repeated raw headers
//!   are joined with `,` as Envoy joins them in `headers`).
//! * `sni`: `attributes.tls_session.sni`; in a network check without it, the requested server
//!   name that Envoy puts in `destination.service`.
//! * `auth`: the verified JWT payload under `metadata_context.filter_metadata
//!   ["envoy.filters.http.jwt_authn"]` (Istio stores each payload under its issuer's name):
//!   `principal` = `iss/sub`, `audiences` = `aud`, `presenter` = `azp`, `claims` = the payload.
//! * `source.remote_ip`: only from the header named by `--remote-ip-header` (its last
//!   comma-separated element), and never used as `source.ip`.
//!
//! A `CheckRequest` that cannot be translated (no attributes, no peer address, a non-IP
//! address, a raw header that is not UTF-8, two different JWT payloads) is an `invalid_request`
//! deny, with a static description of what was wrong.

use std::borrow::Cow;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::config::core::v3::socket_address::{PortSpecifier, Protocol};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind as ValueKind};
use palisade::request::proto;
use palisade::{Address, Auth, Direction, Headers, Http, Request, StrList};

/// The metadata namespace of Envoy's JWT filter, where verified payloads are stored.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

/// How a check is translated.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Which side(s) of policy to evaluate (default both).
    pub direction: Direction,
    /// The header that carries the client address behind the proxy, for `source.remote_ip`
    /// (Istio's `remoteIpBlocks`). `None`: no remote IP, so the core uses `source.ip`.
    pub remote_ip_header: Option<String>,
}

/// What Envoy asked about: an HTTP request or a network (TCP) connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// `envoy.filters.http.ext_authz`: the check carries `request.http`.
    Http,
    /// `envoy.filters.network.ext_authz`: no HTTP attributes.
    Network,
}

impl CheckKind {
    /// `http` or `network`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Network => "network",
        }
    }

    /// The kind of a check: HTTP when it carries `request.http`.
    pub fn of(check: &CheckRequest) -> CheckKind {
        match check.attributes.as_ref().and_then(|a| a.request.as_ref()).and_then(|r| r.http.as_ref()) {
            Some(_) => CheckKind::Http,
            None => CheckKind::Network,
        }
    }
}

/// The verified JWT attributes, owned (they are computed from the payload).
struct JwtParts {
    principal: Option<String>,
    audiences: Vec<String>,
    presenter: Option<String>,
    claims: serde_json::Value,
}

/// Translates `check` and calls `f` with the request, or with a static description of why
/// the check cannot be translated. The request borrows from `check` and from locals of this
/// function, hence the callback.
pub fn with_request<R>(
    check: &CheckRequest,
    opts: &Options,
    f: impl FnOnce(Result<&Request<'_>, &'static str>) -> R,
) -> R {
    let Some(attrs) = check.attributes.as_ref() else {
        return f(Err("the check has no attributes"));
    };
    let http = attrs.request.as_ref().and_then(|r| r.http.as_ref());
    let headers = match http.map(headers_of).transpose() {
        Ok(h) => h.unwrap_or_default(),
        Err(e) => return f(Err(e)),
    };
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    let jwt = match jwt_of(attrs) {
        Ok(j) => j,
        Err(e) => return f(Err(e)),
    };
    let request = match build(attrs, http, &borrowed, jwt.as_ref(), opts) {
        Ok(r) => r,
        Err(e) => return f(Err(e)),
    };
    f(Ok(&request))
}

fn build<'a>(
    attrs: &'a AttributeContext,
    http: Option<&'a HttpRequest>,
    headers: &'a [(&'a str, &'a str)],
    jwt: Option<&'a JwtParts>,
    opts: &Options,
) -> Result<Request<'a>, &'static str> {
    let src = attrs.source.as_ref().ok_or("the check has no source peer")?;
    let dst = attrs.destination.as_ref().ok_or("the check has no destination peer")?;
    let (src_ip, src_port, _) =
        socket(src).ok_or("attributes.source.address is not an IP socket address (the connection's peer)")?;
    let (dst_ip, dst_port, protocol) =
        socket(dst).ok_or("attributes.destination.address is not an IP socket address")?;
    let src_port = src_port.map_err(|()| "attributes.source.address has a port outside 0-65535")?;
    let dst_port = dst_port.map_err(|()| "attributes.destination.address has a port outside 0-65535")?;
    let http = http.map(|h| Http {
        method: h.method.as_str(),
        path: h.path.as_str(),
        host: non_empty(&h.host),
        headers: Headers::Borrowed(headers),
    });
    let remote_ip = match (&opts.remote_ip_header, &http) {
        (Some(name), Some(h)) => match h.headers.get(name) {
            None => None,
            Some(v) => Some(last_ip(v).ok_or("the remote IP header's last element is not an IP address")?),
        },
        _ => None,
    };
    let sni = attrs.tls_session.as_ref().and_then(|t| non_empty(&t.sni));
    // In a network check Envoy puts the requested server name in destination.service.
    let sni = if sni.is_none() && http.is_none() { non_empty(&dst.service) } else { sni };
    Ok(Request {
        direction: opts.direction,
        protocol,
        source: Address { ip: src_ip, port: src_port, principal: principal(src) },
        destination: Address { ip: dst_ip, port: dst_port, principal: principal(dst) },
        remote_ip,
        icmp: None,
        http,
        sni,
        auth: jwt.map(|j| Auth {
            principal: j.principal.as_deref(),
            audiences: StrList::Owned(&j.audiences),
            presenter: j.presenter.as_deref(),
            claims: Some(&j.claims),
        }),
    })
}

fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// A workload identity only: Envoy's fallbacks to a DNS SAN or the subject have no `://`.
fn principal(peer: &Peer) -> Option<&str> {
    if peer.principal.contains("://") { Some(peer.principal.as_str()) } else { None }
}

type Socket = (IpAddr, Result<Option<u16>, ()>, u8);

fn socket(peer: &Peer) -> Option<Socket> {
    let Some(AddressKind::SocketAddress(sa)) = peer.address.as_ref().and_then(|a| a.address.as_ref()) else {
        return None;
    };
    let ip = palisade::net::parse_ip(&sa.address)?;
    let port = match &sa.port_specifier {
        Some(PortSpecifier::PortValue(p)) => u16::try_from(*p).map(Some).map_err(|_| ()),
        // A named port is a listener-configuration notion; a check carries numbers.
        Some(PortSpecifier::NamedPort(_)) | None => Ok(None),
    };
    let protocol = match Protocol::try_from(sa.protocol) {
        Ok(Protocol::Udp) => proto::UDP,
        _ => proto::TCP,
    };
    Some((ip, port, protocol))
}

fn last_ip(value: &str) -> Option<IpAddr> {
    palisade::net::parse_ip(value.rsplit(',').next()?.trim())
}

type HeaderList<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

fn headers_of(http: &HttpRequest) -> Result<HeaderList<'_>, &'static str> {
    match http.header_map.as_ref() {
        Some(map) if http.headers.is_empty() => {
            let mut out: HeaderList<'_> = Vec::with_capacity(map.headers.len());
            for h in &map.headers {
                let value: Cow<'_, str> = if h.raw_value.is_empty() {
                    Cow::Borrowed(h.value.as_str())
                } else {
                    Cow::Borrowed(std::str::from_utf8(&h.raw_value).map_err(|_| "a raw header value is not UTF-8")?)
                };
                match out.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(&h.key)) {
                    Some((_, v)) => {
                        let joined = format!("{v},{value}");
                        *v = Cow::Owned(joined);
                    }
                    None => out.push((Cow::Borrowed(h.key.as_str()), value)),
                }
            }
            Ok(out)
        }
        _ => Ok(http.headers.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str()))).collect()),
    }
}

fn jwt_of(attrs: &AttributeContext) -> Result<Option<JwtParts>, &'static str> {
    let Some(ns) = attrs.metadata_context.as_ref().and_then(|m| m.filter_metadata.get(JWT_AUTHN_NAMESPACE)) else {
        return Ok(None);
    };
    // Each verified token's payload is a struct under a key of the filter's choosing (Istio:
    // the issuer). A payload is a struct with a string `iss`.
    let mut payload: Option<&Struct> = None;
    for value in ns.fields.values() {
        if let Some(ValueKind::StructValue(s)) = &value.kind
            && string_field(s, "iss").is_some()
        {
            match payload {
                Some(p) if p != s => return Err("the check carries two different verified JWT payloads"),
                _ => payload = Some(s),
            }
        }
    }
    let Some(p) = payload else { return Ok(None) };
    let principal = match (string_field(p, "iss"), string_field(p, "sub")) {
        (Some(iss), Some(sub)) => Some(format!("{iss}/{sub}")),
        _ => None,
    };
    let audiences = match p.fields.get("aud").and_then(|v| v.kind.as_ref()) {
        Some(ValueKind::StringValue(s)) => vec![s.clone()],
        Some(ValueKind::ListValue(l)) => l
            .values
            .iter()
            .filter_map(|v| match &v.kind {
                Some(ValueKind::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Some(JwtParts {
        principal,
        audiences,
        presenter: string_field(p, "azp").map(str::to_string),
        claims: struct_json(p),
    }))
}

fn string_field<'a>(s: &'a Struct, name: &str) -> Option<&'a str> {
    match s.fields.get(name).and_then(|v| v.kind.as_ref()) {
        Some(ValueKind::StringValue(v)) => Some(v.as_str()),
        _ => None,
    }
}

/// A protobuf `Struct` as JSON (prost bounds the nesting when it decodes, at 100 levels).
pub fn struct_json(s: &Struct) -> serde_json::Value {
    let mut fields: Vec<(&String, &Value)> = s.fields.iter().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    serde_json::Value::Object(fields.into_iter().map(|(k, v)| (k.clone(), value_json(v))).collect())
}

fn value_json(v: &Value) -> serde_json::Value {
    match &v.kind {
        None | Some(ValueKind::NullValue(_)) => serde_json::Value::Null,
        // JSON numbers in a JWT are mostly integers (`exp`, `iat`): keep them integers.
        Some(ValueKind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
            serde_json::Value::from(*n as i64)
        }
        Some(ValueKind::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
        }
        Some(ValueKind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(ValueKind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(ValueKind::StructValue(s)) => struct_json(s),
        Some(ValueKind::ListValue(l)) => serde_json::Value::Array(l.values.iter().map(value_json).collect()),
    }
}
