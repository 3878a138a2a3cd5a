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
//! * [`apply_value`]: a change set in its JSON form (what the C, Python and Node `apply`
//!   take) applied with [`Engine::apply`] or [`Engine::apply_lenient`], and the report as
//!   JSON.
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
use crate::error::{ConfigError, LoadError, LoadErrorKind, RequestError};
use crate::explain::decision_json_with_detail;
use crate::request::OwnedRequest;
use crate::snapshot::Snapshot;
use crate::store::{ApplyReport, Change};
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
    /// The request, kept by [`decide_lazy`] to record the trace only when it is asked for
    /// (the pinned snapshot decides it again, the same way).
    pub request: Option<OwnedRequest>,
}

impl Answer {
    /// The decision JSON (SPEC 7), with `detail` for an `invalid_request`.
    pub fn json(&self) -> Value {
        let trace = self.trace();
        decision_json_with_detail(self.snapshot.as_deref().map(Snapshot::bundle), &self.decision, &trace, self.detail())
    }

    /// Why the request is an `invalid_request` (the parse error, or what validation
    /// refused); `None` otherwise. Cheap: no rendering, no trace.
    pub fn detail(&self) -> Option<String> {
        match (&self.request_error, self.decision.detail) {
            (Some(e), _) if e.field == "-" => Some(e.message.clone()),
            (Some(e), _) => Some(format!("{}: {}", e.field, e.message)),
            (None, Some(d)) => Some(d.to_string()),
            (None, None) => None,
        }
    }

    /// The tier walk: recorded, or recorded now for a [`decide_lazy`] answer, or empty.
    pub fn trace(&self) -> std::borrow::Cow<'_, Trace> {
        match (&self.trace, &self.request, self.snapshot.as_deref()) {
            (Some(t), _, _) => std::borrow::Cow::Borrowed(t),
            (None, Some(r), Some(s)) => std::borrow::Cow::Owned(s.decide_traced(&r.as_request()).1),
            _ => std::borrow::Cow::Owned(Trace::default()),
        }
    }

    /// Whether a trace is recorded or can be ([`decide_lazy`]).
    pub fn has_trace(&self) -> bool {
        self.trace.is_some() || (self.request.is_some() && self.snapshot.is_some())
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
            request: None,
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
            Answer { decision, trace: Some(trace), snapshot: Some(s), request_error: None, request: None }
        }
        None => Answer {
            decision: engine.decide(&request.as_request()),
            trace: Some(Trace::default()),
            snapshot: None,
            request_error: None,
            request: None,
        },
    }
}

/// Decides a parsed request without recording the trace, keeping the request so that
/// [`Answer::trace`] / [`Answer::json`] record it when asked (what a binding whose caller
/// may never look at the trace uses: the decision costs what `decide` costs).
pub fn decide_lazy(engine: &Engine, request: OwnedRequest) -> Answer {
    let snapshot = engine.snapshot();
    let decision = match snapshot.as_deref() {
        Some(s) => s.decide(&request.as_request()),
        None => engine.decide(&request.as_request()),
    };
    Answer { decision, trace: None, snapshot, request_error: None, request: Some(request) }
}

/// Decides a parsed request and records it into `log` (no trace: the flow log has it).
pub fn decide_logged(log: &crate::flowlog::FlowLog, engine: &Engine, request: &OwnedRequest) -> Answer {
    let (decision, snapshot) = log.decide_on(engine.snapshot(), &request.as_request());
    Answer { decision, trace: None, snapshot, request_error: None, request: None }
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
                request: None,
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

/// Reads a change set in its JSON form: an array of
///
/// * `{"op": "upsert", "object": {...}}`: one object (`apiVersion`, `kind`, `metadata`...),
///   or a typed `List`;
/// * `{"op": "upsert", "text": "...", "source": "name"}`: the objects of a YAML or JSON text
///   (`source` optional, named in errors);
/// * `{"op": "delete", "apiVersion": "v1", "kind": "Pod", "namespace": "shop", "name": "web"}`
///   (`namespace` absent or `null` for cluster-scoped kinds; `group` may replace
///   `apiVersion`).
///
/// Any other key, a missing one, or a wrong type is an error naming `changes[i].<key>`.
pub fn changes_from_value(value: &Value) -> Result<Vec<Change>, LoadError> {
    let bad = |i: Option<usize>, key: &str, message: String| {
        let field = match i {
            Some(i) if key.is_empty() => format!("changes[{i}]"),
            Some(i) => format!("changes[{i}].{key}"),
            None => "changes".to_string(),
        };
        let mut e = LoadError::new(LoadErrorKind::Schema, message);
        e.file = "<apply>".into();
        e.field = Some(field);
        e
    };
    let Value::Array(items) = value else {
        return Err(bad(None, "", "expected an array of changes".into()));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(m) = item else {
            return Err(bad(Some(i), "", "expected an object".into()));
        };
        let text = |key: &str| -> Result<Option<&str>, LoadError> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(bad(Some(i), key, "expected a string".into())),
            }
        };
        let allowed: &[&str] = match text("op")? {
            Some("upsert") if m.contains_key("object") => &["op", "object", "source"],
            Some("upsert") => &["op", "text", "source"],
            Some("delete") => &["op", "apiVersion", "group", "kind", "namespace", "name"],
            Some(other) => return Err(bad(Some(i), "op", format!("{other:?} is not upsert or delete"))),
            None => return Err(bad(Some(i), "op", "missing (upsert or delete)".into())),
        };
        if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(Some(i), k, format!("unknown key (expected one of {})", allowed.join(", "))));
        }
        let source = text("source")?.unwrap_or("<apply>").to_string();
        let change = match (text("op")?, m.get("object")) {
            (Some("upsert"), Some(object)) => Change::upsert_from(source, object.clone()),
            (Some("upsert"), None) => match text("text")? {
                Some(t) => Change::upsert_text(source, t),
                None => return Err(bad(Some(i), "text", "an upsert needs `object` or `text`".into())),
            },
            _ => {
                let group = match (text("group")?, text("apiVersion")?) {
                    (Some(_), Some(_)) => {
                        return Err(bad(Some(i), "group", "give `group` or `apiVersion`, not both".into()));
                    }
                    (Some(g), None) => g.to_string(),
                    // `v1` is the core group; `projectcalico.org/v3` is `projectcalico.org`.
                    (None, Some(v)) => v.rsplit_once('/').map(|(g, _)| g.to_string()).unwrap_or_default(),
                    (None, None) => return Err(bad(Some(i), "apiVersion", "missing".into())),
                };
                let kind = text("kind")?.ok_or_else(|| bad(Some(i), "kind", "missing".into()))?;
                let name = text("name")?.ok_or_else(|| bad(Some(i), "name", "missing".into()))?;
                Change::delete(&group, kind, text("namespace")?, name)
            }
        };
        out.push(change);
    }
    Ok(out)
}

