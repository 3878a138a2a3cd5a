//! Whole clusters as they are (SPEC 9.2, first half): PeerAuthentication, RequestAuthentication,
//! Istio dry-run, trust-domain aliases, StagedKubernetesNetworkPolicy and HostEndpoint. Every
//! decision goes through both evaluators (`common::decide` checks they agree).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use palisade::{Config, LoadErrorKind};
use serde_json::{Value, json};

/// foo/b (the server, 10.0.0.2, labels app: b), foo/a (10.0.0.1), bar/d (10.0.1.1).
fn inventory() -> String {
    [
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: foo}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bar}\n---\n"
            .to_string(),
        pod("foo", "b", "10.0.0.2", "b", "app: b"),
        pod("foo", "a", "10.0.0.1", "a", "app: a"),
        pod("bar", "d", "10.0.1.1", "d", "app: d"),
    ]
    .concat()
}

fn pa(ns: &str, name: &str, extra_meta: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: {name}, namespace: {ns}{extra_meta}}}\nspec: {spec}\n---\n"
    )
}

fn ap(ns: &str, name: &str, meta: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: {ns}{meta}}}\nspec: {spec}\n---\n"
    )
}

fn req(src: &str, principal: Option<&str>, dst: &str, port: u16) -> String {
    let mut source = json!({"ip": src});
    if let Some(p) = principal {
        source["principal"] = p.into();
    }
    json!({"source": source, "destination": {"ip": dst, "port": port}}).to_string()
}

fn reason(e: &palisade::Engine, r: &str) -> String {
    let d = decide(e, r);
    format!("{} {}", d["action"].as_str().unwrap(), d["reason"].as_str().unwrap())
}

const A: &str = "spiffe://cluster.local/ns/foo/sa/a";

fn rejected(text: &str) -> palisade::LoadError {
    match palisade::load::load(&[palisade::load::Source { name: "b.yaml", text }], &Config::default()) {
        Ok(_) => panic!("should be rejected:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn mesh_strict_denies_plaintext_from_any_source() {
    let e = engine(&format!("{}{}", inventory(), pa("istio-system", "default", "", "{mtls: {mode: STRICT}}")));
    // An external IP, a known workload without its certificate: both refused before policy.
    for src in ["203.0.113.7", "10.0.0.1"] {
        let d = decide(&e, &req(src, None, "10.0.0.2", 8080));
        assert_eq!(d["reason"], "missing_peer_identity", "{src}: {d}");
        assert_eq!(d["peer"], "source", "{d}");
    }
    // With the certificate, the request goes on to policy (none here: allowed).
    assert_eq!(reason(&e, &req("10.0.0.1", Some(A), "10.0.0.2", 8080)), "allow no_policy");
    // Egress only: the destination's ingress side is not evaluated, STRICT does not apply.
    let egress =
        json!({"direction": "egress", "source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 8080}});
    assert_eq!(reason(&e, &egress.to_string()), "allow no_policy");
    // An unknown destination has no sidecar: no PeerAuthentication applies.
    assert_eq!(reason(&e, &req("10.0.0.1", None, "198.51.100.1", 443)), "allow no_policy");
}

#[test]
fn namespace_and_workload_levels_override_the_mesh() {
    let bundle = format!(
        "{}{}{}{}",
        inventory(),
        pa("istio-system", "default", "", "{mtls: {mode: STRICT}}"),
        pa("bar", "relaxed", "", "{mtls: {mode: PERMISSIVE}}"),
        pa(
            "foo",
            "b-ports",
            "",
            "{selector: {matchLabels: {app: b}}, mtls: {mode: UNSET}, portLevelMtls: {8080: {mode: PERMISSIVE}, 9000: {mode: UNSET}}}"
        ),
    );
    let e = engine(&bundle);
    // bar is PERMISSIVE at namespace level.
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.1.1", 80)), "allow no_policy");
    // foo/b: the workload policy's mode is UNSET (inherits STRICT); port 8080 is PERMISSIVE,
    // port 9000 is UNSET (takes the workload's STRICT), other ports STRICT.
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 8080)), "allow no_policy");
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 9000)), "deny missing_peer_identity");
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 443)), "deny missing_peer_identity");
    // foo/a is not selected by b-ports: mesh STRICT.
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.1", 8080)), "deny missing_peer_identity");
}

