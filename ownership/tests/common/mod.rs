#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use palisade_ownership::rbac::{Rbac, User};

pub fn teams() -> Rbac {
    Rbac::from_paths(&[concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rbac")]).unwrap()
}

pub fn user(name: &str, groups: &[&str]) -> User {
    User::new(name, groups.iter().copied())
}

/// The base bundle: tiers security, platform, app; one policy in each, plus default-tier
/// and Kubernetes policies in payments.
pub const BASE: &str = r#"
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: platform}
spec: {order: 200, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: app}
spec: {order: 300, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: block-threats}
spec:
  tier: security
  order: 10
  selector: all()
  types: [Ingress]
  ingress: [{action: Deny, source: {nets: [203.0.113.0/24]}}, {action: Pass}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: allow-dns}
spec:
  tier: platform
  order: 10
  selector: all()
  types: [Egress]
  egress: [{action: Allow, protocol: UDP, destination: {ports: [53]}}, {action: Pass}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web-ingress, namespace: shop}
spec:
  tier: app
  selector: app == 'web'
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [80]}}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: cart-ingress, namespace: shop}
spec:
  tier: app
  selector: app == 'cart'
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [8080]}}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: pay-api, namespace: payments}
spec:
  selector: app == 'pay'
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [8443]}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: pay-default-deny, namespace: payments}
spec: {podSelector: {}, policyTypes: [Ingress]}
"#;

/// `BASE` with `from` replaced by `to` (panics when `from` is absent, so a test cannot
/// silently review an unchanged bundle).
pub fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

pub fn bundle(text: &str) -> palisade::model::Bundle {
    palisade::load::load(&[palisade::load::Source { name: "<test>", text }], &palisade::Config::default()).unwrap()
}
