//! Kubernetes RBAC semantics: `*`, resourceNames, namespaces, subjects, aggregation.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use palisade_ownership::rbac::{Attributes, Rbac, User, split_service_account};

fn attrs<'a>(verb: &'a str, group: &'a str, resource: &'a str, ns: &'a str, name: &'a str) -> Attributes<'a> {
    Attributes { verb, api_group: group, resource, subresource: "", namespace: ns, name }
}

const ONE: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r}
rules:
- {apiGroups: [projectcalico.org], resources: [tiers], verbs: [get], resourceNames: [app]}
- {apiGroups: ["*"], resources: [networksets], verbs: ["*"]}
- {apiGroups: [""], resources: ["*/status"], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: r}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: u}]
"#;

#[test]
fn resource_names_are_exact_and_a_nameless_request_never_matches_them() {
    let rbac = Rbac::from_yaml(ONE).unwrap();
    let u = User::new("u", Vec::<String>::new());
    assert!(rbac.authorize(&u, &attrs("get", "projectcalico.org", "tiers", "", "app")).allowed);
    assert!(!rbac.authorize(&u, &attrs("get", "projectcalico.org", "tiers", "", "apps")).allowed);
    assert!(
        !rbac.authorize(&u, &attrs("get", "projectcalico.org", "tiers", "", "")).allowed,
        "list/create carry no name"
    );
    assert!(!rbac.authorize(&u, &attrs("list", "projectcalico.org", "tiers", "", "app")).allowed, "verb must match");
    // No glob in resourceNames: `app.*` is a literal name.
    let lit = ONE.replace("resourceNames: [app]", "resourceNames: [app.*]");
    let rbac = Rbac::from_yaml(&lit).unwrap();
    assert!(rbac.authorize(&u, &attrs("get", "projectcalico.org", "tiers", "", "app.*")).allowed);
    assert!(!rbac.authorize(&u, &attrs("get", "projectcalico.org", "tiers", "", "app.web")).allowed);
}

#[test]
fn star_matches_verbs_and_groups_and_star_slash_matches_subresources_only() {
    let rbac = Rbac::from_yaml(ONE).unwrap();
    let u = User::new("u", Vec::<String>::new());
    assert!(rbac.authorize(&u, &attrs("deletecollection", "anything.io", "networksets", "ns", "")).allowed);
    assert!(!rbac.authorize(&u, &attrs("get", "anything.io", "networksetz", "ns", "")).allowed);
    let mut status = attrs("get", "", "pods", "ns", "p");
    status.subresource = "status";
    assert!(rbac.authorize(&u, &status).allowed);
    assert!(!rbac.authorize(&u, &attrs("get", "", "pods", "ns", "p")).allowed, "*/status is not pods");
    status.subresource = "log";
    assert!(!rbac.authorize(&u, &status).allowed);
    // Groups are exact: "" is the core group only.
    let other = User::new("v", Vec::<String>::new());
    assert!(!rbac.authorize(&other, &attrs("get", "projectcalico.org", "tiers", "", "app")).allowed);
}

#[test]
fn a_role_binding_to_a_cluster_role_acts_in_its_namespace_only() {
    let rbac = common::teams();
    let carol = common::user("carol", &[]);
    let here = attrs("create", "projectcalico.org", "tier.networkpolicies", "payments", "default.*");
    let d = rbac.authorize(&carol, &here);
    assert!(d.allowed);
    assert_eq!(
        d.reason,
        "RBAC: allowed by RoleBinding \"carol-edits-payments/payments\" of ClusterRole \"default-tier-editor\" to User \"carol\""
    );
    assert!(
        !rbac
            .authorize(&carol, &attrs("create", "projectcalico.org", "tier.networkpolicies", "shop", "default.*"))
            .allowed
    );
    // Cluster scope is not "every namespace".
    assert!(
        !rbac.authorize(&carol, &attrs("create", "projectcalico.org", "tier.networkpolicies", "", "default.*")).allowed
    );
}

#[test]
fn aggregation_replaces_the_manifest_rules_with_the_selected_roles_rules() {
    let rbac = common::teams();
    let admin = rbac.cluster_roles.iter().find(|r| r.name == "platform-admin").unwrap();
    assert_eq!(admin.rules.len(), 3, "{:?}", admin.rules);
    assert!(admin.rules.iter().all(|r| r.api_groups == ["projectcalico.org"]), "the `*` rule was replaced");
    let p = common::user("pat", &["platform-team"]);
    assert!(rbac.authorize(&p, &attrs("get", "projectcalico.org", "tiers", "", "platform")).allowed);
    assert!(!rbac.authorize(&p, &attrs("get", "projectcalico.org", "tiers", "", "security")).allowed);
    assert!(!rbac.authorize(&p, &attrs("get", "", "secrets", "kube-system", "x")).allowed);
}

#[test]
fn aggregation_reaches_a_fixpoint_and_skips_itself() {
    let text = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: top}
