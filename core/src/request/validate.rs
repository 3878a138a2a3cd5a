//! Request validation (SPEC 7), used by both evaluators: it decides nothing about policy,
//! it only refuses requests that cannot be evaluated. Every `invalid_request` either
//! evaluator gives is an [`InvalidRequest`]; its [`message`](InvalidRequest::message) is the
//! decision's `detail`. The compiled evaluator runs the same checks as separate steps
//! (it folds the address-family check into its IP lookups), the reference evaluator
//! through [`validate`].

#![cfg_attr(not(test), deny(clippy::indexing_slicing))] // on the decision path: nothing here may panic

use crate::http_path::{self, PathBuffer};
use crate::net::canonical_ip;
use crate::request::{Http, Request, proto};
use crate::spiffe::SpiffeId;

/// Why a request cannot be evaluated. Messages are static: deciding never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidRequest {
    /// `protocol` is 0.
    ProtocolZero,
    /// A protocol with ports (TCP, UDP, SCTP, UDPLite) without `destination.port`.
    PortRequired,
    /// One IP is IPv4 and the other IPv6 (SPEC 9.3).
    MixedFamilies,
    /// A principal that is not a valid SPIFFE ID.
    BadPrincipal {
        /// The source presented it (else the destination).
        source: bool,
        /// It looks like Istio's `<trust domain>/ns/<ns>/sa/<sa>` form without the scheme.
        istio_form: bool,
    },
    /// `http.method` is empty.
    EmptyMethod,
    /// The HTTP path cannot be normalised (an encoded separator, a bad escape...): the
    /// normaliser's own explanation.
    Path(&'static str),
}

impl InvalidRequest {
    /// A principal refused as a SPIFFE ID, for the end that presented it.
    pub fn bad_principal(principal: &str, source: bool) -> InvalidRequest {
        // `cluster.local/ns/a/sa/b`: what Istio policies write, without the scheme.
        let istio_form = !principal.contains(':') && principal.split('/').nth(1) == Some("ns");
        InvalidRequest::BadPrincipal { source, istio_form }
    }

    /// What is wrong, for the decision's `detail`.
    pub fn message(self) -> &'static str {
        match self {
            InvalidRequest::ProtocolZero => "protocol 0 is not a protocol (use a name or 1-255)",
            InvalidRequest::PortRequired => "destination.port is required for TCP, UDP, SCTP and UDPLite",
            InvalidRequest::MixedFamilies => {
                "source.ip and destination.ip are of different families (one IPv4, one IPv6): no connection has both"
            }
            InvalidRequest::BadPrincipal { source: true, istio_form: true } => {
                "source.principal lacks the spiffe:// scheme (<trust domain>/ns/<ns>/sa/<sa> is how Istio policies \
                 write it); give the certificate's SPIFFE ID: spiffe://<trust domain>/ns/<namespace>/sa/<service account>"
            }
            InvalidRequest::BadPrincipal { source: false, istio_form: true } => {
                "destination.principal lacks the spiffe:// scheme (<trust domain>/ns/<ns>/sa/<sa> is how Istio policies \
                 write it); give the certificate's SPIFFE ID: spiffe://<trust domain>/ns/<namespace>/sa/<service account>"
            }
            InvalidRequest::BadPrincipal { source: true, istio_form: false } => {
                "source.principal is not a valid SPIFFE ID (spiffe://<trust domain>/<path>: lower-case scheme and trust \
                 domain, no empty, '.' or '..' segment, no trailing '/', no percent-encoding, query, port or user info)"
            }
            InvalidRequest::BadPrincipal { source: false, istio_form: false } => {
                "destination.principal is not a valid SPIFFE ID (spiffe://<trust domain>/<path>: lower-case scheme and \
                 trust domain, no empty, '.' or '..' segment, no trailing '/', no percent-encoding, query, port or user info)"
            }
            InvalidRequest::EmptyMethod => "http.method is empty",
            InvalidRequest::Path(why) => why,
        }
    }
}

impl std::fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Step 1: the protocol and the port it needs.
#[inline]
pub(crate) fn check_l4(req: &Request<'_>) -> Result<(), InvalidRequest> {
    if req.protocol == 0 {
        return Err(InvalidRequest::ProtocolZero);
    }
    if proto::has_ports(req.protocol) && req.destination.port.is_none() {
        return Err(InvalidRequest::PortRequired);
    }
    Ok(())
}

/// Step 2: both IPs of one family (`v4` flags of the canonical addresses).
#[inline]
pub(crate) fn check_families(source_v4: bool, destination_v4: bool) -> Result<(), InvalidRequest> {
    if source_v4 == destination_v4 { Ok(()) } else { Err(InvalidRequest::MixedFamilies) }
}

/// Step 3: a presented principal must be a valid SPIFFE ID.
#[inline]
pub(crate) fn check_principal(principal: Option<&str>, source: bool) -> Result<(), InvalidRequest> {
    match principal {
        Some(p) if SpiffeId::parse(p).is_none() => Err(InvalidRequest::bad_principal(p, source)),
        _ => Ok(()),
    }
}

/// Step 4a: the HTTP method.
#[inline]
pub(crate) fn check_method(h: &Http<'_>) -> Result<(), InvalidRequest> {
    if h.method.is_empty() { Err(InvalidRequest::EmptyMethod) } else { Ok(()) }
}

/// Step 4: the HTTP method, and the path decoded into `decoded` unless it is plain.
#[inline]
pub(crate) fn check_http(h: &Http<'_>, decoded: &mut PathBuffer) -> Result<(), InvalidRequest> {
    check_method(h)?;
    if !http_path::is_plain(h.path) {
        http_path::decode(h.path, decoded).map_err(InvalidRequest::Path)?;
    }
    Ok(())
}

/// Every check of a typed [`Request`], in order. On success, when the request carries
/// HTTP, `decoded` holds the decoded path (see [`http_path::decode`]) unless the path is
/// plain.
pub(crate) fn validate(req: &Request<'_>, decoded: &mut PathBuffer) -> Result<(), InvalidRequest> {
    check_l4(req)?;
    check_families(canonical_ip(req.source.ip).is_ipv4(), canonical_ip(req.destination.ip).is_ipv4())?;
    check_principal(req.source.principal, true)?;
    check_principal(req.destination.principal, false)?;
    if let Some(h) = &req.http {
        check_http(h, decoded)?;
    }
    Ok(())
}
