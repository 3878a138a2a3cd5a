//! Fail-closed proofs: every error path of `decide` is a deny with a reason, and no
//! configuration of an empty or failed engine allows anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use palisade::{Action, Address, Config, Direction, Engine, Reason, Request};

fn configs() -> Vec<Config> {
    let mut out = Vec::new();
    for no_policy in [Action::Allow, Action::Deny] {
        for require in [false, true] {
            out.push(Config { no_policy_action: no_policy, require_peer_identity: require, ..Config::default() });
        }
    }
    out
}

fn req<'a>(src: &str, dst: &str, port: Option<u16>) -> Request<'a> {
    let s: IpAddr = src.parse().unwrap();
    let d: IpAddr = dst.parse().unwrap();
    Request::tcp(Address::new(s), Address { port, ..Address::new(d) })
}

#[test]
fn an_engine_with_nothing_loaded_denies_everything() {
    for cfg in configs() {
        let e = Engine::new(cfg);
        for r in [req("10.0.0.1", "10.0.0.2", Some(80)), req("::1", "::2", None)] {
            let d = e.decide(&r);
            assert_eq!((d.action, d.reason, d.generation), (Action::Deny, Reason::NoBundle, 0));
        }
        // A failed first load leaves nothing loaded: still no_bundle.
        assert!(
            e.load_str("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicies\nmetadata: {name: x}\n").is_err()
        );
        assert!(e.load_str("").is_err());
        assert_eq!(e.decide(&req("10.0.0.1", "10.0.0.2", Some(80))).reason, Reason::NoBundle);
    }
}

#[test]
fn every_invalid_typed_request_is_denied() {
    let e = Engine::new(Config::default());
    e.load_str("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: all}\nspec: {ingress: [{action: Allow}], egress: [{action: Allow}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: n}\nstatus: {podIP: 10.0.0.1}\n").unwrap();
    let mut cases: Vec<Request<'_>> = Vec::new();
    let mut r = req("10.0.0.1", "10.0.0.2", Some(80));
    r.protocol = 0;
    cases.push(r);
    cases.push(req("10.0.0.1", "10.0.0.2", None)); // TCP without a destination port
    let mut r = req("10.0.0.1", "10.0.0.2", None);
    r.protocol = 17; // UDP without a destination port
    cases.push(r);
    cases.push(req("10.0.0.1", "fd00::2", Some(80))); // families differ
    let mut r = req("10.0.0.1", "10.0.0.2", Some(80));
    r.source.principal = Some("not a spiffe id");
    cases.push(r);
    let mut r = req("10.0.0.1", "10.0.0.2", Some(80));
    r.destination.principal = Some("spiffe://");
    cases.push(r);
    let mut r = req("10.0.0.1", "10.0.0.2", Some(80));
    r.http = Some(palisade::Http { method: "", path: "/", host: None, headers: Default::default() });
    cases.push(r);
    let mut r = req("10.0.0.1", "10.0.0.2", Some(80));
    r.http = Some(palisade::Http { method: "GET", path: "/%", host: None, headers: Default::default() });
    cases.push(r);
    let long = format!("/{}", "a".repeat(palisade::http_path::MAX_PATH_LEN + 1)) + "/%41";
    let mut r = req("10.0.0.1", "10.0.0.2", Some(80));
    r.http = Some(palisade::Http { method: "GET", path: &long, host: None, headers: Default::default() });
    cases.push(r);
    for (i, r) in cases.iter().enumerate() {
        for direction in [Direction::Both, Direction::Ingress, Direction::Egress] {
            let r = Request { direction, ..*r };
            let d = e.decide(&r);
            assert_eq!((d.action, d.reason), (Action::Deny, Reason::InvalidRequest), "case {i}: {r:?}");
            assert!(d.detail.is_some(), "case {i} says why");
            let reference = e.snapshot().unwrap().decide_reference(&r);
            assert_eq!(reference, d, "case {i}");
        }
    }
}

#[test]
fn identity_errors_deny_under_every_configuration() {
    for cfg in configs() {
        let e = Engine::new(cfg);
        e.load_str("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: all}\nspec: {ingress: [{action: Allow}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: n}\nstatus: {podIP: 10.0.0.1}\n").unwrap();
        let mut r = req("10.0.0.1", "10.0.0.2", Some(80));
        r.source.principal = Some("spiffe://cluster.local/ns/other/sa/default");
        assert_eq!(e.decide(&r).reason, Reason::IdentityMismatch);
        let mut r = req("192.0.2.1", "10.0.0.1", Some(80));
        r.source.principal = Some("spiffe://cluster.local/ns/n/sa/default");
        assert_eq!(e.decide(&r).reason, Reason::IdentityMismatch);
    }
}