#[test]
fn one_policy_per_level_the_oldest_wins() {
    let old = ", creationTimestamp: '2024-01-01T00:00:00Z'";
    let new = ", creationTimestamp: '2025-06-01T00:00:00Z'";
    let e = engine(&format!(
        "{}{}{}",
        inventory(),
        pa("foo", "z-strict", old, "{mtls: {mode: STRICT}}"),
        pa("foo", "a-permissive", new, "{mtls: {mode: PERMISSIVE}}")
    ));
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 80)), "deny missing_peer_identity");
    // Without creation times, the name decides.
    let e = engine(&format!(
        "{}{}{}",
        inventory(),
        pa("foo", "z-strict", "", "{mtls: {mode: STRICT}}"),
        pa("foo", "a-permissive", "", "{mtls: {mode: PERMISSIVE}}")
    ));
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 80)), "allow no_policy");
    // A selector policy in the root namespace is ignored (Istio ignores it for every workload).
    let e = engine(&format!(
        "{}{}",
        inventory(),
        pa("istio-system", "sel", "", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}}")
    ));
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 80)), "allow no_policy");
}

#[test]
fn require_peer_identity_stays_the_mesh_wide_override() {
    let config = Config { require_peer_identity: true, ..Config::default() };
    let e = engine_with(&format!("{}{}", inventory(), pa("foo", "off", "", "{mtls: {mode: DISABLE}}")), config);
    // A known source workload without a principal is refused even where the namespace says DISABLE.
    assert_eq!(reason(&e, &req("10.0.1.1", None, "10.0.0.2", 80)), "deny missing_peer_identity");
    // The global switch keeps its scope: an unknown source is not refused by it.
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 80)), "allow no_policy");
}

#[test]
fn peer_authentication_is_validated_as_istio_does() {
    for (spec, meta, field) in [
        ("{mtls: {mode: STRICT}, portLevelMtls: {80: {mode: DISABLE}}}", "", "spec.portLevelMtls"),
        ("{selector: {matchLabels: {app: b}}, portLevelMtls: {}}", "", "spec.portLevelMtls"),
        ("{selector: {matchLabels: {app: b}}, portLevelMtls: {0: {mode: STRICT}}}", "", "spec.portLevelMtls.0"),
        ("{mtls: {mode: strict}}", "", "spec.mtls.mode"),
        ("{selector: {matchLabels: {'app*': b}}}", "", "spec.selector.matchLabels.app*"),
        (
            "{mtls: {mode: STRICT}}",
            ", annotations: {istio.io/dry-run: 'true'}",
            "metadata.annotations.istio.io/dry-run",
        ),
    ] {
        let e = rejected(&format!("{}{}", inventory(), pa("foo", "p", meta, spec)));
        assert_eq!(e.kind, LoadErrorKind::Invalid, "{spec}: {e}");
        assert_eq!(e.field.as_deref(), Some(field), "{spec}: {e}");
        assert_eq!(e.object.as_deref(), Some("PeerAuthentication foo/p"), "{e}");
    }
    // v1beta1 is read too.
    let text = format!("{}{}", inventory(), pa("foo", "p", "", "{mtls: {mode: STRICT}}"))
        .replace("security.istio.io/v1\n", "security.istio.io/v1beta1\n");
    let e = engine(&text);
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 80)), "deny missing_peer_identity");
}

