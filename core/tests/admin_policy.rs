//! Cluster-scoped Kubernetes network policy as Calico maps it (SPEC 9.2): ClusterNetworkPolicy
//! (v1alpha2) in tiers `kube-admin` / `kube-baseline`, and the older AdminNetworkPolicy /
//! BaselineAdminNetworkPolicy (v1alpha1) in `adminnetworkpolicy` / `baselineadminnetworkpolicy`.
//! Cases follow the network-policy-api documentation's examples, in our own values; decisions
//! go through both evaluators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use palisade::Config;

fn inventory() -> String {
    [
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {tenant: shop}}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {name: sandbox, labels: {tenant: sandbox}}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring, labels: {tenant: platform}}\n---\n"
            .to_string(),
        pod("shop", "api", "10.1.0.9", "api", "app: api"),
        pod("sandbox", "toy", "10.2.0.5", "toy", "app: toy"),
        pod("monitoring", "prom", "10.3.0.5", "prom", "app: prometheus"),
    ]
    .concat()
}

fn cnp(name: &str, tier: &str, priority: i64, body: &str) -> String {
    format!(
        "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {{name: {name}}}\n\
         spec: {{tier: {tier}, priority: {priority}, {body}}}\n---\n"
    )
}

fn outcome(e: &palisade::Engine, src: &str, dst: &str, port: u16) -> (String, String) {
    let d = decide(
        e,
        &format!(
            r#"{{"direction": "ingress", "source": {{"ip": "{src}"}}, "destination": {{"ip": "{dst}", "port": {port}}}}}"#
        ),
    );
    (
        format!("{} {}", d["action"].as_str().unwrap(), d["reason"].as_str().unwrap()),
        d["policy"].as_str().unwrap_or("-").to_string(),
    )
}

const SHOP_SUBJECT: &str = "subject: {namespaces: {matchLabels: {tenant: shop}}}";

#[test]
fn admin_tier_speaks_before_the_application_tiers() {
    // Namespace-owned policy allows everything into shop; the admin tier denies the sandbox.
    let np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open, namespace: shop}\n\
              spec: {podSelector: {}, ingress: [{}]}\n---\n";
    let deny = cnp(
        "isolate-sandbox",
        "Admin",
        10,
        &format!(
            "{SHOP_SUBJECT}, ingress: [{{name: no-sandbox, action: Deny, from: [{{namespaces: {{matchLabels: {{tenant: sandbox}}}}}}]}}]"
        ),
    );
    let e = engine(&format!("{}{np}{deny}", inventory()));
    assert_eq!(outcome(&e, "10.2.0.5", "10.1.0.9", 8080), ("deny rule".into(), "cnp:isolate-sandbox".into()));
    // Not matched by the admin rule: the tier passes, the NetworkPolicy allows.
    assert_eq!(outcome(&e, "10.3.0.5", "10.1.0.9", 8080).0, "allow rule");
}

#[test]
fn accept_ends_the_walk_and_pass_hands_on() {
    let np_deny = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: closed, namespace: shop}\n\
                   spec: {podSelector: {}, policyTypes: [Ingress]}\n---\n";
    let accept = cnp(
        "monitoring-in",
        "Admin",
        5,
        &format!(
            "{SHOP_SUBJECT}, ingress: [{{action: Accept, from: [{{pods: {{namespaceSelector: {{matchLabels: {{tenant: platform}}}}, podSelector: {{matchLabels: {{app: prometheus}}}}}}}}], protocols: [{{tcp: {{destinationPort: {{number: 9090}}}}}}]}}]"
        ),
    );
    let pass = cnp(
        "sandbox-pass",
        "Admin",
        1,
        &format!(
            "{SHOP_SUBJECT}, ingress: [{{action: Pass, from: [{{namespaces: {{matchLabels: {{tenant: sandbox}}}}}}]}}]"
        ),
    );
    let e = engine(&format!("{}{np_deny}{accept}{pass}", inventory()));
    // Accepted on 9090 only, despite the namespace's deny-all.
    assert_eq!(outcome(&e, "10.3.0.5", "10.1.0.9", 9090), ("allow rule".into(), "cnp:monitoring-in".into()));
    assert_eq!(outcome(&e, "10.3.0.5", "10.1.0.9", 9091).0, "deny end_of_tier");
    // Pass goes on to the namespace's policy, which denies.
    assert_eq!(outcome(&e, "10.2.0.5", "10.1.0.9", 9090), ("deny end_of_tier".into(), "knp:shop/closed".into()));
}

#[test]
fn baseline_applies_only_where_nothing_else_decided() {
    let baseline = cnp(
        "default-deny",
        "Baseline",
        50,
        &format!("{SHOP_SUBJECT}, ingress: [{{action: Deny, from: [{{namespaces: {{}}}}]}}]"),
    );
    let e = engine(&format!("{}{baseline}", inventory()));
    assert_eq!(outcome(&e, "10.2.0.5", "10.1.0.9", 80), ("deny rule".into(), "cnp:default-deny".into()));
    // A namespace policy that allows decides first (the default tier is walked before baseline).
    let np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open, namespace: shop}\n\
              spec: {podSelector: {}, ingress: [{}]}\n---\n";
    let e = engine(&format!("{}{np}{baseline}", inventory()));
    assert_eq!(outcome(&e, "10.2.0.5", "10.1.0.9", 80).0, "allow rule");
    let tiers: Vec<_> = e.snapshot().unwrap().bundle().tiers.iter().map(|t| (t.name.clone(), t.order)).collect();
    assert!(tiers.contains(&("kube-admin".into(), Some(1000.0))), "{tiers:?}");
    assert!(tiers.contains(&("kube-baseline".into(), Some(10_000_000.0))), "{tiers:?}");
}

