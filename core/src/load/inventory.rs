//! Pods, Namespaces and ServiceAccounts: who owns which IP, with Calico's label set.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::Deserialize;

use super::fields::{NAMESPACE_LABEL, SERVICE_ACCOUNT_LABEL, invalid, typed};
use super::object::Obj;
use super::{NamespaceLabels, ServiceAccountLabels};
use crate::config::Config;
use crate::error::{LoadError, LoadErrorKind};
use crate::model::{Endpoint, NamedPort};
use crate::request::proto;

/// The label Kubernetes puts on every namespace.
pub(crate) const K8S_NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Namespace labels, with `kubernetes.io/metadata.name` always equal to the name.
pub(crate) fn namespaces(objs: &[Obj]) -> Result<NamespaceLabels, LoadError> {
    let mut out = BTreeMap::new();
    for obj in objs {
        let mut labels = obj.labels.clone();
        labels.insert(K8S_NAMESPACE_NAME_LABEL.to_string(), obj.id.name.clone());
        out.insert(obj.id.name.clone(), labels);
    }
    Ok(out)
}

/// Service-account labels by `(namespace, name)`.
pub(crate) fn service_accounts(objs: &[Obj]) -> Result<ServiceAccountLabels, LoadError> {
    Ok(objs.iter().map(|o| ((o.namespace().to_string(), o.id.name.clone()), o.labels.clone())).collect())
}