#[test]
fn request_authentication_is_read_validated_and_changes_nothing() {
    let ra = |spec: &str| {
        format!(
            "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: jwt, namespace: foo}}\nspec: {spec}\n---\n"
        )
    };
    let good = ra(
        "{selector: {matchLabels: {app: b}}, jwtRules: [{issuer: 'https://issuer.example', jwksUri: 'https://issuer.example/jwks', fromHeaders: [{name: authorization, prefix: 'Bearer '}], timeout: 5s}]}",
    );
    let e = engine(&format!("{}{good}", inventory()));
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 80)), "allow no_policy");
    let notes = palisade::lint::notes(e.snapshot().unwrap().bundle());
    assert_eq!(notes.iter().filter(|n| n.contains("RequestAuthentication")).count(), 1, "{notes:?}");
    for (spec, field) in [
        ("{jwtRules: [{audiences: [a]}]}", "spec.jwtRules[0]"),
        ("{jwtRules: [{issuer: x, jwksUri: 'ftp://x'}]}", "spec.jwtRules[0].jwksUri"),
        ("{jwtRules: [{issuer: x, jwks: 'not json'}]}", "spec.jwtRules[0].jwks"),
        ("{jwtRules: [{issuer: x, timeout: soon}]}", "spec.jwtRules[0].timeout"),
        ("{selector: {matchLabels: {app: b}}, targetRef: {kind: Gateway, name: g}}", "spec"),
        ("{jwtRules: [{issuer: x, jwksURI: y}]}", "spec.jwtRules[0].jwksURI"),
    ] {
        let err = rejected(&format!("{}{}", inventory(), ra(spec)));
        assert_eq!(err.field.as_deref(), Some(field), "{spec}: {err}");
    }
}

#[test]
fn a_dry_run_policy_is_staged_never_enforced() {
    let deny = ap(
        "foo",
        "block-a",
        ", annotations: {istio.io/dry-run: 'true'}",
        "{action: DENY, rules: [{from: [{source: {principals: [cluster.local/ns/foo/sa/a]}}]}]}",
    );
    let e = engine(&format!("{}{deny}", inventory()));
    let d = decide(&e, &req("10.0.0.1", Some(A), "10.0.0.2", 80));
    assert_eq!(d["action"], "allow", "{d}");
    assert_eq!(d["staged"]["action"], "deny", "{d}");

    // A dry-run ALLOW does not count as "an ALLOW policy selects the workload".
    let allow = ap(
        "foo",
        "only-d",
        ", annotations: {istio.io/dry-run: 'True'}",
        "{rules: [{from: [{source: {namespaces: [bar]}}]}]}",
    );
    let e = engine(&format!("{}{allow}", inventory()));
    let d = decide(&e, &req("10.0.0.1", Some(A), "10.0.0.2", 80));
    assert_eq!(d["action"], "allow", "{d}");
    assert_eq!(d["staged"]["action"], "deny", "{d}");
    // An explicit false is enforced.
    let enforced = allow.replace("'True'", "'false'");
    let e = engine(&format!("{}{enforced}", inventory()));
    assert_eq!(reason(&e, &req("10.0.0.1", Some(A), "10.0.0.2", 80)), "deny end_of_tier");

    for (meta, spec) in [
        (", annotations: {istio.io/dry-run: 'yes'}", "{action: DENY, rules: [{}]}"),
        (", annotations: {istio.io/dry-run: 'true'}", "{action: AUDIT, rules: [{}]}"),
    ] {
        let e = rejected(&format!("{}{}", inventory(), ap("foo", "p", meta, spec)));
        assert_eq!(e.field.as_deref(), Some("metadata.annotations.istio.io/dry-run"), "{e}");
    }
}

#[test]
fn trust_domain_aliases_bind_and_match_as_one_identity() {
    let allow_a = ap(
        "foo",
        "only-a",
        "",
        "{selector: {matchLabels: {app: b}}, rules: [{from: [{source: {principals: [old.example/ns/foo/sa/a]}}]}]}",
    );
    let bundle = format!("{}{allow_a}", inventory());
    let config = Config {
        trust_domain: "new.example".into(),
        trust_domain_aliases: vec!["old.example".into()],
        ..Config::default()
    };
    let e = engine_with(&bundle, config.clone());
    // The old domain's certificate from a's IP binds, and matches the policy written with it.
    assert_eq!(
        reason(&e, &req("10.0.0.1", Some("spiffe://old.example/ns/foo/sa/a"), "10.0.0.2", 80)),
        "allow no_policy"
    );
    // The new domain's certificate matches the policy written with the old domain.
    assert_eq!(
        reason(&e, &req("10.0.0.1", Some("spiffe://new.example/ns/foo/sa/a"), "10.0.0.2", 80)),
        "allow no_policy"
    );
    // An alias does not loosen the binding: a's identity from d's IP is still a mismatch.
    assert_eq!(
        reason(&e, &req("10.0.1.1", Some("spiffe://old.example/ns/foo/sa/a"), "10.0.0.2", 80)),
        "deny identity_mismatch"
    );
    // Without the alias, the old domain is foreign: from a workload IP it is a mismatch.
    let e = engine_with(&bundle, Config { trust_domain_aliases: vec![], ..config });
    assert_eq!(
        reason(&e, &req("10.0.0.1", Some("spiffe://old.example/ns/foo/sa/a"), "10.0.0.2", 80)),
        "deny identity_mismatch"
    );
    // Configuration: aliases are validated.
    assert!(Config::from_yaml("trust_domain_aliases: [Bad_Domain]").is_err());
    assert!(Config::from_yaml("trust_domain: a.b\ntrust_domain_aliases: [a.b]").is_err());
    assert_eq!(Config::from_yaml("trust_domain_aliases: [old.td]").unwrap().trust_domain_aliases, ["old.td"]);
}

