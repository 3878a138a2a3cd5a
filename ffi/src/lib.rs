//! The C ABI of Palisade. Thin: it translates types and errors and catches panics; every
//! behaviour lives in the `palisade` core crate.
//!
//! See `c-header/palisade.h` (generated from this file) for the contract: ownership, threads,
//! and the fail-closed rule (a non-OK status from a decide function always comes with a deny).

#![allow(clippy::missing_safety_doc)] // each function's safety contract is in its doc comment
#![allow(non_camel_case_types)] // C names

use std::ffi::{CStr, CString, c_char};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use palisade_core::flowlog::{Aggregation, FlowLog, FlowLogConfig};
use palisade_core::{
    Action, Address, Auth, Config, Decision, Direction, Engine, Headers, Http, Icmp, LoadError, Peer, Reason, Request,
    Side, Snapshot, StrList,
};

/// The status of an ABI call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum palisade_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// A string argument was not UTF-8.
    InvalidUtf8 = 2,
    /// An argument was out of range (an IP family other than 4 or 6, a bad enum value).
    InvalidArgument = 3,
    /// The bundle could not be loaded (the previous snapshot keeps serving).
    Bundle = 4,
    /// The configuration is invalid.
    Config = 5,
    /// Nothing is loaded (the decision is a deny with reason `no_bundle`).
    NoBundle = 6,
    /// A Rust panic was caught at the boundary (a bug; the decision is a deny).
    Panic = 7,
    /// A tier-scoped write changes something outside its writer's tiers (nothing changed).
    Refused = 8,
}

/// An error with its message and, for bundle errors, its location.
pub struct palisade_error {
    status: palisade_status,
    message: CString,
    kind: CString,
    file: Option<CString>,
    object: Option<CString>,
    field: Option<CString>,
    document: i64,
    /// Every error of a rejected load, one per line (the message for other errors).
    report: CString,
    /// How many errors the load found (1 for errors that are not load errors).
    count: usize,
}

/// A policy decision point: holds the snapshot in force.
pub struct palisade_engine {
    engine: Arc<Engine>,
}

/// A pinned snapshot: valid until released, whatever reloads happen.
pub struct palisade_snapshot {
    snapshot: Arc<Snapshot>,
}

/// A policy store: an engine whose policy is changed through tier-scoped writers (several
/// teams writing into one engine, each only into its own tiers).
pub struct palisade_store {
    store: Arc<palisade_ownership::PolicyStore>,
}

/// A writer that may change the policies of some tiers only (no Tier object, no network set).
pub struct palisade_tier_writer {
    writer: palisade_ownership::TierWriter,
}

/// A flow logger over an engine: decides like `palisade_engine_decide` and records each
/// decision (allocation-free, never waits) into a bounded queue; `palisade_flowlog_drain_json`
/// turns the queue into Calico-format flow-log records. It keeps its engine alive.
pub struct palisade_flowlog {
    log: FlowLog,
    engine: Arc<Engine>,
    aggregated: bool,
}

/// A string given as pointer and length (not NUL-terminated). `ptr == NULL` means absent.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct palisade_str {
    /// The bytes (UTF-8), or NULL for absent.
    pub ptr: *const c_char,
    /// Their length.
    pub len: usize,
}

/// An IP address: `family` 4 or 6 (0 means absent where a field is optional); an IPv4
/// address is in the first 4 bytes of `addr`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct palisade_ip {
    /// 4, 6, or 0 for absent.
    pub family: u8,
    /// The address bytes, network order.
    pub addr: [u8; 16],
}

/// An HTTP header.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct palisade_header {
    /// The name (compared case-insensitively).
    pub name: palisade_str,
    /// The value.
    pub value: palisade_str,
}

/// `palisade_request.direction`: egress of the source, then ingress of the destination.
pub const PALISADE_DIRECTION_BOTH: u8 = 0;
/// `palisade_request.direction`: the destination's ingress policy only.
pub const PALISADE_DIRECTION_INGRESS: u8 = 1;
/// `palisade_request.direction`: the source's egress policy only.
pub const PALISADE_DIRECTION_EGRESS: u8 = 2;

/// A request, as SPEC section 7 describes it. Every string is borrowed for the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct palisade_request {
    /// Which sides to evaluate: one of the `PALISADE_DIRECTION_*` values (an integer, so
    /// that any value a C caller stores is defined; others are an invalid argument).
    pub direction: u8,
    /// Protocol number; 0 means TCP (the default).
    pub protocol: u8,
    /// Source address.
    pub src_ip: palisade_ip,
    /// Source port, or -1 when unknown.
    pub src_port: i32,
    /// The SPIFFE ID from the source's verified certificate (absent: plaintext).
    pub src_principal: palisade_str,
    /// The client behind a proxy (family 0: absent).
    pub remote_ip: palisade_ip,
    /// Destination address.
    pub dst_ip: palisade_ip,
    /// Destination port, or -1 when unknown (required for TCP, UDP, SCTP, UDPLite).
    pub dst_port: i32,
    /// The destination's SPIFFE ID, if known.
    pub dst_principal: palisade_str,
    /// ICMP type, or -1.
    pub icmp_type: i16,
    /// ICMP code, or -1.
    pub icmp_code: i16,
    /// Whether the HTTP fields below are set.
    pub has_http: bool,
    /// HTTP method.
    pub method: palisade_str,
    /// HTTP path (with query, if any).
    pub path: palisade_str,
    /// HTTP host / authority.
    pub host: palisade_str,
    /// HTTP headers (`header_count` of them; may be NULL when 0).
    pub headers: *const palisade_header,
    /// Number of headers.
    pub header_count: usize,
    /// TLS server name.
    pub sni: palisade_str,
    /// Verified JWT `iss/sub`.
    pub auth_principal: palisade_str,
    /// Verified JWT audiences (`audience_count` of them).
    pub audiences: *const palisade_str,
    /// Number of audiences.
    pub audience_count: usize,
    /// Verified JWT presenter (`azp`).
    pub auth_presenter: palisade_str,
    /// Verified JWT claims as a JSON object (parsed per call).
    pub claims_json: palisade_str,
}

