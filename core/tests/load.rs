//! Loading: formats, validation, typed located errors, all-or-nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade::load::{Source, load};
use palisade::{Config, Engine, LoadError, LoadErrorKind};

fn try_load(text: &str) -> Result<palisade::model::Bundle, LoadError> {
    load(&[Source { name: "bundle.yaml", text }], &Config::default())
}

fn err(text: &str) -> LoadError {
    match try_load(text) {
        Ok(_) => panic!("bundle should be rejected:\n{text}"),
        Err(e) => e,
    }
}

fn gnp(spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: p}}\nspec:\n{spec}\n")
}

#[test]
fn errors_name_file_document_object_and_field() {
    let text = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: a}}\n---\n{}",
        gnp("  ingress:\n  - action: Allow\n    source: {selectr: x == 'y'}")
    );
    let e = err(&text);
    assert_eq!(e.kind, LoadErrorKind::Schema);
    assert_eq!(e.file, "bundle.yaml");
    assert_eq!(e.document, Some(1));
    assert_eq!(e.object.as_deref(), Some("GlobalNetworkPolicy p"));
    assert_eq!(e.field.as_deref(), Some("spec.ingress[0].source.selectr"));
    let shown = e.to_string();
    assert!(
        shown.starts_with("bundle.yaml (document 1): GlobalNetworkPolicy p: spec.ingress[0].source.selectr: "),
        "{shown}"
    );
}

#[test]
fn selector_errors_carry_the_position() {
    let e = err(&gnp("  selector: app == 'x' && b"));
    assert_eq!(e.kind, LoadErrorKind::Invalid);
    assert_eq!(e.field.as_deref(), Some("spec.selector"));
    assert!(e.message.contains("byte 15"), "{}", e.message);
}

#[test]
fn billion_laughs_fails_fast() {
    let mut doc = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
    let mut prev = "a";
    for n in names {
        doc.push_str(&format!("{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        prev = n;
    }
    let start = std::time::Instant::now();
    let e = err(&doc);
    assert_eq!(e.kind, LoadErrorKind::Syntax, "{e}");
    // Not a timing assertion on the engine's speed: a generous bound that only an
    // exponential expansion would break.
    assert!(start.elapsed().as_secs() < 20);
}

#[test]
fn unknown_fields_outside_policy_specs_are_ignored() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n, uid: abc, annotations: {x: y}, managedFields: []}\nspec: {nodeName: n1, containers: [{name: c, image: i, ports: [{name: http, containerPort: 80, hostPort: 8080}]}]}\nstatus: {podIP: 10.0.0.1, conditions: [], hostIP: 1.2.3.4}\n";
    let b = try_load(text).unwrap();
    assert_eq!(b.endpoints.len(), 1);
    assert_eq!(b.endpoints[0].ports[0].port, 80);
}

#[test]
fn duplicates_are_rejected() {
    let np = |api: &str, ns: &str| {
        format!("apiVersion: {api}\nkind: NetworkPolicy\nmetadata: {{name: p{ns}}}\nspec: {{}}\n---\n")
    };
    let e =
        err(&format!("{}{}", np("projectcalico.org/v3", ""), np("crd.projectcalico.org/v1", ", namespace: default")));
    assert_eq!(e.kind, LoadErrorKind::Duplicate);
    assert_eq!(e.object.as_deref(), Some("NetworkPolicy default/p"));
    // Different namespaces are different objects.
    assert!(
        try_load(&format!(
            "{}{}",
            np("projectcalico.org/v3", ", namespace: a"),
            np("projectcalico.org/v3", ", namespace: b")
        ))
        .is_ok()
    );
}

#[test]
fn two_pods_claiming_one_ip_are_rejected_naming_both() {
    let pod = |n: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {n}, namespace: ns}}\nstatus: {{podIPs: [{{ip: 10.0.0.1}}, {{ip: 'fd00::{n}'}}]}}\n---\n"
        )
    };
    let e = err(&format!("{}{}", pod("a"), pod("b")));
    assert_eq!(e.kind, LoadErrorKind::Duplicate);
    assert!(e.message.contains("ns/a") && e.object.as_deref() == Some("Pod ns/b"), "{e}");
}

