//! The request: what is being decided. [`Request`] borrows everything, so a proxy can
//! build one from its own buffers without copying; [`OwnedRequest`] is what the JSON
//! form (SPEC section 7) parses into.

use std::net::IpAddr;

use serde::Deserialize;

use crate::error::RequestError;
use crate::net::parse_ip;

pub mod validate;

/// Protocol numbers Palisade names.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// UDPLite.
    pub const UDPLITE: u8 = 136;

    /// The number for a protocol name (any case), as Calico names them. Allocation-free.
    ///
    /// ```
    /// use palisade::request::proto;
    /// assert_eq!(proto::from_name("TCP"), Some(proto::TCP));
    /// assert_eq!(proto::from_name("icmpV6"), Some(proto::ICMPV6));
    /// assert_eq!(proto::from_name("tcp6"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<u8> {
        const NAMES: [(&str, u8); 6] =
            [("tcp", TCP), ("udp", UDP), ("icmp", ICMP), ("icmpv6", ICMPV6), ("sctp", SCTP), ("udplite", UDPLITE)];
        NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, p)| p)
    }

    /// Whether the protocol carries ports.
    pub fn has_ports(p: u8) -> bool {
        matches!(p, TCP | UDP | SCTP | UDPLITE)
    }
}

/// Which side(s) of policy to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// The destination endpoint's ingress policy only.
    Ingress,
    /// The source endpoint's egress policy only.
    Egress,
    /// Egress of the source, then ingress of the destination (default).
    #[default]
    Both,
}

/// One end of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address<'a> {
    /// The IP address (IPv4-mapped IPv6 is treated as IPv4).
    pub ip: IpAddr,
    /// The port, when known (required on the destination for TCP, UDP, SCTP, UDPLite).
    pub port: Option<u16>,
    /// The SPIFFE ID from the peer's verified certificate, if any.
    pub principal: Option<&'a str>,
}

impl<'a> Address<'a> {
    /// An address with no port and no principal.
    pub fn new(ip: IpAddr) -> Self {
        Address { ip, port: None, principal: None }
    }

    /// The same address with a port.
    pub fn with_port(self, port: u16) -> Self {
        Address { port: Some(port), ..self }
    }

    /// The same address with the SPIFFE ID of its verified certificate.
    pub fn with_principal(self, principal: &'a str) -> Self {
        Address { principal: Some(principal), ..self }
    }
}

/// A list of strings, borrowed either as `&str`s or as `String`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrList<'a> {
    /// Borrowed string slices.
    Borrowed(&'a [&'a str]),
    /// Borrowed owned strings.
    Owned(&'a [String]),
}

impl<'a> StrList<'a> {
    /// Iterates over the strings.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (a, b): (&'a [&'a str], &'a [String]) = match *self {
            StrList::Borrowed(s) => (s, &[]),
            StrList::Owned(s) => (&[], s),
        };
        a.iter().copied().chain(b.iter().map(String::as_str))
    }
}

impl Default for StrList<'_> {
    fn default() -> Self {
        StrList::Borrowed(&[])
    }
}

/// HTTP headers, borrowed either as `(&str, &str)` pairs or as `(String, String)` pairs.
/// Names compare case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headers<'a> {
    /// Borrowed pairs of string slices.
    Borrowed(&'a [(&'a str, &'a str)]),
    /// Borrowed pairs of owned strings.
    Owned(&'a [(String, String)]),
}

impl<'a> Headers<'a> {
    /// The first value of header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        match *self {
            Headers::Borrowed(h) => h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v),
            Headers::Owned(h) => h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()),
        }
    }
}

impl Default for Headers<'_> {
    fn default() -> Self {
        Headers::Borrowed(&[])
    }
}

/// HTTP attributes of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http<'a> {
    /// The method, case-sensitive (`GET`).
    pub method: &'a str,
    /// The raw path, with query and fragment if any.
    pub path: &'a str,
    /// The `:authority` / `Host`.
    pub host: Option<&'a str>,
    /// Headers.
    pub headers: Headers<'a>,
}

