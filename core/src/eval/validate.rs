//! Request validation (SPEC 7) shared by both evaluators: it decides nothing about policy,
//! it only refuses requests that cannot be evaluated.

use crate::http_path::{self, PathBuffer};
use crate::net::canonical_ip;
use crate::request::{Request, proto};
use crate::spiffe::SpiffeId;

/// Why a principal that is not a valid SPIFFE ID is refused, for the end that presented it
/// (`source` when `source` is true). Static texts: deciding never allocates.
pub(crate) fn bad_principal(principal: &str, source: bool) -> &'static str {
    // `cluster.local/ns/a/sa/b`: what Istio policies write, without the scheme.
    let istio_form = !principal.contains(':') && principal.split('/').nth(1) == Some("ns");
    match (istio_form, source) {
        (true, true) => {
            "source.principal lacks the spiffe:// scheme (<trust domain>/ns/<ns>/sa/<sa> is how Istio policies \
             write it); give the certificate's SPIFFE ID: spiffe://<trust domain>/ns/<namespace>/sa/<service account>"
        }
        (true, false) => {
            "destination.principal lacks the spiffe:// scheme (<trust domain>/ns/<ns>/sa/<sa> is how Istio policies \
             write it); give the certificate's SPIFFE ID: spiffe://<trust domain>/ns/<namespace>/sa/<service account>"
        }
        (false, true) => {
            "source.principal is not a valid SPIFFE ID (spiffe://<trust domain>/<path>: lower-case scheme and trust \
             domain, no empty, '.' or '..' segment, no trailing '/', no percent-encoding, query, port or user info)"
        }
        (false, false) => {
            "destination.principal is not a valid SPIFFE ID (spiffe://<trust domain>/<path>: lower-case scheme and \
             trust domain, no empty, '.' or '..' segment, no trailing '/', no percent-encoding, query, port or user info)"
        }
    }
}

/// Why a request whose two IPs are of different families is refused (SPEC 9.3).
pub(crate) const MIXED_FAMILIES: &str =
    "source.ip and destination.ip are of different families (one IPv4, one IPv6): no connection has both";

/// Checks everything a typed [`Request`] can still get wrong. On success, when the request
/// carries HTTP, `decoded` holds the decoded path (see [`http_path::decode`]) unless the
/// path is plain.
pub(crate) fn validate(req: &Request<'_>, decoded: &mut PathBuffer) -> Result<(), &'static str> {
    if req.protocol == 0 {
        return Err("protocol 0 is not a protocol (use a name or 1-255)");
    }
    if proto::has_ports(req.protocol) && req.destination.port.is_none() {
        return Err("destination.port is required for TCP, UDP, SCTP and UDPLite");
    }
    if canonical_ip(req.source.ip).is_ipv4() != canonical_ip(req.destination.ip).is_ipv4() {
        return Err(MIXED_FAMILIES);
    }
    for (p, source) in [(req.source.principal, true), (req.destination.principal, false)] {
        if let Some(p) = p
            && SpiffeId::parse(p).is_none()
        {
            return Err(bad_principal(p, source));
        }
    }
    if let Some(h) = &req.http {
        if h.method.is_empty() {
            return Err("http.method is empty");
        }
        if !http_path::is_plain(h.path) {
            http_path::decode(h.path, decoded)?;
        }
    }
    Ok(())
}
