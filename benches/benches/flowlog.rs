//! Flow logging on against off (issue 19's goal: median `decide` with logging on within 1.3x
//! of off), on the shop example's requests (`examples/shop/requests.jsonl`, the ten that
//! parse), cycled one per iteration.
//!
//! * `off`: `Engine::decide`.
//! * `on`: `FlowLog::decide` into a queue with room (the queue is replaced, untimed, before
//!   it fills: records are built by `drain`, elsewhere, so draining is not the hot path's).
//! * `on_queue_full`: `FlowLog::decide` into a full queue (every capture dropped and counted).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::flowlog::{FlowLog, FlowLogConfig};
use palisade::{Config, Engine, OwnedRequest};

const CAPACITY: usize = 4096;

fn shop() -> (Engine, Vec<OwnedRequest>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/shop");
    let engine = Engine::new(Config::default());
    engine.load_paths(&[dir]).unwrap();
    let text = std::fs::read_to_string(format!("{dir}/requests.jsonl")).unwrap();
    let reqs: Vec<OwnedRequest> = text.lines().filter_map(|l| OwnedRequest::from_json(l).ok()).collect();
    assert_eq!(reqs.len(), 10);
    (engine, reqs)
}

fn flowlog(c: &mut Criterion) {
    let (engine, reqs) = shop();
    let reqs: Vec<_> = reqs.iter().map(OwnedRequest::as_request).collect();
    let n = reqs.len();
    let mut g = c.benchmark_group("flowlog/shop");
    g.bench_function("off", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = if i + 1 == n { 0 } else { i + 1 };
            engine.decide(black_box(&reqs[i]))
        })
    });
    g.bench_function("on", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let log = FlowLog::new(FlowLogConfig { capacity: CAPACITY, ..FlowLogConfig::default() });
                log.prepare(&engine.snapshot().unwrap());
                let chunk = (iters - done).min(CAPACITY as u64);
                let t = Instant::now();
                for j in 0..chunk {
                    black_box(log.decide(&engine, black_box(&reqs[((done + j) % n as u64) as usize])));
                }
                total += t.elapsed();
                assert_eq!(log.stats().dropped, 0);
                done += chunk;
            }
            total
        })
    });
    g.bench_function("on_queue_full", |b| {
        let log = FlowLog::new(FlowLogConfig { capacity: 1, ..FlowLogConfig::default() });
        log.prepare(&engine.snapshot().unwrap());
        log.decide(&engine, &reqs[0]);
        let mut i = 0usize;
        b.iter(|| {
            i = if i + 1 == n { 0 } else { i + 1 };
            log.decide(&engine, black_box(&reqs[i]))
        })
    });
    g.finish();
}

criterion_group!(benches, flowlog);
criterion_main!(benches);
