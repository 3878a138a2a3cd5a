//! Loops `decide` on one request of a generated cluster, for profilers
//! (`perf record`, `valgrind --tool=callgrind`).
//!
//! `profile SIZE REQUEST ITERATIONS`, e.g. `profile medium l4_allow 1000000`.

use palisade::{Config, Engine};
use palisade_bench::{Cluster, Size};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size = match args.get(1).map(String::as_str) {
        Some("large") => Size::LARGE,
        Some("small") => Size::SMALL,
        _ => Size::MEDIUM,
    };
    let which = args.get(2).cloned().unwrap_or_else(|| "l4_allow".into());
    let n: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let cluster = Cluster::generate(&size);
    let engine = Engine::new(Config { max_bundle_bytes: 256 << 20, ..Config::default() });
    if let Err(e) = engine.load_str(&cluster.yaml) {
        eprintln!("{e}");
        return;
    }
    let r = &cluster.requests;
    let req = match which.as_str() {
        "l4_deny" => &r.l4_deny,
        "http_allow" => &r.http_allow,
        "http_deny" => &r.http_deny,
        "stolen" => &r.stolen,
        "ingress_only" => &r.ingress_only,
        _ => &r.l4_allow,
    };
    let req = req.as_request();
    let t = std::time::Instant::now();
    let mut sink = 0u64;
    for _ in 0..n {
        sink = sink.wrapping_add(engine.decide(std::hint::black_box(&req)).generation);
    }
    let el = t.elapsed();
    println!("{which} on {}: {:.1} ns/decision ({sink})", size.name, el.as_nanos() as f64 / n as f64);
}
