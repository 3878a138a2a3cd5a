//! `palisade._palisade`: the native module behind the `palisade` Python package. It only
//! translates types and errors; every behaviour is the core crate's.

use palisade_core::answer::{self, Answer, Enforcement, ErrorFields};
use palisade_core::flowlog::{Aggregation, FlowLog as CoreFlowLog, FlowLogConfig};
use palisade_core::{Config, Engine as CoreEngine, LoadError, OwnedRequest, RequestError as CoreRequestError};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

create_exception!(_palisade, PalisadeError, PyException, "Base class of every Palisade error.");
create_exception!(_palisade, BundleError, PalisadeError, "A bundle could not be loaded (nothing changed).");
create_exception!(_palisade, ConfigError, PalisadeError, "A configuration is invalid.");
create_exception!(_palisade, RequestError, PalisadeError, "A request cannot be parsed (strict mode).");

/// Sets the located-error attributes (`kind`, `file`, `document`, `object`, `field`,
/// `message`: the core's [`ErrorFields`]) on an exception.
fn located(py: Python<'_>, err: PyErr, fields: &ErrorFields) -> PyErr {
    let v = err.value(py);
    let _ = v.setattr("kind", fields.kind);
    let _ = v.setattr("file", fields.file.clone());
    let _ = v.setattr("document", fields.document);
    let _ = v.setattr("object", fields.object.clone());
    let _ = v.setattr("field", fields.field.clone());
    let _ = v.setattr("message", fields.message.clone());
    err
}

fn bundle_error(py: Python<'_>, e: &LoadError) -> PyErr {
    // The message lists every error of the load, one per line; `errors` has them as dicts.
    let err = located(py, BundleError::new_err(e.report()), &ErrorFields::of_load(e));
    let all: Vec<Value> = ErrorFields::all(e).iter().map(ErrorFields::json).collect();
    if let Ok(list) = json_to_py(py, &Value::Array(all)) {
        let _ = err.value(py).setattr("errors", list);
    }
    err
}

fn request_error(py: Python<'_>, e: &palisade_core::RequestError) -> PyErr {
    located(py, RequestError::new_err(e.to_string()), &ErrorFields::of_request(e))
}

/// Converts a Python value (dict, list, str, int, float, bool, None) to JSON.
fn to_json(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > 32 {
        return Err(RequestError::new_err("the request nests too deeply"));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        return Ok(Value::from(obj.extract::<u64>().unwrap_or(u64::MAX)));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(serde_json::Number::from_f64(f.value()).map(Value::Number).unwrap_or(Value::Null));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.extract::<String>()?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = serde_json::Map::new();
        for (k, v) in d.iter() {
            let key: String = k.extract().map_err(|_| RequestError::new_err("dictionary keys must be strings"))?;
            m.insert(key, to_json(&v, depth + 1)?);
        }
        return Ok(Value::Object(m));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l.iter().map(|v| to_json(&v, depth + 1)).collect::<PyResult<Vec<_>>>().map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t.iter().map(|v| to_json(&v, depth + 1)).collect::<PyResult<Vec<_>>>().map(Value::Array);
    }
    Err(RequestError::new_err(format!("cannot use a {} in a request", obj.get_type().name()?)))
}

/// Maps the keyword form (`src_ip=`, `dst_port=`, `principal=`, `method=` ...) to the JSON form.
fn from_keywords(kw: &Bound<'_, PyDict>) -> PyResult<Value> {
    let mut root = serde_json::Map::new();
    let mut source = serde_json::Map::new();
    let mut destination = serde_json::Map::new();
    let mut http = serde_json::Map::new();
    let mut icmp = serde_json::Map::new();
    for (k, v) in kw.iter() {
        let key: String = k.extract()?;
        let value = to_json(&v, 0)?;
        let (map, name): (&mut serde_json::Map<String, Value>, &str) = match key.as_str() {
            "src_ip" => (&mut source, "ip"),
            "src_port" => (&mut source, "port"),
            "principal" | "src_principal" => (&mut source, "principal"),
            "remote_ip" => (&mut source, "remote_ip"),
            "dst_ip" => (&mut destination, "ip"),
            "dst_port" => (&mut destination, "port"),
            "dst_principal" => (&mut destination, "principal"),
            "method" | "path" | "host" | "headers" => (&mut http, key.as_str()),
            "icmp_type" => (&mut icmp, "type"),
            "icmp_code" => (&mut icmp, "code"),
            "direction" | "protocol" | "sni" | "auth" => (&mut root, key.as_str()),
            other => {
                // An unknown keyword is an unknown field: refuse rather than drop it.
                root.insert(other.to_string(), value);
                continue;
            }
        };
        // `principal` and `src_principal` name one field: giving both is a duplicate key.
        if map.insert(name.to_string(), value).is_some() {
            return Err(RequestError::new_err(format!(
                "{key}: source.principal is given twice (as principal and src_principal)"
            )));
        }
    }
    root.insert("source".into(), Value::Object(source));
    root.insert("destination".into(), Value::Object(destination));
    if !http.is_empty() {
        root.insert("http".into(), Value::Object(http));
    }
    if !icmp.is_empty() {
        root.insert("icmp".into(), Value::Object(icmp));
    }
    Ok(Value::Object(root))
}

