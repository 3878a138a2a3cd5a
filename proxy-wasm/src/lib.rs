//! The Palisade Envoy filter (proxy-wasm ABI 0.2.1): a thin shim that reads the peer's
//! certificate identity, its address and the HTTP request from the host, asks the embedded
//! engine, and continues or answers 403. All semantics live in the `palisade` core.
//!
//! The same module plays three roles, chosen by its plugin configuration (`listener`):
//! - `http` (default): an HTTP filter (`envoy.filters.http.wasm`) deciding every request;
//! - `peer`: a network filter (`envoy.filters.network.wasm`, listed before the HTTP connection
//!   manager, in the same VM) that records each connection's TCP peer address by connection id;
//! - `tcp`: a network filter deciding per connection.
//!
//! Why `peer` exists: in an HTTP context Envoy's `source.address` property is the stream's
//! downstream *remote* address, which the HTTP connection manager overwrites with the rightmost
//! `X-Forwarded-For` entry when `use_remote_address` is false (Istio's sidecar inbound
//! listener), and no HTTP-context property exposes the direct peer. In a network context
//! `source.address` is the connection's own peer. So the HTTP filter takes `source.ip` only from
//! the record the `peer` filter made for its `connection_id`, never from a header (SPEC 9.3); the
//! HTTP context's `source.address` is used only as `remote_ip` (Istio's `remoteIpBlocks`).
//!
//! Fails closed: without a valid configuration every request is denied; a bad update is
//! refused (`on_configure` returns false) and the previous policy keeps serving; a host
//! property that cannot be read, or a connection whose peer was not recorded, is a deny, never
//! a trap.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use palisade::{Address, Config, Direction, Engine, Headers, Http, Reason, Request};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};
use serde::Deserialize;

/// Plugin configuration (JSON). A configuration that is not a JSON object with `bundle` is
/// taken as the bundle YAML itself, with every other setting at its default.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The policy bundle (YAML or JSON text).
    pub bundle: String,
    /// Engine configuration (the CLI's keys).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// `ingress` (default: the sidecar guards its workload), `egress` or `both`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Status of the local reply on deny (default 403).
    #[serde(default)]
    pub deny_status: Option<u32>,
    /// Response header carrying the deny reason (default `x-palisade-decision`).
    #[serde(default)]
    pub decision_header: Option<String>,
    /// `http` (default, an HTTP filter) or `tcp` (a network filter deciding per connection).
    /// (`peer`, the network filter recording peer addresses, takes no bundle: see [`configure`].)
    #[serde(default)]
    pub listener: Option<String>,
}

/// What a root context was configured as.
pub enum Role {
    /// Decides (an HTTP filter, or a network filter when `settings.tcp`).
    Decide(Rc<Engine>, Settings),
    /// The network filter that records each connection's TCP peer for the HTTP filter.
    RecordPeer,
}

/// Settings derived from a configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    direction: Direction,
    deny_status: u32,
    decision_header: String,
    tcp: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            direction: Direction::Ingress,
            deny_status: 403,
            decision_header: "x-palisade-decision".into(),
            tcp: false,
        }
    }
}

