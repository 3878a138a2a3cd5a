//! Flow logs in Calico's format: one record per evaluated side of a decision, with Calico's
//! field names (`start_time`, `reporter`, `source_name_aggr`, `policies.enforced_policies`
//! ...) and Calico's policy names in the hit strings, so that `flows.log` pipelines,
//! index mappings and dashboards built for Calico read Palisade's records unchanged.
//! Palisade's own fields (decision id, reason, generation, presented principal) live under
//! the one key `palisade`, which Calico never writes.
//!
//! Two ways in:
//!
//! * [`FlowLog::decide`]: decides like [`Engine::decide`] and captures the decision, its tier
//!   walk and the request's addresses into a bounded, preallocated queue. It takes no lock,
//!   never waits and allocates nothing; when the queue is full the capture is dropped and
//!   counted ([`FlowLog::stats`]). [`FlowLog::drain`] (any thread) turns captures into
//!   [`FlowRecord`]s with the names of the snapshot that decided.
//! * [`records`]: builds the records of one capture directly (the CLI does this).
//!
//! [`aggregate`] merges records as Felix does at its levels 0-3; [`FileSink`] writes
//! JSON lines and rotates as Felix does (`flows.log`, 100 MB, 5 files). See
//! `docs/flow-logs.md` for every field and what Palisade cannot know.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};

use crate::decision::{Action, Decision, Reason};
use crate::engine::Engine;
use crate::model::{Bundle, Policy, PolicyKind, StagedAction};
use crate::request::{Direction, Request};
use crate::snapshot::Snapshot;
use crate::trace::{Hit, HitAction, HitSource, Recorder};

/// Most hits recorded per side; a longer walk is recorded up to here and flagged
/// `palisade.truncated`.
pub const MAX_HITS: usize = 24;

const PLACEHOLDER: Hit = Hit { source: HitSource::Profile { endpoint: 0 }, action: HitAction::Allow, rule: 0 };

/// The hits of one side, in a fixed array (no allocation).
#[derive(Debug, Clone, Copy)]
pub struct SideHits {
    evaluated: bool,
    truncated: bool,
    len: u8,
    hits: [Hit; MAX_HITS],
}

impl Default for SideHits {
    fn default() -> Self {
        SideHits { evaluated: false, truncated: false, len: 0, hits: [PLACEHOLDER; MAX_HITS] }
    }
}

impl SideHits {
    /// Whether the side was evaluated.
    pub fn evaluated(&self) -> bool {
        self.evaluated
    }

    /// The recorded hits.
    pub fn hits(&self) -> &[Hit] {
        self.hits.get(..self.len as usize).unwrap_or_default()
    }

    /// Whether hits were lost because the walk was longer than [`MAX_HITS`].
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn from_vec(v: Option<&Vec<Hit>>) -> SideHits {
        let mut s = SideHits::default();
        if let Some(v) = v {
            s.evaluated = true;
            for h in v {
                s.push(*h);
            }
        }
        s
    }

    fn push(&mut self, hit: Hit) {
        self.evaluated = true;
        match self.hits.get_mut(self.len as usize) {
            Some(slot) => {
                *slot = hit;
                self.len += 1;
            }
            None => self.truncated = true,
        }
    }
}

/// A [`Recorder`] into fixed arrays: the tier walk of both sides without allocating.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedTrace {
    /// The source's egress walk.
    pub egress: SideHits,
    /// The destination's ingress walk.
    pub ingress: SideHits,
}

impl FixedTrace {
    /// A copy of an allocated [`crate::trace::Trace`].
    pub fn from_trace(t: &crate::trace::Trace) -> FixedTrace {
        FixedTrace { egress: SideHits::from_vec(t.egress.as_ref()), ingress: SideHits::from_vec(t.ingress.as_ref()) }
    }
}

impl Recorder for FixedTrace {
    #[inline]
    fn hit(&mut self, side: crate::Side, hit: Hit) {
        match side {
            crate::Side::Egress => self.egress.push(hit),
            crate::Side::Ingress => self.ingress.push(hit),
        }
    }

    #[inline]
    fn side(&mut self, side: crate::Side) {
        match side {
            crate::Side::Egress => self.egress.evaluated = true,
            crate::Side::Ingress => self.ingress.evaluated = true,
        }
    }
}

/// A string copied into a fixed buffer (no allocation); longer text is cut at a character
/// boundary and flagged.
#[derive(Debug, Clone, Copy)]
pub struct InlineStr<const N: usize> {
    len: u16,
    present: bool,
    truncated: bool,
    bytes: [u8; N],
}

impl<const N: usize> InlineStr<N> {
    /// Nothing.
    pub const NONE: Self = InlineStr { len: 0, present: false, truncated: false, bytes: [0; N] };

