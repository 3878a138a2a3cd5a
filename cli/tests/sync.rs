//! `palisade sync`: a directory captured with `--once --dump` decides as the directory does,
//! and a real etcd (started here on loopback, bounded) followed with status lines and dumps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../sync/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn palisade(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.args(args).current_dir(root()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Waits for a child up to `limit`, killing it (and failing) after that.
fn finish(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("palisade sync did not exit in {limit:?}; stderr: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn decide(bundle: &str, requests: &str) -> String {
    let out = palisade(&["decide", "--bundle", bundle, "--requests", requests]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `key=value` fields of a status line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}=");
    line.split(' ').find_map(|f| f.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[test]
fn a_directory_dumped_once_decides_the_same() {
    let out_dir = tempfile::tempdir().unwrap();
    let dump = out_dir.path().join("dump");
    let child =
        palisade(&["sync", "--dir", "examples/shop", "--once", "--dump", dump.to_str().unwrap()]).spawn().unwrap();
    let out = finish(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().last().unwrap();
    assert_eq!(field(line, "synced"), "true", "{line}");
    assert_eq!(field(line, "rejected"), "0", "{line}");
    assert!(field(line, "kinds").contains("Pod:"), "{line}");
    assert!(field(line, "kinds").contains("GlobalNetworkPolicy.projectcalico.org:"), "{line}");
    let files: Vec<String> =
        std::fs::read_dir(&dump).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(files.contains(&"pod.yaml".to_string()), "{files:?}");
    assert!(files.iter().all(|f| f.ends_with(".yaml")), "{files:?}");

    let requests = "examples/shop/requests.jsonl";
    let from_source = decide("examples/shop", requests);
    let from_dump = decide(dump.to_str().unwrap(), requests);
    assert!(from_source.lines().count() >= 8);
    assert_eq!(from_dump, from_source, "the dump decides as the source bundle");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["sync"][..],
        &["sync", "--dir", "a", "--etcd", "http://127.0.0.1:1"],
        &["sync", "--etcd"],
        &["sync", "--kube", "--etcd", "http://127.0.0.1:1"],
        &["sync", "--kubeconfig", "k"],
    ] {
        let out = palisade(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}

const PREFIX: &str = "/calico/resources/v3/projectcalico.org/";

fn gnp(port: u16) -> String {
    format!(
        r#"{{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{{"name":"web"}},
            "spec":{{"selector":"app == 'web'","ingress":[{{"action":"Allow","protocol":"TCP","destination":{{"ports":[{port}]}}}}]}}}}"#
    )
}

/// `allow` or `deny` for each port, deciding with `bundle`.
fn answers(bundle: &Path, ports: &[u16]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let requests = dir.path().join("r.jsonl");
    let lines: Vec<String> = ports
        .iter()
        .map(|p| format!(r#"{{"source": {{"ip": "10.0.0.1"}}, "destination": {{"ip": "10.0.0.2", "port": {p}}}}}"#))
        .collect();
    std::fs::write(&requests, lines.join("\n")).unwrap();
    decide(bundle.to_str().unwrap(), requests.to_str().unwrap())
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_datastore_is_followed_and_dumped() {
    let Some(etcd) = common::start_etcd() else { return };
    let result = tokio::time::timeout(Duration::from_secs(90), async {
        let mut kv = common::etcd_client(&etcd.url()).await;
        kv.put(
            format!("{PREFIX}workloadendpoints/shop/node1-k8s-web-eth0"),
            r#"{"metadata":{"labels":{"app":"web"}},"spec":{"pod":"web","ipNetworks":["10.0.0.2/32"],"profiles":["kns.shop"]}}"#,
            None,
        )
        .await
        .unwrap();
        kv.put(format!("{PREFIX}profiles/kns.shop"), r#"{"spec":{"ingress":[{"action":"Allow"}],"egress":[{"action":"Allow"}]}}"#, None)
            .await
            .unwrap();
        kv.put(format!("{PREFIX}globalnetworkpolicies/web"), gnp(80), None).await.unwrap();
        let out_dir = tempfile::tempdir().unwrap();

        // --once: capture the datastore and exit.
        let once = out_dir.path().join("once");
        let child =
            palisade(&["sync", "--etcd", &etcd.url(), "--once", "--dump", once.to_str().unwrap()]).spawn().unwrap();
        let out = tokio::task::spawn_blocking(move || finish(child, Duration::from_secs(30))).await.unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let line = stdout.lines().last().unwrap();
        assert_eq!(field(line, "objects"), "3", "{line}");
        assert_eq!(
            field(line, "kinds"),
            "GlobalNetworkPolicy.projectcalico.org:1,Profile.projectcalico.org:1,WorkloadEndpoint.projectcalico.org:1"
        );
        assert_eq!(answers(&once, &[80, 443]), ["allow", "deny"]);

        // Following: one line per snapshot, the dump rewritten after each.
        let follow = out_dir.path().join("follow");
        let mut child = palisade(&["sync", "--etcd", &etcd.url(), "--dump", follow.to_str().unwrap()]).spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let next = |rx: &std::sync::mpsc::Receiver<String>| rx.recv_timeout(Duration::from_secs(20));
        let first = next(&rx).expect("a status line for the first snapshot");
        assert_eq!(field(&first, "synced"), "true", "{first}");
        kv.put(format!("{PREFIX}globalnetworkpolicies/web"), gnp(443), None).await.unwrap();
        let second = next(&rx).expect("a status line for the change");
        let generation = |l: &str| field(l, "generation").parse::<u64>().unwrap();
        assert!(generation(&second) > generation(&first), "{first} / {second}");
        assert_eq!(answers(&follow, &[80, 443]), ["deny", "allow"]);
        let _ = child.kill();
        let _ = child.wait();
    })
    .await;
    drop(etcd);
    result.expect("the etcd CLI test took more than 90 s");
}

#[test]
fn a_kubeconfig_that_does_not_exist_is_an_error_not_a_hang() {
    let out = palisade(&["sync", "--kube", "--kubeconfig", "/nonexistent/kubeconfig", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the Kubernetes client"), "{err}");
    assert!(out.stdout.is_empty());
}
