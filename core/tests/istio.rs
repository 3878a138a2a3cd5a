//! Istio AuthorizationPolicy conformance: cases 1-25 of the reference (Istio integration and
//! builder tests), the `when` keys, and how Istio's layer combines with Calico and
//! Kubernetes policy in one tier walk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use serde_json::{Value, json};

/// Workloads: foo/b (the server, 10.0.0.2), foo/a and foo/c (clients), ns1/d, ns2/e.
fn inventory() -> String {
    [
        pod("foo", "b", "10.0.0.2", "b", "app: b"),
        pod("foo", "a", "10.0.0.1", "a", "app: a"),
        pod("foo", "c", "10.0.0.3", "c", "app: c"),
        pod("ns1", "d", "10.0.1.1", "d", "app: d"),
        pod("ns2", "e", "10.0.2.1", "e", "app: e"),
    ]
    .concat()
}

fn ap(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}\n---\n"
    )
}

fn mesh(policies: &str) -> palisade::Engine {
    engine(&format!("{}{policies}", inventory()))
}

const A: &str = "spiffe://cluster.local/ns/foo/sa/a";
const B: &str = "spiffe://cluster.local/ns/foo/sa/c";

/// A request to foo/b (10.0.0.2) from `src` with extra JSON fields merged in.
fn to_b(src: &str, principal: Option<&str>, port: u16, http: Option<Value>, extra: Value) -> String {
    let mut source = json!({"ip": src});
    if let Some(p) = principal {
        source["principal"] = p.into();
    }
    let mut r = json!({"direction": "ingress", "source": source, "destination": {"ip": "10.0.0.2", "port": port}});
    if let Some(h) = http {
        r["http"] = h;
    }
    if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    r.to_string()
}

fn get(path: &str) -> Option<Value> {
    Some(json!({"method": "GET", "path": path}))
}

fn allowed(e: &palisade::Engine, req: &str) -> bool {
    decide(e, req)["action"] == "allow"
}

fn a_get(e: &palisade::Engine, path: &str) -> bool {
    allowed(e, &to_b("10.0.0.1", Some(A), 8080, get(path), json!({})))
}

#[test]
fn case01_no_policy_allows() {
    let e = mesh("");
    assert!(a_get(&e, "/anything"));
}

#[test]
fn case02_allow_with_no_rules_denies_everything() {
    let e = mesh(&ap("foo", "p", "  {}"));
    let d = decide(&e, &to_b("10.0.0.1", Some(A), 8080, get("/"), json!({})));
    assert_eq!(
        (d["action"].as_str(), d["reason"].as_str(), d["tier"].as_str()),
        (Some("deny"), Some("end_of_tier"), Some("istio-allow"))
    );
}

#[test]
fn case03_allow_empty_rule_allows() {
    let e = mesh(&ap("foo", "p", "  rules: [{}]"));
    assert!(a_get(&e, "/x"));
    assert!(allowed(&e, &to_b("10.0.0.1", None, 8080, None, json!({}))));
}

#[test]
fn case04_deny_empty_rule_denies() {
    let e = mesh(&ap("foo", "p", "  action: DENY\n  rules: [{}]"));
    let d = decide(&e, &to_b("10.0.0.1", Some(A), 8080, get("/"), json!({})));
    assert_eq!(
        (d["action"].as_str(), d["policy"].as_str(), d["tier"].as_str()),
        (Some("deny"), Some("iap:foo/p"), Some("istio-deny"))
    );
}

fn case5() -> palisade::Engine {
    mesh(&format!(
        "{}{}",
        ap("foo", "deny-admin", "  action: DENY\n  rules: [{to: [{operation: {paths: [/allow/admin]}}]}]"),
        ap("foo", "allow-prefix", "  rules: [{to: [{operation: {paths: ['/allow*']}}]}]")
    ))
}

#[test]
fn case05_deny_takes_precedence_over_allow() {
    let e = case5();
    assert!(!a_get(&e, "/allow/admin"));
    assert!(!a_get(&e, "/allow/admin?param=value"));
    assert!(a_get(&e, "/allow"));
    assert!(a_get(&e, "/allow?param=value"));
}

