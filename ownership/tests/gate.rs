//! The tier-scoped writer: writes outside its tiers are refused and change nothing.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{BASE, edit, teams, user};
use palisade::{Config, Engine};
use palisade_ownership::{PolicyStore, WriteError};

fn store() -> Arc<PolicyStore> {
    let engine = Arc::new(Engine::new(Config::default()));
    PolicyStore::new(engine, [("base.yaml".to_string(), BASE.to_string())]).unwrap()
}

const APP_POLICY: &str = r#"
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: team-extra, namespace: shop}
spec: {tier: app, selector: all(), ingress: [{action: Allow}]}
"#;

#[test]
fn a_tier_writer_changes_its_tiers_only() {
    let store = store();
    let generation = store.engine().snapshot().unwrap().generation();
    let app = store.tier_writer(["app"]);
    let g = app.put("team-app.yaml", APP_POLICY).unwrap();
    assert_eq!(g, generation + 1);
    assert!(store.engine().snapshot().unwrap().bundle().policies.iter().any(|p| p.name == "team-extra"));

    // A source that adds a security-tier policy: refused, the engine keeps its policy.
    let sneaky = APP_POLICY.replace("tier: app", "tier: security").replace("team-extra", "sneaky");
    match app.put("team-app-2.yaml", &sneaky) {
        Err(WriteError::Refused(m)) => assert_eq!(
            m,
            ["NetworkPolicy shop/sneaky created: tier \"security\" is not one of this writer's tiers [app]"]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.engine().snapshot().unwrap().generation(), g);
    assert!(!store.source_names().contains(&"team-app-2.yaml".to_string()));

    // Replacing everything with a bundle that edits a higher tier: refused.
    let higher = edit("nets: [203.0.113.0/24]", "nets: [198.51.100.0/24]");
    let e = app.replace_all([("base.yaml".to_string(), higher.clone())]).unwrap_err();
    assert!(e.to_string().contains("GlobalNetworkPolicy block-threats changed: tier \"security\""), "{e}");
    // Its own tier through replace_all: fine. Removing its own source: fine.
    app.replace_all([
        ("base.yaml".to_string(), BASE.replace("ports: [8080]", "ports: [9090]")),
        ("team-app.yaml".to_string(), APP_POLICY.to_string()),
    ])
    .unwrap();
    app.remove("team-app.yaml").unwrap();
    // A Tier object is never a tier writer's (re-ordering a tier moves it above others).
    let reorder = BASE
        .replace("ports: [8080]", "ports: [9090]")
        .replace("spec: {order: 300, defaultAction: Pass}", "spec: {order: 50, defaultAction: Pass}");
    let e = app.replace_all([("base.yaml".to_string(), reorder)]).unwrap_err();
    assert!(e.to_string().contains("Tier app changed: not a policy of this writer's tiers [app]"), "{e}");
    // A bundle that does not load: the loader's error.
    assert!(matches!(app.put("bad.yaml", "kind: [").unwrap_err(), WriteError::Load(_)));
    // The security team's writer may change the security tier.
    store
        .tier_writer(["security"])
        .replace_all([("base.yaml".to_string(), higher.replace("ports: [8080]", "ports: [9090]"))])
        .unwrap();
}

#[test]
fn an_rbac_writer_refuses_with_calicos_words() {
    let store = store();
    let alice = store.rbac_writer(Arc::new(teams()), user("alice", &["team-app"]));
    alice.put("team-app.yaml", APP_POLICY).unwrap();
    let sneaky = APP_POLICY.replace("tier: app", "tier: platform");
    let e = alice.put("team-app.yaml", &sneaky).unwrap_err();
    assert_eq!(
        e.to_string(),
        "refused: networkpolicies.projectcalico.org \"team-extra\" is forbidden: User \"alice\" cannot update \
         networkpolicies.projectcalico.org in tier \"platform\" and namespace \"shop\" (user cannot get tier)"
    );
}
