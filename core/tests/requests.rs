//! Requests that could slip past the engine (issue 14, SPEC 9.1 "Shapes" and 9.3): encoded
//! separators in paths, requests read by position, duplicate keys, mixed address families
//! and principals written as Istio policies write them. Every decision here is made by the
//! compiled engine and by the reference evaluator (`common::decide` checks they agree).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use palisade::{Address, OwnedRequest, Request};
use serde_json::{Value, json};

/// foo/b (10.0.0.2, the server) and foo/a (10.0.0.1, the client).
fn inventory() -> String {
    [pod("foo", "b", "10.0.0.2", "b", "app: b"), pod("foo", "a", "10.0.0.1", "a", "app: a")].concat()
}

/// An Istio ALLOW on `/public/*` for foo/b.
fn istio_public() -> palisade::Engine {
    engine(&format!(
        "{}apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: public, namespace: foo}}\n\
         spec: {{selector: {{matchLabels: {{app: b}}}}, action: ALLOW, rules: [{{to: [{{operation: {{paths: ['/public/*']}}}}]}}]}}\n---\n",
        inventory()
    ))
}

/// A Calico NetworkPolicy allowing `/public` (prefix) into foo/b, default deny.
fn calico_public() -> palisade::Engine {
    engine(&format!(
        "{}apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: public, namespace: foo}}\n\
         spec: {{selector: app == 'b', types: [Ingress], ingress: [{{action: Allow, http: {{paths: [{{prefix: /public}}]}}}}]}}\n---\n",
        inventory()
    ))
}

/// A Kubernetes NetworkPolicy admitting every pod (no HTTP criteria at all).
fn k8s_open() -> palisade::Engine {
    engine(&format!(
        "{}apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: open, namespace: foo}}\n\
         spec: {{podSelector: {{}}, ingress: [{{}}]}}\n---\n",
        inventory()
    ))
}

fn get(path: &str) -> String {
    json!({
        "direction": "ingress",
        "source": {"ip": "10.0.0.1", "principal": "spiffe://cluster.local/ns/foo/sa/a"},
        "destination": {"ip": "10.0.0.2", "port": 8080},
        "http": {"method": "GET", "path": path},
    })
    .to_string()
}

fn verdict(d: &Value) -> (String, String) {
    (d["action"].as_str().unwrap().to_string(), d["reason"].as_str().unwrap().to_string())
}

fn invalid() -> (String, String) {
    ("deny".into(), "invalid_request".into())
}

const ENCODED_SEPARATORS: [&str; 8] = [
    "/admin%2F..%2Fpublic/x",
    "/admin%5C..%5Cpublic/x",
    "/admin%2f..%2fpublic/x",
    "/admin%5c..%5cpublic/x",
    "/public%2Fx",
    "/public/x%5C",
    "/%2F",
    "/public/%2F/../x",
];

#[test]
fn encoded_separators_are_invalid_for_every_policy_kind() {
    for (kind, e) in [("istio", istio_public()), ("calico", calico_public()), ("k8s", k8s_open())] {
        // The control: the plain path is allowed by each (Istio's ALLOW passes to the
        // profile default, `no_policy`), and a path outside /public is not, but for k8s.
        assert_eq!(verdict(&decide(&e, &get("/public/x"))).0, "allow", "{kind}");
        assert_eq!(verdict(&decide(&e, &get("/admin/x"))).0, if kind == "k8s" { "allow" } else { "deny" }, "{kind}");
        for p in ENCODED_SEPARATORS {
            let d = decide(&e, &get(p));
            assert_eq!(verdict(&d), invalid(), "{kind} {p}");
            let why = e.explain(&OwnedRequest::from_json(&get(p)).unwrap().as_request()).decision.detail;
            assert!(why.unwrap().contains("%2F or %5C"), "{kind} {p}: {why:?}");
        }
        // Encoded separators in the query or fragment are not in the path.
        assert_eq!(verdict(&decide(&e, &get("/public/x?next=%2Fadmin#%5C"))).0, "allow", "{kind}");
    }
}

#[test]
fn the_issue_reproduction_is_denied() {
    // Istio ALLOW on /public/*: the backend receives the raw path, so these were wrong allows.
    let e = istio_public();
    for p in ["/admin%2F..%2Fpublic/x", "/admin%5C..%5Cpublic/x"] {
        assert_eq!(verdict(&decide(&e, &get(p))), invalid(), "{p}");
    }
    assert_eq!(verdict(&decide(&e, &get("/admin/../public/x"))).0, "allow", "plain dot segments still resolve");
}

