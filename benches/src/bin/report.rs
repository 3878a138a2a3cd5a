//! The numbers criterion does not give: parse and compile times of the large cluster,
//! memory per endpoint (counting allocator), and reader throughput and latency percentiles
//! on 1 and 2 threads, without reloads and while a writer reloads in a loop.
//!
//! `cargo run --release -p palisade-bench --bin report [-- --sizes small,medium,large --seconds 3]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use palisade::load::{Source, load};
use palisade::{Config, Engine, OwnedRequest, Snapshot};
use palisade_bench::alloc_count::live;
use palisade_bench::{Cluster, Size};

#[global_allocator]
static ALLOC: palisade_bench::alloc_count::Counting = palisade_bench::alloc_count::Counting;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

struct Latency {
    decisions: u64,
    per_sec: f64,
    p50: u64,
    p99: u64,
    p999: u64,
}

/// Readers decide in a loop for `secs`, timing every call; an optional writer reloads.
fn run_readers(
    engine: &Arc<Engine>,
    requests: &Arc<Vec<OwnedRequest>>,
    threads: usize,
    secs: f64,
    reload: Option<Arc<String>>,
) -> (Latency, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let reloads = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(threads + 1 + usize::from(reload.is_some())));
    let writer = reload.map(|text| {
        let (engine, stop, reloads, barrier) = (engine.clone(), stop.clone(), reloads.clone(), barrier.clone());
        std::thread::spawn(move || {
            barrier.wait();
            while !stop.load(Ordering::Relaxed) {
                if engine.load_str(&text).is_ok() {
                    reloads.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    });
    let readers: Vec<_> = (0..threads)
        .map(|_| {
            let (engine, requests, stop, barrier) = (engine.clone(), requests.clone(), stop.clone(), barrier.clone());
            std::thread::spawn(move || {
                let borrowed: Vec<_> = requests.iter().map(|r| r.as_request()).collect();
                let mut samples: Vec<u32> = Vec::with_capacity(1 << 24);
                let mut sink = 0u64;
                barrier.wait();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        let r = &borrowed[i % borrowed.len()];
                        i += 1;
                        let t = Instant::now();
                        let d = engine.decide(r);
                        let ns = t.elapsed().as_nanos() as u32;
                        sink = sink.wrapping_add(d.generation);
                        if samples.len() < samples.capacity() {
                            samples.push(ns);
                        }
                    }
                }
                std::hint::black_box(sink);
                (i as u64, samples)
            })
        })
        .collect();
    barrier.wait();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut all: Vec<u32> = Vec::new();
    for r in readers {
        let (n, s) = r.join().unwrap_or_default();
        total += n;
        all.extend(s);
    }
    if let Some(w) = writer {
        let _ = w.join();
    }
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0) as u64;
    (
        Latency { decisions: total, per_sec: total as f64 / secs, p50: pct(0.5), p99: pct(0.99), p999: pct(0.999) },
        reloads.load(Ordering::Relaxed),
    )
}

fn main() {
    let sizes = arg("--sizes", "small,medium,large");
    let secs: f64 = arg("--seconds", "3").parse().unwrap_or(3.0);
    let cfg = Config { max_bundle_bytes: 256 << 20, ..Config::default() };
    println!("## Load and memory\n");
    println!("| size | pods | policies | YAML | parse | compile | model bytes/endpoint | program bytes/endpoint |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut medium: Option<Cluster> = None;
    for size in [Size::SMALL, Size::MEDIUM, Size::LARGE] {
        if !sizes.split(',').any(|s| s == size.name) {
            continue;
        }
        let cluster = Cluster::generate(&size);
        let before = live();
        let t = Instant::now();
        let bundle = match load(&[Source { name: "gen", text: &cluster.yaml }], &cfg) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", size.name);
                return;
            }
        };
        let parse = t.elapsed();
        let model = live() - before;
        let before_compile = live();
        let t = Instant::now();
        let snapshot = Snapshot::from_bundle(bundle, &cfg, 1);
        let compile = t.elapsed();
        let program = live() - before_compile;
        println!(
            "| {} | {} | {} | {:.1} MiB | {} | {} | {} | {} |",
            size.name,
            size.pods,
            cluster.policies,
            cluster.yaml.len() as f64 / (1 << 20) as f64,
            ms(parse),
            ms(compile),
            model / size.pods as isize,
            program / size.pods as isize
        );
        drop(snapshot);
        if size.name == "medium" {
            medium = Some(cluster);
        }
    }
    let Some(cluster) = medium else { return };
    println!("\n## Readers on the medium cluster ({secs} s per run; latency includes ~20 ns of clock reads)\n");
    println!("| threads | writer | decisions/s | p50 | p99 | p99.9 | reloads |");
    println!("|---|---|---|---|---|---|---|");
    let engine = Arc::new(Engine::new(cfg.clone()));
    if let Err(e) = engine.load_str(&cluster.yaml) {
        eprintln!("{e}");
        return;
    }
    let r = &cluster.requests;
    let requests = Arc::new(vec![
        r.l4_allow.clone(),
        r.l4_deny.clone(),
        r.http_allow.clone(),
        r.http_deny.clone(),
        r.stolen.clone(),
        r.ingress_only.clone(),
    ]);
    let text = Arc::new(cluster.yaml.clone());
    for (threads, writer) in [(1, false), (2, false), (1, true), (2, true)] {
        let (l, reloads) = run_readers(&engine, &requests, threads, secs, writer.then(|| text.clone()));
        println!(
            "| {threads} | {} | {:.1} M | {} ns | {} ns | {} ns | {} |",
            if writer { "reloading" } else { "none" },
            l.per_sec / 1e6,
            l.p50,
            l.p99,
            l.p999,
            reloads
        );
        let _ = l.decisions;
    }
}