#[test]
fn case06_unmatched_request_under_allow_is_denied() {
    assert!(!a_get(&case5(), "/other"));
}

#[test]
fn case07_deny_by_principal_and_operation() {
    let e = mesh(&ap(
        "foo",
        "p",
        &format!(
            "  action: DENY\n  rules:\n  - from: [{{source: {{principals: ['{}']}}}}]\n    to: [{{operation: {{ports: ['8080'], paths: ['/deny*'], notPaths: [/deny/allow], methods: [GET]}}}}]",
            &B[9..]
        ),
    ));
    let from_b = |p: &str| allowed(&e, &to_b("10.0.0.3", Some(B), 8080, get(p), json!({})));
    assert!(!from_b("/deny"));
    assert!(!from_b("/deny?x"));
    assert!(from_b("/deny/allow"));
    assert!(from_b("/allow"));
    assert!(a_get(&e, "/deny"));
}

#[test]
fn case08_root_namespace_policy_applies_everywhere() {
    let e = mesh(&ap(
        "istio-system",
        "global",
        "  action: DENY\n  rules: [{to: [{operation: {ports: ['8080', '8085'], paths: ['/global-deny*'], notPaths: [/global-deny/allow]}}]}]",
    ));
    assert!(!a_get(&e, "/global-deny"));
    assert!(a_get(&e, "/global-deny/allow"));
    let to_d = json!({"direction": "ingress", "source": {"ip": "10.0.0.1", "principal": A}, "destination": {"ip": "10.0.1.1", "port": 8080}, "http": {"method": "GET", "path": "/global-deny"}});
    assert!(!allowed(&e, &to_d.to_string()), "a root-namespace policy selects workloads of every namespace");
}

#[test]
fn case09_not_methods() {
    let e = mesh(&ap("foo", "p", "  rules: [{to: [{operation: {notMethods: [PUT]}}]}]"));
    assert!(a_get(&e, "/"));
    assert!(!allowed(&e, &to_b("10.0.0.1", Some(A), 8080, Some(json!({"method": "PUT", "path": "/"})), json!({}))));
}

#[test]
fn case10_not_ports() {
    let e = mesh(&ap("foo", "p", "  rules: [{to: [{operation: {notPorts: ['8090']}}]}]"));
    assert!(allowed(&e, &to_b("10.0.0.1", Some(A), 8080, get("/"), json!({}))));
    assert!(!allowed(&e, &to_b("10.0.0.1", Some(A), 8090, get("/"), json!({}))));
}

#[test]
fn case11_not_hosts_case_insensitive() {
    let e = mesh(&ap("foo", "p", "  rules: [{to: [{operation: {notHosts: [deny.S.com]}}]}]"));
    let host = |h: &str| {
        allowed(&e, &to_b("10.0.0.1", Some(A), 8080, Some(json!({"method": "GET", "path": "/", "host": h})), json!({})))
    };
    assert!(host("allow.S.com"));
    assert!(!host("deny.S.com"));
    assert!(!host("DENY.s.COM"));
}

fn header_req(e: &palisade::Engine, v: Option<&str>) -> bool {
    let mut h = json!({"method": "GET", "path": "/request-headers"});
    if let Some(v) = v {
        h["headers"] = json!({"X-Foo": v});
    }
    allowed(e, &to_b("10.0.0.1", Some(A), 8080, Some(h), json!({})))
}

#[test]
fn case12_header_condition() {
    let e = mesh(&ap(
        "foo",
        "p",
        "  rules: [{to: [{operation: {paths: [/request-headers]}}], when: [{key: 'request.headers[x-foo]', values: [foo]}]}]",
    ));
    assert!(header_req(&e, Some("foo")));
    assert!(!header_req(&e, Some("bar")));
    assert!(!header_req(&e, None));
}

#[test]
fn case13_header_not_values() {
    let e = mesh(&ap(
        "foo",
        "p",
        "  rules: [{to: [{operation: {paths: [/request-headers]}}], when: [{key: 'request.headers[x-foo]', notValues: [bar]}]}]",
    ));
    assert!(header_req(&e, Some("foo")));
    assert!(!header_req(&e, Some("bar")));
    assert!(header_req(&e, None), "NOT(header matches) holds when the header is absent");
}

