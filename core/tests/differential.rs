//! Compiled engine == reference evaluator, on random bundles and requests.
//!
//! Bundles draw from a small alphabet (labels, IPs, ports, selectors) so that selectors
//! collide, tiers interleave and every outcome is reached; the test counts outcomes and
//! fails if any class never occurs, so the generator cannot pass vacuously.
//! `PROPTEST_CASES` sets the number of bundles (default 2,000; 24 requests each).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use palisade::trace::{HitAction, HitSource};
use palisade::{Action, Config, Engine, OwnedRequest, Reason, Side};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};

const IPS: [&str; 8] =
    ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.9", "192.0.2.7"];
/// Request-only addresses: IPv6 (mixed with IPv4 is `invalid_request`, SPEC 9.3) and the
/// IPv4-mapped form of a workload's IP (the same address as the IPv4 one).
const IPS_V6: [&str; 3] = ["fd00::1", "2001:db8::7", "::ffff:10.0.0.2"];
const NETS: [&str; 6] = ["10.0.0.0/29", "10.0.0.0/30", "10.0.0.4/31", "192.0.2.0/24", "10.0.0.8/29", "0.0.0.0/1"];
const NAMESPACES: [&str; 2] = ["ns1", "ns2"];
const SAS: [&str; 3] = ["default", "sa1", "sa2"];
const SELECTORS: [&str; 12] = [
    "",
    "all()",
    "app == 'a'",
    "app == 'b'",
    "app != 'a'",
    "has(team)",
    "!has(app)",
    "app in {'a', 'c'}",
    "team == 'x' || env == 'p'",
    "app starts with 'a' && env != 'q'",
    "env not in {'p'}",
    "projectcalico.org/serviceaccount == 'sa1'",
];
const NS_SELECTORS: [&str; 5] = ["all()", "global()", "team == 'x'", "projectcalico.org/name == 'ns2'", "!has(team)"];
const PATHS: [&str; 14] = [
    "/",
    "/api",
    "/api/x",
    "/apix",
    "/api/../admin",
    "//api/%78",
    "/a;b/api",
    "/api/x/",
    "/api/%252e",
    "api",
    // Encoded separators (SPEC 9.3): `invalid_request` whatever the policy kind.
    "/admin%2F..%2Fapi/x",
    "/admin%5c..%5capi/x",
    "/api%2fx",
    "/api/x?next=%2Fadmin",
];
const RULE_PATHS: [&str; 4] = ["exact: /api", "prefix: /api", "prefix: /", "exact: /admin"];

fn pick<T: Clone + std::fmt::Debug + 'static>(xs: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(xs)
}

fn labels() -> impl Strategy<Value = String> {
    (prop::option::of(pick(&["a", "b", "c"])), prop::option::of(pick(&["x", "y"])), prop::option::of(pick(&["p", "q"])))
        .prop_map(|(app, team, env)| {
            let mut parts = Vec::new();
            if let Some(v) = app {
                parts.push(format!("app: {v}"));
            }
            if let Some(v) = team {
                parts.push(format!("team: {v}"));
            }
            if let Some(v) = env {
                parts.push(format!("env: {v}"));
            }
            format!("{{{}}}", parts.join(", "))
        })
}

fn pods() -> impl Strategy<Value = String> {
    prop::collection::vec((pick(&NAMESPACES), pick(&SAS), labels(), any::<bool>(), any::<bool>()), 1..7).prop_map(
        |pods| {
            let mut out = String::new();
            for (i, (ns, sa, labels, http_port, dns_port)) in pods.into_iter().enumerate() {
                let ip = IPS[i];
                let mut ports = Vec::new();
                if http_port {
                    ports.push("{name: http, containerPort: 80}".to_string());
                }
                if dns_port {
                    ports.push("{name: dns, containerPort: 53, protocol: UDP}".to_string());
                }
                out.push_str(&format!(
                    "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: {ns}, labels: {labels}}}\nspec: {{serviceAccountName: {sa}, containers: [{{ports: [{}]}}]}}\nstatus: {{podIP: {ip}}}\n---\n",
                    ports.join(", ")
                ));
            }
            out
        },
    )
}

