//! Criterion: every engine x N x request shape, on the same generated workload.
//!
//! Headline ids (`palisade` (Istio rule form), `palisade-calico` (Calico rule form),
//! `palisade-k8s` (Kubernetes NetworkPolicy form, L4 groups only), `scan`, `cedar`,
//! `regorus`, `casbin`) include what a caller does per
//! request (Palisade's borrowed request, Cedar's request and context, regorus' input
//! value, casbin's argument tuple); `cedar-eval` and `regorus-eval` time the evaluation alone with the request
//! built beforehand. `cargo run --release -p palisade-peers --bin peers-report` turns the
//! results into BENCHMARKS.md's tables and docs/bench/*.svg.
//!
//! `PEERS_SIZES=10,100` limits the sizes (default: 10, 100, 1,000, 10,000).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use palisade_peers::casbin_peer::CasbinPeer;
use palisade_peers::cedar_peer::CedarPeer;
use palisade_peers::palisade_peer::PalisadePeer;
use palisade_peers::rego_peer::{RegoProgram, input};
use palisade_peers::scan::HandScan;
use palisade_peers::{SIZES, Shape, Workload};

fn sizes() -> Vec<usize> {
    std::env::var("PEERS_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| SIZES.to_vec())
}

fn peers(c: &mut Criterion) {
    for n in sizes() {
        let w = Workload::generate(n);
        let Ok(palisade) = PalisadePeer::new(&w) else { return };
        let Ok(palisade_calico) = PalisadePeer::new_calico(&w) else { return };
        let Ok(cedar) = CedarPeer::new(&w) else { return };
        let Ok(rego_program) = RegoProgram::new(&w) else { return };
        let Ok(mut rego) = rego_program.vm() else { return };
        let scan = HandScan::new(&w);
        let Ok(casbin) = CasbinPeer::new(&w) else { return };
        for shape in Shape::TIMED {
            let r = w.request(shape);
            // Agreement before speed: a cell whose engines disagree is not timed.
            let verdicts = [
                palisade.decide(r),
                palisade_calico.decide(r),
                cedar.decide(r),
                rego.decide(r),
                scan.decide(r),
                casbin.decide(r),
            ];
            if verdicts.iter().any(|&v| v != r.expect_allow) {
                eprintln!("engines disagree at N = {n}, {}: {verdicts:?}; skipping", shape.name());
                continue;
            }
            let mut g = c.benchmark_group(format!("peers_{}", shape.name()));
            let slow = n >= 1_000;
            g.sample_size(if slow { 10 } else { 50 });
            g.warm_up_time(Duration::from_millis(if slow { 300 } else { 500 }));
            g.measurement_time(Duration::from_secs(2));
            g.bench_with_input(BenchmarkId::new("palisade", n), r, |b, r| b.iter(|| palisade.decide(black_box(r))));
            g.bench_with_input(BenchmarkId::new("palisade-calico", n), r, |b, r| {
                b.iter(|| palisade_calico.decide(black_box(r)))
            });
            g.bench_with_input(BenchmarkId::new("scan", n), r, |b, r| b.iter(|| scan.decide(black_box(r))));
            g.bench_with_input(BenchmarkId::new("cedar", n), r, |b, r| b.iter(|| cedar.decide(black_box(r))));
            if let Ok(q) = cedar.request(r) {
                g.bench_function(BenchmarkId::new("cedar-eval", n), |b| b.iter(|| cedar.evaluate(black_box(&q))));
            }
            g.bench_with_input(BenchmarkId::new("regorus", n), r, |b, r| b.iter(|| rego.decide(black_box(r))));
            g.bench_function(BenchmarkId::new("regorus-eval", n), |b| {
                b.iter_batched(|| input(r), |v| rego.evaluate(black_box(v)), BatchSize::SmallInput)
            });
            g.bench_with_input(BenchmarkId::new("casbin", n), r, |b, r| b.iter(|| casbin.decide(black_box(r))));
            g.finish();
        }
        l4(c, n);
    }
}

/// The L4 workload (principal and port, no HTTP): groups `peers_l4_<shape>`, with the
/// Kubernetes NetworkPolicy form beside the Istio and Calico forms.
fn l4(c: &mut Criterion, n: usize) {
    let w = Workload::generate_l4(n);
    let Ok(palisade) = PalisadePeer::new(&w) else { return };
    let Ok(palisade_calico) = PalisadePeer::new_calico(&w) else { return };
    let Ok(palisade_k8s) = PalisadePeer::new_k8s(&w) else { return };
    let Ok(cedar) = CedarPeer::new(&w) else { return };
    let Ok(mut rego) = RegoProgram::new(&w).and_then(|p| p.vm()) else { return };
    let scan = HandScan::new(&w);
    let Ok(casbin) = CasbinPeer::new(&w) else { return };
    for shape in Shape::TIMED {
        let r = w.request(shape);
        let verdicts = [
            palisade.decide(r),
            palisade_calico.decide(r),
            palisade_k8s.decide(r),
            cedar.decide(r),
            rego.decide(r),
            scan.decide(r),
            casbin.decide(r),
        ];
        if verdicts.iter().any(|&v| v != r.expect_allow) {
            eprintln!("engines disagree at N = {n}, L4 {}: {verdicts:?}; skipping", shape.name());
            continue;
        }
        let mut g = c.benchmark_group(format!("peers_l4_{}", shape.name()));
        let slow = n >= 1_000;
        g.sample_size(if slow { 10 } else { 50 });
        g.warm_up_time(Duration::from_millis(if slow { 300 } else { 500 }));
        g.measurement_time(Duration::from_secs(2));
        for (id, p) in [("palisade", &palisade), ("palisade-calico", &palisade_calico), ("palisade-k8s", &palisade_k8s)]
        {
            g.bench_with_input(BenchmarkId::new(id, n), r, |b, r| b.iter(|| p.decide(black_box(r))));
        }
        g.bench_with_input(BenchmarkId::new("scan", n), r, |b, r| b.iter(|| scan.decide(black_box(r))));
        g.bench_with_input(BenchmarkId::new("cedar", n), r, |b, r| b.iter(|| cedar.decide(black_box(r))));
        g.bench_with_input(BenchmarkId::new("regorus", n), r, |b, r| b.iter(|| rego.decide(black_box(r))));
        g.bench_with_input(BenchmarkId::new("casbin", n), r, |b, r| b.iter(|| casbin.decide(black_box(r))));
        g.finish();
    }
}

criterion_group!(benches, peers);
criterion_main!(benches);
