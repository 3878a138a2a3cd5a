//! Loops the shop example's requests through `Engine::decide` (`off`) or `FlowLog::decide`
//! (`on`), for instruction counts. The decisions run in `run`, which callgrind can be told to
//! count alone (setup, and for `on` the untimed replacement of the queue, excluded):
//!
//! ```sh
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='flowlog_loop::run' \
//!     target/release/flowlog_loop on 40960
//! ```
//!
//! `flowlog_loop off|on|full N`; `full` decides into a full queue (every capture dropped).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use palisade::flowlog::{FlowLog, FlowLogConfig};
use palisade::{Config, Engine, OwnedRequest, Request};

const CAPACITY: usize = 4096;

/// Decides `count` requests, cycling through `reqs` from `start`; with `log`, through it.
#[inline(never)]
fn run(engine: &Engine, log: Option<&FlowLog>, reqs: &[Request<'_>], start: u64, count: u64) -> u64 {
    let mut sink = 0u64;
    for j in start..start + count {
        let req = black_box(&reqs[(j % reqs.len() as u64) as usize]);
        let d = match log {
            Some(log) => log.decide(engine, req),
            None => engine.decide(req),
        };
        sink = sink.wrapping_add(d.generation);
    }
    sink
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or_else(|| "on".into());
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(40_960);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/shop");
    let engine = Engine::new(Config::default());
    engine.load_paths(&[dir]).unwrap();
    let text = std::fs::read_to_string(format!("{dir}/requests.jsonl")).unwrap();
    let owned: Vec<OwnedRequest> = text.lines().filter_map(|l| OwnedRequest::from_json(l).ok()).collect();
    let reqs: Vec<Request<'_>> = owned.iter().map(OwnedRequest::as_request).collect();
    let new_log = |capacity| {
        let log = FlowLog::new(FlowLogConfig { capacity, ..FlowLogConfig::default() });
        log.prepare(&engine.snapshot().unwrap());
        log
    };
    let t = std::time::Instant::now();
    let mut sink = 0u64;
    let mut dropped = 0u64;
    match mode.as_str() {
        "off" => sink = run(&engine, None, &reqs, 0, n),
        "full" => {
            let log = new_log(1);
            log.decide(&engine, &reqs[0]);
            sink = run(&engine, Some(&log), &reqs, 0, n);
            dropped = log.stats().dropped;
        }
        _ => {
            let mut done = 0;
            while done < n {
                let log = new_log(CAPACITY);
                let chunk = (n - done).min(CAPACITY as u64);
                sink = sink.wrapping_add(run(&engine, Some(&log), &reqs, done, chunk));
                dropped += log.stats().dropped;
                done += chunk;
            }
        }
    }
    let el = t.elapsed();
    println!(
        "{mode}: {n} decisions, {:.1} ns/decision wall (queue replacement included), {dropped} dropped ({sink}); \
         a queue of {CAPACITY} holds {} bytes",
        el.as_nanos() as f64 / n as f64,
        new_log(CAPACITY).memory_bytes()
    );
}