fn inventory() -> impl Strategy<Value = String> {
    (
        pick(&["x", "y"]),
        prop::collection::vec((any::<bool>(), pick(&NETS), pick(&NETS), labels()), 0..3),
        prop::collection::btree_set(pick(&IPS), 0..3),
        prop::option::weighted(0.3, labels()),
    )
        .prop_map(|(team, sets, members, host)| {
            let mut out = format!(
                "apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns1, labels: {{team: {team}}}}}\n---\n\
                 apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: sa1, namespace: ns1, labels: {{app: a}}}}\n---\n\
                 apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: sa2, namespace: ns2, labels: {{team: y}}}}\n---\n"
            );
            // The Service `svc` of ns1: its slice's members, on TCP 80 and UDP 53.
            let addrs: Vec<String> = members.iter().map(|a| format!("{{addresses: [{a}]}}")).collect();
            out.push_str(&format!(
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: svc-1, namespace: ns1, labels: {{kubernetes.io/service-name: svc}}}}\n\
                 addressType: IPv4\nendpoints: [{}]\nports: [{{port: 80}}, {{port: 53, protocol: UDP}}]\n---\n",
                addrs.join(", ")
            ));
            if let Some(labels) = host {
                out.push_str(&format!(
                    "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {{name: h, labels: {labels}}}\nspec: {{node: n1, expectedIPs: [192.0.2.7]}}\n---\n"
                ));
            }
            for (i, (global, n1, n2, labels)) in sets.into_iter().enumerate() {
                if global {
                    out.push_str(&format!(
                        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: s{i}, labels: {labels}}}\nspec: {{nets: [{n1}, {n2}]}}\n---\n"
                    ));
                } else {
                    out.push_str(&format!(
                        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {{name: s{i}, namespace: ns2, labels: {labels}}}\nspec: {{nets: [{n1}]}}\n---\n"
                    ));
                }
            }
            out
        })
}

fn entity(protocol: Option<&'static str>) -> impl Strategy<Value = String> {
    let ported = matches!(protocol, Some("TCP" | "UDP"));
    (
        prop::option::weighted(0.15, pick(&NETS)),
        prop::option::weighted(0.08, pick(&["10.0.0.2/32", "192.0.2.0/25", "10.0.0.4/30"])),
        prop::option::weighted(0.2, pick(&SELECTORS)),
        prop::option::weighted(0.08, pick(&SELECTORS)),
        prop::option::weighted(0.1, pick(&NS_SELECTORS)),
        prop::option::weighted(0.2, pick(&["80", "53", "'50:90'", "http", "dns", "'1:1023'"])),
        prop::option::weighted(0.08, pick(&["80", "http", "'1000:65535'"])),
        prop::option::weighted(0.08, pick(&["[sa1]", "[sa1, sa2]", "[default]"])),
    )
        .prop_map(move |(nets, not_nets, sel, not_sel, ns_sel, ports, not_ports, sa)| {
            let mut parts = Vec::new();
            if let Some(n) = nets {
                parts.push(format!("nets: [{n}]"));
            }
            if let Some(n) = not_nets {
                parts.push(format!("notNets: [{n}]"));
            }
            if let Some(s) = sel {
                parts.push(format!("selector: \"{s}\""));
            }
            if let Some(s) = not_sel {
                parts.push(format!("notSelector: \"{s}\""));
            }
            if let Some(s) = ns_sel {
                parts.push(format!("namespaceSelector: \"{s}\""));
            }
            let numeric = |p: &str| p.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '\'');
            if let Some(p) = ports
                && (ported || !numeric(p))
            {
                parts.push(format!("ports: [{p}]"));
            }
            if let Some(p) = not_ports
                && (ported || !numeric(p))
            {
                parts.push(format!("notPorts: [{p}]"));
            }
            if let Some(s) = sa {
                parts.push(format!("serviceAccounts: {{names: {s}}}"));
            }
            format!("{{{}}}", parts.join(", "))
        })
}