#[test]
fn staged_kubernetes_network_policy_shows_in_staged_only() {
    let sknp = "apiVersion: projectcalico.org/v3\nkind: StagedKubernetesNetworkPolicy\nmetadata: {name: lock, namespace: foo}\n\
                spec: {stagedAction: Set, podSelector: {matchLabels: {app: b}}, policyTypes: [Ingress]}\n---\n";
    let e = engine(&format!("{}{sknp}", inventory()));
    let d = decide(&e, &req("10.0.0.1", None, "10.0.0.2", 80));
    assert_eq!(d["action"], "allow", "{d}");
    assert_eq!(d["staged"]["action"], "deny", "{d}");
    let del = "apiVersion: projectcalico.org/v3\nkind: StagedKubernetesNetworkPolicy\nmetadata: {name: lock, namespace: foo}\n\
               spec: {stagedAction: Delete, podSelector: {}}\n";
    let err = rejected(&format!("{}{del}", inventory()));
    assert_eq!(err.field.as_deref(), Some("spec"), "{err}");
}

fn hep(labels: &str, spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {{name: node1-eth0, labels: {{{labels}}}}}\nspec: {spec}\n---\n"
    )
}

#[test]
fn host_endpoints_are_labelled_ip_sets_and_host_policy_stays_out() {
    let gnp = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: from-bastion}\n\
               spec: {selector: \"app == 'b'\", types: [Ingress], ingress: [{action: Allow, source: {selector: \"role == 'bastion'\"}}]}\n---\n\
               apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: host-untracked}\n\
               spec: {selector: all(), doNotTrack: true, applyOnForward: true, types: [Ingress], ingress: [{action: Deny}]}\n---\n";
    let e = engine(&format!(
        "{}{}{gnp}",
        inventory(),
        hep("role: bastion", "{node: node1, interfaceName: eth0, expectedIPs: [192.168.0.10]}")
    ));
    assert_eq!(reason(&e, &req("192.168.0.10", None, "10.0.0.2", 22)), "allow rule");
    assert_eq!(reason(&e, &req("192.168.0.11", None, "10.0.0.2", 22)), "deny end_of_tier");
    // The doNotTrack Deny-all never entered the workload's walk; lint says so.
    let notes = palisade::lint::notes(e.snapshot().unwrap().bundle());
    assert!(notes.iter().any(|n| n.contains("gnp:host-untracked") && n.contains("host endpoints")), "{notes:?}");
    // Host endpoints are never an evaluated side: a request from one has only the ingress side.
    let d: Value = decide(&e, &req("192.168.0.10", None, "10.0.0.2", 22));
    assert!(d["trace"]["egress"].is_null() || d["trace"]["egress"].as_array().is_none_or(|a| a.is_empty()), "{d}");

    for (labels, spec, field) in [
        (
            "projectcalico.org/namespace: foo",
            "{node: n, expectedIPs: [192.168.0.10]}",
            "metadata.labels.projectcalico.org/namespace",
        ),
        ("a: b", "{expectedIPs: [192.168.0.10]}", "spec.node"),
        ("a: b", "{node: n}", "spec"),
        ("a: b", "{node: n, expectedIPs: [192.168.0.0/24]}", "spec.expectedIPs[0]"),
    ] {
        let err = rejected(&format!("{}{}", inventory(), hep(labels, spec)));
        assert_eq!(err.field.as_deref(), Some(field), "{spec}: {err}");
    }
    for (spec, field) in [
        ("{selector: all(), preDNAT: true, doNotTrack: true, applyOnForward: true}", "spec.preDNAT"),
        ("{selector: all(), preDNAT: true}", "spec.applyOnForward"),
        ("{selector: all(), preDNAT: true, applyOnForward: true, egress: [{action: Allow}]}", "spec.preDNAT"),
    ] {
        let err = rejected(&format!(
            "{}apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: h}}\nspec: {spec}\n",
            inventory()
        ));
        assert_eq!(err.field.as_deref(), Some(field), "{spec}: {err}");
    }
}

