//! `decide --flow-log` and `palisade replay`: records written in Calico's format, and replay
//! finding exactly the flows whose verdict a one-rule change flips (on the shop example and
//! on a generated workload), with exit status 3 when some verdict changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use serde_json::Value;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade")).args(args).current_dir(root()).output().unwrap()
}

fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn decide_writes_calico_records_and_replay_finds_the_changed_rule() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("flows.log");
    let out = palisade(&[
        "decide",
        "--bundle",
        "examples/shop",
        "--requests",
        "examples/shop/requests.jsonl",
        "--flow-log",
        log.to_str().unwrap(),
        "--aggregation",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // The decisions on stdout are unchanged by logging.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 11);
    let recs = records(&log);
    assert!(recs.iter().all(|r| r["reporter"] == "src" || r["reporter"] == "dst"));
    let cart = recs
        .iter()
        .find(|r| r["reporter"] == "dst" && r["dest_name"] == "cart-5c4b" && r["source_name"] == "frontend-7d9f")
        .unwrap();
    assert_eq!(cart["policies"]["enforced_policies"][2], "2|default|shop/default.cart-api|allow|0");
    assert_eq!(cart["http_requests_allowed_in"], 1);
    assert_eq!(cart["palisade"]["principal"], "spiffe://cluster.local/ns/shop/sa/frontend");

    // Same bundle: nothing changes, exit 0.
    let same =
        palisade(&["replay", "--flow-log", log.to_str().unwrap(), "--bundle", "examples/shop", "--format", "json"]);
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stderr));
    let report: Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(report["replayed"], recs.len());
    assert_eq!(report["unchanged"], recs.len());

    // cart-api no longer allows GET: exactly the frontend -> cart ingress record flips.
    let new = dir.path().join("new");
    std::fs::create_dir(&new).unwrap();
    for f in std::fs::read_dir(root().join("examples/shop")).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&f).unwrap();
            std::fs::write(
                new.join(f.file_name().unwrap()),
                text.replace("methods: [GET, POST, DELETE]", "methods: [POST, DELETE]"),
            )
            .unwrap();
        }
    }
    let changed = palisade(&[
        "replay",
        "--flow-log",
        log.to_str().unwrap(),
        "--bundle",
        new.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(changed.status.code(), Some(3), "{}", String::from_utf8_lossy(&changed.stderr));
    let report: Value = serde_json::from_slice(&changed.stdout).unwrap();
    assert_eq!(report["allowed_to_denied"], 1);
    assert_eq!(report["denied_to_allowed"], 0);
    let c = &report["changes"][0];
    assert_eq!(report["changes"].as_array().unwrap().len(), 1);
    assert_eq!((c["source"].as_str(), c["destination"].as_str()), (Some("shop/frontend-7d9f"), Some("shop/cart-5c4b")));
    assert_eq!((c["before"].as_str(), c["after"].as_str()), (Some("allow"), Some("deny")));
    assert_eq!(c["before_policy"], "default|shop/default.cart-api|allow|0");
    assert_eq!(c["after_policy"], "default|shop/default.cart-api|deny|-1");
    // The same with the old bundle as baseline, as markdown for a pull request.
    let md = palisade(&[
        "replay",
        "--flow-log",
        log.to_str().unwrap(),
        "--bundle",
        new.to_str().unwrap(),
        "--baseline",
        "examples/shop",
        "--format",
        "markdown",
    ]);
    assert_eq!(md.status.code(), Some(3));
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("**1 allowed → denied**"), "{md}");
    assert!(md.contains("`default\\|shop/default.cart-api\\|deny\\|-1`"), "{md}");
}

