//! The etcd source against a real etcd when things go wrong: etcd restarted on the same data
//! directory, a watch lost while history is compacted and a key deleted (only a relist can
//! find the deletion), and a member of a three-member cluster killed. Each test starts its
//! own etcd on loopback (temporary data directories), is bounded in time, asserts decisions
//! (not only status), and passes with `SKIPPED: ...` when no `etcd` binary is installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use etcd_client::CompactionOptions;
use palisade::{Config, Engine, OwnedRequest};
use palisade_sync::etcd::{CALICO_PREFIX, EtcdSource};
use palisade_sync::{Event, Options, Syncer, wait_for};
use tokio::sync::mpsc;

use common::{Proxy, etcd_client, start_cluster, start_etcd};

/// The workload, as Calico's etcd datastore describes it (SPEC 9.2): a WorkloadEndpoint and
/// its namespace's Profile (whose rules allow, as kube-controllers writes them).
const WEP: (&str, &str) = (
    "workloadendpoints/shop/node1-k8s-web-eth0",
    r#"{"metadata":{"labels":{"app":"web"}},"spec":{"pod":"web","ipNetworks":["10.0.0.2/32"],"profiles":["kns.shop"]}}"#,
);
const PROFILE: (&str, &str) = (
    "profiles/kns.shop",
    r#"{"spec":{"ingress":[{"action":"Allow"}],"egress":[{"action":"Allow"}],"labelsToApply":{"pcns.projectcalico.org/name":"shop"}}}"#,
);

/// Puts the workload and its profile.
async fn workload(kv: &mut etcd_client::Client) {
    for (key, value) in [WEP, PROFILE] {
        kv.put(format!("{CALICO_PREFIX}{key}"), value, None).await.unwrap();
    }
}
const WAIT: Duration = Duration::from_secs(20);

fn to(port: u16) -> OwnedRequest {
    OwnedRequest::from_json(&format!(
        r#"{{"source": {{"ip": "10.0.0.1"}}, "destination": {{"ip": "10.0.0.2", "port": {port}}}}}"#
    ))
    .unwrap()
}

fn allowed(engine: &Engine, port: u16) -> bool {
    engine.decide(&to(port).as_request()).allowed()
}

/// A GlobalNetworkPolicy `name` on `app == 'web'` with one ingress rule (`Allow` or `Deny`)
/// for TCP `port`, as Calico stores it (order 10).
fn gnp(name: &str, action: &str, port: u16) -> String {
    gnp_ordered(name, action, 10, &[port])
}

/// The same with an order and several ports.
fn gnp_ordered(name: &str, action: &str, order: u32, ports: &[u16]) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let ports = ports.join(",");
    format!(
        r#"{{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{{"name":"{name}"}},
            "spec":{{"selector":"app == 'web'","order":{order},"ingress":[{{"action":"{action}","protocol":"TCP","destination":{{"ports":[{ports}]}}}}]}}}}"#
    )
}

fn gnp_key(name: &str) -> String {
    format!("{CALICO_PREFIX}globalnetworkpolicies/{name}")
}

fn fast() -> Options {
    Options { debounce: Duration::from_millis(30), max_delay: Duration::from_millis(300), ..Options::default() }
}

/// An engine, its syncer fed by an `EtcdSource` on `endpoints`, and a record of the
/// source's events.
fn follow(endpoints: Vec<String>) -> (Arc<Engine>, Syncer, Seen) {
    follow_with(endpoints, Duration::from_secs(30))
}

/// As [`follow`], with the source's `idle` (the silence after which it asks for progress).
fn follow_with(endpoints: Vec<String>, idle: Duration) -> (Arc<Engine>, Syncer, Seen) {
    let engine = Arc::new(Engine::new(Config::default()));
    let syncer = Syncer::new(engine.clone(), fast());
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(syncer.clone().run(rx));
    let seen: Seen = Arc::default();
    // The source's events pass through a recorder: the tests tell a relist from a watch
    // event by them.
    let (src_tx, mut src_rx) = mpsc::channel::<Event>(64);
    let record = seen.clone();
    let fwd = tx.clone();
    tokio::spawn(async move {
        while let Some(e) = src_rx.recv().await {
            let what = match &e {
                Event::Resync(all) => format!("resync {}", all.len()),
                Event::ResyncScoped { items, .. } => format!("resync {}", items.len()),
                Event::Unserved(kinds) => format!("unserved {kinds:?}"),
                Event::Upsert(id, _) => format!("upsert {id}"),
                Event::Remove(id) => format!("remove {id}"),
                Event::Error(e) => format!("error {e}"),
            };
            record.lock().unwrap().push(what);
            if fwd.send(e).await.is_err() {
                return;
            }
        }
    });
    let mut source = EtcdSource::new(endpoints);
    source.timeout = Duration::from_secs(2);
    source.idle = idle;
    tokio::spawn(source.run(src_tx));
    (engine, syncer, seen)
}

type Seen = Arc<std::sync::Mutex<Vec<String>>>;

