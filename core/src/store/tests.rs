use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{Change, Config, Engine, LoadErrorKind, OwnedRequest};

/// The objects a generated change may touch, each with a few versions (some invalid).
fn version(object: usize, v: usize) -> Value {
    let pod = |name: &str, ns: &str, ip: &str, app: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
               "status": {"podIP": ip}})
    };
    let apps = ["web", "db", "cache"];
    match object {
        0 => json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "a", "labels": {"env": (["prod", "dev", "test"][v % 3])}}}),
        1 => json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}),
        2..=5 => {
            let i = object - 2;
            let ns = if i < 2 { "a" } else { "b" };
            pod(&format!("p{i}"), ns, &format!("10.0.0.{}", i + 1), apps[(v + i) % 3])
        }
        6 => json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier",
                    "metadata": {"name": "security"}, "spec": {"order": ([100, 50, 300][v % 3])}}),
        7 => {
            let action = ["Deny", "Pass", "Allow", "Log"][v % 4];
            json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                   "metadata": {"name": "security.block"},
                   "spec": {"tier": "security", "selector": (["app == 'db'", "all()", "env == 'dev'"][v % 3]),
                            "ingress": [{"action": action, "source": {"selector": "app == 'cache'"}}],
                            "types": ["Ingress"]}})
        }
        8 => {
            if v % 4 == 3 {
                // Invalid: a selector that does not parse.
                return json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                              "metadata": {"name": "allow-web"},
                              "spec": {"selector": "app ==", "ingress": [{"action": "Allow"}]}});
            }
            json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                   "metadata": {"name": "allow-web"},
                   "spec": {"order": ([10, 2000, 500][v % 3]), "selector": "app == 'web'",
                            "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [80]}}]}})
        }
        9 => json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                    "metadata": {"name": "db", "namespace": "a"},
                    "spec": {"selector": "app == 'db'", "order": 100,
                             "ingress": [{"action": (["Allow", "Deny"][v % 2]), "protocol": "TCP",
                                          "source": {"selector": (["app == 'web'", "all()"][(v / 2) % 2])},
                                          "destination": {"ports": (if v % 2 == 0 { json!([443]) } else { json!([80, 443]) })}}]}}),
        10 => json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "only-a", "namespace": "b"},
                     "spec": {"podSelector": {"matchLabels": {"app": apps[v % 3]}},
                              "policyTypes": ["Ingress"],
                              "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]}]}}),
        _ => json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
                    "metadata": {"name": "pool"}, "spec": {"cidr": "10.0.0.0/16"}}),
    }
}

const OBJECTS: usize = 12;

fn delete_of(object: usize) -> Change {
    let v = version(object, 0);
    let api = v["apiVersion"].as_str().unwrap_or_default();
    let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let m = &v["metadata"];
    Change::delete(
        group,
        v["kind"].as_str().unwrap_or_default(),
        m["namespace"].as_str(),
        m["name"].as_str().unwrap_or_default(),
    )
}