/// Allow or deny.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum palisade_action {
    /// Deny (the zero value: a zeroed decision denies).
    Deny = 0,
    /// Allow.
    Allow = 1,
}

/// Why.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum palisade_reason {
    /// A rule decided.
    Rule = 0,
    /// A tier's default action denied.
    EndOfTier = 1,
    /// The profile default decided.
    NoPolicy = 2,
    /// A principal is not the identity of the workload owning the IP.
    IdentityMismatch = 3,
    /// A known workload presented no principal and `require_peer_identity` is set.
    MissingPeerIdentity = 4,
    /// The request is malformed.
    InvalidRequest = 5,
    /// Nothing is loaded.
    NoBundle = 6,
}

/// A decision. `tier` and `policy` are ids into the snapshot that decided (`UINT32_MAX`
/// when not set); read their names with `palisade_decision_tier` / `palisade_decision_policy`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct palisade_decision {
    /// Allow or deny.
    pub action: palisade_action,
    /// Why.
    pub reason: palisade_reason,
    /// 0 none, 1 ingress, 2 egress.
    pub side: u8,
    /// 0 none, 1 source, 2 destination (for identity reasons).
    pub peer: u8,
    /// An HTTP rule allowed a request without HTTP attributes: decide again with them.
    pub l7_pending: bool,
    /// 0 no staged verdict, 1 staged allow, 2 staged deny.
    pub staged: u8,
    /// Rule index; -1 for an end-of-tier action; -2 when not set.
    pub rule: i32,
    /// Tier id, or `UINT32_MAX`.
    pub tier: u32,
    /// Policy id, or `UINT32_MAX`.
    pub policy: u32,
    /// The snapshot generation that decided (0: nothing loaded).
    pub generation: u64,
}

/// Engine configuration. A NULL `palisade_config*` means every default. String fields use
/// `palisade_str` (absent: default); numeric limits use 0 for the default.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct palisade_config {
    /// SPIFFE trust domain (default `cluster.local`).
    pub trust_domain: palisade_str,
    /// Deny known workloads that present no principal (ingress evaluated).
    pub require_peer_identity: bool,
    /// The profile default: 0 allow (default), 1 deny.
    pub no_policy_deny: bool,
    /// Istio root namespace (default `istio-system`).
    pub istio_root_namespace: palisade_str,
    /// Largest bundle in bytes (0: default).
    pub max_bundle_bytes: usize,
    /// Most documents (0: default).
    pub max_documents: usize,
}

const NONE_ID: u32 = u32::MAX;

fn deny_decision(reason: palisade_reason) -> palisade_decision {
    palisade_decision {
        action: palisade_action::Deny,
        reason,
        side: 0,
        peer: 0,
        l7_pending: false,
        staged: 0,
        rule: -2,
        tier: NONE_ID,
        policy: NONE_ID,
        generation: 0,
    }
}

fn to_c(d: &Decision) -> palisade_decision {
    palisade_decision {
        action: if d.action == Action::Allow { palisade_action::Allow } else { palisade_action::Deny },
        reason: match d.reason {
            Reason::Rule => palisade_reason::Rule,
            Reason::EndOfTier => palisade_reason::EndOfTier,
            Reason::NoPolicy => palisade_reason::NoPolicy,
            Reason::IdentityMismatch => palisade_reason::IdentityMismatch,
            Reason::MissingPeerIdentity => palisade_reason::MissingPeerIdentity,
            Reason::InvalidRequest => palisade_reason::InvalidRequest,
            Reason::NoBundle => palisade_reason::NoBundle,
        },
        side: match d.side {
            None => 0,
            Some(Side::Ingress) => 1,
            Some(Side::Egress) => 2,
        },
        peer: match d.peer {
            None => 0,
            Some(Peer::Source) => 1,
            Some(Peer::Destination) => 2,
        },
        l7_pending: d.l7_pending,
        staged: match d.staged {
            None => 0,
            Some(Action::Allow) => 1,
            Some(Action::Deny) => 2,
        },
        rule: d.rule.unwrap_or(-2),
        tier: d.tier.unwrap_or(NONE_ID),
        policy: d.policy.unwrap_or(NONE_ID),
        generation: d.generation,
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

fn make_error(status: palisade_status, kind: &str, message: &str) -> Box<palisade_error> {
    Box::new(palisade_error {
        status,
        message: cstring(message),
        kind: cstring(kind),
        file: None,
        object: None,
        field: None,
        document: -1,
        report: cstring(message),
        count: 1,
    })
}

fn load_error(e: &LoadError) -> Box<palisade_error> {
    let mut err = make_error(palisade_status::Bundle, e.kind.as_str(), &e.to_string());
    err.file = (!e.file.is_empty()).then(|| cstring(&e.file));
    err.object = e.object.as_deref().map(cstring);
    err.field = e.field.as_deref().map(cstring);
    err.document = e.document.map(|d| d as i64).unwrap_or(-1);
    err.report = cstring(&e.report());
    err.count = 1 + e.others.len();
    err
}

/// Stores `err` into `*out` when `out` is not NULL; returns its status.
unsafe fn report(out: *mut *mut palisade_error, err: Box<palisade_error>) -> palisade_status {
    let status = err.status;
    if !out.is_null() {
        // SAFETY: the caller gave a writable pointer (or NULL, checked above).
        unsafe { *out = Box::into_raw(err) };
    }
    status
}

/// Reads a `palisade_str`; `Ok(None)` when absent.
unsafe fn read_str<'a>(s: palisade_str) -> Result<Option<&'a str>, palisade_status> {
    if s.ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller promises `ptr` points at `len` readable bytes for the call.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr.cast::<u8>(), s.len) };
    std::str::from_utf8(bytes).map(Some).map_err(|_| palisade_status::InvalidUtf8)
}