#[test]
fn pods_calico_does_not_treat_as_endpoints_are_skipped() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: h, namespace: ns}\nspec: {hostNetwork: true}\nstatus: {podIP: 10.0.0.1}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: done, namespace: ns}\nstatus: {phase: Succeeded, podIP: 10.0.0.1}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: pending, namespace: ns}\nstatus: {phase: Pending}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: dual, namespace: ns}\nstatus: {podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.1}, {ip: 'fd00::1'}]}\n";
    let b = try_load(text).unwrap();
    assert_eq!(b.endpoints.len(), 1);
    assert_eq!(b.endpoints[0].ips.len(), 2);
    let l = &b.endpoints[0].labels;
    assert_eq!(l["projectcalico.org/serviceaccount"], "default");
    assert_eq!(l["pcns.projectcalico.org/name"], "ns");
    assert_eq!(l["pcns.kubernetes.io/metadata.name"], "ns");
    assert_eq!(l["pcsa.projectcalico.org/name"], "default");
    assert_eq!(l["projectcalico.org/orchestrator"], "k8s");
}

#[test]
fn own_labels_win_over_inherited_ones() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns, labels: {team: a, kubernetes.io/metadata.name: liar}}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns, labels: {pcns.team: own}}\nstatus: {podIP: 10.0.0.1}\n";
    let b = try_load(text).unwrap();
    assert_eq!(b.endpoints[0].labels["pcns.team"], "own");
    assert_eq!(b.endpoints[0].labels["pcns.kubernetes.io/metadata.name"], "ns");
}

#[test]
fn kinds_that_must_not_be_ignored_are_errors() {
    for (api, kind) in [
        ("projectcalico.org/v3", "GlobalNetworkPolicyTemplate"),
        ("crd.projectcalico.org/v1", "WorkloadEndpointTemplate"),
        ("projectcalico.org/v2", "GlobalNetworkPolicy"),
        ("security.istio.io/v1alpha1", "PeerAuthentication"),
        ("security.istio.io/v1alpha1", "AuthorizationPolicy"),
        ("security.istio.io/v1", "Sidecar"),
        ("policy.networking.k8s.io/v1alpha2", "AdminNetworkPolicy"),
        ("policy.networking.k8s.io/v1alpha1", "ClusterNetworkPolicy"),
        ("networking.k8s.io/v1beta1", "NetworkPolicy"),
    ] {
        let e = err(&format!("apiVersion: {api}\nkind: {kind}\nmetadata: {{name: x}}\nspec: {{}}\n"));
        assert_eq!(e.kind, LoadErrorKind::Unsupported, "{api} {kind}: {e}");
    }
}

#[test]
fn other_kinds_are_skipped_and_counted() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n\
                apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n---\n\
                apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n";
    let b = try_load(text).unwrap();
    assert_eq!(b.skipped_documents, 4);
    assert_eq!(b.objects, 5);
}

#[test]
fn empty_bundles_are_rejected() {
    assert_eq!(err("").kind, LoadErrorKind::Empty);
    assert_eq!(err("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n").kind, LoadErrorKind::Empty);
}

#[test]
fn lists_json_and_crd_forms_are_read() {
    let list = r#"{"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkPolicy", "metadata": {"name": "a"}, "spec": {"order": 1}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}]}"#;
    let b = try_load(list).unwrap();
    assert_eq!(b.policies.len(), 1);
    assert_eq!(b.namespaces.len(), 1);
    // An error inside a List names the item.
    let bad = r#"{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
        {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "a"}, "spec": {"ordr": 1}}]}"#;
    assert_eq!(err(bad).field.as_deref(), Some("items[1].spec.ordr"));
}

#[test]
fn tier_rules() {
    let tier = |name: &str, spec: &str| {
        format!("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}}}\nspec: {spec}\n---\n")
    };
    assert!(try_load(&tier("default", "{order: 1000000, defaultAction: Deny}")).is_ok());
    assert!(try_load(&tier("default", "{}")).is_ok());
    assert_eq!(err(&tier("default", "{order: 5}")).field.as_deref(), Some("spec.order"));
    assert_eq!(err(&tier("default", "{defaultAction: Pass}")).field.as_deref(), Some("spec.defaultAction"));
    assert_eq!(err(&tier("Bad.Name", "{}")).field.as_deref(), Some("metadata.name"));
    assert_eq!(err(&tier("t", "{defaultAction: Allow}")).field.as_deref(), Some("spec.defaultAction"));
    assert_eq!(err(&tier("istio-deny", "{defaultAction: Deny}")).field.as_deref(), Some("spec.defaultAction"));
    assert!(try_load(&tier("istio-allow", "{order: 5}")).is_ok());
    assert_eq!(err(&gnp("  tier: missing")).kind, LoadErrorKind::UnknownTier);
    assert_eq!(
        err(&format!("{}{}", tier("istio-allow", "{}"), gnp("  tier: istio-allow"))).field.as_deref(),
        Some("spec.tier")
    );
    assert_eq!(err(&gnp("  order: .nan")).kind, LoadErrorKind::Syntax);
}

