//! Rule matching: scoping (G1-G4, by behaviour), network sets, named ports, ICMP, missing
//! attributes, HTTP (H1-H8) and `l7_pending`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

fn inventory() -> String {
    [
        pod("namespace2", "dst", "10.0.2.1", "default", "app: dst"),
        pod("namespace2", "same-ns", "10.0.2.2", "sa1", "mylabel: value1, label2: x"),
        pod("namespace2", "same-ns-nolabel", "10.0.2.3", "sa3", "label2: x"),
        pod("other", "other-ns", "10.0.3.1", "sa1", "mylabel: value1"),
        pod("namespace2", "sa2-pod", "10.0.2.4", "sa2", ""),
    ]
    .concat()
        + "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa1, namespace: namespace2, labels: {key: value1}}\n---\n"
        + "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa1, namespace: other, labels: {key: value1}}\n---\n"
        + "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa2, namespace: namespace2, labels: {key: value2}}\n---\n"
        + "apiVersion: v1\nkind: Namespace\nmetadata: {name: other, labels: {key: value}}\n---\n"
}

fn np_ingress(source: &str) -> String {
    format!(
        "{}apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: namespace2}}\nspec:\n  selector: app == 'dst'\n  ingress: [{{action: Allow, source: {source}}}]\n",
        inventory()
    )
}

fn allowed(e: &palisade::Engine, src: &str) -> bool {
    let d = decide(e, &tcp(src, "10.0.2.1", 80));
    d["action"] == "allow"
}

#[test]
fn g1_namespaced_selector_is_scoped_to_the_policy_namespace() {
    let e = engine(&np_ingress("{selector: mylabel == 'value1'}"));
    assert!(allowed(&e, "10.0.2.2"));
    assert!(!allowed(&e, "10.0.3.1"), "same label in another namespace must not match");
    assert!(!allowed(&e, "10.0.2.3"));
}

#[test]
fn g2_not_selector_alone_still_scopes_to_the_namespace() {
    let e = engine(&np_ingress("{notSelector: has(label2)}"));
    assert!(allowed(&e, "10.0.2.4"), "same namespace, no label2");
    assert!(!allowed(&e, "10.0.2.2"), "has label2");
    assert!(!allowed(&e, "10.0.3.1"), "other namespace is out of scope");
    assert!(!allowed(&e, "192.0.2.9"), "unknown IP is outside the namespace scope");
}

#[test]
fn g3_namespace_selector_reads_namespace_labels() {
    let e = engine(&np_ingress("{namespaceSelector: \"!has(key) || (has(key) && !key in {'value'})\"}"));
    assert!(allowed(&e, "10.0.2.2"), "namespace2 has no `key` label");
    assert!(!allowed(&e, "10.0.3.1"), "namespace other has key=value");
}

#[test]
fn g4_service_accounts_names_and_selector_are_anded() {
    let e = engine(&np_ingress("{serviceAccounts: {names: [sa1, sa2], selector: \"key == 'value1'\"}}"));
    assert!(allowed(&e, "10.0.2.2"), "sa1 with key=value1 in namespace2");
    assert!(!allowed(&e, "10.0.2.4"), "sa2 has key=value2");
    assert!(!allowed(&e, "10.0.3.1"), "sa1 in another namespace is out of scope");
}

#[test]
fn global_namespace_selector_matches_only_non_namespaced_entities() {
    let b = format!(
        "{}apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: ext, labels: {{kind: ext}}}}\nspec: {{nets: [198.51.100.0/24]}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: g}}\nspec:\n  selector: app == 'dst'\n  ingress: [{{action: Allow, source: {{namespaceSelector: global()}}}}]\n",
        inventory()
    );
    let e = engine(&b);
    assert!(allowed(&e, "198.51.100.7"));
    assert!(!allowed(&e, "10.0.2.2"));
    assert!(!allowed(&e, "192.0.2.1"), "an IP nothing holds is not a global entity");
}

