//! Kubernetes NetworkPolicy conformance: cases K1-K27 of the reference (upstream e2e
//! `network_policy.go` and policy-assistant), and G5, checked by behaviour. Namespaces x, y,
//! z each hold pods a, b, c serving 80 and 81 on TCP, UDP and SCTP; loopback is ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

const NS: [&str; 3] = ["x", "y", "z"];
const PODS: [&str; 3] = ["a", "b", "c"];

fn ip(ns: &str, pod: &str) -> String {
    // y/b sits inside 192.168.242.0/24 for K26.
    if ns == "y" && pod == "b" {
        return "192.168.242.249".into();
    }
    let n = NS.iter().position(|x| *x == ns).unwrap() + 1;
    let p = PODS.iter().position(|x| *x == pod).unwrap() + 1;
    format!("10.0.{n}.{p}")
}

fn inventory() -> String {
    let mut out = String::new();
    for ns in NS {
        out += &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{ns: {ns}}}}}\n---\n");
        for pod in PODS {
            out += &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: {ns}, labels: {{pod: {pod}}}}}\n\
                 spec:\n  containers:\n  - ports:\n    - {{name: serve-80-tcp, containerPort: 80}}\n    - {{name: serve-81-tcp, containerPort: 81}}\n    \
                 - {{name: serve-80-udp, containerPort: 80, protocol: UDP}}\n    - {{name: serve-81-udp, containerPort: 81, protocol: UDP}}\n    \
                 - {{name: serve-81-sctp, containerPort: 81, protocol: SCTP}}\nstatus: {{podIP: {}}}\n---\n",
                ip(ns, pod)
            );
        }
    }
    out
}

fn knp(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}\n---\n"
    )
}

struct Net(palisade::Engine);

impl Net {
    fn new(policies: &str) -> Net {
        Net(engine(&format!("{}{policies}", inventory())))
    }
    fn can(&self, from: &str, to: &str, port: u16, protocol: &str) -> bool {
        let (fns, fp) = from.split_once('/').unwrap();
        let (tns, tp) = to.split_once('/').unwrap();
        let req = format!(
            r#"{{"protocol": "{protocol}", "source": {{"ip": "{}"}}, "destination": {{"ip": "{}", "port": {port}}}}}"#,
            ip(fns, fp),
            ip(tns, tp)
        );
        decide(&self.0, &req)["action"] == "allow"
    }
    fn tcp(&self, from: &str, to: &str, port: u16) -> bool {
        self.can(from, to, port, "TCP")
    }
    fn external(&self, src: &str, to: &str, port: u16, protocol: &str) -> bool {
        let (tns, tp) = to.split_once('/').unwrap();
        let req = format!(
            r#"{{"protocol": "{protocol}", "source": {{"ip": "{src}"}}, "destination": {{"ip": "{}", "port": {port}}}}}"#,
            ip(tns, tp)
        );
        decide(&self.0, &req)["action"] == "allow"
    }
}

fn all() -> Vec<String> {
    NS.iter().flat_map(|n| PODS.iter().map(move |p| format!("{n}/{p}"))).collect()
}

#[test]
fn k1_deny_all_ingress() {
    let n = Net::new(&knp("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress]\n  ingress: []"));
    for from in all() {
        for to in ["x/a", "x/b", "x/c"] {
            if from != to {
                assert!(!n.tcp(&from, to, 80), "{from} -> {to}");
            }
        }
    }
    assert!(n.tcp("x/a", "y/a", 80));
    assert!(n.tcp("y/a", "y/b", 80));
}

#[test]
fn k2_deny_all_both_directions() {
    let n = Net::new(&knp("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress, Egress]"));
    assert!(!n.tcp("y/a", "x/a", 80));
    assert!(!n.tcp("x/a", "y/a", 80));
    assert!(!n.tcp("x/a", "x/b", 80));
    assert!(n.tcp("y/a", "y/b", 80));
}

#[test]
fn k3_pod_selector_peer() {
    let n = Net::new(&knp(
        "x",
        "p",
        "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]",
    ));
    assert!(n.tcp("x/b", "x/a", 80));
    assert!(!n.tcp("x/c", "x/a", 80));
    assert!(!n.tcp("y/a", "x/a", 80));
    assert!(!n.tcp("y/b", "x/a", 80), "podSelector alone is scoped to the policy's namespace");
}

