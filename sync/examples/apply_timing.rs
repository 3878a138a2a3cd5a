//! Times one pod change through `Engine::apply` against a full reload of the same bundle.
//! `cargo run --release -p palisade-sync --example apply_timing [small|medium|large]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use palisade::{Change, Config, Engine};
use palisade_bench::{Cluster, Size};
use serde_json::json;

fn main() {
    let size = match std::env::args().nth(1).as_deref() {
        Some("small") => Size::SMALL,
        Some("large") => Size::LARGE,
        _ => Size::MEDIUM,
    };
    let cluster = Cluster::generate(&size);
    let engine = Engine::new(Config::default());
    let t = Instant::now();
    engine.load_str(&cluster.yaml).unwrap();
    let full = t.elapsed();
    println!("{}: {} objects, full load (parse + compile + store) {:?}", size.name, engine.object_count(), full);
    let mut times = Vec::new();
    for i in 0..5 {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("extra-{i}"), "namespace": "ns-0", "labels": {"app": "extra"}},
            "status": {"podIP": format!("10.250.0.{i}")}});
        let t = Instant::now();
        engine.apply(vec![Change::upsert(pod)]).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!("apply of one pod: median {:?} (min {:?}, max {:?}) over 5", times[2], times[0], times[4]);
}
