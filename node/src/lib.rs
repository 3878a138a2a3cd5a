//! The Node.js module: thin napi-rs bindings over the core crate. Requests and decisions are
//! plain objects in the SPEC 7 JSON shape (camelCase `remoteIp` accepted for `remote_ip`);
//! errors are `Error` objects with a stable `code` and the location fields.

#![allow(clippy::needless_pass_by_value)] // napi passes owned values

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use palisade_core::answer::{self, Answer, ErrorFields};
use palisade_core::flowlog::{Aggregation, FlowLog as CoreFlowLog, FlowLogConfig};
use palisade_core::{Config, Engine as CoreEngine, LoadError, OwnedRequest, RequestError};
use serde_json::Value;

/// Throws an `Error` with `code` and extra string/number properties, and returns the
/// "pending exception" error that tells napi-rs not to throw again.
fn throw(env: &Env, code: &str, message: &str, fields: &[(&str, Value)]) -> Error {
    let result = (|| -> Result<()> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, message))?;
        obj.set("code", code)?;
        for (k, v) in fields {
            obj.set(*k, v.clone())?;
        }
        env.throw(obj)
    })();
    match result {
        Ok(()) => Error::new(Status::PendingException, message),
        Err(e) => e,
    }
}

/// The located fields of an error as `Error` properties: the core's [`ErrorFields`] except
/// `message` (an `Error`'s own `message` is the whole text).
fn located(fields: &ErrorFields) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    if let Value::Object(m) = fields.json() {
        for k in ["kind", "file", "document", "object", "field"] {
            out.push((k, m.get(k).cloned().unwrap_or(Value::Null)));
        }
    }
    out
}

/// A load error: the first error's location, and `errors`, every error as the core's
/// [`ErrorFields`] (`kind`, `file`, `document`, `object`, `field`, `message`).
fn load_error_fields(e: &LoadError) -> Vec<(&'static str, Value)> {
    let mut fields = located(&ErrorFields::of_load(e));
    fields.push(("errors", Value::Array(ErrorFields::all(e).iter().map(ErrorFields::json).collect())));
    fields
}

fn load_error(env: &Env, e: &LoadError) -> Error {
    throw(env, "BUNDLE_ERROR", &e.report(), &load_error_fields(e))
}

fn request_error(env: &Env, e: &RequestError) -> Error {
    throw(env, "REQUEST_ERROR", &e.to_string(), &located(&ErrorFields::of_request(e)))
}

/// Accepts the JS spelling `remoteIp` for `remote_ip`.
fn normalise(mut v: Value) -> Value {
    if let Some(src) = v.get_mut("source").and_then(Value::as_object_mut)
        && let Some(x) = src.remove("remoteIp")
    {
        src.insert("remote_ip".into(), x);
    }
    v
}

fn parse(v: Value) -> std::result::Result<OwnedRequest, RequestError> {
    OwnedRequest::from_value(normalise(v))
}

/// Strict JSON text (a key given twice anywhere is an error, not last-wins) to a request.
fn parse_text(text: &str) -> std::result::Result<OwnedRequest, RequestError> {
    palisade_core::request::parse_json(text).and_then(parse)
}

/// The policy decision point.
#[napi]
pub struct Engine {
    inner: Arc<CoreEngine>,
}

fn config(env: &Env, c: Option<Value>) -> Result<Config> {
    Config::from_value(&c.unwrap_or(Value::Null))
        .map_err(|e| throw(env, "CONFIG_ERROR", &e.to_string(), &located(&ErrorFields::of_config(&e))))
}

/// A parsed request's answer, or in strict mode its error thrown.
fn answered(
    env: &Env,
    parsed: std::result::Result<OwnedRequest, RequestError>,
    strict: Option<bool>,
    decide: impl FnOnce(&OwnedRequest) -> Answer,
    engine: &CoreEngine,
) -> Result<Value> {
    match parsed {
        Ok(r) => Ok(decide(&r).json()),
        Err(e) if strict == Some(true) => Err(request_error(env, &e)),
        Err(e) => Ok(Answer::unparsed(engine, e).json()),
    }
}

impl Engine {
    fn decide_parsed(
        &self,
        env: &Env,
        parsed: std::result::Result<OwnedRequest, RequestError>,
        strict: Option<bool>,
    ) -> Result<Value> {
        answered(env, parsed, strict, |r| answer::decide_owned(&self.inner, r), &self.inner)
    }

    /// The one implementation of `decideMany`.
    fn decide_values(&self, requests: Vec<Value>) -> Vec<Value> {
        let answers = answer::decide_many(&self.inner, requests.into_iter().map(parse));
        answers.iter().map(Answer::json).collect()
    }
}

/// Loads bundles off the JavaScript thread.
pub struct LoadTask {
    engine: Arc<CoreEngine>,
    paths: Vec<String>,
}

