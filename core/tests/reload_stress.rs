//! Hot reload under load: reader threads decide continuously while a writer loads two
//! alternating bundles (and, every 50th time, a broken one). Every decision must equal the
//! reference evaluator's answer for the generation that made it; a failed load must leave
//! the previous snapshot serving; live memory must not grow across reloads (counting
//! allocator). `PALISADE_RELOADS` sets the number of reloads (default 2,000; 100,000 were
//! run locally, see RELIABILITY.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use palisade::{Config, Decision, Engine, OwnedRequest, Snapshot};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, live};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Two bundles that decide differently: `b` admits `a` on `/api` only (HTTP rule), or denies
/// `a` outright.
fn bundle(allow_api: bool) -> String {
    let rule = if allow_api {
        "{action: Allow, protocol: TCP, source: {selector: app == 'a'}, http: {paths: [{prefix: /api}]}}"
    } else {
        "{action: Deny, protocol: TCP, source: {selector: app == 'a'}}"
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: n, labels: {{app: a}}}}\nstatus: {{podIP: 10.0.0.1}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {{name: b, namespace: n, labels: {{app: b}}}}\nspec: {{serviceAccountName: b}}\nstatus: {{podIP: 10.0.0.2}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: ext, labels: {{kind: ext}}}}\nspec: {{nets: [192.0.2.0/24]}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: sec}}\nspec: {{order: 1, defaultAction: Pass}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: sec}}\nspec: {{tier: sec, selector: all(), types: [Ingress, Egress], ingress: [{{action: Log}}, {{action: Deny, source: {{selector: kind == 'ext'}}}}], egress: [{{action: Pass}}]}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: b, namespace: n}}\nspec: {{selector: app == 'b', ingress: [{rule}]}}\n"
    )
}

const REQUESTS: [&str; 6] = [
    r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}, "http": {"method": "GET", "path": "/api/x"}}"#,
    r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}, "http": {"method": "GET", "path": "/other"}}"#,
    r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
    r#"{"source": {"ip": "192.0.2.5"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
    r#"{"source": {"ip": "10.0.0.1", "principal": "spiffe://cluster.local/ns/n/sa/b"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
    r#"{"source": {"ip": "10.0.0.2", "principal": "spiffe://cluster.local/ns/n/sa/b"}, "destination": {"ip": "10.0.0.1", "port": 80}}"#,
];

/// The reference answers for a bundle, generation zeroed.
fn expected(text: &str, reqs: &[OwnedRequest]) -> Vec<Decision> {
    let s = Snapshot::build(&[palisade::load::Source { name: "b", text }], &Config::default(), 0).unwrap();
    reqs.iter().map(|r| s.decide_reference(&r.as_request())).collect()
}

#[test]
fn reload_under_concurrent_decide() {
    let reloads: u64 = std::env::var("PALISADE_RELOADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let bundles = [bundle(true), bundle(false)];
    let broken =
        format!("{}---\napiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {{name: h}}\n", bundles[0]);
    let reqs: Vec<OwnedRequest> = REQUESTS.iter().map(|r| OwnedRequest::from_json(r).unwrap()).collect();
    let want = [expected(&bundles[0], &reqs), expected(&bundles[1], &reqs)];
    assert_ne!(want[0], want[1], "the two bundles must decide differently");

    let engine = Arc::new(Engine::new(Config::default()));
    engine.load_str(&bundles[0]).unwrap(); // generation 1 = bundles[0]
    let stop = Arc::new(AtomicBool::new(false));
    let mismatches = Arc::new(AtomicU64::new(0));
    let decisions = Arc::new(AtomicU64::new(0));
    let readers = 3;
    let barrier = Arc::new(Barrier::new(readers + 1));
    let handles: Vec<_> = (0..readers)
        .map(|_| {
            let (engine, stop, mismatches, decisions, barrier) =
                (engine.clone(), stop.clone(), mismatches.clone(), decisions.clone(), barrier.clone());
            let reqs = reqs.clone();
            let want = want.clone();
            std::thread::spawn(move || {
                let borrowed: Vec<_> = reqs.iter().map(|r| r.as_request()).collect();
                let mut generations = std::collections::BTreeSet::new();
                let mut n = 0u64;
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    for (i, r) in borrowed.iter().enumerate() {
                        let d = engine.decide(r);
                        // Generation g was made from bundles[(g + 1) % 2].
                        let expect =
                            Decision { generation: d.generation, ..want[((d.generation + 1) % 2) as usize][i] };
                        if d != expect {
                            mismatches.fetch_add(1, Ordering::Relaxed);
                        }
                        generations.insert(d.generation);
                        n += 1;
                    }
                }
                decisions.fetch_add(n, Ordering::Relaxed);
                generations.len()
            })
        })
        .collect();
    barrier.wait();
    let mut baseline = 0isize;
    let mut generation = 1u64;
    for i in 0..reloads {
        if i % 50 == 49 {
            assert!(engine.load_str(&broken).is_err());
            assert_eq!(engine.snapshot().unwrap().generation(), generation, "a failed load changed the snapshot");
        }
        generation = engine.load_str(&bundles[((i + 1) % 2) as usize]).unwrap();
        assert_eq!(generation, i + 2);
        if i == 100 {
            baseline = live();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let end = live();
    let n = decisions.load(Ordering::Relaxed);
    println!("{reloads} reloads, {n} decisions, generations seen per reader {seen:?}, live bytes {baseline} -> {end}");
    assert_eq!(mismatches.load(Ordering::Relaxed), 0, "decisions differed from the reference for their generation");
    assert!(n > 0);
    assert!(seen.iter().all(|&g| g > 1), "every reader kept deciding across reloads: {seen:?}");
    if reloads > 200 {
        assert!(end - baseline < 512 * 1024, "live memory grew by {} bytes across reloads", end - baseline);
    }
}
