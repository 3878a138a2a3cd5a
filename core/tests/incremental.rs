//! Incremental snapshots agree with a full build: random sequences of pod changes (and
//! now and then another kind of change, which takes the full path) are applied to an
//! engine; after every step its snapshot must decide, trace and render exactly as a
//! snapshot built from scratch out of the same objects, with both evaluators.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicUsize, Ordering};

use palisade::store::Change;
use palisade::{Config, Engine, OwnedRequest, Snapshot};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

const BASE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: web, labels: {team: b}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: frontend, namespace: shop, labels: {role: fe}}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  selector: app == 'api'
  ingress:
  - {action: Allow, protocol: TCP, source: {selector: app == 'front'}, destination: {ports: [8080]}}
  - {action: Allow, protocol: TCP, source: {serviceAccounts: {names: [frontend]}}, destination: {ports: [9090]}}
  - {action: Allow, protocol: TCP, destination: {ports: [http]}}
  - action: Deny
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: from-team-b}
spec:
  order: 10
  selector: app == 'front'
  egress:
  - {action: Deny, protocol: TCP, destination: {namespaceSelector: team == 'b', ports: [80]}}
  - action: Pass
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: a}}}]
    ports: [{port: 80}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/shop/sa/frontend]}}]
    to: [{operation: {ports: ["7070"]}}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: web}
spec:
  selector: {matchLabels: {app: web}}
  mtls: {mode: STRICT}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: outside, labels: {app: front}}
spec: {nets: [10.9.0.0/16]}
"#;

const NAMESPACES: [&str; 2] = ["shop", "web"];
const ACCOUNTS: [&str; 2] = ["default", "frontend"];
const APPS: [&str; 4] = ["api", "front", "web", "other"];
/// IPs the pods take; requests also come from 10.9.0.1 (the network set) and 10.8.0.1.
const IPS: [&str; 8] = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "fd00::7"];
const PORTS: [u16; 5] = [80, 7070, 8080, 9090, 443];

/// A pod as the generator draws it.
#[derive(Debug, Clone)]
struct Pod {
    name: usize,
    namespace: usize,
    account: usize,
    app: usize,
    ip: usize,
    /// A second IP (dual stack), when `Some`.
    ip2: Option<usize>,
    named_port: bool,
    finished: bool,
    sidecar: bool,
    /// A label no selector reads (as a rollout's `pod-template-hash`).
    hash: usize,
}

fn pod_value(p: &Pod) -> Value {
    let mut ips = vec![json!({"ip": IPS[p.ip]})];
    if let Some(i) = p.ip2.filter(|&i| i != p.ip) {
        ips.push(json!({"ip": IPS[i]}));
    }
    let mut containers = vec![json!({"name": "app",
        "ports": if p.named_port { json!([{"name": "http", "containerPort": 8081}]) } else { json!([]) }})];
    if p.sidecar {
        containers.push(json!({"name": "istio-proxy"}));
    }
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("p{}", p.name), "namespace": NAMESPACES[p.namespace],
                     "labels": {"app": APPS[p.app], "pod-template-hash": format!("h{}", p.hash)}},
        "spec": {"serviceAccountName": ACCOUNTS[p.account], "containers": containers},
        "status": {"phase": if p.finished { "Succeeded" } else { "Running" }, "podIPs": ips}})
}

fn pod() -> impl Strategy<Value = Pod> {
    (0..6usize, 0..2usize, 0..2usize, 0..4usize, 0..8usize, prop::option::weighted(0.1, 0..8usize), any::<bool>())
        .prop_flat_map(|(name, namespace, account, app, ip, ip2, named_port)| {
            (prop::bool::weighted(0.05), prop::bool::weighted(0.03), 0..3usize).prop_map(
                move |(finished, sidecar, hash)| Pod {
                    name,
                    namespace,
                    account,
                    app,
                    ip,
                    ip2,
                    named_port,
                    finished,
                    sidecar,
                    hash,
                },
            )
        })
}