/// Istio's layer is a sidecar's (found on the cluster example): it sees TCP only, and only
/// workloads that run a sidecar; a dump shows which do.
#[test]
fn istio_objects_apply_to_sidecar_workloads_and_tcp_only() {
    let mesh = format!(
        "{}{}",
        pa("istio-system", "default", "", "{mtls: {mode: STRICT}}"),
        ap("istio-system", "deny-debug", "", "{action: DENY, rules: [{to: [{operation: {paths: ['/debug/*']}}]}]}")
    );
    let e = engine(&format!("{}{mesh}", inventory()));
    let udp =
        json!({"protocol": "UDP", "source": {"ip": "203.0.113.7"}, "destination": {"ip": "10.0.0.2", "port": 53}});
    assert_eq!(reason(&e, &udp.to_string()), "allow no_policy");
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 53)), "deny missing_peer_identity");

    // A dump that shows injection: b has an istio-proxy container, coredns none.
    let dump = "apiVersion: v1\nkind: Namespace\nmetadata: {name: foo}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: foo, labels: {app: b}}\n\
                spec: {serviceAccountName: b, containers: [{name: app}, {name: istio-proxy}]}\nstatus: {podIP: 10.0.0.2}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}\n\
                spec: {serviceAccountName: coredns, containers: [{name: coredns}]}\nstatus: {podIP: 10.0.0.3}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: out, namespace: foo, labels: {app: b, sidecar.istio.io/inject: 'false'}}\n\
                spec: {serviceAccountName: b, containers: [{name: app}]}\nstatus: {podIP: 10.0.0.4}\n---\n";
    let e = engine(&format!("{dump}{mesh}"));
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.2", 8080)), "deny missing_peer_identity");
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.3", 8080)), "allow no_policy");
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.4", 8080)), "allow no_policy");
    let debug = json!({"source": {"ip": "203.0.113.7"}, "destination": {"ip": "10.0.0.3", "port": 8080}, "http": {"method": "GET", "path": "/debug/x"}});
    assert_eq!(reason(&e, &debug.to_string()), "allow no_policy");
    // Without injection markers anywhere (hand-written manifests), every workload is meshed,
    // unless its namespace opts out.
    let opted = "apiVersion: v1\nkind: Namespace\nmetadata: {name: plain, labels: {istio-injection: disabled}}\n---\n"
        .to_string()
        + &pod("plain", "p", "10.0.9.1", "p", "app: p");
    let e = engine(&format!("{}{opted}{mesh}", inventory()));
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.9.1", 80)), "allow no_policy");
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.0.0.1", 80)), "deny missing_peer_identity");
}

fn wep(name: &str, ip: &str, profiles: &str, labels: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {{name: {name}, namespace: foo, labels: {{{labels}}}}}\n\
         spec: {{orchestrator: k8s, pod: {name}, serviceAccountName: web, ipNetworks: ['{ip}/32'], profiles: [{profiles}], ports: [{{name: http, protocol: TCP, port: 8080}}]}}\n---\n"
    )
}

fn profile(name: &str, spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {{name: {name}}}\nspec: {spec}\n---\n")
}

