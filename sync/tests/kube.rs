//! The Kubernetes source keeps an engine current, against a mock API server.
//!
//! kube-rs's documented test pattern: a `tower-test` mock service behind `kube::Client::new`,
//! answered by a task that plays the API server. [`MockApi`] routes requests by path
//! (`/api/v1/pods`, `/apis/projectcalico.org/v3/globalnetworkpolicies`, ...) and by whether
//! they watch (`watch=true`), and answers each with the next scripted reply for it, in the
//! API server's JSON shapes: lists with `metadata.resourceVersion` and `metadata.continue`,
//! watch streams of newline-delimited `{"type": ..., "object": ...}` events. A path with no
//! scripted reply left gets an empty list, or a watch that stays open and quiet, so the
//! kinds a test does not use are listed and empty. No network: these machines cannot run an
//! API server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc as body_channel;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use palisade::{Config, Engine, OwnedRequest, Reason};
use palisade_sync::kube::KubeSource;
use palisade_sync::{Options, Status, Syncer, wait_for};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

type Body = UnsyncBoxBody<Bytes, std::io::Error>;
type Chunks = body_channel::UnboundedSender<Result<Frame<Bytes>, std::io::Error>>;

const PODS: &str = "/api/v1/pods";
const GNPS: &str = "/apis/projectcalico.org/v3/globalnetworkpolicies";

/// One scripted answer.
enum Reply {
    /// A status code and a JSON body.
    Json(u16, String),
    /// A watch stream: its body is what the test sends through the paired [`Watch`].
    Stream(body_channel::UnboundedReceiver<Result<Frame<Bytes>, std::io::Error>>),
    /// `.1`, once `.0` fires (or is dropped).
    Gated(oneshot::Receiver<()>, Box<Reply>),
}

#[derive(Default)]
struct Script {
    lists: HashMap<String, VecDeque<Reply>>,
    watches: HashMap<String, VecDeque<Reply>>,
    /// Paths whose list always fails: status code and reason (404 `NotFound`: a CRD that is
    /// not installed; 403 `Forbidden`: RBAC).
    failing: HashMap<String, (u16, &'static str)>,
    /// Every request, in order: `path?query`.
    log: Vec<String>,
    /// Default watch streams, kept open.
    held: Vec<Chunks>,
}

/// A scripted API server behind a `kube::Client`.
#[derive(Clone, Default)]
struct MockApi(Arc<Mutex<Script>>);

fn list_body(rv: &str, cont: Option<&str>, items: Vec<Value>) -> String {
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        metadata["continue"] = json!(c);
        metadata["remainingItemCount"] = json!(1);
    }
    json!({"kind": "List", "apiVersion": "v1", "metadata": metadata, "items": items}).to_string()
}

fn status_body(code: u16, reason: &str, message: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "details": {}, "code": code})
    .to_string()
}

impl MockApi {
    /// Queues a list page for `path`: `cont` is the `continue` token of the next page.
    fn list(&self, path: &str, rv: &str, cont: Option<&str>, items: Vec<Value>) {
        self.push_list(path, Reply::Json(200, list_body(rv, cont, items)));
    }