#[derive(Debug, Clone)]
enum Step {
    Upsert(Vec<Pod>),
    Delete(usize, usize),
    /// A namespace relabelled: not a pod change, so a full build.
    Relabel(usize, bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => prop::collection::vec(pod(), 1..3).prop_map(Step::Upsert),
        3 => (0..6usize, 0..2usize).prop_map(|(n, ns)| Step::Delete(n, ns)),
        1 => (0..2usize, any::<bool>()).prop_map(|(ns, b)| Step::Relabel(ns, b)),
    ]
}

fn changes(step: &Step) -> Vec<Change> {
    match step {
        Step::Upsert(pods) => pods.iter().map(|p| Change::upsert(pod_value(p))).collect(),
        Step::Delete(n, ns) => vec![Change::delete("", "Pod", Some(NAMESPACES[*ns]), &format!("p{n}"))],
        Step::Relabel(ns, b) => vec![Change::upsert(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACES[*ns], "labels": {"team": if *b { "a" } else { "b" }}}}))],
    }
}

#[derive(Debug, Clone)]
struct Req {
    src: usize,
    dst: usize,
    port: usize,
    principal: Option<usize>,
}

fn request_ips() -> Vec<&'static str> {
    IPS.iter().copied().chain(["10.9.0.1", "10.8.0.1"]).collect()
}

fn req() -> impl Strategy<Value = Req> {
    let n = request_ips().len();
    (0..n, 0..n, 0..PORTS.len(), prop::option::of(0..2usize)).prop_map(|(src, dst, port, principal)| Req {
        src,
        dst,
        port,
        principal,
    })
}

