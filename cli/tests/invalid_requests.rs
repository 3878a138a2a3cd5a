//! `palisade decide` on requests it must refuse (issue 14 items 9 and 10, SPEC 9.3): every
//! `invalid_request` gets its own stdout line and one stderr line with the line number and
//! the cause, whatever the cause; a line that is not UTF-8 is one of them, and the lines
//! after it are still decided.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use serde_json::Value;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade")).args(args).current_dir(root()).output().unwrap()
}

const OK: &str = r#"{"source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/shop/sa/frontend"}, "destination": {"ip": "10.1.0.9", "port": 8080}, "http": {"method": "GET", "path": "/api/cart/42"}}"#;

/// Each line and the cause its stderr line must name.
fn cases() -> Vec<(Vec<u8>, &'static str)> {
    let b = r#""source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.1.0.9", "port": 8080}"#;
    vec![
        (format!(r#"{{{b}, "http": {{"method": "GET", "path": "/admin%2F..%2Fapi/x"}}}}"#).into_bytes(), "%2F or %5C"),
        (format!(r#"{{{b}, "http": {{"method": "GET", "path": "/admin%5c..%5capi/x"}}}}"#).into_bytes(), "%2F or %5C"),
        (b"{\"source\": {\"ip\": \"10.1.0.5\xff\"}}".to_vec(), "not UTF-8 (byte 0xff at column 28"),
        (
            br#"{"source": {"ip": "10.1.0.5", "principal": "cluster.local/ns/shop/sa/frontend"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#.to_vec(),
            "source.principal lacks the spiffe:// scheme",
        ),
        (
            br#"{"source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/shop/sa/"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#.to_vec(),
            "source.principal is not a valid SPIFFE ID",
        ),
        (br#"{"source": {"ip": "10.1.0.5"}, "destination": {"ip": "fd00::9", "port": 8080}}"#.to_vec(), "different families"),
        (br#"["both", "TCP", ["10.1.0.5"], ["10.1.0.9", 8080]]"#.to_vec(), "expected an object, found an array"),
        (
            format!(r#"{{{b}, "http": {{"method": "GET", "path": "/", "headers": {{"x-evil": "1", "x-evil": "2"}}}}}}"#)
                .into_bytes(),
            "duplicate key \"x-evil\"",
        ),
        (format!(r#"{{{b}, "icmp": {{"type": null}}}}"#).into_bytes(), "icmp.type"),
        (br#"{"source": {"ip": "10.1.0.5", "principle": "x"}}"#.to_vec(), "unknown field `principle`"),
    ]
}

#[test]
fn every_invalid_request_has_a_stderr_line_with_its_line_number_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    // Line 1 decides, then the bad lines with a blank line and a CRLF line among them, then a
    // good line again: every line but the blank one gets a decision, in order.
    let mut text = format!("{OK}\n\n").into_bytes();
    let mut expected = vec![];
    let mut line = 2;
    for (i, (bad, cause)) in cases().into_iter().enumerate() {
        line += 1;
        text.extend_from_slice(&bad);
        text.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b"\n" });
        expected.push((line, cause));
    }
    text.extend_from_slice(OK.as_bytes());
    std::fs::write(&path, &text).unwrap();
    let path = path.to_str().unwrap();
    let out = palisade(&["decide", "--bundle", "examples/shop", "--requests", path]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    let stdout = String::from_utf8(out.stdout).unwrap();
    let decisions: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(decisions.len(), expected.len() + 2, "{stdout}");
    let first = &decisions[0];
    let last = &decisions[decisions.len() - 1];
    for d in [first, last] {
        assert_eq!((d["action"].as_str(), d["reason"].as_str()), (Some("allow"), Some("rule")), "{d}");
    }
    for d in &decisions[1..decisions.len() - 1] {
        assert_eq!((d["action"].as_str(), d["reason"].as_str()), (Some("deny"), Some("invalid_request")), "{d}");
    }

    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), expected.len(), "one stderr line per invalid request:\n{stderr}");
    for ((number, cause), got) in expected.iter().zip(&lines) {
        let prefix = format!("palisade: {path}:{number}: invalid request: ");
        assert!(got.starts_with(&prefix), "want {prefix:?}..., got {got:?}");
        assert!(got.contains(cause), "line {number}: want {cause:?} in {got:?}");
        // People read these: no Rust types, no advice meant for the programmer.
        for internal in ["Option<", "struct ", "Json", "u8", "sequence", "DuplicateKeyPolicy", "at line 1 column"] {
            assert!(!got.contains(internal), "line {number}: {got:?} mentions {internal:?}");
        }
    }
}

#[test]
fn a_single_request_that_is_not_utf8_is_invalid_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    std::fs::write(&path, b"{\"source\": {\"ip\": \"\xc3\x28\"}}").unwrap();
    let path = path.to_str().unwrap();
    let out = palisade(&["decide", "--bundle", "examples/shop", "--request", path]);
    assert_eq!(out.status.code(), Some(0));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["reason"], "invalid_request");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with(&format!("palisade: {path}: invalid request: the request is not UTF-8")), "{stderr}");
}

#[test]
fn explain_says_why_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    std::fs::write(
        &path,
        b"\xff\n{\"source\": {\"ip\": \"10.1.0.5\"}, \"destination\": {\"ip\": \"fd00::9\", \"port\": 1}}\n",
    )
    .unwrap();
    let out = palisade(&["explain", "--bundle", "examples/shop", "--requests", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("why: the request is not UTF-8"), "{stdout}");
    assert!(stdout.contains("why: source.ip and destination.ip are of different families"), "{stdout}");
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 2);
}