/// 16 pods, each with a policy allowing ports 8080 and 8081 from every pod; a flow for
/// every ordered pair and port. The new bundle drops 8081 from pod 7's policy: the 15
/// ingress records into pod 7 on 8081 are reported, and nothing else.
#[test]
fn replay_reports_exactly_the_records_a_one_rule_change_affects() {
    let dir = tempfile::tempdir().unwrap();
    let n = 16;
    let bundle = |narrow: Option<usize>| {
        let mut y = String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: gen}\n");
        for i in 0..n {
            let ports = if narrow == Some(i) { "[8080]" } else { "[8080, 8081]" };
            y.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: pod-{i}, namespace: gen, labels: {{app: a{i}}}}}\nstatus: {{podIP: 10.9.0.{}}}\n\
                 ---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: allow-{i}, namespace: gen}}\n\
                 spec:\n  selector: app == 'a{i}'\n  ingress: [{{action: Allow, protocol: TCP, destination: {{ports: {ports}}}}}]\n",
                i + 1
            ));
        }
        y
    };
    let old = dir.path().join("old.yaml");
    let new = dir.path().join("new.yaml");
    std::fs::write(&old, bundle(None)).unwrap();
    std::fs::write(&new, bundle(Some(7))).unwrap();
    let mut reqs = String::new();
    for i in 0..n {
        for j in 0..n {
            if i != j {
                for port in [8080, 8081] {
                    reqs.push_str(&format!(
                        "{{\"source\": {{\"ip\": \"10.9.0.{}\", \"port\": {}}}, \"destination\": {{\"ip\": \"10.9.0.{}\", \"port\": {port}}}}}\n",
                        i + 1,
                        30000 + j,
                        j + 1
                    ));
                }
            }
        }
    }
    let reqs_path = dir.path().join("requests.jsonl");
    std::fs::write(&reqs_path, reqs).unwrap();
    let log = dir.path().join("flows.log");
    let out = palisade(&[
        "decide",
        "--bundle",
        old.to_str().unwrap(),
        "--requests",
        reqs_path.to_str().unwrap(),
        "--flow-log",
        log.to_str().unwrap(),
        "--aggregation",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let total = n * (n - 1) * 2 * 2;
    assert_eq!(records(&log).len(), total, "one record per side");
    let out = palisade(&[
        "replay",
        "--flow-log",
        log.to_str().unwrap(),
        "--bundle",
        new.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["replayed"], total);
    assert_eq!(report["allowed_to_denied"], n - 1);
    assert_eq!(report["denied_to_allowed"], 0);
    assert_eq!(report["unchanged"], total - (n - 1));
    let changes = report["changes"].as_array().unwrap();
    let mut sources: Vec<&str> = changes.iter().map(|c| c["source"].as_str().unwrap()).collect();
    sources.sort();
    let mut expected: Vec<String> = (0..n).filter(|&i| i != 7).map(|i| format!("gen/pod-{i}")).collect();
    expected.sort();
    assert_eq!(sources, expected);
    for c in changes {
        assert_eq!((c["destination"].as_str(), c["reporter"].as_str()), (Some("gen/pod-7"), Some("dst")));
        assert_eq!(c["before_policy"], "default|gen/default.allow-7|allow|0");
        assert_eq!(c["after_policy"], "default|gen/default.allow-7|deny|-1");
        assert_eq!(c["records"], 1);
        let at = c["examples"][0].as_str().unwrap();
        let line: usize = at.rsplit(':').next().unwrap().parse().unwrap();
        let rec: Value =
            serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().nth(line - 1).unwrap()).unwrap();
        assert_eq!((rec["dest_port"].as_u64(), rec["dest_ip"].as_str()), (Some(8081), Some("10.9.0.8")));
    }
}

#[test]
fn calico_records_replay_and_aggregated_ones_are_reported_as_not_replayable() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("flows.log");
    // Calico's own records (fields Palisade never writes included): one with IPs, one
    // aggregated at level 2, one that is not JSON.
    let with_ips = r#"{"start_time":1700000000,"end_time":1700000300,"source_ip":"10.1.0.5","source_name":"frontend-7d9f","source_name_aggr":"frontend-7d9f","source_namespace":"shop","source_port":null,"source_type":"wep","source_labels":null,"dest_ip":"10.2.0.7","dest_name":"payments-api-0","dest_name_aggr":"payments-api-0","dest_namespace":"payments","dest_port":8443,"dest_type":"wep","dest_labels":null,"proto":"tcp","action":"allow","reporter":"dst","policies":{"all_policies":["0|default|payments/default.payments-api|allow|0"],"enforced_policies":["0|default|payments/default.payments-api|allow|0"],"pending_policies":[]},"bytes_in":100,"bytes_out":200,"num_flows":4,"num_flows_started":4,"num_flows_completed":4,"packets_in":3,"packets_out":3,"http_requests_allowed_in":0,"http_requests_denied_in":0}"#;
    let aggregated = with_ips.replace(r#""source_ip":"10.1.0.5""#, r#""source_ip":null"#);
    std::fs::write(&log, format!("{with_ips}\n{aggregated}\nnot json\n")).unwrap();
    let out =
        palisade(&["replay", "--flow-log", log.to_str().unwrap(), "--bundle", "examples/shop", "--format", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["records"].as_u64(), report["replayed"].as_u64()), (Some(3), Some(1)));
    // The frontend may not reach payments in the shop bundle.
    assert_eq!(report["changes"][0]["flows"], 4);
    assert_eq!(report["changes"][0]["after"], "deny");
    let skipped = report["skipped"].as_array().unwrap();
    assert!(skipped[0]["why"].as_str().unwrap().starts_with("aggregated"));
    assert!(skipped[1]["why"].as_str().unwrap().starts_with("not a flow-log record"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(palisade(&["replay", "--bundle", "examples/shop"]).status.code(), Some(2));
    assert_eq!(
        palisade(&["replay", "--flow-log", "x", "--bundle", "examples/shop", "--format", "xml"]).status.code(),
        Some(2)
    );
    assert_eq!(
        palisade(&["explain", "--bundle", "examples/shop", "--request", "-", "--flow-log", "f"]).status.code(),
        Some(2)
    );
    assert_eq!(
        palisade(&[
            "decide",
            "--bundle",
            "examples/shop",
            "--requests",
            "examples/shop/requests.jsonl",
            "--flow-log",
            "-",
            "--aggregation",
            "7"
        ])
        .status
        .code(),
        Some(1)
    );
}