fn read_ip(ip: &palisade_ip) -> Result<Option<IpAddr>, palisade_status> {
    match ip.family {
        0 => Ok(None),
        4 => Ok(Some(IpAddr::V4(Ipv4Addr::new(ip.addr[0], ip.addr[1], ip.addr[2], ip.addr[3])))),
        6 => Ok(Some(IpAddr::V6(Ipv6Addr::from(ip.addr)))),
        _ => Err(palisade_status::InvalidArgument),
    }
}

/// Runs `f`, turning a panic into `PALISADE_STATUS_PANIC`.
fn guard(f: impl FnOnce() -> palisade_status) -> palisade_status {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(palisade_status::Panic)
}

/// The library version (a static NUL-terminated string).
#[unsafe(no_mangle)]
pub extern "C" fn palisade_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Creates an engine with nothing loaded (it denies everything with reason `no_bundle`).
/// `config` may be NULL for the defaults. Returns NULL on error, with `*err` set when `err`
/// is not NULL. Free with `palisade_engine_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_new(
    config: *const palisade_config,
    err: *mut *mut palisade_error,
) -> *mut palisade_engine {
    let mut out: *mut palisade_engine = std::ptr::null_mut();
    let status = guard(|| {
        let mut cfg = Config::default();
        if !config.is_null() {
            // SAFETY: non-NULL config points at a valid struct for the call.
            let c = unsafe { &*config };
            let text = |s| unsafe { read_str(s) };
            match (text(c.trust_domain), text(c.istio_root_namespace)) {
                (Ok(td), Ok(root)) => {
                    if let Some(td) = td {
                        cfg.trust_domain = td.to_string();
                    }
                    if let Some(r) = root {
                        cfg.istio_root_namespace = r.to_string();
                    }
                }
                _ => {
                    return unsafe {
                        report(err, make_error(palisade_status::InvalidUtf8, "config", "a config string is not UTF-8"))
                    };
                }
            }
            cfg.require_peer_identity = c.require_peer_identity;
            cfg.no_policy_action = if c.no_policy_deny { Action::Deny } else { Action::Allow };
            if c.max_bundle_bytes > 0 {
                cfg.max_bundle_bytes = c.max_bundle_bytes;
            }
            if c.max_documents > 0 {
                cfg.max_documents = c.max_documents;
            }
            if let Err(e) = cfg.validate() {
                return unsafe { report(err, make_error(palisade_status::Config, "config", &e.to_string())) };
            }
        }
        out = Box::into_raw(Box::new(palisade_engine { engine: Arc::new(Engine::new(cfg)) }));
        palisade_status::Ok
    });
    if status == palisade_status::Panic {
        unsafe { report(err, make_error(palisade_status::Panic, "panic", "internal error (panic caught)")) };
    }
    out
}

/// Creates an engine from a configuration given as YAML or JSON text (every key of the
/// configuration, `trust_domain_aliases` and `default_namespace` included; empty text is
/// the defaults). Returns NULL on error, with `*err` set when `err` is not NULL. Free with
/// `palisade_engine_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_new_from_config_text(
    config: palisade_str,
    err: *mut *mut palisade_error,
) -> *mut palisade_engine {
    let mut out: *mut palisade_engine = std::ptr::null_mut();
    let status = guard(|| {
        // SAFETY: the caller passes a valid palisade_str (or a NULL pointer for none).
        let text = match unsafe { read_str(config) } {
            Ok(t) => t.unwrap_or_default(),
            Err(s) => return unsafe { report(err, make_error(s, "config", "the configuration is not UTF-8")) },
        };
        match Config::from_yaml(text) {
            Ok(cfg) => {
                out = Box::into_raw(Box::new(palisade_engine { engine: Arc::new(Engine::new(cfg)) }));
                palisade_status::Ok
            }
            Err(e) => unsafe { report(err, make_error(palisade_status::Config, "config", &e.to_string())) },
        }
    });
    if status == palisade_status::Panic {
        unsafe { report(err, make_error(palisade_status::Panic, "panic", "internal error (panic caught)")) };
    }
    out
}

/// Frees an engine. NULL is ignored. Snapshots pinned from it stay valid until released.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_free(engine: *mut palisade_engine) {
    if !engine.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the pointer came from palisade_engine_new and is freed once.
            drop(unsafe { Box::from_raw(engine) });
        }));
    }
}

/// Loads a bundle (YAML or JSON text, `len` bytes), compiles it and swaps it in. On error the
/// previous snapshot keeps serving and `*err` (when `err` is not NULL) says what and where.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_load(
    engine: *const palisade_engine,
    yaml: *const c_char,
    len: usize,
    err: *mut *mut palisade_error,
) -> palisade_status {
    let status = guard(|| {
        if engine.is_null() || yaml.is_null() {
            return unsafe {
                report(err, make_error(palisade_status::NullArgument, "argument", "engine and yaml must not be NULL"))
            };
        }
        // SAFETY: checked non-NULL; the engine outlives the call.
        let engine = unsafe { &*engine };
        let text = match unsafe { read_str(palisade_str { ptr: yaml, len }) } {
            Ok(Some(t)) => t,
            _ => {
                return unsafe {
                    report(err, make_error(palisade_status::InvalidUtf8, "syntax", "the bundle is not UTF-8"))
                };
            }
        };
        match engine.engine.load_str(text) {
            Ok(_) => palisade_status::Ok,
            Err(e) => unsafe { report(err, load_error(&e)) },
        }
    });
    if status == palisade_status::Panic {
        unsafe { report(err, make_error(palisade_status::Panic, "panic", "internal error (panic caught)")) };
    }
    status
}

