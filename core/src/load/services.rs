//! Kubernetes `v1 Service` and `discovery.k8s.io/v1 EndpointSlice`, as `kubectl get -o yaml`
//! prints them. As in Calico's rule scanner, a Service's members come from the EndpointSlices
//! of its namespace labelled `kubernetes.io/service-name: <name>`; the Service object itself
//! (its cluster IP, its `port`) is not used for matching, only for Istio's protocol selection.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::fields::{invalid, typed};
use super::object::Obj;
use crate::error::LoadError;
use crate::model::{Service, ServicePort, SliceMembers, TargetPort};
use crate::request::proto;

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawServiceSpec {
    #[serde(default)]
    selector: Option<BTreeMap<String, String>>,
    #[serde(default)]
    ports: Option<Vec<RawServicePort>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawServicePort {
    #[serde(default)]
    name: Option<String>,
    port: u16,
    #[serde(default)]
    target_port: Option<Value>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    app_protocol: Option<String>,
}

fn protocol(p: &Option<String>, field: &str) -> Result<u8, LoadError> {
    match p.as_deref() {
        None | Some("TCP") => Ok(proto::TCP),
        Some("UDP") => Ok(proto::UDP),
        Some("SCTP") => Ok(proto::SCTP),
        Some(other) => Err(invalid(field, format!("{other:?} is not TCP, UDP or SCTP"))),
    }
}

/// Reads a Service (unknown fields of the Service spec are tolerated: it carries many
/// fields that have no bearing on access, such as `clusterIP`, `sessionAffinity`).
pub(crate) fn service(obj: &Obj) -> Result<Service, LoadError> {
    let spec: RawServiceSpec = typed(obj.spec(), "spec")?;
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        let f = format!("spec.ports[{i}]");
        let target_port = match &p.target_port {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(TargetPort::Number(
                n.as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| invalid(format!("{f}.targetPort"), format!("{n} is not a port in 1-65535")))?,
            )),
            Some(Value::String(s)) => Some(match s.parse::<u16>() {
                Ok(n) => TargetPort::Number(n),
                Err(_) => TargetPort::Name(s.clone()),
            }),
            Some(other) => return Err(invalid(format!("{f}.targetPort"), format!("{other} is not a port"))),
        };
        ports.push(ServicePort {
            name: p.name.clone().unwrap_or_default(),
            port: p.port,
            target_port,
            protocol: protocol(&p.protocol, &format!("{f}.protocol"))?,
            app_protocol: p.app_protocol.clone(),
        });
    }
    Ok(Service {
        namespace: obj.namespace().to_string(),
        name: obj.id.name.clone(),
        selector: spec.selector.unwrap_or_default(),
        ports,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSliceEndpoint {
    #[serde(default)]
    addresses: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSlicePort {
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    protocol: Option<String>,
}

/// `(namespace, service name)`.
pub(crate) type ServiceKey = (String, String);

/// Reads an EndpointSlice into its Service's key and its members; a slice without the
/// service-name label belongs to no Service (`None`).
pub(crate) fn endpoint_slice(obj: &Obj) -> Result<Option<(ServiceKey, SliceMembers)>, LoadError> {
    let v = &obj.doc.value;
    let address_type = v.get("addressType").and_then(Value::as_str).unwrap_or("IPv4");
    let endpoints: Vec<RawSliceEndpoint> = match v.get("endpoints") {
        None | Some(Value::Null) => Vec::new(),
        Some(e) => typed(e, "endpoints")?,
    };
    let ports: Vec<RawSlicePort> = match v.get("ports") {
        None | Some(Value::Null) => Vec::new(),
        Some(p) => typed(p, "ports")?,
    };
    let Some(service) = obj.labels.get(SERVICE_NAME_LABEL) else { return Ok(None) };
    let mut members = SliceMembers::default();
    if address_type != "FQDN" {
        for (i, e) in endpoints.iter().enumerate() {
            for (j, a) in e.addresses.iter().flatten().enumerate() {
                let ip = crate::net::parse_ip(a).ok_or_else(|| {
                    invalid(format!("endpoints[{i}].addresses[{j}]"), format!("{a:?} is not an IP address"))
                })?;
                members.addrs.push(ip);
            }
        }
    }
    for (i, p) in ports.iter().enumerate() {
        if let Some(n) = p.port {
            members.ports.push((protocol(&p.protocol, &format!("ports[{i}].protocol"))?, n));
        }
    }
    members.addrs.sort_unstable();
    members.addrs.dedup();
    members.ports.sort_unstable();
    members.ports.dedup();
    Ok(Some(((obj.namespace().to_string(), service.clone()), members)))
}
