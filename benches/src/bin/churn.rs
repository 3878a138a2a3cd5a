//! Live-cluster changes on a loaded engine (issue 18's benchmarks): one pod added or
//! removed until `decide` sees it, one policy changed, sustained pod churn while two
//! readers decide, and the memory of the object store beside the snapshot.
//!
//! `cargo run --release -p palisade-bench --bin churn -- [--size large] [--seconds 5] [--rate 1000]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use palisade::store::Change;
use palisade::{Config, Engine, OwnedRequest};
use palisade_bench::alloc_count::live;
use palisade_bench::{Cluster, Size};
use serde_json::Value;

#[global_allocator]
static ALLOC: palisade_bench::alloc_count::Counting = palisade_bench::alloc_count::Counting;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default()
}

fn us(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.0} us", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

/// A replica of `pod` named `name` on `ip` (same labels, so the same identity).
fn replica(pod: &Value, name: &str, ip: &str) -> Value {
    let mut p = pod.clone();
    p["metadata"]["name"] = Value::from(name);
    p["status"]["podIP"] = Value::from(ip);
    p["status"]["podIPs"] = serde_json::json!([{ "ip": ip }]);
    p
}

fn extra_ip(i: usize) -> String {
    format!("100.{}.{}.{}", 64 + i / 65_536, (i / 256) % 256, i % 256)
}