/// Loads a bundle from files and directories (`count` NUL-terminated paths).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_load_paths(
    engine: *const palisade_engine,
    paths: *const *const c_char,
    count: usize,
    err: *mut *mut palisade_error,
) -> palisade_status {
    let status = guard(|| {
        if engine.is_null() || (paths.is_null() && count > 0) {
            return unsafe {
                report(err, make_error(palisade_status::NullArgument, "argument", "engine and paths must not be NULL"))
            };
        }
        // SAFETY: checked non-NULL.
        let engine = unsafe { &*engine };
        let mut list = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: `paths` holds `count` pointers.
            let p = unsafe { *paths.add(i) };
            if p.is_null() {
                return unsafe { report(err, make_error(palisade_status::NullArgument, "argument", "a path is NULL")) };
            }
            // SAFETY: each path is a NUL-terminated string.
            match unsafe { CStr::from_ptr(p) }.to_str() {
                Ok(s) => list.push(s.to_string()),
                Err(_) => {
                    return unsafe {
                        report(err, make_error(palisade_status::InvalidUtf8, "argument", "a path is not UTF-8"))
                    };
                }
            }
        }
        match engine.engine.load_paths(&list) {
            Ok(_) => palisade_status::Ok,
            Err(e) => unsafe { report(err, load_error(&e)) },
        }
    });
    if status == palisade_status::Panic {
        unsafe { report(err, make_error(palisade_status::Panic, "panic", "internal error (panic caught)")) };
    }
    status
}

/// Pins the snapshot in force; NULL when nothing is loaded (or `engine` is NULL). Release
/// with `palisade_snapshot_release`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_snapshot(engine: *const palisade_engine) -> *mut palisade_snapshot {
    if engine.is_null() {
        return std::ptr::null_mut();
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-NULL.
        let engine = unsafe { &*engine };
        match engine.engine.snapshot() {
            Some(s) => Box::into_raw(Box::new(palisade_snapshot { snapshot: s })),
            None => std::ptr::null_mut(),
        }
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// Releases a pinned snapshot. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_snapshot_release(snapshot: *mut palisade_snapshot) {
    if !snapshot.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the pointer came from palisade_engine_snapshot and is released once.
            drop(unsafe { Box::from_raw(snapshot) });
        }));
    }
}

/// The generation of a pinned snapshot (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_snapshot_generation(snapshot: *const palisade_snapshot) -> u64 {
    if snapshot.is_null() {
        return 0;
    }
    // SAFETY: checked non-NULL.
    unsafe { &*snapshot }.snapshot.generation()
}

