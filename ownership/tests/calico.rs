//! Calico's tier check, on the documented RBAC examples (own values), with upstream's
//! exact denials.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use palisade_ownership::calico::{Kind, Operation, authorize};

fn op<'a>(verb: &'a str, kind: Kind, ns: Option<&'a str>, name: &'a str, tiers: &[&'a str]) -> Operation<'a> {
    Operation { verb, kind, namespace: ns, name, tiers: tiers.to_vec() }
}

#[test]
fn a_team_in_its_own_tier_and_outside_it() {
    let rbac = common::teams();
    let alice = common::user("alice", &["team-app"]);
    for verb in ["create", "update", "patch", "delete", "get", "list"] {
        let o = authorize(&rbac, &alice, &op(verb, Kind::NetworkPolicy, Some("shop"), "web", &["app"]));
        assert!(o.allowed, "{verb}: {:?}", o.steps);
        let o = authorize(&rbac, &alice, &op(verb, Kind::GlobalNetworkPolicy, None, "web", &["app"]));
        assert!(o.allowed, "{verb} gnp: {:?}", o.steps);
    }
    let o = authorize(&rbac, &alice, &op("update", Kind::NetworkPolicy, Some("shop"), "web", &["security"]));
    assert_eq!(
        o.denial(),
        Some(
            "networkpolicies.projectcalico.org \"web\" is forbidden: User \"alice\" cannot update \
             networkpolicies.projectcalico.org in tier \"security\" and namespace \"shop\" (user cannot get tier)"
        )
    );
    let o = authorize(&rbac, &alice, &op("delete", Kind::GlobalNetworkPolicy, None, "block-threats", &["security"]));
    assert_eq!(
        o.denial(),
        Some(
            "globalnetworkpolicies.projectcalico.org \"block-threats\" is forbidden: User \"alice\" cannot delete \
             globalnetworkpolicies.projectcalico.org in tier \"security\" (user cannot get tier)"
        )
    );
    // Staged kinds have their own pseudo-resource: app-tier-editor does not grant it.
    let o = authorize(&rbac, &alice, &op("create", Kind::StagedNetworkPolicy, Some("shop"), "try", &["app"]));
    assert_eq!(
        o.denial(),
        Some(
            "stagednetworkpolicies.projectcalico.org \"try\" is forbidden: User \"alice\" cannot create \
             stagednetworkpolicies.projectcalico.org in tier \"app\" and namespace \"shop\""
        ),
        "the tier get is allowed, so no suffix"
    );
}

#[test]
fn read_only_tier() {
    let rbac = common::teams();
    let auditor = common::user("auditor", &[]);
    for verb in ["get", "list", "watch"] {
        assert!(authorize(&rbac, &auditor, &op(verb, Kind::NetworkPolicy, Some("shop"), "x", &["security"])).allowed);
    }
    let o = authorize(&rbac, &auditor, &op("create", Kind::NetworkPolicy, Some("shop"), "x", &["security"]));
    assert_eq!(
        o.denial(),
        Some(
            "networkpolicies.projectcalico.org \"x\" is forbidden: User \"auditor\" cannot create \
             networkpolicies.projectcalico.org in tier \"security\" and namespace \"shop\""
        )
    );
    assert!(!authorize(&rbac, &auditor, &op("get", Kind::NetworkPolicy, Some("shop"), "x", &["app"])).allowed);
}

#[test]
fn a_named_policy_is_not_the_tier_wildcard_and_create_carries_no_name() {
    let rbac = common::teams();
    let dave = common::user("dave", &[]);
    assert!(authorize(&rbac, &dave, &op("update", Kind::NetworkPolicy, Some("shop"), "web-ingress", &["app"])).allowed);
    assert!(authorize(&rbac, &dave, &op("delete", Kind::NetworkPolicy, Some("shop"), "web-ingress", &["app"])).allowed);
    let other = authorize(&rbac, &dave, &op("update", Kind::NetworkPolicy, Some("shop"), "cart-ingress", &["app"]));
    assert!(!other.allowed);
    // Creating the very policy the rule names is refused: a create request has no name.
    let create = authorize(&rbac, &dave, &op("create", Kind::NetworkPolicy, Some("shop"), "web-ingress", &["app"]));
    assert_eq!(
        create.denial(),
        Some(
            "networkpolicies.projectcalico.org \"web-ingress\" is forbidden: User \"dave\" cannot create \
             networkpolicies.projectcalico.org in tier \"app\" and namespace \"shop\""
        )
    );
    // And the wildcard is a literal name too: alice's `app.*` does not grant tier `app2`.
    let alice = common::user("alice", &["team-app"]);
    assert!(!authorize(&rbac, &alice, &op("create", Kind::NetworkPolicy, Some("shop"), "w", &["app2"])).allowed);
}

#[test]
fn a_cluster_role_bound_by_a_role_binding() {
    let rbac = common::teams();
    let carol = common::user("carol", &[]);
    assert!(authorize(&rbac, &carol, &op("create", Kind::NetworkPolicy, Some("payments"), "p", &[])).allowed);
    let o = authorize(&rbac, &carol, &op("create", Kind::NetworkPolicy, Some("shop"), "p", &["default"]));
    assert_eq!(
        o.denial(),
        Some(
            "networkpolicies.projectcalico.org \"p\" is forbidden: User \"carol\" cannot create \
             networkpolicies.projectcalico.org in tier \"default\" and namespace \"shop\""
        )
    );
    // A GlobalNetworkPolicy is cluster-scoped: the RoleBinding never applies.
    assert!(!authorize(&rbac, &carol, &op("create", Kind::GlobalNetworkPolicy, None, "g", &["default"])).allowed);
    // Kubernetes policies: plain RBAC, no tier check.
    let k =
        authorize(&rbac, &carol, &op("create", Kind::KubernetesNetworkPolicy, Some("payments"), "k", &["security"]));
    assert!(k.allowed);
    assert_eq!(k.steps.len(), 1);
    let k = authorize(&rbac, &carol, &op("delete", Kind::KubernetesNetworkPolicy, Some("shop"), "k", &[]));
    assert_eq!(
        k.denial(),
        Some(
            "networkpolicies.networking.k8s.io \"k\" is forbidden: User \"carol\" cannot delete resource \
             \"networkpolicies\" in API group \"networking.k8s.io\" in the namespace \"shop\""
        )
    );
}

#[test]
fn aggregated_roles_and_service_accounts() {
    let rbac = common::teams();
    let pat = common::user("pat", &["platform-team"]);
    assert!(authorize(&rbac, &pat, &op("create", Kind::GlobalNetworkPolicy, None, "x", &["platform"])).allowed);
    assert!(authorize(&rbac, &pat, &op("create", Kind::GlobalNetworkSet, None, "x", &[])).allowed);
    assert!(!authorize(&rbac, &pat, &op("create", Kind::GlobalNetworkPolicy, None, "x", &["security"])).allowed);
    let sa = palisade_ownership::User::service_account("ci", "deployer");
    assert!(authorize(&rbac, &sa, &op("patch", Kind::NetworkPolicy, Some("shop"), "web", &["app"])).allowed);
    let o = authorize(&rbac, &sa, &op("patch", Kind::NetworkPolicy, Some("shop"), "web", &["platform"]));
    assert_eq!(
        o.denial(),
        Some(
            "networkpolicies.projectcalico.org \"web\" is forbidden: User \"system:serviceaccount:ci:deployer\" \
             cannot patch networkpolicies.projectcalico.org in tier \"platform\" and namespace \"shop\" (user cannot get tier)"
        )
    );
}

#[test]
fn the_generic_check_comes_first_and_has_kubernetes_wording() {
    // Tier rights without the plain resource: the API server refuses before Calico's check.
    let rbac = palisade_ownership::Rbac::from_yaml(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: tier-only}
rules:
- {apiGroups: [projectcalico.org], resources: [tiers], verbs: [get]}
- {apiGroups: [projectcalico.org], resources: [tier.globalnetworkpolicies], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tier-only}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: eve}]
"#,
    )
    .unwrap();
    let eve = common::user("eve", &[]);
    let o = authorize(&rbac, &eve, &op("create", Kind::GlobalNetworkPolicy, None, "g", &["app"]));
    assert_eq!(
        o.denial(),
        Some(
            "globalnetworkpolicies.projectcalico.org is forbidden: User \"eve\" cannot create resource \
             \"globalnetworkpolicies\" in API group \"projectcalico.org\" at the cluster scope"
        ),
        "create carries no name, so the Forbidden names none"
    );
    assert!(o.steps[1].allowed, "the tier step itself passes (no resourceNames)");
}

#[test]
fn kinds_parse_as_kubectl_and_palisade_name_them() {
    assert_eq!(Kind::parse("networkpolicies"), Some(Kind::KubernetesNetworkPolicy));
    assert_eq!(Kind::parse("networkpolicies.projectcalico.org"), Some(Kind::NetworkPolicy));
    assert_eq!(Kind::parse("networkpolicies.p"), Some(Kind::NetworkPolicy));
    assert_eq!(Kind::parse("gnp"), Some(Kind::GlobalNetworkPolicy));
    assert_eq!(Kind::parse("GlobalNetworkPolicy"), Some(Kind::GlobalNetworkPolicy));
    assert_eq!(Kind::parse("authorizationpolicies"), Some(Kind::AuthorizationPolicy));
    assert_eq!(Kind::parse("tiers"), Some(Kind::Tier));
    assert_eq!(Kind::parse("pods"), None);
}