#[test]
fn selector_matches_when_any_holder_satisfies_it() {
    // Two overlapping sets: the /16 has the label, the /24 (longer prefix) does not.
    let b = format!(
        "{}apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: wide, labels: {{trust: low}}}}\nspec: {{nets: [203.0.0.0/16]}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: narrow, labels: {{trust: high}}}}\nspec: {{nets: [203.0.113.0/24]}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: g}}\nspec:\n  selector: app == 'dst'\n  ingress:\n  - {{action: Deny, source: {{selector: trust == 'low'}}}}\n  - {{action: Allow, source: {{notSelector: trust == 'high'}}}}\n",
        inventory()
    );
    let e = engine(&b);
    let d = decide(&e, &tcp("203.0.113.5", "10.0.2.1", 80));
    assert_eq!((d["action"].as_str(), d["rule"].as_i64()), (Some("deny"), Some(0)), "the /16's label applies too");
    let d = decide(&e, &tcp("203.0.1.5", "10.0.2.1", 80));
    assert_eq!((d["action"].as_str(), d["rule"].as_i64()), (Some("deny"), Some(0)));
    // notSelector: matches when no holder satisfies it; unknown IPs match it.
    let d = decide(&e, &tcp("192.0.2.1", "10.0.2.1", 80));
    assert_eq!((d["action"].as_str(), d["rule"].as_i64()), (Some("allow"), Some(1)));
}

#[test]
fn namespaced_network_set_inherits_namespace_labels() {
    let b = format!(
        "{}apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {{name: partners, namespace: other, labels: {{role: partner}}}}\nspec: {{nets: [198.51.100.0/24]}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: g}}\nspec:\n  selector: app == 'dst'\n  ingress: [{{action: Allow, source: {{namespaceSelector: key == 'value', selector: role == 'partner'}}}}]\n",
        inventory()
    );
    let e = engine(&b);
    assert!(allowed(&e, "198.51.100.9"));
}

#[test]
fn nets_and_not_nets() {
    let e = engine(&np_ingress("{nets: [10.0.0.0/16, 192.0.2.0/24], notNets: [10.0.3.0/24]}"));
    assert!(allowed(&e, "10.0.2.2"));
    assert!(allowed(&e, "192.0.2.200"));
    assert!(!allowed(&e, "10.0.3.1"));
    assert!(!allowed(&e, "198.51.100.1"));
    // IPv4-mapped IPv6 is IPv4.
    let d = decide(&e, &tcp("::ffff:192.0.2.200", "::ffff:10.0.2.1", 80));
    assert_eq!(d["action"], "allow");
}

#[test]
fn ipv6_rule_never_matches_ipv4_traffic() {
    let b = format!(
        "{}apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: g}}\nspec:\n  selector: app == 'dst'\n  ingress:\n  - {{action: Deny, source: {{notNets: ['2001:db8::/32']}}}}\n  - {{action: Allow}}\n",
        inventory()
    );
    let e = engine(&b);
    let d = decide(&e, &tcp("192.0.2.1", "10.0.2.1", 80));
    assert_eq!(d["rule"], 1, "the v6 deny rule is dropped for v4 traffic");
}

fn dst_rule(rule: &str) -> palisade::Engine {
    let pods = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: ns, labels: {app: web}}\nspec:\n  containers:\n  - ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]\nstatus: {podIP: 10.0.0.2}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: other, namespace: ns, labels: {app: other}}\nspec:\n  containers:\n  - ports: [{name: http, containerPort: 9999}]\nstatus: {podIP: 10.0.0.3}\n---\n";
    engine(&format!(
        "{pods}apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: g}}\nspec:\n  types: [Ingress]\n  ingress: [{rule}]\n"
    ))
}

#[test]
fn named_ports_resolve_against_the_destination_pod() {
    let e = dst_rule("{action: Allow, destination: {ports: [http]}}");
    assert_eq!(decide(&e, &tcp("192.0.2.1", "10.0.0.2", 8080))["action"], "allow");
    assert_eq!(decide(&e, &tcp("192.0.2.1", "10.0.0.2", 9999))["action"], "deny");
    assert_eq!(decide(&e, &tcp("192.0.2.1", "10.0.0.3", 9999))["action"], "allow");
    // Protocol must match the container port's.
    let d = decide(
        &e,
        r#"{"protocol": "UDP", "source": {"ip": "192.0.2.1"}, "destination": {"ip": "10.0.0.2", "port": 8080}}"#,
    );
    assert_eq!(d["action"], "deny");
    // With a positive selector, the named port's owner must satisfy it.
    let e = dst_rule("{action: Allow, destination: {selector: app == 'web', ports: [http]}}");
    assert_eq!(decide(&e, &tcp("192.0.2.1", "10.0.0.3", 9999))["action"], "deny");
}

