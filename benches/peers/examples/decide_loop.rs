//! Decides one workload request in a loop, for profilers (`valgrind --tool=callgrind`):
//! `decide_loop [N] [shape] [iterations] [istio|calico]` (the rule form, default Istio).

use palisade_peers::palisade_peer::PalisadePeer;
use palisade_peers::{Shape, Workload};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let shape = args.next().unwrap_or_else(|| "first".into());
    let iters: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let calico = args.next().is_some_and(|f| f == "calico");
    let w = Workload::generate(n);
    let Ok(p) = (if calico { PalisadePeer::new_calico(&w) } else { PalisadePeer::new(&w) }) else { return };
    let Some(&shape) = Shape::ALL.iter().find(|s| s.name() == shape) else { return };
    if let Some(snap) = p.engine.snapshot() {
        eprintln!(
            "program heap {} B, indexed segments {}, keyed rules (principal, source, destination) {:?}",
            snap.program_heap_bytes(),
            snap.indexed_segments(),
            snap.keyed_rules()
        );
    }
    let r = w.request(shape);
    let mut allowed = 0usize;
    // PALISADE_DECIDE=reader: through a per-thread `Engine::reader()` instead of `Engine::decide`.
    if std::env::var("PALISADE_DECIDE").is_ok_and(|m| m == "reader") {
        let mut reader = p.engine.reader();
        for _ in 0..iters {
            let d = reader.decide(&palisade_peers::palisade_peer::request(std::hint::black_box(r)));
            allowed += usize::from(d.allowed());
        }
    } else {
        for _ in 0..iters {
            allowed += usize::from(p.decide(std::hint::black_box(r)));
        }
    }
    println!("{allowed} of {iters} allowed");
}