/// Translates the C request and calls `f` with it. Strings are validated; up to 32 headers
/// and 16 audiences are held on the stack (more allocate).
unsafe fn with_request<R>(req: &palisade_request, f: impl FnOnce(&Request<'_>) -> R) -> Result<R, palisade_status> {
    let raw_headers: &[palisade_header] = if req.header_count == 0 {
        &[]
    } else if req.headers.is_null() {
        return Err(palisade_status::NullArgument);
    } else {
        // SAFETY: `headers` holds `header_count` entries.
        unsafe { std::slice::from_raw_parts(req.headers, req.header_count) }
    };
    let raw_audiences: &[palisade_str] = if req.audience_count == 0 {
        &[]
    } else if req.audiences.is_null() {
        return Err(palisade_status::NullArgument);
    } else {
        // SAFETY: `audiences` holds `audience_count` entries.
        unsafe { std::slice::from_raw_parts(req.audiences, req.audience_count) }
    };
    with_pairs(raw_headers, |headers| with_strs(raw_audiences, |audiences| build(req, headers, audiences, f)))
}

/// Validates header pairs into a stack buffer (up to 32; more allocate) and calls `k`.
fn with_pairs<T>(
    raw: &[palisade_header],
    k: impl FnOnce(&[(&str, &str)]) -> Result<T, palisade_status>,
) -> Result<T, palisade_status> {
    let pair = |h: &palisade_header| -> Result<(&str, &str), palisade_status> {
        // SAFETY: the caller's strings are readable for the call.
        Ok(unsafe { (read_str(h.name)?.unwrap_or(""), read_str(h.value)?.unwrap_or("")) })
    };
    if raw.is_empty() {
        return k(&[]);
    }
    if raw.len() <= 32 {
        let mut buf: [(&str, &str); 32] = [("", ""); 32];
        for (slot, h) in buf.iter_mut().zip(raw) {
            *slot = pair(h)?;
        }
        return k(&buf[..raw.len()]);
    }
    let v = raw.iter().map(pair).collect::<Result<Vec<_>, _>>()?;
    k(&v)
}

/// Validates strings into a stack buffer (up to 16; more allocate) and calls `k`.
fn with_strs<T>(
    raw: &[palisade_str],
    k: impl FnOnce(&[&str]) -> Result<T, palisade_status>,
) -> Result<T, palisade_status> {
    // SAFETY: the caller's strings are readable for the call.
    let one = |x: &palisade_str| -> Result<&str, palisade_status> { Ok(unsafe { read_str(*x)? }.unwrap_or("")) };
    if raw.is_empty() {
        return k(&[]);
    }
    if raw.len() <= 16 {
        let mut buf: [&str; 16] = [""; 16];
        for (slot, x) in buf.iter_mut().zip(raw) {
            *slot = one(x)?;
        }
        return k(&buf[..raw.len()]);
    }
    let v = raw.iter().map(one).collect::<Result<Vec<_>, _>>()?;
    k(&v)
}

/// Builds the core request from validated parts and calls `f`.
fn build<R>(
    req: &palisade_request,
    headers: &[(&str, &str)],
    audiences: &[&str],
    f: impl FnOnce(&Request<'_>) -> R,
) -> Result<R, palisade_status> {
    // SAFETY: the caller's strings are readable for the call.
    let s = |x| unsafe { read_str(x) };
    let port = |p: i32| -> Result<Option<u16>, palisade_status> {
        match p {
            -1 => Ok(None),
            0..=65535 => Ok(Some(p as u16)),
            _ => Err(palisade_status::InvalidArgument),
        }
    };
    let src_ip = read_ip(&req.src_ip)?.ok_or(palisade_status::InvalidArgument)?;
    let dst_ip = read_ip(&req.dst_ip)?.ok_or(palisade_status::InvalidArgument)?;
    let remote_ip = read_ip(&req.remote_ip)?;
    let direction = match req.direction {
        0 => Direction::Both,
        1 => Direction::Ingress,
        2 => Direction::Egress,
        _ => return Err(palisade_status::InvalidArgument),
    };
    let icmp = match (req.icmp_type, req.icmp_code) {
        (-1, _) => None,
        (t @ 0..=255, -1) => Some(Icmp { icmp_type: t as u8, code: None }),
        (t @ 0..=255, c @ 0..=255) => Some(Icmp { icmp_type: t as u8, code: Some(c as u8) }),
        _ => return Err(palisade_status::InvalidArgument),
    };
    // One header name given twice (names compare case-insensitively) is a duplicate key, as
    // in the JSON form (SPEC 9.1): which value would a policy read? Allocation-free.
    if headers.iter().enumerate().any(|(i, (a, _))| headers.iter().skip(i + 1).any(|(b, _)| a.eq_ignore_ascii_case(b)))
    {
        return Err(palisade_status::InvalidArgument);
    }
    let claims_text = s(req.claims_json)?;
    let claims: Option<serde_json::Value> = match claims_text {
        None => None,
        // Strict parsing: a claim given twice is an error, not last-wins.
        Some(t) => Some(palisade_core::request::parse_json(t).map_err(|_| palisade_status::InvalidArgument)?),
    };
    let auth_principal = s(req.auth_principal)?;
    let auth_presenter = s(req.auth_presenter)?;
    let has_auth = auth_principal.is_some() || auth_presenter.is_some() || !audiences.is_empty() || claims.is_some();
    let http = if req.has_http {
        Some(Http {
            method: s(req.method)?.ok_or(palisade_status::NullArgument)?,
            path: s(req.path)?.ok_or(palisade_status::NullArgument)?,
            host: s(req.host)?,
            headers: Headers::Borrowed(headers),
        })
    } else {
        None
    };
    let request = Request {
        direction,
        protocol: if req.protocol == 0 { 6 } else { req.protocol },
        source: Address { ip: src_ip, port: port(req.src_port)?, principal: s(req.src_principal)? },
        destination: Address { ip: dst_ip, port: port(req.dst_port)?, principal: s(req.dst_principal)? },
        remote_ip,
        icmp,
        http,
        sni: s(req.sni)?,
        auth: has_auth.then_some(Auth {
            principal: auth_principal,
            audiences: StrList::Borrowed(audiences),
            presenter: auth_presenter,
            claims: claims.as_ref(),
        }),
    };
    Ok(f(&request))
}

/// The shared shape of the decide entry points: `*out` starts as a deny, `body` fills it,
/// and a caught panic leaves a deny.
unsafe fn decide_into(
    out: *mut palisade_decision,
    body: impl FnOnce(&mut palisade_decision) -> palisade_status,
) -> palisade_status {
    if out.is_null() {
        return palisade_status::NullArgument;
    }
    // SAFETY: `out` is writable (checked non-NULL) for the call.
    let out = unsafe { &mut *out };
    *out = deny_decision(palisade_reason::InvalidRequest);
    let status = guard(|| body(&mut *out));
    if status == palisade_status::Panic {
        *out = deny_decision(palisade_reason::InvalidRequest);
    }
    status
}

/// Decides a request against a pinned snapshot; allocation-free for requests without JWT
/// claims. Always fills `*out` (when not NULL): on any non-OK status it is a deny.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_decide(
    snapshot: *const palisade_snapshot,
    request: *const palisade_request,
    out: *mut palisade_decision,
) -> palisade_status {
    unsafe {
        decide_into(out, |out| {
            if snapshot.is_null() {
                *out = deny_decision(palisade_reason::NoBundle);
                return palisade_status::NoBundle;
            }
            if request.is_null() {
                return palisade_status::NullArgument;
            }
            // SAFETY: checked non-NULL; both live for the call.
            let (snap, req) = (&*snapshot, &*request);
            match with_request(req, |r| snap.snapshot.decide(r)) {
                Ok(d) => {
                    *out = to_c(&d);
                    palisade_status::Ok
                }
                Err(status) => status,
            }
        })
    }
}

/// Decides against the snapshot in force, pinning and releasing it internally. The tier and
/// policy ids in `*out` refer to that snapshot; use `palisade_decide` with a pinned snapshot
/// to read their names safely across reloads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_decide(
    engine: *const palisade_engine,
    request: *const palisade_request,
    out: *mut palisade_decision,
) -> palisade_status {
    unsafe {
        decide_into(out, |out| {
            if engine.is_null() || request.is_null() {
                return palisade_status::NullArgument;
            }
            // SAFETY: checked non-NULL; both live for the call.
            let (engine, req) = (&*engine, &*request);
            match with_request(req, |r| engine.engine.decide(r)) {
                Ok(d) => {
                    *out = to_c(&d);
                    if d.reason == Reason::NoBundle { palisade_status::NoBundle } else { palisade_status::Ok }
                }
                Err(status) => status,
            }
        })
    }
}