    /// Copies `s` (up to `N` bytes).
    pub fn new(s: Option<&str>) -> Self {
        let mut out = Self::NONE;
        let Some(s) = s else { return out };
        out.present = true;
        let mut end = s.len().min(N);
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        out.truncated = end < s.len();
        if let (Some(dst), Some(src)) = (out.bytes.get_mut(..end), s.as_bytes().get(..end)) {
            dst.copy_from_slice(src);
            out.len = end as u16;
        }
        out
    }

    /// The text, when present.
    pub fn get(&self) -> Option<&str> {
        if !self.present {
            return None;
        }
        self.bytes.get(..self.len as usize).and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Whether the text was cut.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

/// Everything a flow record is built from, captured on the decision path without
/// allocating: the decision, both walks, the request's addresses and the snapshot.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The snapshot that decided (for names); `None` when nothing was loaded.
    pub snapshot: Option<Arc<Snapshot>>,
    /// The decision.
    pub decision: Decision,
    /// The enforced tier walk.
    pub trace: FixedTrace,
    /// The walk with staged policies as if enforced, when some staged policy was relevant
    /// and the pending view of the snapshot was ready.
    pub pending: Option<FixedTrace>,
    /// The request's direction.
    pub direction: Direction,
    /// IP protocol number.
    pub protocol: u8,
    /// Source IP and port.
    pub source: (IpAddr, Option<u16>),
    /// Destination IP and port.
    pub destination: (IpAddr, Option<u16>),
    /// The principal the source presented.
    pub principal: InlineStr<160>,
    /// The principal the destination presented.
    pub dest_principal: InlineStr<160>,
    /// HTTP method, when the request had HTTP attributes.
    pub http_method: InlineStr<16>,
    /// HTTP path (as sent, before normalisation).
    pub http_path: InlineStr<256>,
    /// Unix seconds of the decision.
    pub time: u64,
    /// Sequence number of the decision within its [`FlowLog`] (the decision id's low half).
    pub sequence: u64,
    /// The decision id's high half (random per [`FlowLog`]).
    pub id_seed: u64,
}

impl Capture {
    /// Captures a decision (allocation-free).
    pub fn new(
        snapshot: Option<Arc<Snapshot>>,
        req: &Request<'_>,
        decision: Decision,
        trace: FixedTrace,
        pending: Option<FixedTrace>,
    ) -> Capture {
        let time = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Capture {
            snapshot,
            decision,
            trace,
            pending,
            direction: req.direction,
            protocol: req.protocol,
            source: (req.source.ip, req.source.port),
            destination: (req.destination.ip, req.destination.port),
            principal: InlineStr::new(req.source.principal),
            dest_principal: InlineStr::new(req.destination.principal),
            http_method: InlineStr::new(req.http.as_ref().map(|h| h.method)),
            http_path: InlineStr::new(req.http.as_ref().map(|h| h.path)),
            time,
            sequence: 0,
            id_seed: 0,
        }
    }

    /// The decision id: 32 hex digits, unique within a process run.
    pub fn decision_id(&self) -> String {
        format!("{:016x}{:016x}", self.id_seed, self.sequence)
    }
}

/// `{"labels": ["k=v", ...]}`, as Calico writes `source_labels` / `dest_labels`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    /// `key=value`, sorted.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// The `policies` object of a Calico flow log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    /// Every hit: the enforced walk, then the hits of staged policies in the pending walk.
    #[serde(default)]
    pub all_policies: Vec<String>,
    /// The enforced walk.
    #[serde(default)]
    pub enforced_policies: Vec<String>,
    /// The walk with staged policies as if enforced.
    #[serde(default)]
    pub pending_policies: Vec<String>,
}

/// Palisade's own fields, under the key `palisade` (OPA decision-log style).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PalisadeFields {
    /// Unique id of the decision (absent when several decisions were aggregated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    /// How many decisions this record stands for.
    #[serde(default)]
    pub decisions: u64,
    /// The decision's reason (`rule`, `end_of_tier`, `identity_mismatch` ...).
    #[serde(default)]
    pub reason: String,
    /// The snapshot generation that decided (the bundle revision).
    #[serde(default)]
    pub generation: u64,
    /// Palisade's name of the deciding policy (`np:shop/cart-api`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The deciding rule (`-1` for an end-of-tier action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<i32>,
    /// For identity reasons: `source` or `destination`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The principal the source presented (its certificate's SPIFFE ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The principal the destination presented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_principal: Option<String>,
    /// HTTP method of the decided request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// HTTP path of the decided request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    /// The proxy must decide again with the HTTP request.
    #[serde(default)]
    pub l7_pending: bool,
    /// The staged verdict, when staged policies were relevant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<String>,
    /// Some hit or string was cut to fit the capture.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// One flow-log record, as a line of Calico's `flows.log`. Reading a Calico record (with
