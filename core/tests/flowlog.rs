//! Flow-log records in Calico's format: exact field values for workload, network-set and
//! plain-network ends, Calico's policy names (tiered, namespaced, Kubernetes, staged,
//! profile), the pending walk of staged policies, aggregation levels, the drop counter and
//! the rotating file sink.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use palisade::flowlog::{self, Aggregation, FileSink, FlowLog, FlowLogConfig, FlowRecord, Sink};
use palisade::{Config, Engine, OwnedRequest};

fn shop() -> Engine {
    let engine = Engine::new(Config::default());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
    engine.load_paths(&[root]).unwrap();
    engine
}

fn log_of(engine: &Engine, lines: &[&str]) -> Vec<FlowRecord> {
    let log = FlowLog::new(FlowLogConfig::default());
    log.prepare(&engine.snapshot().unwrap());
    for l in lines {
        let req = OwnedRequest::from_json(l).unwrap();
        let d = log.decide(engine, &req.as_request());
        assert_eq!(d, engine.decide(&req.as_request()), "the logged decision is the engine's");
    }
    log.drain()
}

fn json(r: &FlowRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    let o = v.as_object_mut().unwrap();
    assert!(o.remove("start_time").unwrap().as_u64().unwrap() > 1_600_000_000);
    assert!(o.remove("end_time").is_some());
    let p = o.get_mut("palisade").unwrap().as_object_mut().unwrap();
    assert_eq!(p.remove("decision_id").unwrap().as_str().unwrap().len(), 32);
    v
}

const CART: &str = r#"{"source": {"ip": "10.1.0.5", "port": 40001, "principal": "spiffe://cluster.local/ns/shop/sa/frontend"}, "destination": {"ip": "10.1.0.9", "port": 8080}, "http": {"method": "GET", "path": "/api/cart/42"}}"#;

#[test]
fn workload_to_workload_has_one_record_per_side_with_calico_names() {
    let engine = shop();
    let recs = log_of(&engine, &[CART]);
    assert_eq!(recs.len(), 2);
    let expected_src = serde_json::json!({
        "source_ip": "10.1.0.5", "source_name": "frontend-7d9f", "source_name_aggr": "frontend-7d9f",
        "source_namespace": "shop", "source_port": 40001, "source_type": "wep",
        "source_labels": {"labels": recs[0].source_labels.as_ref().unwrap().labels.clone()},
        "dest_ip": "10.1.0.9", "dest_name": "cart-5c4b", "dest_name_aggr": "cart-5c4b",
        "dest_namespace": "shop", "dest_port": 8080, "dest_type": "wep",
        "dest_labels": {"labels": recs[0].dest_labels.as_ref().unwrap().labels.clone()},
        "proto": "tcp", "action": "allow", "reporter": "src",
        "policies": {
            "all_policies": ["0|security|security.block-quarantine|pass|-1", "1|platform|platform.pass-to-apps|pass|0",
                             "2|__PROFILE__|__PROFILE__.kns.shop|allow|0"],
            "enforced_policies": ["0|security|security.block-quarantine|pass|-1", "1|platform|platform.pass-to-apps|pass|0",
                                  "2|__PROFILE__|__PROFILE__.kns.shop|allow|0"],
            "pending_policies": ["0|security|security.block-quarantine|pass|-1", "1|platform|platform.pass-to-apps|pass|0",
                                 "2|__PROFILE__|__PROFILE__.kns.shop|allow|0"]},
        "num_flows": 1, "num_flows_started": 1, "num_flows_completed": 0,
        "http_requests_allowed_in": 0, "http_requests_denied_in": 0,
        "palisade": {"decisions": 1, "reason": "rule", "generation": 1, "policy": "np:shop/cart-api", "rule": 0,
                     "principal": "spiffe://cluster.local/ns/shop/sa/frontend",
                     "http_method": "GET", "http_path": "/api/cart/42", "l7_pending": false}
    });
    assert_eq!(json(&recs[0]), expected_src);
    assert!(recs[0].source_labels.as_ref().unwrap().labels.contains(&"app=frontend".to_string()));
    assert!(recs[0].dest_labels.as_ref().unwrap().labels.contains(&"app=cart".to_string()));

    let dst = &recs[1];
    assert_eq!(dst.reporter, "dst");
    assert_eq!(dst.action, "allow");
    assert_eq!(
        dst.policies.as_ref().unwrap().enforced_policies,
        [
            "0|security|security.block-quarantine|pass|-1",
            "1|platform|platform.pass-to-apps|pass|0",
            "2|default|shop/default.cart-api|allow|0"
        ]
    );
    assert_eq!((dst.http_requests_allowed_in, dst.http_requests_denied_in), (1, 0));
}