/// The name of the decision's tier, borrowed from `snapshot` (valid until it is released);
/// `*len` gets its length. NULL when the decision has no tier or ids are out of range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_decision_tier(
    snapshot: *const palisade_snapshot,
    decision: *const palisade_decision,
    len: *mut usize,
) -> *const c_char {
    if snapshot.is_null() || decision.is_null() {
        return std::ptr::null();
    }
    // SAFETY: checked non-NULL.
    let (snap, d) = unsafe { (&*snapshot, &*decision) };
    let name = snap.snapshot.bundle().tier(d.tier).map(|t| t.name.as_str());
    borrowed(name, len)
}

/// The decision's policy as `<kind>:[<ns>/]<name>`, borrowed from `snapshot`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_decision_policy(
    snapshot: *const palisade_snapshot,
    decision: *const palisade_decision,
    len: *mut usize,
) -> *const c_char {
    if snapshot.is_null() || decision.is_null() {
        return std::ptr::null();
    }
    // SAFETY: checked non-NULL.
    let (snap, d) = unsafe { (&*snapshot, &*decision) };
    borrowed(snap.snapshot.policy_name(d.policy), len)
}

fn borrowed(s: Option<&str>, len: *mut usize) -> *const c_char {
    match s {
        Some(s) => {
            if !len.is_null() {
                // SAFETY: checked non-NULL.
                unsafe { *len = s.len() };
            }
            s.as_ptr().cast()
        }
        None => std::ptr::null(),
    }
}

/// Decides and explains: the SPEC 7 decision JSON with its Calico-format trace, as an owned
/// NUL-terminated string in `*json` (free with `palisade_string_free`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_explain_json(
    snapshot: *const palisade_snapshot,
    request: *const palisade_request,
    json: *mut *mut c_char,
    err: *mut *mut palisade_error,
) -> palisade_status {
    let status = guard(|| {
        if snapshot.is_null() || request.is_null() || json.is_null() {
            return unsafe { report(err, make_error(palisade_status::NullArgument, "argument", "NULL argument")) };
        }
        // SAFETY: checked non-NULL.
        let (snap, req) = unsafe { (&*snapshot, &*request) };
        match unsafe { with_request(req, |r| snap.snapshot.explain(r).json().to_string()) } {
            Ok(text) => {
                unsafe { *json = cstring(&text).into_raw() };
                palisade_status::Ok
            }
            Err(s) => unsafe {
                report(err, make_error(s, "request", "the request is invalid (NULL, non-UTF-8 or out-of-range field)"))
            },
        }
    });
    if status == palisade_status::Panic {
        unsafe { report(err, make_error(palisade_status::Panic, "panic", "internal error (panic caught)")) };
    }
    status
}

/// Reads `n` strings; `None` when one is NULL-pointed or not UTF-8.
unsafe fn read_strs(list: *const palisade_str, n: usize) -> Result<Vec<String>, palisade_status> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if list.is_null() {
        return Err(palisade_status::NullArgument);
    }
    // SAFETY: the caller passes `n` valid palisade_str values.
    let items = unsafe { std::slice::from_raw_parts(list, n) };
    items
        .iter()
        .map(|s| match unsafe { read_str(*s) } {
            Ok(Some(t)) => Ok(t.to_string()),
            Ok(None) => Err(palisade_status::NullArgument),
            Err(e) => Err(e),
        })
        .collect()
}

fn write_error(e: palisade_ownership::WriteError) -> Box<palisade_error> {
    match e {
        palisade_ownership::WriteError::Load(l) => load_error(&l),
        refused @ palisade_ownership::WriteError::Refused(_) => {
            make_error(palisade_status::Refused, "refused", &refused.to_string())
        }
    }
}

/// Creates a policy store with the default configuration and the bundle given as `n` sources
/// (`names[i]`, YAML/JSON `texts[i]`), loaded unchecked (as an administrator). Returns NULL
/// on error. Free with `palisade_store_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_store_new(
    names: *const palisade_str,
    texts: *const palisade_str,
    n: usize,
    err: *mut *mut palisade_error,
) -> *mut palisade_store {
    let mut out: *mut palisade_store = std::ptr::null_mut();
    let status = guard(|| {
        let (names, texts) = match unsafe { (read_strs(names, n), read_strs(texts, n)) } {
            (Ok(a), Ok(b)) => (a, b),
            (Err(s), _) | (_, Err(s)) => return unsafe { report(err, make_error(s, "argument", "bad source list")) },
        };
        let engine = Arc::new(Engine::new(Config::default()));
        match palisade_ownership::PolicyStore::new(engine, names.into_iter().zip(texts)) {
            Ok(store) => {
                out = Box::into_raw(Box::new(palisade_store { store }));
                palisade_status::Ok
            }
            Err(e) => unsafe { report(err, write_error(e)) },
        }
    });
    if status == palisade_status::Panic {
        unsafe { report(err, make_error(palisade_status::Panic, "panic", "internal error (panic caught)")) };
    }
    out
}