/// fields Palisade never writes, such as `bytes_in`) ignores those fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowRecord {
    /// Start of the interval (Unix seconds).
    pub start_time: u64,
    /// End of the interval (Unix seconds).
    pub end_time: u64,
    /// Source IP; `null` when aggregated away.
    pub source_ip: Option<String>,
    /// Pod or network-set name; `-` when aggregated away or not applicable.
    pub source_name: String,
    /// Aggregated name: the pod name, the network set, or `pvt`/`pub` for other IPs.
    pub source_name_aggr: String,
    /// Namespace; `-` when not namespaced.
    pub source_namespace: String,
    /// Source port; `null` when aggregated away or absent.
    pub source_port: Option<u16>,
    /// `wep`, `ns` or `net`.
    pub source_type: String,
    /// Labels of the workload or network set.
    pub source_labels: Option<Labels>,
    /// Destination IP.
    pub dest_ip: Option<String>,
    /// Destination name.
    pub dest_name: String,
    /// Destination aggregated name.
    pub dest_name_aggr: String,
    /// Destination namespace.
    pub dest_namespace: String,
    /// Destination port.
    pub dest_port: Option<u16>,
    /// `wep`, `ns` or `net`.
    pub dest_type: String,
    /// Destination labels.
    pub dest_labels: Option<Labels>,
    /// `tcp`, `udp`, `icmp`, `icmp6`, `sctp`, `ipip`, `esp`, or the protocol number.
    pub proto: String,
    /// `allow` or `deny`: this side's verdict.
    pub action: String,
    /// `src` (the source's egress side) or `dst` (the destination's ingress side).
    pub reporter: String,
    /// The hits, in Calico's `<index>|<tier>|<policy>|<action>|<rule>` strings.
    pub policies: Option<Policies>,
    /// Flows in the record.
    pub num_flows: u64,
    /// Flows started in the interval.
    pub num_flows_started: u64,
    /// Flows completed in the interval (Palisade never sees a connection end: 0).
    pub num_flows_completed: u64,
    /// HTTP requests allowed (destination side).
    pub http_requests_allowed_in: u64,
    /// HTTP requests denied (destination side).
    pub http_requests_denied_in: u64,
    /// Palisade's additions; absent in Calico's own records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub palisade: Option<PalisadeFields>,
}

impl FlowRecord {
    /// The record as one JSON line (no newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Calico's name of a protocol in flow logs.
pub fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        4 => "ipip".into(),
        50 => "esp".into(),
        58 => "icmp6".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

/// The protocol number of a flow log's `proto`.
pub fn proto_number(s: &str) -> Option<u8> {
    match s {
        "icmp" => Some(1),
        "tcp" => Some(6),
        "udp" => Some(17),
        "ipip" => Some(4),
        "esp" => Some(50),
        "icmp6" => Some(58),
        "sctp" => Some(132),
        n => n.parse().ok(),
    }
}

/// Calico's flow-log name of a policy: `<tier>.<name>` (global), `<ns>/<tier>.<name>`
/// (namespaced), `<ns>/knp.default.<name>` (Kubernetes), with `staged:` before the name
/// part for staged policies (`<tier>.staged:<name>`, `<ns>/staged:knp.default.<name>`).
pub fn calico_policy_name(bundle: &Bundle, p: &Policy) -> String {
    let tier = bundle.tier(p.tier).map(|t| t.name.as_str()).unwrap_or("default");
    let staged = if p.staged.is_some() { "staged:" } else { "" };
    // A policy in a tier may be named `<tier>.<name>` (required before Calico v3.28); Calico
    // writes the name without that prefix.
    let name = p.name.strip_prefix(tier).and_then(|n| n.strip_prefix('.')).unwrap_or(&p.name);
    match (p.kind, &p.namespace) {
        (PolicyKind::KubernetesNetworkPolicy | PolicyKind::StagedKubernetesNetworkPolicy, Some(ns)) => {
            format!("{ns}/{staged}knp.default.{name}")
        }
        (_, Some(ns)) => format!("{ns}/{tier}.{staged}{name}"),
        (_, None) => format!("{tier}.{staged}{name}"),
    }
}

fn hit_string(index: usize, hit: &Hit, bundle: &Bundle) -> String {
    match hit.source {
        HitSource::Policy { tier, policy } => {
            let tier = bundle.tier(tier).map(|t| t.name.as_str()).unwrap_or("?");
            let name = bundle.policy(policy).map(|p| calico_policy_name(bundle, p)).unwrap_or_else(|| "?".into());
            format!("{index}|{tier}|{name}|{}|{}", hit.action.as_str(), hit.rule)
        }
        HitSource::Profile { endpoint } => {
            let ns = bundle.endpoints.get(endpoint as usize).map(|e| e.namespace.as_str()).unwrap_or("?");
            format!("{index}|__PROFILE__|__PROFILE__.kns.{ns}|{}|{}", hit.action.as_str(), hit.rule)
        }
    }
}

/// Calico's hit strings of a walk; `Log` hits are left out (Calico's flow logs have none)
/// and the others numbered from 0.
fn hit_strings<'a>(hits: impl Iterator<Item = &'a Hit>, bundle: &Bundle) -> Vec<String> {
    hits.filter(|h| h.action != HitAction::Log).enumerate().map(|(i, h)| hit_string(i, h, bundle)).collect()
}

