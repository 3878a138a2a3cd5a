//! Field-level parsing shared by the loaders: typed specs with paths, selectors, CIDRs,
//! ports and protocols.

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Config;
use crate::error::{LoadError, LoadErrorKind};
use crate::model::PortMatch;
use crate::request::proto;
use crate::selector::{self, Expr};

/// Deserialises `value` (found at `prefix`) into `T`, naming the failing field. A struct is
/// only ever read from a mapping (see [`crate::strict`]); an absent `value` is an empty one.
pub(crate) fn typed<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, LoadError> {
    let empty = crate::strict::empty();
    let value = if value.is_null() { &empty } else { value };
    crate::strict::from_value(value).map_err(|(path, message)| {
        let field = if path == "." { prefix.to_string() } else { format!("{prefix}.{path}") };
        LoadError::new(LoadErrorKind::Schema, message).at_field(field)
    })
}

pub(crate) fn invalid(field: impl Into<String>, msg: impl Into<String>) -> LoadError {
    LoadError::new(LoadErrorKind::Invalid, msg).at_field(field)
}

/// Parses a selector field; an absent or blank one is `None`. `global()` is refused.
pub(crate) fn selector(text: Option<&str>, field: &str, config: &Config) -> Result<Option<Expr>, LoadError> {
    let Some(text) = text else { return Ok(None) };
    if text.trim_matches([' ', '\t']).is_empty() {
        return Ok(None);
    }
    let e = selector::parse_with(text, config.selector_limits()).map_err(|e| invalid(field, e.to_string()))?;
    if e.mentions_global() {
        return Err(invalid(field, "global() is only allowed as the whole of a rule's namespaceSelector"));
    }
    Ok(Some(e))
}

/// Parses a rule's `namespaceSelector` into its scoped form over `pcns.*` labels:
/// `all()` means any namespaced entity, `global()` (alone) only non-namespaced ones.
pub(crate) fn namespace_selector(text: Option<&str>, field: &str, config: &Config) -> Result<Option<Expr>, LoadError> {
    let Some(text) = text else { return Ok(None) };
    if text.trim_matches([' ', '\t']).is_empty() {
        return Ok(None);
    }
    let e = selector::parse_with(text, config.selector_limits()).map_err(|e| invalid(field, e.to_string()))?;
    if e != Expr::Global && e.mentions_global() {
        return Err(invalid(field, "global() must be the whole namespaceSelector"));
    }
    Ok(Some(e.prefixed("pcns.", Some(NAMESPACE_LABEL))))
}

/// The label every namespaced entity carries.
pub(crate) const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";
/// The label carrying an endpoint's service account.
pub(crate) const SERVICE_ACCOUNT_LABEL: &str = "projectcalico.org/serviceaccount";

/// Parses a list of CIDRs.
pub(crate) fn cidrs(list: &Option<Vec<String>>, field: &str) -> Result<Vec<IpNet>, LoadError> {
    let mut out = Vec::new();
    for (i, c) in list.iter().flatten().enumerate() {
        out.push(crate::net::parse_cidr(c).map_err(|m| invalid(format!("{field}[{i}]"), m))?);
    }
    Ok(out)
}

pub(crate) fn valid_port_name(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Parses Calico port entries: an integer, `"a:b"`, a numeric string, or a named port.
pub(crate) fn ports(list: &Option<Vec<Value>>, field: &str) -> Result<Vec<PortMatch>, LoadError> {
    let mut out = Vec::new();
    for (i, v) in list.iter().flatten().enumerate() {
        let f = format!("{field}[{i}]");
        let port = |n: u64| {
            u16::try_from(n).ok().filter(|&p| p >= 1).ok_or_else(|| invalid(&f, format!("port {n} is not in 1-65535")))
        };
        let m = match v {
            Value::Number(n) => {
                let n = n.as_u64().ok_or_else(|| invalid(&f, format!("{n} is not a port number")))?;
                let p = port(n)?;
                PortMatch::Range(p, p)
            }
            Value::String(s) => {
                if let Ok(n) = s.parse::<u64>() {
                    let p = port(n)?;
                    PortMatch::Range(p, p)
                } else if let Some((a, b)) = s.split_once(':') {
                    let (a, b) = match (a.parse::<u64>(), b.parse::<u64>()) {
                        (Ok(a), Ok(b)) => (port(a)?, port(b)?),
                        _ => {
                            return Err(invalid(&f, format!("{s:?} is not a port range \"min:max\"")));
                        }
                    };
                    if a > b {
                        return Err(invalid(&f, format!("port range {s:?} has min greater than max")));
                    }
                    PortMatch::Range(a, b)
                } else if valid_port_name(s) {
                    PortMatch::Named(s.clone())
                } else {
                    return Err(invalid(&f, format!("{s:?} is not a port, a range or a port name")));
                }
            }
            other => return Err(invalid(&f, format!("{other} is not a port"))),
        };
        out.push(m);
    }
    Ok(out)
}

/// Parses a Calico protocol: a name (any case) or a number 1-255.
pub(crate) fn protocol(v: &Option<Value>, field: &str) -> Result<Option<u8>, LoadError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => proto::from_name(s)
            .map(Some)
            .ok_or_else(|| invalid(field, format!("{s:?} is not one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite"))),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(p @ 1..=255) => Ok(Some(p as u8)),
            _ => Err(invalid(field, format!("protocol number {n} is not in 1-255"))),
        },
        Some(other) => Err(invalid(field, format!("{other} is not a protocol"))),
    }
}

/// Kubernetes object names (DNS-1123 subdomain).
pub(crate) fn check_name(name: &str) -> Result<(), LoadError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(invalid("metadata.name", format!("{name:?} is not a valid name (lower-case DNS subdomain)")))
    }
}
