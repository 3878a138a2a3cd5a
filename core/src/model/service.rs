//! Kubernetes Services and their EndpointSlices: what a Calico `services` rule matches, and
//! which workload ports speak HTTP (Istio's protocol selection).

use std::collections::BTreeMap;
use std::net::IpAddr;

/// A Service port, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// The port's name (`http`, `grpc-web`, ...), empty when unnamed.
    pub name: String,
    /// The Service's port.
    pub port: u16,
    /// The target port: a number, or a container port's name.
    pub target_port: Option<TargetPort>,
    /// Protocol number (TCP when omitted).
    pub protocol: u8,
    /// `appProtocol`, when given.
    pub app_protocol: Option<String>,
}

/// A Service port's target: the container port, by number or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    /// A port number.
    Number(u16),
    /// A named container port.
    Name(String),
}

impl ServicePort {
    /// Whether Istio treats this port as HTTP (HTTP/1.1, HTTP/2 or gRPC): by `appProtocol`,
    /// else by the name's prefix before `-` (Istio's protocol selection).
    pub fn speaks_http(&self) -> bool {
        let http = |p: &str| {
            matches!(
                p.to_ascii_lowercase().as_str(),
                "http" | "http2" | "grpc" | "grpc-web" | "h2c" | "kubernetes.io/h2c"
            )
        };
        match &self.app_protocol {
            Some(a) => http(a),
            None => http(self.name.split('-').next().unwrap_or_default()) || self.name.starts_with("grpc-web"),
        }
    }
}

/// A `v1 Service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The pod selector (`spec.selector`), empty for a selector-less Service.
    pub selector: BTreeMap<String, String>,
    /// Its ports.
    pub ports: Vec<ServicePort>,
}

/// The members one EndpointSlice gives a Service: its IP addresses, and the
/// `(protocol, port)` pairs of its ports that have a number (the endpoints' target ports).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SliceMembers {
    /// Endpoint addresses, sorted (FQDN slices contribute none).
    pub addrs: Vec<IpAddr>,
    /// `(protocol, port)` pairs, sorted.
    pub ports: Vec<(u8, u16)>,
}

/// A resolved Calico `services` match on one end of a rule: the Service's EndpointSlices, as
/// Calico's rule scanner resolves them. As a source only the addresses count; as a
/// destination the (address, port, protocol) triples of each slice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceMatch {
    /// `namespace/name`, for messages.
    pub service: String,
    /// One entry per EndpointSlice.
    pub members: Vec<SliceMembers>,
    /// Whether the port and protocol must match a slice port too (destination side).
    pub with_ports: bool,
}

impl ServiceMatch {
    /// Whether `ip` (and, on the destination side, `protocol` and `port`) is a member.
    pub fn matches(&self, ip: IpAddr, protocol: u8, port: Option<u16>) -> bool {
        self.members.iter().any(|m| {
            m.addrs.binary_search(&ip).is_ok()
                && (!self.with_ports || port.is_some_and(|p| m.ports.binary_search(&(protocol, p)).is_ok()))
        })
    }
}