    /// Queues a list page that is answered only once the returned sender fires.
    fn gated_list(&self, path: &str, rv: &str, items: Vec<Value>) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        self.push_list(path, Reply::Gated(rx, Box::new(Reply::Json(200, list_body(rv, None, items)))));
        tx
    }

    fn push_list(&self, path: &str, reply: Reply) {
        self.0.lock().unwrap().lists.entry(path.into()).or_default().push_back(reply);
    }

    /// Queues a watch stream for `path`.
    fn watch(&self, path: &str) -> Watch {
        let (tx, rx) = body_channel::unbounded();
        self.0.lock().unwrap().watches.entry(path.into()).or_default().push_back(Reply::Stream(rx));
        Watch(Some(tx))
    }

    fn missing(&self, path: &str) {
        self.0.lock().unwrap().failing.insert(path.into(), (404, "NotFound"));
    }

    fn forbidden(&self, path: &str) {
        self.0.lock().unwrap().failing.insert(path.into(), (403, "Forbidden"));
    }

    /// The query strings of the requests to `path` so far, in order.
    fn queries(&self, path: &str) -> Vec<String> {
        let log = &self.0.lock().unwrap().log;
        log.iter().filter_map(|l| l.split_once('?').filter(|(p, _)| *p == path).map(|(_, q)| q.to_string())).collect()
    }

    fn watch_queries(&self, path: &str) -> Vec<String> {
        self.queries(path).into_iter().filter(|q| is_watch(q)).collect()
    }

    fn list_queries(&self, path: &str) -> Vec<String> {
        self.queries(path).into_iter().filter(|q| !is_watch(q)).collect()
    }

    /// The next reply for a request.
    fn reply(&self, path: &str, query: &str) -> Reply {
        let mut s = self.0.lock().unwrap();
        s.log.push(format!("{path}?{query}"));
        if is_watch(query) {
            if let Some(r) = s.watches.get_mut(path).and_then(VecDeque::pop_front) {
                return r;
            }
            let (tx, rx) = body_channel::unbounded();
            s.held.push(tx);
            Reply::Stream(rx)
        } else {
            if let Some(&(code, reason)) = s.failing.get(path) {
                return Reply::Json(code, status_body(code, reason, &format!("{reason}: {path}")));
            }
            if let Some(r) = s.lists.get_mut(path).and_then(VecDeque::pop_front) {
                return r;
            }
            Reply::Json(200, list_body("1", None, vec![]))
        }
    }

    /// A client whose requests this mock answers.
    fn client(&self) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<Body>>();
        let api = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let path = request.uri().path().to_string();
                let query = request.uri().query().unwrap_or_default().to_string();
                let reply = api.reply(&path, &query);
                tokio::spawn(async move { send.send_response(respond(reply).await) });
            }
        });
        kube::Client::new(service, "default")
    }
}

fn is_watch(query: &str) -> bool {
    query.split('&').any(|p| p == "watch=true")
}

async fn respond(mut reply: Reply) -> http::Response<Body> {
    loop {
        reply = match reply {
            Reply::Gated(gate, inner) => {
                let _ = gate.await;
                *inner
            }
            Reply::Json(code, text) => {
                return http::Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(text)).map_err(|e: Infallible| match e {}).boxed_unsync())
                    .unwrap();
            }
            Reply::Stream(rx) => {
                return http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .header("transfer-encoding", "chunked")
                    .body(StreamBody::new(rx).boxed_unsync())
                    .unwrap();
            }
        }
    }
}

/// The test's end of one watch stream; dropping it (or [`Watch::close`]) ends the body, as
/// when the API server or a proxy drops the connection.
struct Watch(Option<Chunks>);

impl Watch {
    fn line(&self, event: Value) {
        let text = format!("{event}\n");
        self.0.as_ref().unwrap().unbounded_send(Ok(Frame::data(Bytes::from(text)))).unwrap();
    }

    fn event(&self, kind: &str, object: Value) {
        self.line(json!({"type": kind, "object": object}));
    }

    fn bookmark(&self, kind: &str, api_version: &str, rv: &str) {
        self.event("BOOKMARK", json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv}}));
    }

    /// The API server's answer to a watch from a compacted resource version.
    fn expired(&self) {
        self.event(
            "ERROR",
            serde_json::from_str(&status_body(410, "Expired", "too old resource version: 10 (40)")).unwrap(),
        );
    }

    fn close(&mut self) {
        self.0 = None;
    }

    /// The connection breaks mid-stream (a reset), then the body ends.
    fn reset(&mut self) {
        let e = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        self.0.as_ref().unwrap().unbounded_send(Err(e)).unwrap();
        self.close();
    }
}

/// A pod as the API server lists it (list items carry no `kind`/`apiVersion`).
fn pod(name: &str, ip: &str, sa: &str, app: &str, rv: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}-{rv}"), "resourceVersion": rv,
                     "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": app}},
        "spec": {"serviceAccountName": sa, "containers": [{"name": "main", "image": "example/app:1"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
    })
}

/// A watch event's pod: with its type.
fn pod_event(name: &str, ip: &str, sa: &str, app: &str, rv: &str) -> Value {
    let mut p = pod(name, ip, sa, app, rv);
    p["kind"] = json!("Pod");
    p["apiVersion"] = json!("v1");
    p
}