fn is_staged_hit(h: &Hit, bundle: &Bundle) -> bool {
    match h.source {
        HitSource::Policy { policy, .. } => bundle.policy(policy).is_some_and(|p| p.staged.is_some()),
        HitSource::Profile { .. } => false,
    }
}

struct EndMeta {
    name: String,
    name_aggr: String,
    namespace: String,
    kind: &'static str,
    labels: Option<Labels>,
}

/// `key=value` of an endpoint's labels, without the `pcns.` / `pcsa.` labels that Calico
/// derives for selectors only (namespace and service-account labels), which its flow logs
/// do not carry.
fn flatten(labels: &BTreeMap<String, String>) -> Labels {
    Labels {
        labels: labels
            .iter()
            .filter(|(k, _)| !k.starts_with("pcns.") && !k.starts_with("pcsa."))
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
    }
}

/// Whether Calico would call an address private (`pvt`) rather than public (`pub`):
/// RFC 1918 and IPv6 unique-local addresses.
pub fn is_private(ip: IpAddr) -> bool {
    match crate::net::canonical_ip(ip) {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

fn end_meta(bundle: Option<&Bundle>, ip: IpAddr) -> EndMeta {
    let ip = crate::net::canonical_ip(ip);
    if let Some(b) = bundle {
        if let Some(e) = b.endpoint_by_ip(ip) {
            return EndMeta {
                name: e.name.clone(),
                name_aggr: e.name.clone(),
                namespace: e.namespace.clone(),
                kind: "wep",
                labels: Some(flatten(&e.labels)),
            };
        }
        // The network set with the longest matching prefix, as Calico picks one.
        let best = b
            .network_sets
            .iter()
            .filter_map(|s| s.nets.iter().filter(|n| n.contains(&ip)).map(|n| n.prefix_len()).max().map(|l| (l, s)))
            .max_by_key(|(l, _)| *l);
        if let Some((_, s)) = best {
            return EndMeta {
                name: s.name.clone(),
                name_aggr: s.name.clone(),
                namespace: s.namespace.clone().unwrap_or_else(|| "-".into()),
                kind: "ns",
                labels: Some(flatten(&s.labels)),
            };
        }
    }
    EndMeta {
        name: "-".into(),
        name_aggr: if is_private(ip) { "pvt".into() } else { "pub".into() },
        namespace: "-".into(),
        kind: "net",
        labels: None,
    }
}

fn side_action(hits: &SideHits, fallback: Action) -> Action {
    match hits.hits().iter().rev().find(|h| h.action != HitAction::Log).map(|h| h.action) {
        Some(HitAction::Allow) => Action::Allow,
        Some(HitAction::Deny) => Action::Deny,
        _ => fallback,
    }
}

/// The records of one captured decision: one per evaluated side (`src` for egress, `dst`
/// for ingress). A decision with no evaluated side (identity and validation denials, no
/// bundle, neither IP a known endpoint) gives one record with empty `policies`, reported by
/// `dst` (by `src` for a request of direction `egress`).
pub fn records(c: &Capture) -> Vec<FlowRecord> {
    let bundle = c.snapshot.as_deref().map(Snapshot::bundle);
    let src = end_meta(bundle, c.source.0);
    let dst = end_meta(bundle, c.destination.0);
    let d = &c.decision;
    let truncated = c.trace.egress.truncated()
        || c.trace.ingress.truncated()
        || c.pending.is_some_and(|p| p.egress.truncated() || p.ingress.truncated())
        || c.principal.truncated()
        || c.dest_principal.truncated()
        || c.http_path.truncated();
    let palisade = PalisadeFields {
        decision_id: Some(c.decision_id()),
        decisions: 1,
        reason: d.reason.as_str().into(),
        generation: d.generation,
        policy: d.policy.and_then(|p| c.snapshot.as_deref().and_then(|s| s.policy_name(p)).map(str::to_string)),
        rule: d.rule,
        peer: d.peer.map(|p| p.as_str().into()),
        principal: c.principal.get().map(str::to_string),
        dest_principal: c.dest_principal.get().map(str::to_string),
        http_method: c.http_method.get().map(str::to_string),
        http_path: c.http_path.get().map(str::to_string),
        l7_pending: d.l7_pending,
        staged: d.staged.map(|a| a.as_str().into()),
        truncated,
    };
    let is_http = c.http_method.get().is_some();
    let mut sides: Vec<(crate::Side, &SideHits)> = Vec::new();
    if c.trace.egress.evaluated() {
        sides.push((crate::Side::Egress, &c.trace.egress));
    }
    if c.trace.ingress.evaluated() {
        sides.push((crate::Side::Ingress, &c.trace.ingress));
    }
    let base = |reporter: &str, action: Action, policies: Option<Policies>| {
        let dst_side = reporter == "dst";
        FlowRecord {
            start_time: c.time,
            end_time: c.time,
            source_ip: Some(crate::net::canonical_ip(c.source.0).to_string()),
            source_name: src.name.clone(),
            source_name_aggr: src.name_aggr.clone(),
            source_namespace: src.namespace.clone(),
            source_port: c.source.1,
            source_type: src.kind.into(),
            source_labels: src.labels.clone(),
            dest_ip: Some(crate::net::canonical_ip(c.destination.0).to_string()),
            dest_name: dst.name.clone(),
            dest_name_aggr: dst.name_aggr.clone(),
            dest_namespace: dst.namespace.clone(),
            dest_port: c.destination.1,
            dest_type: dst.kind.into(),
            dest_labels: dst.labels.clone(),
            proto: proto_name(c.protocol),
            action: action.as_str().into(),
            reporter: reporter.into(),
            policies,
            num_flows: 1,
            num_flows_started: 1,
            num_flows_completed: 0,
            http_requests_allowed_in: u64::from(dst_side && is_http && action == Action::Allow),
            http_requests_denied_in: u64::from(dst_side && is_http && action == Action::Deny),
            palisade: Some(palisade.clone()),
        }
    };
    let Some(bundle) = bundle.filter(|_| !sides.is_empty()) else {
        let reporter = if c.direction == Direction::Egress { "src" } else { "dst" };
        return vec![base(reporter, d.action, Some(Policies::default()))];
    };
    sides
        .into_iter()
        .map(|(side, hits)| {
            let enforced = hit_strings(hits.hits().iter(), bundle);
            let pending_side = c.pending.as_ref().map(|p| match side {
                crate::Side::Egress => &p.egress,
                crate::Side::Ingress => &p.ingress,
            });
            let pending = match pending_side {
                Some(p) if p.evaluated() => hit_strings(p.hits().iter(), bundle),
                _ => enforced.clone(),
            };
            let staged_hits: Vec<&Hit> = pending_side
                .map(|p| p.hits().iter().filter(|h| h.action != HitAction::Log && is_staged_hit(h, bundle)).collect())
                .unwrap_or_default();
            let all = hit_strings(hits.hits().iter().filter(|h| h.action != HitAction::Log).chain(staged_hits), bundle);
            let reporter = match side {
                crate::Side::Egress => "src",
                crate::Side::Ingress => "dst",
            };
            let policies = Policies { all_policies: all, enforced_policies: enforced, pending_policies: pending };
            base(reporter, side_action(hits, d.action), Some(policies))
        })
        .collect()
}

/// The snapshot with staged policies as if enforced, for `pending_policies`: the same
/// bundle (so the same policy ids) with each `stagedAction: Set` policy enforced, and each
/// policy it stands for, and each `Delete` staged policy, governing no direction.
pub fn pending_view(snapshot: &Snapshot) -> Option<Snapshot> {
    let b = snapshot.bundle();
    if b.policies.iter().all(|p| p.staged.is_none()) {
        return None;
    }
    let key = |p: &Policy| (p.kind.enforced_counterpart(), p.namespace.clone(), p.name.clone(), p.tier);
    let staged_keys: BTreeSet<_> = b.policies.iter().filter(|q| q.staged.is_some()).map(key).collect();
    let mut bundle = b.clone();
    for p in &mut bundle.policies {
        match p.staged {
            Some(StagedAction::Set) => p.staged = None,
            Some(StagedAction::Delete) => {
                p.ingress = None;
                p.egress = None;
            }
            None if staged_keys.contains(&key(p)) => {
                p.ingress = None;
                p.egress = None;
            }
            None => {}
        }
    }
    Some(Snapshot::from_bundle(bundle, snapshot.config(), snapshot.generation()))
}

/// Settings of a [`FlowLog`].
#[derive(Debug, Clone)]
pub struct FlowLogConfig {
    /// Captures held before new ones are dropped (memory is preallocated:
    /// `capacity * size_of::<Capture>()` bytes, see [`FlowLog::memory_bytes`]).
    pub capacity: usize,
    /// Aggregation level of allowed flows (Felix's default: 2).
    pub aggregation_allowed: Aggregation,
    /// Aggregation level of denied flows (Felix's default: 1).
    pub aggregation_denied: Aggregation,
    /// Seconds between flushes of a writer (Felix's default: 300).
    pub flush_interval_secs: u64,
}

impl Default for FlowLogConfig {
    fn default() -> Self {
        FlowLogConfig {
            capacity: 4096,
            aggregation_allowed: Aggregation::PrefixName,
            aggregation_denied: Aggregation::SourcePort,
            flush_interval_secs: 300,
        }
    }
}

/// Felix's flow-log aggregation levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Aggregation {
    /// 0: nothing aggregated (Felix `AggregateNothing`).
    Nothing = 0,
    /// 1: source ports aggregated (`AggregateBySourcePort`).
    SourcePort = 1,
    /// 2: IPs, source port and pod names aggregated; `name_aggr` kept (`AggregateByPodPrefix`).
    PrefixName = 2,
    /// 3: destination ports aggregated too (`AggregateIPsAndPorts`... Felix's no-dest-ports kind).
    NoDestPorts = 3,
}

impl Aggregation {
    /// The level from its number.
    pub fn from_level(n: u8) -> Option<Aggregation> {
        match n {
            0 => Some(Aggregation::Nothing),
            1 => Some(Aggregation::SourcePort),
            2 => Some(Aggregation::PrefixName),
            3 => Some(Aggregation::NoDestPorts),
            _ => None,
        }
    }
}

fn blank(r: &mut FlowRecord, level: Aggregation) {
    if level >= Aggregation::SourcePort {
        r.source_port = None;
    }
    if level >= Aggregation::PrefixName {
        r.source_ip = None;
        r.dest_ip = None;
        r.source_name = "-".into();
        r.dest_name = "-".into();
    }
    if level >= Aggregation::NoDestPorts {
        r.dest_port = None;
    }
}

fn intersect(a: &mut Option<Labels>, b: &Option<Labels>) {
    if let (Some(a), Some(b)) = (a.as_mut(), b.as_ref()) {
        a.labels.retain(|l| b.labels.contains(l));
    }
}

/// Merges records as Felix does over one flush interval: fields the level aggregates away
/// are blanked, then records equal in everything else (action, reporter, endpoints, ports
/// kept, protocol, policies, and Palisade's reason, deciding policy and principals) become
/// one, with counts summed, the interval widened and labels intersected. Different actions
/// are never merged. Order: first appearance.
pub fn aggregate(records: Vec<FlowRecord>, allowed: Aggregation, denied: Aggregation) -> Vec<FlowRecord> {
    let mut out: Vec<FlowRecord> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for mut r in records {
        let level = if r.action == "deny" { denied } else { allowed };
        blank(&mut r, level);
        let mut key_rec = r.clone();
        key_rec.start_time = 0;
        key_rec.end_time = 0;
        key_rec.source_labels = None;
        key_rec.dest_labels = None;
        key_rec.num_flows = 0;
        key_rec.num_flows_started = 0;
        key_rec.num_flows_completed = 0;
        key_rec.http_requests_allowed_in = 0;
        key_rec.http_requests_denied_in = 0;
        if let Some(p) = key_rec.palisade.as_mut() {
            // Only the presented principal keeps flows apart; the decision-level fields
            // (reason, deciding policy ...) of merged flows are kept where they agree.
            *p = PalisadeFields {
                principal: p.principal.take(),
                dest_principal: p.dest_principal.take(),
                ..Default::default()
            };
        }
        let key = key_rec.to_json_line();
        match index.get(&key).and_then(|&i| out.get_mut(i)) {
            Some(m) => {
                m.start_time = m.start_time.min(r.start_time);
                m.end_time = m.end_time.max(r.end_time);
                m.num_flows += r.num_flows;
                m.num_flows_started += r.num_flows_started;
                m.num_flows_completed += r.num_flows_completed;
                m.http_requests_allowed_in += r.http_requests_allowed_in;
                m.http_requests_denied_in += r.http_requests_denied_in;
                intersect(&mut m.source_labels, &r.source_labels);
                intersect(&mut m.dest_labels, &r.dest_labels);
                if let (Some(mp), Some(rp)) = (m.palisade.as_mut(), r.palisade.as_ref()) {
                    mp.decisions += rp.decisions;
                    mp.decision_id = None;
                    mp.generation = mp.generation.max(rp.generation);
                    mp.truncated |= rp.truncated;
                    if mp.http_path != rp.http_path {
                        mp.http_path = None;
                    }
                    if mp.http_method != rp.http_method {
                        mp.http_method = None;
                    }
                    if mp.reason != rp.reason {
                        mp.reason = "-".into();
                    }
                    if (mp.policy.as_ref(), mp.rule) != (rp.policy.as_ref(), rp.rule) {
                        mp.policy = None;
                        mp.rule = None;
                    }
                    if mp.peer != rp.peer {
                        mp.peer = None;
                    }
                    if mp.staged != rp.staged {
                        mp.staged = None;
                    }
                    mp.l7_pending |= rp.l7_pending;
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(r);
            }
        }
    }
    out
}

/// Counters of a [`FlowLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowLogStats {
    /// Decisions captured into the queue.
    pub captured: u64,
    /// Decisions not captured because the queue was full.
    pub dropped: u64,
    /// Captures turned into records by [`FlowLog::drain`].
    pub drained: u64,
}

/// A flow logger for an embedder: [`FlowLog::decide`] on the decision path (lock-free,
/// allocation-free, never waits; a full queue drops and counts), [`FlowLog::drain`]
/// elsewhere.
pub struct FlowLog {
    config: FlowLogConfig,
    tx: SyncSender<Capture>,
    rx: Mutex<Receiver<Capture>>,
    pending: ArcSwapOption<Snapshot>,
    seed: u64,
    sequence: AtomicU64,
    captured: AtomicU64,
    dropped: AtomicU64,
    drained: AtomicU64,
}

impl std::fmt::Debug for FlowLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowLog").field("config", &self.config).field("stats", &self.stats()).finish()
    }
}