fn requests() -> Vec<OwnedRequest> {
    let mut out = Vec::new();
    for src in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "192.0.2.1"] {
        for dst in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"] {
            for port in [80, 443] {
                let text =
                    format!(r#"{{"source": {{"ip": "{src}"}}, "destination": {{"ip": "{dst}", "port": {port}}}}}"#);
                if let Ok(r) = OwnedRequest::from_json(&text) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// Every decision of `engine`, rendered with names (generations and ids may differ).
fn decisions(engine: &Engine) -> Vec<String> {
    let Some(snap) = engine.snapshot() else { return vec!["no bundle".into()] };
    requests()
        .iter()
        .map(|r| {
            let d = snap.decide(&r.as_request());
            format!(
                "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                d.action,
                d.reason,
                d.side,
                snap.tier_name(d.tier),
                snap.policy_name(d.policy),
                d.rule,
                d.peer,
                d.staged
            )
        })
        .collect()
}

fn full_load(model: &BTreeMap<usize, usize>) -> Result<Engine, crate::LoadError> {
    let engine = Engine::new(Config::default());
    // In the order the objects were first written, not the store's key order.
    let text: Vec<String> = model.iter().map(|(o, v)| version(*o, *v).to_string()).collect();
    engine.load_str(&text.join("\n---\n"))?;
    Ok(engine)
}

#[derive(Debug, Clone)]
enum Step {
    Upsert(usize, usize),
    Delete(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..OBJECTS, 0..12usize).prop_map(|(o, v)| Step::Upsert(o, v)),
        1 => (0..OBJECTS).prop_map(Step::Delete),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// After every change set, an engine fed by `apply` decides every request exactly as an
    /// engine that loaded the same objects in full; a change set is accepted exactly when
    /// the full load of its result is, and a rejected one changes nothing.
    #[test]
    fn apply_matches_full_load(sets in prop::collection::vec(prop::collection::vec(step(), 1..4), 1..14)) {
        let engine = Engine::new(Config::default());
        let mut model: BTreeMap<usize, usize> = BTreeMap::new();
        let mut reference = Engine::new(Config::default());
        for set in sets {
            let mut next = model.clone();
            let mut changes = Vec::new();
            for s in &set {
                match *s {
                    Step::Upsert(o, v) => {
                        next.insert(o, v);
                        changes.push(Change::upsert_from(format!("object {o}"), version(o, v)));
                    }
                    Step::Delete(o) => {
                        next.remove(&o);
                        changes.push(delete_of(o));
                    }
                }
            }
            let before = decisions(&engine);
            let applied = engine.apply(changes);
            let full = full_load(&next);
            prop_assert_eq!(applied.is_ok(), full.is_ok(), "apply {:?} vs full load {:?}", applied.as_ref().err(), full.as_ref().err());
            match full {
                Ok(f) => {
                    model = next;
                    reference = f;
                    prop_assert_eq!(engine.object_count(), model.len());
                }
                Err(_) => prop_assert_eq!(decisions(&engine), before),
            }
            prop_assert_eq!(decisions(&engine), decisions(&reference));
        }
    }
}

fn policy_text(port: u16) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: web, namespace: shop}}\n\
         spec: {{selector: app == 'web', ingress: [{{action: Allow, protocol: TCP, destination: {{ports: [{port}]}}}}]}}\n"
    )
}

fn web_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
           "status": {"podIP": "10.0.0.2"}})
}

fn to(port: u16) -> OwnedRequest {
    let text = format!(r#"{{"source": {{"ip": "10.0.0.1"}}, "destination": {{"ip": "10.0.0.2", "port": {port}}}}}"#);
    OwnedRequest::from_json(&text).unwrap_or_else(|e| unreachable!("{e}"))
}

#[test]
fn a_change_set_is_all_or_nothing() {
    let engine = Engine::new(Config::default());
    let r = engine.apply(vec![Change::upsert(web_pod()), Change::upsert_text("p.yaml", policy_text(80))]).unwrap();
    assert_eq!((r.generation, r.upserted, r.objects), (1, 2, 2));
    assert!(engine.decide(&to(80).as_request()).allowed());
    // A valid pod change with an invalid policy version: nothing changes.
    let moved = json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
                       "status": {"podIP": "10.0.0.9"}});
    let bad = policy_text(80).replace("app == 'web'", "app ==");
    let e = engine.apply(vec![Change::upsert(moved), Change::upsert_text("bad.yaml", bad)]).unwrap_err();
    assert_eq!(e.file, "bad.yaml");
    assert_ne!(e.kind, LoadErrorKind::Empty);
    assert!(engine.decide(&to(80).as_request()).allowed(), "the last valid policy and pod stay");
    assert_eq!(engine.decide(&to(80).as_request()).generation, 1);
}

#[test]
fn lenient_apply_rejects_only_the_invalid_upserts() {
    let engine = Engine::new(Config::default());
    engine.apply(vec![Change::upsert(web_pod()), Change::upsert_text("p.yaml", policy_text(80))]).unwrap();
    // The policy's new version is invalid (its last valid version stays), a new deny
    // policy is invalid (absent, reported), and a valid new policy opens port 8080.
    let bad_update = policy_text(443).replace("app == 'web'", "app ==");
    let bad_new = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: deny}\n\
                   spec: {selector: all(), ingress: [{action: Deny, protocol: TCPP}]}\n";
    let good_new = policy_text(8080).replace("name: web,", "name: web-alt,");
    let r = engine
        .apply_lenient(vec![
            Change::upsert_text("p.yaml", bad_update),
            Change::upsert_text("deny.yaml", bad_new),
            Change::upsert_text("alt.yaml", good_new),
        ])
        .unwrap();
    let mut files: Vec<&str> = r.rejected.iter().map(|e| e.file.as_str()).collect();
    files.sort();
    assert_eq!(files, ["deny.yaml", "p.yaml"]);
    assert_eq!((r.upserted, r.objects), (1, 3));
    assert!(engine.decide(&to(80).as_request()).allowed(), "the last valid version of p.yaml stays");
    assert!(!engine.decide(&to(443).as_request()).allowed());
    assert!(engine.decide(&to(8080).as_request()).allowed());
}

