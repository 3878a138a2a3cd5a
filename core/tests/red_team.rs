//! Regression tests for the red-team findings of revision 6 (issue 14, SPEC 9.1): each
//! input below once gave a wrong allow or loaded silently. Decisions go through both
//! evaluators (`common::decide` checks that they agree).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{decide, engine, pod, tcp};
use palisade::load::{Source, load};
use palisade::{Config, LoadErrorKind};

fn try_load(text: &str) -> Result<palisade::model::Bundle, palisade::LoadError> {
    load(&[Source { name: "b.yaml", text }], &Config::default())
}

fn rejected(text: &str) -> palisade::LoadError {
    match try_load(text) {
        Ok(_) => panic!("bundle should be rejected:\n{text}"),
        Err(e) => e,
    }
}

const SHOP: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
                    apiVersion: v1\nkind: Namespace\nmetadata: {name: tenant}\n---\n";

fn api_pod() -> String {
    pod("shop", "api", "10.1.0.9", "api", "app: api")
}

/// Item 1: a namespaced network set cannot pose as another namespace, a service account or a
/// pod: each identity label is a located load error.
#[test]
fn network_sets_cannot_forge_identity_labels() {
    for (kind, ns, label) in [
        ("NetworkSet", "namespace: tenant,", "projectcalico.org/namespace: shop"),
        ("GlobalNetworkSet", "", "projectcalico.org/serviceaccount: frontend"),
        ("NetworkSet", "namespace: shop,", "projectcalico.org/orchestrator: k8s"),
        ("GlobalNetworkSet", "", "projectcalico.org/name: shop"),
        ("GlobalNetworkSet", "", "pcns.team: shop"),
        ("NetworkSet", "namespace: tenant,", "pcsa.app: fe"),
    ] {
        let text = format!(
            "{SHOP}apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {{name: forged, {ns} labels: {{{label}, app: fe}}}}\nspec: {{nets: [0.0.0.0/0]}}\n"
        );
        let e = rejected(&text);
        let key = label.split(':').next().unwrap();
        assert_eq!(e.kind, LoadErrorKind::Invalid, "{label}: {e}");
        assert_eq!(e.field.as_deref(), Some(format!("metadata.labels.{key}").as_str()), "{e}");
        assert!(e.object.as_deref().unwrap().contains("forged"), "{e}");
    }
}

/// Item 1, the namespace case decided: without the forged label, the tenant's set does not
/// match a `shop` policy's selector, so the external IP is denied.
#[test]
fn a_tenant_network_set_does_not_match_a_shop_policy() {
    let bundle = format!(
        "{SHOP}{}apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {{name: fe, namespace: tenant, labels: {{app: fe}}}}\nspec: {{nets: [0.0.0.0/0]}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: api, namespace: shop}}\n\
         spec: {{selector: \"app == 'api'\", types: [Ingress], ingress: [{{action: Allow, source: {{selector: \"app == 'fe'\"}}}}]}}\n",
        api_pod()
    );
    let e = engine(&bundle);
    let d = decide(&e, &tcp("198.51.100.1", "10.1.0.9", 8080));
    assert_eq!(d["action"], "deny", "{d}");
    assert_eq!(d["reason"], "end_of_tier", "{d}");
}

/// Item 1 / SPEC 9.1: `serviceAccounts` criteria match workload endpoints only, even when
/// the service-account selector (`!has(x)`, `all()`) would match a network set's labels.
#[test]
fn service_account_criteria_never_match_a_network_set() {
    for sa in ["{selector: \"!has(team)\"}", "{selector: all()}", "{names: [frontend]}"] {
        let bundle = format!(
            "{SHOP}{}{}apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: outside, labels: {{app: fe}}}}\nspec: {{nets: [198.51.100.0/24]}}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: api}}\n\
             spec: {{selector: \"app == 'api'\", types: [Ingress], ingress: [{{action: Allow, source: {{serviceAccounts: {sa}}}}}]}}\n",
            api_pod(),
            pod("shop", "fe", "10.1.0.5", "frontend", "app: fe"),
        );
        let e = engine(&bundle);
        let outside = decide(&e, &tcp("198.51.100.1", "10.1.0.9", 8080));
        assert_eq!(outside["action"], "deny", "{sa}: {outside}");
        // The workload with that service account is still allowed.
        let inside = decide(&e, &tcp("10.1.0.5", "10.1.0.9", 8080));
        assert_eq!(inside["action"], "allow", "{sa}: {inside}");
    }
}