fn rule(ingress: bool) -> impl Strategy<Value = String> {
    (
        pick(&["Allow", "Allow", "Deny", "Pass", "Log"]),
        pick(&[None, Some("TCP"), Some("TCP"), Some("UDP"), Some("ICMP")]),
        prop::option::weighted(0.15, pick(&["TCP", "UDP"])),
        any::<bool>(),
        prop::option::weighted(0.3, (pick(&["[GET]", "[POST, GET]", "['*']", "[]"]), pick(&RULE_PATHS))),
        prop::option::of(pick(&["{type: 8}", "{type: 8, code: 0}", "{type: 0}"])),
        prop::sample::select(&[false, false, false, false, false, false, false, true][..]),
    )
        .prop_flat_map(move |(action, protocol, not_protocol, use_not_icmp, http, icmp, svc)| {
            (entity(protocol), entity(protocol)).prop_map(move |(src, dst)| {
                // A Calico `services` end (SPEC 9.2): the source of an ingress rule, the
                // destination of an egress rule, alone on its end.
                let service = "{services: {name: svc, namespace: ns1}}".to_string();
                let (src, dst) = match (svc, ingress) {
                    (true, true) => (service, dst),
                    (true, false) => (src, service),
                    _ => (src, dst),
                };
                let mut parts =
                    vec![format!("action: {action}"), format!("source: {src}"), format!("destination: {dst}")];
                if let Some(p) = protocol {
                    parts.push(format!("protocol: {p}"));
                }
                if let Some(p) = not_protocol {
                    parts.push(format!("notProtocol: {p}"));
                }
                if protocol == Some("ICMP")
                    && let Some(i) = icmp
                {
                    parts.push(format!("{}: {i}", if use_not_icmp { "notICMP" } else { "icmp" }));
                }
                if let Some((methods, path)) = http
                    && ingress
                    && action == "Allow"
                    && matches!(protocol, None | Some("TCP"))
                {
                    parts.push(format!("http: {{methods: {methods}, paths: [{{{path}}}]}}"));
                }
                format!("{{{}}}", parts.join(", "))
            })
        })
}

/// A rule of the shape the rule index keys (issue 21): a source (ingress) or destination
/// (egress) selector, mostly `serviceAccounts` names, with the criteria that ride along
/// (ports, protocol, HTTP, a not-selector or nets), any action.
fn keyed_rule(ingress: bool) -> impl Strategy<Value = String> {
    (
        pick(&["Allow", "Allow", "Allow", "Deny", "Pass", "Log"]),
        pick(&[
            "serviceAccounts: {names: [sa1]}",
            "serviceAccounts: {names: [sa2]}",
            "serviceAccounts: {names: [default]}",
            "serviceAccounts: {names: [sa1, sa2]}",
            "serviceAccounts: {names: [sa2]}, namespaceSelector: all()",
            "serviceAccounts: {names: [default]}, namespaceSelector: \"projectcalico.org/name == 'ns2'\"",
            "serviceAccounts: {selector: \"app == 'a'\"}",
            "selector: \"app == 'a'\"",
            "selector: \"app == 'b'\"",
            "selector: \"team == 'x' || env == 'p'\"",
            "selector: \"app == 'c'\", namespaceSelector: global()",
            "selector: \"has(team)\", notSelector: \"env == 'q'\"",
            "selector: \"app in {'a', 'c'}\", nets: [10.0.0.0/29]",
        ]),
        prop::option::weighted(0.5, pick(&["80", "53", "http", "'50:90'"])),
        prop::option::weighted(0.3, pick(&["[GET]", "[POST, GET]"])),
    )
        .prop_map(move |(action, peer, port, http)| {
            let mut parts = vec![format!("action: {action}")];
            let ports = port.map(|p| format!("ports: [{p}]"));
            let (src, dst) = if ingress {
                (peer.to_string(), ports.clone().unwrap_or_default())
            } else {
                (
                    String::new(),
                    [Some(peer.to_string()), ports.clone()].into_iter().flatten().collect::<Vec<_>>().join(", "),
                )
            };
            parts.push(format!("source: {{{src}}}"));
            parts.push(format!("destination: {{{dst}}}"));
            if ports.is_some() {
                parts.push(format!("protocol: {}", if port == Some("53") { "UDP" } else { "TCP" }));
            }
            if let Some(m) = http
                && ingress
                && action == "Allow"
                && port != Some("53")
            {
                parts.push(format!("http: {{methods: {m}, paths: [{{prefix: /api}}]}}"));
            }
            format!("{{{}}}", parts.join(", "))
        })
}

/// Rules of a policy: a few of any shape, or (one in three) many, mostly of the keyed shape,
/// mixed with the others (nets, not-selectors, `Log`, `Pass`), so that indexed segments decide.
fn rule_list(ingress: bool, few: std::ops::Range<usize>) -> BoxedStrategy<Vec<String>> {
    let mixed = prop::collection::vec(prop_oneof![3 => keyed_rule(ingress).boxed(), 1 => rule(ingress).boxed()], 6..24);
    prop_oneof![2 => prop::collection::vec(rule(ingress), few), 1 => mixed].boxed()
}