#[test]
fn case14_destination_port_condition() {
    for (cond, want) in [("values: ['8080']", true), ("values: ['1']", false), ("notValues: ['8080']", false)] {
        let e = mesh(&ap("foo", "p", &format!("  rules: [{{when: [{{key: destination.port, {cond}}}]}}]")));
        assert_eq!(a_get(&e, "/"), want, "{cond}");
    }
}

#[test]
fn case15_sni_condition() {
    for (cond, want) in [
        ("values: ['*.foo.svc.cluster.local']", true),
        ("values: [never-matched]", false),
        ("notValues: ['*.foo.svc.cluster.local']", false),
    ] {
        let e = mesh(&ap("foo", "p", &format!("  rules: [{{when: [{{key: connection.sni, {cond}}}]}}]")));
        let req = to_b("10.0.0.1", Some(A), 8080, get("/"), json!({"sni": "b.foo.svc.cluster.local"}));
        assert_eq!(allowed(&e, &req), want, "{cond}");
    }
}

#[test]
fn case16_trust_domain_condition() {
    for cond in ["values: [cluster.local]", "notValues: [bad.example.com]"] {
        let e = mesh(&ap("foo", "p", &format!("  rules: [{{when: [{{key: source.trustDomain, {cond}}}]}}]")));
        assert!(a_get(&e, "/"), "{cond}");
    }
}

#[test]
fn case17_principals() {
    let e = mesh(&ap(
        "foo",
        "p",
        &format!(
            "  rules: [{{from: [{{source: {{principals: ['{}']}}}}], to: [{{operation: {{ports: ['8080'], paths: ['/*']}}}}]}}]",
            &A[9..]
        ),
    ));
    assert!(a_get(&e, "/x"));
    assert!(!allowed(&e, &to_b("10.0.0.3", Some(B), 8080, get("/x"), json!({}))));
}

#[test]
fn case18_not_namespaces() {
    let e = mesh(&ap("foo", "p", "  action: DENY\n  rules: [{from: [{source: {notNamespaces: [ns1]}}]}]"));
    let from = |ip: &str, p: &str| allowed(&e, &to_b(ip, Some(p), 8080, get("/"), json!({})));
    assert!(from("10.0.1.1", "spiffe://cluster.local/ns/ns1/sa/d"));
    assert!(!from("10.0.2.1", "spiffe://cluster.local/ns/ns2/sa/e"));
}

#[test]
fn case19_deny_plaintext() {
    let e = mesh(&ap("foo", "p", "  action: DENY\n  rules: [{from: [{source: {notPrincipals: ['*']}}]}]"));
    assert!(!allowed(&e, &to_b("10.0.0.1", None, 8080, get("/"), json!({}))));
    assert!(a_get(&e, "/"));
}

#[test]
fn case20_path_templates() {
    let e = mesh(&ap(
        "foo",
        "p",
        "  rules: [{to: [{operation: {paths: ['/allow/admin/{**}', '/foo/{*}/bar/{**}', '/store/{**}/cart']}}]}]",
    ));
    for (p, want) in [
        ("/allow/admin/", true),
        ("/allow/admin", false),
        ("/allow/admin?param=value", false),
        ("/allow/admin/foo/temp.txt", true),
        ("/foo/buzz/bar/bat", true),
        ("/foo/bar/bat.txt", false),
        ("/foo//bar/bat.txt", false),
        ("/store//cart", true),
        ("/store/cart", false),
        ("/store/foo/bar/cart", true),
    ] {
        assert_eq!(a_get(&e, p), want, "{p}");
    }
}

#[test]
fn case21_path_normalisation() {
    let e = mesh(&ap("foo", "p", "  rules: [{to: [{operation: {paths: ['/public*'], methods: [GET]}}]}]"));
    assert!(a_get(&e, "/public/../public"));
    assert!(!a_get(&e, "/public/../private"));
    assert!(!a_get(&e, "/public/%2e%2e/private"));
    assert!(!a_get(&e, "/public/%2E/%2E%2E/private"));
    // Istio does not merge slashes: `/public//../admin` is `/public/admin`.
    assert!(a_get(&e, "/public//../admin"));
}