impl Task for LoadTask {
    type Output = std::result::Result<u64, LoadError>;
    type JsValue = i64;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(self.engine.load_paths(&self.paths))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        match output {
            Ok(g) => Ok(g as i64),
            // A rejection cannot carry extra properties from here: the payload is JSON that
            // `palisade.js` turns back into an `Error` with `code` and the location fields.
            Err(e) => Err(Error::new(
                Status::GenericFailure,
                serde_json::json!({
                    "palisade_error": true,
                    "code": "BUNDLE_ERROR",
                    "message": e.report(),
                    "fields": serde_json::Map::from_iter(load_error_fields(&e).into_iter().map(|(k, v)| (k.to_string(), v))),
                })
                .to_string(),
            )),
        }
    }
}

#[napi]
impl Engine {
    /// An engine with nothing loaded (it denies everything, reason `no_bundle`). `config`
    /// takes the CLI's configuration keys.
    #[napi(constructor)]
    pub fn new(env: Env, config_object: Option<Value>) -> Result<Self> {
        Ok(Engine { inner: Arc::new(CoreEngine::new(config(&env, config_object)?)) })
    }

    /// An engine loaded from files and directories.
    #[napi(factory)]
    pub fn from_paths(env: Env, paths: Vec<String>, config_object: Option<Value>) -> Result<Self> {
        let e = Engine { inner: Arc::new(CoreEngine::new(config(&env, config_object)?)) };
        e.inner.load_paths(&paths).map_err(|err| load_error(&env, &err))?;
        Ok(e)
    }

    /// Loads files and directories; returns the new generation. Throws `BUNDLE_ERROR`.
    #[napi]
    pub fn load_paths(&self, env: Env, paths: Vec<String>) -> Result<i64> {
        self.inner.load_paths(&paths).map(|g| g as i64).map_err(|e| load_error(&env, &e))
    }

    /// Loads files and directories off the JavaScript thread.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn load_paths_async(&self, paths: Vec<String>) -> AsyncTask<LoadTask> {
        AsyncTask::new(LoadTask { engine: self.inner.clone(), paths })
    }

    /// Loads a bundle given as YAML or JSON text; returns the new generation.
    #[napi]
    pub fn load_yaml(&self, env: Env, text: String) -> Result<i64> {
        self.inner.load_str(&text).map(|g| g as i64).map_err(|e| load_error(&env, &e))
    }

    /// Applies a change set: an array of `{op: 'upsert', object}`, `{op: 'upsert', text,
    /// source?}` and `{op: 'delete', apiVersion, kind, namespace?, name}`. All-or-nothing
    /// (throws `BUNDLE_ERROR`, nothing changes), or with `lenient` the upserts that fail are
    /// left out and listed in the report's `rejected`. Returns `{generation, upserted,
    /// deleted, objects, rejected}`.
    #[napi(
        ts_args_type = "changes: Array<Record<string, unknown>>, lenient?: boolean",
        ts_return_type = "{ generation: number; upserted: number; deleted: number; objects: number; rejected: Array<Record<string, unknown>> }"
    )]
    pub fn apply(&self, env: Env, changes: Value, lenient: Option<bool>) -> Result<Value> {
        answer::apply_value(&self.inner, &changes, lenient == Some(true))
            .map(|r| answer::apply_report_json(&r))
            .map_err(|e| load_error(&env, &e))
    }

    /// Decides a request (a plain object in the SPEC 7 shape). A malformed request is a deny
    /// with reason `invalid_request`, or throws `REQUEST_ERROR` when `strict` is true.
    #[napi(ts_args_type = "request: Request, strict?: boolean", ts_return_type = "Decision")]
    pub fn decide(&self, env: Env, request: Value, strict: Option<bool>) -> Result<Value> {
        self.decide_parsed(&env, parse(request), strict)
    }

    /// Decides many requests against one snapshot (traces are not recorded).
    #[napi(ts_args_type = "requests: Request[]", ts_return_type = "Decision[]")]
    pub fn decide_many(&self, requests: Vec<Value>) -> Vec<Value> {
        self.decide_values(requests)
    }

    /// `decide` on JSON text (what `palisade.js` calls: V8's JSON is faster than converting
    /// objects property by property).
    #[napi]
    pub fn decide_json(&self, env: Env, request: String, strict: Option<bool>) -> Result<String> {
        self.decide_parsed(&env, parse_text(&request), strict).map(|v| v.to_string())
    }

    /// `decideMany` on a JSON array (what `palisade.js` calls).
    #[napi]
    pub fn decide_many_json(&self, requests: String) -> String {
        // Strict parsing (duplicate keys are errors); text that is not an array decides nothing.
        let list = match palisade_core::request::parse_json(&requests) {
            Ok(Value::Array(list)) => list,
            _ => Vec::new(),
        };
        Value::Array(self.decide_values(list)).to_string()
    }

    /// The tier walk for a person to read.
    #[napi(ts_args_type = "request: Request")]
    pub fn explain(&self, env: Env, request: Value) -> Result<String> {
        match parse(request) {
            Ok(r) => Ok(self.inner.explain(&r.as_request()).to_string()),
            Err(e) => Err(request_error(&env, &e)),
        }
    }

    /// The generation of the snapshot in force (0 when nothing is loaded).
    #[napi(getter)]
    pub fn generation(&self) -> i64 {
        self.inner.snapshot().map(|s| s.generation() as i64).unwrap_or(0)
    }

    /// The documents of the bundle in force that Palisade read no access rule from:
    /// `[{apiVersion, kind, count}]` (empty when nothing is loaded).
    #[napi]
    pub fn skipped(&self) -> Value {
        self.inner.snapshot().map(|s| palisade_core::lint::skipped_json(s.bundle())).unwrap_or(Value::Array(Vec::new()))
    }
}

