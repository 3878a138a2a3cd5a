//! `envoy.service.auth.v3.Authorization/Check`: translate, decide in the core, answer.

use std::sync::Arc;
use std::time::Instant;

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::auth::v3::authorization_server::Authorization;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse};
use envoy_types::pb::envoy::r#type::v3::{HttpStatus, StatusCode as HttpStatusCode};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind as ValueKind};
use envoy_types::pb::google::rpc;
use palisade::{Action, Decision, Engine, Snapshot};

use crate::metrics::Metrics;
use crate::translate::{self, CheckKind};

/// The header that carries the decision, on the upstream request (allow) and on the 403
/// response (deny): `<action>; reason=<reason>; generation=<n>`. Policy names stay out of it
/// (a denied client should not learn the policy layout); they are in the dynamic metadata.
pub const DECISION_HEADER: &str = "x-palisade-decision";

/// The body of a denied HTTP request, as Envoy's RBAC filter words it.
pub const DENIED_BODY: &str = "RBAC: access denied";

/// gRPC status codes used in `CheckResponse.status`.
const GRPC_OK: i32 = 0;
const GRPC_PERMISSION_DENIED: i32 = 7;

/// The ext_authz service.
#[derive(Clone)]
pub struct AuthzService {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    opts: Arc<translate::Options>,
}

impl std::fmt::Debug for AuthzService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzService").field("opts", &self.opts).finish_non_exhaustive()
    }
}

/// A decision as the server reports it: the core's decision, except that an allow with
/// `l7_pending` at a network check is a deny (no HTTP filter will decide again).
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    /// The core's decision.
    pub decision: Decision,
    /// Allow or deny, as answered.
    pub action: Action,
    /// The reason as answered: the core's, or `l7_pending` for the case above.
    pub reason: &'static str,
}

impl Verdict {
    /// The verdict for a decision at a check of `kind`.
    pub fn new(decision: Decision, kind: CheckKind) -> Verdict {
        // A network check has no HTTP check behind it: it enforces the complete request,
        // so an allow that still needs HTTP is not an allow.
        let allowed = palisade::answer::allows(&decision, palisade::answer::Enforcement::Request);
        if decision.allowed() && !allowed && kind == CheckKind::Network {
            Verdict { decision, action: Action::Deny, reason: "l7_pending" }
        } else {
            Verdict { decision, action: decision.action, reason: decision.reason.as_str() }
        }
    }

    /// The value of [`DECISION_HEADER`].
    pub fn header_value(&self) -> String {
        format!("{}; reason={}; generation={}", self.action.as_str(), self.reason, self.decision.generation)
    }
}

impl AuthzService {
    /// A service deciding with `engine`.
    pub fn new(engine: Arc<Engine>, metrics: Arc<Metrics>, opts: translate::Options) -> AuthzService {
        AuthzService { engine, metrics, opts: Arc::new(opts) }
    }

    /// Decides one check and builds the response (what the gRPC handler does, callable
    /// without a transport).
    pub fn answer(&self, check: &CheckRequest) -> CheckResponse {
        let start = Instant::now();
        let kind = CheckKind::of(check);
        // Pin one snapshot: the decision's ids are rendered with the names of the snapshot
        // that made it, even if a reload swaps another in meanwhile.
        let snapshot = self.engine.snapshot();
        let generation = snapshot.as_ref().map_or(0, |s| s.generation());
        let (decision, detail) = translate::with_request(check, &self.opts, |req| match req {
            Ok(req) => match snapshot.as_deref() {
                Some(s) => (s.decide(req), None),
                None => (self.engine.decide(req), None),
            },
            Err(detail) => (Decision::invalid(detail, generation), Some(detail)),
        });
        if detail.is_some() {
            self.metrics.untranslatable();
        }
        let verdict = Verdict::new(decision, kind);
        let response = respond(&verdict, snapshot.as_deref(), kind);
        self.metrics.check(kind.as_str(), verdict.action.as_str(), verdict.reason, start.elapsed());
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                kind = kind.as_str(),
                action = verdict.action.as_str(),
                reason = verdict.reason,
                detail = decision.detail.unwrap_or(""),
                generation = decision.generation,
                "check"
            );
        }
        response
    }
}

#[tonic::async_trait]
impl Authorization for AuthzService {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.answer(request.get_ref())))
    }
}

fn string(s: impl Into<String>) -> Value {
    Value { kind: Some(ValueKind::StringValue(s.into())) }
}

fn number(n: f64) -> Value {
    Value { kind: Some(ValueKind::NumberValue(n)) }
}

/// The dynamic metadata: the decision with names, for Envoy's access log
/// (`%DYNAMIC_METADATA(envoy.filters.http.ext_authz:policy)%`). Keys that do not apply are
/// absent.
pub fn metadata(v: &Verdict, snapshot: Option<&Snapshot>) -> Struct {
    let d = &v.decision;
    let mut fields = std::collections::HashMap::new();
    fields.insert("action".to_string(), string(v.action.as_str()));
    fields.insert("reason".to_string(), string(v.reason));
    fields.insert("generation".to_string(), number(d.generation as f64));
    if let Some(side) = d.side {
        fields.insert("side".to_string(), string(side.as_str()));
    }
    if let Some(name) = snapshot.and_then(|s| s.tier_name(d.tier)) {
        fields.insert("tier".to_string(), string(name));
    }
    if let Some(name) = snapshot.and_then(|s| s.policy_name(d.policy)) {
        fields.insert("policy".to_string(), string(name));
    }
    if let Some(rule) = d.rule {
        fields.insert("rule".to_string(), number(f64::from(rule)));
    }
    if let Some(peer) = d.peer {
        fields.insert("peer".to_string(), string(peer.as_str()));
    }
    if d.l7_pending {
        fields.insert("l7_pending".to_string(), Value { kind: Some(ValueKind::BoolValue(true)) });
    }
    if let Some(staged) = d.staged {
        fields.insert("staged".to_string(), string(staged.as_str()));
    }
    if let Some(detail) = d.detail {
        fields.insert("detail".to_string(), string(detail));
    }
    Struct { fields }
}

fn decision_header(v: &Verdict) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue { key: DECISION_HEADER.to_string(), value: v.header_value(), raw_value: Vec::new() }),
        // Overwrite: a client cannot pass its own x-palisade-decision upstream.
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

/// The `CheckResponse` for a verdict.
pub fn respond(v: &Verdict, snapshot: Option<&Snapshot>, kind: CheckKind) -> CheckResponse {
    let dynamic_metadata = Some(metadata(v, snapshot));
    let allowed = v.action == Action::Allow;
    let status = Some(rpc::Status {
        code: if allowed { GRPC_OK } else { GRPC_PERMISSION_DENIED },
        message: if allowed { String::new() } else { format!("palisade: deny ({})", v.reason) },
        details: Vec::new(),
    });
    let http_response = match (kind, allowed) {
        (CheckKind::Network, _) => None,
        (CheckKind::Http, true) => {
            Some(HttpResponse::OkResponse(OkHttpResponse { headers: vec![decision_header(v)], ..Default::default() }))
        }
        (CheckKind::Http, false) => Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: HttpStatusCode::Forbidden as i32 }),
            headers: vec![decision_header(v)],
            body: DENIED_BODY.to_string(),
        })),
    };
    CheckResponse { status, dynamic_metadata, http_response }
}