#[test]
fn port_ranges_and_not_ports() {
    let e = dst_rule("{action: Allow, protocol: TCP, destination: {ports: ['8000:8100'], notPorts: [8080]}}");
    assert_eq!(decide(&e, &tcp("192.0.2.1", "10.0.0.2", 8000))["action"], "allow");
    assert_eq!(decide(&e, &tcp("192.0.2.1", "10.0.0.2", 8100))["action"], "allow");
    assert_eq!(decide(&e, &tcp("192.0.2.1", "10.0.0.2", 8080))["action"], "deny");
    assert_eq!(decide(&e, &tcp("192.0.2.1", "10.0.0.2", 8101))["action"], "deny");
}

#[test]
fn missing_source_port_fails_allow_and_holds_deny() {
    let e = dst_rule("{action: Allow, protocol: TCP, source: {ports: ['1024:65535']}}");
    assert_eq!(decide(&e, &tcp("192.0.2.1", "10.0.0.2", 80))["action"], "deny");
    let with_port = r#"{"source": {"ip": "192.0.2.1", "port": 40000}, "destination": {"ip": "10.0.0.2", "port": 80}}"#;
    assert_eq!(decide(&e, with_port)["action"], "allow");
    let e = dst_rule("{action: Deny, protocol: TCP, source: {notPorts: ['1024:65535']}}, {action: Allow}");
    let d = decide(&e, &tcp("192.0.2.1", "10.0.0.2", 80));
    assert_eq!(
        (d["action"].as_str(), d["rule"].as_i64()),
        (Some("deny"), Some(0)),
        "a Deny rule holds on a missing attribute"
    );
    assert_eq!(decide(&e, with_port)["rule"], 1);
}

#[test]
fn ports_on_a_portless_protocol() {
    let e = dst_rule("{action: Deny, destination: {notPorts: [http]}}, {action: Allow, destination: {ports: [http]}}");
    let icmp = r#"{"protocol": "ICMP", "source": {"ip": "192.0.2.1"}, "destination": {"ip": "10.0.0.2"}, "icmp": {"type": 8, "code": 0}}"#;
    let d = decide(&e, icmp);
    assert_eq!((d["action"].as_str(), d["rule"].as_i64()), (Some("deny"), Some(0)), "notPorts matches ICMP");
    let e = dst_rule("{action: Allow, destination: {ports: [http]}}");
    assert_eq!(decide(&e, icmp)["reason"], "end_of_tier", "ports never match ICMP");
}

