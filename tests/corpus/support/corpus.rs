//! The corpus reader shared by the Rust runners (`core/tests/corpus.rs`,
//! `cli/tests/corpus.rs`, `tests/proxy-wasm-host/tests/corpus.rs`), included with
//! `#[path]`: the cases of `tests/corpus/cases/`, a surface's skip list, and the check of a
//! decision against the fields an expected line names. The format: `tests/corpus/README.md`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// `tests/corpus/`, from the runner's crate directory (`CARGO_MANIFEST_DIR`).
pub fn corpus(manifest_dir: &str) -> PathBuf {
    let mut dir = PathBuf::from(manifest_dir);
    while !dir.join("tests/corpus/cases").is_dir() {
        assert!(dir.pop(), "tests/corpus not found above {manifest_dir}");
    }
    dir.join("tests/corpus")
}

/// One case: its bundle paths, its request lines (raw text) and the expected decisions.
pub struct Case {
    /// The case directory's name.
    pub name: String,
    /// The bundle paths, resolved against the case directory.
    pub bundle: Vec<PathBuf>,
    /// The requests file.
    pub requests_file: PathBuf,
    /// Its non-blank lines, as written.
    pub requests: Vec<String>,
    /// The expected decisions, one per request.
    pub expected: Vec<Value>,
}

/// The non-blank lines of a JSON-lines file.
pub fn jsonl(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

/// Every case of the corpus, in name order.
pub fn cases(corpus: &Path) -> Vec<Case> {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(corpus.join("cases")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let manifest: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
            let bundle = manifest["bundle"].as_array().unwrap().iter().map(|p| dir.join(p.as_str().unwrap())).collect();
            let requests_file = dir.join(manifest["requests"].as_str().unwrap_or("requests.jsonl"));
            let expected: Vec<Value> =
                jsonl(&dir.join("expected.jsonl")).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
            let requests = jsonl(&requests_file);
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(requests.len(), expected.len(), "{name}: one expected decision per request");
            Case { name, bundle, requests_file, requests, expected }
        })
        .collect()
}

/// `tests/corpus/skip/<surface>.txt`: `case line reason...` (line counts from 1, over the
/// non-blank lines); a skip without a reason, or one naming no request of the corpus, fails.
pub fn skips(corpus: &Path, surface: &str, cases: &[Case]) -> BTreeMap<(String, usize), String> {
    let path = corpus.join("skip").join(format!("{surface}.txt"));
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(&path) else { return out };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let (case, index, reason) = (parts.next().unwrap(), parts.next(), parts.next().map(str::trim));
        let index: usize =
            index.and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("{surface}.txt:{}: no line number", n + 1));
        let reason = reason.filter(|r| !r.is_empty());
        assert!(reason.is_some(), "{surface}.txt:{}: a skip needs a reason", n + 1);
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
/// sides, `null` for a side that must not have been walked), pushing one line per mismatch.
pub fn check(what: &str, actual: &Value, expected: &Value, failures: &mut Vec<String>) {
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