/// Pins the store's snapshot in force, to decide with (`palisade_decide`); NULL when `store`
/// is NULL. Release with `palisade_snapshot_release`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_store_snapshot(store: *const palisade_store) -> *mut palisade_snapshot {
    if store.is_null() {
        return std::ptr::null_mut();
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-NULL.
        let s = unsafe { &*store };
        match s.store.engine().snapshot() {
            Some(snapshot) => Box::into_raw(Box::new(palisade_snapshot { snapshot })),
            None => std::ptr::null_mut(),
        }
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// A writer that may change the policies of the `n` tiers named, and nothing else. NULL on
/// a NULL store or bad tier names. Free with `palisade_tier_writer_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_store_tier_writer(
    store: *const palisade_store,
    tiers: *const palisade_str,
    n: usize,
) -> *mut palisade_tier_writer {
    if store.is_null() {
        return std::ptr::null_mut();
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-NULL; `tiers` holds `n` strings.
        let s = unsafe { &*store };
        match unsafe { read_strs(tiers, n) } {
            Ok(t) => Box::into_raw(Box::new(palisade_tier_writer { writer: s.store.tier_writer(t) })),
            Err(_) => std::ptr::null_mut(),
        }
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// Replaces (or adds) the source `name` with `text`. The whole new bundle is loaded and
/// compared with the one in force; anything outside the writer's tiers refuses the write
/// whole (`PALISADE_STATUS_REFUSED`, one message per change), a bundle that does not load is
/// `PALISADE_STATUS_BUNDLE`; either way nothing changes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_tier_writer_put(
    writer: *const palisade_tier_writer,
    name: palisade_str,
    text: palisade_str,
    err: *mut *mut palisade_error,
) -> palisade_status {
    let status = guard(|| {
        if writer.is_null() {
            return unsafe { report(err, make_error(palisade_status::NullArgument, "argument", "NULL writer")) };
        }
        // SAFETY: checked non-NULL.
        let w = unsafe { &*writer };
        let (name, text) = match unsafe { (read_str(name), read_str(text)) } {
            (Ok(Some(n)), Ok(Some(t))) => (n, t),
            _ => return unsafe { report(err, make_error(palisade_status::InvalidUtf8, "argument", "name or text")) },
        };
        match w.writer.put(name, text) {
            Ok(_) => palisade_status::Ok,
            Err(e) => unsafe { report(err, write_error(e)) },
        }
    });
    if status == palisade_status::Panic {
        unsafe { report(err, make_error(palisade_status::Panic, "panic", "internal error (panic caught)")) };
    }
    status
}

/// Frees a tier writer. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_tier_writer_free(writer: *mut palisade_tier_writer) {
    if !writer.is_null() {
        // SAFETY: the pointer came from palisade_store_tier_writer and is freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(writer) })));
    }
}

/// Frees a store. NULL is ignored. Writers and snapshots taken from it stay valid until freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_store_free(store: *mut palisade_store) {
    if !store.is_null() {
        // SAFETY: the pointer came from palisade_store_new and is freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(store) })));
    }
}

/// The documents of a pinned snapshot's bundle that Palisade read no access rule from, as
/// an owned JSON string `[{"apiVersion", "kind", "count"}]` (free with
/// `palisade_string_free`); NULL when `snapshot` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_snapshot_skipped_json(snapshot: *const palisade_snapshot) -> *mut c_char {
    if snapshot.is_null() {
        return std::ptr::null_mut();
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-NULL.
        let snap = unsafe { &*snapshot };
        cstring(&palisade_core::lint::skipped_json(snap.snapshot.bundle()).to_string()).into_raw()
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// `palisade_flowlog_new`'s `aggregation`: one record per evaluated side of each decision,
/// not aggregated (each with its `palisade.decision_id`).
pub const PALISADE_FLOWLOG_AGGREGATION_NONE: i32 = -1;
/// `palisade_flowlog_new`'s `aggregation`: Felix's defaults, level 2 for allowed flows and
/// 1 for denied ones. Levels 0-3 aggregate allowed and denied flows alike at that level.
pub const PALISADE_FLOWLOG_AGGREGATION_DEFAULT: i32 = -2;

/// Creates a flow logger deciding with `engine` (which it keeps alive: the engine may be
/// freed first). `capacity` is the number of decisions its queue holds (0: the default,
/// 4096), allocated now; when the queue is full further decisions are still decided but not
/// recorded, and counted (`palisade_flowlog_dropped`). `aggregation` is how
/// `palisade_flowlog_drain_json` aggregates: `PALISADE_FLOWLOG_AGGREGATION_NONE`,
/// `PALISADE_FLOWLOG_AGGREGATION_DEFAULT`, or a Calico level 0-3. Returns NULL on error
/// (NULL engine, another aggregation value), with `*err` set when `err` is not NULL. Free
/// with `palisade_flowlog_free`. Every function on a flow logger may be called from any
/// thread, concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_flowlog_new(
    engine: *const palisade_engine,
    capacity: usize,
    aggregation: i32,
    err: *mut *mut palisade_error,
) -> *mut palisade_flowlog {
    let mut out: *mut palisade_flowlog = std::ptr::null_mut();
    let status = guard(|| {
        if engine.is_null() {
            return unsafe { report(err, make_error(palisade_status::NullArgument, "argument", "NULL engine")) };
        }
        // SAFETY: checked non-NULL; the engine lives for the call.
        let engine = unsafe { &*engine }.engine.clone();
        let mut config = FlowLogConfig::default();
        if capacity > 0 {
            config.capacity = capacity;
        }
        let aggregated = match aggregation {
            PALISADE_FLOWLOG_AGGREGATION_NONE => false,
            PALISADE_FLOWLOG_AGGREGATION_DEFAULT => true,
            n => match u8::try_from(n).ok().and_then(Aggregation::from_level) {
                Some(level) => {
                    config.aggregation_allowed = level;
                    config.aggregation_denied = level;
                    true
                }
                None => {
                    let msg = format!("aggregation {n}: give -1 (none), -2 (Felix's defaults) or a level 0-3");
                    return unsafe { report(err, make_error(palisade_status::InvalidArgument, "argument", &msg)) };
                }
            },
        };
        let log = FlowLog::new(config);
        if let Some(s) = engine.snapshot() {
            log.prepare(&s);
        }
        out = Box::into_raw(Box::new(palisade_flowlog { log, engine, aggregated }));
        palisade_status::Ok
    });
    if status == palisade_status::Panic {
        unsafe { report(err, make_error(palisade_status::Panic, "panic", "internal error (panic caught)")) };
    }
    out
}