fn policies() -> impl Strategy<Value = String> {
    let policy = (
        pick(&["GlobalNetworkPolicy", "NetworkPolicy", "StagedGlobalNetworkPolicy", "StagedNetworkPolicy"]),
        pick(&["p1", "p2", "p3"]),
        pick(&NAMESPACES),
        pick(&["default", "t1", "t2"]),
        pick(&[None, Some(1), Some(2)]),
        pick(&SELECTORS),
        prop::option::weighted(0.2, pick(&NS_SELECTORS)),
        rule_list(true, 1..4),
        rule_list(false, 0..3),
        pick(&["", "types: [Ingress]", "types: [Egress]", "types: [Ingress, Egress]"]),
        prop::sample::select(&[false, false, false, true][..]),
    );
    prop::collection::vec(policy, 1..8).prop_map(|ps| {
        let mut out = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for (kind, name, ns, tier, order, sel, ns_sel, ingress, egress, types, delete) in ps {
            let namespaced = kind.ends_with("NetworkPolicy") && !kind.contains("Global");
            let key = (kind, name, if namespaced { ns } else { "" });
            if !seen.insert(key) {
                continue;
            }
            let meta = if namespaced { format!("{{name: {name}, namespace: {ns}}}") } else { format!("{{name: {name}}}") };
            if kind.starts_with("Staged") && delete {
                out.push_str(&format!(
                    "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {meta}\nspec: {{tier: {tier}, stagedAction: Delete}}\n---\n"
                ));
                continue;
            }
            let mut spec = vec![format!("tier: {tier}"), format!("selector: \"{sel}\"")];
            if let Some(o) = order {
                spec.push(format!("order: {o}"));
            }
            if let Some(s) = ns_sel
                && !namespaced
                && s != "global()"
            {
                spec.push(format!("namespaceSelector: \"{s}\""));
            }
            if !types.is_empty() {
                spec.push(types.to_string());
            }
            spec.push(format!("ingress: [{}]", ingress.join(", ")));
            spec.push(format!("egress: [{}]", egress.join(", ")));
            out.push_str(&format!(
                "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {meta}\nspec: {{{}}}\n---\n",
                spec.join(", ")
            ));
        }
        out
    })
}

fn k8s_policies() -> impl Strategy<Value = String> {
    let peer = prop_oneof![
        pick(&["{podSelector: {matchLabels: {app: a}}}", "{podSelector: {}}", "{namespaceSelector: {}}"]).prop_map(String::from),
        pick(&["{namespaceSelector: {matchLabels: {team: x}}, podSelector: {matchExpressions: [{key: app, operator: In, values: [a, b]}]}}"]).prop_map(String::from),
        pick(&["{ipBlock: {cidr: 10.0.0.0/29, except: [10.0.0.2/32]}}", "{ipBlock: {cidr: 192.0.2.0/24}}"]).prop_map(String::from),
    ];
    let port = pick(&[
        "{port: 80}",
        "{port: 53, protocol: UDP}",
        "{port: http}",
        "{protocol: UDP}",
        "{port: 50, endPort: 90}",
    ]);
    let rule = (prop::collection::vec(peer, 0..3), prop::collection::vec(port, 0..3))
        .prop_map(|(peers, ports)| format!("{{from: [{}], ports: [{}]}}", peers.join(", "), ports.join(", ")));
    let policy = (
        pick(&["p1", "p2"]),
        pick(&NAMESPACES),
        pick(&["{}", "{matchLabels: {app: a}}", "{matchExpressions: [{key: team, operator: Exists}]}"]),
        pick(&["", "policyTypes: [Ingress]", "policyTypes: [Egress]", "policyTypes: [Ingress, Egress]"]),
        prop::collection::vec(rule, 0..3),
        any::<bool>(),
    );
    prop::collection::vec(policy, 0..3).prop_map(|ps| {
        let mut out = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for (name, ns, sel, types, rules, egress_too) in ps {
            if !seen.insert((name, ns)) {
                continue;
            }
            let egress = if egress_too { format!(", egress: [{}]", rules.join(", ").replace("from:", "to:")) } else { String::new() };
            out.push_str(&format!(
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{podSelector: {sel}, {}ingress: [{}]{egress}}}\n---\n",
                if types.is_empty() { String::new() } else { format!("{types}, ") },
                rules.join(", ")
            ));
        }
        out
    })
}