/// Calico: only the `frontend` service account may reach `app == 'web'` on TCP 80.
fn allow_front(api_version: &str) -> Value {
    json!({
        "apiVersion": api_version, "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "allow-front", "resourceVersion": "11", "uid": "uid-gnp"},
        "spec": {"selector": "app == 'web'", "types": ["Ingress"], "ingress": [{
            "action": "Allow", "protocol": "TCP",
            "source": {"serviceAccounts": {"names": ["frontend"]}},
            "destination": {"ports": [80]}}]}
    })
}

fn request(port: u16) -> OwnedRequest {
    let text = format!(r#"{{"source": {{"ip": "10.0.0.1"}}, "destination": {{"ip": "10.0.0.2", "port": {port}}}}}"#);
    OwnedRequest::from_json(&text).unwrap()
}

const FRONTEND: &str = "spiffe://cluster.local/ns/shop/sa/frontend";

/// 10.0.0.1 to the web pod's port 80, presenting `principal`.
fn with_principal(principal: &str) -> OwnedRequest {
    let text = format!(
        r#"{{"source": {{"ip": "10.0.0.1", "principal": "{principal}"}}, "destination": {{"ip": "10.0.0.2", "port": 80}}}}"#
    );
    OwnedRequest::from_json(&text).unwrap()
}

/// Whether 10.0.0.1 may reach the web pod's `port`, and the policy that decided.
fn decide(engine: &Engine, port: u16) -> (bool, Option<String>) {
    let d = engine.decide(&request(port).as_request());
    let policy = engine.snapshot().and_then(|s| s.policy_name(d.policy).map(str::to_string));
    (d.allowed(), policy)
}

fn fast() -> Options {
    Options { debounce: Duration::from_millis(30), max_delay: Duration::from_millis(300), ..Options::default() }
}

const WAIT: Duration = Duration::from_secs(10);

/// An engine fed by a Kubernetes source on `api`, one pod per list page.
fn start(api: &MockApi) -> (Arc<Engine>, Syncer) {
    let engine = Arc::new(Engine::new(Config::default()));
    let syncer = Syncer::new(engine.clone(), fast());
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(syncer.clone().run(rx));
    let mut source = KubeSource::new(api.client());
    source.page_size = 1;
    tokio::spawn(source.run(tx));
    (engine, syncer)
}

async fn until(syncer: &Syncer, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
    match wait_for(syncer, WAIT, pred).await {
        Some(s) => s,
        None => panic!("timed out waiting for {what}: {:?}", syncer.status()),
    }
}

async fn until_logged(api: &MockApi, what: &str, pred: impl Fn(&MockApi) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !pred(api) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            api.0.lock().unwrap().log
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(60), test).await.expect("the test took more than 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_and_policies_follow_the_cluster() {
    bounded(async {
        let api = MockApi::default();
        // A chunked pod list: two pages, the first with a continue token.
        api.list(PODS, "10", Some("eyJydiI6MTAsInN0YXJ0Ijoid2ViIn0"), vec![pod("web", "10.0.0.2", "web", "web", "8")]);
        api.list(PODS, "10", None, vec![pod("front", "10.0.0.1", "frontend", "front", "9")]);
        api.list(GNPS, "11", None, vec![allow_front("projectcalico.org/v3")]);
        let mut w1 = api.watch(PODS);
        let (engine, syncer) = start(&api);

        let s = until(&syncer, "the initial sync", |s| s.synced).await;
        assert_eq!((s.objects, s.batches), (3, 1), "{s:?}");
        assert!(s.unserved.is_empty() && s.rejected.is_empty(), "{s:?}");
        let lists = api.list_queries(PODS);
        assert!(lists[0].contains("limit=1") && !lists[0].contains("continue="), "{lists:?}");
        assert!(lists[1].contains("continue=eyJydiI6MTAsInN0YXJ0Ijoid2ViIn0"), "{lists:?}");
        until_logged(&api, "the pod watch", |a| !a.watch_queries(PODS).is_empty()).await;
        let watch = &api.watch_queries(PODS)[0];
        assert!(watch.contains("resourceVersion=10") && watch.contains("allowWatchBookmarks=true"), "{watch}");
        assert_eq!(decide(&engine, 80), (true, Some("gnp:allow-front".into())));
        assert!(!decide(&engine, 443).0);
        assert!(engine.decide(&with_principal(FRONTEND).as_request()).allowed());

        // The frontend pod goes, and its IP is reused by a pod with another service account:
        // the certificate-less request from that IP must stop being allowed.
        w1.event("DELETED", pod_event("front", "10.0.0.1", "frontend", "front", "12"));
        w1.event("ADDED", pod_event("batch", "10.0.0.1", "batch", "batch", "13"));
        let g = s.generation;
        let s = until(&syncer, "the IP reuse", |s| s.generation > g && s.objects == 3).await;
        assert!(!decide(&engine, 80).0, "{s:?}");
        // The old pod's certificate from that IP no longer matches its owner.
        let d = engine.decide(&with_principal(FRONTEND).as_request());
        assert_eq!((d.allowed(), d.reason), (false, Reason::IdentityMismatch));
        let snap = engine.snapshot().unwrap();
        assert_eq!(snap.bundle().endpoint_by_ip("10.0.0.1".parse().unwrap()).unwrap().name, "batch");

        // MODIFIED: the web pod's label changes, so the policy no longer selects it (no
        // policy: Calico's default allow); and back.
        w1.event("MODIFIED", pod_event("web", "10.0.0.2", "web", "db", "14"));
        let g = s.generation;
        let s = until(&syncer, "the relabel", |s| s.generation > g).await;
        assert!(decide(&engine, 443).0, "{s:?}");
        w1.event("MODIFIED", pod_event("web", "10.0.0.2", "web", "web", "15"));
        let g = s.generation;
        let s = until(&syncer, "the relabel back", |s| s.generation > g).await;
        assert!(!decide(&engine, 443).0, "{s:?}");

        // A bookmark, then the connection drops: the watcher watches again from the
        // bookmark's version (no relist), and the new stream is applied.
        w1.bookmark("Pod", "v1", "20");
        let w2 = api.watch(PODS);
        tokio::time::sleep(Duration::from_millis(100)).await;
        w1.close();
        until_logged(&api, "the re-watch", |a| a.watch_queries(PODS).len() >= 2).await;
        assert!(api.watch_queries(PODS)[1].contains("resourceVersion=20"), "{:?}", api.watch_queries(PODS));
        assert_eq!(api.list_queries(PODS).len(), 2, "a dropped watch is not a relist");
        w2.event("ADDED", pod_event("late", "10.0.0.9", "late", "late", "21"));
        let s = until(&syncer, "the pod on the new watch", |s| s.objects == 4).await;
        assert!(engine.snapshot().unwrap().bundle().endpoint_by_ip("10.0.0.9".parse().unwrap()).is_some(), "{s:?}");

        // 410 Gone: the watcher lists pods again. The relist has neither `batch` nor `late`
        // (deleted while the watch was lost) and `front` is back: pods are replaced, the
        // policy (another kind) is untouched.
        api.list(PODS, "40", Some("eyJydiI6NDAsInN0YXJ0Ijoid2ViIn0"), vec![pod("web", "10.0.0.2", "web", "web", "15")]);
        api.list(PODS, "40", None, vec![pod("front", "10.0.0.1", "frontend", "front", "39")]);
        let _w3 = api.watch(PODS);
        w2.expired();
        let g = s.generation;
        let s = until(&syncer, "the relist", |s| s.generation > g && s.objects == 3).await;
        assert_eq!(api.list_queries(PODS).len(), 4, "{:?}", api.list_queries(PODS));
        assert!(!api.list_queries(PODS)[2].contains("continue="));
        let snap = engine.snapshot().unwrap();
        assert!(snap.bundle().endpoint_by_ip("10.0.0.9".parse().unwrap()).is_none(), "{s:?}");
        assert_eq!(snap.bundle().endpoint_by_ip("10.0.0.1".parse().unwrap()).unwrap().name, "front");
        assert_eq!(decide(&engine, 80), (true, Some("gnp:allow-front".into())));
        assert!(!decide(&engine, 443).0);
        until_logged(&api, "the watch after the relist", |a| {
            a.watch_queries(PODS).last().is_some_and(|q| q.contains("resourceVersion=40"))
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_served_before_every_kind_is_listed() {
    bounded(async {
        let api = MockApi::default();
        api.list(PODS, "10", None, vec![pod("web", "10.0.0.2", "web", "web", "8")]);
        let gate = api.gated_list(GNPS, "11", vec![allow_front("projectcalico.org/v3")]);
        let w = api.watch(PODS);
        let (engine, syncer) = start(&api);

        // Pods are listed and watched, policies are not listed yet: no snapshot (a snapshot
        // with pods and no policies would allow everything).
        until_logged(&api, "the pod watch", |a| !a.watch_queries(PODS).is_empty()).await;
        w.event("ADDED", pod_event("front", "10.0.0.1", "frontend", "front", "12"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = syncer.status();
        assert!(!s.synced && s.batches == 0 && s.generation == 0, "{s:?}");
        assert_eq!(engine.decide(&request(80).as_request()).reason, Reason::NoBundle);
        assert_eq!(engine.decide(&request(443).as_request()).reason, Reason::NoBundle);

        // The last list arrives: one batch with every kind, including the pod the watch
        // added meanwhile.
        gate.send(()).unwrap();
        let s = until(&syncer, "the sync", |s| s.synced).await;
        assert_eq!((s.objects, s.batches), (3, 1), "{s:?}");
        assert_eq!(decide(&engine, 80), (true, Some("gnp:allow-front".into())));
        assert!(!decide(&engine, 443).0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_that_is_not_installed_counts_as_empty_and_is_reported() {
    bounded(async {
        let api = MockApi::default();
        // No Istio at all; Calico without its API server: the projectcalico.org/v3 kinds are
        // not served, the crd.projectcalico.org/v1 CRDs are.
        for v in ["v1", "v1beta1"] {
            api.missing(&format!("/apis/security.istio.io/{v}/authorizationpolicies"));
        }
        api.missing(GNPS);
        api.list(
            PODS,
            "10",
            None,
            vec![pod("web", "10.0.0.2", "web", "web", "8"), pod("front", "10.0.0.1", "frontend", "front", "9")],
        );
        api.list(
            "/apis/crd.projectcalico.org/v1/globalnetworkpolicies",
            "11",
            None,
            vec![allow_front("crd.projectcalico.org/v1")],
        );
        let (engine, syncer) = start(&api);

        let s = until(&syncer, "the sync", |s| s.synced && !s.unserved.is_empty()).await;
        assert_eq!(s.objects, 3, "{s:?}");
        assert_eq!(s.unserved.len(), 1, "{s:?}");
        assert!(s.unserved[0].contains("security.istio.io/v1beta1 authorizationpolicies"), "{s:?}");
        // The policy came through the CRD fallback.
        assert_eq!(decide(&engine, 80), (true, Some("gnp:allow-front".into())));
        assert!(!decide(&engine, 443).0);
        assert!(!api.list_queries("/apis/crd.projectcalico.org/v1/globalnetworkpolicies").is_empty());
        // The missing kind is listed again with backoff (kube-runtime's: 0.8 s, doubling).
        until_logged(&api, "a retry of the missing kind", |a| {
            a.list_queries("/apis/security.istio.io/v1beta1/authorizationpolicies").len() >= 2
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_watch_is_reported_and_watched_again() {
    bounded(async {
        let api = MockApi::default();
        api.list(PODS, "10", None, vec![pod("web", "10.0.0.2", "web", "web", "8")]);
        api.list(GNPS, "11", None, vec![allow_front("projectcalico.org/v3")]);
        let mut w1 = api.watch(PODS);
        let (engine, syncer) = start(&api);
        let s = until(&syncer, "the sync", |s| s.synced).await;
        assert!(!decide(&engine, 80).0, "no frontend pod yet: {s:?}");

        w1.event("ADDED", pod_event("front", "10.0.0.1", "frontend", "front", "12"));
        let s = until(&syncer, "the frontend pod", |s| s.objects == 3).await;
        assert!(decide(&engine, 80).0, "{s:?}");

        // A bookmark carrying the (optional) `k8s.io/initial-events-end` annotation, then the
        // connection resets: an error in the status, then a watch from the bookmark's version
        // (16), whose events apply and clear the error.
        w1.event(
            "BOOKMARK",
            json!({"kind": "Pod", "apiVersion": "v1",
                   "metadata": {"resourceVersion": "16", "annotations": {"k8s.io/initial-events-end": "true"}}}),
        );
        let w2 = api.watch(PODS);
        w1.reset();
        let s = until(&syncer, "the watch error", |s| s.last_error.is_some()).await;
        let e = s.last_error.unwrap();
        assert!(e.contains("kube v1 pods") && e.contains("watch"), "{e}");
        until_logged(&api, "the re-watch", |a| a.watch_queries(PODS).len() >= 2).await;
        assert!(api.watch_queries(PODS)[1].contains("resourceVersion=16"), "{:?}", api.watch_queries(PODS));
        assert_eq!(api.list_queries(PODS).len(), 1, "a broken watch is not a relist");
        w2.event("DELETED", pod_event("front", "10.0.0.1", "frontend", "front", "13"));
        let s = until(&syncer, "the delete on the new watch", |s| s.objects == 2).await;
        assert!(s.last_error.is_none(), "{s:?}");
        assert!(!decide(&engine, 80).0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_resync_replaces_only_its_scope() {
    bounded(async {
        use palisade::Change;
        use palisade_sync::Event;
        let engine = Arc::new(Engine::new(Config::default()));
        let syncer = Syncer::new(engine.clone(), fast());
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(syncer.clone().run(rx));
        let item = |id: &str, v: Value| (id.to_string(), Change::upsert_from(id, v));
        tx.send(Event::ResyncScoped {
            scopes: vec!["kube:core/Pod/".into(), "kube:projectcalico.org/GlobalNetworkPolicy/".into()],
            items: vec![
                item("kube:core/Pod/shop/web", pod_event("web", "10.0.0.2", "web", "web", "1")),
                item("kube:projectcalico.org/GlobalNetworkPolicy/allow-front", allow_front("projectcalico.org/v3")),
            ],
        })
        .await
        .unwrap();
        let s = until(&syncer, "the sync", |s| s.synced).await;
        assert_eq!(s.objects, 2, "{s:?}");
        // A pod upserted, then a relist of pods that does not name it, in one batch: the pod
        // is not applied; the policy (outside the scope) stays.
        tx.send(Event::Upsert(
            "kube:core/Pod/shop/front".into(),
            Change::upsert_from("front", pod_event("front", "10.0.0.1", "frontend", "front", "2")),
        ))
        .await
        .unwrap();
        tx.send(Event::ResyncScoped {
            scopes: vec!["kube:core/Pod/".into()],
            items: vec![item("kube:core/Pod/shop/web", pod_event("web", "10.0.0.2", "web", "web", "3"))],
        })
        .await
        .unwrap();
        let s = until(&syncer, "the relist", |x| x.generation > s.generation).await;
        assert_eq!(s.objects, 2, "{s:?}");
        assert!(engine.snapshot().unwrap().bundle().endpoint_by_ip("10.0.0.1".parse().unwrap()).is_none());
        assert!(!decide(&engine, 443).0, "the policy still selects web");
        // An empty relist of policies removes the policy, not the pod.
        tx.send(Event::ResyncScoped {
            scopes: vec!["kube:projectcalico.org/GlobalNetworkPolicy/".into()],
            items: vec![],
        })
        .await
        .unwrap();
        let s = until(&syncer, "the empty relist", |x| x.generation > s.generation).await;
        assert_eq!(s.objects, 1, "{s:?}");
        assert!(decide(&engine, 443).0, "no policy selects web");
    })
    .await;
}

/// Every list path the source must request: each kind Palisade reads (written out here, not
/// taken from the source's table).
const EVERY_KIND: &[&str] = &[
    "/api/v1/namespaces",
    "/api/v1/pods",
    "/api/v1/serviceaccounts",
    "/api/v1/services",
    "/apis/discovery.k8s.io/v1/endpointslices",
    "/apis/networking.k8s.io/v1/networkpolicies",
    "/apis/projectcalico.org/v3/tiers",
    "/apis/projectcalico.org/v3/globalnetworkpolicies",
    "/apis/projectcalico.org/v3/networkpolicies",
    "/apis/projectcalico.org/v3/stagedglobalnetworkpolicies",
    "/apis/projectcalico.org/v3/stagednetworkpolicies",
    "/apis/projectcalico.org/v3/stagedkubernetesnetworkpolicies",
    "/apis/projectcalico.org/v3/globalnetworksets",
    "/apis/projectcalico.org/v3/networksets",
    "/apis/projectcalico.org/v3/hostendpoints",
    "/apis/security.istio.io/v1/authorizationpolicies",
    "/apis/security.istio.io/v1/peerauthentications",
    "/apis/security.istio.io/v1/requestauthentications",
    "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies",
    "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies",
    "/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_kind_is_watched_and_applies() {
    bounded(async {
        let api = MockApi::default();
        let mut web = pod("web", "10.0.0.2", "web", "web", "8");
        web["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "istio-proxy", "image": "istio/proxyv2"}));
        api.list(PODS, "10", None, vec![web, pod("front", "10.0.0.1", "frontend", "front", "9")]);
        api.list("/api/v1/namespaces", "10", None, vec![json!({"metadata": {"name": "shop", "resourceVersion": "3"}})]);
        api.list(
            "/apis/networking.k8s.io/v1/networkpolicies",
            "10",
            None,
            vec![json!({
                "metadata": {"name": "web-from-front", "namespace": "shop", "resourceVersion": "5"},
                "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                         "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "front"}}}],
                                      "ports": [{"protocol": "TCP", "port": 80}]}]}
            })],
        );
        let peer_auth = "/apis/security.istio.io/v1/peerauthentications";
        let w = api.watch(peer_auth);
        let (engine, syncer) = start(&api);

        let s = until(&syncer, "the sync", |s| s.synced).await;
        assert_eq!(s.objects, 4, "{s:?}");
        assert!(s.rejected.is_empty() && s.unserved.is_empty(), "{s:?}");
        let listed: BTreeSet<String> = api
            .0
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| !is_watch(l.split_once('?').map_or("", |(_, q)| q)))
            .map(|l| l.split_once('?').map_or(l.as_str(), |(p, _)| p).to_string())
            .collect();
        let expected: BTreeSet<String> = EVERY_KIND.iter().map(|p| p.to_string()).collect();
        assert_eq!(listed, expected);
        assert_eq!(decide(&engine, 80), (true, Some("knp:shop/web-from-front".into())));
        assert!(!decide(&engine, 443).0);

        // Istio mTLS for the namespace, through its CRD's watch: a request without a peer
        // certificate is refused; deleted, it is allowed again.
        let pa = |rv: &str| {
            json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                   "metadata": {"name": "default", "namespace": "shop", "resourceVersion": rv},
                   "spec": {"mtls": {"mode": "STRICT"}}})
        };
        w.event("ADDED", pa("20"));
        let s = until(&syncer, "the PeerAuthentication", |x| x.objects == 5).await;
        let d = engine.decide(&request(80).as_request());
        assert_eq!((d.allowed(), d.reason), (false, Reason::MissingPeerIdentity), "{s:?}");
        w.event("DELETED", pa("21"));
        until(&syncer, "the PeerAuthentication's delete", |x| x.objects == 4).await;
        assert!(decide(&engine, 80).0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_is_built_from_a_kubeconfig_file() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
             clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true}}]\n\
             users: [{name: u, user: {token: abc}}]\n\
             contexts: [{name: test, context: {cluster: c, user: u, namespace: shop}}]\n",
        )
        .unwrap();
        // Building the client makes no request.
        let source = KubeSource::from_kubeconfig(&path).await.unwrap();
        assert_eq!(source.kinds.len(), EVERY_KIND.len());
        assert_eq!(source.page_size, 500);
        assert!(KubeSource::from_kubeconfig(&dir.path().join("missing")).await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_that_cannot_be_listed_keeps_the_engine_at_no_bundle() {
    bounded(async {
        let api = MockApi::default();
        api.list(PODS, "10", None, vec![pod("web", "10.0.0.2", "web", "web", "8")]);
        // RBAC forbids listing policies: not a missing CRD, so never "empty".
        api.forbidden(GNPS);
        let (engine, syncer) = start(&api);
        let s = until(&syncer, "the 403 reported", |s| s.last_error.is_some()).await;
        assert!(s.last_error.as_deref().unwrap().contains("403"), "{s:?}");
        // Still refused after the watcher's first retries (0.8 s, 1.6 s backoff).
        until_logged(&api, "a retry", |a| a.list_queries(GNPS).len() >= 2).await;
        let s = syncer.status();
        assert!(!s.synced && s.batches == 0 && s.unserved.is_empty(), "{s:?}");
        assert_eq!(engine.decide(&request(80).as_request()).reason, Reason::NoBundle);
    })
    .await;
}