/// Parses the plugin configuration into its role: an engine (loaded) with its settings, or the
/// peer recorder (`{"listener": "peer"}`, exactly that object).
pub fn configure(bytes: &[u8]) -> Result<Role, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the plugin configuration is not UTF-8".to_string())?;
    let parsed: Option<PluginConfig> = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.get("bundle").is_some() => {
            Some(serde_json::from_value(v).map_err(|e| format!("plugin configuration: {e}"))?)
        }
        Ok(serde_json::Value::Object(m)) if m.contains_key("listener") => {
            return match (m.len(), m.get("listener").and_then(|l| l.as_str())) {
                (1, Some("peer")) => Ok(Role::RecordPeer),
                (_, Some("peer")) => Err("a `peer` listener takes no other setting".into()),
                _ => Err("plugin configuration: `bundle` is missing".into()),
            };
        }
        _ => None,
    };
    let (bundle, cfg, settings) = match parsed {
        None => (text.to_string(), Config::default(), Settings::default()),
        Some(p) => {
            let cfg = match &p.config {
                None => Config::default(),
                Some(v) => Config::from_value(v).map_err(|e| e.to_string())?,
            };
            let direction = match p.direction.as_deref() {
                None | Some("ingress") => Direction::Ingress,
                Some("egress") => Direction::Egress,
                Some("both") => Direction::Both,
                Some(other) => return Err(format!("direction {other:?} is not ingress, egress or both")),
            };
            let tcp = match p.listener.as_deref() {
                None | Some("http") => false,
                Some("tcp") => true,
                Some("peer") => return Err("a `peer` listener takes no bundle".into()),
                Some(other) => return Err(format!("listener {other:?} is not http, tcp or peer")),
            };
            let deny_status = p.deny_status.unwrap_or(403);
            if !(200..=599).contains(&deny_status) {
                return Err(format!("deny_status {deny_status} is not an HTTP status"));
            }
            let settings = Settings {
                direction,
                deny_status,
                decision_header: p.decision_header.unwrap_or_else(|| "x-palisade-decision".into()),
                tcp,
            };
            (p.bundle, cfg, settings)
        }
    };
    let engine = Engine::new(cfg);
    engine.load_str(&bundle).map_err(|e| e.to_string())?;
    Ok(Role::Decide(Rc::new(engine), settings))
}

/// What the root context shares with stream contexts: its role in force (none until the
/// first valid configuration).
type Shared = Rc<RefCell<Option<Role>>>;

/// An address as the engine takes it.
type Peer = (IpAddr, Option<u16>);

thread_local! {
    /// The TCP peer of every open connection, by Envoy's connection id, recorded by the `peer`
    /// network filter. Module-wide: every plugin sharing this VM (same `vm_id`, VM
    /// configuration and code, hence one VM per worker thread) sees it, and a connection's
    /// network and HTTP filters run on the same worker. An entry lives until its connection's
    /// network context is deleted.
    static PEERS: RefCell<HashMap<u64, Peer>> = RefCell::new(HashMap::new());
}

/// Reads Envoy's `connection_id` property (a little-endian u64); `None` when unavailable.
fn connection_id() -> Option<u64> {
    match hostcalls::get_property(vec!["connection_id"]) {
        Ok(Some(bytes)) => <[u8; 8]>::try_from(bytes.as_slice()).ok().map(u64::from_le_bytes),
        Ok(None) => None,
        Err(status) => {
            log(LogLevel::Warn, &format!("palisade: property connection_id unreadable: {status:?}"));
            None
        }
    }
}

fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}

/// Reads a string property; `None` when absent or unreadable (never traps).
fn property(path: &[&str]) -> Option<String> {
    match hostcalls::get_property(path.to_vec()) {
        Ok(Some(bytes)) => String::from_utf8(bytes).ok(),
        Ok(None) => None,
        Err(status) => {
            log(LogLevel::Warn, &format!("palisade: property {} unreadable: {status:?}", path.join(".")));
            None
        }
    }
}

/// Parses Envoy's `ip:port` (IPv6 as `[ip]:port`), or a bare IP.
fn address(text: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    text.parse::<IpAddr>().ok().map(|ip| (ip, None))
}

/// The HTTP attributes of a request: method, path, authority, other headers.
type HttpParts<'a> = (&'a str, &'a str, Option<&'a str>, &'a [(String, String)]);