#[test]
fn rule_validation() {
    let cases: &[(&str, &str)] = &[
        ("  ingress: [{action: Deny, http: {methods: [GET]}}]", "spec.ingress[0].http"),
        ("  egress: [{action: Allow, http: {methods: [GET]}}]", "spec.egress[0].http"),
        ("  ingress: [{action: Allow, protocol: UDP, http: {methods: [GET]}}]", "spec.ingress[0].http"),
        ("  ingress: [{action: Allow, http: {methods: [GET, GET]}}]", "spec.ingress[0].http.methods[1]"),
        ("  ingress: [{action: Allow, http: {paths: [{exact: /a, prefix: /b}]}}]", "spec.ingress[0].http.paths[0]"),
        ("  ingress: [{action: Allow, http: {paths: [{exact: 'a'}]}}]", "spec.ingress[0].http.paths[0]"),
        ("  ingress: [{action: Allow, source: {selector: global()}}]", "spec.ingress[0].source.selector"),
        (
            "  ingress: [{action: Allow, source: {namespaceSelector: \"global() && a == 'b'\"}}]",
            "spec.ingress[0].source.namespaceSelector",
        ),
        ("  selector: global()", "spec.selector"),
        ("  ingress: [{action: Allow, destination: {ports: [80]}}]", "spec.ingress[0].destination.ports"),
        (
            "  ingress: [{action: Allow, protocol: UDPLite, destination: {ports: [80]}}]",
            "spec.ingress[0].destination.ports",
        ),
        ("  ingress: [{action: Allow, protocol: TCP, icmp: {type: 8}}]", "spec.ingress[0].icmp"),
        ("  ingress: [{action: Allow, protocol: ICMP, icmp: {code: 1}}]", "spec.ingress[0].icmp.code"),
        ("  ingress: [{action: Allow, protocol: ICMP, icmp: {type: 255}}]", "spec.ingress[0].icmp.type"),
        (
            "  ingress: [{action: Allow, source: {nets: [10.0.0.0/8]}, destination: {nets: ['fd00::/8']}}]",
            "spec.ingress[0]",
        ),
        ("  ingress: [{action: Allow, source: {notNets: [0.0.0.0/0]}}]", "spec.ingress[0].source.notNets"),
        ("  ingress: [{action: Allow, source: {nets: [10.0.0.300/8]}}]", "spec.ingress[0].source.nets[0]"),
        ("  ingress: [{action: Allow, protocol: 0}]", "spec.ingress[0].protocol"),
        ("  ingress: [{action: Allow, protocol: tcpx}]", "spec.ingress[0].protocol"),
        ("  ingress: [{action: allow}]", "spec.ingress[0].action"),
        ("  ingress: [{protocol: TCP}]", "spec.ingress[0].action"),
        (
            "  ingress: [{action: Allow, protocol: TCP, destination: {ports: ['90:80']}}]",
            "spec.ingress[0].destination.ports[0]",
        ),
        (
            "  ingress: [{action: Allow, protocol: TCP, destination: {ports: [70000]}}]",
            "spec.ingress[0].destination.ports[0]",
        ),
        ("  ingress: [{action: Allow, ipVersion: 6, source: {nets: [10.0.0.0/8]}}]", "spec.ingress[0]"),
        ("  types: [Ingress, Ingress]", "spec.types[1]"),
        ("  types: [Sideways]", "spec.types[0]"),
    ];
    for (spec, field) in cases {
        let e = err(&gnp(spec));
        assert_eq!(e.field.as_deref(), Some(*field), "{spec}: {e}");
        assert_eq!(e.object.as_deref(), Some("GlobalNetworkPolicy p"), "{spec}");
    }
}