fn deny_db_list(list_kind: &str, api: &str) -> String {
    format!(
        "{SHOP}{}apiVersion: {api}\nkind: {list_kind}\nitems:\n\
         - apiVersion: projectcalico.org/v3\n  kind: GlobalNetworkPolicy\n  metadata: {{name: deny-db}}\n  spec: {{selector: \"app == 'api'\", order: 1, ingress: [{{action: Deny}}]}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: open}}\nspec: {{selector: all(), order: 2, ingress: [{{action: Allow}}], egress: [{{action: Allow}}]}}\n",
        api_pod()
    )
}

/// Item 2: typed lists (as calicoctl and kubectl print them) are read, nested ones too; the
/// Deny inside is enforced.
#[test]
fn typed_lists_are_read_and_enforced() {
    for (kind, api) in [("GlobalNetworkPolicyList", "projectcalico.org/v3"), ("List", "v1")] {
        let e = engine(&deny_db_list(kind, api));
        let d = decide(&e, &tcp("10.1.0.5", "10.1.0.9", 8080));
        assert_eq!(d["action"], "deny", "{kind}: {d}");
        assert_eq!(d["policy"], "gnp:deny-db", "{kind}: {d}");
    }
    // Nested lists, and items without kind/apiVersion (as the API server prints a PodList).
    let nested = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: PodList\n  items:\n  \
                  - metadata: {name: a, namespace: shop}\n    status: {podIP: 10.1.0.1}\n  \
                  - metadata: {name: b, namespace: shop}\n    status: {podIP: 10.1.0.2}\n";
    let b = try_load(nested).unwrap();
    assert_eq!(b.endpoints.len(), 2);
    // An error inside a list names the item's path.
    let e = rejected(
        "apiVersion: v1\nkind: List\nitems:\n- kind: NetworkPolicyList\n  apiVersion: networking.k8s.io/v1\n  items:\n  \
         - {metadata: {name: p, namespace: shop}, spec: {podSelector: {}, ingress: [{from: [{}]}]}}\n",
    );
    assert_eq!(e.field.as_deref(), Some("items[0].items[0].spec.ingress[0].from[0]"), "{e}");
}

/// Item 2: API groups spelt wrongly, read kinds under other groups, near-miss kinds and
/// unknown kinds of the policy groups are errors, never skipped.
#[test]
fn misspelt_groups_and_kinds_are_errors() {
    for (api, kind) in [
        ("projectcalico.org", "GlobalNetworkPolicy"),
        ("ProjectCalico.org/v3", "GlobalNetworkPolicy"),
        ("Networking.k8s.io/v1", "NetworkPolicy"),
        ("v1", "NetworkPolicy"),
        ("example.com/v1", "NetworkPolicy"),
        ("projectcalico.org/v3", "GlobalNetworkPolicies"),
        ("projectcalico.org/v3", "globalnetworkpolicy"),
        ("projectcalico.org/v3", "Global NetworkPolicy"),
        ("networking.k8s.io/v1", "NetworkPolicies"),
        ("projectcalico.org/v3", "SomethingNew"),
        ("networking.k8s.io/v1", "SomethingNew"),
        ("v1", "Pods"),
    ] {
        let e = rejected(&format!("{SHOP}apiVersion: {api}\nkind: {kind}\nmetadata: {{name: x}}\nspec: {{}}\n"));
        assert!(matches!(e.kind, LoadErrorKind::Schema | LoadErrorKind::Unsupported), "{api} {kind}: {e}");
        assert!(e.field.as_deref().is_some() || e.kind == LoadErrorKind::Unsupported, "{api} {kind}: {e}");
    }
    // Known to carry no access rule: skipped and counted by apiVersion and kind.
    let b = try_load(&format!(
        "{SHOP}apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: p}}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: i}}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: e}}\n"
    ))
    .unwrap();
    assert_eq!(b.skipped_documents, 4);
    assert_eq!(b.skipped_kinds[&("apps/v1".to_string(), "Deployment".to_string())], 2);
    assert_eq!(
        palisade::lint::skipped(&b),
        [
            "note: skipped 2 documents of apps/v1 Deployment (no access rules read)",
            "note: skipped 1 document of networking.k8s.io/v1 Ingress (no access rules read)",
            "note: skipped 1 document of projectcalico.org/v3 IPPool (no access rules read)",
        ]
    );
}

