//! `FlowLog::decide` (decide and capture into the bounded queue) makes no heap allocation,
//! with the pending view prepared, on allowed, denied, staged, identity and invalid
//! requests, and when the queue is full. Measured with a counting global allocator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade::flowlog::{FlowLog, FlowLogConfig};
use palisade::{Config, Engine, OwnedRequest};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, allocations};

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn logged_decide_never_allocates() {
    let engine = Engine::new(Config::default());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
    engine.load_paths(&[root]).unwrap();
    let log = FlowLog::new(FlowLogConfig { capacity: 64, ..FlowLogConfig::default() });
    log.prepare(&engine.snapshot().unwrap());
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop/requests.jsonl"),
    )
    .unwrap();
    let reqs: Vec<OwnedRequest> = text.lines().filter_map(|l| OwnedRequest::from_json(l).ok()).collect();
    assert!(reqs.len() >= 10);
    // Warm up once (thread-locals, lazily initialised statics).
    for r in &reqs {
        log.decide(&engine, &r.as_request());
    }
    log.drain();
    for (i, r) in reqs.iter().enumerate() {
        let req = r.as_request();
        let n = allocations(|| {
            std::hint::black_box(log.decide(&engine, &req));
        });
        assert_eq!(n, 0, "request {} allocated {n} times", i + 1);
    }
    // Staged relevance was exercised with the pending view.
    let recs = log.drain();
    assert!(recs.iter().any(|r| r.policies.as_ref().unwrap().pending_policies.iter().any(|h| h.contains("staged:"))));
    // A full queue drops without allocating.
    let req = reqs[0].as_request();
    for _ in 0..64 {
        log.decide(&engine, &req);
    }
    let n = allocations(|| {
        for _ in 0..10 {
            std::hint::black_box(log.decide(&engine, &req));
        }
    });
    assert_eq!(n, 0);
    assert_eq!(log.stats().dropped, 10);
}
