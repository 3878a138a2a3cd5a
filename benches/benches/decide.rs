//! `decide` on small, medium and large synthetic clusters; `load` (parse + compile) and
//! compile alone on small and medium. `PALISADE_BENCH_SIZES=small,medium` limits the sizes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use palisade::load::{Source, load};
use palisade::{Config, Engine, Snapshot};
use palisade_bench::{Cluster, Size};

fn sizes() -> Vec<Size> {
    let wanted = std::env::var("PALISADE_BENCH_SIZES").unwrap_or_else(|_| "small,medium,medium_mixed,large".into());
    [Size::SMALL, Size::MEDIUM, Size::MEDIUM_MIXED, Size::LARGE]
        .into_iter()
        .filter(|s| wanted.split(',').any(|w| w == s.name))
        .collect()
}

fn decide(c: &mut Criterion) {
    for size in sizes() {
        let cluster = Cluster::generate(&size);
        let cfg = Config { max_bundle_bytes: 256 << 20, ..Config::default() };
        let engine = Engine::new(cfg);
        engine.load_str(&cluster.yaml).unwrap();
        let r = &cluster.requests;
        let mut g = c.benchmark_group(format!("decide/{}", size.name));
        for (name, req) in [
            ("l4_allow", &r.l4_allow),
            ("l4_deny", &r.l4_deny),
            ("http_allow", &r.http_allow),
            ("http_deny", &r.http_deny),
            ("stolen_identity", &r.stolen),
            ("l4_allow_ingress_only", &r.ingress_only),
        ] {
            let req = req.as_request();
            g.bench_function(name, |b| b.iter(|| engine.decide(black_box(&req))));
        }
        for (name, req) in [("k8s_allow", &r.k8s_allow), ("istio_then_calico_allow", &r.istio_allow)] {
            if let Some(req) = req {
                let req = req.as_request();
                g.bench_function(name, |b| b.iter(|| engine.decide(black_box(&req))));
            }
        }
        g.finish();
    }
}

/// The shop example's requests, the same ones `c-header/bench/bench.c` times through the C ABI.
fn shop(c: &mut Criterion) {
    let engine = Engine::new(Config::default());
    engine.load_paths(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/shop")]).unwrap();
    let l4 = palisade::OwnedRequest::from_json(
        r#"{"source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/shop/sa/frontend"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#,
    )
    .unwrap();
    let http = palisade::OwnedRequest::from_json(
        r#"{"source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/shop/sa/frontend"}, "destination": {"ip": "10.1.0.9", "port": 8080}, "http": {"method": "GET", "path": "/api/cart/42"}}"#,
    )
    .unwrap();
    let snap = engine.snapshot().unwrap();
    let mut g = c.benchmark_group("decide/shop");
    for (name, req) in [("l4_allow", &l4), ("http_allow", &http)] {
        let req = req.as_request();
        g.bench_function(name, |b| b.iter(|| snap.decide(black_box(&req))));
    }
    g.finish();
}

fn load_and_compile(c: &mut Criterion) {
    for size in sizes().into_iter().filter(|s| s.name == "small" || s.name == "medium") {
        let cluster = Cluster::generate(&size);
        let cfg = Config::default();
        let mut g = c.benchmark_group(format!("load/{}", size.name));
        g.sample_size(10);
        g.bench_function("parse_and_compile", |b| {
            b.iter(|| Snapshot::build(&[Source { name: "gen", text: &cluster.yaml }], &cfg, 1).unwrap())
        });
        g.bench_function("parse_only", |b| {
            b.iter(|| load(&[Source { name: "gen", text: &cluster.yaml }], &cfg).unwrap())
        });
        let bundle = load(&[Source { name: "gen", text: &cluster.yaml }], &cfg).unwrap();
        g.bench_function("compile_only", |b| {
            b.iter_batched(|| bundle.clone(), |bundle| Snapshot::from_bundle(bundle, &cfg, 1), BatchSize::LargeInput)
        });
        g.finish();
    }
}

criterion_group!(benches, shop, decide, load_and_compile);
criterion_main!(benches);
