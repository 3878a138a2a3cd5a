//! The two-identity binding (SPEC 5): a certificate is bound to the IP that presents it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use serde_json::Value;

fn bundle() -> String {
    [
        pod("shop", "frontend", "10.1.0.5", "frontend", "app: frontend"),
        pod("payments", "api", "10.2.0.7", "payments", "app: api"),
    ]
    .concat()
        + "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: api, namespace: payments}\nspec:\n  ingress:\n  - action: Allow\n    source: {namespaceSelector: all(), serviceAccounts: {names: [frontend]}}\n"
}

fn req(src_ip: &str, src_principal: Option<&str>, dst_principal: Option<&str>) -> String {
    let p = |x: Option<&str>| x.map(|x| format!(r#", "principal": "{x}""#)).unwrap_or_default();
    format!(
        r#"{{"source": {{"ip": "{src_ip}"{}}}, "destination": {{"ip": "10.2.0.7", "port": 443{}}}}}"#,
        p(src_principal),
        p(dst_principal)
    )
}

fn outcome(d: &Value) -> (String, String, String) {
    (
        d["action"].as_str().unwrap().into(),
        d["reason"].as_str().unwrap().into(),
        d["peer"].as_str().unwrap_or("null").into(),
    )
}

fn o(a: &str, r: &str, p: &str) -> (String, String, String) {
    (a.into(), r.into(), p.into())
}

#[test]
fn own_identity_from_own_ip_reaches_policy() {
    let e = engine(&bundle());
    let d = decide(&e, &req("10.1.0.5", Some("spiffe://cluster.local/ns/shop/sa/frontend"), None));
    assert_eq!(outcome(&d), o("allow", "rule", "null"));
}

#[test]
fn stolen_certificate_from_another_pod_ip_is_denied() {
    let e = engine(&bundle());
    let d = decide(&e, &req("10.1.0.5", Some("spiffe://cluster.local/ns/payments/sa/payments"), None));
    assert_eq!(outcome(&d), o("deny", "identity_mismatch", "source"));
    assert_eq!(d["side"], Value::Null);
    assert_eq!(d["trace"], serde_json::json!({}));
}

#[test]
fn in_cluster_identity_from_outside_is_denied() {
    let e = engine(&bundle());
    let d = decide(&e, &req("192.0.2.50", Some("spiffe://cluster.local/ns/shop/sa/frontend"), None));
    assert_eq!(outcome(&d), o("deny", "identity_mismatch", "source"));
    // A trust-domain-only ID is valid but no workload's identity.
    let d = decide(&e, &req("10.1.0.5", Some("spiffe://cluster.local"), None));
    assert_eq!(outcome(&d), o("deny", "identity_mismatch", "source"));
    let d = decide(&e, &req("192.0.2.50", Some("spiffe://cluster.local"), None));
    assert_eq!(outcome(&d), o("deny", "identity_mismatch", "source"));
}

#[test]
fn external_identity_is_not_bound_and_matches_no_service_account() {
    let e = engine(&bundle());
    let d = decide(&e, &req("192.0.2.50", Some("spiffe://partner.example/ns/shop/sa/frontend"), None));
    assert_eq!(outcome(&d), o("deny", "end_of_tier", "null"), "serviceAccounts never match an external identity");
}

#[test]
fn destination_principal_is_bound_too() {
    let e = engine(&bundle());
    let src = Some("spiffe://cluster.local/ns/shop/sa/frontend");
    let d = decide(&e, &req("10.1.0.5", src, Some("spiffe://cluster.local/ns/payments/sa/payments")));
    assert_eq!(outcome(&d), o("allow", "rule", "null"));
    let d = decide(&e, &req("10.1.0.5", src, Some("spiffe://cluster.local/ns/shop/sa/frontend")));
    assert_eq!(outcome(&d), o("deny", "identity_mismatch", "destination"));
    // The source is checked first.
    let d = decide(
        &e,
        &req("10.1.0.5", Some("spiffe://cluster.local/ns/x/sa/y"), Some("spiffe://cluster.local/ns/x/sa/y")),
    );
    assert_eq!(outcome(&d), o("deny", "identity_mismatch", "source"));
}

#[test]
fn malformed_principal_is_an_invalid_request() {
    let e = engine(&bundle());
    for p in [
        "spiffe://cluster.local/ns/shop/sa/frontend/",
        "SPIFFE://cluster.local/ns/shop/sa/frontend",
        "frontend",
        "spiffe://cluster.local/ns/a%2fb/sa/x",
    ] {
        let d = decide(&e, &req("10.1.0.5", Some(p), None));
        assert_eq!(outcome(&d), o("deny", "invalid_request", "null"), "{p}");
    }
    // Validation comes before identity.
    let bad = r#"{"source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/payments/sa/payments"}, "destination": {"ip": "10.2.0.7", "port": 443}, "http": {"method": "GET", "path": "nope"}}"#;
    assert_eq!(outcome(&decide(&e, bad)), o("deny", "invalid_request", "null"));
}

#[test]
fn require_peer_identity_denies_plaintext_from_known_workloads() {
    let cfg = palisade::Config::from_yaml("require_peer_identity: true").unwrap();
    let e = engine_with(&bundle(), cfg);
    let d = decide(&e, &req("10.1.0.5", None, None));
    assert_eq!(outcome(&d), o("deny", "missing_peer_identity", "source"));
    // Unknown sources and egress-only evaluation are not affected.
    assert_eq!(decide(&e, &req("192.0.2.50", None, None))["reason"], "end_of_tier");
    let egress =
        r#"{"direction": "egress", "source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.2.0.7", "port": 443}}"#;
    assert_eq!(decide(&e, egress)["reason"], "no_policy");
}

#[test]
fn trust_domain_is_configuration() {
    let cfg = palisade::Config::from_yaml("trust_domain: prod.example").unwrap();
    let e = engine_with(&bundle(), cfg);
    let d = decide(&e, &req("10.1.0.5", Some("spiffe://prod.example/ns/shop/sa/frontend"), None));
    assert_eq!(outcome(&d), o("allow", "rule", "null"));
    let d = decide(&e, &req("10.1.0.5", Some("spiffe://cluster.local/ns/shop/sa/frontend"), None));
    assert_eq!(outcome(&d), o("deny", "identity_mismatch", "source"));
}

#[test]
fn no_bundle_denies_everything() {
    let e = palisade::Engine::new(palisade::Config::default());
    let owned = palisade::OwnedRequest::from_json(&req("10.1.0.5", None, None)).unwrap();
    let d = e.decide(&owned.as_request());
    assert_eq!((d.action, d.reason, d.generation), (palisade::Action::Deny, palisade::Reason::NoBundle, 0));
    assert_eq!(e.explain(&owned.as_request()).json()["reason"], "no_bundle");
}