/// ICMP type and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code, when known.
    pub code: Option<u8>,
}

/// Verified JWT attributes (the caller has already verified the token).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Auth<'a> {
    /// `iss/sub`.
    pub principal: Option<&'a str>,
    /// `aud`.
    pub audiences: StrList<'a>,
    /// `azp`.
    pub presenter: Option<&'a str>,
    /// Every claim, as JSON.
    pub claims: Option<&'a serde_json::Value>,
}

/// A request to decide. Borrows every string; building one allocates nothing. Build it
/// from [`Request::tcp`] and the `with_*` methods (each returns the request changed), or
/// fill the public fields.
///
/// ```
/// use palisade::{Address, Direction, Request};
/// let frontend = "spiffe://cluster.local/ns/shop/sa/frontend";
/// let req = Request::tcp(
///     Address::new("10.1.0.5".parse().unwrap()).with_principal(frontend),
///     Address::new("10.1.0.9".parse().unwrap()).with_port(8080),
/// )
/// .with_http("GET", "/api/cart")
/// .with_direction(Direction::Ingress);
/// assert_eq!(req.protocol, 6);
/// assert_eq!(req.http.map(|h| h.path), Some("/api/cart"));
/// ```
///
/// `Http::path` is not optional: every HTTP request Palisade can see has one (HTTP/1.1's
/// request target, HTTP/2's `:path`); a CONNECT without `:path` is a request the proxy
/// must refuse or give one (the Envoy filter denies it as `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request<'a> {
    /// Which side(s) to evaluate.
    pub direction: Direction,
    /// Protocol number (1-255).
    pub protocol: u8,
    /// The source.
    pub source: Address<'a>,
    /// The destination.
    pub destination: Address<'a>,
    /// The client behind a proxy (Istio `remoteIpBlocks`); `source.ip` when absent.
    pub remote_ip: Option<IpAddr>,
    /// ICMP type and code.
    pub icmp: Option<Icmp>,
    /// HTTP attributes; `None` for a plain connection.
    pub http: Option<Http<'a>>,
    /// TLS server name.
    pub sni: Option<&'a str>,
    /// Verified JWT attributes.
    pub auth: Option<Auth<'a>>,
}

impl<'a> Request<'a> {
    /// A TCP connection between two addresses, both sides evaluated.
    pub fn tcp(source: Address<'a>, destination: Address<'a>) -> Self {
        Request {
            direction: Direction::Both,
            protocol: proto::TCP,
            source,
            destination,
            remote_ip: None,
            icmp: None,
            http: None,
            sni: None,
            auth: None,
        }
    }

    /// The same request with HTTP attributes (no host, no headers: see [`Http`] for more).
    pub fn with_http(self, method: &'a str, path: &'a str) -> Self {
        Request { http: Some(Http { method, path, host: None, headers: Headers::Borrowed(&[]) }), ..self }
    }

    /// The same request with full HTTP attributes.
    pub fn with_http_attributes(self, http: Http<'a>) -> Self {
        Request { http: Some(http), ..self }
    }

    /// The same request evaluating only `direction`'s side(s).
    pub fn with_direction(self, direction: Direction) -> Self {
        Request { direction, ..self }
    }

    /// The same request with another protocol number (UDP, SCTP...: see [`proto`]).
    pub fn with_protocol(self, protocol: u8) -> Self {
        Request { protocol, ..self }
    }

    /// The same request with the client behind a proxy (Istio's `remoteIpBlocks`).
    pub fn with_remote_ip(self, ip: IpAddr) -> Self {
        Request { remote_ip: Some(ip), ..self }
    }

    /// The same request with a TLS server name.
    pub fn with_sni(self, sni: &'a str) -> Self {
        Request { sni: Some(sni), ..self }
    }

