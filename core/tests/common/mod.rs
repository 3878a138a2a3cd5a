//! Helpers shared by the integration tests: every decision is made by the engine's fast
//! path and by the reference evaluator, and the two must agree.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade::{Config, Engine, OwnedRequest};
use serde_json::Value;

/// An engine loaded with `yaml` and the default configuration.
pub fn engine(yaml: &str) -> Engine {
    engine_with(yaml, Config::default())
}

/// An engine loaded with `yaml` and `config`.
pub fn engine_with(yaml: &str, config: Config) -> Engine {
    let e = Engine::new(config);
    if let Err(err) = e.load_str(yaml) {
        panic!("bundle should load: {err}");
    }
    e
}

/// Decides `request` (JSON) on both paths, checks they agree, and returns the SPEC 7
/// JSON of the decision with its trace.
pub fn decide(engine: &Engine, request: &str) -> Value {
    let owned = OwnedRequest::from_json(request).unwrap_or_else(|e| panic!("request should parse: {e}"));
    let req = owned.as_request();
    let snap = engine.snapshot().expect("loaded");
    let fast = snap.decide(&req);
    let reference = snap.decide_reference(&req);
    assert_eq!(fast, reference, "fast path and reference disagree on {request}");
    let explained = engine.explain(&req);
    assert_eq!(explained.decision, fast, "explain disagrees with decide on {request}");
    explained.json().clone()
}

/// A TCP request between two IPs to `port`.
pub fn tcp(src: &str, dst: &str, port: u16) -> String {
    format!(r#"{{"source": {{"ip": "{src}"}}, "destination": {{"ip": "{dst}", "port": {port}}}}}"#)
}

/// A pod document.
pub fn pod(ns: &str, name: &str, ip: &str, sa: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\nspec: {{serviceAccountName: {sa}}}\nstatus: {{podIP: {ip}}}\n---\n"
    )
}

/// The trace of one side as a list of strings.
pub fn trace(d: &Value, side: &str) -> Vec<String> {
    d["trace"][side].as_array().map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}