/// Decides a request against the engine's snapshot in force, as `palisade_engine_decide`
/// does (same statuses, same decision), and records the decision for the flow log. Never
/// blocks or allocates (for requests without JWT claims). Always fills `*out` (when not
/// NULL): on any non-OK status it is a deny. Requests that do not translate (a non-OK
/// status other than `PALISADE_STATUS_NO_BUNDLE`) are not recorded.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_flowlog_decide(
    flowlog: *const palisade_flowlog,
    request: *const palisade_request,
    out: *mut palisade_decision,
) -> palisade_status {
    unsafe {
        decide_into(out, |out| {
            if flowlog.is_null() || request.is_null() {
                return palisade_status::NullArgument;
            }
            // SAFETY: checked non-NULL; both live for the call.
            let (fl, req) = (&*flowlog, &*request);
            match with_request(req, |r| fl.log.decide(&fl.engine, r)) {
                Ok(d) => {
                    *out = to_c(&d);
                    if d.reason == Reason::NoBundle { palisade_status::NoBundle } else { palisade_status::Ok }
                }
                Err(status) => status,
            }
        })
    }
}

/// Takes every recorded decision and returns its flow-log records, aggregated as configured,
/// as Calico `flows.log` JSON lines (each ending in a newline; an empty string when nothing
/// was recorded), an owned string to free with `palisade_string_free`. NULL when `flowlog`
/// is NULL (or on an internal error).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_flowlog_drain_json(flowlog: *const palisade_flowlog) -> *mut c_char {
    if flowlog.is_null() {
        return std::ptr::null_mut();
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-NULL.
        let fl = unsafe { &*flowlog };
        let records = if fl.aggregated { fl.log.drain_aggregated() } else { fl.log.drain() };
        let mut text = String::new();
        for r in &records {
            text.push_str(&r.to_json_line());
            text.push('\n');
        }
        cstring(&text).into_raw()
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// How many decisions were not recorded because the queue was full (never reset; 0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_flowlog_dropped(flowlog: *const palisade_flowlog) -> u64 {
    if flowlog.is_null() {
        return 0;
    }
    // SAFETY: checked non-NULL.
    unsafe { &*flowlog }.log.stats().dropped
}

/// Frees a flow logger (decisions still queued are discarded). NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_flowlog_free(flowlog: *mut palisade_flowlog) {
    if !flowlog.is_null() {
        // SAFETY: the pointer came from palisade_flowlog_new and is freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(flowlog) })));
    }
}

/// Frees a string returned by Palisade. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the string came from CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The error's status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_status(err: *const palisade_error) -> palisade_status {
    if err.is_null() {
        return palisade_status::NullArgument;
    }
    // SAFETY: checked non-NULL.
    unsafe { &*err }.status
}

/// The error's message (NUL-terminated, borrowed from the error).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_message(err: *const palisade_error) -> *const c_char {
    if err.is_null() {
        return c"(null error)".as_ptr();
    }
    // SAFETY: checked non-NULL.
    unsafe { &*err }.message.as_ptr()
}

/// Every error of a rejected load, one located line each, the headline first
/// (NUL-terminated, borrowed from the error); the message itself for other errors.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_report(err: *const palisade_error) -> *const c_char {
    if err.is_null() {
        return c"(null error)".as_ptr();
    }
    // SAFETY: checked non-NULL.
    unsafe { &*err }.report.as_ptr()
}

/// How many errors the load found (at most 100 are listed in the report; 1 for errors that
/// are not load errors, 0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_count(err: *const palisade_error) -> usize {
    if err.is_null() {
        return 0;
    }
    // SAFETY: checked non-NULL.
    unsafe { &*err }.count
}

/// A stable lower-case code for the error kind (`syntax`, `schema`, `invalid`, `unsupported`,
/// `duplicate`, `unknown_tier`, `limit`, `empty`, `io`, `config`, `argument`, `panic`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_kind(err: *const palisade_error) -> *const c_char {
    if err.is_null() {
        return c"argument".as_ptr();
    }
    // SAFETY: checked non-NULL.
    unsafe { &*err }.kind.as_ptr()
}

/// For bundle errors: the source file, the object (`Kind ns/name`) and the field path
/// (each NULL when unknown); `*document` gets the document index or -1.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_location(
    err: *const palisade_error,
    file: *mut *const c_char,
    object: *mut *const c_char,
    field: *mut *const c_char,
    document: *mut i64,
) {
    if err.is_null() {
        return;
    }
    // SAFETY: checked non-NULL; out pointers are checked before writing.
    let e = unsafe { &*err };
    let put = |dst: *mut *const c_char, v: &Option<CString>| {
        if !dst.is_null() {
            unsafe { *dst = v.as_ref().map(|c| c.as_ptr()).unwrap_or(std::ptr::null()) };
        }
    };
    put(file, &e.file);
    put(object, &e.object);
    put(field, &e.field);
    if !document.is_null() {
        unsafe { *document = e.document };
    }
}

/// Frees an error. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_free(err: *mut palisade_error) {
    if !err.is_null() {
        // SAFETY: the error came from this library and is freed once.
        drop(unsafe { Box::from_raw(err) });
    }
}