/// Item 3: orders compare as numbers: `-0.0` ties with `0` and the name breaks the tie, for
/// policies and for tiers.
#[test]
fn negative_zero_order_ties_with_zero() {
    let gnp = |name: &str, tier: &str, order: &str, action: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {tier}.{name}}}\n\
             spec: {{tier: {tier}, order: {order}, selector: all(), types: [Ingress], ingress: [{{action: {action}}}]}}\n---\n"
        )
    };
    let tier = |name: &str, order: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}}}\nspec: {{order: {order}}}\n---\n"
        )
    };
    let policies = format!(
        "{SHOP}{}{}{}",
        api_pod(),
        gnp("b-open", "default", "-0.0", "Allow"),
        gnp("a-block", "default", "0", "Deny")
    );
    let d = decide(&engine(&policies), &tcp("10.1.0.5", "10.1.0.9", 8080));
    assert_eq!(d["action"], "deny", "{d}");
    assert_eq!(d["policy"], "gnp:default.a-block", "{d}");

    let tiers = format!(
        "{SHOP}{}{}{}{}{}",
        api_pod(),
        tier("b-open", "-0.0"),
        tier("a-block", "0"),
        gnp("p", "b-open", "1", "Allow"),
        gnp("p", "a-block", "1", "Deny")
    );
    let d = decide(&engine(&tiers), &tcp("10.1.0.5", "10.1.0.9", 8080));
    assert_eq!(d["action"], "deny", "{d}");
    assert_eq!(d["policy"], "gnp:a-block.p", "{d}");
}

/// Item 6 (bundles and configuration): a sequence is never read as a struct.
#[test]
fn sequences_are_never_structs() {
    for (doc, field) in [
        ("metadata: {name: p}\nspec: []", "spec"),
        ("metadata: {name: p}\nspec: {selector: all(), ingress: [[Allow]]}", "spec.ingress[0]"),
        (
            "metadata: {name: p}\nspec: {selector: all(), ingress: [{action: Allow, source: [[10.0.0.0/8]]}]}",
            "spec.ingress[0].source",
        ),
        ("metadata: [g]\nspec: {}", "metadata"),
    ] {
        let e = rejected(&format!("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n{doc}\n"));
        assert_eq!(e.kind, LoadErrorKind::Schema, "{doc}: {e}");
        assert_eq!(e.field.as_deref(), Some(field), "{doc}: {e}");
        assert!(e.message.contains("sequence"), "{doc}: {e}");
    }
    let e = palisade::Config::from_yaml("- a\n").unwrap_err();
    assert!(e.message.contains("sequence"), "{e}");
    let e = palisade::Config::from_yaml("[trust_domain, x]").unwrap_err();
    assert!(e.message.contains("sequence"), "{e}");
}

/// Item 7: validation gaps that widened access.
#[test]
fn validation_as_the_api_servers_do_it() {
    let knp = |peer: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: shop}}\nspec: {{podSelector: {{}}, ingress: [{{from: [{peer}]}}]}}\n"
        )
    };
    for (peer, field) in [
        ("{}", "spec.ingress[0].from[0]"),
        ("{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}", "spec.ingress[0].from[0].ipBlock.except[0]"),
        ("{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}", "spec.ingress[0].from[0].ipBlock.except[0]"),
        ("{ipBlock: {cidr: 010.1.0.0/16}}", "spec.ingress[0].from[0].ipBlock.cidr"),
        ("{ipBlock: {cidr: 10.1.0.0/016}}", "spec.ingress[0].from[0].ipBlock.cidr"),
    ] {
        let e = rejected(&knp(peer));
        assert_eq!(e.kind, LoadErrorKind::Invalid, "{peer}: {e}");
        assert_eq!(e.field.as_deref(), Some(field), "{peer}: {e}");
    }
    assert!(try_load(&knp("{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}")).is_ok());
    for port in ["0", "'0:90'", "'0'"] {
        let e = rejected(&format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: p}}\n\
             spec: {{selector: all(), ingress: [{{action: Allow, protocol: TCP, destination: {{ports: [{port}]}}}}]}}\n"
        ));
        assert_eq!(e.field.as_deref(), Some("spec.ingress[0].destination.ports[0]"), "{port}: {e}");
    }
    let e = rejected(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\n\
         spec: {selector: all(), ingress: [{action: Allow, source: {nets: [192.168.01.0/24]}}]}\n",
    );
    assert_eq!(e.field.as_deref(), Some("spec.ingress[0].source.nets[0]"), "{e}");
}