/// Adds a namespace's inherited labels (`pcns.*`, including the derived name labels that
/// exist even without a Namespace object).
pub(crate) fn inherit_namespace(labels: &mut BTreeMap<String, String>, ns: &str, namespaces: &NamespaceLabels) {
    if let Some(ns_labels) = namespaces.get(ns) {
        for (k, v) in ns_labels {
            labels.insert(format!("pcns.{k}"), v.clone());
        }
    }
    labels.insert(format!("pcns.{K8S_NAMESPACE_NAME_LABEL}"), ns.to_string());
    labels.insert("pcns.projectcalico.org/name".to_string(), ns.to_string());
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawPodSpec {
    #[serde(default)]
    service_account_name: Option<String>,
    #[serde(default)]
    service_account: Option<String>,
    #[serde(default)]
    host_network: Option<bool>,
    #[serde(default)]
    containers: Option<Vec<RawContainer>>,
    #[serde(default)]
    init_containers: Option<Vec<RawContainer>>,
}

#[derive(Deserialize)]
struct RawContainer {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    ports: Option<Vec<RawContainerPort>>,
}

/// The label Palisade writes on every endpoint: `"true"` when the workload runs an Istio
/// sidecar (so Istio's AuthorizationPolicy and PeerAuthentication apply to it), `"false"`
/// otherwise. A pod's own label of this name is overwritten.
pub(crate) const ISTIO_SIDECAR_LABEL: &str = "palisade.dev/istio-sidecar";

/// What a pod says about its sidecar: `Some(true)` injected (an `istio-proxy` container or
/// native sidecar, or the `sidecar.istio.io/status` annotation), `Some(false)` opted out
/// (`sidecar.istio.io/inject: "false"` as a label or annotation), `None` silent.
fn sidecar(obj: &Obj, spec: &RawPodSpec) -> Option<bool> {
    let meta = obj.doc.value.get("metadata");
    let annotation =
        |k: &str| meta.and_then(|m| m.get("annotations")).and_then(|a| a.get(k)).and_then(serde_json::Value::as_str);
    if obj.labels.get("sidecar.istio.io/inject").map(String::as_str) == Some("false")
        || annotation("sidecar.istio.io/inject") == Some("false")
    {
        return Some(false);
    }
    let proxy = spec
        .containers
        .iter()
        .flatten()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| c.name.as_deref() == Some("istio-proxy"));
    (proxy || annotation("sidecar.istio.io/status").is_some()).then_some(true)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContainerPort {
    #[serde(default)]
    name: Option<String>,
    container_port: u16,
    #[serde(default)]
    protocol: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawPodStatus {
    #[serde(default)]
    phase: Option<String>,
    #[serde(default, rename = "podIP")]
    pod_ip: Option<String>,
    #[serde(default, rename = "podIPs")]
    pod_ips: Option<Vec<RawPodIp>>,
}

#[derive(Deserialize)]
struct RawPodIp {
    ip: String,
}

/// The endpoints of a bundle's pods and workload endpoints, with what an incremental pod
/// change needs to redo one pod as [`endpoints`] would.
pub(crate) struct Endpoints {
    /// Pods' endpoints first (in the pods' order), then workload endpoints'.
    pub endpoints: Vec<Endpoint>,
    /// The index in `endpoints` of each pod that has one.
    pub pod_index: HashMap<super::ObjectRef, u32>,
    /// How many pods show an Istio sidecar (`pod_sidecar` is `Some(true)`): when any does,
    /// a pod without one is outside the mesh.
    pub sidecar_pods: usize,
}

/// What a pod says about its sidecar (see [`sidecar`]); `None` too when its spec does not
/// parse (its endpoint is then an error of [`pod_endpoint`]).
pub(crate) fn pod_sidecar(obj: &Obj) -> Option<bool> {
    typed::<RawPodSpec>(obj.spec(), "spec").ok().and_then(|s| sidecar(obj, &s))
}

/// One pod's endpoint, as Calico sees it: none for a pod on the host network, finished, or
/// without an IP. `shows_injection`: whether some pod of the bundle shows a sidecar.
pub(crate) fn pod_endpoint(
    obj: &Obj,
    namespaces: &NamespaceLabels,
    service_accounts: &ServiceAccountLabels,
    shows_injection: bool,
    config: &Config,
) -> Result<Option<Endpoint>, LoadError> {
    endpoint_of(obj, None, namespaces, service_accounts, shows_injection, config)
}

/// [`pod_endpoint`] with the pod's spec already parsed (`None`: parse it here).
fn endpoint_of(
    obj: &Obj,
    parsed: Option<RawPodSpec>,
    namespaces: &NamespaceLabels,
    service_accounts: &ServiceAccountLabels,
    shows_injection: bool,
    config: &Config,
) -> Result<Option<Endpoint>, LoadError> {
    let wrap = |e: LoadError| obj.err(e);
    let spec: RawPodSpec = match parsed {
        Some(s) => s,
        None => typed(obj.spec(), "spec").map_err(wrap)?,
    };
    let pod_sidecar = sidecar(obj, &spec);
    let status: RawPodStatus =
        typed(obj.doc.value.get("status").unwrap_or(&serde_json::Value::Null), "status").map_err(wrap)?;
    if spec.host_network == Some(true) || matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return Ok(None);
    }
    let mut ips = Vec::new();
    let texts = status.pod_ips.iter().flatten().map(|p| p.ip.as_str()).chain(status.pod_ip.as_deref());
    for t in texts {
        let ip = crate::net::parse_ip(t)
            .ok_or_else(|| wrap(invalid("status.podIPs", format!("{t:?} is not an IP address"))))?;
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if ips.is_empty() {
        return Ok(None);
    }
    let ns = obj.namespace().to_string();
    let sa = spec
        .service_account_name
        .or(spec.service_account)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_string());
    let mut labels = BTreeMap::new();
    inherit_namespace(&mut labels, &ns, namespaces);
    if let Some(sa_labels) = service_accounts.get(&(ns.clone(), sa.clone())) {
        for (k, v) in sa_labels {
            labels.insert(format!("pcsa.{k}"), v.clone());
        }
    }
    labels.insert("pcsa.projectcalico.org/name".to_string(), sa.clone());
    for (k, v) in &obj.labels {
        labels.insert(k.clone(), v.clone());
    }
    labels.insert(NAMESPACE_LABEL.to_string(), ns.clone());
    labels.insert("projectcalico.org/orchestrator".to_string(), "k8s".to_string());
    let ns_opted_out =
        namespaces.get(&ns).and_then(|l| l.get("istio-injection")).map(String::as_str) == Some("disabled");
    let meshed = match pod_sidecar {
        Some(s) => s,
        None => !shows_injection && !ns_opted_out,
    };
    labels.insert(ISTIO_SIDECAR_LABEL.to_string(), meshed.to_string());
    labels.insert(SERVICE_ACCOUNT_LABEL.to_string(), sa.clone());
    let mut ports = Vec::new();
    for (ci, c) in spec.containers.iter().flatten().enumerate() {
        for (pi, p) in c.ports.iter().flatten().enumerate() {
            let Some(name) = &p.name else { continue };
            let protocol = match p.protocol.as_deref() {
                None => proto::TCP,
                Some(s) => proto::from_name(s).ok_or_else(|| {
                    wrap(invalid(
                        format!("spec.containers[{ci}].ports[{pi}].protocol"),
                        format!("{s:?} is not a protocol"),
                    ))
                })?,
            };
            ports.push(NamedPort { name: name.clone(), protocol, port: p.container_port });
        }
    }
    let identity = format!("spiffe://{}/ns/{}/sa/{}", config.trust_domain, ns, sa);
    Ok(Some(Endpoint {
        namespace: ns,
        name: obj.id.name.clone(),
        service_account: sa,
        ips,
        labels,
        ports,
        identity,
        mtls: Default::default(),
    }))
}

/// Turns pods into workload endpoints, as Calico does: pods with an IP, not on the host
/// network, not finished. Two endpoints claiming one IP is an error naming both.
///
/// Calico `WorkloadEndpoint`s (with the `labelsToApply` of the `profiles` they list) are
/// endpoints too; one IP claimed by a Pod and a WorkloadEndpoint is an error.
pub(crate) fn endpoints(
    pods: &[Obj],
    weps: &[Obj],
    profiles: &BTreeMap<String, BTreeMap<String, String>>,
    namespaces: &NamespaceLabels,
    service_accounts: &ServiceAccountLabels,
    config: &Config,
) -> Result<Endpoints, LoadError> {
    let mut out = Vec::new();
    let mut owners: HashMap<IpAddr, usize> = HashMap::new();
    let mut pod_index = HashMap::new();
    // A dump shows injection when some pod carries a sidecar: then a pod without one is
    // outside the mesh. A bundle that shows none (hand-written manifests) puts every
    // workload in the mesh, unless it opts out.
    // Each spec is parsed once, here (a spec that does not parse is the pod's error below).
    let specs: Vec<Option<RawPodSpec>> = pods.iter().map(|o| typed(o.spec(), "spec").ok()).collect();
    let sidecar_pods =
        pods.iter().zip(&specs).filter(|(o, s)| s.as_ref().and_then(|s| sidecar(o, s)) == Some(true)).count();
    let shows_injection = sidecar_pods > 0;
    for (obj, spec) in pods.iter().zip(specs) {
        let Some(e) = endpoint_of(obj, spec, namespaces, service_accounts, shows_injection, config)? else {
            continue;
        };
        let idx = out.len();
        for ip in &e.ips {
            if let Some(&other) = owners.get(ip) {
                let other: &Endpoint = &out[other];
                return Err(obj.err(
                    LoadError::new(
                        LoadErrorKind::Duplicate,
                        format!("IP {ip} is also claimed by Pod {}/{}", other.namespace, other.name),
                    )
                    .at_field("status.podIPs"),
                ));
            }
            owners.insert(*ip, idx);
        }
        pod_index.insert(obj.id.clone(), idx as u32);
        out.push(e);
    }
    for obj in weps {
        let Some(e) = workload_endpoint(obj, namespaces, profiles, shows_injection, config).map_err(|e| obj.err(e))?
        else {
            continue;
        };
        let idx = out.len();
        for ip in &e.ips {
            if let Some(&other) = owners.get(ip) {
                let other: &Endpoint = &out[other];
                return Err(obj.err(
                    LoadError::new(
                        LoadErrorKind::Duplicate,
                        format!(
                            "IP {ip} is also claimed by {}/{} (one workload described both as a Pod and as a \
                             WorkloadEndpoint, or two workloads with one IP)",
                            other.namespace, other.name
                        ),
                    )
                    .at_field("spec.ipNetworks"),
                ));
            }
            owners.insert(*ip, idx);
        }
        out.push(e);
    }
    Ok(Endpoints { endpoints: out, pod_index, sidecar_pods })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawWepSpec {
    #[serde(default)]
    orchestrator: Option<String>,
    #[serde(default)]
    pod: Option<String>,
    #[serde(default)]
    service_account_name: Option<String>,
    #[serde(default)]
    ip_networks: Option<Vec<String>>,
    #[serde(default)]
    profiles: Option<Vec<String>>,
    #[serde(default)]
    ports: Option<Vec<RawWepPort>>,
}

#[derive(Deserialize)]
struct RawWepPort {
    name: String,
    #[serde(default)]
    protocol: Option<serde_json::Value>,
    port: u16,
}

/// A Calico `WorkloadEndpoint` (the etcd datastore's form of a pod): its IPs from
/// `ipNetworks` (none: no endpoint, as Calico filters it out), labels from its own plus its
/// profiles' `labelsToApply`, service account from `serviceAccountName`, named ports from
/// `ports`, and a `palisade.dev/profile.<name>` label per profile it lists.
fn workload_endpoint(
    obj: &Obj,
    namespaces: &NamespaceLabels,
    profiles: &BTreeMap<String, BTreeMap<String, String>>,
    shows_injection: bool,
    config: &Config,
) -> Result<Option<Endpoint>, LoadError> {
    let spec: RawWepSpec = typed(obj.spec(), "spec")?;
    let mut ips = Vec::new();
    for (i, n) in spec.ip_networks.iter().flatten().enumerate() {
        let net = crate::net::parse_cidr(n).map_err(|m| invalid(format!("spec.ipNetworks[{i}]"), m))?;
        if !ips.contains(&net.addr()) {
            ips.push(net.addr());
        }
    }
    if ips.is_empty() {
        return Ok(None);
    }
    let ns = obj.namespace().to_string();
    let sa = spec.service_account_name.filter(|s| !s.is_empty()).unwrap_or_else(|| "default".into());
    let mut labels = BTreeMap::new();
    inherit_namespace(&mut labels, &ns, namespaces);
    for (i, p) in spec.profiles.iter().flatten().enumerate() {
        let Some(pl) = profiles.get(p) else {
            return Err(invalid(format!("spec.profiles[{i}]"), format!("profile {p:?} is not in the bundle")));
        };
        for (k, v) in pl {
            labels.insert(k.clone(), v.clone());
        }
        labels.insert(format!("{}{p}", super::calico::PROFILE_LABEL_PREFIX), "true".into());
    }
    labels.insert("pcsa.projectcalico.org/name".to_string(), sa.clone());
    for (k, v) in &obj.labels {
        labels.insert(k.clone(), v.clone());
    }
    labels.insert(NAMESPACE_LABEL.to_string(), ns.clone());
    labels.insert(
        "projectcalico.org/orchestrator".to_string(),
        spec.orchestrator.filter(|o| !o.is_empty()).unwrap_or_else(|| "k8s".into()),
    );
    labels.insert(SERVICE_ACCOUNT_LABEL.to_string(), sa.clone());
    labels.insert(ISTIO_SIDECAR_LABEL.to_string(), (!shows_injection).to_string());
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        let protocol =
            super::fields::protocol(&p.protocol, &format!("spec.ports[{i}].protocol"))?.unwrap_or(proto::TCP);
        ports.push(NamedPort { name: p.name.clone(), protocol, port: p.port });
    }
    let identity = format!("spiffe://{}/ns/{}/sa/{}", config.trust_domain, ns, sa);
    Ok(Some(Endpoint {
        namespace: ns,
        name: spec.pod.filter(|p| !p.is_empty()).unwrap_or_else(|| obj.id.name.clone()),
        service_account: sa,
        ips,
        labels,
        ports,
        identity,
        mtls: Default::default(),
    }))
}