fn istio_policies() -> impl Strategy<Value = String> {
    let source = pick(&[
        "{principals: ['cluster.local/ns/ns1/sa/sa1']}",
        "{principals: ['cluster.local/ns/ns1/sa/sa1']}",
        "{principals: ['cluster.local/ns/ns2/sa/default', 'cluster.local/ns/ns1/sa/sa1']}",
        "{principals: ['cluster.local/ns/ns2/sa/default']}",
        "{principals: ['cluster.local/ns/ns2/*']}",
        "{principals: ['old.td/ns/ns1/sa/sa1']}",
        "{notPrincipals: ['*']}",
        "{namespaces: [ns1]}",
        "{notNamespaces: ['ns*']}",
        "{serviceAccounts: [ns2/default, sa1]}",
        "{ipBlocks: [10.0.0.0/30]}",
        "{remoteIpBlocks: [192.0.2.0/24]}",
        "{requestPrincipals: ['*']}",
        "{trustDomains: [cluster.local]}",
    ]);
    let operation = pick(&[
        "{methods: [GET]}",
        "{notMethods: [POST]}",
        "{paths: ['/api*']}",
        "{paths: ['/api/{*}']}",
        "{notPaths: [/admin]}",
        "{ports: ['80']}",
        "{notPorts: ['53']}",
        "{hosts: ['*.example']}",
    ]);
    let when = pick(&[
        "{key: 'request.headers[x-a]', values: [b]}",
        "{key: source.ip, notValues: [10.0.0.4/31]}",
        "{key: destination.port, values: ['80', '443']}",
        "{key: source.namespace, values: [ns1]}",
        "{key: connection.sni, values: ['*']}",
    ]);
    let rule = (
        prop::collection::vec(source, 0..2),
        prop::collection::vec(operation, 0..2),
        prop::collection::vec(when, 0..2),
    )
        .prop_map(|(f, t, w)| {
            let f: Vec<String> = f.iter().map(|s| format!("{{source: {s}}}")).collect();
            let t: Vec<String> = t.iter().map(|o| format!("{{operation: {o}}}")).collect();
            format!("{{from: [{}], to: [{}], when: [{}]}}", f.join(", "), t.join(", "), w.join(", "))
        });
    let policy = (
        pick(&["i1", "i2"]),
        pick(&["ns1", "ns2", "istio-system"]),
        pick(&["ALLOW", "ALLOW", "DENY", "AUDIT"]),
        pick(&["", "selector: {matchLabels: {app: a}}, "]),
        prop::option::weighted(0.9, prop::collection::vec(rule, 0..3)),
        prop::sample::select(&[false, false, false, true][..]),
    );
    prop::collection::vec(policy, 0..3).prop_map(|ps| {
        let mut out = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for (name, ns, action, sel, rules, dry_run) in ps {
            if !seen.insert((name, ns)) {
                continue;
            }
            let rules = rules.map(|r| format!(", rules: [{}]", r.join(", "))).unwrap_or_default();
            // Istio dry-run (SPEC 9.2): staged, for ALLOW and DENY only.
            let dry = if dry_run && action != "AUDIT" { ", annotations: {istio.io/dry-run: 'true'}" } else { "" };
            out.push_str(&format!(
                "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: {ns}{dry}}}\nspec: {{{sel}action: {action}{rules}}}\n---\n"
            ));
        }
        out
    })
}

/// PeerAuthentications (SPEC 9.2): mesh, namespace and workload levels, with port modes.
fn peer_authentications() -> impl Strategy<Value = String> {
    let mode = || pick(&["STRICT", "STRICT", "PERMISSIVE", "DISABLE", "UNSET"]);
    (
        prop::option::weighted(0.3, mode()),
        prop::option::weighted(0.3, (pick(&NAMESPACES), mode())),
        prop::option::weighted(0.3, (pick(&NAMESPACES), mode(), prop::option::of((pick(&[80u16, 53, 9090]), mode())))),
    )
        .prop_map(|(mesh, ns, workload)| {
            let pa = |ns: &str, name: &str, spec: String| {
                format!("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n---\n")
            };
            let mut out = String::new();
            if let Some(m) = mesh {
                out.push_str(&pa("istio-system", "default", format!("{{mtls: {{mode: {m}}}}}")));
            }
            if let Some((n, m)) = ns {
                out.push_str(&pa(n, "ns-wide", format!("{{mtls: {{mode: {m}}}}}")));
            }
            if let Some((n, m, port)) = workload {
                let ports = port.map(|(p, pm)| format!(", portLevelMtls: {{{p}: {{mode: {pm}}}}}")).unwrap_or_default();
                out.push_str(&pa(n, "app-a", format!("{{selector: {{matchLabels: {{app: a}}}}, mtls: {{mode: {m}}}{ports}}}")));
            }
            out
        })
}