aggregationRule: {clusterRoleSelectors: [{matchLabels: {agg: top}}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: middle, labels: {agg: top}}
aggregationRule: {clusterRoleSelectors: [{matchExpressions: [{key: agg, operator: In, values: [middle]}]}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: leaf, labels: {agg: middle}}
rules: [{apiGroups: [projectcalico.org], resources: [tiers], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: selfish, labels: {agg: self}}
aggregationRule: {clusterRoleSelectors: [{matchLabels: {agg: self}}]}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
"#;
    let rbac = Rbac::from_yaml(text).unwrap();
    let rules = |n: &str| rbac.cluster_roles.iter().find(|r| r.name == n).unwrap().rules.clone();
    assert_eq!(rules("top"), rules("leaf"));
    assert_eq!(rules("middle"), rules("leaf"));
    assert!(rules("selfish").is_empty(), "a role never aggregates itself");
}

#[test]
fn service_accounts_their_implicit_groups_and_namespace_defaulting() {
    let sa = User::service_account("ci", "deployer");
    assert_eq!(sa.name, "system:serviceaccount:ci:deployer");
    assert_eq!(sa.groups, ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]);
    assert_eq!(split_service_account("system:serviceaccount:ci:deployer"), Some(("ci", "deployer")));
    assert_eq!(split_service_account("system:serviceaccount:ci:a:b"), None);
    let anon = User::new("system:anonymous", Vec::<String>::new());
    assert_eq!(anon.groups, ["system:unauthenticated"]);

    let text = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: np-editor, namespace: ci}
rules: [{apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: local-sa, namespace: ci}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: np-editor}
subjects: [{kind: ServiceAccount, name: deployer}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: all-sas-of-ops, namespace: ci}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: np-editor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:serviceaccounts:ops"}]
"#;
    let rbac = Rbac::from_yaml(text).unwrap();
    let create = attrs("create", "networking.k8s.io", "networkpolicies", "ci", "");
    let d = rbac.authorize(&sa, &create);
    assert!(d.allowed);
    assert_eq!(
        d.reason,
        "RBAC: allowed by RoleBinding \"local-sa/ci\" of Role \"np-editor\" to ServiceAccount \"deployer/ci\""
    );
    // Same SA name in another namespace: not the subject (its namespace defaulted to ci).
    assert!(!rbac.authorize(&User::service_account("prod", "deployer"), &create).allowed);
    // Through the implicit namespace group.
    assert!(rbac.authorize(&User::service_account("ops", "bot"), &create).allowed);
    // A user named like a group is not in it.
    assert!(!rbac.authorize(&User::new("system:serviceaccounts:ops", Vec::<String>::new()), &create).allowed);
    // The same Role seen from another namespace does not exist there.
    assert!(!rbac.authorize(&sa, &attrs("create", "networking.k8s.io", "networkpolicies", "prod", "")).allowed);
}

#[test]
fn a_cluster_role_binding_to_a_service_account_in_the_team_fixture() {
    let rbac = common::teams();
    let sa = User::service_account("ci", "deployer");
    let d = rbac.authorize(&sa, &attrs("get", "projectcalico.org", "tiers", "", "app"));
    assert!(d.allowed);
    assert!(d.reason.ends_with("to ServiceAccount \"deployer/ci\""), "{}", d.reason);
}

#[test]
fn invalid_rbac_is_refused_and_dangling_references_are_reported() {
    let bad = [
        (
            "kind: ClusterRoleBinding\nmetadata: {name: x}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\n",
            "roleRef.kind",
        ),
        ("kind: ClusterRole\nmetadata: {name: x}\nrules: [{apiGroups: [\"\"], resources: [pods]}]\n", "verbs"),
        ("kind: ClusterRole\nmetadata: {name: x}\nrules: [{resources: [pods], verbs: [get]}]\n", "api group"),
        (
            "kind: ClusterRoleBinding\nmetadata: {name: x}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: r}\nsubjects: [{kind: ServiceAccount, name: d}]\n",
            "namespace",
        ),
        (
            "kind: RoleBinding\nmetadata: {name: x}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\nsubjects: [{kind: User, name: d}]\n",
            "apiGroup",
        ),
        (
            "kind: ClusterRole\nmetadata: {name: x}\naggregationRule: {clusterRoleSelectors: [{matchExpressions: [{key: a, operator: In}]}]}\n",
            "needs values",
        ),
    ];
    for (body, needle) in bad {
        let text = format!("apiVersion: rbac.authorization.k8s.io/v1\n{body}");
        let e = Rbac::from_yaml(&text).unwrap_err();
        assert!(e.to_string().contains(needle), "{needle:?} not in {e}");
    }
    let e = Rbac::from_yaml("apiVersion: rbac.authorization.k8s.io/v1beta1\nkind: Role\nmetadata: {name: x}\n")
        .unwrap_err();
    assert!(e.to_string().contains("only rbac.authorization.k8s.io/v1"), "{e}");

    let dangling = Rbac::from_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: x}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gone}\n\
         subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: u}]\n",
    )
    .unwrap();
    assert_eq!(dangling.dangling_references(), ["ClusterRoleBinding x -> ClusterRole gone"]);
    let d = dangling.authorize(&User::new("u", Vec::<String>::new()), &attrs("get", "", "pods", "", ""));
    assert!(!d.allowed);
    assert_eq!(d.reason, "RBAC: clusterrole.rbac.authorization.k8s.io \"gone\" not found");
}

#[test]
fn lists_and_other_kinds() {
    let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: r}
  rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
- apiVersion: v1
  kind: Pod
  metadata: {name: p}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBindingList
items:
- metadata: {name: b}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: r}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: g}]
"#;
    let rbac = Rbac::from_yaml(text).unwrap();
    assert_eq!((rbac.cluster_roles.len(), rbac.bindings.len(), rbac.skipped), (1, 1, 1));
    assert!(rbac.authorize(&User::new("x", ["g"]), &attrs("get", "", "pods", "any", "p")).allowed);
    assert!(common::teams().skipped >= 1, "the fixture's ConfigMap is skipped");
}