/// SPEC 9.1: every error is reported at once, the first as the headline.
#[test]
fn every_error_is_reported_at_once() {
    let bad = |i: usize| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: p{i}}}\nspec: {{selector: \"app ==\"}}\n---\n"
        )
    };
    let text = format!(
        "{}apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: s, labels: {{pcns.a: b}}}}\nspec: {{}}\n---\n\
         apiVersion: Projectcalico.org/v3\nkind: Tier\nmetadata: {{name: t}}\n",
        (0..3).map(bad).collect::<String>()
    );
    let e = rejected(&text);
    let all: Vec<_> = e.all().collect();
    assert_eq!(all.len(), 5, "{all:#?}");
    assert_eq!(all[0].object.as_deref(), Some("GlobalNetworkPolicy p0"));
    assert!(all.iter().any(|x| x.object.as_deref() == Some("GlobalNetworkSet s")));
    assert!(all.iter().any(|x| x.field.as_deref() == Some("apiVersion")));
    assert!(e.to_string().ends_with("(and 4 more errors)"), "{e}");
    // At most 100 are kept; the rest are counted.
    let many: String = (0..150).map(bad).collect();
    let e = rejected(&many);
    assert_eq!(e.others.len(), 100);
    assert!(e.others[99].message.contains("50 more errors"), "{}", e.others[99]);
}

/// Item 10: messages name the document and object and carry no library advice.
#[test]
fn messages_are_for_people() {
    let e = rejected(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: all(), selector: x}\n",
    );
    assert_eq!(e.kind, LoadErrorKind::Syntax);
    assert!(e.message.contains("duplicate") && !e.message.contains("DuplicateKeyPolicy"), "{e}");
    let e = rejected(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p, labels: {a: null}}\nspec: {}\n",
    );
    assert!(!e.message.contains("Option<"), "{e}");
    assert_eq!(e.object.as_deref(), Some("GlobalNetworkPolicy p"), "{e}");
    assert_eq!(e.field.as_deref(), Some("metadata.labels.a"), "{e}");
}

/// Item 8: only regular files and directories are read, and the size limit is checked before
/// a file is read.
#[cfg(unix)]
#[test]
fn files_are_checked_before_they_are_read() {
    let dir = std::env::temp_dir().join(format!("palisade-red-team-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let limit = Config::default().max_bundle_bytes;

    // A sparse file far over the limit: refused from its size, without reading it.
    let big = dir.join("big.yaml");
    std::fs::File::create(&big).unwrap().set_len(300 << 20).unwrap();
    let e = palisade::load::read_paths(&[&big], limit).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::Limit, "{e}");
    std::fs::remove_file(&big).unwrap();

    // A symlink to a device, directly and inside a directory.
    let zero = dir.join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let e = palisade::load::read_paths(&[&zero], limit).unwrap_err();
    assert!(e.message.contains("not a regular file"), "{e}");
    let e = palisade::load::read_paths(&[&dir], limit).unwrap_err();
    assert!(e.message.contains("not a regular file"), "{e}");
    std::fs::remove_file(&zero).unwrap();

    // A FIFO named like a bundle file (opening it would block forever).
    let fifo = dir.join("p.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    if made {
        let e = palisade::load::read_paths(&[&dir], limit).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
        std::fs::remove_file(&fifo).unwrap();
    }

    // Two files that are each under the limit but over it together.
    let a = dir.join("a.yaml");
    let b = dir.join("b.yaml");
    std::fs::write(&a, "x".repeat(600)).unwrap();
    std::fs::write(&b, "x".repeat(600)).unwrap();
    let e = palisade::load::read_paths(&[&dir], 1000).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::Limit, "{e}");
    assert!(palisade::load::read_paths(&[&dir], 1200).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}
