//! The generated clusters load, and their requests decide as the benchmarks assume.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade::{Action, Config, Engine, Reason};
use palisade_bench::{Cluster, Size};

fn check(size: &Size) {
    let c = Cluster::generate(size);
    let e = Engine::new(Config::default());
    e.load_str(&c.yaml).unwrap();
    let snap = e.snapshot().unwrap();
    assert_eq!(snap.bundle().endpoints.len(), size.pods);
    assert!(c.policies >= size.policies * 9 / 10, "{} policies", c.policies);
    let r = &c.requests;
    let d = |req: &palisade::OwnedRequest| {
        let a = snap.decide(&req.as_request());
        assert_eq!(a, snap.decide_reference(&req.as_request()));
        a
    };
    assert_eq!((d(&r.l4_allow).action, d(&r.l4_allow).reason), (Action::Allow, Reason::Rule));
    assert_eq!(d(&r.l4_deny).action, Action::Deny);
    assert_eq!((d(&r.http_allow).action, d(&r.http_allow).l7_pending), (Action::Allow, false));
    assert_eq!(d(&r.http_deny).action, Action::Deny);
    assert_eq!(d(&r.stolen).reason, Reason::IdentityMismatch);
    assert_eq!(d(&r.ingress_only).action, Action::Allow);
    if size.mixed {
        let k = r.k8s_allow.as_ref().unwrap();
        let i = r.istio_allow.as_ref().unwrap();
        let (dk, di) = (d(k), d(i));
        assert_eq!(dk.action, Action::Allow);
        assert_eq!(di.action, Action::Allow);
        let kind = |dec: &palisade::Decision| snap.bundle().policy(dec.policy.unwrap()).unwrap().kind;
        assert_eq!(kind(&dk), palisade::model::PolicyKind::KubernetesNetworkPolicy);
        let (_, trace) = snap.decide_traced(&i.as_request());
        let ingress = trace.ingress.unwrap();
        assert!(ingress.iter().any(|h| matches!(h.source, palisade::trace::HitSource::Policy { policy, .. }
            if snap.bundle().policy(policy).unwrap().kind == palisade::model::PolicyKind::AuthorizationPolicy)));
    }
}

#[test]
fn small_cluster_decides_as_assumed() {
    check(&Size::SMALL);
}

#[test]
fn medium_cluster_decides_as_assumed() {
    check(&Size::MEDIUM);
}

#[test]
fn mixed_cluster_decides_as_assumed() {
    check(&Size::MEDIUM_MIXED);
}