/// The decision for one request or connection, with the header value explaining a deny.
fn decide(shared: &Shared, http: Option<HttpParts<'_>>) -> (bool, String) {
    let state = shared.borrow();
    let Some(Role::Decide(engine, settings)) = state.as_ref() else {
        return (false, "no_bundle: the filter has no valid configuration".into());
    };
    // `source.address` is the TCP peer only in a network context. In an HTTP context it may
    // come from X-Forwarded-For, so there it is only the remote (client) address, and the peer
    // is the one the `peer` network filter recorded for this connection.
    let (src, remote_ip) = if http.is_some() {
        let Some(id) = connection_id() else {
            return (false, "invalid_request: the connection id is unavailable".into());
        };
        let Some(peer) = PEERS.with(|p| p.borrow().get(&id).copied()) else {
            return (
                false,
                "invalid_request: no TCP peer recorded for this connection (the `peer` network filter must run in the same VM)"
                    .into(),
            );
        };
        (Some(peer), property(&["source", "address"]).and_then(|a| address(&a)).map(|(ip, _)| ip))
    } else {
        (property(&["source", "address"]).and_then(|a| address(&a)), None)
    };
    let dst = property(&["destination", "address"]).and_then(|a| address(&a));
    let (Some((src_ip, src_port)), Some((dst_ip, dst_port))) = (src, dst) else {
        return (false, "invalid_request: the peer or local address is unavailable".into());
    };
    let principal = property(&["connection", "uri_san_peer_certificate"]).filter(|p| !p.is_empty());
    let sni = property(&["connection", "requested_server_name"]).filter(|s| !s.is_empty());
    let req = Request {
        direction: settings.direction,
        protocol: 6,
        source: Address { ip: src_ip, port: src_port, principal: principal.as_deref() },
        destination: Address { ip: dst_ip, port: dst_port, principal: None },
        remote_ip,
        icmp: None,
        http: http.map(|(method, path, host, headers)| Http { method, path, host, headers: Headers::Owned(headers) }),
        sni: sni.as_deref(),
        auth: None,
    };
    let d = engine.decide(&req);
    // The filter enforces complete requests: on an HTTP listener the request carries HTTP;
    // on a TCP listener no HTTP check follows, so an allow that still needs HTTP is a deny.
    let allowed = palisade::answer::allows(&d, palisade::answer::Enforcement::Request);
    let why = match (d.reason, d.detail) {
        (Reason::InvalidRequest, Some(detail)) => format!("invalid_request: {detail}"),
        (r, _) if !allowed && d.allowed() => format!("{}: HTTP rule on a TCP listener", r.as_str()),
        (r, _) => r.as_str().to_string(),
    };
    (allowed, why)
}

struct Root {
    shared: Shared,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, u32::MAX as usize) {
            Ok(Some(b)) => b,
            Ok(None) => Vec::new(),
            Err(status) => {
                log(LogLevel::Error, &format!("palisade: plugin configuration unreadable: {status:?}"));
                return false;
            }
        };
        match configure(&bytes) {
            Ok(role) => {
                let what = match &role {
                    Role::Decide(engine, _) => {
                        let n = engine.snapshot().map(|s| s.bundle().policies.len()).unwrap_or(0);
                        format!("{n} policies")
                    }
                    Role::RecordPeer => "recording connection peers".into(),
                };
                *self.shared.borrow_mut() = Some(role);
                log(LogLevel::Info, &format!("palisade: configured ({what})"));
                true
            }
            Err(e) => {
                // Envoy rejects the update; the previous policy (or fail-closed) stays.
                log(LogLevel::Error, &format!("palisade: configuration rejected: {e}"));
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        let stream = match self.shared.borrow().as_ref() {
            Some(Role::Decide(_, s)) => s.tcp,
            Some(Role::RecordPeer) => true,
            None => false,
        };
        Some(if stream { ContextType::StreamContext } else { ContextType::HttpContext })
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HttpFilter { shared: self.shared.clone() }))
    }

    fn create_stream_context(&self, _id: u32) -> Option<Box<dyn StreamContext>> {
        if matches!(self.shared.borrow().as_ref(), Some(Role::RecordPeer)) {
            return Some(Box::new(PeerRecorder { connection: None }));
        }
        Some(Box::new(TcpFilter { shared: self.shared.clone() }))
    }
}