/// A parsed request, reusable across decisions (build once, decide many times).
#[pyclass(frozen, module = "palisade._palisade")]
struct Request {
    inner: OwnedRequest,
}

#[pymethods]
impl Request {
    /// Builds a request from a dict in the SPEC 7 shape and/or keyword arguments.
    #[new]
    #[pyo3(signature = (request=None, **kwargs))]
    fn new(py: Python<'_>, request: Option<&Bound<'_, PyAny>>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        match parse(py, request, kwargs)? {
            Ok(inner) => Ok(Request { inner }),
            Err(e) => Err(request_error(py, &e)),
        }
    }

    fn __repr__(&self) -> String {
        format!("Request({:?} -> {:?})", self.inner.source.0, self.inner.destination.0)
    }
}

/// A request from a dict or keywords: the core's `RequestError` when it does not parse
/// (a value Python cannot express in JSON is one, at `-`); other Python errors propagate.
fn parse(
    py: Python<'_>,
    request: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Result<OwnedRequest, CoreRequestError>> {
    let unusable = |message: String| CoreRequestError { field: "-".into(), message };
    let value = match (request, kwargs) {
        (Some(r), None) => to_json(r, 0),
        (None, Some(kw)) => from_keywords(kw),
        (None, None) => return Ok(Err(unusable("a request (dict) or keyword arguments are required".into()))),
        (Some(_), Some(_)) => return Ok(Err(unusable("give a request dict or keyword arguments, not both".into()))),
    };
    match value {
        Ok(v) => Ok(OwnedRequest::from_value(v)),
        Err(e) if e.is_instance_of::<RequestError>(py) => Ok(Err(unusable(e.value(py).to_string()))),
        Err(e) => Err(e),
    }
}

/// A decision: immutable. Names and the trace are read from the snapshot that decided.
#[pyclass(frozen, module = "palisade._palisade")]
struct Decision {
    a: Answer,
}

#[pymethods]
impl Decision {
    /// `"allow"` or `"deny"`.
    #[getter]
    fn action(&self) -> &'static str {
        self.a.decision.action.as_str()
    }
    /// Whether the request as given may proceed: an allow that is not `l7_pending` (an
    /// HTTP rule allowed a request without HTTP attributes is not an allow here, since
    /// nothing would check the HTTP rule). See `allows_connection`.
    #[getter]
    fn allowed(&self) -> bool {
        self.a.allows(Enforcement::Request)
    }
    /// Whether a connection may be opened: also true for an `l7_pending` allow, for an
    /// L4 enforcement point with a proxy behind it that decides each HTTP request.
    #[getter]
    fn allows_connection(&self) -> bool {
        self.a.allows(Enforcement::Connection)
    }
    /// The reason (`rule`, `end_of_tier`, `no_policy`, `identity_mismatch`, ...).
    #[getter]
    fn reason(&self) -> &'static str {
        self.a.decision.reason.as_str()
    }
    /// `"ingress"`, `"egress"` or None.
    #[getter]
    fn side(&self) -> Option<&'static str> {
        self.a.decision.side.map(|s| s.as_str())
    }
    /// `"source"` or `"destination"` for identity reasons.
    #[getter]
    fn peer(&self) -> Option<&'static str> {
        self.a.decision.peer.map(|p| p.as_str())
    }
    /// The deciding tier's name.
    #[getter]
    fn tier(&self) -> Option<String> {
        self.a.snapshot.as_ref().and_then(|s| s.tier_name(self.a.decision.tier)).map(str::to_string)
    }
    /// The deciding policy as `<kind>:[<ns>/]<name>`.
    #[getter]
    fn policy(&self) -> Option<String> {
        self.a.snapshot.as_ref().and_then(|s| s.policy_name(self.a.decision.policy)).map(str::to_string)
    }
    /// The rule index (-1 for an end-of-tier action).
    #[getter]
    fn rule(&self) -> Option<i32> {
        self.a.decision.rule
    }
    /// Whether the proxy must decide again with the HTTP attributes.
    #[getter]
    fn l7_pending(&self) -> bool {
        self.a.decision.l7_pending
    }
    /// The staged verdict, or None.
    #[getter]
    fn staged(&self) -> Option<&'static str> {
        self.a.decision.staged.map(|a| a.as_str())
    }
    /// The snapshot generation that decided.
    #[getter]
    fn generation(&self) -> u64 {
        self.a.decision.generation
    }
    /// Why an invalid request was refused.
    #[getter]
    fn detail(&self) -> Option<String> {
        self.a.detail()
    }
    /// The Calico-format trace (`{"ingress": [...], "egress": [...]}`), or None when it was
    /// not recorded (`decide_many`).
    #[getter]
    fn trace<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if !self.a.has_trace() {
            return Ok(None);
        }
        let v = self.a.json();
        json_to_py(py, v.get("trace").unwrap_or(&Value::Null)).map(Some)
    }
    /// The decision as the SPEC 7 dict (the CLI's JSON).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.a.json())
    }
    fn __repr__(&self) -> String {
        format!("Decision(action={:?}, reason={:?}, policy={:?})", self.action(), self.reason(), self.policy())
    }
    /// `allowed`: an `l7_pending` allow is false.
    fn __bool__(&self) -> bool {
        self.a.allows(Enforcement::Request)
    }
}

fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into_pyobject(py)?.into_any(),
            None => n.as_f64().unwrap_or(0.0).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(json_to_py(py, x)?)?;
            }
            l.into_any()
        }
        Value::Object(m) => {
            let d = PyDict::new(py);
            for (k, x) in m {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// The policy decision point.
#[pyclass(frozen, subclass, module = "palisade._palisade")]
struct Engine {
    engine: CoreEngine,
}

fn config_from(py: Python<'_>, config: Option<&Bound<'_, PyAny>>) -> PyResult<Config> {
    let Some(c) = config else { return Ok(Config::default()) };
    if c.is_none() {
        return Ok(Config::default());
    }
    let value = to_json(c, 0).map_err(|_| ConfigError::new_err("the configuration must be a dict of plain values"))?;
    Config::from_value(&value)
        .map_err(|e| located(py, ConfigError::new_err(e.to_string()), &ErrorFields::of_config(&e)))
}

fn paths_of(paths: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = paths.extract::<String>() {
        return Ok(vec![s]);
    }
    paths
        .try_iter()?
        .map(|p| {
            let p = p?;
            match p.extract::<String>() {
                Ok(s) => Ok(s),
                Err(_) => p.str()?.extract::<String>(),
            }
        })
        .collect()
}

impl Engine {
    fn owned(
        &self,
        py: Python<'_>,
        request: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Result<OwnedRequest, CoreRequestError>> {
        if let (Some(r), None) = (request, kwargs)
            && let Ok(req) = r.cast::<Request>()
        {
            return Ok(Ok(req.get().inner.clone()));
        }
        parse(py, request, kwargs)
    }
}

#[pymethods]
impl Engine {
    /// An engine with nothing loaded (it denies everything, reason `no_bundle`).
    #[new]
    #[pyo3(signature = (config=None))]
    fn new(py: Python<'_>, config: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(Engine { engine: CoreEngine::new(config_from(py, config)?) })
    }

    /// Loads files and directories; returns the new generation. Raises `BundleError`.
    fn load_paths(&self, py: Python<'_>, paths: &Bound<'_, PyAny>) -> PyResult<u64> {
        let list = paths_of(paths)?;
        py.detach(|| self.engine.load_paths(&list)).map_err(|e| bundle_error(py, &e))
    }

    /// Loads a bundle given as YAML or JSON text; returns the new generation.
    fn load_yaml(&self, py: Python<'_>, text: &str) -> PyResult<u64> {
        let text = text.to_string();
        py.detach(|| self.engine.load_str(&text)).map_err(|e| bundle_error(py, &e))
    }

    /// Applies a change set (what an embedder with its own informers feeds): a list of
    /// `{"op": "upsert", "object": {...}}`, `{"op": "upsert", "text": "...", "source": ...}`
    /// and `{"op": "delete", "apiVersion": ..., "kind": ..., "namespace": ..., "name": ...}`.
    /// All-or-nothing (raises `BundleError`, nothing changes), or with `lenient=True` the
    /// upserts that fail are left out and listed in the report's `rejected`. Returns the
    /// report: `generation`, `upserted`, `deleted`, `objects`, `rejected`.
    #[pyo3(signature = (changes, *, lenient=false))]
    fn apply<'py>(&self, py: Python<'py>, changes: &Bound<'py, PyAny>, lenient: bool) -> PyResult<Bound<'py, PyAny>> {
        let value = to_json(changes, 0)?;
        let report =
            py.detach(|| answer::apply_value(&self.engine, &value, lenient)).map_err(|e| bundle_error(py, &e))?;
        json_to_py(py, &answer::apply_report_json(&report))
    }

    /// Decides a request (a dict, a `Request`, or keyword arguments). A malformed request
    /// is a deny with reason `invalid_request`, or raises `RequestError` with `strict=True`.
    #[pyo3(signature = (request=None, *, strict=false, **kwargs))]
    fn decide(
        &self,
        py: Python<'_>,
        request: Option<&Bound<'_, PyAny>>,
        strict: bool,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        let a = match self.owned(py, request, kwargs)? {
            // The trace is recorded when `trace` or `to_dict` asks for it.
            Ok(r) => answer::decide_lazy(&self.engine, r),
            Err(e) if strict => return Err(request_error(py, &e)),
            Err(e) => Answer::unparsed(&self.engine, e),
        };
        Ok(Decision { a })
    }

    /// Decides many requests with the GIL released for the whole batch. Requests that do not
    /// parse are denied with `invalid_request`. Traces are not recorded.
    fn decide_many(&self, py: Python<'_>, requests: &Bound<'_, PyAny>) -> PyResult<Vec<Decision>> {
        // Prebuilt `Request`s are decided in place; other items are parsed first.
        let mut prebuilt: Vec<Py<Request>> = Vec::new();
        let mut parsed: Vec<Option<Result<OwnedRequest, CoreRequestError>>> = Vec::new();
        for item in requests.try_iter()? {
            let item = item?;
            match item.cast::<Request>() {
                Ok(r) => {
                    prebuilt.push(r.clone().unbind());
                    parsed.push(None);
                }
                Err(_) => parsed.push(Some(self.owned(py, Some(&item), None)?)),
            }
        }
        let mut pre = prebuilt.iter().map(|r| &r.get().inner);
        let items: Vec<Result<&OwnedRequest, CoreRequestError>> = parsed
            .iter()
            .map(|p| match p {
                None => pre.next().ok_or_else(|| CoreRequestError { field: "-".into(), message: "lost".into() }),
                Some(Ok(r)) => Ok(r),
                Some(Err(e)) => Err(e.clone()),
            })
            .collect();
        let answers = py.detach(|| answer::decide_many(&self.engine, items));
        Ok(answers.into_iter().map(|a| Decision { a }).collect())
    }

    /// The tier walk for a person to read (the CLI's `explain`).
    #[pyo3(signature = (request=None, **kwargs))]
    fn explain(
        &self,
        py: Python<'_>,
        request: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        match self.owned(py, request, kwargs)? {
            Ok(r) => Ok(self.engine.explain(&r.as_request()).to_string()),
            Err(e) => Err(request_error(py, &e)),
        }
    }

    /// The generation of the snapshot in force (0 when nothing is loaded).
    #[getter]
    fn generation(&self) -> u64 {
        self.engine.snapshot().map(|s| s.generation()).unwrap_or(0)
    }

    /// The documents of the bundle in force that Palisade read no access rule from, as
    /// `(apiVersion, kind, count)` tuples (empty when nothing is loaded).
    fn skipped(&self) -> Vec<(String, String, usize)> {
        self.engine
            .snapshot()
            .map(|s| s.bundle().skipped_kinds.iter().map(|((a, k), n)| (a.clone(), k.clone(), *n)).collect())
            .unwrap_or_default()
    }
}

/// A flow logger over an engine: `decide` decides as `Engine.decide` does and records the
/// decision into a bounded queue (allocation-free, never waits); `drain` returns the records
/// in Calico's flow-log format. A full queue drops records and counts them (`dropped`).
#[pyclass(frozen, module = "palisade._palisade")]
struct FlowLog {
    log: CoreFlowLog,
    engine: Py<Engine>,
    aggregated: bool,
}

#[pymethods]
impl FlowLog {
    /// `capacity` decisions are held until `drain` (allocated now). `aggregation`: None for
    /// one record per evaluated side of each decision, a Calico level 0-3 for allowed and
    /// denied flows alike, or `"default"` for Felix's defaults (2 allowed, 1 denied).
    #[new]
    #[pyo3(signature = (engine, capacity=4096, aggregation=None))]
    fn new(engine: &Bound<'_, Engine>, capacity: usize, aggregation: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        if capacity == 0 {
            return Err(pyo3::exceptions::PyValueError::new_err("capacity must be at least 1"));
        }
        let mut config = FlowLogConfig { capacity, ..FlowLogConfig::default() };
        let bad = || pyo3::exceptions::PyValueError::new_err("aggregation: give None, \"default\" or a level 0-3");
        let aggregated = match aggregation {
            None => false,
            Some(a) if a.is_none() => false,
            Some(a) if a.cast::<PyString>().is_ok() => {
                if a.extract::<String>()? != "default" {
                    return Err(bad());
                }
                true
            }
            Some(a) => {
                let level = a.extract::<u8>().ok().and_then(Aggregation::from_level).ok_or_else(bad)?;
                config.aggregation_allowed = level;
                config.aggregation_denied = level;
                true
            }
        };
        let log = CoreFlowLog::new(config);
        if let Some(s) = engine.get().engine.snapshot() {
            log.prepare(&s);
        }
        Ok(FlowLog { log, engine: engine.clone().unbind(), aggregated })
    }

    /// Decides like `Engine.decide` (same arguments, same decision; `trace` is None) and
    /// records the decision. A request that does not parse is not recorded.
    #[pyo3(signature = (request=None, *, strict=false, **kwargs))]
    fn decide(
        &self,
        py: Python<'_>,
        request: Option<&Bound<'_, PyAny>>,
        strict: bool,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        let engine = self.engine.get();
        let a = match engine.owned(py, request, kwargs)? {
            Ok(r) => answer::decide_logged(&self.log, &engine.engine, &r),
            Err(e) if strict => return Err(request_error(py, &e)),
            Err(e) => Answer { trace: None, ..Answer::unparsed(&engine.engine, e) },
        };
        Ok(Decision { a })
    }

    /// Takes every recorded decision and returns its flow-log records (aggregated as
    /// configured), each a dict with Calico's field names.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let records = py.detach(|| if self.aggregated { self.log.drain_aggregated() } else { self.log.drain() });
        records.iter().map(|r| json_to_py(py, &serde_json::to_value(r).unwrap_or(Value::Null))).collect()
    }

    /// Decisions not recorded because the queue was full (never reset).
    #[getter]
    fn dropped(&self) -> u64 {
        self.log.stats().dropped
    }

    fn __repr__(&self) -> String {
        let s = self.log.stats();
        format!("FlowLog(capacity={}, captured={}, dropped={})", self.log.config().capacity, s.captured, s.dropped)
    }
}

/// Lints files and directories: returns the warnings as strings; raises `BundleError` on errors.
#[pyfunction]
fn lint_paths(py: Python<'_>, paths: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let list = paths_of(paths)?;
    let files =
        palisade_core::load::read_paths(&list, Config::default().max_bundle_bytes).map_err(|e| bundle_error(py, &e))?;
    let sources: Vec<palisade_core::load::Source<'_>> =
        files.iter().map(|(n, t)| palisade_core::load::Source { name: n, text: t }).collect();
    let bundle = palisade_core::load::load(&sources, &Config::default()).map_err(|e| bundle_error(py, &e))?;
    Ok(palisade_core::lint::lint(&bundle).iter().map(|w| w.to_string()).collect())
}

/// The native module.
#[pymodule(gil_used = false)]
fn _palisade(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Engine>()?;
    m.add_class::<Request>()?;
    m.add_class::<Decision>()?;
    m.add_class::<FlowLog>()?;
    m.add_function(wrap_pyfunction!(lint_paths, m)?)?;
    m.add("PalisadeError", py.get_type::<PalisadeError>())?;
    m.add("BundleError", py.get_type::<BundleError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("RequestError", py.get_type::<RequestError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
