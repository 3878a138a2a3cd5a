//! The answer layer: what every surface (the CLI, the C library, the Python and Node
//! modules, the Envoy filter, the ext_authz server) needs between its host's values and the
//! engine, written once so that the bindings only translate types.
//!
//! * [`decide_value`] / [`decide_text`] / [`decide_many`]: a request given as a JSON value
//!   or text to an [`Answer`]; a request that does not parse is an `invalid_request` deny
//!   whose `detail` says why, or, in [`Mode::Strict`], the [`RequestError`].
//! * [`Answer::json`]: the decision JSON of SPEC 7 with names, trace and `detail`.
//! * [`Answer::allows`]: allowed *for what*: an [`Enforcement::Connection`] point may let
//!   an `l7_pending` allow through (the proxy behind it decides the HTTP request), a
//!   [`Enforcement::Request`] point must not.
//! * [`ErrorFields`]: one located error with one set of field names (`kind`, `file`,
//!   `document`, `object`, `field`, `message`) for load, configuration and request errors.
//!
//! ```
//! use palisade::answer::{self, Enforcement, Mode};
//! use palisade::{Config, Engine};
//!
//! let engine = Engine::new(Config::default());
//! let text = r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2"}}"#; // no port
//! let a = answer::decide_text(&engine, text, Mode::Lenient).unwrap();
//! assert_eq!(a.json()["reason"], "invalid_request");
//! assert!(a.json()["detail"].as_str().unwrap().contains("destination.port"));
//! assert!(answer::decide_text(&engine, text, Mode::Strict).is_err());
//! assert!(!a.allows(Enforcement::Connection));
//! ```

use std::borrow::Borrow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::decision::{Action, Decision};
use crate::engine::Engine;
use crate::error::{ConfigError, LoadError, RequestError};
use crate::explain::decision_json_with_detail;
use crate::request::OwnedRequest;
use crate::snapshot::Snapshot;
use crate::trace::Trace;

/// What a request that does not parse becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// An `invalid_request` deny (fail closed), its `detail` naming the field.
    #[default]
    Lenient,
    /// The [`RequestError`], for callers that want to handle it.
    Strict,
}

/// What the caller enforces, so that "allowed" means the right thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// A connection (L4): an allow that is `l7_pending` lets the connection through, and
    /// the proxy that sees its HTTP requests must decide each of them.
    Connection,
    /// A complete request (an HTTP request, or a connection with no proxy behind): an
    /// `l7_pending` allow is not an allow, since nothing will check the HTTP rule.
    Request,
}

/// A decision with what is needed to render it: the snapshot that made it (for names) and,
/// when recorded, its trace.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The decision.
    pub decision: Decision,
    /// The tier walk, when recorded.
    pub trace: Option<Trace>,
    /// The snapshot that decided (`None` when nothing is loaded).
    pub snapshot: Option<Arc<Snapshot>>,
    /// Why the request did not parse, for a lenient `invalid_request`.
    pub request_error: Option<RequestError>,
}

impl Answer {
    /// The decision JSON (SPEC 7), with `detail` for an `invalid_request`.
    pub fn json(&self) -> Value {
        let detail = match (&self.request_error, self.decision.detail) {
            (Some(e), _) if e.field == "-" => Some(e.message.clone()),
            (Some(e), _) => Some(format!("{}: {}", e.field, e.message)),
            (None, Some(d)) => Some(d.to_string()),
            (None, None) => None,
        };
        let empty = Trace::default();
        decision_json_with_detail(
            self.snapshot.as_deref().map(Snapshot::bundle),
            &self.decision,
            self.trace.as_ref().unwrap_or(&empty),
            detail,
        )
    }

    /// Whether the decision allows what `enforcement` enforces.
    pub fn allows(&self, enforcement: Enforcement) -> bool {
        allows(&self.decision, enforcement)
    }

    /// The `invalid_request` deny for a request that did not parse, on `engine`'s current
    /// snapshot (for bindings that parse their host's values themselves).
    pub fn unparsed(engine: &Engine, e: RequestError) -> Answer {
        Answer::invalid(engine.snapshot(), e)
    }