#[test]
fn a_delete_that_breaks_another_object_is_refused() {
    let engine = Engine::new(Config::default());
    let tier = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100}\n";
    let gnp = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: security.deny}\n\
               spec: {tier: security, selector: all(), ingress: [{action: Deny}]}\n";
    engine
        .apply(vec![Change::upsert(web_pod()), Change::upsert_text("t", tier), Change::upsert_text("g", gnp)])
        .unwrap();
    assert!(!engine.decide(&to(80).as_request()).allowed());
    let drop_tier = || vec![Change::delete("projectcalico.org", "Tier", None, "security")];
    assert!(engine.apply_lenient(drop_tier()).is_err());
    assert!(engine.apply(drop_tier()).is_err());
    assert_eq!(engine.object_count(), 3);
    assert!(!engine.decide(&to(80).as_request()).allowed(), "the deny stays in force");
}

#[test]
fn load_then_apply_composes_and_deletes_find_defaulted_namespaces() {
    let engine = Engine::new(Config::default());
    // A namespaced policy written without a namespace is in `default`.
    let text = format!(
        "{}---\n{}",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default, labels: {app: web}}\nstatus: {podIP: 10.0.0.2}\n",
        policy_text(80).replace(", namespace: shop", "")
    );
    engine.load_str(&text).unwrap();
    assert_eq!(engine.object_count(), 2);
    assert!(engine.decide(&to(80).as_request()).allowed());
    let r = engine.apply(vec![Change::delete("crd.projectcalico.org", "NetworkPolicy", None, "web")]).unwrap();
    assert_eq!((r.deleted, r.objects, r.generation), (1, 1, 2));
    let d = engine.decide(&to(80).as_request());
    assert_eq!((d.policy, d.generation), (None, 2), "no policy selects the pod any more");
    // Deleting what is not there changes nothing but still succeeds.
    let r = engine.apply(vec![Change::delete("", "Pod", Some("default"), "nope")]).unwrap();
    assert_eq!(r.deleted, 0);
}

#[test]
fn objects_lists_what_is_in_force_and_reloads_to_the_same_decisions() {
    let engine = Engine::new(Config::default());
    assert_eq!(engine.objects(), (0, vec![]));
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [web_pod()]});
    engine.apply(vec![Change::upsert(list), Change::upsert_text("p.yaml", policy_text(80))]).unwrap();
    let (generation, objects) = engine.objects();
    assert_eq!(generation, 1);
    let keys: Vec<String> = objects.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("Pod ")), "the List item is listed on its own: {keys:?}");
    // A delete shows at once, with the new generation.
    let (_, before) = engine.objects();
    let pod = before.iter().find(|(k, _)| k.kind == "Pod").unwrap().0.clone();
    engine.apply(vec![Change::Delete(pod)]).unwrap();
    let (generation, after) = engine.objects();
    assert_eq!((generation, after.len()), (2, 1));
    // The values, loaded as a bundle, decide as the engine does.
    let again = Engine::new(Config::default());
    let docs: Vec<Change> = before.iter().map(|(_, v)| Change::upsert((**v).clone())).collect();
    again.apply(docs).unwrap();
    engine.apply(vec![Change::upsert(web_pod())]).unwrap();
    assert!(again.decide(&to(80).as_request()).allowed());
    assert!(!again.decide(&to(81).as_request()).allowed());
    for port in [80, 81] {
        let (a, b) = (engine.decide(&to(port).as_request()), again.decide(&to(port).as_request()));
        assert_eq!((a.action, a.reason, a.rule), (b.action, b.reason, b.rule), "port {port}");
    }
}