/// Waits until `pred` holds for the engine's decisions (the source's events in the failure).
async fn until(engine: &Engine, seen: &Seen, what: &str, pred: impl Fn(&Engine) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !pred(engine) {
        if tokio::time::Instant::now() >= deadline {
            let events = seen.lock().unwrap().clone();
            panic!("not within {WAIT:?}: {what}; the source's events: {events:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_stays_current_across_an_etcd_restart() {
    let Some(mut etcd) = start_etcd() else { return };
    let result = tokio::time::timeout(Duration::from_secs(90), async {
        let mut kv = etcd_client(&etcd.url()).await;
        workload(&mut kv).await;
        kv.put(gnp_key("web"), gnp("web", "Allow", 80), None).await.unwrap();
        let (engine, syncer, seen) = follow(vec![etcd.url()]);
        let s = wait_for(&syncer, WAIT, |s| s.synced).await.expect("initial sync");
        assert_eq!(s.objects, 3, "{s:?}");
        assert!(allowed(&engine, 80));
        assert!(!allowed(&engine, 443), "the policy's end of tier denies 443");
        let generation = s.generation;

        // The outage: the last good snapshot keeps answering, the status says what is wrong.
        etcd.members[0].kill();
        let s = wait_for(&syncer, WAIT, |s| s.last_error.is_some()).await.expect("the outage is reported");
        assert!(s.last_error.as_deref().unwrap().contains("etcd"), "{s:?}");
        for _ in 0..5 {
            assert!(allowed(&engine, 80));
            assert!(!allowed(&engine, 443));
            assert_eq!(engine.decide(&to(80).as_request()).generation, generation);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(syncer.status().synced, "an outage does not unsync");

        // Same data directory, same port: a change made after the restart arrives.
        etcd.members[0].start();
        let mut kv = etcd_client(&etcd.url()).await;
        kv.put(gnp_key("web"), gnp("web", "Allow", 443), None).await.unwrap();
        until(&engine, &seen, "the change after the restart", |e| allowed(e, 443) && !allowed(e, 80)).await;
        let s = wait_for(&syncer, WAIT, |s| s.last_error.is_none()).await.expect("the error clears");
        assert!(s.generation > generation, "{s:?}");
        assert_eq!(s.objects, 3, "{s:?}");
    })
    .await;
    drop(etcd);
    result.expect("the restart test took more than 90 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_missed_while_the_watch_was_lost_is_found_after_compaction() {
    let Some(etcd) = start_etcd() else { return };
    let result = tokio::time::timeout(Duration::from_secs(90), async {
        let mut kv = etcd_client(&etcd.url()).await;
        // A deny on 80 first (order 1), then a policy that allows 80 and one more port that
        // keeps changing (order 10): 80 flips to allowed exactly when deny-80 is gone.
        kv.put(gnp_key("deny-80"), gnp_ordered("deny-80", "Deny", 1, &[80]), None).await.unwrap();
        kv.put(gnp_key("churn"), gnp_ordered("churn", "Allow", 10, &[80, 1000]), None).await.unwrap();
        workload(&mut kv).await;
        // The source reaches etcd through a proxy that the test can cut.
        let proxy = Proxy::start(etcd.members[0].client_port).await;
        let (engine, syncer, seen) = follow(vec![proxy.url.clone()]);
        let s = wait_for(&syncer, WAIT, |s| s.synced).await.expect("initial sync");
        assert_eq!(s.objects, 4, "{s:?}");
        assert!(!allowed(&engine, 80), "deny-80 denies");
        assert!(allowed(&engine, 1000));

        // A watch event while connected.
        kv.put(gnp_key("churn"), gnp_ordered("churn", "Allow", 10, &[80, 1001]), None).await.unwrap();
        until(&engine, &seen, "a watch event", |e| allowed(e, 1001) && !allowed(e, 1000)).await;

        // Lose the watch (etcd stays up), then delete deny-80, change the other policy,
        // and compact the history physically past everything the watcher had seen.
        proxy.cut();
        wait_for(&syncer, WAIT, |s| s.last_error.is_some()).await.expect("the lost watch is reported");
        kv.delete(gnp_key("deny-80"), None).await.unwrap();
        let mut revision = 0;
        for port in 1002..1012 {
            let r = kv.put(gnp_key("churn"), gnp_ordered("churn", "Allow", 10, &[80, port]), None).await.unwrap();
            revision = r.header().unwrap().revision();
        }
        kv.compact(revision, Some(CompactionOptions::new().with_physical())).await.unwrap();
        // The deleted key's event is gone from etcd's history: only a list can show it.
        let old = kv.watch(gnp_key("deny-80"), Some(etcd_client::WatchOptions::new().with_start_revision(2))).await;
        if let Ok(mut w) = old {
            loop {
                let r = tokio::time::timeout(WAIT, w.message()).await.expect("an answer to a compacted watch");
                let Ok(Some(r)) = r else { break };
                if r.created() && !r.canceled() {
                    continue;
                }
                assert!(r.compact_revision() > 0, "the history before {revision} is compacted: {r:?}");
                break;
            }
        }
        // Meanwhile the last good snapshot serves.
        assert!(!allowed(&engine, 80));
        assert!(allowed(&engine, 1001));
        let before = seen.lock().unwrap().iter().filter(|e| e.starts_with("resync")).count();

        proxy.heal();
        until(&engine, &seen, "the deletion, found by a relist", |e| {
            allowed(e, 80) && allowed(e, 1011) && !allowed(e, 1001)
        })
        .await;
        let s = wait_for(&syncer, WAIT, |s| s.objects == 3 && s.last_error.is_none()).await.expect("3 objects");
        assert!(s.rejected.is_empty(), "{s:?}");
        let events = seen.lock().unwrap().clone();
        let after = events.iter().filter(|e| e.starts_with("resync")).count();
        assert!(after > before, "the source relisted: {events:?}");
        assert!(!events.iter().any(|e| e.starts_with("remove")), "no watch event carried the delete: {events:?}");

        // And it watches again after the relist.
        kv.put(gnp_key("deny-80"), gnp_ordered("deny-80", "Deny", 1, &[80]), None).await.unwrap();
        until(&engine, &seen, "a watch event after the relist", |e| !allowed(e, 80)).await;
    })
    .await;
    drop(etcd);
    result.expect("the compaction test took more than 90 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_keep_coming_when_a_member_of_three_is_killed() {
    let Some(mut etcd) = start_cluster(3) else { return };
    let result = tokio::time::timeout(Duration::from_secs(150), async {
        let urls = etcd.urls();
        let mut kv = etcd_client(&urls[0]).await;
        workload(&mut kv).await;
        kv.put(gnp_key("web"), gnp("web", "Allow", 2000), None).await.unwrap();
        let (engine, syncer, seen) = follow(urls.clone());
        let s = wait_for(&syncer, WAIT, |s| s.synced).await.expect("initial sync");
        assert_eq!(s.objects, 3, "{s:?}");
        assert!(allowed(&engine, 2000));

        // Kill each member in turn (so the one carrying the source's watch is among them),
        // write through a survivor, and bring the member back before the next round (two
        // down would lose the quorum).
        for (round, victim) in [0usize, 1, 2].into_iter().enumerate() {
            let port = 2001 + round as u16;
            etcd.members[victim].kill();
            let survivor = (victim + 1) % 3;
            let mut kv = etcd_client(&urls[survivor]).await;
            // The first write after a leader's death may fail until the election: retry.
            let deadline = tokio::time::Instant::now() + WAIT;
            while kv.put(gnp_key("web"), gnp("web", "Allow", port), None).await.is_err() {
                assert!(tokio::time::Instant::now() < deadline, "no write through {} in {WAIT:?}", urls[survivor]);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            until(&engine, &seen, &format!("the write with member {} down", etcd.members[victim].name), |e| {
                allowed(e, port) && !allowed(e, port - 1)
            })
            .await;
            etcd.members[victim].start();
            etcd_client(&urls[victim]).await;
        }
        let s = syncer.status();
        assert_eq!(s.objects, 3, "{s:?}");
        assert!(s.rejected.is_empty(), "{s:?}");
    })
    .await;
    drop(etcd);
    result.expect("the three-member test took more than 150 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_partition_is_noticed_by_an_unanswered_progress_request() {
    let Some(etcd) = start_etcd() else { return };
    let result = tokio::time::timeout(Duration::from_secs(90), async {
        let mut kv = etcd_client(&etcd.url()).await;
        workload(&mut kv).await;
        kv.put(gnp_key("web"), gnp("web", "Allow", 80), None).await.unwrap();
        let proxy = Proxy::start(etcd.members[0].client_port).await;
        let (engine, syncer, seen) = follow_with(vec![proxy.url.clone()], Duration::from_millis(500));
        wait_for(&syncer, WAIT, |s| s.synced).await.expect("initial sync");
        assert!(allowed(&engine, 80));
        // Quiet for longer than `idle`: progress is asked and answered, nothing is lost.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(syncer.status().last_error.is_none(), "{:?}", seen.lock().unwrap());

        // Every byte held, no connection closed: only the unanswered progress request can
        // tell the source that its watch is dead.
        proxy.freeze();
        kv.put(gnp_key("web"), gnp("web", "Allow", 443), None).await.unwrap();
        let s = wait_for(&syncer, WAIT, |s| s.last_error.is_some()).await.expect("the silent partition is noticed");
        assert!(allowed(&engine, 80), "the last snapshot serves: {s:?}");
        assert!(!allowed(&engine, 443));
        assert!(seen.lock().unwrap().iter().any(|e| e.contains("no answer to a progress request")));

        proxy.heal();
        until(&engine, &seen, "the write made during the partition", |e| allowed(e, 443) && !allowed(e, 80)).await;
    })
    .await;
    drop(etcd);
    result.expect("the partition test took more than 90 s");
}