/// The JSON form of an [`ApplyReport`]: `generation`, `upserted`, `deleted`, `objects`,
/// `incremental` (the pods were laid over the compiled program, no full build), and
/// `rejected` (each an [`ErrorFields`] object).
pub fn apply_report_json(report: &ApplyReport) -> Value {
    serde_json::json!({
        "generation": report.generation,
        "upserted": report.upserted,
        "deleted": report.deleted,
        "objects": report.objects,
        "incremental": report.incremental,
        "rejected": report.rejected.iter().map(|e| ErrorFields::of_load(e).json()).collect::<Vec<_>>(),
    })
}

/// Applies a change set given in its JSON form (see [`changes_from_value`]):
/// all-or-nothing with [`Engine::apply`], or, `lenient`, with [`Engine::apply_lenient`]
/// (failed upserts are left out and listed in the report's `rejected`).
pub fn apply_value(engine: &Engine, changes: &Value, lenient: bool) -> Result<ApplyReport, LoadError> {
    let changes = changes_from_value(changes)?;
    if lenient { engine.apply_lenient(changes) } else { engine.apply(changes) }
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

    #[test]
    fn a_change_set_in_json_applies_and_reports() {
        let e = engine();
        let to_b = serde_json::json!({"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80},
                                      "http": {"method": "PUT", "path": "/"}});
        let reason = |e: &Engine| decide_value(e, to_b.clone(), Mode::Strict).map(|a| a.json()["reason"].clone());
        assert_eq!(reason(&e).ok(), Some(Value::from("end_of_tier")));
        let changes = serde_json::json!([
            {"op": "delete", "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy", "namespace": "ns", "name": "http-only"},
            {"op": "upsert", "text": "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: ns}\nstatus: {podIP: 10.0.0.3}\n", "source": "c.yaml"},
        ]);
        let report = apply_value(&e, &changes, false).unwrap_or_else(|e| unreachable!("{e}"));
        let j = apply_report_json(&report);
        assert_eq!(
            (j["generation"].as_u64(), j["upserted"].as_u64(), j["deleted"].as_u64()),
            (Some(2), Some(1), Some(1))
        );
        assert_eq!(reason(&e).ok(), Some(Value::from("no_policy")));
        // Lenient: the bad pod is left out and reported; strict: nothing changes.
        let bad = serde_json::json!([{"op": "upsert", "object": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "d", "namespace": "ns"}, "status": {"podIP": "banana"}}}]);
        assert!(apply_value(&e, &bad, false).is_err());
        let r = apply_value(&e, &bad, true).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(r.rejected.len(), 1);
        assert!(apply_report_json(&r)["rejected"][0]["field"].as_str().is_some_and(|f| f.starts_with("status.podIP")));
    }

    #[test]
    fn a_malformed_change_set_names_the_change_and_key() {
        let e = engine();
        for (changes, field) in [
            (serde_json::json!({"op": "upsert"}), "changes"),
            (serde_json::json!([{"op": "replace"}]), "changes[0].op"),
            (serde_json::json!([{"op": "upsert", "text": "x", "extra": 1}]), "changes[0].extra"),
            (serde_json::json!([{"op": "delete", "kind": "Pod", "name": "a"}]), "changes[0].apiVersion"),
            (serde_json::json!([{"op": "delete", "apiVersion": "v1", "name": "a"}]), "changes[0].kind"),
            (serde_json::json!([{"op": "upsert"}]), "changes[0].text"),
        ] {
            let err = apply_value(&e, &changes, false).err().unwrap_or_else(|| unreachable!("{changes}"));
            assert_eq!(err.field.as_deref(), Some(field), "{changes}");
        }
        assert_eq!(e.snapshot().map(|s| s.generation()), Some(1), "nothing changed");
    }

    #[test]
    fn a_lazy_answer_records_the_same_trace_when_asked() {
        let e = engine();
        let text = r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}, "http": {"method": "PUT", "path": "/"}}"#;
        let eager = decide_text(&e, text, Mode::Strict).unwrap_or_else(|e| unreachable!("{e}"));
        let r = OwnedRequest::from_json(text).unwrap_or_else(|e| unreachable!("{e}"));
        let lazy = decide_lazy(&e, r);
        assert!(lazy.trace.is_none() && lazy.has_trace());
        assert_eq!(lazy.decision, eager.decision);
        assert_eq!(lazy.json(), eager.json());
        assert!(lazy.json()["trace"]["ingress"].as_array().is_some_and(|t| !t.is_empty()));
    }
}
