//! Kubernetes Services and EndpointSlices (SPEC 9.2): Calico `services` rule matches as
//! Calico's rule scanner resolves them, and Istio's protocol selection for `lint`. Decisions go
//! through both evaluators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use palisade::Config;
use serde_json::json;

fn inventory() -> String {
    [
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n".to_string(),
        pod("shop", "fe", "10.1.0.5", "fe", "app: fe"),
        pod("shop", "api-1", "10.1.0.9", "api", "app: api"),
        pod("shop", "api-2", "10.1.0.10", "api", "app: api"),
        pod("shop", "db", "10.1.0.20", "db", "app: db"),
        // The Service (its port 80 is not what a rule matches) and its slice (target port 8080).
        "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\n\
         spec: {clusterIP: 10.96.0.10, selector: {app: api}, ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: api-abc, namespace: shop, labels: {kubernetes.io/service-name: api}}\n\
         addressType: IPv4\nendpoints: [{addresses: [10.1.0.9], conditions: {ready: true}}, {addresses: [10.1.0.10], conditions: {ready: false}}]\n\
         ports: [{name: http, port: 8080, protocol: TCP}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: fe-x, namespace: shop, labels: {kubernetes.io/service-name: fe}}\n\
         addressType: IPv4\nendpoints: [{addresses: [10.1.0.5]}]\nports: [{port: 3000}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: ext, namespace: shop, labels: {kubernetes.io/service-name: ext}}\n\
         addressType: FQDN\nendpoints: [{addresses: [example.com]}]\nports: [{port: 443}]\n---\n"
            .to_string(),
    ]
    .concat()
}

/// A request between two workloads; both sides are evaluated, and only one side has policy
/// here, so the other side's profile allows (`no_policy`) unless the policy side denies.
fn tcp_udp(src: &str, dst: &str, port: u16, protocol: &str) -> String {
    json!({"protocol": protocol, "source": {"ip": src}, "destination": {"ip": dst, "port": port}}).to_string()
}

fn outcome(e: &palisade::Engine, r: &str) -> String {
    let d = decide(e, r);
    format!("{} {}", d["action"].as_str().unwrap(), d["reason"].as_str().unwrap())
}

#[test]
fn destination_services_match_slice_addresses_and_target_ports() {
    let np = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: fe-out, namespace: shop}\n\
              spec: {selector: \"app == 'fe'\", types: [Egress], egress: [{action: Allow, destination: {services: {name: api, namespace: shop}}}]}\n";
    let e = engine(&format!("{}{np}", inventory()));
    // Both slice endpoints (readiness is not consulted), on the slice's port and protocol.
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.1.0.9", 8080, "TCP")), "allow no_policy");
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.1.0.10", 8080, "TCP")), "allow no_policy");
    // The Service's own port, another port, another protocol, a non-member: not the service.
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.1.0.9", 80, "TCP")), "deny end_of_tier");
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.1.0.9", 9090, "TCP")), "deny end_of_tier");
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.1.0.9", 8080, "UDP")), "deny end_of_tier");
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.1.0.20", 8080, "TCP")), "deny end_of_tier");
    // The cluster IP is not a member (Calico matches the slices, not the Service).
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.96.0.10", 80, "TCP")), "deny end_of_tier");
}

/// An empty namespace in a namespaced policy: Calico documents "the policy's namespace", but
/// Felix looks up `/<name>` and matches nothing; Palisade decides as Felix and lint warns.
#[test]
fn an_empty_service_namespace_matches_nothing_as_in_felix() {
    let np = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: fe-out, namespace: shop}\n\
              spec: {selector: \"app == 'fe'\", types: [Egress], egress: [{action: Allow, destination: {services: {name: api}}}]}\n";
    let e = engine(&format!("{}{np}", inventory()));
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.1.0.9", 8080, "TCP")), "deny end_of_tier");
    let warnings = palisade::lint::lint(e.snapshot().unwrap().bundle());
    assert!(warnings.iter().any(|w| w.message.contains("matches nothing")), "{warnings:?}");
}