#[test]
fn case22_workload_selector_labels() {
    let other = ap("foo", "other", "  rules: [{to: [{operation: {paths: [/other]}}]}]");
    let sel = ap(
        "foo",
        "sel",
        "  selector: {matchLabels: {app: b, foo: bla}}\n  rules: [{to: [{operation: {paths: [/p-bad]}}]}]",
    );
    let e = mesh(&format!("{other}{sel}"));
    assert!(!a_get(&e, "/p-bad"), "foo/b lacks foo=bla");
    let relabelled = inventory().replace("labels: {app: b}", "labels: {app: b, foo: bla}");
    let e = engine(&format!("{relabelled}{other}{sel}"));
    assert!(a_get(&e, "/p-bad"));
}

#[test]
fn case23_namespace_without_selector() {
    let policies = format!(
        "{}{}",
        ap("ns1", "all", "  rules: [{to: [{operation: {paths: [/policy-ns1-all]}}]}]"),
        ap("ns2", "x", "  rules: [{to: [{operation: {paths: [/x]}}]}]")
    );
    let e = mesh(&policies);
    let to = |ip: &str| {
        let r = json!({"direction": "ingress", "source": {"ip": "10.0.0.1", "principal": A}, "destination": {"ip": ip, "port": 8080}, "http": {"method": "GET", "path": "/policy-ns1-all"}});
        allowed(&e, &r.to_string())
    };
    assert!(to("10.0.1.1"));
    assert!(!to("10.0.2.1"));
}

#[test]
fn case24_tcp_allow_with_only_http_rules_denies() {
    let e = mesh(&ap(
        "foo",
        "p",
        "  rules:\n  - {from: [{source: {requestPrincipals: [id-1]}}], to: [{operation: {methods: [GET]}}]}\n  - {from: [{source: {namespaces: [ns-1]}}], to: [{operation: {hosts: [example.com]}}]}",
    ));
    assert!(!allowed(&e, &to_b("10.0.0.1", Some(A), 8080, None, json!({}))));
    assert!(!allowed(&e, &to_b("192.0.2.1", None, 8080, None, json!({}))));
}

#[test]
fn case25_tcp_deny_drops_only_http_fields() {
    let e = mesh(&ap(
        "foo",
        "p",
        "  action: DENY\n  rules: [{from: [{source: {requestPrincipals: [id-1]}}], to: [{operation: {ports: ['80']}}]}]",
    ));
    assert!(!allowed(&e, &to_b("10.0.0.1", Some(A), 80, None, json!({}))));
    assert!(allowed(&e, &to_b("10.0.0.1", Some(A), 81, None, json!({}))));
    // With HTTP, the request principal counts: no JWT, no match.
    assert!(allowed(&e, &to_b("10.0.0.1", Some(A), 80, get("/"), json!({}))));
}

#[test]
fn sources_and_auth() {
    let policy = |src: &str| mesh(&ap("foo", "p", &format!("  rules: [{{from: [{{source: {src}}}]}}]")));
    let e = policy("{serviceAccounts: [a, ns1/d]}");
    assert!(a_get(&e, "/"));
    assert!(!allowed(&e, &to_b("10.0.0.3", Some(B), 8080, get("/"), json!({}))));
    assert!(allowed(&e, &to_b("10.0.1.1", Some("spiffe://cluster.local/ns/ns1/sa/d"), 8080, get("/"), json!({}))));
    let e = policy("{ipBlocks: [10.0.0.0/31]}");
    assert!(a_get(&e, "/"));
    assert!(!allowed(&e, &to_b("10.0.0.3", Some(B), 8080, get("/"), json!({}))));
    let e = policy("{remoteIpBlocks: [203.0.113.0/24]}");
    let remote = json!({"direction": "ingress", "source": {"ip": "10.0.0.1", "principal": A, "remote_ip": "203.0.113.7"}, "destination": {"ip": "10.0.0.2", "port": 8080}});
    assert!(allowed(&e, &remote.to_string()));
    assert!(!a_get(&e, "/"), "without remote_ip, source.ip is used");
    let e = policy("{requestPrincipals: ['https://issuer.example/*']}");
    let auth = json!({"auth": {"principal": "https://issuer.example/alice", "audiences": ["shop"], "claims": {"groups": ["admins", "dev"], "org": {"team": "red"}}}});
    assert!(allowed(&e, &to_b("10.0.0.1", Some(A), 8080, get("/"), auth.clone())));
    assert!(!a_get(&e, "/"));
    let e = mesh(&ap(
        "foo",
        "p",
        "  rules: [{when: [{key: 'request.auth.claims[groups]', values: [admins]}, {key: 'request.auth.claims[org][team]', values: [red]}, {key: request.auth.audiences, values: [shop]}]}]",
    ));
    assert!(allowed(&e, &to_b("10.0.0.1", Some(A), 8080, get("/"), auth)));
    assert!(!a_get(&e, "/"));
    // An external identity: Istio's namespace match ignores the trust domain.
    let e = policy("{namespaces: [partner]}");
    let ext = to_b("192.0.2.9", Some("spiffe://partner.example/ns/partner/sa/x"), 8080, get("/"), json!({}));
    assert!(allowed(&e, &ext));
}

