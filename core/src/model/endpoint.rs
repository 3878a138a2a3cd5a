//! Workload endpoints and network sets: who holds which IP, with which labels.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// A named container port, for named-port rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    /// The port's name.
    pub name: String,
    /// Its protocol number.
    pub protocol: u8,
    /// The port number.
    pub port: u16,
}

/// Istio's mutual-TLS mode for a workload port, from `PeerAuthentication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MtlsMode {
    /// Mutual TLS and plaintext are both accepted (Istio's default).
    #[default]
    Permissive,
    /// Only mutual TLS is accepted: a request without a peer principal is refused.
    Strict,
    /// Only plaintext is accepted.
    Disable,
}

impl MtlsMode {
    /// The mode's name as Istio writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Strict => "STRICT",
            MtlsMode::Disable => "DISABLE",
        }
    }
}

/// A workload's resolved peer-authentication: its mode, and the ports whose mode differs
/// (`portLevelMtls` of the workload-level policy, keyed by the workload's own port).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMtls {
    /// The workload's mode (mesh, then namespace, then workload level; PERMISSIVE when none).
    pub mode: MtlsMode,
    /// Per-port modes, sorted by port.
    pub ports: Vec<(u16, MtlsMode)>,
    /// The policies that set it, as `namespace/name`, mesh level first (for `explain`).
    pub from: Vec<String>,
}

impl PeerMtls {
    /// The mode in force for a destination port (the workload's mode when the port has no
    /// entry, or the request has no port).
    pub fn mode_for(&self, port: Option<u16>) -> MtlsMode {
        match port {
            Some(p) => match self.ports.binary_search_by_key(&p, |&(q, _)| q) {
                Ok(i) => self.ports.get(i).map_or(self.mode, |&(_, m)| m),
                Err(_) => self.mode,
            },
            None => self.mode,
        }
    }
}

/// A workload endpoint: a pod with at least one IP.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Service account (default `default`).
    pub service_account: String,
    /// Every IP of the pod (dual stack).
    pub ips: Vec<IpAddr>,
    /// Calico's label set: own labels plus inherited `pcns.*` / `pcsa.*` labels.
    pub labels: BTreeMap<String, String>,
    /// Named container ports.
    pub ports: Vec<NamedPort>,
    /// The SPIFFE ID the workload's certificate carries.
    pub identity: String,
    /// Istio's mutual-TLS requirement for this workload (`PeerAuthentication`).
    pub mtls: PeerMtls,
}

/// A global or namespaced network set: labelled CIDRs.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSet {
    /// Namespace, for a namespaced `NetworkSet`.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Its CIDRs.
    pub nets: Vec<IpNet>,
    /// Labels (a namespaced set also carries `projectcalico.org/namespace` and `pcns.*`).
    pub labels: BTreeMap<String, String>,
}
