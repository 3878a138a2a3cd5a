//! The `palisade` command, end to end: the shop example, exit statuses, stdin, lint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

#[path = "../../tests/corpus/support/corpus.rs"]
mod corpus;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn palisade(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        // The command may exit (bundle error) before reading stdin: a broken pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(s.as_bytes());
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The shop example's expected decisions live in the shared corpus
/// (`tests/corpus/cases/shop/expected.jsonl`, every surface runs them); here they are checked
/// through the command as the README runs it, with the stderr line of the malformed request.
#[test]
fn shop_example_decides_as_the_readme_says() {
    let out = palisade(&["decide", "--bundle", "examples/shop", "--requests", "examples/shop/requests.jsonl"], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let d = lines(&out);
    let expected: Vec<Value> = corpus::jsonl(&root().join("tests/corpus/cases/shop/expected.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(d.len(), 11);
    assert_eq!(d.len(), expected.len(), "one decision per request");
    let mut failures = Vec::new();
    for (i, (d, e)) in d.iter().zip(&expected).enumerate() {
        corpus::check(&format!("shop line {}", i + 1), d, e, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The malformed line is reported on stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("principle"));
}

#[test]
fn single_request_from_stdin_and_blank_lines() {
    let req = r#"{"source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#;
    let out = palisade(&["decide", "--bundle", "examples/shop", "--request", "-"], Some(req));
    assert_eq!(out.status.code(), Some(0));
    let d = lines(&out);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["l7_pending"], true);
    let many = format!("\n{req}\n   \n{req}\n");
    let out = palisade(&["decide", "--bundle", "examples/shop", "--requests", "-"], Some(&many));
    assert_eq!(lines(&out).len(), 2, "blank lines get no output line");
}

#[test]
fn explain_is_readable() {
    let req = r#"{"source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/payments/sa/payments"}, "destination": {"ip": "10.2.0.7", "port": 8443}}"#;
    let out = palisade(&["explain", "--bundle", "examples/shop", "--request", "-"], Some(req));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pod shop/frontend-7d9f"), "{text}");
    assert!(text.contains("decision: deny (identity_mismatch)"), "{text}");
    let ok = r#"{"source": {"ip": "10.1.0.9"}, "destination": {"ip": "10.2.0.7", "port": 8443}}"#;
    let text = String::from_utf8_lossy(
        &palisade(&["explain", "--bundle", "examples/shop", "--request", "-"], Some(ok)).stdout,
    )
    .to_string();
    assert!(text.contains("2|default|np:payments/payments-api|allow|0"), "{text}");
}

#[test]
fn exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: '(('}\n",
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    let out = palisade(&["decide", "--bundle", bad, "--request", "-"], Some("{}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("spec.selector"));

    let cfg = dir.path().join("cfg.yaml");
    std::fs::write(&cfg, "no_policy_action: sometimes\n").unwrap();
    let out = palisade(
        &["decide", "--bundle", "examples/shop", "--config", cfg.to_str().unwrap(), "--request", "-"],
        Some("{}"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());

    for args in [
        &["frobnicate"][..],
        &["decide", "--bundle"],
        &["decide", "--bundle", "examples/shop"],
        &["lint"],
        &["decide", "--bundle", "x", "--wat"],
    ] {
        assert_eq!(palisade(args, None).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn config_changes_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.yaml");
    std::fs::write(&cfg, "require_peer_identity: true\n").unwrap();
    let req = r#"{"source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#;
    let out = palisade(
        &["decide", "--bundle", "examples/shop", "--config", cfg.to_str().unwrap(), "--request", "-"],
        Some(req),
    );
    assert_eq!(lines(&out)[0]["reason"], "missing_peer_identity");
}

#[test]
fn lint_reports_warnings_and_errors() {
    let out = palisade(&["lint", "--bundle", "examples/shop"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 errors"));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.yaml");
    std::fs::write(
        &f,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: n, labels: {app: a}}\nstatus: {podIP: 10.0.0.1}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  selector: app == 'nothing'\n  ingress: [{action: Deny}, {action: Allow}]\n",
    )
    .unwrap();
    let out = palisade(&["lint", "--bundle", f.to_str().unwrap()], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("selects no endpoint"), "{text}");
    assert!(text.contains("spec.ingress[1]: unreachable"), "{text}");
    std::fs::write(&f, "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: h}\n").unwrap();
    let out = palisade(&["lint", "--bundle", f.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("error: "), "errors go to stdout");
}

#[test]
fn mesh_example_layers_three_kinds_of_policy() {
    let out = palisade(&["decide", "--bundle", "examples/mesh", "--requests", "examples/mesh/requests.jsonl"], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<(String, String, String)> = lines(&out)
        .iter()
        .map(|d| {
            (
                d["action"].as_str().unwrap().into(),
                d["reason"].as_str().unwrap().into(),
                d["policy"].as_str().unwrap_or("-").into(),
            )
        })
        .collect();
    let e = |a: &str, r: &str, p: &str| (a.to_string(), r.to_string(), p.to_string());
    assert_eq!(
        got,
        vec![
            e("allow", "rule", "knp:payments/pay-ingress"),
            e("deny", "end_of_tier", "iap:payments/pay-allow"),
            e("deny", "rule", "iap:istio-system/no-plaintext-payments"),
            e("deny", "end_of_tier", "knp:payments/pay-ingress"),
            e("allow", "rule", "gnp:health-checks"),
        ]
    );
}