#[test]
fn duplicate_header_cannot_escape_a_deny() {
    let e = engine(&format!(
        "{}apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: no-evil, namespace: foo}}\n\
         spec: {{action: DENY, rules: [{{when: [{{key: 'request.headers[x-evil]', values: ['1']}}]}}]}}\n---\n",
        inventory()
    ));
    let with = |headers: &str| {
        format!(
            r#"{{"source": {{"ip": "10.0.0.1"}}, "destination": {{"ip": "10.0.0.2", "port": 80}}, "http": {{"method": "GET", "path": "/", "headers": {headers}}}}}"#
        )
    };
    // The rule itself works.
    assert_eq!(verdict(&decide(&e, &with(r#"{"x-evil": "1"}"#))), ("deny".into(), "rule".into()));
    assert_eq!(verdict(&decide(&e, &with(r#"{"x-evil": "2"}"#))).0, "allow");
    // Two values for one header: refused, whatever the order and the case.
    for h in [
        r#"{"x-evil": "1", "x-evil": "2"}"#,
        r#"{"x-evil": "2", "x-evil": "1"}"#,
        r#"{"X-Evil": "2", "x-evil": "1"}"#,
        r#"{"x-evil": "1", "X-EVIL": "2"}"#,
    ] {
        let err = OwnedRequest::from_json(&with(h)).unwrap_err();
        assert!(err.field.starts_with("http.headers"), "{h}: {err}");
        assert!(err.message.contains("twice") || err.message.starts_with("duplicate key"), "{h}: {err}");
    }
}

#[test]
fn duplicate_keys_are_errors_at_every_depth() {
    let base = r#""source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}"#;
    for (text, field) in [
        (format!(r#"{{{base}, "sni": "a", "sni": "b"}}"#), "sni"),
        (
            r#"{"source": {"ip": "10.0.0.1", "ip": "10.0.0.9"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#
                .to_string(),
            "source.ip",
        ),
        (format!(r#"{{{base}, "http": {{"method": "GET", "method": "POST", "path": "/"}}}}"#), "http.method"),
        (format!(r#"{{{base}, "auth": {{"claims": {{"role": "user", "role": "admin"}}}}}}"#), "auth.claims.role"),
        (
            format!(r#"{{{base}, "auth": {{"claims": {{"org": {{"groups": [{{"id": 1, "id": 2}}]}}}}}}}}"#),
            "auth.claims.org.groups[0].id",
        ),
        (format!(r#"{{{base}, "auth": {{"principal": "x", "principal": "y"}}}}"#), "auth.principal"),
    ] {
        let err = OwnedRequest::from_json(&text).unwrap_err();
        assert_eq!(err.field, field, "{text}: {err}");
        assert!(err.message.starts_with("duplicate key"), "{text}: {err}");
    }
    // The same key in different objects is not a duplicate.
    let ok = format!(r#"{{{base}, "auth": {{"claims": {{"a": {{"id": 1}}, "b": {{"id": 1}}}}}}}}"#);
    assert!(OwnedRequest::from_json(&ok).is_ok());
}

#[test]
fn requests_are_never_read_by_position() {
    let by_position = [
        r#"["both", "TCP", ["10.1.0.5", null, "spiffe://cluster.local/ns/foo/sa/a"], ["10.0.0.2", 8443]]"#,
        r#"{"source": ["10.0.0.1"], "destination": {"ip": "10.0.0.2", "port": 80}}"#,
        r#"{"source": {"ip": "10.0.0.1"}, "destination": ["10.0.0.2", 80]}"#,
        r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}, "http": ["GET", "/"]}"#,
        r#"{"protocol": "ICMP", "source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2"}, "icmp": [8, 0]}"#,
        r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}, "auth": ["x", ["aud"]]}"#,
    ];
    for text in by_position {
        let err = OwnedRequest::from_json(text).unwrap_err();
        assert!(err.message.starts_with("expected an object, found an array"), "{text}: {err}");
        // From a value too (what the Python and Node bindings hand in).
        let err = OwnedRequest::from_value(serde_json::from_str(text).unwrap()).unwrap_err();
        assert!(err.message.starts_with("expected an object, found an array"), "{text}: {err}");
    }
    // Arrays where arrays belong still read.
    let ok = r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}, "auth": {"audiences": ["a", "b"]}}"#;
    assert_eq!(OwnedRequest::from_json(ok).unwrap().auth.unwrap().audiences, ["a", "b"]);
}

#[test]
fn messages_name_no_rust_types() {
    let base = r#""source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}"#;
    for text in [
        r#"["both"]"#.to_string(),
        r#"{"source": "10.0.0.1", "destination": {"ip": "10.0.0.2", "port": 80}}"#.to_string(),
        format!(r#"{{"protocol": 1, {base}, "icmp": {{"type": 300}}}}"#),
        format!(r#"{{{base}, "http": {{"method": "GET", "path": "/", "headers": ["a"]}}}}"#),
        format!(r#"{{{base}, "auth": {{"audiences": "a"}}}}"#),
        format!(r#"{{{base}, "http": {{"method": "GET", "path": "/", "headers": {{"a": null}}}}}}"#),
        format!(r#"{{{base}, "sni": {{}}}}"#),
    ] {
        let msg = OwnedRequest::from_json(&text).unwrap_err().to_string();
        for internal in ["struct", "Json", "u8", "u16", "Option<", "sequence", " map", "borrowed"] {
            assert!(!msg.contains(internal), "{text}: {msg:?} mentions {internal:?}");
        }
    }
}

#[test]
fn mixed_address_families_are_invalid() {
    let e = k8s_open();
    for (src, dst) in [
        ("10.0.0.1", "2001:db8::2"),
        ("2001:db8::1", "10.0.0.2"),
        ("::ffff:10.0.0.1", "2001:db8::2"),
        ("fd00::1", "203.0.113.9"),
    ] {
        let d = decide(&e, &tcp(src, dst, 80));
        assert_eq!(verdict(&d), invalid(), "{src} -> {dst}");
        let why = e.explain(&OwnedRequest::from_json(&tcp(src, dst, 80)).unwrap().as_request()).decision.detail;
        assert!(why.unwrap().contains("different families"), "{why:?}");
    }
    // An IPv4-mapped IPv6 address is IPv4.
    assert_eq!(verdict(&decide(&e, &tcp("::ffff:10.0.0.1", "10.0.0.2", 80))).0, "allow");
    // A typed request built without the JSON parser (the C API, the Envoy filter): the
    // mapped form is not yet folded, and both evaluators still agree.
    let snap = e.snapshot().unwrap();
    let mapped: std::net::IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    for dst in ["10.0.0.2", "2001:db8::2"] {
        let req = Request::tcp(Address::new(mapped), Address { port: Some(80), ..Address::new(dst.parse().unwrap()) });
        assert_eq!(snap.decide(&req), snap.decide_reference(&req), "{dst}");
    }
}

#[test]
fn istio_style_principal_names_the_spiffe_form() {
    let e = istio_public();
    for (end, text) in [
        (
            "source",
            r#"{"source": {"ip": "10.0.0.1", "principal": "cluster.local/ns/foo/sa/a"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
        ),
        (
            "destination",
            r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80, "principal": "cluster.local/ns/foo/sa/b"}}"#,
        ),
    ] {
        assert_eq!(verdict(&decide(&e, text)), invalid(), "{text}");
        let why = e.explain(&OwnedRequest::from_json(text).unwrap().as_request()).decision.detail.unwrap();
        assert!(why.starts_with(&format!("{end}.principal lacks the spiffe:// scheme")), "{why}");
        assert!(why.contains("spiffe://<trust domain>/ns/<namespace>/sa/<service account>"), "{why}");
    }
    // Any other malformed principal says which end and what a SPIFFE ID is.
    let text = r#"{"source": {"ip": "10.0.0.1", "principal": "spiffe://cluster.local/ns/foo/sa/a/"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#;
    let why = e.explain(&OwnedRequest::from_json(text).unwrap().as_request()).decision.detail.unwrap();
    assert!(why.starts_with("source.principal is not a valid SPIFFE ID"), "{why}");
}

#[test]
fn parse_json_refuses_duplicates_for_the_bindings() {
    assert!(palisade::request::parse_json(r#"{"a": [1, 1], "b": {"a": 1}}"#).is_ok());
    let e = palisade::request::parse_json(r#"{"b": {"a": 1, "a": 1}}"#).unwrap_err();
    assert_eq!((e.field.as_str(), e.message.starts_with("duplicate key \"a\"")), ("b.a", true), "{e}");
    assert!(palisade::request::parse_json(r#"{"a": 1} x"#).is_err(), "trailing text");
}
