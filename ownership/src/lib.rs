//! # Tier ownership: who may change which tier
//!
//! A team may change its own tier and nothing above it. Calico enforces this in its API
//! server; this crate answers the same question where the API server is not asked: in a
//! pipeline that reviews a pull request (a GitOps bot with wide rights applies what it
//! contains), and in a process that accepts policy from several teams.
//!
//! * [`rbac`]: Kubernetes RBAC (`rbac.authorization.k8s.io/v1` Role, ClusterRole with
//!   `aggregationRule`, RoleBinding, ClusterRoleBinding; User, Group and ServiceAccount
//!   subjects), matched with Kubernetes' exact semantics.
//! * [`calico`]: Calico's tier check on top (`get` on the tier, then the verb on
//!   `tier.<resource>` with the policy's name or `<tier>.*`), with upstream's denials.
//! * [`review`]: two bundles compared, every created, changed or deleted policy, tier and
//!   network set judged for one user (the `palisade-ownership review` command).
//! * [`gate`]: a [`gate::PolicyStore`] in front of an [`palisade::Engine`] handing out
//!   [`gate::TierWriter`]s that may only change the policies of their tiers.
//!
//! ```
//! use palisade_ownership::calico::{authorize, Kind, Operation};
//! use palisade_ownership::rbac::{Rbac, User};
//!
//! let rbac = Rbac::from_yaml(r#"
//! apiVersion: rbac.authorization.k8s.io/v1
//! kind: ClusterRole
//! metadata: {name: app-tier-editor}
//! rules:
//! - {apiGroups: [projectcalico.org], resources: [networkpolicies], verbs: ["*"]}
//! - {apiGroups: [projectcalico.org], resources: [tiers], resourceNames: [app], verbs: [get]}
//! - {apiGroups: [projectcalico.org], resources: [tier.networkpolicies], resourceNames: [app.*], verbs: ["*"]}
//! ---
//! apiVersion: rbac.authorization.k8s.io/v1
//! kind: ClusterRoleBinding
//! metadata: {name: team-app}
//! roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: app-tier-editor}
//! subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: team-app}]
//! "#).unwrap();
//! let alice = User::new("alice", ["team-app"]);
//! let op = |tier| Operation { verb: "create", kind: Kind::NetworkPolicy, namespace: Some("shop"),
//!                             name: "web", tiers: vec![tier] };
//! assert!(authorize(&rbac, &alice, &op("app")).allowed);
//! assert_eq!(authorize(&rbac, &alice, &op("security")).denial(), Some(
//!     "networkpolicies.projectcalico.org \"web\" is forbidden: User \"alice\" cannot create \
//!      networkpolicies.projectcalico.org in tier \"security\" and namespace \"shop\" (user cannot get tier)"));
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod calico;
pub mod cli;
pub mod gate;
pub mod rbac;
pub mod review;

pub use calico::{Kind, Operation, Outcome, Step, authorize};
pub use gate::{Authority, PolicyStore, TierWriter, WriteError};
pub use rbac::{Attributes, Rbac, RbacError, User};
pub use review::{Change, Format, Op, Review, Verbs, Verdict, diff, review};