#[test]
fn source_services_match_addresses_on_any_port() {
    let gnp = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: api-in}\n\
               spec: {selector: \"app == 'api'\", types: [Ingress], ingress: [{action: Allow, protocol: TCP, source: {services: {name: fe, namespace: shop}}, destination: {ports: [8080]}}]}\n";
    let e = engine(&format!("{}{gnp}", inventory()));
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.1.0.9", 8080, "TCP")), "allow rule");
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.20", "10.1.0.9", 8080, "TCP")), "deny end_of_tier");
    assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.1.0.9", 9000, "TCP")), "deny end_of_tier");
}

#[test]
fn a_service_without_slices_and_an_fqdn_slice_match_nothing() {
    for name in ["missing", "ext"] {
        let np = format!(
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: fe-out, namespace: shop}}\n\
             spec: {{selector: \"app == 'fe'\", types: [Egress], egress: [{{action: Allow, destination: {{services: {{name: {name}}}}}}}]}}\n"
        );
        let e = engine(&format!("{}{np}", inventory()));
        assert_eq!(outcome(&e, &tcp_udp("10.1.0.5", "10.1.0.9", 8080, "TCP")), "deny end_of_tier", "{name}");
    }
}

#[test]
fn services_are_validated_as_calico_does() {
    let gnp = |rule: &str| {
        format!(
            "{}apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: p}}\nspec: {{selector: all(), {rule}}}\n",
            inventory()
        )
    };
    for (rule, field) in [
        (
            "ingress: [{action: Allow, destination: {services: {name: api, namespace: shop}}}]",
            "spec.ingress[0].destination.services",
        ),
        (
            "egress: [{action: Allow, source: {services: {name: api, namespace: shop}}}]",
            "spec.egress[0].source.services",
        ),
        (
            "egress: [{action: Allow, destination: {services: {name: api}}}]",
            "spec.egress[0].destination.services.namespace",
        ),
        (
            "egress: [{action: Allow, destination: {services: {namespace: shop}}}]",
            "spec.egress[0].destination.services.name",
        ),
        (
            "egress: [{action: Allow, destination: {services: {name: api, namespace: shop}, selector: all()}}]",
            "spec.egress[0].destination.services",
        ),
        (
            "egress: [{action: Allow, protocol: TCP, destination: {services: {name: api, namespace: shop}, ports: [80]}}]",
            "spec.egress[0].destination.services",
        ),
        (
            "ingress: [{action: Allow, source: {services: {name: api, namespace: shop}, nets: [10.0.0.0/8]}}]",
            "spec.ingress[0].source.services",
        ),
    ] {
        let e = match palisade::load::load(
            &[palisade::load::Source { name: "b.yaml", text: &gnp(rule) }],
            &Config::default(),
        ) {
            Ok(_) => panic!("{rule} should be rejected"),
            Err(e) => e,
        };
        assert_eq!(e.field.as_deref(), Some(field), "{rule}: {e}");
    }
}

#[test]
fn a_service_port_named_http_makes_lint_quiet() {
    let ap = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: get-only, namespace: shop}\n\
              spec: {selector: {matchLabels: {app: api}}, rules: [{to: [{operation: {methods: [GET]}}]}]}\n---\n";
    let with_service = engine(&format!("{}{ap}", inventory()));
    let warnings = palisade::lint::lint(with_service.snapshot().unwrap().bundle());
    assert!(!warnings.iter().any(|w| w.message.contains("http/grpc port")), "{warnings:?}");
    // The same policy on db (no Service, no named port) still warns.
    let on_db = ap.replace("app: api", "app: db");
    let e = engine(&format!("{}{on_db}", inventory()));
    let warnings = palisade::lint::lint(e.snapshot().unwrap().bundle());
    assert!(warnings.iter().any(|w| w.message.contains("http/grpc port")), "{warnings:?}");
    // appProtocol wins over the name.
    let tcp_app = inventory().replace(
        "ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]",
        "ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP, appProtocol: mysql}]",
    );
    let e = engine(&format!("{tcp_app}{ap}"));
    let warnings = palisade::lint::lint(e.snapshot().unwrap().bundle());
    assert!(warnings.iter().any(|w| w.message.contains("http/grpc port")), "{warnings:?}");
}