    /// The same request with verified JWT attributes.
    pub fn with_auth(self, auth: Auth<'a>) -> Self {
        Request { auth: Some(auth), ..self }
    }
}

// ---------------------------------------------------------------------------------------
// The JSON form.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct JsonRequest {
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    protocol: Option<serde_json::Value>,
    source: JsonAddress,
    destination: JsonAddress,
    #[serde(default)]
    icmp: Option<JsonIcmp>,
    #[serde(default)]
    http: Option<JsonHttp>,
    #[serde(default)]
    sni: Option<String>,
    #[serde(default)]
    auth: Option<JsonAuth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct JsonAddress {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    port: Option<serde_json::Value>,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    remote_ip: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct JsonIcmp {
    #[serde(rename = "type")]
    icmp_type: u8,
    #[serde(default)]
    code: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct JsonHttp {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct JsonAuth {
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    presenter: Option<String>,
    #[serde(default)]
    claims: Option<serde_json::Value>,
}

/// An owned HTTP part of an [`OwnedRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedHttp {
    /// Method.
    pub method: String,
    /// Raw path.
    pub path: String,
    /// Host.
    pub host: Option<String>,
    /// Headers.
    pub headers: Vec<(String, String)>,
}

/// Owned verified JWT attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedAuth {
    /// `iss/sub`.
    pub principal: Option<String>,
    /// `aud`.
    pub audiences: Vec<String>,
    /// `azp`.
    pub presenter: Option<String>,
    /// Every claim.
    pub claims: Option<serde_json::Value>,
}

/// A request that owns its strings: what the JSON form parses into. Borrow it as a
/// [`Request`] with [`OwnedRequest::as_request`].
///
/// ```
/// let owned = palisade::OwnedRequest::from_json(
///     r#"{"source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.1.0.9", "port": 80}}"#,
/// ).unwrap();
/// assert_eq!(owned.as_request().destination.port, Some(80));
/// assert!(palisade::OwnedRequest::from_json(r#"{"source": {"ip": "10.1.0.5", "principle": "x"}}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedRequest {
    /// Which side(s) to evaluate.
    pub direction: Direction,
    /// Protocol number.
    pub protocol: u8,
    /// Source IP, port, principal.
    pub source: (IpAddr, Option<u16>, Option<String>),
    /// Destination IP, port, principal.
    pub destination: (IpAddr, Option<u16>, Option<String>),
    /// `source.remote_ip`.
    pub remote_ip: Option<IpAddr>,
    /// ICMP.
    pub icmp: Option<Icmp>,
    /// HTTP.
    pub http: Option<OwnedHttp>,
    /// SNI.
    pub sni: Option<String>,
    /// JWT attributes.
    pub auth: Option<OwnedAuth>,
}

fn parse_port(v: Option<serde_json::Value>, field: &str) -> Result<Option<u16>, RequestError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => match n.as_u64().and_then(|p| u16::try_from(p).ok()) {
            Some(p) => Ok(Some(p)),
            None => Err(RequestError::new(field, format!("{n} is not an integer port in 0-65535"))),
        },
        Some(other) => Err(RequestError::new(field, format!("{other} is not an integer port in 0-65535"))),
    }
}

fn parse_protocol(v: Option<serde_json::Value>) -> Result<u8, RequestError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(proto::TCP),
        Some(serde_json::Value::String(s)) => proto::from_name(&s)
            .ok_or_else(|| RequestError::new("protocol", format!("{s:?} is not a protocol name or number 1-255"))),
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(p @ 1..=255) => Ok(p as u8),
            _ => Err(RequestError::new("protocol", format!("{n} is not a protocol number 1-255"))),
        },
        Some(other) => Err(RequestError::new("protocol", format!("{other} is not a protocol"))),
    }
}