fn main() {
    let size = match arg("--size", "large").as_str() {
        "small" => Size::SMALL,
        "medium" => Size::MEDIUM,
        _ => Size::LARGE,
    };
    let secs: f64 = arg("--seconds", "5").parse().unwrap_or(5.0);
    let rate: f64 = arg("--rate", "1000").parse().unwrap_or(1000.0);
    let cfg = Config { max_bundle_bytes: 256 << 20, ..Config::default() };
    let cluster = Cluster::generate(&size);
    let engine = Arc::new(Engine::new(cfg.clone()));
    let before = live();
    let t = Instant::now();
    engine.load_str(&cluster.yaml).expect("the cluster loads");
    let load = t.elapsed();
    let with_store = live() - before;
    let snap = engine.snapshot().expect("loaded");
    let program = snap.program_heap_bytes();
    drop(snap);
    // The snapshot alone (model and program), built outside an engine.
    let before = live();
    let alone = palisade::Snapshot::build(&[palisade::load::Source { name: "gen", text: &cluster.yaml }], &cfg, 1)
        .expect("the cluster loads");
    let snapshot_bytes = live() - before;
    let t = Instant::now();
    let copy = alone.bundle().clone();
    let clone_time = t.elapsed();
    let t = Instant::now();
    let again = palisade::Snapshot::from_bundle(copy, &cfg, 2);
    let compile_time = t.elapsed();
    drop((alone, again));
    println!("## {} cluster: {} pods, {} policies\n", size.name, size.pods, cluster.policies);
    println!("load (parse + compile + store): {:.2} s", load.as_secs_f64());
    println!("model copy {}, compile {}", us(clone_time), us(compile_time));
    println!(
        "memory: engine {:.1} MiB = snapshot {:.1} MiB (program {:.1} MiB) + object store {:.1} MiB\n",
        with_store as f64 / 1048576.0,
        snapshot_bytes as f64 / 1048576.0,
        program as f64 / 1048576.0,
        (with_store - snapshot_bytes) as f64 / 1048576.0
    );

    let (_, objects) = engine.objects();
    let pods: Vec<Value> = objects.iter().filter(|(k, _)| k.kind == "Pod").map(|(_, v)| (**v).clone()).collect();
    let policy = objects
        .iter()
        .find(|(k, _)| k.kind == "NetworkPolicy" && k.group == "projectcalico.org")
        .map(|(_, v)| (**v).clone())
        .expect("a Calico NetworkPolicy");
    drop(objects);
    let probe = |ip: &str, port: u16| {
        OwnedRequest::from_json(&format!(
            r#"{{"source": {{"ip": "10.250.0.1"}}, "destination": {{"ip": "{ip}", "port": {port}}}, "protocol": "TCP"}}"#
        ))
        .expect("request")
    };

    // 1. One pod added, then removed: apply returns after the swap, so the next decide sees it.
    let mut add = Vec::new();
    let mut remove = Vec::new();
    let mut incremental = 0;
    let rounds = 200;
    for i in 0..rounds {
        let template = &pods[(i * 7919) % pods.len()];
        let ns = template["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
        let name = format!("churn-{i}");
        let ip = extra_ip(i);
        let req = probe(&ip, 1);
        let template_ip = template["status"]["podIP"].as_str().unwrap_or_default();
        let expected = engine.decide(&probe(template_ip, 1).as_request());
        let t = Instant::now();
        let r = engine.apply(vec![Change::upsert(replica(template, &name, &ip))]).expect("add");
        let seen = engine.decide(&req.as_request());
        add.push(t.elapsed());
        incremental += usize::from(r.incremental);
        assert_eq!((seen.action, seen.reason, seen.policy), (expected.action, expected.reason, expected.policy));
        let t = Instant::now();
        let r = engine.apply(vec![Change::delete("", "Pod", Some(&ns), &name)]).expect("remove");
        let seen = engine.decide(&req.as_request());
        remove.push(t.elapsed());
        incremental += usize::from(r.incremental);
        assert_eq!(seen.reason, palisade::Reason::NoPolicy, "the removed pod's IP has no owner");
    }
    println!("| change, visible to decide | median | p99 | incremental |");
    println!("|---|---:|---:|---:|");
    println!(
        "| one pod added (a replica) | {} | {} | {incremental}/{} |",
        us(quantile(&mut add, 0.5)),
        us(quantile(&mut add, 0.99)),
        2 * rounds
    );
    println!("| one pod removed | {} | {} | |", us(quantile(&mut remove, 0.5)), us(quantile(&mut remove, 0.99)));

    // 1b. Pod changes until the overlay is folded in (compiled again from the snapshot's
    // bundle): the one slow pod change in MAX_OVERLAY.
    let mut fold = None;
    let mut i = rounds;
    while fold.is_none() && i < rounds + palisade::store::pods::MAX_OVERLAY {
        let template = &pods[(i * 7919) % pods.len()];
        let before = engine.snapshot().map_or(0, |s| s.incremental_changes());
        let t = Instant::now();
        engine.apply(vec![Change::upsert(replica(template, &format!("fill-{i}"), &extra_ip(i)))]).expect("fill");
        let took = t.elapsed();
        if engine.snapshot().map_or(0, |s| s.incremental_changes()) < before {
            fold = Some(took);
        }
        i += 1;
    }
    if let Some(f) = fold {
        println!(
            "| the pod change that folds a full overlay in (1 in {}) | {} | | |",
            palisade::store::pods::MAX_OVERLAY,
            us(f)
        );
    }

    // 2. One policy changed (a full build: policies are not incremental).
    let mut changed = Vec::new();
    for i in 0..3 {
        let mut p = policy.clone();
        p["metadata"]["annotations"] = serde_json::json!({ "rev": i.to_string() });
        let t = Instant::now();
        let r = engine.apply(vec![Change::upsert(p)]).expect("policy");
        changed.push(t.elapsed());
        assert!(!r.incremental);
    }
    println!("| one policy changed (full build) | {} | | 0/3 |", us(quantile(&mut changed, 0.5)));

    // 3. Sustained pod churn while two readers decide; against the same readers with none.
    let requests: Arc<Vec<OwnedRequest>> = Arc::new(vec![
        cluster.requests.l4_allow.clone(),
        cluster.requests.l4_deny.clone(),
        cluster.requests.http_allow.clone(),
        cluster.requests.stolen.clone(),
    ]);
    let quiet = readers(&engine, &requests, secs, None);
    let churn = readers(&engine, &requests, secs, Some((rate, pods)));
    println!("\n| two readers | decisions/s | p50 | p99 | p99.9 | pod changes applied | full builds |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, r) in [("no churn", &quiet), (&*format!("{rate:.0} pod changes/s"), &churn)] {
        println!(
            "| {name} | {:.1} M | {} ns | {} ns | {} ns | {} | {} |",
            r.per_sec / 1e6,
            r.p50,
            r.p99,
            r.p999,
            r.changes,
            r.full_builds
        );
    }
    println!("\np99.9 with churn / without: {:.2}x", churn.p999 as f64 / quiet.p999.max(1) as f64);
}

struct Readers {
    per_sec: f64,
    p50: u64,
    p99: u64,
    p999: u64,
    changes: u64,
    full_builds: u64,
}

/// Two readers decide for `secs` (every call timed); a writer, if given, applies pod
/// changes at `rate` per second in 10 ms batches (what `palisade-sync` does with a 10 ms
/// debounce), alternating replicas added and removed.
fn readers(
    engine: &Arc<Engine>,
    requests: &Arc<Vec<OwnedRequest>>,
    secs: f64,
    churn: Option<(f64, Vec<Value>)>,
) -> Readers {
    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU64::new(0));
    let full = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(3 + usize::from(churn.is_some())));
    let writer = churn.map(|(rate, pods)| {
        let (engine, stop, changes, full, barrier) =
            (engine.clone(), stop.clone(), changes.clone(), full.clone(), barrier.clone());
        std::thread::spawn(move || {
            barrier.wait();
            let per_batch = (rate / 100.0).max(1.0) as usize;
            let start = Instant::now();
            let mut n = 0usize;
            let mut live: std::collections::VecDeque<(String, String)> = Default::default();
            while !stop.load(Ordering::Relaxed) {
                let mut batch = Vec::with_capacity(per_batch);
                for _ in 0..per_batch {
                    if live.len() >= 64 {
                        let (ns, name) = live.pop_front().unwrap_or_default();
                        batch.push(Change::delete("", "Pod", Some(&ns), &name));
                    } else {
                        let template = &pods[(n * 7919) % pods.len()];
                        let ns = template["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
                        let name = format!("live-{n}");
                        batch.push(Change::upsert(replica(template, &name, &extra_ip(10_000 + n % 50_000))));
                        live.push_back((ns, name));
                    }
                    n += 1;
                }
                if let Ok(r) = engine.apply(batch) {
                    changes.fetch_add(per_batch as u64, Ordering::Relaxed);
                    full.fetch_add(u64::from(!r.incremental), Ordering::Relaxed);
                }
                // Pace to the rate (a full build falls behind, then catches up).
                let due = Duration::from_secs_f64(n as f64 / rate);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        })
    });
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (engine, requests, stop, barrier) = (engine.clone(), requests.clone(), stop.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut reader = engine.reader();
                let reqs: Vec<_> = requests.iter().map(|r| r.as_request()).collect();
                let mut lat = Vec::with_capacity(1 << 22);
                barrier.wait();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = &reqs[i % reqs.len()];
                    let t = Instant::now();
                    std::hint::black_box(reader.decide(r));
                    if lat.len() < lat.capacity() {
                        lat.push(t.elapsed().as_nanos() as u64);
                    }
                    i += 1;
                }
                (i, lat)
            })
        })
        .collect();
    barrier.wait();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let mut all = Vec::new();
    let mut total = 0;
    for t in threads {
        let (n, lat) = t.join().expect("reader");
        total += n;
        all.extend(lat);
    }
    all.sort_unstable();
    let q = |q: f64| all.get(((all.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0);
    Readers {
        per_sec: total as f64 / secs,
        p50: q(0.5),
        p99: q(0.99),
        p999: q(0.999),
        changes: changes.load(Ordering::Relaxed),
        full_builds: full.load(Ordering::Relaxed),
    }
}