/// A flow logger over an engine: `decide` decides as `Engine.decide` does and records the
/// decision into a bounded queue (allocation-free, never waits); `drain` returns the records
/// in Calico's flow-log format. A full queue drops records and counts them (`dropped`).
#[napi]
pub struct FlowLog {
    log: CoreFlowLog,
    engine: Arc<CoreEngine>,
    aggregated: bool,
}

impl FlowLog {
    fn decide_parsed(
        &self,
        env: &Env,
        parsed: std::result::Result<OwnedRequest, RequestError>,
        strict: Option<bool>,
    ) -> Result<Value> {
        answered(env, parsed, strict, |r| answer::decide_logged(&self.log, &self.engine, r), &self.engine)
    }

    fn records(&self) -> Vec<palisade_core::flowlog::FlowRecord> {
        if self.aggregated { self.log.drain_aggregated() } else { self.log.drain() }
    }
}

#[napi]
impl FlowLog {
    /// A flow logger deciding with `engine`. `capacity` decisions (default 4096) are held
    /// until `drain` (allocated now). `aggregation`: null for one record per evaluated side of
    /// each decision, a Calico level 0-3 for allowed and denied flows alike, or `'default'`
    /// for Felix's defaults (2 allowed, 1 denied).
    #[napi(
        constructor,
        ts_args_type = "engine: Engine, capacity?: number | null, aggregation?: number | 'default' | null"
    )]
    pub fn new(env: Env, engine: &Engine, capacity: Option<u32>, aggregation: Option<Value>) -> Result<Self> {
        let capacity = capacity.unwrap_or(4096) as usize;
        let bad = |msg: &str| throw(&env, "ARGUMENT_ERROR", msg, &[]);
        if capacity == 0 {
            return Err(bad("capacity must be at least 1"));
        }
        let mut config = FlowLogConfig { capacity, ..FlowLogConfig::default() };
        let aggregated = match aggregation {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) if s == "default" => true,
            Some(v) => {
                let level = v.as_u64().and_then(|n| u8::try_from(n).ok()).and_then(Aggregation::from_level);
                let Some(level) = level else {
                    return Err(bad("aggregation: give null, 'default' or a level 0-3"));
                };
                config.aggregation_allowed = level;
                config.aggregation_denied = level;
                true
            }
        };
        let log = CoreFlowLog::new(config);
        if let Some(s) = engine.inner.snapshot() {
            log.prepare(&s);
        }
        Ok(FlowLog { log, engine: engine.inner.clone(), aggregated })
    }

    /// Decides like `Engine.decide` (same arguments, same decision; `trace` is empty) and
    /// records the decision. A request that does not parse is not recorded.
    #[napi(ts_args_type = "request: Request, strict?: boolean", ts_return_type = "Decision")]
    pub fn decide(&self, env: Env, request: Value, strict: Option<bool>) -> Result<Value> {
        self.decide_parsed(&env, parse(request), strict)
    }

    /// `decide` on JSON text (what `palisade.js` calls).
    #[napi]
    pub fn decide_json(&self, env: Env, request: String, strict: Option<bool>) -> Result<String> {
        self.decide_parsed(&env, parse_text(&request), strict).map(|v| v.to_string())
    }

    /// Takes every recorded decision and returns its flow-log records (aggregated as
    /// configured), objects with Calico's field names.
    #[napi(ts_return_type = "Record<string, any>[]")]
    pub fn drain(&self) -> Value {
        Value::Array(self.records().iter().map(|r| serde_json::to_value(r).unwrap_or(Value::Null)).collect())
    }

    /// `drain` as a JSON array (what `palisade.js` calls).
    #[napi]
    pub fn drain_json(&self) -> String {
        serde_json::to_string(&self.records()).unwrap_or_else(|_| "[]".into())
    }

    /// Decisions not recorded because the queue was full (never reset).
    #[napi(getter)]
    pub fn dropped(&self) -> i64 {
        self.log.stats().dropped as i64
    }
}

/// The library version.
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