/// The headers in order; two names that differ only in case are one header given twice
/// (HTTP names are case-insensitive), which is an error like any duplicate key.
fn headers(map: std::collections::BTreeMap<String, String>) -> Result<Vec<(String, String)>, RequestError> {
    let mut seen = std::collections::HashSet::with_capacity(map.len());
    for name in map.keys() {
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(RequestError::new(
                "http.headers",
                format!("header {name:?} is given twice (header names are case-insensitive)"),
            ));
        }
    }
    Ok(map.into_iter().collect())
}

fn parse_addr_ip(v: Option<String>, field: &str) -> Result<IpAddr, RequestError> {
    let s = v.ok_or_else(|| RequestError::new(field, "is required"))?;
    parse_ip(&s).ok_or_else(|| RequestError::new(field, format!("{s:?} is not an IP address")))
}

/// The field path of a serde error: `-` for the request as a whole.
fn error_path(path: String) -> String {
    if path == "." || path == "?" { "-".to_string() } else { path }
}

/// Rewrites serde's messages for people who write JSON, not Rust: JSON's own names for
/// shapes, no Rust type names.
pub(crate) fn human(message: &str) -> String {
    let mut out = message.to_string();
    for (from, to) in [
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: object"),
        ("invalid type: unit value", "invalid type: null"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected an object"),
        ("expected u8", "expected an integer in 0-255"),
        ("expected a borrowed string", "expected a string"),
    ] {
        out = out.replace(from, to);
    }
    out
}

/// Parses JSON text strictly: a key that appears twice in one object, at any depth, is an
/// error (serde_json alone keeps the last one). Every interface that takes request JSON as
/// text and needs a [`serde_json::Value`] first (the Node binding's `decideJson`, the C
/// API's claims) parses it with this.
///
/// ```
/// assert!(palisade::request::parse_json(r#"{"a": {"b": 1}, "c": [{"b": 2}]}"#).is_ok());
/// let e = palisade::request::parse_json(r#"{"a": {"b": 1, "b": 2}}"#).unwrap_err();
/// assert_eq!(e.field, "a.b");
/// assert!(e.message.starts_with("duplicate key \"b\""), "{e}");
/// ```
pub fn parse_json(text: &str) -> Result<serde_json::Value, RequestError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(crate::strict::stream::Strict::new(&mut de))
        .map_err(|e| RequestError::new(error_path(e.path().to_string()), human(&e.into_inner().to_string())))?;
    de.end().map_err(|e| RequestError::new("-", human(&e.to_string())))?;
    Ok(value)
}

