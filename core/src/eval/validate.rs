//! Request validation (SPEC 7) shared by both evaluators: it decides nothing about policy,
//! it only refuses requests that cannot be evaluated.

use crate::http_path::{self, PathBuffer};
use crate::request::{Request, proto};
use crate::spiffe::SpiffeId;

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
    if req.source.ip.is_ipv4() != req.destination.ip.is_ipv4() {
        return Err("source and destination IPs are of different families");
    }
    for p in [req.source.principal, req.destination.principal].into_iter().flatten() {
        if SpiffeId::parse(p).is_none() {
            return Err("principal is not a valid SPIFFE ID");
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
