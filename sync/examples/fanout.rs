//! Fan-out from one etcd to N watching clients in one process, each an `EtcdSource` +
//! `Syncer` + `Engine` of its own (its own gRPC connection, its own watch): the time from a
//! write to the moment each client's engine decides the new answer, over a few writes.
//!
//! `cargo run -p palisade-sync --example fanout -- [N=100] [WRITES=5] [DEBOUNCE_MS=50]`
//! starts its own etcd (Debian's `etcd` on PATH) on loopback with a temporary data directory.
//! Results: docs/scale.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade::{Config, Engine, OwnedRequest};
use palisade_sync::etcd::{CALICO_PREFIX, EtcdSource};
use palisade_sync::{Options, Syncer};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn gnp(port: u16) -> String {
    format!(
        r#"{{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{{"name":"web"}},
            "spec":{{"selector":"app == 'web'","ingress":[{{"action":"Allow","protocol":"TCP","destination":{{"ports":[{port}]}}}}]}}}}"#
    )
}

fn allowed(engine: &Engine, req: &OwnedRequest) -> bool {
    engine.decide(&req.as_request()).allowed()
}

fn to(port: u16) -> OwnedRequest {
    OwnedRequest::from_json(&format!(
        r#"{{"source": {{"ip": "10.0.0.1"}}, "destination": {{"ip": "10.0.0.2", "port": {port}}}}}"#
    ))
    .unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Resident memory of this process (Linux), in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arg = |i: usize, d: u64| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (n, writes, debounce) = (arg(1, 100) as usize, arg(2, 5) as usize, arg(3, 50));

    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let mut etcd = Command::new("etcd")
        .args(["--name", "f1", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
        .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("f1={peer_url}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("an `etcd` binary on PATH");
    let mut kv = None;
    for _ in 0..100 {
        if let Ok(mut c) = etcd_client::Client::connect([url.as_str()], None).await
            && c.get("/", None).await.is_ok()
        {
            kv = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut kv = kv.expect("etcd ready in 10 s");
    kv.put(
        format!("{CALICO_PREFIX}workloadendpoints/shop/node1-k8s-web-eth0"),
        r#"{"metadata":{"labels":{"app":"web"}},"spec":{"pod":"web","ipNetworks":["10.0.0.2/32"],"profiles":["kns.shop"]}}"#,
        None,
    )
    .await
    .unwrap();
    kv.put(
        format!("{CALICO_PREFIX}profiles/kns.shop"),
        r#"{"spec":{"ingress":[{"action":"Allow"}],"egress":[{"action":"Allow"}]}}"#,
        None,
    )
    .await
    .unwrap();
    let key = format!("{CALICO_PREFIX}globalnetworkpolicies/web");
    kv.put(key.as_str(), gnp(1000), None).await.unwrap();

    let rss_before = rss_mib();
    let options = Options { debounce: Duration::from_millis(debounce), ..Options::default() };
    let started = Instant::now();
    let mut engines = Vec::with_capacity(n);
    for _ in 0..n {
        let engine = Arc::new(Engine::new(Config::default()));
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(Syncer::new(engine.clone(), options.clone()).run(rx));
        tokio::spawn(EtcdSource::new(vec![url.clone()]).run(tx));
        engines.push(engine);
    }
    let first = to(1000);
    while !engines.iter().all(|e| allowed(e, &first)) {
        assert!(started.elapsed() < Duration::from_secs(120), "not all {n} clients synced in 120 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "{n} clients synced in {:.0} ms; resident memory {:.1} MiB -> {:.1} MiB ({:.1} KiB per client)",
        ms(started.elapsed()),
        rss_before,
        rss_mib(),
        (rss_mib() - rss_before) * 1024.0 / n as f64
    );

    let mut lasts = Vec::new();
    let mut all = Vec::new();
    for w in 1..=writes {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let port = 1000 + w as u16;
        let req = to(port);
        let mut pending: Vec<usize> = (0..n).collect();
        let t = Instant::now();
        kv.put(key.as_str(), gnp(port), None).await.unwrap();
        let mut seen = Vec::with_capacity(n);
        while !pending.is_empty() {
            pending.retain(|&i| {
                if allowed(&engines[i], &req) {
                    seen.push(t.elapsed());
                    false
                } else {
                    true
                }
            });
            assert!(t.elapsed() < Duration::from_secs(60), "write {w}: {} clients behind after 60 s", pending.len());
            tokio::task::yield_now().await;
        }
        let last = *seen.iter().max().unwrap();
        let mut s = seen.clone();
        println!("write {w}: first {:.1} ms, median {:.1} ms, last {:.1} ms", ms(s[0]), ms(median(&mut s)), ms(last));
        lasts.push(last);
        all.extend(seen);
    }
    let max = *lasts.iter().max().unwrap();
    println!(
        "N={n} debounce={debounce}ms writes={writes}: write -> last client median {:.1} ms, max {:.1} ms; \
         per client median {:.1} ms",
        ms(median(&mut lasts)),
        ms(max),
        ms(median(&mut all))
    );
    let _ = etcd.kill();
    let _ = etcd.wait();
}
