//! # Palisade: one policy decision, two identities, every enforcement point
//!
//! Palisade reads the policies teams already write (Calico tiers and policies, Kubernetes
//! NetworkPolicy and Istio AuthorizationPolicy, all in one tier walk) plus the cluster inventory
//! (Pods, Namespaces, ServiceAccounts, network sets), compiles them into an immutable
//! [`Snapshot`], and answers "allow or deny, and why" for a connection or an HTTP request.
//!
//! It checks two identities together: the **cryptographic** one (the peer's SPIFFE ID from
//! its verified certificate) and the **network** one (the IP and the workload that owns
//! it). A certificate presented from an IP its workload does not own is denied with
//! [`Reason::IdentityMismatch`] before any policy is read.
//!
//! ## Overview
//!
//! * [`Engine`]: holds the snapshot in force; [`Engine::decide`] is lock-free and
//!   allocation-free, [`Engine::load`] swaps a new snapshot in atomically.
//! * [`Request`]: what is decided; it borrows every string. [`OwnedRequest`] parses the
//!   JSON form shared by every interface (SPEC section 7).
//! * [`Decision`]: the action, the [`Reason`], the deciding side, tier, policy and rule as
//!   ids; [`explain::decision_json`] and [`Engine::explain`] render names and the
//!   Calico-format trace.
//! * [`answer`]: requests from JSON values or text to rendered answers, and one shape of
//!   located error: the layer every binding and the CLI share.
//! * [`Config`]: trust domain, `require_peer_identity`, `no_policy_action`, resource limits.
//! * [`load`]: documents to the validated [`model::Bundle`]; errors are [`LoadError`]s
//!   naming file, document, object and field.
//! * [`selector`]: Calico's selector language.
//! * [`reference`]: the simple evaluator the fast path is tested against; [`trace`]: the
//!   tier-walk vocabulary both evaluators record.
//!
//! ## Example: the stolen certificate
//!
//! ```
//! use palisade::{Engine, Config, OwnedRequest, Reason, Action};
//!
//! let bundle = r#"
//! apiVersion: v1
//! kind: Pod
//! metadata: {name: frontend, namespace: shop}
//! spec: {serviceAccountName: frontend}
//! status: {podIP: 10.1.0.5}
//! ---
//! apiVersion: v1
//! kind: Pod
//! metadata: {name: api, namespace: payments}
//! spec: {serviceAccountName: payments}
//! status: {podIP: 10.2.0.7}
//! ---
//! apiVersion: projectcalico.org/v3
//! kind: NetworkPolicy
//! metadata: {name: only-shop, namespace: payments}
//! spec:
//!   ingress:
//!   - action: Allow
//!     protocol: TCP
//!     source: {serviceAccounts: {names: [payments]}}
//! "#;
//! let engine = Engine::new(Config::default());
//! engine.load_str(bundle).unwrap();
//!
//! // The frontend pod presents the payments service's certificate.
//! let req = OwnedRequest::from_json(r#"{
//!   "source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/payments/sa/payments"},
//!   "destination": {"ip": "10.2.0.7", "port": 8443}}"#).unwrap();
//! let d = engine.decide(&req.as_request());
//! assert_eq!(d.action, Action::Deny);
//! assert_eq!(d.reason, Reason::IdentityMismatch);
//! ```
//!
//! ## Crate features
//!
//! * `fs` (default): reading bundles from files and directories. Without it the crate has
//!   no file-system code and builds for `wasm32-unknown-unknown`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod answer;
mod compiled;
pub mod config;
pub mod decision;
pub mod engine;
pub mod error;
pub mod explain;
pub mod flowlog;
pub mod http_path;
pub mod lint;
pub mod load;
pub mod model;
pub mod net;
pub mod reference;
pub mod request;
pub mod selector;
pub mod snapshot;
pub mod spiffe;
pub mod store;
mod strict;
pub mod trace;

pub use config::Config;
pub use decision::{Action, Decision, Peer, Reason, Side};
pub use engine::{Engine, Reader};
pub use error::{ConfigError, LoadError, LoadErrorKind, RequestError, SelectorError};
pub use explain::Explanation;
pub use request::validate::InvalidRequest;
pub use request::{Address, Auth, Direction, Headers, Http, Icmp, OwnedRequest, Request, StrList};
pub use snapshot::Snapshot;
pub use store::{ApplyReport, Change};

/// The README's Rust examples, compiled and run as doc tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
