//! `examples/cluster/`: a whole mesh cluster as `kubectl get -A -o yaml` prints it loads as
//! dumped, and each line of its `requests.jsonl` decides as `examples/cluster/README.md`'s
//! table says (action, reason, side, tier, policy, rule, peer, staged verdict).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use serde_json::Value;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade")).args(args).current_dir(root()).output().unwrap()
}

/// One row of the README table.
struct Row {
    action: &'static str,
    reason: &'static str,
    side: Option<&'static str>,
    tier: Option<&'static str>,
    policy: Option<&'static str>,
    rule: Option<i64>,
    peer: Option<&'static str>,
    staged: Option<&'static str>,
}

/// A verdict from a rule or a tier's end.
const fn by(
    action: &'static str,
    reason: &'static str,
    side: &'static str,
    tier: &'static str,
    policy: &'static str,
    rule: i64,
    staged: Option<&'static str>,
) -> Row {
    Row {
        action,
        reason,
        side: Some(side),
        tier: Some(tier),
        policy: Some(policy),
        rule: Some(rule),
        peer: None,
        staged,
    }
}

/// A verdict before any policy (identity reasons).
const fn pre(reason: &'static str, peer: &'static str) -> Row {
    Row { action: "deny", reason, side: None, tier: None, policy: None, rule: None, peer: Some(peer), staged: None }
}

const CART: &str = "np:shop/default.cart-api";
const CART_ALLOW: &str = "iap:shop/cart-allow";
const PAY_KNP: &str = "knp:payments/payments-ingress";
const PAY_ALLOW: &str = "iap:payments/payments-allow";
const DEBUG_DENY: &str = "iap:istio-system/deny-debug-endpoints";

fn table() -> Vec<Row> {
    vec![
        // 1. frontend -> cart over mTLS: Istio ALLOW passes, the Calico policy allows.
        by("allow", "rule", "ingress", "default", CART, 0, Some("allow")),
        // 2. frontend's IP, no certificate: mesh-wide STRICT.
        pre("missing_peer_identity", "source"),
        // 3. an outside IP, no certificate: STRICT applies to every source.
        pre("missing_peer_identity", "source"),
        // 4. node-2 (a HostEndpoint) -> cart's PERMISSIVE probe port, plaintext.
        by("allow", "rule", "ingress", "platform", "gnp:platform.allow-kubelet-probes", 0, Some("allow")),
        // 5. a machine with no HostEndpoint -> the same port: the probe rule does not match.
        by("deny", "end_of_tier", "ingress", "istio-allow", CART_ALLOW, -1, Some("deny")),
        // 6. a threat-feed IP -> the PERMISSIVE port: the security tier denies (after a Log).
        by("deny", "rule", "ingress", "security", "gnp:security.block-threat-intel", 1, Some("deny")),
        // 7. frontend's pod presenting cart's certificate.
        pre("identity_mismatch", "source"),
        // 8. cart -> payments POST /v1/charges: Istio ALLOW, then the Kubernetes policy.
        by("allow", "rule", "ingress", "default", PAY_KNP, 0, None),
        // 9. frontend -> payments: no Istio ALLOW rule for frontend.
        by("deny", "end_of_tier", "ingress", "istio-allow", PAY_ALLOW, -1, None),
        // 10. cart -> payments without HTTP: the mesh-wide DENY drops its paths and matches.
        by("deny", "rule", "ingress", "istio-deny", DEBUG_DENY, 0, None),
        // 11. frontend DELETE on cart: allowed; the dry-run DENY shows only in `staged`.
        by("allow", "rule", "ingress", "default", CART, 0, Some("deny")),
        // 12. frontend GET /debug/pprof on cart: the mesh-wide DENY.
        by("deny", "rule", "ingress", "istio-deny", DEBUG_DENY, 0, Some("deny")),
        // 13. the quarantined reports pod, with its own certificate: denied on its egress side.
        by("deny", "rule", "egress", "security", "gnp:security.block-quarantine", 0, None),
        // 14. Prometheus -> payments metrics over mTLS: the Kubernetes policy's second rule.
        by("allow", "rule", "ingress", "default", PAY_KNP, 1, None),
    ]
}

#[test]
fn cluster_example_decides_as_its_readme_says() {
    let out = palisade(&["decide", "--bundle", "examples/cluster", "--requests", "examples/cluster/requests.jsonl"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "no request of the example is invalid: {stderr}");
    let decisions: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let table = table();
    assert_eq!(decisions.len(), table.len(), "one decision per request line");
    let opt = |v: Option<&str>| v.map_or(Value::Null, Value::from);
    for (i, (d, row)) in decisions.iter().zip(&table).enumerate() {
        let line = i + 1;
        assert_eq!(d["action"], row.action, "line {line}: {d}");
        assert_eq!(d["reason"], row.reason, "line {line}: {d}");
        assert_eq!(d["side"], opt(row.side), "line {line}: {d}");
        assert_eq!(d["tier"], opt(row.tier), "line {line}: {d}");
        assert_eq!(d["policy"], opt(row.policy), "line {line}: {d}");
        assert_eq!(d["rule"], row.rule.map_or(Value::Null, Value::from), "line {line}: {d}");
        assert_eq!(d["peer"], opt(row.peer), "line {line}: {d}");
        assert_eq!(d["staged"]["action"], opt(row.staged), "line {line}: {d}");
        assert_eq!(d["l7_pending"], false, "line {line}: {d}");
    }
}

#[test]
fn cluster_example_traces_show_the_layers() {
    let out = palisade(&["decide", "--bundle", "examples/cluster", "--requests", "examples/cluster/requests.jsonl"]);
    let decisions: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let trace = |i: usize, side: &str| -> Vec<String> {
        decisions[i]["trace"][side].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).collect()
    };
    // Line 1: the whole walk on the ingress side, Calico tiers first, then the mesh, then default.
    assert_eq!(
        trace(0, "ingress"),
        [
            "0|security|gnp:security.block-quarantine|pass|-1",
            "1|platform|gnp:platform.allow-kubelet-probes|pass|-1",
            "2|istio-deny|iap:istio-system/deny-debug-endpoints|pass|-1",
            "3|istio-allow|iap:shop/cart-allow|pass|0",
            "4|default|np:shop/default.cart-api|allow|0",
        ]
    );
    // Line 4: the node is no workload, so only the destination's ingress side is walked.
    assert!(decisions[3]["trace"].get("egress").is_none(), "{}", decisions[3]);
    // Line 6: a Log hit, then the Deny.
    assert_eq!(
        trace(5, "ingress"),
        ["0|security|gnp:security.block-threat-intel|log|0", "1|security|gnp:security.block-threat-intel|deny|1"]
    );
    // Pre-policy verdicts have no walk.
    for i in [1, 2, 6] {
        assert_eq!(decisions[i]["trace"], serde_json::json!({}), "line {}", i + 1);
    }
    // The host-only (doNotTrack) policy never appears in a workload's walk.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("untracked-bgp"));
}

#[test]
fn cluster_example_lints_clean() {
    let out = palisade(&["lint", "--bundle", "examples/cluster"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("0 errors"), "{stdout}");
}
