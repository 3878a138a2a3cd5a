//! `Engine::decide` makes no heap allocation, on every kind of request: HTTP (plain and
//! normalised paths), both sides, Log and Pass rules, staged policies, network sets, named
//! ports, identity denials and invalid requests. Measured with a counting global allocator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade::{Config, Engine, OwnedRequest, Reason};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, allocations};

#[global_allocator]
static ALLOC: Counting = Counting;

const EXTRA: &str = r#"
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: audit}
spec: {order: 50, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: log-everything}
spec:
  tier: audit
  selector: all()
  types: [Ingress, Egress]
  ingress: [{action: Log, protocol: TCP, source: {notPorts: ['1:1023']}}, {action: Log, protocol: ICMP, icmp: {type: 8, code: 0}}]
  egress: [{action: Log, destination: {nets: [10.0.0.0/8], notNets: [10.9.0.0/16]}}]
"#;

#[test]
fn decide_never_allocates() {
    let engine = Engine::new(Config::default());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
    let mut files = palisade::load::read_paths(&[root], palisade::Config::default().max_bundle_bytes).unwrap();
    files.push(("extra.yaml".into(), EXTRA.into()));
    let sources: Vec<_> = files.iter().map(|(n, t)| palisade::load::Source { name: n, text: t }).collect();
    engine.load(&sources).unwrap();

    let lines = [
        // HTTP, both sides, allowed by a rule, Pass in the platform tier, Log in audit.
        r#"{"source": {"ip": "10.1.0.5", "port": 40000, "principal": "spiffe://cluster.local/ns/shop/sa/frontend"}, "destination": {"ip": "10.1.0.9", "port": 8080}, "http": {"method": "GET", "path": "/api/cart/42"}}"#,
        // A path that needs normalising (decoded on the stack).
        r#"{"source": {"ip": "10.1.0.9", "principal": "spiffe://cluster.local/ns/shop/sa/cart"}, "destination": {"ip": "10.2.0.7", "port": 8443}, "http": {"method": "POST", "path": "/v1/refunds/./a/..//b%41c;x=1?q=2", "headers": {"x-a": "b"}}}"#,
        // Staged policy relevant, l7_pending.
        r#"{"source": {"ip": "10.1.0.9", "principal": "spiffe://cluster.local/ns/shop/sa/cart"}, "destination": {"ip": "10.2.0.7", "port": 8443}}"#,
        // End of tier deny.
        r#"{"source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.2.0.7", "port": 8443}}"#,
        // Network set (Log then Deny).
        r#"{"source": {"ip": "203.0.113.9"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#,
        // Named port, monitoring namespace selector.
        r#"{"source": {"ip": "10.3.0.4"}, "destination": {"ip": "10.2.0.7", "port": 9090}}"#,
        // Egress deny (quarantine).
        r#"{"source": {"ip": "10.1.0.66"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#,
        // UDP DNS, egress allow.
        r#"{"protocol": "UDP", "source": {"ip": "10.1.0.5", "port": 5353}, "destination": {"ip": "10.96.0.10", "port": 53}}"#,
        // ICMP.
        r#"{"protocol": "ICMP", "source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.1.0.9"}, "icmp": {"type": 8, "code": 0}}"#,
        // Identity denials: stolen certificate, in-cluster identity from outside, destination.
        r#"{"source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/payments/sa/payments"}, "destination": {"ip": "10.2.0.7", "port": 8443}}"#,
        r#"{"source": {"ip": "192.0.2.1", "principal": "spiffe://cluster.local/ns/shop/sa/cart"}, "destination": {"ip": "10.2.0.7", "port": 8443}}"#,
        r#"{"source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.2.0.7", "port": 8443, "principal": "spiffe://cluster.local/ns/shop/sa/cart"}}"#,
        // External identity, unknown IPs on both ends.
        r#"{"source": {"ip": "192.0.2.1", "principal": "spiffe://partner.example/ns/x/sa/y"}, "destination": {"ip": "192.0.2.2", "port": 80}}"#,
        // Invalid requests: bad path, bad principal.
        r#"{"source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.1.0.9", "port": 8080}, "http": {"method": "GET", "path": "/a/%252e%252e/b"}}"#,
        r#"{"source": {"ip": "10.1.0.5", "principal": "spiffe://Bad/ns"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#,
        // ... an encoded separator, an Istio-form principal, mixed families.
        r#"{"source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.1.0.9", "port": 8080}, "http": {"method": "GET", "path": "/admin%2F..%2Fapi"}}"#,
        r#"{"source": {"ip": "10.1.0.5", "principal": "cluster.local/ns/shop/sa/frontend"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#,
        r#"{"source": {"ip": "10.1.0.5"}, "destination": {"ip": "fd00::2", "port": 80}}"#,
        // IPv6 and direction variants.
        r#"{"direction": "ingress", "source": {"ip": "fd00::1"}, "destination": {"ip": "fd00::2", "port": 80}}"#,
        r#"{"direction": "egress", "source": {"ip": "10.1.0.5"}, "destination": {"ip": "10.1.0.9", "port": 8080}}"#,
    ];
    let requests: Vec<OwnedRequest> = lines.iter().map(|l| OwnedRequest::from_json(l).unwrap()).collect();
    let borrowed: Vec<_> = requests.iter().map(|r| r.as_request()).collect();

    // Warm up: arc-swap registers this thread on its first load.
    let mut reasons = Vec::new();
    for r in &borrowed {
        reasons.push(engine.decide(r).reason);
    }
    for needed in [Reason::Rule, Reason::EndOfTier, Reason::NoPolicy, Reason::IdentityMismatch, Reason::InvalidRequest]
    {
        assert!(reasons.contains(&needed), "the request set must reach {needed:?}: {reasons:?}");
    }
    let mut sink = 0u64;
    let n = allocations(|| {
        for _ in 0..100 {
            for r in &borrowed {
                let d = engine.decide(r);
                sink = sink.wrapping_add(d.generation + d.l7_pending as u64 + d.staged.is_some() as u64);
            }
        }
    });
    assert_eq!(n, 0, "decide allocated {n} times");
    assert!(sink > 0);
    // The counter itself works: explain does allocate.
    assert!(allocations(|| drop(engine.explain(&borrowed[0]))) > 0);
}
