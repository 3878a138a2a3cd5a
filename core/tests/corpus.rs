//! `tests/corpus/`: every case decided by both evaluators (the compiled `decide` and the
//! reference evaluator), which must agree with each other, decision and trace, and with the
//! case's expected decisions. The format and the skip list: `tests/corpus/README.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use palisade::{Config, Engine, OwnedRequest};
use serde_json::{json, Value};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus")
}

struct Case {
    name: String,
    bundle: Vec<PathBuf>,
    requests: Vec<String>,
    expected: Vec<Value>,
}

fn jsonl(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

fn cases() -> Vec<Case> {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(corpus().join("cases")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
            let bundle = manifest["bundle"].as_array().unwrap().iter().map(|p| dir.join(p.as_str().unwrap())).collect();
            let requests = dir.join(manifest["requests"].as_str().unwrap_or("requests.jsonl"));
            let expected = jsonl(&dir.join("expected.jsonl")).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
            Case {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                bundle,
                requests: jsonl(&requests),
                expected,
            }
        })
        .collect()
}

/// `tests/corpus/skip/<surface>.txt`: `case line reason...`; a skip without a reason, or one
/// naming no request of the corpus, fails the run.
fn skips(surface: &str, cases: &[Case]) -> BTreeMap<(String, usize), String> {
    let path = corpus().join("skip").join(format!("{surface}.txt"));
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(&path) else { return out };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let (case, index, reason) = (parts.next().unwrap(), parts.next(), parts.next().map(str::trim));
        let index: usize = index.and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("{surface}.txt:{}: no line number", n + 1));
        assert!(reason.is_some_and(|r| !r.is_empty()), "{surface}.txt:{}: a skip needs a reason", n + 1);
        assert!(
            cases.iter().any(|c| c.name == case && index >= 1 && index <= c.requests.len()),
            "{surface}.txt:{}: no request {case} {index}",
            n + 1
        );
        out.insert((case.to_string(), index), reason.unwrap().to_string());
    }
    out
}

/// Checks `actual` against the fields `expected` names (`why` is commentary; `trace` names
/// sides, `null` for a side that must not have been walked).
fn check(what: &str, actual: &Value, expected: &Value, failures: &mut Vec<String>) {
    for (key, want) in expected.as_object().unwrap() {
        match key.as_str() {
            "why" => {}
            "trace" => {
                for (side, hits) in want.as_object().unwrap() {
                    let got = actual["trace"].get(side).unwrap_or(&Value::Null);
                    if got != hits {
                        failures.push(format!("{what}: trace.{side} is {got}, expected {hits}\n  decision: {actual}"));
                    }
                }
            }
            _ => {
                let got = actual.get(key).unwrap_or(&Value::Null);
                if got != want {
                    failures.push(format!("{what}: {key} is {got}, expected {want}\n  decision: {actual}"));
                }
            }
        }
    }
}

#[test]
fn every_case_decides_as_expected_by_both_evaluators() {
    let cases = cases();
    assert!(cases.len() >= 8, "the corpus is read");
    let skips = skips("core", &cases);
    let mut decided = 0;
    let mut failures = Vec::new();
    for case in &cases {
        assert_eq!(case.requests.len(), case.expected.len(), "{}: one expected decision per request", case.name);
        let engine = Engine::new(Config::default());
        if let Err(e) = engine.load_paths(&case.bundle) {
            panic!("{}: the bundle should load: {e}", case.name);
        }
        let snap = engine.snapshot().unwrap();
        for (i, (request, expected)) in case.requests.iter().zip(&case.expected).enumerate() {
            let what = format!("{} line {}", case.name, i + 1);
            if skips.contains_key(&(case.name.clone(), i + 1)) {
                continue;
            }
            let actual = match OwnedRequest::from_json(request) {
                Ok(owned) => {
                    let req = owned.as_request();
                    let (fast, fast_trace) = snap.decide_traced(&req);
                    let (reference, reference_trace) = snap.decide_reference_traced(&req);
                    assert_eq!(fast, reference, "{what}: the compiled and reference evaluators disagree");
                    assert_eq!(fast_trace, reference_trace, "{what}: the evaluators' traces disagree");
                    assert_eq!(snap.decide(&req), fast, "{what}: tracing changed the decision");
                    let explained = snap.explain(&req);
                    assert_eq!(explained.decision, fast, "{what}: explain disagrees with decide");
                    explained.json().clone()
                }
                // A request the JSON reader refuses (a duplicate key, a sequence for an object)
                // is what every binding answers as an invalid request.
                Err(_) => json!({"action": "deny", "reason": "invalid_request", "side": null, "tier": null,
                                 "policy": null, "rule": null, "peer": null, "l7_pending": false,
                                 "staged": null, "trace": {}}),
            };
            check(&what, &actual, expected, &mut failures);
            decided += 1;
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(decided >= 80, "{decided} requests decided");
}