#[test]
fn k4_policies_union() {
    let deny = knp("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress]");
    let allow = knp(
        "x",
        "allow",
        "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{podSelector: {}, namespaceSelector: {}}]}]",
    );
    let n = Net::new(&format!("{deny}{allow}"));
    for from in all() {
        if from != "x/a" {
            assert!(n.tcp(&from, "x/a", 80), "{from}");
        }
        if from != "x/b" {
            assert!(!n.tcp(&from, "x/b", 80), "{from}");
        }
    }
}

#[test]
fn k5_empty_namespace_selector_is_every_namespace() {
    let n = Net::new(&knp(
        "x",
        "p",
        "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{namespaceSelector: {}}]}]",
    ));
    for from in all() {
        if from != "x/a" {
            assert!(n.tcp(&from, "x/a", 80), "{from}");
        }
    }
    // Network endpoints that are not pods are not selected by a namespaceSelector.
    assert!(!n.external("192.0.2.1", "x/a", 80, "TCP"));
}

#[test]
fn k6_namespace_by_name_label() {
    let n = Net::new(&knp(
        "x",
        "p",
        "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]}]",
    ));
    for p in PODS {
        assert!(n.tcp(&format!("y/{p}"), "x/a", 80));
    }
    assert!(!n.tcp("x/b", "x/a", 80));
    assert!(!n.tcp("z/a", "x/a", 80));
}

#[test]
fn k7_two_peers_are_ored() {
    let n = Net::new(&knp(
        "x",
        "p",
        "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}}, {podSelector: {matchLabels: {pod: b}}}]}]",
    ));
    assert!(n.tcp("x/b", "x/a", 80));
    assert!(!n.tcp("x/c", "x/a", 80));
    assert!(n.tcp("y/a", "x/a", 80));
}

#[test]
fn k8_one_peer_is_anded() {
    let n = Net::new(&knp(
        "x",
        "p",
        "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}, podSelector: {matchLabels: {pod: b}}}]}]",
    ));
    assert!(n.tcp("y/b", "x/a", 80));
    assert!(n.tcp("z/b", "x/a", 80));
    assert!(!n.tcp("x/b", "x/a", 80));
    assert!(!n.tcp("y/a", "x/a", 80));
}

const FROM_Y_81: &str = "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 81, protocol: TCP}]}]";

#[test]
fn k9_port_and_namespace() {
    let n = Net::new(&knp("x", "p", FROM_Y_81));
    assert!(n.tcp("y/a", "x/a", 81));
    assert!(!n.tcp("x/b", "x/a", 81));
    assert!(!n.tcp("z/a", "x/a", 81));
    assert!(!n.tcp("y/a", "x/a", 80));
}

#[test]
fn k10_second_policy_adds_a_port() {
    let p80 = FROM_Y_81.replace("port: 81", "port: 80");
    let n = Net::new(&format!("{}{}", knp("x", "p81", FROM_Y_81), knp("x", "p80", &p80)));
    assert!(n.tcp("y/a", "x/a", 80));
    assert!(n.tcp("y/a", "x/a", 81));
}

#[test]
fn k11_empty_rule_allows_everything() {
    let n = Net::new(&knp("x", "p", "  podSelector: {}\n  ingress: [{}]"));
    for from in all() {
        for port in [80, 81] {
            if from != "x/a" {
                assert!(n.tcp(&from, "x/a", port));
            }
        }
    }
}

#[test]
fn k12_named_port_ingress() {
    let n = Net::new(&knp("x", "p", "  podSelector: {}\n  ingress: [{ports: [{port: serve-81-tcp}]}]"));
    assert!(n.tcp("y/a", "x/b", 81));
    assert!(!n.tcp("y/a", "x/b", 80));
}

#[test]
fn k13_named_port_egress_resolves_on_the_destination() {
    let n = Net::new(&knp(
        "x",
        "p",
        "  podSelector: {}\n  policyTypes: [Egress]\n  egress: [{ports: [{port: serve-80-tcp}]}]",
    ));
    assert!(n.tcp("x/a", "y/b", 80));
    assert!(!n.tcp("x/a", "y/b", 81));
}

#[test]
fn k14_pod_selector_all_is_same_namespace() {
    let n = Net::new(&knp("x", "p", "  podSelector: {}\n  ingress: [{from: [{podSelector: {}}]}]"));
    assert!(n.tcp("x/b", "x/a", 80));
    assert!(!n.tcp("y/b", "x/a", 80));
    assert!(!n.tcp("z/b", "x/a", 80));
}