/// ClusterNetworkPolicies (SPEC 9.2), admin and baseline, converted to Calico rules.
fn cluster_network_policies() -> impl Strategy<Value = String> {
    let rule = (
        pick(&["Accept", "Deny", "Pass"]),
        pick(&[
            "{namespaces: {matchLabels: {team: x}}}",
            "{namespaces: {}}",
            "{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}",
        ]),
        prop::option::of(pick(&[
            "[{tcp: {destinationPort: {number: 80}}}]",
            "[{udp: {}}]",
            "[{destinationNamedPort: http}]",
        ])),
    )
        .prop_map(|(action, peer, protocols)| {
            let protocols = protocols.map(|p| format!(", protocols: {p}")).unwrap_or_default();
            format!("{{action: {action}, from: [{peer}]{protocols}}}")
        });
    let policy = (
        pick(&["Admin", "Baseline"]),
        pick(&[1u16, 2]),
        pick(&["{namespaces: {}}", "{pods: {namespaceSelector: {matchLabels: {team: x}}, podSelector: {}}}"]),
        prop::collection::vec(rule, 1..3),
    );
    prop::collection::vec(policy, 0..3).prop_map(|ps| {
        let mut out = String::new();
        for (i, (tier, priority, subject, rules)) in ps.into_iter().enumerate() {
            out.push_str(&format!(
                "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {{name: c{i}}}\n\
                 spec: {{tier: {tier}, priority: {priority}, subject: {subject}, ingress: [{}]}}\n---\n",
                rules.join(", ")
            ));
        }
        out
    })
}

fn tiers() -> impl Strategy<Value = String> {
    (pick(&[None, Some(10), Some(20)]), pick(&["Deny", "Pass"]), pick(&[None, Some(10), Some(2_000_000)]), pick(&["Deny", "Pass"]))
        .prop_map(|(o1, a1, o2, a2)| {
            let t = |name: &str, o: Option<i32>, a: &str| {
                let o = o.map(|o| format!("order: {o}, ")).unwrap_or_default();
                format!("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}}}\nspec: {{{o}defaultAction: {a}}}\n---\n")
            };
            format!("{}{}", t("t1", o1, a1), t("t2", o2, a2))
        })
}

