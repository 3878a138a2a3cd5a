//! `examples/cluster/`: a whole mesh cluster as `kubectl get -A -o yaml` prints it loads as
//! dumped, and each line of its `requests.jsonl` decides as `examples/cluster/README.md`'s
//! table says (action, reason, side, tier, policy, rule, peer, staged verdict): Calico, Istio and
//! Kubernetes policy, a Calico `services` rule resolved through the dump's EndpointSlices, a
//! ClusterNetworkPolicy pair (admin and baseline) and the sidecar model (CoreDNS runs none).
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

/// Every tier passed or none applied on the deciding side: the namespace profile allows.
const fn profile() -> Row {
    Row {
        action: "allow",
        reason: "no_policy",
        side: Some("ingress"),
        tier: None,
        policy: None,
        rule: None,
        peer: None,
        staged: None,
    }
}

const CART: &str = "np:shop/default.cart-api";
const CART_ALLOW: &str = "iap:shop/cart-allow";
const PAY_KNP: &str = "knp:payments/payments-ingress";
const PAY_ALLOW: &str = "iap:payments/payments-allow";
const DEBUG_DENY: &str = "iap:istio-system/deny-debug-endpoints";
const CART_EGRESS: &str = "np:shop/default.cart-egress";

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
        // 15. cart -> payments on the Service's port 443: the `services` rule matches the
        //     EndpointSlice's target port (8443), so cart's egress policy denies at its end.
        by("deny", "end_of_tier", "egress", "default", CART_EGRESS, -1, None),
        // 16. cart -> Prometheus: not a member of the payments service.
        by("deny", "end_of_tier", "egress", "default", CART_EGRESS, -1, None),
        // 17. the sandbox toolbox, its own certificate -> frontend: the admin tier denies.
        by("deny", "rule", "ingress", "kube-admin", "cnp:sandbox-isolation", 0, None),
        // 18. frontend -> Prometheus: nothing else decides for monitoring; the baseline denies.
        by("deny", "rule", "ingress", "kube-baseline", "cnp:monitoring-default-deny", 0, None),
        // 19. frontend -> CoreDNS, UDP 53: no Istio layer for UDP nor for a pod without a sidecar.
        profile(),
        // 20. frontend -> CoreDNS, TCP 53, no certificate: CoreDNS runs no sidecar, so no STRICT.
        profile(),
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
    // Line 1: the whole walk on the ingress side, Calico tiers first, then the admin tier (its
    // subject is every `team` namespace), then the mesh, then default.
    assert_eq!(
        trace(0, "ingress"),
        [
            "0|security|gnp:security.block-quarantine|pass|-1",
            "1|platform|gnp:platform.allow-kubelet-probes|pass|-1",
            "2|kube-admin|cnp:sandbox-isolation|pass|-1",
            "3|istio-deny|iap:istio-system/deny-debug-endpoints|pass|-1",
            "4|istio-allow|iap:shop/cart-allow|pass|0",
            "5|default|np:shop/default.cart-api|allow|0",
        ]
    );
    // Line 8: cart's egress is allowed by the `services` rule (payments' slice, port 8443).
    assert_eq!(
        trace(7, "egress"),
        [
            "0|security|gnp:security.block-quarantine|pass|-1",
            "1|platform|gnp:platform.allow-dns|pass|-1",
            "2|default|np:shop/default.cart-egress|allow|0",
        ]
    );
    // Lines 15 and 16: denied on the source's side, so the destination's is never walked.
    for i in [14, 15] {
        assert!(decisions[i]["trace"].get("ingress").is_none(), "line {}: {}", i + 1, decisions[i]);
    }
    // Line 18: the baseline tier comes after the mesh and after default (where no policy
    // selects Prometheus, so that tier is absent from the walk).
    assert_eq!(
        trace(17, "ingress"),
        [
            "0|security|gnp:security.block-quarantine|pass|-1",
            "1|platform|gnp:platform.allow-kubelet-probes|pass|-1",
            "2|kube-admin|cnp:sandbox-isolation|pass|-1",
            "3|istio-deny|iap:istio-system/deny-debug-endpoints|pass|-1",
            "4|kube-baseline|cnp:monitoring-default-deny|deny|0",
        ]
    );
    // Lines 19 and 20: DNS to CoreDNS. The platform tier's UDP rule (0) and TCP rule (1) allow
    // the egress; CoreDNS has no sidecar, so no Istio tier is in its walk, UDP or TCP.
    for (i, rule) in [(18, 0), (19, 1)] {
        assert_eq!(trace(i, "egress").last().unwrap(), &format!("1|platform|gnp:platform.allow-dns|allow|{rule}"));
        assert_eq!(
            trace(i, "ingress"),
            [
                "0|security|gnp:security.block-quarantine|pass|-1",
                "1|platform|gnp:platform.allow-kubelet-probes|pass|-1",
                "2|__PROFILE__|pro:kns.kube-system|allow|0",
            ]
        );
    }
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
    assert!(stdout.contains("0 errors, 0 warnings"), "{stdout}");
    // Every Pod with an IP is an endpoint: the sandbox's toolbox included.
    assert!(stdout.contains("8 endpoints"), "{stdout}");
}
