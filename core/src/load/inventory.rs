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
}

#[derive(Deserialize)]
struct RawContainer {
    #[serde(default)]
    ports: Option<Vec<RawContainerPort>>,
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

/// Turns pods into workload endpoints, as Calico does: pods with an IP, not on the host
/// network, not finished. Two endpoints claiming one IP is an error naming both.
pub(crate) fn endpoints(
    pods: &[Obj],
    namespaces: &NamespaceLabels,
    service_accounts: &ServiceAccountLabels,
    config: &Config,
) -> Result<Vec<Endpoint>, LoadError> {
    let mut out = Vec::new();
    let mut owners: HashMap<IpAddr, usize> = HashMap::new();
    for obj in pods {
        let wrap = |e: LoadError| obj.err(e);
        let spec: RawPodSpec = typed(obj.spec(), "spec").map_err(wrap)?;
        let status: RawPodStatus =
            typed(obj.doc.value.get("status").unwrap_or(&serde_json::Value::Null), "status").map_err(wrap)?;
        if spec.host_network == Some(true) || matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            continue;
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
            continue;
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
        let idx = out.len();
        for ip in &ips {
            if let Some(&other) = owners.get(ip) {
                let other: &Endpoint = &out[other];
                return Err(wrap(
                    LoadError::new(
                        LoadErrorKind::Duplicate,
                        format!("IP {ip} is also claimed by Pod {}/{}", other.namespace, other.name),
                    )
                    .at_field("status.podIPs"),
                ));
            }
            owners.insert(*ip, idx);
        }
        let identity = format!("spiffe://{}/ns/{}/sa/{}", config.trust_domain, ns, sa);
        out.push(Endpoint {
            namespace: ns,
            name: obj.id.name.clone(),
            service_account: sa,
            ips,
            labels,
            ports,
            identity,
            mtls: Default::default(),
        });
    }
    Ok(out)
}
