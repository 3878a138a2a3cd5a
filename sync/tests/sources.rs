//! The directory and etcd sources keep an engine current.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use palisade::{Change, Config, Engine, OwnedRequest, Reason};
use palisade_sync::{Event, Options, Syncer, etcd::EtcdSource, wait_for};
use tokio::sync::mpsc;

use common::{etcd_client, start_etcd};

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\nstatus: {podIP: 10.0.0.2}\n";

fn policy(port: u16) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: allow-web}}\n\
         spec: {{selector: app == 'web', ingress: [{{action: Allow, protocol: TCP, destination: {{ports: [{port}]}}}}]}}\n"
    )
}

fn to(port: u16) -> OwnedRequest {
    let text = format!(r#"{{"source": {{"ip": "10.0.0.1"}}, "destination": {{"ip": "10.0.0.2", "port": {port}}}}}"#);
    OwnedRequest::from_json(&text).unwrap()
}

fn allowed(engine: &Engine, port: u16) -> bool {
    engine.decide(&to(port).as_request()).allowed()
}

const WAIT: Duration = Duration::from_secs(10);

fn fast() -> Options {
    Options { debounce: Duration::from_millis(30), max_delay: Duration::from_millis(300), ..Options::default() }
}

#[cfg(unix)]
fn configmap_version(root: &Path, version: &str, port: u16) {
    let dir = root.join(version);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("pod.yaml"), POD).unwrap();
    std::fs::write(dir.join("policy.yaml"), policy(port)).unwrap();
    // The kubelet's atomic swap: a new symlink renamed over `..data`.
    let tmp = root.join("..data_tmp");
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, root.join("..data")).unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mounted_configmap_swap_is_one_batch() {
    let root = tempfile::tempdir().unwrap();
    configmap_version(root.path(), "..2026_01_01", 80);
    for f in ["pod.yaml", "policy.yaml"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), root.path().join(f)).unwrap();
    }
    let engine = Arc::new(Engine::new(Config::default()));
    assert_eq!(engine.decide(&to(80).as_request()).reason, Reason::NoBundle);
    let syncer = Syncer::new(engine.clone(), fast());
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(syncer.clone().run(rx));
    tokio::spawn(palisade_sync::dir::watch(root.path().to_path_buf(), tx, Duration::from_secs(5)));

    let s = wait_for(&syncer, WAIT, |s| s.synced).await.expect("initial sync");
    // Each file read once (not also through `..data` and `..2026_01_01`).
    assert_eq!((s.objects, s.batches, s.generation), (2, 1, 1), "{s:?}");
    assert!(allowed(&engine, 80));
    assert!(!allowed(&engine, 443));

    configmap_version(root.path(), "..2026_01_02", 443);
    let s = wait_for(&syncer, WAIT, |s| s.generation >= 2).await.expect("swap applied");
    assert!(!allowed(&engine, 80));
    assert!(allowed(&engine, 443));
    assert_eq!(s.objects, 2);
    assert!(s.rejected.is_empty(), "{s:?}");

    // An invalid new file is rejected and reported; what was in force stays.
    std::fs::write(
        root.path().join("broken.yaml"),
        policy(8080).replace("allow-web", "other").replace("app ==", "app == =="),
    )
    .unwrap();
    let s = wait_for(&syncer, WAIT, |s| !s.rejected.is_empty()).await.expect("rejection reported");
    assert!(s.rejected[0].contains("broken.yaml"), "{s:?}");
    assert!(allowed(&engine, 443));
    assert!(!allowed(&engine, 8080));
}

