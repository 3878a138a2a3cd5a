//! The C types of the ABI: statuses, handles, strings and addresses, the request, the
//! decision and the configuration, and the translation of a core decision into its C form.

use std::ffi::CString;
use std::sync::Arc;

use palisade_core::flowlog::FlowLog;
use palisade_core::{Action, Decision, Engine, Peer, Reason, Side, Snapshot};
use std::ffi::c_char;

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
    pub(crate) status: palisade_status,
    pub(crate) message: CString,
    pub(crate) kind: CString,
    pub(crate) file: Option<CString>,
    pub(crate) object: Option<CString>,
    pub(crate) field: Option<CString>,
    pub(crate) document: i64,
    /// Every error of a rejected load, one per line (the message for other errors).
    pub(crate) report: CString,
    /// How many errors the load found (1 for errors that are not load errors).
    pub(crate) count: usize,
}

/// A policy decision point: holds the snapshot in force.
pub struct palisade_engine {
    pub(crate) engine: Arc<Engine>,
}

/// A pinned snapshot: valid until released, whatever reloads happen.
pub struct palisade_snapshot {
    pub(crate) snapshot: Arc<Snapshot>,
}

/// A policy store: an engine whose policy is changed through tier-scoped writers (several
/// teams writing into one engine, each only into its own tiers).
pub struct palisade_store {
    pub(crate) store: Arc<palisade_ownership::PolicyStore>,
}

/// A writer that may change the policies of some tiers only (no Tier object, no network set).
pub struct palisade_tier_writer {
    pub(crate) writer: palisade_ownership::TierWriter,
}

/// A flow logger over an engine: decides like `palisade_engine_decide` and records each
/// decision (allocation-free, never waits) into a bounded queue; `palisade_flowlog_drain_json`
/// turns the queue into Calico-format flow-log records. It keeps its engine alive.
pub struct palisade_flowlog {
    pub(crate) log: FlowLog,
    pub(crate) engine: Arc<Engine>,
    pub(crate) aggregated: bool,
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

pub(crate) const NONE_ID: u32 = u32::MAX;

pub(crate) fn deny_decision(reason: palisade_reason) -> palisade_decision {
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

pub(crate) fn to_c(d: &Decision) -> palisade_decision {
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