impl OwnedRequest {
    /// Parses the JSON form of SPEC section 7. Unknown fields anywhere, missing or
    /// unparsable IPs, bad ports and protocols, a missing destination port for TCP, UDP,
    /// SCTP or UDPLite, and `http` without `method` or `path` are errors; so are an object
    /// given as an array (fields are read by name, never by position) and a key that
    /// appears twice in one object, at any depth (`http.headers` and `auth.claims`
    /// included; header names compare case-insensitively).
    ///
    /// ```
    /// use palisade::OwnedRequest;
    /// let dup = r#"{"source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.1.0.9", "port": 80},
    ///              "http": {"method": "GET", "path": "/", "headers": {"x-evil": "1", "x-evil": "2"}}}"#;
    /// assert!(OwnedRequest::from_json(dup).unwrap_err().message.starts_with("duplicate key \"x-evil\""));
    /// let by_position = r#"["both", "TCP", ["10.1.0.5"], ["10.1.0.9", 80]]"#;
    /// assert!(OwnedRequest::from_json(by_position).is_err());
    /// ```
    pub fn from_json(text: &str) -> Result<OwnedRequest, RequestError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: JsonRequest = serde_path_to_error::deserialize(crate::strict::stream::Strict::new(&mut de))
            .map_err(|e| RequestError::new(error_path(e.path().to_string()), human(&e.into_inner().to_string())))?;
        de.end().map_err(|e| RequestError::new("-", human(&e.to_string())))?;
        Self::from_raw(raw)
    }

    /// Parses the JSON form from an already-parsed JSON value (a value holds no duplicate
    /// key; use [`parse_json`] to get one from text). An object given as an array is an
    /// error, as in [`OwnedRequest::from_json`].
    pub fn from_value(value: serde_json::Value) -> Result<OwnedRequest, RequestError> {
        let raw: JsonRequest = serde_path_to_error::deserialize(crate::strict::stream::Strict::new(value))
            .map_err(|e| RequestError::new(error_path(e.path().to_string()), human(&e.into_inner().to_string())))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: JsonRequest) -> Result<OwnedRequest, RequestError> {
        let direction = match raw.direction.as_deref() {
            None | Some("both") => Direction::Both,
            Some("ingress") => Direction::Ingress,
            Some("egress") => Direction::Egress,
            Some(other) => {
                return Err(RequestError::new("direction", format!("{other:?} is not ingress, egress or both")));
            }
        };
        let protocol = parse_protocol(raw.protocol)?;
        let src_ip = parse_addr_ip(raw.source.ip, "source.ip")?;
        let dst_ip = parse_addr_ip(raw.destination.ip, "destination.ip")?;
        let src_port = parse_port(raw.source.port, "source.port")?;
        let dst_port = parse_port(raw.destination.port, "destination.port")?;
        if proto::has_ports(protocol) && dst_port.is_none() {
            return Err(RequestError::new("destination.port", "is required for TCP, UDP, SCTP and UDPLite"));
        }
        if raw.destination.remote_ip.is_some() {
            return Err(RequestError::new("destination.remote_ip", "unknown field (remote_ip belongs to source)"));
        }
        let remote_ip = match raw.source.remote_ip {
            None => None,
            Some(s) => Some(
                parse_ip(&s)
                    .ok_or_else(|| RequestError::new("source.remote_ip", format!("{s:?} is not an IP address")))?,
            ),
        };
        let http = match raw.http {
            None => None,
            Some(h) => Some(OwnedHttp {
                method: h.method.ok_or_else(|| RequestError::new("http.method", "is required"))?,
                path: h.path.ok_or_else(|| RequestError::new("http.path", "is required"))?,
                host: h.host,
                headers: headers(h.headers.unwrap_or_default())?,
            }),
        };
        let auth = raw.auth.map(|a| OwnedAuth {
            principal: a.principal,
            audiences: a.audiences.unwrap_or_default(),
            presenter: a.presenter,
            claims: a.claims,
        });
        Ok(OwnedRequest {
            direction,
            protocol,
            source: (src_ip, src_port, raw.source.principal),
            destination: (dst_ip, dst_port, raw.destination.principal),
            remote_ip,
            icmp: raw.icmp.map(|i| Icmp { icmp_type: i.icmp_type, code: i.code }),
            http,
            sni: raw.sni,
            auth,
        })
    }

    /// Borrows this request for deciding.
    pub fn as_request(&self) -> Request<'_> {
        Request {
            direction: self.direction,
            protocol: self.protocol,
            source: Address { ip: self.source.0, port: self.source.1, principal: self.source.2.as_deref() },
            destination: Address {
                ip: self.destination.0,
                port: self.destination.1,
                principal: self.destination.2.as_deref(),
            },
            remote_ip: self.remote_ip,
            icmp: self.icmp,
            http: self.http.as_ref().map(|h| Http {
                method: &h.method,
                path: &h.path,
                host: h.host.as_deref(),
                headers: Headers::Owned(&h.headers),
            }),
            sni: self.sni.as_deref(),
            auth: self.auth.as_ref().map(|a| Auth {
                principal: a.principal.as_deref(),
                audiences: StrList::Owned(&a.audiences),
                presenter: a.presenter.as_deref(),
                claims: a.claims.as_ref(),
            }),
        }
    }
}