fn calico_json(yaml_port: u16, selector: &str) -> String {
    // As Calico stores it: the v3 resource as JSON.
    format!(
        r#"{{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{{"name":"allow-web"}},
            "spec":{{"selector":"{selector}","ingress":[{{"action":"Allow","protocol":"TCP","destination":{{"ports":[{yaml_port}]}}}}]}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calico_etcd_datastore_keeps_the_engine_current() {
    let Some(etcd) = start_etcd() else { return };
    let result = tokio::time::timeout(Duration::from_secs(60), async {
        let mut kv = etcd_client(&etcd.url()).await;
        let gnp_key = format!("{}globalnetworkpolicies/allow-web", palisade_sync::etcd::CALICO_PREFIX);
        kv.put(gnp_key.as_str(), calico_json(80, "app == 'web'"), None).await.unwrap();
        // A kind that carries no access rule (skipped by its key) and one without kind in
        // its value (taken from the key).
        kv.put(format!("{}ippools/default-ipv4", palisade_sync::etcd::CALICO_PREFIX), "{}", None).await.unwrap();
        let ns_key = format!("{}networkpolicies/shop/deny-9090", palisade_sync::etcd::CALICO_PREFIX);
        kv.put(
            ns_key.as_str(),
            r#"{"spec":{"selector":"app == 'web'","order":1,"ingress":[{"action":"Deny","protocol":"TCP","destination":{"ports":[9090]}}]}}"#,
            None,
        )
        .await
        .unwrap();

        let engine = Arc::new(Engine::new(Config::default()));
        let syncer = Syncer::new(engine.clone(), fast());
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(syncer.clone().run(rx));
        // Pods come from elsewhere (an embedder's informer) into the same syncer, and before
        // the datastore's first list: that list is scoped to the etcd prefix, so it must leave
        // the pod alone (an unscoped relist removed every item it did not name).
        tx.send(Event::Upsert("pod shop/web".into(), Change::upsert_text("pod shop/web", POD))).await.unwrap();
        // Nothing is applied before a complete list: the pod alone would make a snapshot without
        // the datastore's policies, which allows what the cluster denies.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let s = syncer.status();
        assert_eq!((s.batches, s.synced), (0, false), "{s:?}");
        assert_eq!(engine.decide(&to(9090).as_request()).reason, palisade::Reason::NoBundle);
        tokio::spawn(EtcdSource::new(vec![etcd.url()]).run(tx.clone()));
        let s = wait_for(&syncer, WAIT, |s| s.synced).await.expect("initial sync");
        assert_eq!(s.objects, 3, "the datastore's list kept the embedder's pod: {s:?}");
        assert!(allowed(&engine, 80));
        let d = engine.decide(&to(9090).as_request());
        assert!(!d.allowed());
        assert_eq!(engine.snapshot().unwrap().policy_name(d.policy), Some("np:shop/deny-9090"));

        // A change through etcd: one watch event, one new snapshot.
        let g = s.generation;
        kv.put(gnp_key.as_str(), calico_json(443, "app == 'web'"), None).await.unwrap();
        let s = wait_for(&syncer, WAIT, |s| s.generation > g).await.expect("update applied");
        assert!(!allowed(&engine, 80));
        assert!(allowed(&engine, 443));

        // An invalid version: rejected and reported, the last valid version stays.
        kv.put(gnp_key.as_str(), calico_json(8080, "app =="), None).await.unwrap();
        let s = wait_for(&syncer, WAIT, |x| x.generation > s.generation && !x.rejected.is_empty())
            .await
            .expect("rejection reported");
        assert!(s.rejected[0].contains("allow-web"), "{s:?}");
        assert!(allowed(&engine, 443));
        assert!(!allowed(&engine, 8080));

        // A delete removes the policy (the rejected version goes with it).
        kv.delete(gnp_key.as_str(), None).await.unwrap();
        let s = wait_for(&syncer, WAIT, |x| x.generation > s.generation && x.objects == 2).await.expect("delete applied");
        assert!(s.rejected.is_empty(), "{s:?}");
        let d = engine.decide(&to(443).as_request());
        assert_ne!(engine.snapshot().unwrap().policy_name(d.policy), Some("gnp:allow-web"));

        // Calico's etcd form of a workload (SPEC 9.2): a WorkloadEndpoint with its namespace
        // Profile becomes an endpoint carrying the profile's labels.
        let profile = format!("{}profiles/kns.shop", palisade_sync::etcd::CALICO_PREFIX);
        kv.put(profile.as_str(), r#"{"spec":{"labelsToApply":{"pcns.team":"red"}}}"#, None).await.unwrap();
        let wep = format!("{}workloadendpoints/shop/node1-k8s-web2-eth0", palisade_sync::etcd::CALICO_PREFIX);
        kv.put(
            wep.as_str(),
            r#"{"metadata":{"labels":{"app":"web"}},"spec":{"pod":"web2","ipNetworks":["10.0.0.7/32"],"profiles":["kns.shop"]}}"#,
            None,
        )
        .await
        .unwrap();
        let s = wait_for(&syncer, WAIT, |x| x.objects == 4).await.expect("WorkloadEndpoint and Profile applied");
        assert!(s.rejected.is_empty(), "{s:?}");
        let snap = engine.snapshot().unwrap();
        let ep = snap.bundle().endpoint_by_ip("10.0.0.7".parse().unwrap()).expect("the WorkloadEndpoint is an endpoint");
        assert_eq!((ep.namespace.as_str(), ep.name.as_str()), ("shop", "web2"));
        assert_eq!(ep.labels["pcns.team"], "red");
    })
    .await;
    drop(etcd);
    result.expect("the etcd test took more than 60 s");
}
