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
