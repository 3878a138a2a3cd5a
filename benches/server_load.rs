//! Load benchmark of palisade-serve: a tonic gRPC load generator against the server, both in
//! this process on separate tokio runtimes (2 server workers, 2 client workers: the two cores
//! are shared), on loopback, with examples/shop and the check Envoy sends for
//! `frontend -> cart GET /api/cart/42` under mTLS.
//!
//! Open loop at 1,000 and 10,000 checks/s (latency from each check's scheduled start, so a
//! stall is not hidden), then closed loop at saturation; and the time inside the handler
//! (translation, decision, response), which is what OPA-Envoy's published figure measures.
//!
//! Run: `cargo bench -p palisade-server --features load-bench --bench server_load`
//! (`LOAD_SECONDS` sets each phase's length, default 5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_server::envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use palisade_server::envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use palisade_server::envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress};
use palisade_server::envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request as AttrRequest,
};
use palisade_server::envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use palisade_server::envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use palisade_server::{ServeOptions, metrics::Metrics, translate};
use tonic::transport::Channel;

fn peer(ip: &str, port: u32, principal: &str) -> Peer {
    Peer {
        address: Some(Address {
            address: Some(AddressKind::SocketAddress(SocketAddress {
                address: ip.to_string(),
                port_specifier: Some(PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }),
        principal: principal.to_string(),
        ..Default::default()
    }
}

fn envoy_check() -> CheckRequest {
    let headers: HashMap<String, String> = [
        (":method", "GET"),
        (":path", "/api/cart/42"),
        (":authority", "cart.shop"),
        (":scheme", "https"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
        ("x-request-id", "6f1c7c1e-4d0e-4c44-9a1e-3c8e8f2b9a10"),
        ("x-forwarded-proto", "https"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(peer("10.1.0.5", 43122, "spiffe://cluster.local/ns/shop/sa/frontend")),
            destination: Some(peer("10.1.0.9", 8080, "spiffe://cluster.local/ns/shop/sa/cart")),
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    id: "12345".into(),
                    method: "GET".into(),
                    path: "/api/cart/42".into(),
                    host: "cart.shop".into(),
                    scheme: "https".into(),
                    protocol: "HTTP/2".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

struct Stats {
    sent: usize,
    errors: usize,
    took: Duration,
    lat: Vec<Duration>,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut s: Stats) -> String {
    s.lat.sort();
    let rate = s.lat.len() as f64 / s.took.as_secs_f64();
    let line = format!(
        "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
        s.sent,
        rate,
        pct(&s.lat, 0.50).as_secs_f64() * 1e6,
        pct(&s.lat, 0.99).as_secs_f64() * 1e6,
        pct(&s.lat, 0.999).as_secs_f64() * 1e6,
        s.lat.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
        s.errors
    );
    println!("{line}");
    line
}

/// Open loop: one check every `1/rate`, over `channels` connections, for `secs`.
async fn open_loop(clients: &[AuthorizationClient<Channel>], rate: u64, secs: u64) -> Stats {
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let total = (rate * secs) as usize;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + interval * i as u32;
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        }
        let mut c = clients[i % clients.len()].clone();
        let req = envoy_check();
        handles.push(tokio::spawn(async move {
            let ok = c.check(req).await.map(|r| r.get_ref().status.as_ref().map(|s| s.code) == Some(0));
            (ok.unwrap_or(false), due.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(total);
    let mut errors = 0;
    for h in handles {
        let (ok, d) = h.await.unwrap();
        if ok { lat.push(d) } else { errors += 1 }
    }
    Stats { sent: total, errors, took: start.elapsed(), lat }
}

/// Closed loop: `concurrency` checks always in flight, for `secs`.
async fn saturate(clients: &[AuthorizationClient<Channel>], concurrency: usize, secs: u64) -> Stats {
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut handles = Vec::new();
    for i in 0..concurrency {
        let mut c = clients[i % clients.len()].clone();
        handles.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < end {
                let t = Instant::now();
                match c.check(envoy_check()).await {
                    Ok(r) if r.get_ref().status.as_ref().map(|s| s.code) == Some(0) => lat.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    Stats { sent: lat.len() + errors, errors, took: start.elapsed(), lat }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    let secs: u64 = std::env::var("LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");

    // In-handler time: the service's own translate + decide + respond, no transport.
    let engine = Arc::new(palisade::Engine::new(palisade::Config::default()));
    engine.load_paths(&[&shop]).unwrap();
    let svc = palisade_server::AuthzService::new(engine, Arc::new(Metrics::new()), translate::Options::default());
    let check = envoy_check();
    let mut handler = Vec::with_capacity(200_000);
    for _ in 0..200_000 {
        let t = Instant::now();
        let r = svc.answer(&check);
        handler.push(t.elapsed());
        assert_eq!(r.status.as_ref().map(|s| s.code), Some(0));
    }
    handler.sort();
    let handler_line = format!(
        "in-handler (translate + decide + respond, 200,000 calls): p50 {:.2} µs, p99 {:.2} µs",
        pct(&handler, 0.5).as_secs_f64() * 1e6,
        pct(&handler, 0.99).as_secs_f64() * 1e6
    );
    println!("{handler_line}");

    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let running = server_rt
        .block_on(palisade_server::start(ServeOptions {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            bundles: vec![shop],
            watch: false,
            ..ServeOptions::default()
        }))
        .unwrap();
    let addr = running.grpc_addrs[0];
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let lines = client_rt.block_on(async move {
        let mut clients = Vec::new();
        for _ in 0..2 {
            let ch = Channel::from_shared(format!("http://{addr}")).unwrap().tcp_nodelay(true).connect().await.unwrap();
            clients.push(AuthorizationClient::new(ch));
        }
        // Warm up.
        let _ = saturate(&clients, 16, 1).await;
        println!("| load | checks | answered/s | p50 µs | p99 µs | p99.9 µs | max µs | errors |");
        println!("|---|---|---|---|---|---|---|---|");
        vec![
            report("open loop, 1,000/s", open_loop(&clients, 1_000, secs).await),
            report("open loop, 10,000/s", open_loop(&clients, 10_000, secs).await),
            report("closed loop, 64 in flight (saturation)", saturate(&clients, 64, secs).await),
        ]
    });
    server_rt.block_on(running.shutdown(Duration::from_secs(10))).unwrap();
    if let Ok(out) = std::env::var("LOAD_REPORT") {
        let text = format!("{handler_line}\n\n{}\n", lines.join("\n"));
        std::fs::write(out, text).unwrap();
    }
}