impl FlowLog {
    /// A flow logger; its queue of `config.capacity` captures is allocated now.
    pub fn new(config: FlowLogConfig) -> FlowLog {
        let (tx, rx) = sync_channel(config.capacity.max(1));
        let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
        FlowLog {
            config,
            tx,
            rx: Mutex::new(rx),
            pending: ArcSwapOption::empty(),
            seed,
            sequence: AtomicU64::new(0),
            captured: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            drained: AtomicU64::new(0),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &FlowLogConfig {
        &self.config
    }

    /// The bytes its queue holds when full (the bound on its memory, records being built
    /// only by `drain`).
    pub fn memory_bytes(&self) -> usize {
        self.config.capacity.max(1) * std::mem::size_of::<Capture>()
    }

    /// Prepares the pending view of `snapshot` (staged policies as if enforced), so that
    /// `pending_policies` is filled from the first decision. Without it the view is
    /// prepared by the next [`FlowLog::drain`], and records until then repeat the enforced
    /// walk in `pending_policies`.
    pub fn prepare(&self, snapshot: &Snapshot) {
        self.pending.store(pending_view(snapshot).map(Arc::new));
    }

    /// Decides `req` with the engine's snapshot and captures the decision. Lock-free and
    /// allocation-free; returns the same decision as [`Engine::decide`].
    pub fn decide(&self, engine: &Engine, req: &Request<'_>) -> Decision {
        self.decide_on(engine.snapshot(), req).0
    }

    /// [`FlowLog::decide`], also returning the snapshot that decided (for names: a reload
    /// may come between the decision and the caller's own look at the engine).
    pub fn decide_on(&self, snapshot: Option<Arc<Snapshot>>, req: &Request<'_>) -> (Decision, Option<Arc<Snapshot>>) {
        let mut trace = FixedTrace::default();
        let decision = match snapshot.as_deref() {
            Some(s) => s.decide_recorded(req, &mut trace),
            None => Decision::pre_policy(Reason::NoBundle, None, 0),
        };
        let mut pending = None;
        if decision.staged.is_some() {
            let guard = self.pending.load();
            if let Some(view) =
                guard.as_deref().filter(|v| Some(v.generation()) == snapshot.as_ref().map(|s| s.generation()))
            {
                let mut t = FixedTrace::default();
                view.decide_recorded(req, &mut t);
                pending = Some(t);
            }
        }
        self.capture(Capture::new(snapshot.clone(), req, decision, trace, pending));
        (decision, snapshot)
    }

    /// Queues a capture made elsewhere (never waits; drops and counts when full).
    pub fn capture(&self, mut c: Capture) {
        c.sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        c.id_seed = self.seed;
        match self.tx.try_send(c) {
            Ok(()) => {
                self.captured.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Takes every queued capture and builds its records (not aggregated). Refreshes the
    /// pending view when the snapshot changed.
    pub fn drain(&self) -> Vec<FlowRecord> {
        let captures: Vec<Capture> = {
            let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
            rx.try_iter().collect()
        };
        self.drained.fetch_add(captures.len() as u64, Ordering::Relaxed);
        if let Some(s) = captures.last().and_then(|c| c.snapshot.clone()) {
            let current = self.pending.load().as_deref().map(Snapshot::generation);
            if current != Some(s.generation()) {
                self.prepare(&s);
            }
        }
        captures.iter().flat_map(records).collect()
    }

    /// [`FlowLog::drain`], then [`aggregate`] at the configured levels.
    pub fn drain_aggregated(&self) -> Vec<FlowRecord> {
        aggregate(self.drain(), self.config.aggregation_allowed, self.config.aggregation_denied)
    }

    /// The counters; `dropped` is never reset.
    pub fn stats(&self) -> FlowLogStats {
        FlowLogStats {
            captured: self.captured.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            drained: self.drained.load(Ordering::Relaxed),
        }
    }
}

/// Where records go.
pub trait Sink: Send {
    /// Writes records (one JSON line each).
    fn write(&mut self, records: &[FlowRecord]) -> std::io::Result<()>;
}

/// Standard output, one JSON line per record.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn write(&mut self, records: &[FlowRecord]) -> std::io::Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for r in records {
            writeln!(out, "{}", r.to_json_line())?;
        }
        out.flush()
    }
}

/// A callback given each batch of records.
pub struct CallbackSink<F: FnMut(&[FlowRecord]) + Send>(pub F);

impl<F: FnMut(&[FlowRecord]) + Send> Sink for CallbackSink<F> {
    fn write(&mut self, records: &[FlowRecord]) -> std::io::Result<()> {
        (self.0)(records);
        Ok(())
    }
}

/// JSON lines into a file that rotates as Felix's does: at `max_bytes` the file becomes
/// `<path>.1` (`.1` becomes `.2` ...), keeping `max_files` files in all.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    file: Option<std::fs::File>,
    size: u64,
}

impl FileSink {
    /// Felix's defaults: 100 MB per file, 5 files.
    pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
    /// Felix's default number of files.
    pub const DEFAULT_MAX_FILES: usize = 5;