#[test]
fn fields_palisade_cannot_evaluate_are_errors() {
    // Services in rules are read (SPEC 9.2): a source service in an ingress rule loads.
    let services = "  ingress: [{action: Allow, source: {services: {name: s, namespace: n}}}]";
    assert!(try_load(&gnp(services)).is_ok());
    // Host-endpoint policy is read (SPEC 9.2); applyOnForward alone keeps its workload effect.
    assert!(try_load(&gnp("  applyOnForward: false")).is_ok());
    assert!(try_load(&gnp("  applyOnForward: true")).is_ok());
    assert!(try_load(&gnp("  doNotTrack: true\n  applyOnForward: true")).is_ok());
    let staged = |action: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: StagedGlobalNetworkPolicy\nmetadata: {{name: s}}\nspec: {{stagedAction: {action}}}\n"
        )
    };
    assert_eq!(err(&staged("Learn")).kind, LoadErrorKind::Unsupported);
    assert!(try_load(&staged("Delete")).is_ok());
    assert_eq!(err(&gnp("  stagedAction: Set")).field.as_deref(), Some("spec.stagedAction"));
    let np = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: n}\nspec: {namespaceSelector: all()}\n";
    assert_eq!(err(np).field.as_deref(), Some("spec.namespaceSelector"));
    let staged_delete_with_rules = "apiVersion: projectcalico.org/v3\nkind: StagedNetworkPolicy\nmetadata: {name: s, namespace: n}\nspec: {stagedAction: Delete, ingress: [{action: Allow}]}\n";
    assert_eq!(err(staged_delete_with_rules).field.as_deref(), Some("spec"));
}

#[test]
fn types_default_as_the_api_server_does() {
    let b = try_load(&gnp("  egress: [{action: Allow}]")).unwrap();
    assert!(b.policies[0].ingress.is_none() && b.policies[0].egress.is_some());
    let b = try_load(&gnp("  selector: all()")).unwrap();
    assert!(b.policies[0].ingress.is_some() && b.policies[0].egress.is_none());
    let b = try_load(&gnp("  ingress: [{action: Allow}]\n  egress: [{action: Allow}]")).unwrap();
    assert!(b.policies[0].ingress.is_some() && b.policies[0].egress.is_some());
}

#[test]
fn cidrs_with_host_bits_are_masked() {
    let b =
        try_load(&gnp("  ingress: [{action: Allow, source: {nets: [10.1.2.3/16, '::ffff:10.9.0.0/112']}}]")).unwrap();
    let palisade::model::RuleMatch::Calico(r) = &b.policies[0].ingress.as_ref().unwrap()[0].matcher else {
        panic!("a Calico rule")
    };
    let nets: Vec<String> = r.source.nets.iter().map(|n| n.to_string()).collect();
    assert_eq!(nets, ["10.1.0.0/16", "10.9.0.0/16"]);
}

#[test]
fn resource_limits() {
    let cfg = Config::from_yaml("max_rules_per_policy: 2\nmax_selector_len: 20\nmax_cidrs_per_rule: 1\nmax_documents: 2\nmax_bundle_bytes: 2000").unwrap();
    let run = |t: &str| load(&[Source { name: "b", text: t }], &cfg);
    assert_eq!(
        run(&gnp("  ingress: [{action: Allow}, {action: Allow}, {action: Allow}]")).unwrap_err().kind,
        LoadErrorKind::Limit
    );
    assert_eq!(run(&gnp("  selector: aaaaaaaaaa == 'bbbbbbbbbbbbbb'")).unwrap_err().kind, LoadErrorKind::Invalid);
    assert_eq!(
        run(&gnp("  ingress: [{action: Allow, source: {nets: [10.0.0.0/8, 11.0.0.0/8]}}]")).unwrap_err().kind,
        LoadErrorKind::Limit
    );
    let three = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n";
    assert!(run(three).is_err());
    assert_eq!(run(&"#".repeat(3000)).unwrap_err().kind, LoadErrorKind::Limit);
}

#[test]
fn config_errors() {
    for (text, field) in [
        ("trust_domian: x", "trust_domian"),
        ("require_peer_identity: maybe", "require_peer_identity"),
        ("no_policy_action: perhaps", "no_policy_action"),
        ("trust_domain: Not Valid", "trust_domain"),
        ("max_documents: 0", "max_documents"),
    ] {
        let e = Config::from_yaml(text).unwrap_err();
        assert_eq!(e.field, field, "{text}: {e}");
    }
}

#[test]
fn failed_load_keeps_the_previous_snapshot() {
    let e = Engine::new(Config::default());
    let good = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\nstatus: {podIP: 10.0.0.1}\n";
    assert_eq!(e.load_str(good).unwrap(), 1);
    assert!(e.load_str(&gnp("  selector: ((")).is_err());
    let s = e.snapshot().unwrap();
    assert_eq!(s.generation(), 1);
    assert_eq!(s.bundle().endpoints.len(), 1);
    assert_eq!(e.load_str(good).unwrap(), 2);
}
