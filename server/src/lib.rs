//! # palisade-server: Palisade as an Envoy external-authorization server
//!
//! `palisade-serve` answers Envoy's `envoy.service.auth.v3.Authorization/Check` for the HTTP
//! filter (`envoy.filters.http.ext_authz`) and the network filter
//! (`envoy.filters.network.ext_authz`), as Calico's Dikastes and OPA-Envoy do. Every decision
//! is the core's ([`palisade::Snapshot::decide`]); this crate only translates types:
//!
//! * [`translate`]: `CheckRequest` to [`palisade::Request`] (which field is the TCP peer, the
//!   certificate's identity, the JWT payload);
//! * [`service`]: the gRPC handler, and the `CheckResponse` (OK, or `PERMISSION_DENIED` with
//!   a 403 `RBAC: access denied`), the `x-palisade-decision` header and the dynamic metadata;
//! * [`reload`]: the bundle, watched and reloaded; a bad update never replaces a good snapshot;
//! * [`metrics`]: Prometheus text on `/metrics`;
//! * [`serve`]: TCP and Unix listeners, `grpc.health.v1`, graceful shutdown.

pub mod metrics;
pub mod reload;
pub mod serve;
pub mod service;
pub mod translate;

pub use serve::{Running, ServeOptions, start};
pub use service::{AuthzService, DECISION_HEADER, DENIED_BODY, Verdict};

/// The generated Envoy types this crate speaks (re-exported for clients and tests).
pub use envoy_types;