#[test]
fn network_set_and_plain_network_sources() {
    let engine = shop();
    let recs = log_of(
        &engine,
        &[
            r#"{"source": {"ip": "203.0.113.9", "port": 5555}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#,
            r#"{"source": {"ip": "8.8.8.8"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#,
            r#"{"source": {"ip": "10.200.0.1"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#,
            r#"{"protocol": "ICMP", "source": {"ip": "10.1.0.5"}, "destination": {"ip": "8.8.4.4"}, "icmp": {"type": 8}}"#,
        ],
    );
    // Only the destination's ingress is evaluated for an outside source.
    let set = &recs[0];
    assert_eq!(set.reporter, "dst");
    assert_eq!(
        (
            set.source_type.as_str(),
            set.source_name.as_str(),
            set.source_name_aggr.as_str(),
            set.source_namespace.as_str()
        ),
        ("ns", "threat-intel", "threat-intel", "-")
    );
    assert_eq!(set.source_labels.as_ref().unwrap().labels, ["feed=threat-intel"]);
    assert_eq!(set.action, "deny");
    // The Log hit before the deny is not a Calico flow-log hit: the deny is hit 0, rule 1.
    assert_eq!(set.policies.as_ref().unwrap().enforced_policies, ["0|security|security.block-threat-intel|deny|1"]);
    assert_eq!((set.http_requests_allowed_in, set.http_requests_denied_in), (0, 0));

    let public = &recs[1];
    assert_eq!(
        (public.source_type.as_str(), public.source_name.as_str(), public.source_name_aggr.as_str()),
        ("net", "-", "pub")
    );
    assert_eq!((public.source_namespace.as_str(), public.source_labels.as_ref()), ("-", None));
    assert_eq!(public.source_port, None);
    assert_eq!(recs[2].source_name_aggr, "pvt");

    let icmp = &recs[3];
    assert_eq!((icmp.reporter.as_str(), icmp.proto.as_str(), icmp.dest_port), ("src", "icmp", None));
    assert_eq!((icmp.dest_type.as_str(), icmp.dest_name_aggr.as_str()), ("net", "pub"));
}

#[test]
fn staged_policy_fills_pending_policies_with_the_staged_prefix() {
    let engine = shop();
    let recs = log_of(
        &engine,
        &[
            r#"{"source": {"ip": "10.1.0.9", "principal": "spiffe://cluster.local/ns/shop/sa/cart"}, "destination": {"ip": "10.2.0.7", "port": 8443}, "http": {"method": "POST", "path": "/v1/charges"}}"#,
        ],
    );
    let dst = recs.iter().find(|r| r.reporter == "dst").unwrap();
    let p = dst.policies.as_ref().unwrap();
    assert_eq!(dst.action, "allow");
    assert_eq!(p.enforced_policies.last().unwrap(), "2|default|payments/default.payments-api|allow|0");
    assert_eq!(p.pending_policies.last().unwrap(), "2|default|payments/default.staged:payments-api|deny|-1");
    assert_eq!(p.all_policies.len(), p.enforced_policies.len() + 1);
    assert_eq!(p.all_policies.last().unwrap(), "3|default|payments/default.staged:payments-api|deny|-1");
    assert_eq!(dst.palisade.as_ref().unwrap().staged.as_deref(), Some("deny"));
    // The egress side has no staged policy: pending equals enforced.
    let src = recs.iter().find(|r| r.reporter == "src").unwrap();
    let sp = src.policies.as_ref().unwrap();
    assert_eq!(sp.pending_policies, sp.enforced_policies);
}