/// SPEC 9.2: Calico's etcd datastore describes workloads as WorkloadEndpoints and namespaces
/// and service accounts as Profiles: endpoints with the profiles' labels, and the profiles'
/// rules after every tier passed.
#[test]
fn workload_endpoints_and_profiles_as_calico_etcd_describes_them() {
    let bundle = [
        profile("kns.foo", "{labelsToApply: {pcns.team: red}, ingress: [{action: Allow, protocol: TCP, destination: {ports: [http]}}], egress: [{action: Allow}]}"),
        profile("ksa.foo.web", "{labelsToApply: {pcsa.tier: front}}"),
        wep("web-1", "10.5.0.1", "kns.foo, ksa.foo.web", "app: web"),
        wep("web-2", "10.5.0.2", "kns.foo, ksa.foo.web", "app: web"),
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {name: pending, namespace: foo}\nspec: {profiles: [kns.foo]}\n---\n".to_string(),
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: team-red}\n\
         spec: {selector: \"pcns.team == 'red' && pcsa.tier == 'front'\", types: [Ingress], ingress: [{action: Pass, source: {selector: \"app == 'web'\"}}, {action: Deny, protocol: TCP, destination: {ports: [22]}}]}\n---\n"
            .to_string(),
    ]
    .concat();
    let e = engine(&bundle);
    let b = e.snapshot().unwrap();
    assert_eq!(b.bundle().endpoints.len(), 2, "a WorkloadEndpoint without ipNetworks is no endpoint");
    let web = b.bundle().endpoint_by_ip("10.5.0.1".parse().unwrap()).unwrap();
    assert_eq!((web.namespace.as_str(), web.name.as_str(), web.service_account.as_str()), ("foo", "web-1", "web"));
    assert_eq!(web.labels["pcns.team"], "red");
    assert_eq!(web.labels["projectcalico.org/serviceaccount"], "web");
    // web -> web on the named port: the GNP passes, the namespace profile allows.
    let d = decide(&e, &req("10.5.0.1", None, "10.5.0.2", 8080));
    assert_eq!(d["action"], "allow", "{d}");
    assert_eq!(d["policy"], "pro:kns.foo", "{d}");
    // SSH from outside: the GNP's Deny rule decides in its tier.
    assert_eq!(reason(&e, &req("203.0.113.7", None, "10.5.0.2", 22)), "deny rule");
    // web -> web on another port: the GNP passes, no profile rule matches: the profile tier denies.
    let d = decide(&e, &req("10.5.0.1", None, "10.5.0.2", 9000));
    assert_eq!(d["action"], "deny", "{d}");
    assert_eq!(d["reason"], "end_of_tier", "{d}");
    // A profile listed but not in the bundle, and one IP as Pod and WorkloadEndpoint, are errors.
    let e = rejected(&format!("{}{}", inventory(), wep("x", "10.5.0.9", "kns.missing", "")));
    assert_eq!(e.field.as_deref(), Some("spec.profiles[0]"), "{e}");
    let e = rejected(&format!("{}{}{}", inventory(), profile("kns.foo", "{}"), wep("dup", "10.0.0.2", "kns.foo", "")));
    assert_eq!(e.kind, LoadErrorKind::Duplicate, "{e}");
}

/// Issue 16 item 7: when Istio's ALLOW layer let a request through and no later tier decided,
/// the decision names that ALLOW policy and rule (`tier`/`policy`/`rule`; the reason stays
/// `no_policy`).
#[test]
fn the_istio_allow_that_let_a_request_through_is_named() {
    let allow = ap(
        "foo",
        "from-a",
        "",
        "{selector: {matchLabels: {app: b}}, rules: [{from: [{source: {namespaces: [bar]}}]}, {from: [{source: {principals: [cluster.local/ns/foo/sa/a]}}]}]}",
    );
    let e = engine(&format!("{}{allow}", inventory()));
    let d = decide(&e, &req("10.0.0.1", Some(A), "10.0.0.2", 80));
    assert_eq!(d["action"], "allow", "{d}");
    assert_eq!(d["reason"], "no_policy", "{d}");
    assert_eq!(d["tier"], "istio-allow", "{d}");
    assert_eq!(d["policy"], "iap:foo/from-a", "{d}");
    assert_eq!(d["rule"], 1, "{d}");
    let text = e
        .explain(&palisade::OwnedRequest::from_json(&req("10.0.0.1", Some(A), "10.0.0.2", 80)).unwrap().as_request())
        .to_string();
    assert!(text.contains("the mesh layer allowed by iap:foo/from-a"), "{text}");
    // A profile allow with no Istio layer keeps null names.
    let plain = decide(&engine(&inventory()), &req("10.0.0.1", None, "10.0.0.2", 80));
    assert!(plain["policy"].is_null() && plain["tier"].is_null(), "{plain}");
}