    fn invalid(snapshot: Option<Arc<Snapshot>>, e: RequestError) -> Answer {
        let generation = snapshot.as_ref().map(|s| s.generation()).unwrap_or(0);
        Answer {
            decision: Decision::invalid("the request does not parse", generation),
            trace: Some(Trace::default()),
            snapshot,
            request_error: Some(e),
        }
    }
}

/// Whether `d` allows what `enforcement` enforces (see [`Enforcement`]).
pub fn allows(d: &Decision, enforcement: Enforcement) -> bool {
    d.action == Action::Allow && (enforcement == Enforcement::Connection || !d.l7_pending)
}

/// Decides a parsed request with its trace, on the engine's current snapshot.
pub fn decide_owned(engine: &Engine, request: &OwnedRequest) -> Answer {
    match engine.snapshot() {
        Some(s) => {
            let (decision, trace) = s.decide_traced(&request.as_request());
            Answer { decision, trace: Some(trace), snapshot: Some(s), request_error: None }
        }
        None => Answer {
            decision: engine.decide(&request.as_request()),
            trace: Some(Trace::default()),
            snapshot: None,
            request_error: None,
        },
    }
}

/// Decides a parsed request and records it into `log` (no trace: the flow log has it).
pub fn decide_logged(log: &crate::flowlog::FlowLog, engine: &Engine, request: &OwnedRequest) -> Answer {
    let (decision, snapshot) = log.decide_on(engine.snapshot(), &request.as_request());
    Answer { decision, trace: None, snapshot, request_error: None }
}

/// Decides a request given as a JSON value (SPEC 7; every key checked, unknown keys
/// refused).
pub fn decide_value(engine: &Engine, request: Value, mode: Mode) -> Result<Answer, RequestError> {
    match OwnedRequest::from_value(request) {
        Ok(r) => Ok(decide_owned(engine, &r)),
        Err(e) if mode == Mode::Strict => Err(e),
        Err(e) => Ok(Answer::invalid(engine.snapshot(), e)),
    }
}

/// Decides a request given as JSON text, read strictly (duplicate keys at any depth and
/// header names differing only in case are refused).
pub fn decide_text(engine: &Engine, request: &str, mode: Mode) -> Result<Answer, RequestError> {
    match OwnedRequest::from_json(request) {
        Ok(r) => Ok(decide_owned(engine, &r)),
        Err(e) if mode == Mode::Strict => Err(e),
        Err(e) => Ok(Answer::invalid(engine.snapshot(), e)),
    }
}

/// Decides a batch on one snapshot (every answer has the same generation), without traces.
/// Requests that do not parse are `invalid_request` denies.
pub fn decide_many<I, R>(engine: &Engine, requests: I) -> Vec<Answer>
where
    I: IntoIterator<Item = Result<R, RequestError>>,
    R: Borrow<OwnedRequest>,
{
    let snapshot = engine.snapshot();
    requests
        .into_iter()
        .map(|r| match r {
            Ok(r) => Answer {
                decision: match snapshot.as_deref() {
                    Some(s) => s.decide(&r.borrow().as_request()),
                    None => engine.decide(&r.borrow().as_request()),
                },
                trace: None,
                snapshot: snapshot.clone(),
                request_error: None,
            },
            Err(e) => Answer::invalid(snapshot.clone(), e),
        })
        .collect()
}

/// One error as every binding reports it: the same field names everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorFields {
    /// A load error's kind (`parse`, `schema`, `selector`...), or `config` / `request`.
    pub kind: &'static str,
    /// The file (or source name), when one is known.
    pub file: Option<String>,
    /// The 0-based document index in the file.
    pub document: Option<usize>,
    /// The object, `Kind namespace/name`.
    pub object: Option<String>,
    /// The field path.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ErrorFields {
    /// The fields of one load error (not its companions: see [`ErrorFields::all`]).
    pub fn of_load(e: &LoadError) -> ErrorFields {
        ErrorFields {
            kind: e.kind.as_str(),
            file: (!e.file.is_empty()).then(|| e.file.clone()),
            document: e.document,
            object: e.object.clone(),
            field: e.field.clone(),
            message: e.message.clone(),
        }
    }

    /// Every error of a load, the first one first.
    pub fn all(e: &LoadError) -> Vec<ErrorFields> {
        e.all().map(ErrorFields::of_load).collect()
    }

    /// A configuration error.
    pub fn of_config(e: &ConfigError) -> ErrorFields {
        ErrorFields {
            kind: "config",
            file: None,
            document: None,
            object: None,
            field: Some(e.field.clone()),
            message: e.message.clone(),
        }
    }

    /// A request that does not parse.
    pub fn of_request(e: &RequestError) -> ErrorFields {
        ErrorFields {
            kind: "request",
            file: None,
            document: None,
            object: None,
            field: Some(e.field.clone()),
            message: e.message.clone(),
        }
    }

    /// As a JSON object (every key present, `null` where unknown).
    pub fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const BUNDLE: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: ns}