const K8S: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: web, labels: {app: api}}
status: {podIP: 10.5.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: client-1, namespace: web, labels: {app: client}}
status: {podIP: 10.5.0.3}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: ops}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: ops.pass-all}
spec:
  tier: ops
  selector: all()
  types: [Ingress, Egress]
  ingress: [{action: Pass}]
  egress: [{action: Pass}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-in, namespace: web}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]
---
apiVersion: projectcalico.org/v3
kind: StagedKubernetesNetworkPolicy
metadata: {name: api-in, namespace: web}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: nobody}}}]}]
"#;

#[test]
fn kubernetes_and_staged_kubernetes_names_and_the_profile() {
    let engine = Engine::new(Config::default());
    engine.load_str(K8S).unwrap();
    let recs = log_of(&engine, &[r#"{"source": {"ip": "10.5.0.3"}, "destination": {"ip": "10.5.0.2", "port": 80}}"#]);
    let src = recs.iter().find(|r| r.reporter == "src").unwrap();
    assert_eq!(
        src.policies.as_ref().unwrap().enforced_policies,
        ["0|ops|ops.pass-all|pass|0", "1|__PROFILE__|__PROFILE__.kns.web|allow|0"]
    );
    let dst = recs.iter().find(|r| r.reporter == "dst").unwrap();
    let p = dst.policies.as_ref().unwrap();
    assert_eq!(p.enforced_policies, ["0|ops|ops.pass-all|pass|0", "1|default|web/knp.default.api-in|allow|0"]);
    assert_eq!(p.pending_policies, ["0|ops|ops.pass-all|pass|0", "1|default|web/staged:knp.default.api-in|deny|-1"]);
    assert_eq!(dst.palisade.as_ref().unwrap().policy.as_deref(), Some("knp:web/api-in"));
}

#[test]
fn identity_denial_is_one_record_without_hits() {
    let engine = shop();
    let recs = log_of(
        &engine,
        &[
            r#"{"source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/payments/sa/payments"}, "destination": {"ip": "10.2.0.7", "port": 8443}}"#,
        ],
    );
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!((r.reporter.as_str(), r.action.as_str()), ("dst", "deny"));
    assert_eq!(r.policies.as_ref().unwrap(), &flowlog::Policies::default());
    let p = r.palisade.as_ref().unwrap();
    assert_eq!((p.reason.as_str(), p.peer.as_deref()), ("identity_mismatch", Some("source")));
    assert_eq!(p.principal.as_deref(), Some("spiffe://cluster.local/ns/payments/sa/payments"));
}

#[test]
fn aggregation_levels_blank_and_merge_as_felix() {
    let engine = shop();
    let line = |port: u16, dport: u16| {
        format!(
            r#"{{"source": {{"ip": "10.1.0.5", "port": {port}, "principal": "spiffe://cluster.local/ns/shop/sa/frontend"}}, "destination": {{"ip": "10.1.0.9", "port": {dport}}}, "http": {{"method": "GET", "path": "/api/cart/{port}"}}}}"#
        )
    };
    let lines = [line(40001, 8080), line(40002, 8080), line(40003, 9090)];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let recs = log_of(&engine, &lines);
    // 3 requests x 2 sides; the 9090 one is denied at ingress.
    assert_eq!(recs.len(), 6);
    let at = |l| flowlog::aggregate(recs.clone(), l, l);
    assert_eq!(at(Aggregation::Nothing).len(), 6);
    // Level 1: source ports go; the two 8080 flows merge on each side, the 9090 flows do not
    // (another destination port, and the ingress one another action).
    let l1 = at(Aggregation::SourcePort);
    assert_eq!(l1.len(), 4);
    assert!(l1.iter().all(|r| r.source_port.is_none() && r.source_ip.is_some()));
    let merged = l1.iter().find(|r| r.reporter == "dst" && r.dest_port == Some(8080)).unwrap();
    assert_eq!((merged.num_flows, merged.http_requests_allowed_in), (2, 2));
    assert_eq!(merged.palisade.as_ref().unwrap().decisions, 2);
    assert_eq!(merged.palisade.as_ref().unwrap().decision_id, None);
    assert_eq!(merged.palisade.as_ref().unwrap().http_path, None);
    // Level 2: IPs and names go, name_aggr stays.
    let l2 = at(Aggregation::PrefixName);
    assert_eq!(l2.len(), 4);
    assert!(l2.iter().all(|r| r.source_ip.is_none() && r.dest_ip.is_none() && r.source_name == "-"));
    assert!(l2.iter().all(|r| r.source_name_aggr == "frontend-7d9f"));
    // Level 3: destination ports go; the egress side merges all three, allow and deny stay apart.
    let l3 = at(Aggregation::NoDestPorts);
    assert_eq!(l3.len(), 3);
    let egress = l3.iter().find(|r| r.reporter == "src").unwrap();
    assert_eq!((egress.num_flows, egress.dest_port), (3, None));
    let denied = l3.iter().find(|r| r.action == "deny").unwrap();
    assert_eq!((denied.num_flows, denied.http_requests_denied_in), (1, 1));
    // Felix's defaults: allowed at 2, denied at 1.
    let d = FlowLogConfig::default();
    assert_eq!(
        (d.aggregation_allowed, d.aggregation_denied, d.flush_interval_secs),
        (Aggregation::PrefixName, Aggregation::SourcePort, 300)
    );
}

#[test]
fn a_full_queue_drops_and_counts() {
    let engine = shop();
    let log = FlowLog::new(FlowLogConfig { capacity: 2, ..FlowLogConfig::default() });
    let req = OwnedRequest::from_json(CART).unwrap();
    for _ in 0..5 {
        log.decide(&engine, &req.as_request());
    }
    let s = log.stats();
    assert_eq!((s.captured, s.dropped), (2, 3));
    assert_eq!(log.drain().len(), 4);
    assert_eq!(log.stats().drained, 2);
    log.decide(&engine, &req.as_request());
    assert_eq!(log.stats().captured, 3);
    assert!(log.memory_bytes() >= 2 * std::mem::size_of::<flowlog::Capture>());
}

/// A `flows.log` line in Calico's shape, written from the example in Calico Enterprise's
/// flow-log documentation with our own values: every field Palisade writes outside
/// `palisade` is one of Calico's, and Calico's record reads as a `FlowRecord`.
const CALICO_SAMPLE: &str = r#"{"start_time":1700000000,"end_time":1700000300,"source_ip":"10.1.0.5","source_name":"-","source_name_aggr":"frontend-7d9f-*","source_namespace":"shop","nat_outgoing_ports":null,"source_port":null,"source_type":"wep","source_labels":{"labels":["app=frontend"]},"dest_ip":"10.1.0.9","dest_name":"-","dest_name_aggr":"cart-5c4b-*","dest_namespace":"shop","dest_port":8080,"dest_type":"wep","dest_labels":{"labels":["app=cart"]},"dest_service_namespace":"-","dest_service_name":"-","dest_service_port":"-","dest_service_port_num":null,"dest_domains":null,"proto":"tcp","action":"allow","reporter":"dst","policies":{"all_policies":["0|default|shop/default.cart-api|allow|0"],"enforced_policies":["0|default|shop/default.cart-api|allow|0"],"pending_policies":["0|default|shop/default.cart-api|allow|0"]},"bytes_in":1200,"bytes_out":3400,"num_flows":3,"num_flows_started":2,"num_flows_completed":1,"packets_in":12,"packets_out":10,"http_requests_allowed_in":5,"http_requests_denied_in":0,"process_name":"-","num_process_names":0,"process_id":"-","num_process_ids":0,"process_args":["-"],"num_process_args":0,"original_source_ips":null,"num_original_source_ips":0,"tcp_mean_send_congestion_window":0,"tcp_min_send_congestion_window":0,"tcp_mean_smooth_rtt":0,"tcp_max_smooth_rtt":0,"tcp_mean_min_rtt":0,"tcp_max_min_rtt":0,"tcp_mean_mss":0,"tcp_min_mss":0,"tcp_total_retransmissions":0,"tcp_lost_packets":0,"tcp_unrecovered_to":0}"#;

#[test]
fn field_names_and_hit_strings_match_a_calico_flows_log() {
    let calico: serde_json::Value = serde_json::from_str(CALICO_SAMPLE).unwrap();
    let calico_keys: std::collections::BTreeSet<&str> =
        calico.as_object().unwrap().keys().map(String::as_str).collect();
    let engine = shop();
    let recs = log_of(&engine, &[CART]);
    let ours = serde_json::to_value(&recs[1]).unwrap();
    for k in ours.as_object().unwrap().keys() {
        assert!(k == "palisade" || calico_keys.contains(k.as_str()), "{k} is not a Calico flow-log field");
    }
    assert_eq!(
        ours["policies"].as_object().unwrap().keys().collect::<Vec<_>>(),
        calico["policies"].as_object().unwrap().keys().collect::<Vec<_>>()
    );
    // The same hit has the same string.
    assert_eq!(
        ours["policies"]["enforced_policies"][2].as_str().unwrap().split_once('|').unwrap().1,
        calico["policies"]["enforced_policies"][0].as_str().unwrap().split_once('|').unwrap().1
    );
    // Calico's own record reads, ignoring what Palisade never writes.
    let read: FlowRecord = serde_json::from_str(CALICO_SAMPLE).unwrap();
    assert_eq!((read.num_flows, read.http_requests_allowed_in, read.palisade), (3, 5, None));
    assert_eq!(read.source_labels.unwrap().labels, ["app=frontend"]);
}

#[test]
fn file_sink_rotates_and_keeps_max_files() {
    let dir = tempdir();
    let path = dir.join("flows.log");
    let engine = shop();
    let recs = log_of(&engine, &[CART]);
    let line = recs[0].to_json_line().len() as u64 + 1;
    let mut sink = FileSink::new(&path, line * 3, 3);
    for _ in 0..10 {
        sink.write(&recs[..1]).unwrap();
    }
    let count = |p: &std::path::Path| std::fs::read_to_string(p).unwrap().lines().count();
    assert_eq!(count(&path), 1);
    assert_eq!(count(&dir.join("flows.log.1")), 3);
    assert_eq!(count(&dir.join("flows.log.2")), 3);
    assert!(!dir.join("flows.log.3").exists());
    for l in std::fs::read_to_string(&path).unwrap().lines() {
        let r: FlowRecord = serde_json::from_str(l).unwrap();
        assert_eq!(r.reporter, "src");
    }
}

#[test]
fn writer_thread_flushes_aggregated_records_on_stop() {
    let engine = shop();
    let log = Arc::new(FlowLog::new(FlowLogConfig { flush_interval_secs: 3600, ..FlowLogConfig::default() }));
    let req = OwnedRequest::from_json(CART).unwrap();
    for _ in 0..3 {
        log.decide(&engine, &req.as_request());
    }
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let h = flowlog::spawn_writer(
        log.clone(),
        Box::new(flowlog::CallbackSink(move |r: &[FlowRecord]| g.lock().unwrap().extend_from_slice(r))),
        stop.clone(),
    );
    stop.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(h.join().unwrap(), 0);
    let got = got.lock().unwrap();
    // Same flow three times: one record per side at the default levels.
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.num_flows == 3 && r.source_ip.is_none()));
}

fn tempdir() -> std::path::PathBuf {
    let d =
        std::env::temp_dir().join(format!("palisade-flowlog-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
