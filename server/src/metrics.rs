//! Prometheus text exposition (`/metrics`) through `prometheus-client`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels3 = [(&'static str, &'static str); 3];
type Labels1 = [(&'static str, &'static str); 1];

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    checks: Family<Labels3, Counter>,
    latency: Histogram,
    generation: Gauge<i64, std::sync::atomic::AtomicI64>,
    loaded: Gauge<i64, std::sync::atomic::AtomicI64>,
    reloads: Family<Labels1, Counter>,
    errors: Counter<u64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("palisade");
        let checks = Family::<Labels3, Counter>::default();
        registry.register(
            "checks",
            "Checks answered, by check kind (http, network), action and reason",
            checks.clone(),
        );
        // 2 µs to about 65 ms.
        let latency = Histogram::new(exponential_buckets(2e-6, 2.0, 16));
        registry.register(
            "check_duration_seconds",
            "Time inside the Check handler: translation, decision, response",
            latency.clone(),
        );
        let generation = Gauge::default();
        registry.register("snapshot_generation", "Generation of the snapshot in force (0: none)", generation.clone());
        let loaded = Gauge::default();
        registry.register(
            "snapshot_loaded",
            "1 once a snapshot is in force (checks before it are denied)",
            loaded.clone(),
        );
        let reloads = Family::<Labels1, Counter>::default();
        registry.register("bundle_loads", "Bundle loads, by result (ok, error)", reloads.clone());
        let errors = Counter::default();
        registry.register(
            "untranslatable_checks",
            "Checks that could not be translated (answered deny, invalid_request)",
            errors.clone(),
        );
        Metrics { registry, checks, latency, generation, loaded, reloads, errors }
    }

    /// Counts one answered check.
    pub fn check(&self, kind: &'static str, action: &'static str, reason: &'static str, took: Duration) {
        self.checks.get_or_create(&[("kind", kind), ("action", action), ("reason", reason)]).inc();
        self.latency.observe(took.as_secs_f64());
    }

    /// Counts a check that could not be translated.
    pub fn untranslatable(&self) {
        self.errors.inc();
    }

    /// Records a bundle load.
    pub fn load(&self, result: Result<u64, ()>) {
        match result {
            Ok(generation) => {
                self.reloads.get_or_create(&[("result", "ok")]).inc();
                self.generation.set(i64::try_from(generation).unwrap_or(i64::MAX));
                self.loaded.set(1);
            }
            Err(()) => {
                self.reloads.get_or_create(&[("result", "error")]).inc();
            }
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