#[test]
fn audit_logs_and_never_changes_the_verdict() {
    let e = mesh(&ap("foo", "p", "  action: AUDIT\n  rules: [{}]"));
    let d = decide(&e, &to_b("10.0.0.1", Some(A), 8080, get("/"), json!({})));
    assert_eq!(d["action"], "allow");
    assert_eq!(trace(&d, "ingress")[0], "0|istio-deny|iap:foo/p|log|0");
}

#[test]
fn target_refs_select_no_sidecar_and_lint_warns() {
    let e = mesh(&ap(
        "foo",
        "gw",
        "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\n  action: DENY\n  rules: [{}]",
    ));
    assert!(a_get(&e, "/"));
    let w = palisade::lint::lint(e.snapshot().unwrap().bundle());
    assert!(w.iter().any(|w| w.object == "iap:foo/gw" && w.message.contains("targetRef")), "{w:?}");
}

#[test]
fn istio_load_errors() {
    for (spec, kind, field) in [
        (
            "  action: CUSTOM\n  provider: {name: ext}\n  rules: [{}]",
            palisade::LoadErrorKind::Unsupported,
            "spec.action",
        ),
        (
            "  rules: [{when: [{key: 'experimental.envoy.filters.x[y]', values: [z]}]}]",
            palisade::LoadErrorKind::Unsupported,
            "spec.rules[0].when[0].key",
        ),
        (
            "  rules: [{when: [{key: request.bogus, values: [z]}]}]",
            palisade::LoadErrorKind::Invalid,
            "spec.rules[0].when[0].key",
        ),
        ("  rules: [{when: [{key: source.ip}]}]", palisade::LoadErrorKind::Invalid, "spec.rules[0].when[0]"),
        (
            "  rules: [{from: [{source: {serviceAccounts: [a], principals: [x]}}]}]",
            palisade::LoadErrorKind::Invalid,
            "spec.rules[0].from[0].source",
        ),
        (
            "  rules: [{from: [{source: {serviceAccounts: ['a*']}}]}]",
            palisade::LoadErrorKind::Invalid,
            "spec.rules[0].from[0].source.serviceAccounts[0]",
        ),
        (
            "  rules: [{to: [{operation: {ports: [http]}}]}]",
            palisade::LoadErrorKind::Invalid,
            "spec.rules[0].to[0].operation.ports[0]",
        ),
        (
            "  rules: [{to: [{operation: {paths: ['/a/{**}/b/{**}']}}]}]",
            palisade::LoadErrorKind::Invalid,
            "spec.rules[0].to[0].operation.paths[0]",
        ),
        (
            "  rules: [{to: [{operation: {method: [GET]}}]}]",
            palisade::LoadErrorKind::Schema,
            "spec.rules[0].to[0].operation.method",
        ),
        ("  action: MAYBE", palisade::LoadErrorKind::Invalid, "spec.action"),
    ] {
        let err = palisade::Engine::new(Default::default()).load_str(&ap("foo", "p", spec)).unwrap_err();
        assert_eq!((err.kind, err.field.as_deref()), (kind, Some(field)), "{spec}: {err}");
    }
}