    /// A sink appending to `path`.
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64, max_files: usize) -> FileSink {
        FileSink { path: path.into(), max_bytes: max_bytes.max(1), max_files: max_files.max(1), file: None, size: 0 }
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let last = self.max_files - 1;
        if last == 0 {
            std::fs::remove_file(&self.path)
                .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })?;
        } else {
            let _ = std::fs::remove_file(self.rotated(last));
            for n in (1..last).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            if self.path.exists() {
                std::fs::rename(&self.path, self.rotated(1))?;
            }
        }
        self.size = 0;
        Ok(())
    }

    fn open(&mut self) -> std::io::Result<&mut std::fs::File> {
        if self.file.is_none() {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        self.file.as_mut().ok_or_else(|| std::io::Error::other("flow log file not open"))
    }
}

impl Sink for FileSink {
    fn write(&mut self, records: &[FlowRecord]) -> std::io::Result<()> {
        for r in records {
            let mut line = r.to_json_line();
            line.push('\n');
            self.open()?;
            if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
                self.rotate()?;
            }
            let f = self.open()?;
            f.write_all(line.as_bytes())?;
            self.size += line.len() as u64;
        }
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
        }
        Ok(())
    }
}

/// Starts a thread that every `config.flush_interval_secs` drains `log`, aggregates and
/// writes to `sink`, until `stop` is set (then it flushes once more and returns). Write
/// errors are counted in the returned handle's result.
pub fn spawn_writer(
    log: Arc<FlowLog>,
    mut sink: Box<dyn Sink>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut errors = 0u64;
        let interval = std::time::Duration::from_secs(log.config.flush_interval_secs.max(1));
        let tick = std::time::Duration::from_millis(50).min(interval);
        let mut last = std::time::Instant::now();
        loop {
            let stopping = stop.load(Ordering::Acquire);
            if stopping || last.elapsed() >= interval {
                let batch = log.drain_aggregated();
                if !batch.is_empty() && sink.write(&batch).is_err() {
                    errors += 1;
                }
                last = std::time::Instant::now();
            }
            if stopping {
                return errors;
            }
            std::thread::sleep(tick);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_names_round_trip() {
        for p in [1u8, 4, 6, 17, 50, 58, 132, 47] {
            assert_eq!(proto_number(&proto_name(p)), Some(p));
        }
        assert_eq!(proto_name(47), "47");
    }

    #[test]
    fn inline_str_cuts_at_a_character_boundary() {
        let s = InlineStr::<4>::new(Some("abé"));
        assert_eq!(s.get(), Some("abé"));
        assert!(!s.truncated());
        let s = InlineStr::<4>::new(Some("abé!"));
        assert_eq!(s.get(), Some("abé"));
        assert!(s.truncated());
        let s = InlineStr::<3>::new(Some("abé"));
        assert_eq!(s.get(), Some("ab"));
        assert!(s.truncated());
        assert_eq!(InlineStr::<3>::new(None).get(), None);
    }

    #[test]
    fn private_addresses() {
        assert!(is_private("10.1.2.3".parse().unwrap()));
        assert!(is_private("192.168.0.1".parse().unwrap()));
        assert!(!is_private("203.0.113.9".parse().unwrap()));
        assert!(is_private("fd00::1".parse().unwrap()));
        assert!(!is_private("2001:db8::1".parse().unwrap()));
    }
}