spec: {serviceAccountName: a}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: ns}
spec: {serviceAccountName: b}
status: {podIP: 10.0.0.2}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: http-only, namespace: ns}
spec:
  ingress:
  - action: Allow
    protocol: TCP
    http: {methods: [GET]}
"#;

    fn engine() -> Engine {
        let e = Engine::new(Config::default());
        e.load_str(BUNDLE).map(|_| ()).unwrap_or_else(|e| unreachable!("{e}"));
        e
    }

    #[test]
    fn an_unparsable_request_is_a_located_invalid_request_or_the_error() {
        let e = engine();
        let text = r#"{"source": {"ip": "10.0.0.300"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#;
        let a = decide_text(&e, text, Mode::Lenient).unwrap_or_else(|e| unreachable!("{e}"));
        let j = a.json();
        assert_eq!(j["action"], "deny");
        assert_eq!(j["reason"], "invalid_request");
        assert!(j["detail"].as_str().is_some_and(|d| d.contains("source.ip")), "{j}");
        assert_eq!(j["generation"], 1);
        let err = decide_text(&e, text, Mode::Strict).err();
        assert_eq!(err.map(|e| e.field), Some("source.ip".to_string()));
    }

    #[test]
    fn a_validation_failure_has_its_detail_in_the_json() {
        let e = engine();
        let v = serde_json::json!({"source": {"ip": "10.0.0.1"}, "destination": {"ip": "::2", "port": 80}});
        let a = decide_value(&e, v, Mode::Strict).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(a.json()["reason"], "invalid_request");
        assert_eq!(a.json()["detail"], crate::InvalidRequest::MixedFamilies.message());
    }

    #[test]
    fn an_l7_pending_allow_is_an_allow_for_a_connection_only() {
        let e = engine();
        let v = serde_json::json!({"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}});
        let a = decide_value(&e, v, Mode::Strict).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(a.decision.l7_pending);
        assert!(a.allows(Enforcement::Connection));
        assert!(!a.allows(Enforcement::Request));
        assert_eq!(a.json()["detail"], Value::Null);
        let v = serde_json::json!({"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80},
                                   "http": {"method": "GET", "path": "/"}});
        let a = decide_value(&e, v, Mode::Strict).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(a.allows(Enforcement::Request));
        assert_eq!(a.json()["policy"], "np:ns/http-only");
    }

    #[test]
    fn a_batch_is_decided_on_one_snapshot() {
        let e = engine();
        let ok = OwnedRequest::from_json(
            r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}, "http": {"method": "PUT", "path": "/"}}"#,
        );
        let bad = OwnedRequest::from_json("[]");
        let answers = decide_many(&e, [ok, bad]);
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0].json()["reason"], "end_of_tier");
        assert_eq!(answers[1].json()["reason"], "invalid_request");
        assert!(answers.iter().all(|a| a.decision.generation == 1));
    }

    #[test]
    fn errors_have_one_set_of_field_names() {
        let e = Engine::new(Config::default());
        let err =
            e.load_str("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\nstatus: {podIP: banana}\n").err();
        let err = err.unwrap_or_else(|| unreachable!("the pod is invalid"));
        let all = ErrorFields::all(&err);
        assert!(!all.is_empty());
        let j = all[0].json();
        for k in ["kind", "file", "document", "object", "field", "message"] {
            assert!(j.get(k).is_some(), "{k} missing in {j}");
        }
        let c = Config::from_yaml("trust_domain: [1]").err().unwrap_or_else(|| unreachable!("invalid"));
        assert_eq!(ErrorFields::of_config(&c).field.as_deref(), Some("trust_domain"));
    }
}