#[test]
fn icmp_type_and_code() {
    let e = dst_rule("{action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}}");
    let req = |icmp: &str| {
        format!(r#"{{"protocol": "ICMP", "source": {{"ip": "192.0.2.1"}}, "destination": {{"ip": "10.0.0.2"}}{icmp}}}"#)
    };
    assert_eq!(decide(&e, &req(r#", "icmp": {"type": 8, "code": 0}"#))["action"], "allow");
    assert_eq!(decide(&e, &req(r#", "icmp": {"type": 8, "code": 1}"#))["action"], "deny");
    assert_eq!(decide(&e, &req(r#", "icmp": {"type": 0}"#))["action"], "deny");
    assert_eq!(decide(&e, &req(r#", "icmp": {"type": 8}"#))["action"], "deny", "missing code fails an Allow");
    assert_eq!(decide(&e, &req(""))["action"], "deny", "missing icmp fails an Allow");
    let e = dst_rule("{action: Deny, protocol: ICMP, notICMP: {type: 0}}, {action: Allow}");
    assert_eq!(decide(&e, &req(r#", "icmp": {"type": 0}"#))["rule"], 1);
    assert_eq!(decide(&e, &req(r#", "icmp": {"type": 3}"#))["rule"], 0);
    assert_eq!(decide(&e, &req(""))["rule"], 0, "a Deny rule holds on a missing attribute");
    // ICMP implies IPv4: never matches ICMP over IPv6 addresses.
    let e = dst_rule("{action: Allow, protocol: 1}");
    assert_eq!(decide(&e, &req(r#", "icmp": {"type": 8}"#))["action"], "allow");
}

#[test]
fn protocol_and_not_protocol() {
    let e = dst_rule("{action: Allow, notProtocol: UDP}");
    assert_eq!(decide(&e, &tcp("192.0.2.1", "10.0.0.2", 80))["action"], "allow");
    let udp = r#"{"protocol": "udp", "source": {"ip": "192.0.2.1"}, "destination": {"ip": "10.0.0.2", "port": 53}}"#;
    assert_eq!(decide(&e, udp)["action"], "deny");
    let e = dst_rule("{action: Allow, protocol: 17}");
    assert_eq!(decide(&e, udp)["action"], "allow");
}

fn http_engine(http: &str) -> palisade::Engine {
    dst_rule(&format!("{{action: Allow, protocol: TCP, http: {http}}}"))
}

fn http_req(method: &str, path: &str) -> String {
    format!(
        r#"{{"source": {{"ip": "192.0.2.1"}}, "destination": {{"ip": "10.0.0.2", "port": 80}}, "http": {{"method": "{method}", "path": {}}}}}"#,
        serde_json::Value::String(path.into())
    )
}

#[test]
fn h1_h2_h3_methods() {
    let e = http_engine("{methods: []}");
    assert_eq!(decide(&e, &http_req("GET", "/"))["action"], "allow");
    let e = http_engine("{methods: [get, HEAD]}");
    assert_eq!(decide(&e, &http_req("GET", "/"))["action"], "deny", "methods are case-sensitive");
    assert_eq!(decide(&e, &http_req("HEAD", "/"))["action"], "allow");
    let e = http_engine("{methods: ['*']}");
    assert_eq!(decide(&e, &http_req("MADNESS", "/"))["action"], "allow");
}

#[test]
fn h4_exact_ignores_query_and_fragment() {
    let e = http_engine("{paths: [{exact: /foo}]}");
    for p in ["/foo?xyz", "/foo#xyz", "/foo"] {
        assert_eq!(decide(&e, &http_req("GET", p))["action"], "allow", "{p}");
    }
    assert_eq!(decide(&e, &http_req("GET", "/foobar"))["action"], "deny");
}

#[test]
fn h5_prefix_is_segment_aligned() {
    let e = http_engine("{paths: [{prefix: /foo}]}");
    assert_eq!(decide(&e, &http_req("GET", "/foo/bar"))["action"], "allow");
    assert_eq!(decide(&e, &http_req("GET", "/foobar"))["action"], "deny");
}

#[test]
fn h6_traversal_never_stays_under_the_prefix() {
    let e = http_engine("{paths: [{prefix: /public}]}");
    for p in ["/public/../admin", "/public\\..\\admin", "/public/..;x/admin", "/public/%2e%2e/admin"] {
        let d = decide(&e, &http_req("GET", p));
        assert_eq!((d["action"].as_str(), d["reason"].as_str()), (Some("deny"), Some("end_of_tier")), "{p}");
    }
    // Double-encoded dots and encoded separators (SPEC 9.3) are refused outright.
    for p in ["/public/%252e%252e/admin", "/public%2F..%2Fadmin", "/public%5c..%5cadmin"] {
        let d = decide(&e, &http_req("GET", p));
        assert_eq!((d["action"].as_str(), d["reason"].as_str()), (Some("deny"), Some("invalid_request")), "{p}");
    }
}

#[test]
fn h7_h8_slashes_and_escapes() {
    let e = http_engine("{paths: [{prefix: /public}]}");
    assert_eq!(decide(&e, &http_req("GET", "//public"))["action"], "allow");
    assert_eq!(decide(&e, &http_req("GET", "/public//foo"))["action"], "allow");
    let e = http_engine("{paths: [{exact: /public/file}]}");
    assert_eq!(decide(&e, &http_req("GET", "/public/%66ile"))["action"], "allow");
}

#[test]
fn invalid_paths_are_invalid_requests() {
    let e = http_engine("{paths: [{prefix: /}]}");
    for p in ["relative", "/a%zz", "/a%00", "/%c3%28", "/a%252e", "/a%255C"] {
        let d = decide(&e, &http_req("GET", p));
        assert_eq!(d["reason"], "invalid_request", "{p}");
    }
}

#[test]
fn http_rule_without_http_attributes_is_l7_pending() {
    let e = http_engine("{methods: [GET], paths: [{prefix: /api}]}");
    let d = decide(&e, &tcp("192.0.2.1", "10.0.0.2", 80));
    assert_eq!((d["action"].as_str(), d["l7_pending"].as_bool()), (Some("allow"), Some(true)));
    let d = decide(&e, &http_req("GET", "/api/x"));
    assert_eq!((d["action"].as_str(), d["l7_pending"].as_bool()), (Some("allow"), Some(false)));
    let d = decide(&e, &http_req("POST", "/api/x"));
    assert_eq!(d["action"], "deny");
}
