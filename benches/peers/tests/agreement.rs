//! Agreement before speed: every engine gives the verdict the policy means, for every
//! generated request, at the sizes CI can afford (the benchmark report checks every size
//! it times).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade_peers::casbin_peer::CasbinPeer;
use palisade_peers::cedar_peer::CedarPeer;
use palisade_peers::palisade_peer::PalisadePeer;
use palisade_peers::rego_peer::RegoProgram;
use palisade_peers::scan::HandScan;
use palisade_peers::{Shape, Workload};

/// Every engine on `w` (the HTTP or the L4 workload), and every Palisade form it has: the
/// Istio and Calico forms, and for L4 the Kubernetes form too.
fn check(w: &Workload) {
    let n = w.n;
    let mut forms =
        vec![("palisade", PalisadePeer::new(w).unwrap()), ("palisade-calico", PalisadePeer::new_calico(w).unwrap())];
    if !w.http {
        forms.push(("palisade-k8s", PalisadePeer::new_k8s(w).unwrap()));
    }
    let cedar = CedarPeer::new(w).unwrap();
    let mut rego = RegoProgram::new(w).unwrap().vm().unwrap();
    let scan = HandScan::new(w);
    let casbin = CasbinPeer::new(w).unwrap();
    for shape in Shape::ALL {
        let r = w.request(shape);
        assert_eq!(r.method.is_empty() && r.path.is_empty(), !w.http);
        let mut verdicts: Vec<(&str, bool)> = forms.iter().map(|(name, p)| (*name, p.decide(r))).collect();
        verdicts.extend([
            ("cedar", cedar.decide(r)),
            ("regorus", rego.decide(r)),
            ("scan", scan.decide(r)),
            ("casbin", casbin.decide(r)),
        ]);
        for (engine, allowed) in verdicts {
            assert_eq!(allowed, r.expect_allow, "N = {n}, http {}, {engine} on {:?}: {r:?}", w.http, shape);
        }
    }
}

#[test]
fn engines_agree_on_the_l4_workload() {
    for n in [1, 10, 100] {
        let w = Workload::generate_l4(n);
        check(&w);
        // The Kubernetes form decides by its rule: the last caller is allowed by the last rule.
        let k8s = PalisadePeer::new_k8s(&w).unwrap();
        let d = k8s.engine.decide(&palisade_peers::palisade_peer::request(w.request(Shape::Last)));
        assert_eq!((d.reason, d.rule), (palisade::Reason::Rule, Some(n as i32 - 1)));
    }
}

#[test]
fn engines_agree_at_n_1() {
    check(&Workload::generate(1));
}

#[test]
fn engines_agree_at_n_10() {
    check(&Workload::generate(10));
}

#[test]
fn engines_agree_at_n_100() {
    check(&Workload::generate(100));
}

#[test]
fn the_workload_probes_what_it_says() {
    let w = Workload::generate(100);
    // First and last are allowed by different rules; fall-through presents the first
    // rule's caller with a path outside every prefix; blocked comes from a blocked range.
    let (first, last) = (w.request(Shape::First), w.request(Shape::Last));
    assert_ne!(first.principal, last.principal);
    assert!(first.path.starts_with(&w.rules[0].prefix));
    assert!(last.path.starts_with(&w.rules[99].prefix));
    assert!(w.rules.iter().all(|r| !w.request(Shape::FallThrough).path.starts_with(&r.prefix)));
    assert!(w.blocked.iter().any(|b| b.contains(&w.request(Shape::Blocked).src_ip)));
    assert!(w.rules.iter().all(|r| !w.blocked.iter().any(|b| b.contains(&r.client_ip))));
}

#[test]
fn every_engine_denies_a_stolen_or_wrong_request() {
    // Engines differ on what they can see: only Palisade binds the principal to its pod.
    let w = Workload::generate(10);
    let palisade = PalisadePeer::new(&w).unwrap();
    let palisade_calico = PalisadePeer::new_calico(&w).unwrap();
    let cedar = CedarPeer::new(&w).unwrap();
    let mut rego = RegoProgram::new(&w).unwrap().vm().unwrap();
    let scan = HandScan::new(&w);
    let casbin = CasbinPeer::new(&w).unwrap();
    // The first rule's certificate presented from the last rule's pod.
    let mut stolen = w.request(Shape::First).clone();
    stolen.src_ip = w.rules[9].client_ip;
    assert!(!palisade.decide(&stolen), "Palisade binds identity to IP");
    assert!(!palisade_calico.decide(&stolen), "Palisade's Calico form binds identity to IP too");
    assert!(
        cedar.decide(&stolen) && rego.decide(&stolen) && scan.decide(&stolen) && casbin.decide(&stolen),
        "the peers see only the principal"
    );
    // Wrong method: everyone denies.
    let mut wrong = w.request(Shape::First).clone();
    wrong.method = "PATCH".into();
    for (engine, allowed) in [
        ("palisade", palisade.decide(&wrong)),
        ("palisade-calico", palisade_calico.decide(&wrong)),
        ("cedar", cedar.decide(&wrong)),
        ("regorus", rego.decide(&wrong)),
        ("scan", scan.decide(&wrong)),
        ("casbin", casbin.decide(&wrong)),
    ] {
        assert!(!allowed, "{engine} allowed a method no rule names");
    }
}