/// The layers under the tier order: security (Calico) -> istio-deny -> istio-allow ->
/// default (Kubernetes and Calico application policy).
fn layered() -> palisade::Engine {
    let tier = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100, defaultAction: Pass}\n---\n";
    let quarantine = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: allow-probe}\nspec: {tier: security, selector: all(), ingress: [{action: Allow, source: {nets: [10.0.2.1/32]}}]}\n---\n";
    let istio = ap(
        "foo",
        "allow-a-and-c",
        &format!("  rules: [{{from: [{{source: {{principals: ['{}', '{}']}}}}]}}]", &A[9..], &B[9..]),
    );
    let knp = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: only-a, namespace: foo}\nspec:\n  podSelector: {matchLabels: {app: b}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: a}}}]}]\n---\n";
    mesh(&format!("{tier}{quarantine}{istio}{knp}"))
}

#[test]
fn istio_allows_but_kubernetes_denies() {
    let e = layered();
    let d = decide(&e, &to_b("10.0.0.3", Some(B), 8080, None, json!({})));
    assert_eq!(
        (d["action"].as_str(), d["tier"].as_str(), d["policy"].as_str()),
        (Some("deny"), Some("default"), Some("knp:foo/only-a"))
    );
    assert_eq!(trace(&d, "ingress")[1], "1|istio-allow|iap:foo/allow-a-and-c|pass|0");
    let d = decide(&e, &to_b("10.0.0.1", Some(A), 8080, None, json!({})));
    assert_eq!((d["action"].as_str(), d["policy"].as_str()), (Some("allow"), Some("knp:foo/only-a")));
}

#[test]
fn kubernetes_would_allow_but_istio_denies() {
    let e = layered();
    // foo/a without a certificate: the Kubernetes policy allows app=a, but Istio's ALLOW
    // needs the principal.
    let d = decide(&e, &to_b("10.0.0.1", None, 8080, None, json!({})));
    assert_eq!(
        (d["action"].as_str(), d["reason"].as_str(), d["tier"].as_str()),
        (Some("deny"), Some("end_of_tier"), Some("istio-allow"))
    );
}

#[test]
fn a_higher_calico_tier_decides_before_istio() {
    let e = layered();
    let d = decide(&e, &to_b("10.0.2.1", None, 8080, None, json!({})));
    assert_eq!((d["action"].as_str(), d["tier"].as_str()), (Some("allow"), Some("security")));
}

#[test]
fn istio_tier_order_can_be_set() {
    let tier =
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: istio-allow}\nspec: {order: 2000000}\n---\n";
    let knp = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-all, namespace: foo}\nspec: {podSelector: {}, ingress: [{}]}\n---\n";
    let e = mesh(&format!("{tier}{knp}{}", ap("foo", "p", "  {}")));
    let d = decide(&e, &to_b("10.0.0.1", Some(A), 8080, None, json!({})));
    assert_eq!((d["action"].as_str(), d["tier"].as_str()), (Some("allow"), Some("default")), "default now comes first");
}

#[test]
fn an_istio_policy_may_have_as_many_rules_as_any_policy() {
    // Istio has no rule cap; Palisade applies `max_rules_per_policy` (default 1,024) to every kind.
    let rules = |n: usize| -> String {
        (0..n).map(|i| format!("  - from: [{{source: {{principals: [cluster.local/ns/a/sa/s{i}]}}}}]\n")).collect()
    };
    let bundle = |n: usize| {
        format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: many, namespace: shop}}\n\
             spec:\n  action: ALLOW\n  rules:\n{}",
            rules(n)
        )
    };
    let engine = palisade::Engine::new(palisade::Config::default());
    assert!(engine.load_str(&bundle(600)).is_ok(), "600 rules load");
    let err = engine.load_str(&bundle(1025)).err().map(|e| (e.field, e.message));
    assert_eq!(err.as_ref().and_then(|(f, _)| f.as_deref()), Some("spec.rules"), "{err:?}");
    assert!(err.is_some_and(|(_, m)| m.contains("max_rules_per_policy")));
}