struct HttpFilter {
    shared: Shared,
}

/// Folds repeated headers into one, values joined by `,` in the order received, as Envoy's
/// header matchers see them (`getAllOfHeaderAsString`). The core reads one value per name:
/// without folding, `x-evil: 2` then `x-evil: 1` would be judged by its first value while a
/// backend may read its last.
fn fold_repeated<'a>(headers: impl Iterator<Item = &'a (String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in headers {
        match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(v);
            }
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

impl Context for HttpFilter {}

impl HttpContext for HttpFilter {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let headers = match hostcalls::get_map(MapType::HttpRequestHeaders) {
            Ok(h) => h,
            Err(status) => {
                log(LogLevel::Warn, &format!("palisade: request headers unreadable: {status:?}"));
                return self.deny("invalid_request: request headers unavailable");
            }
        };
        let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let (Some(method), Some(path)) = (get(":method"), get(":path")) else {
            return self.deny("invalid_request: :method or :path missing");
        };
        let host = get(":authority");
        let plain = fold_repeated(headers.iter().filter(|(k, _)| !k.starts_with(':')));
        let (allowed, why) = decide(&self.shared, Some((method, path, host, &plain)));
        if allowed { Action::Continue } else { self.deny(&why) }
    }
}

impl HttpFilter {
    fn deny(&self, why: &str) -> Action {
        let (status, header) = match self.shared.borrow().as_ref() {
            Some(Role::Decide(_, s)) => (s.deny_status, s.decision_header.clone()),
            _ => (403, "x-palisade-decision".to_string()),
        };
        let _ = hostcalls::send_http_response(status, vec![(header.as_str(), why)], Some(b"RBAC: access denied"));
        Action::Pause
    }
}

struct TcpFilter {
    shared: Shared,
}

impl Context for TcpFilter {}

impl StreamContext for TcpFilter {
    fn on_new_connection(&mut self) -> Action {
        let (allowed, why) = decide(&self.shared, None);
        if allowed {
            Action::Continue
        } else {
            log(LogLevel::Info, &format!("palisade: connection denied: {why}"));
            let _ = hostcalls::close_downstream();
            Action::Pause
        }
    }
}

/// The `peer` network filter's context for one connection: records the connection's TCP peer
/// (`source.address` in a network context) under its connection id, and forgets it when the
/// connection's context is deleted. It decides nothing: a connection whose peer cannot be read
/// is not recorded, so the HTTP filter denies its requests.
struct PeerRecorder {
    connection: Option<u64>,
}

impl Context for PeerRecorder {}

impl StreamContext for PeerRecorder {
    fn on_new_connection(&mut self) -> Action {
        let peer = property(&["source", "address"]).and_then(|a| address(&a));
        match (connection_id(), peer) {
            (Some(id), Some(peer)) => {
                PEERS.with(|p| p.borrow_mut().insert(id, peer));
                self.connection = Some(id);
            }
            _ => log(LogLevel::Warn, "palisade: connection peer not recorded; its HTTP requests will be denied"),
        }
        Action::Continue
    }
}

impl Drop for PeerRecorder {
    fn drop(&mut self) {
        if let Some(id) = self.connection.take() {
            PEERS.with(|p| p.borrow_mut().remove(&id));
        }
    }
}

// The module's entry point (`_start`), generated by the SDK's macro: installs the panic
// hook and the root context.
#[allow(missing_docs)]
pub mod entry {
    use super::*;

    proxy_wasm::main! {{
        std::panic::set_hook(Box::new(|info| {
            let _ = hostcalls::log(LogLevel::Critical, &format!("palisade: panic: {info}"));
        }));
        proxy_wasm::set_log_level(LogLevel::Info);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
            Box::new(Root { shared: Rc::new(RefCell::new(None)) })
        });
    }}
}