fn request() -> impl Strategy<Value = String> {
    let ip = || prop_oneof![19 => pick(&IPS), 1 => pick(&IPS_V6)];
    (
        ip(),
        ip(),
        pick(&["TCP", "TCP", "UDP", "ICMP"]),
        prop::option::of(pick(&[80u16, 53, 8080, 40000])),
        prop::option::of(pick(&[80u16, 53, 9090])),
        (0..14usize, 0..28usize),
        prop::option::weighted(0.5, (pick(&["GET", "POST", "DELETE"]), pick(&PATHS))),
        pick(&["both", "both", "ingress", "egress"]),
        prop::option::of(pick(&["{\"type\": 8}", "{\"type\": 8, \"code\": 0}", "{\"type\": 0, \"code\": 3}"])),
    )
        .prop_map(|(src, dst, protocol, sport, dport, (sp, dp), http, direction, icmp)| {
            let principal = |which: usize| -> String {
                let p = match which {
                    0..=4 => return String::new(),
                    // Replaced by the owning workload's identity in the test body.
                    5..=8 => "OWN".to_string(),
                    9 => "spiffe://cluster.local/ns/ns1/sa/sa1".to_string(),
                    10 => "spiffe://other.example/ns/ns1/sa/sa1".to_string(),
                    11 => "spiffe://cluster.local/ns/ns1/sa/sa1/".to_string(),
                    // A trust-domain alias of cluster.local when the run configures it.
                    12 => "spiffe://old.td/ns/ns1/sa/sa1".to_string(),
                    // Istio's form, without the scheme: invalid in a request.
                    _ => "cluster.local/ns/ns1/sa/sa1".to_string(),
                };
                format!(r#", "principal": "{p}""#)
            };
            let sport = sport.map(|p| format!(r#", "port": {p}"#)).unwrap_or_default();
            let dport = match (protocol, dport) {
                ("ICMP", _) => String::new(),
                (_, Some(p)) => format!(r#", "port": {p}"#),
                (_, None) => r#", "port": 443"#.to_string(),
            };
            let mut s = format!(
                r#"{{"direction": "{direction}", "protocol": "{protocol}", "source": {{"ip": "{src}"{sport}{}{}}}, "destination": {{"ip": "{dst}"{dport}{}}}"#,
                if sp == 11 { r#", "remote_ip": "192.0.2.77""# } else { "" },
                principal(sp),
                if dp >= 14 { principal(dp - 14) } else { String::new() }
            );
            if let Some((m, p)) = http
                && protocol == "TCP"
            {
                let extra = match sp % 4 {
                    0 => r#", "host": "Api.EXAMPLE", "headers": {"X-A": "b"}"#,
                    1 => r#", "host": "other.test""#,
                    _ => "",
                };
                s.push_str(&format!(r#", "http": {{"method": "{m}", "path": "{p}"{extra}}}"#));
                if dp % 3 == 0 {
                    s.push_str(r#", "auth": {"principal": "https://issuer/x"}, "sni": "a.svc""#);
                }
            }
            if protocol == "ICMP"
                && let Some(i) = icmp
            {
                s.push_str(&format!(r#", "icmp": {i}"#));
            }
            s.push('}');
            s
        })
}

#[derive(Default, Debug)]
struct Coverage {
    counts: BTreeMap<&'static str, u64>,
    bundles_loaded: u64,
    bundles_rejected: u64,
}

impl Coverage {
    fn hit(&mut self, k: &'static str) {
        *self.counts.entry(k).or_default() += 1;
    }
}

#[test]
fn compiled_equals_reference() {
    let cases: u32 = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let mut runner = TestRunner::new(PtConfig { cases, failure_persistence: None, ..PtConfig::default() });
    let strategy = (
        inventory(),
        pods(),
        tiers(),
        (policies(), k8s_policies(), istio_policies(), peer_authentications(), cluster_network_policies()),
        prop::collection::vec(request(), 24),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    let coverage = std::cell::RefCell::new(Coverage::default());
    let result = runner.run(&strategy, |(inv, pods, tiers, pols, requests, require, deny_default, alias)| {
        let (pols, knps, iaps, pas, cnps) = pols;
        let bundle = format!("{inv}{pods}{tiers}{pols}{knps}{iaps}{pas}{cnps}");
        let cfg = Config {
            require_peer_identity: require && deny_default,
            no_policy_action: if deny_default && !require { Action::Deny } else { Action::Allow },
            trust_domain_aliases: if alias { vec!["old.td".into()] } else { Vec::new() },
            ..Config::default()
        };
        let strict_from_peer_auth = !cfg.require_peer_identity;
        let engine = Engine::new(cfg);
        if let Err(e) = engine.load_str(&bundle) {
            coverage.borrow_mut().bundles_rejected += 1;
            // Generated bundles are meant to be valid; a rejection is a generator bug unless
            // it is one of the deliberate validation cases.
            return Err(TestCaseError::fail(format!("generated bundle rejected: {e}\n{bundle}")));
        }
        let snap = engine.snapshot().unwrap();
        let mut cov = coverage.borrow_mut();
        cov.bundles_loaded += 1;
        let indexed = snap.indexed_segments() > 0;
        let keyed = snap.keyed_rules();
        let identity_keyed = keyed[1] + keyed[2] > 0;
        if identity_keyed {
            cov.hit("bundle:identity-keyed");
        }
        for template in &requests {
            // "OWN": the identity of the workload owning that end's IP (none for an IP no
            // workload owns).
            let mut v: serde_json::Value = serde_json::from_str(template).unwrap();
            for end in ["source", "destination"] {
                if v[end]["principal"] == "OWN" {
                    let ip: std::net::IpAddr = v[end]["ip"].as_str().unwrap().parse().unwrap();
                    match snap.bundle().endpoint_by_ip(ip) {
                        Some(e) => v[end]["principal"] = e.identity.clone().into(),
                        None => {
                            if let Some(m) = v[end].as_object_mut() {
                                m.remove("principal");
                            }
                        }
                    }
                }
            }
            let text = &v.to_string();
            let owned = OwnedRequest::from_json(text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
            let req = owned.as_request();
            let (fast, fast_trace) = snap.decide_traced(&req);
            let (reference, reference_trace) = snap.decide_reference_traced(&req);
            let plain = snap.decide(&req);
            prop_assert_eq!(fast, reference, "decision differs\nrequest: {}\nbundle:\n{}", text, bundle);
            prop_assert_eq!(plain, fast, "tracing changed the decision");
            prop_assert_eq!(&fast_trace, &reference_trace, "trace differs\nrequest: {}\nbundle:\n{}", text, bundle);
            // The same request typed directly (as the C API and the Envoy filter build it),
            // with an IPv4 source in its IPv4-mapped IPv6 form: both evaluators fold it.
            if let std::net::IpAddr::V4(v4) = req.source.ip {
                let mut mapped = req;
                mapped.source.ip = std::net::IpAddr::V6(v4.to_ipv6_mapped());
                prop_assert_eq!(snap.decide(&mapped), snap.decide_reference(&mapped), "mapped source\n{}", text);
            }
            cov.hit(fast.reason.as_str());
            if fast.reason == Reason::MissingPeerIdentity && strict_from_peer_auth {
                cov.hit("missing:peer-authentication");
            }
            if fast.staged.is_some() && bundle.contains("istio.io/dry-run") {
                cov.hit("staged:with-dry-run");
            }
            match fast.detail {
                Some(d) if d.contains("%2F or %5C") => cov.hit("invalid:encoded-separator"),
                Some(d) if d.contains("different families") => cov.hit("invalid:mixed-families"),
                Some(d) if d.contains("lacks the spiffe:// scheme") => cov.hit("invalid:istio-form-principal"),
                _ => {}
            }
            cov.hit(fast.action.as_str());
            match fast.side {
                Some(Side::Ingress) => cov.hit("side:ingress"),
                Some(Side::Egress) => cov.hit("side:egress"),
                None => cov.hit("side:none"),
            }
            if fast.l7_pending {
                cov.hit("l7_pending");
            }
            if let Some(p) = fast.policy.and_then(|p| snap.bundle().policy(p)) {
                cov.hit(match p.kind {
                    palisade::model::PolicyKind::KubernetesNetworkPolicy => "policy:knp",
                    palisade::model::PolicyKind::AuthorizationPolicy => "policy:iap",
                    palisade::model::PolicyKind::ClusterNetworkPolicy => "policy:cnp",
                    _ => "policy:calico",
                });
                if indexed && p.kind == palisade::model::PolicyKind::AuthorizationPolicy {
                    cov.hit("policy:iap-indexed");
                }
                // A Calico rule with a selector on its end decided: with every selector under
                // the index's cap, it was found by a source or destination identity lookup.
                let rule = fast
                    .side
                    .zip(fast.rule)
                    .and_then(|(side, r)| p.rules(side).and_then(|rules| rules.get(usize::try_from(r).ok()?)));
                if identity_keyed
                    && let Some(palisade::model::Rule { matcher: palisade::model::RuleMatch::Calico(c), .. }) = rule
                    && (c.source.selector.is_some() || c.destination.selector.is_some())
                {
                    cov.hit("policy:calico-identity-indexed");
                }
            }
            match fast.staged {
                Some(Action::Allow) => cov.hit("staged:allow"),
                Some(Action::Deny) => cov.hit("staged:deny"),
                None => {}
            }
            for h in fast_trace.ingress.iter().chain(fast_trace.egress.iter()).flatten() {
                match (h.action, h.rule, h.source) {
                    (HitAction::Pass, -1, _) => cov.hit("hit:pass-end-of-tier"),
                    (HitAction::Pass, _, _) => cov.hit("hit:pass-rule"),
                    (HitAction::Log, _, _) => cov.hit("hit:log"),
                    (_, _, HitSource::Profile { .. }) => cov.hit("hit:profile"),
                    _ => {}
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let cov = coverage.into_inner();
    println!("differential coverage over {} bundles: {:#?}", cov.bundles_loaded, cov.counts);
    let required = [
        Reason::Rule.as_str(),
        Reason::EndOfTier.as_str(),
        Reason::NoPolicy.as_str(),
        Reason::IdentityMismatch.as_str(),
        Reason::MissingPeerIdentity.as_str(),
        Reason::InvalidRequest.as_str(),
        "allow",
        "deny",
        "side:ingress",
        "side:egress",
        "side:none",
        "l7_pending",
        "staged:allow",
        "staged:deny",
        "hit:pass-end-of-tier",
        "hit:pass-rule",
        "hit:log",
        "hit:profile",
        "policy:knp",
        "policy:iap",
        "policy:iap-indexed",
        "policy:calico-identity-indexed",
        "bundle:identity-keyed",
        "policy:calico",
        "policy:cnp",
        "missing:peer-authentication",
        "staged:with-dry-run",
        "invalid:encoded-separator",
        "invalid:mixed-families",
        "invalid:istio-form-principal",
    ];
    if cases >= 200 {
        for k in required {
            assert!(cov.counts.get(k).copied().unwrap_or(0) > 0, "outcome {k} was never produced: {:#?}", cov.counts);
        }
    }
}