fn owned(r: &Req) -> OwnedRequest {
    let ips = request_ips();
    let principal =
        r.principal.map(|a| format!(r#", "principal": "spiffe://cluster.local/ns/shop/sa/{}""#, ACCOUNTS[a]));
    let (src, dst) = (ips[r.src], ips[r.dst]);
    if src.contains(':') != dst.contains(':') {
        // Mixed families are refused the same way by both; keep the pair meaningful.
        return owned(&Req { dst: r.src, ..r.clone() });
    }
    OwnedRequest::from_json(&format!(
        r#"{{"source": {{"ip": "{src}"{}}}, "destination": {{"ip": "{dst}", "port": {}}}, "protocol": "TCP"}}"#,
        principal.unwrap_or_default(),
        PORTS[r.port]
    ))
    .unwrap()
}

/// The full build of the engine's objects, from scratch.
fn rebuilt(engine: &Engine) -> Option<Snapshot> {
    let (generation, objects) = engine.objects();
    let values = objects.into_iter().map(|(k, v)| (k.to_string(), (*v).clone())).collect();
    let bundle = palisade::load::load_values(values, engine.config()).ok()?;
    Some(Snapshot::from_bundle(bundle, engine.config(), generation))
}

fn rendered(s: &Snapshot, t: &palisade::trace::Trace) -> Vec<String> {
    let b = s.bundle();
    [&t.egress, &t.ingress].into_iter().flatten().flatten().enumerate().map(|(i, h)| h.render(i, b)).collect()
}

static INCREMENTAL: AtomicUsize = AtomicUsize::new(0);
static FULL: AtomicUsize = AtomicUsize::new(0);
static OVERLAID_DECISIONS: AtomicUsize = AtomicUsize::new(0);

fn check(initial: &[Pod], steps: &[Step], reqs: &[Req]) -> Result<(), TestCaseError> {
    let engine = Engine::new(Config::default());
    engine.load_str(BASE).unwrap();
    // The initial pods go through the full path: their label sets become identities.
    let mut seen_ips = std::collections::HashSet::new();
    let first: Vec<Change> = initial
        .iter()
        .enumerate()
        .filter(|(_, p)| seen_ips.insert(p.ip) && p.ip2.is_none())
        .map(|(i, p)| Change::upsert(pod_value(&Pod { name: i + 10, sidecar: false, ..p.clone() })))
        .collect();
    engine.apply(first).unwrap();
    let requests: Vec<OwnedRequest> = reqs.iter().map(owned).collect();
    for step in steps {
        let before = engine.snapshot().unwrap().generation();
        match engine.apply(changes(step)) {
            Ok(report) => {
                let counter = if report.incremental { &INCREMENTAL } else { &FULL };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            // A rejected change set (two pods on one IP) changes nothing.
            Err(_) => prop_assert_eq!(engine.snapshot().unwrap().generation(), before),
        }
        let inc = engine.snapshot().unwrap();
        let full = rebuilt(&engine).expect("the objects in force load");
        if inc.incremental_changes() > 0 {
            OVERLAID_DECISIONS.fetch_add(requests.len(), Ordering::Relaxed);
        }
        prop_assert_eq!(inc.bundle().endpoints.len(), full.bundle().endpoints.len());
        for r in &requests {
            let r = r.as_request();
            let (mut a, ta) = inc.decide_traced(&r);
            let (b, tb) = full.decide_traced(&r);
            a.generation = b.generation;
            prop_assert_eq!(a, b, "compiled, incremental vs full, {:?} after {:?}", r, step);
            prop_assert_eq!(rendered(&inc, &ta), rendered(&full, &tb));
            let mut c = inc.decide_reference(&r);
            c.generation = b.generation;
            prop_assert_eq!(c, b, "reference on the incremental snapshot's bundle, {:?}", r);
            // `rebuilt` takes the engine's generation, so the renderings compare whole.
            let (ea, eb) = (inc.explain(&r), full.explain(&r));
            prop_assert_eq!(ea.json(), eb.json());
            prop_assert_eq!(ea.to_string(), eb.to_string());
        }
    }
    Ok(())
}

#[test]
fn incremental_snapshots_decide_as_a_full_build() {
    let cases = std::env::var("PALISADE_INCREMENTAL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96);
    let mut runner = TestRunner::new(RunnerConfig { cases, ..RunnerConfig::default() });
    let strategy = (
        prop::collection::vec(pod(), 4..10),
        prop::collection::vec(step(), 1..12),
        prop::collection::vec(req(), 24..40),
    );
    runner.run(&strategy, |(initial, steps, reqs)| check(&initial, &steps, &reqs)).unwrap();
    // Both paths were taken, and decisions were checked on overlaid snapshots.
    let (inc, full, decided) =
        (INCREMENTAL.load(Ordering::Relaxed), FULL.load(Ordering::Relaxed), OVERLAID_DECISIONS.load(Ordering::Relaxed));
    assert!(inc > cases as usize, "incremental applies: {inc}");
    assert!(full > cases as usize / 4, "full applies: {full}");
    assert!(decided > 1000, "decisions on overlaid snapshots: {decided}");
}

/// A running pod in `shop` with service account `frontend`, app `APPS[app]`, on `IPS[ip]`.
fn p(name: usize, app: usize, ip: usize) -> Pod {
    Pod {
        name,
        namespace: 0,
        account: 1,
        app,
        ip,
        ip2: None,
        named_port: false,
        finished: false,
        sidecar: false,
        hash: 0,
    }
}

#[test]
fn a_replica_is_incremental_and_a_new_label_set_is_not() {
    let engine = Engine::new(Config::default());
    engine.load_str(BASE).unwrap();
    // The first pod of its labels: a new identity, so a full build.
    let r = engine.apply(vec![Change::upsert(pod_value(&p(0, 0, 0)))]).unwrap();
    assert!(!r.incremental);
    let to = |dst: &str, port: u16| {
        OwnedRequest::from_json(&format!(
            r#"{{"source": {{"ip": "10.9.0.1"}}, "destination": {{"ip": "{dst}", "port": {port}}}, "protocol": "TCP"}}"#
        ))
        .unwrap()
    };
    let original = engine.decide(&to("10.0.0.1", 8081).as_request());
    assert!(original.policy.is_some(), "a policy of `app: api` decides: {original:?}");
    assert_eq!(engine.decide(&to("10.0.0.2", 8081).as_request()).reason, palisade::Reason::NoPolicy);
    // A replica: laid over the program, and decided as the original is.
    let r = engine.apply(vec![Change::upsert(pod_value(&p(1, 0, 1)))]).unwrap();
    assert!(r.incremental);
    assert_eq!(engine.snapshot().unwrap().incremental_changes(), 1);
    let replica = engine.decide(&to("10.0.0.2", 8081).as_request());
    assert_eq!((replica.action, replica.reason, replica.policy), (original.action, original.reason, original.policy));
    // A pod of a new rollout: only a label no selector reads differs, so the same identity.
    let rollout = Pod { hash: 1, ..p(4, 0, 4) };
    assert!(engine.apply(vec![Change::upsert(pod_value(&rollout))]).unwrap().incremental);
    let d = engine.decide(&to("10.0.0.5", 8081).as_request());
    assert_eq!((d.action, d.reason, d.policy), (original.action, original.reason, original.policy));
    // Deleted: the IP has no owner; the namespace profile no longer applies.
    let r = engine.apply(vec![Change::delete("", "Pod", Some("shop"), "p1")]).unwrap();
    assert!(r.incremental);
    assert_eq!(r.deleted, 1);
    let d = engine.decide(&to("10.0.0.2", 8081).as_request());
    assert_eq!(d.reason, palisade::Reason::NoPolicy);
    // A label set a selector tells apart: full build, and the overlay starts again.
    let r = engine.apply(vec![Change::upsert(pod_value(&p(2, 2, 2)))]).unwrap();
    assert!(!r.incremental);
    assert_eq!(engine.snapshot().unwrap().incremental_changes(), 0);
    // Two pods on one IP: refused whole, as a full build refuses it.
    let e = engine.apply(vec![Change::upsert(pod_value(&p(3, 0, 0)))]).unwrap_err();
    assert!(e.to_string().contains("also claimed"), "{e}");
}

#[test]
fn a_full_overlay_is_folded_in_and_still_decides_as_a_full_build() {
    let engine = Engine::new(Config::default());
    engine.load_str(BASE).unwrap();
    engine.apply((0..4).map(|a| Change::upsert(pod_value(&p(a, a, a)))).collect()).unwrap();
    // Pods come and go on IPs 4..7 until the overlay is full, and one change past it.
    let max = palisade::store::pods::MAX_OVERLAY;
    let mut most = 0;
    let mut n = 0;
    while n <= max {
        let (name, ip) = (10 + n % 3, 4 + n % 3);
        let change = if n % 2 == 0 {
            Change::upsert(pod_value(&p(name, n % 4, ip)))
        } else {
            Change::delete("", "Pod", Some("shop"), &format!("p{}", 10 + (n - 1) % 3))
        };
        let r = engine.apply(vec![change]).unwrap();
        assert!(r.incremental, "change {n}");
        most = most.max(engine.snapshot().unwrap().incremental_changes());
        n += 1;
    }
    let snap = engine.snapshot().unwrap();
    assert!(most >= max, "the overlay filled: {most}");
    assert!(snap.incremental_changes() < 4, "folded in, then one change: {}", snap.incremental_changes());
    let full = rebuilt(&engine).unwrap();
    for r in (0..request_ips().len()).flat_map(|s| (0..request_ips().len()).map(move |d| (s, d))) {
        for port in 0..PORTS.len() {
            let req = owned(&Req { src: r.0, dst: r.1, port, principal: Some(1) });
            let (mut a, b) = (snap.decide(&req.as_request()), full.decide(&req.as_request()));
            a.generation = b.generation;
            assert_eq!(a, b);
        }
    }
}

#[test]
fn emptying_a_bundle_of_pods_is_refused_as_a_full_build_refuses_it() {
    let engine = Engine::new(Config::default());
    engine.apply(vec![Change::upsert(pod_value(&p(0, 0, 0))), Change::upsert(pod_value(&p(1, 0, 1)))]).unwrap();
    // Nothing but pods: a delete takes the full path, which keeps what is left...
    let r = engine.apply(vec![Change::delete("", "Pod", Some("shop"), "p1")]).unwrap();
    assert!(!r.incremental);
    // ...and refuses to leave nothing, as loading an empty bundle is refused.
    let e = engine.apply(vec![Change::delete("", "Pod", Some("shop"), "p0")]).unwrap_err();
    assert_eq!(e.kind, palisade::LoadErrorKind::Empty);
    assert_eq!(engine.object_count(), 1);
}