#[test]
fn k15_deny_all_egress_for_one_pod() {
    let n = Net::new(&knp("x", "p", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress: []"));
    assert!(!n.tcp("x/a", "y/a", 80));
    assert!(!n.tcp("x/a", "x/b", 80));
    assert!(n.tcp("x/b", "x/a", 80));
    assert!(n.tcp("y/a", "y/b", 80));
}

#[test]
fn k16_ingress_and_egress_together() {
    let n = Net::new(&knp(
        "x",
        "p",
        "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress, Egress]\n  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]\n  egress: [{ports: [{port: 80}]}]",
    ));
    assert!(n.tcp("x/b", "x/a", 80));
    assert!(!n.tcp("x/c", "x/a", 80));
    assert!(!n.tcp("x/a", "y/a", 81));
    assert!(n.tcp("x/a", "y/a", 80));
    assert!(n.tcp("x/b", "x/a", 81));
}

#[test]
fn k17_both_ends_must_allow() {
    let egress = knp(
        "x",
        "out",
        "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: a}}}]}]",
    );
    let ingress = knp(
        "y",
        "in",
        "  podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, b]}]}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]}]",
    );
    let n = Net::new(&format!("{egress}{ingress}"));
    assert!(n.tcp("x/a", "y/a", 80));
    assert!(!n.tcp("x/a", "y/b", 80), "egress of x/a does not allow y/b");
    assert!(!n.tcp("x/b", "y/a", 80));
    assert!(!n.tcp("z/a", "y/b", 80));
}

#[test]
fn k18_protocol_only_port() {
    let n = Net::new(&knp("x", "p", "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{ports: [{protocol: TCP}]}]"));
    assert!(n.tcp("y/a", "x/a", 80));
    assert!(!n.can("y/a", "x/a", 80, "UDP"));
}

#[test]
fn k19_sctp_allow_does_not_allow_tcp() {
    let deny = knp("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress]");
    let sctp =
        knp("x", "sctp", "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{ports: [{port: 81, protocol: SCTP}]}]");
    let n = Net::new(&format!("{deny}{sctp}"));
    assert!(!n.tcp("y/a", "x/a", 81));
    assert!(n.can("y/a", "x/a", 81, "SCTP"));
}

#[test]
fn k20_udp_allow_does_not_allow_tcp() {
    let n = Net::new(&knp(
        "x",
        "p",
        "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{ports: [{port: 81, protocol: UDP}]}]",
    ));
    assert!(!n.tcp("y/a", "x/a", 81));
    assert!(n.can("y/a", "x/a", 81, "UDP"));
}

#[test]
fn k21_ip_block_host() {
    let spec = format!(
        "  podSelector: {{matchLabels: {{pod: a}}}}\n  policyTypes: [Egress]\n  egress: [{{to: [{{ipBlock: {{cidr: {}/32}}}}]}}]",
        ip("y", "b")
    );
    let n = Net::new(&knp("x", "p", &spec));
    assert!(n.tcp("x/a", "y/b", 80));
    assert!(!n.tcp("x/a", "y/a", 80));
}

fn k22_policy(except: bool) -> String {
    let block = if except {
        format!("{{cidr: 10.0.0.0/16, except: [{}/32]}}", ip("x", "b"))
    } else {
        format!("{{cidr: {}/32}}", ip("x", "b"))
    };
    knp(
        "x",
        "p",
        &format!(
            "  podSelector: {{matchLabels: {{pod: a}}}}\n  policyTypes: [Egress]\n  egress: [{{to: [{{ipBlock: {block}}}]}}]"
        ),
    )
}

#[test]
fn k22_ip_block_except() {
    let n = Net::new(&k22_policy(true));
    assert!(!n.tcp("x/a", "x/b", 80));
    assert!(n.tcp("x/a", "x/c", 80));
}

#[test]
fn k23_policy_update_replaces_the_rule() {
    let n = Net::new(&k22_policy(true));
    assert!(!n.tcp("x/a", "x/b", 80));
    n.0.load_str(&format!("{}{}", inventory(), k22_policy(false))).unwrap();
    assert!(n.tcp("x/a", "x/b", 80));
    assert!(!n.tcp("x/a", "x/c", 80));
}

#[test]
fn k24_allow_all_rule_wins_the_union() {
    let p80 = knp("x", "p80", "  podSelector: {}\n  ingress: [{ports: [{port: 80}]}]");
    let n = Net::new(&p80);
    assert!(!n.tcp("y/a", "x/a", 81));
    let all = knp("x", "all", "  podSelector: {}\n  ingress: [{}]");
    n.0.load_str(&format!("{}{p80}{all}", inventory())).unwrap();
    assert!(n.tcp("y/a", "x/a", 81));
}

#[test]
fn k25_protocol_only_sctp() {
    let n = Net::new(&knp("x", "p", "  podSelector: {}\n  ingress: [{ports: [{protocol: SCTP}]}]"));
    assert!(n.can("y/a", "x/a", 103, "SCTP"));
    assert!(n.external("1.2.3.4", "x/a", 103, "SCTP"));
    assert!(!n.tcp("y/a", "x/a", 103));
}

#[test]
fn k26_ip_block_next_to_pod_selector() {
    let n = Net::new(&knp(
        "x",
        "p",
        "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - {ports: [{port: 80, protocol: TCP}], to: [{podSelector: {}}, {ipBlock: {cidr: 192.168.242.213/24}}]}\n  - {ports: [{port: 53, protocol: UDP}]}",
    ));
    assert!(n.tcp("x/a", "y/b", 80), "y/b is reached through the ipBlock");
    assert!(!n.tcp("x/a", "y/a", 80));
    assert!(n.tcp("x/a", "x/c", 80));
    assert!(n.can("x/a", "z/c", 53, "UDP"));
}

#[test]
fn k27_egress_only_section_still_isolates_ingress() {
    let n = Net::new(&knp("x", "p", "  podSelector: {matchLabels: {pod: a}}\n  egress: [{}]"));
    assert!(!n.tcp("y/a", "x/a", 80), "defaulted policyTypes are [Ingress, Egress]");
    assert!(n.tcp("x/a", "y/a", 80));
}

#[test]
fn g5_mapping_by_behaviour() {
    // A Kubernetes policy maps to tier default, order 1000, kind knp; its selector is the
    // pod labels (pods only) and `namespaceSelector: {}` means every namespace.
    let n = Net::new(&knp(
        "x",
        "g5",
        "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{namespaceSelector: {}}]}]",
    ));
    let d = decide(
        &n.0,
        &format!(
            r#"{{"source": {{"ip": "{}"}}, "destination": {{"ip": "{}", "port": 80}}}}"#,
            ip("z", "c"),
            ip("x", "a")
        ),
    );
    assert_eq!(
        (d["tier"].as_str(), d["policy"].as_str(), d["rule"].as_i64()),
        (Some("default"), Some("knp:x/g5"), Some(0))
    );
}

#[test]
fn kubernetes_policy_sorts_before_unordered_calico_policy_in_default_tier() {
    let calico = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: late, namespace: x}\nspec: {ingress: [{action: Deny}]}\n---\n";
    let n = Net::new(&format!("{calico}{}", knp("x", "k", "  podSelector: {}\n  ingress: [{}]")));
    assert!(n.tcp("y/a", "x/a", 80), "order 1000 comes before an absent order");
}

#[test]
fn k8s_validation_errors() {
    for (spec, field) in [
        (
            "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]",
            "spec.ingress[0].from[0]",
        ),
        (
            "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/24]}}]}]",
            "spec.ingress[0].from[0].ipBlock.except[0]",
        ),
        ("  podSelector: {}\n  ingress: [{ports: [{port: 80, endPort: 70}]}]", "spec.ingress[0].ports[0].endPort"),
        ("  podSelector: {}\n  ingress: [{ports: [{port: http, endPort: 90}]}]", "spec.ingress[0].ports[0].endPort"),
        ("  podSelector: {}\n  ingress: [{ports: [{protocol: ICMP}]}]", "spec.ingress[0].ports[0].protocol"),
        ("  podSelector: {matchExpressions: [{key: a, operator: In}]}", "spec.podSelector.matchExpressions[0].values"),
        (
            "  podSelector: {matchExpressions: [{key: a, operator: Like, values: [b]}]}",
            "spec.podSelector.matchExpressions[0].operator",
        ),
        ("  podSelector: {}\n  ingres: []", "spec.ingres"),
        ("  podSelector: {}\n  ingress: [{to: []}]", "spec.ingress[0].to"),
    ] {
        let e = palisade::Engine::new(Default::default()).load_str(&knp("x", "p", spec)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{spec}: {e}");
        assert_eq!(e.object.as_deref(), Some("NetworkPolicy x/p"));
    }
}

#[test]
fn end_port_ranges() {
    let n = Net::new(&knp("x", "p", "  podSelector: {}\n  ingress: [{ports: [{port: 80, endPort: 81}]}]"));
    assert!(n.tcp("y/a", "x/a", 80));
    assert!(n.tcp("y/a", "x/a", 81));
    assert!(!n.tcp("y/a", "x/a", 82));
}