#[test]
fn priority_orders_policies_within_the_tier() {
    let low = cnp(
        "b-allow",
        "Admin",
        1,
        &format!("{SHOP_SUBJECT}, ingress: [{{action: Accept, from: [{{namespaces: {{}}}}]}}]"),
    );
    let high = cnp(
        "a-deny",
        "Admin",
        2,
        &format!("{SHOP_SUBJECT}, ingress: [{{action: Deny, from: [{{namespaces: {{}}}}]}}]"),
    );
    let e = engine(&format!("{}{low}{high}", inventory()));
    assert_eq!(outcome(&e, "10.2.0.5", "10.1.0.9", 80), ("allow rule".into(), "cnp:b-allow".into()));
}

#[test]
fn egress_networks_and_port_ranges() {
    let d = decide(
        &engine(&format!(
            "{}{}",
            inventory(),
            cnp(
                "no-metadata",
                "Admin",
                1,
                "subject: {namespaces: {}}, egress: [{action: Deny, to: [{networks: [169.254.169.254/32]}], protocols: [{tcp: {destinationPort: {range: {start: 80, end: 443}}}}]}]"
            )
        )),
        r#"{"direction": "egress", "source": {"ip": "10.2.0.5"}, "destination": {"ip": "169.254.169.254", "port": 80}}"#,
    );
    assert_eq!(d["action"], "deny", "{d}");
    assert_eq!(d["policy"], "cnp:no-metadata", "{d}");
}

fn rejected(text: &str) -> palisade::LoadError {
    match palisade::load::load(&[palisade::load::Source { name: "b.yaml", text }], &Config::default()) {
        Ok(_) => panic!("should be rejected:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn what_calico_does_not_implement_is_an_error() {
    for (body, field) in [
        ("subject: {namespaces: {}}, egress: [{action: Deny, to: [{nodes: {}}]}]", "spec.egress[0].to[0].nodes"),
        (
            "subject: {namespaces: {}}, egress: [{action: Accept, to: [{domainNames: [example.com]}]}]",
            "spec.egress[0].to[0].domainNames",
        ),
        ("subject: {namespaces: {}}, ingress: [{action: Deny, from: [{}]}]", "spec.ingress[0].from[0]"),
        ("subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]", "spec.ingress[0].action"),
        ("subject: {namespaces: {}, pods: {namespaceSelector: {}, podSelector: {}}}", "spec.subject"),
        (
            "subject: {namespaces: {}}, ingress: [{action: Deny, from: [{networks: [10.0.0.0/8]}]}]",
            "spec.ingress[0].from[0].networks",
        ),
        (
            "subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {range: {start: 90, end: 80}}}}]}]",
            "spec.ingress[0].protocols[0].tcp.destinationPort",
        ),
    ] {
        let e = rejected(&format!("{}{}", inventory(), cnp("p", "Admin", 1, body)));
        assert_eq!(e.field.as_deref(), Some(field), "{body}: {e}");
    }
    let e = rejected(&format!("{}{}", inventory(), cnp("p", "Middle", 1, "subject: {namespaces: {}}")));
    assert_eq!(e.field.as_deref(), Some("spec.tier"), "{e}");
    let e = rejected(&format!("{}{}", inventory(), cnp("p", "Admin", 1001, "subject: {namespaces: {}}")));
    assert_eq!(e.field.as_deref(), Some("spec.priority"), "{e}");
}

#[test]
fn v1alpha1_admin_and_baseline_policies_as_older_calico_read_them() {
    let anp = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: sandbox-out}\n\
               spec: {priority: 3, subject: {namespaces: {matchLabels: {tenant: shop}}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {tenant: sandbox}}}], ports: [{portNumber: {protocol: TCP, port: 8080}}]}]}\n---\n";
    let banp = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\n\
                spec: {subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}\n---\n";
    let e = engine(&format!("{}{anp}{banp}", inventory()));
    assert_eq!(outcome(&e, "10.2.0.5", "10.1.0.9", 8080), ("deny rule".into(), "anp:sandbox-out".into()));
    assert_eq!(outcome(&e, "10.2.0.5", "10.1.0.9", 9000), ("deny rule".into(), "banp:default".into()));
    let names: Vec<_> = e.snapshot().unwrap().bundle().tiers.iter().map(|t| t.name.clone()).collect();
    assert!(
        names.contains(&"adminnetworkpolicy".to_string()) && names.contains(&"baselineadminnetworkpolicy".to_string())
    );

    let named = anp.replace("portNumber: {protocol: TCP, port: 8080}", "namedPort: http");
    let e = rejected(&format!("{}{named}", inventory()));
    assert_eq!(e.field.as_deref(), Some("spec.ingress[0].ports[0].namedPort"), "{e}");
    let e = rejected(&format!("{}{}", inventory(), banp.replace("name: default", "name: other")));
    assert_eq!(e.field.as_deref(), Some("metadata.name"), "{e}");
    let e = rejected(&format!("{}{}", inventory(), anp.replace("action: Deny", "action: Accept")));
    assert_eq!(e.field.as_deref(), Some("spec.ingress[0].action"), "{e}");
}
