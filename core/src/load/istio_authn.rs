//! Istio's authentication objects: `PeerAuthentication` (mutual TLS per workload and port)
//! and `RequestAuthentication` (JWT validation, read and validated only).
//!
//! PeerAuthentication is resolved as Istio resolves it (`pilot/pkg/security/authn`): a policy
//! with no (or an empty) selector is mesh-level in the root namespace and namespace-level
//! elsewhere; one with `matchLabels` is workload-level, and ignored in the root namespace. At
//! each level the oldest policy wins (creation time, then name, then namespace; a policy
//! without `metadata.creationTimestamp` counts as older than any with one, so the name
//! decides between them). The mode starts PERMISSIVE and is set by the mesh, then the
//! namespace, then the workload policy, each only when not UNSET. `portLevelMtls` comes from
//! the selected workload-level policy only; a port whose mode is UNSET takes the workload's.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::fields::{invalid, typed};
use super::object::Obj;
use crate::error::LoadError;
use crate::model::{Endpoint, MtlsMode};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSelector {
    #[serde(default)]
    match_labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMtls {
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPeerSpec {
    #[serde(default)]
    selector: Option<RawSelector>,
    #[serde(default)]
    mtls: Option<RawMtls>,
    #[serde(default)]
    port_level_mtls: Option<BTreeMap<String, RawMtls>>,
}

/// A mode as written: `None` is UNSET (inherit).
type Mode = Option<MtlsMode>;

fn mode(raw: &Option<RawMtls>, field: &str) -> Result<Mode, LoadError> {
    match raw.as_ref().and_then(|m| m.mode.as_deref()) {
        None | Some("UNSET") => Ok(None),
        Some("STRICT") => Ok(Some(MtlsMode::Strict)),
        Some("PERMISSIVE") => Ok(Some(MtlsMode::Permissive)),
        Some("DISABLE") => Ok(Some(MtlsMode::Disable)),
        Some(other) => Err(invalid(field, format!("{other:?} is not UNSET, DISABLE, PERMISSIVE or STRICT"))),
    }
}

/// One PeerAuthentication, validated.
pub(crate) struct PeerAuth {
    namespace: String,
    name: String,
    created: String,
    /// Non-empty `matchLabels`: a workload-level policy.
    labels: Option<BTreeMap<String, String>>,
    mode: Mode,
    ports: Vec<(u16, Mode)>,
}

fn check_labels(labels: &BTreeMap<String, String>, field: &str) -> Result<(), LoadError> {
    for (k, v) in labels {
        if k.is_empty() || k.contains('*') || v.contains('*') {
            return Err(invalid(
                format!("{field}.{k}"),
                "selector labels need a non-empty key and take no '*' (as Istio validates them)",
            ));
        }
    }
    Ok(())
}

fn creation_time(obj: &Obj) -> String {
    obj.doc
        .value
        .get("metadata")
        .and_then(|m| m.get("creationTimestamp"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Refuses `istio.io/dry-run` on the kinds Istio refuses it on (every kind but
/// AuthorizationPolicy).
fn no_dry_run(obj: &Obj) -> Result<(), LoadError> {
    let has = obj.doc.value.get("metadata").and_then(|m| m.get("annotations")).and_then(|a| a.get("istio.io/dry-run"));
    match has {
        Some(_) => Err(invalid(
            "metadata.annotations.istio.io/dry-run",
            format!("dry-run is only for AuthorizationPolicy, not {}", obj.id.kind),
        )),
        None => Ok(()),
    }
}

/// Reads and validates a PeerAuthentication.
pub(crate) fn peer_authentication(obj: &Obj) -> Result<PeerAuth, LoadError> {
    no_dry_run(obj)?;
    super::fields::check_name(&obj.id.name)?;
    let spec: RawPeerSpec = typed(obj.spec(), "spec")?;
    let labels = spec.selector.and_then(|s| s.match_labels).filter(|l| !l.is_empty());
    if let Some(l) = &labels {
        check_labels(l, "spec.selector.matchLabels")?;
    }
    let mut ports = Vec::new();
    if let Some(p) = &spec.port_level_mtls {
        if labels.is_none() {
            return Err(invalid(
                "spec.portLevelMtls",
                "portLevelMtls needs a workload selector (Istio refuses it on mesh- and namespace-wide policies)",
            ));
        }
        if p.is_empty() {
            return Err(invalid("spec.portLevelMtls", "portLevelMtls must not be empty"));
        }
        for (k, m) in p {
            let field = format!("spec.portLevelMtls.{k}");
            let port = k
                .parse::<u16>()
                .ok()
                .filter(|&n| n >= 1 && !k.starts_with('0'))
                .ok_or_else(|| invalid(&field, format!("{k:?} is not a port in 1-65535")))?;
            ports.push((port, mode(&Some(RawMtls { mode: m.mode.clone() }), &format!("{field}.mode"))?));
        }
        ports.sort_by_key(|&(p, _)| p);
    }
    Ok(PeerAuth {
        namespace: obj.namespace().to_string(),
        name: obj.id.name.clone(),
        created: creation_time(obj),
        labels,
        mode: mode(&spec.mtls, "spec.mtls.mode")?,
        ports,
    })
}

/// Istio's "oldest wins": creation time, then name, then namespace.
fn oldest<'a>(candidates: impl Iterator<Item = &'a PeerAuth>) -> Option<&'a PeerAuth> {
    candidates.min_by(|a, b| (&a.created, &a.name, &a.namespace).cmp(&(&b.created, &b.name, &b.namespace)))
}

/// Resolves every endpoint's mutual-TLS mode from the PeerAuthentications.
pub(crate) fn resolve(endpoints: &mut [Endpoint], policies: &[PeerAuth], root_namespace: &str) {
    if policies.is_empty() {
        return;
    }
    let mesh = oldest(policies.iter().filter(|p| p.namespace == root_namespace && p.labels.is_none()));
    let mut by_namespace: BTreeMap<&str, Vec<&PeerAuth>> = BTreeMap::new();
    for p in policies.iter().filter(|p| p.namespace != root_namespace) {
        by_namespace.entry(p.namespace.as_str()).or_default().push(p);
    }
    for e in endpoints {
        // A workload without a sidecar takes no part in mutual TLS.
        if e.labels.get(super::inventory::ISTIO_SIDECAR_LABEL).map(String::as_str) != Some("true") {
            continue;
        }
        let in_ns = by_namespace.get(e.namespace.as_str()).map(Vec::as_slice).unwrap_or_default();
        let namespace = oldest(in_ns.iter().copied().filter(|p| p.labels.is_none()));
        let workload = oldest(
            in_ns
                .iter()
                .copied()
                .filter(|p| p.labels.as_ref().is_some_and(|l| l.iter().all(|(k, v)| e.labels.get(k) == Some(v)))),
        );
        let mut m = MtlsMode::Permissive;
        let mut from = Vec::new();
        for level in [mesh, namespace, workload].into_iter().flatten() {
            if let Some(mode) = level.mode {
                m = mode;
            }
            from.push(format!("{}/{}", level.namespace, level.name));
        }
        e.mtls.mode = m;
        e.mtls.ports =
            workload.map(|w| w.ports.iter().map(|&(p, pm)| (p, pm.unwrap_or(m))).collect()).unwrap_or_default();
        e.mtls.from = from;
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawJwtRule {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    jwks: Option<String>,
    #[serde(default)]
    from_headers: Option<Vec<RawFromHeader>>,
    #[serde(default)]
    from_params: Option<Vec<String>>,
    #[serde(default)]
    from_cookies: Option<Vec<String>>,
    #[serde(default)]
    output_payload_to_header: Option<String>,
    #[serde(default)]
    forward_original_token: Option<bool>,
    #[serde(default)]
    output_claim_to_headers: Option<Vec<RawClaimToHeader>>,
    #[serde(default)]
    timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFromHeader {
    name: String,
    #[serde(default)]
    prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimToHeader {
    header: String,
    claim: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRequestSpec {
    #[serde(default)]
    selector: Option<RawSelector>,
    #[serde(default)]
    target_ref: Option<serde_json::Value>,
    #[serde(default)]
    target_refs: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    jwt_rules: Option<Vec<RawJwtRule>>,
}

fn header_name_ok(h: &str) -> bool {
    !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn duration_ok(d: &str) -> bool {
    // Go durations as Istio writes them: a number and a unit, repeated (`1.5s`, `1m30s`).
    let units = ["ns", "us", "µs", "ms", "s", "m", "h"];
    let mut rest = d;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if n == 0 {
            return false;
        }
        rest = &rest[n..];
        match units.iter().filter(|u| rest.starts_with(**u)).max_by_key(|u| u.len()) {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

/// Reads and validates a RequestAuthentication. It never changes a decision: a request's
/// `auth` is the claims the proxy has already verified (SPEC 9.2).
pub(crate) fn request_authentication(obj: &Obj) -> Result<(), LoadError> {
    no_dry_run(obj)?;
    super::fields::check_name(&obj.id.name)?;
    let spec: RawRequestSpec = typed(obj.spec(), "spec")?;
    let targets = [spec.selector.is_some(), spec.target_ref.is_some(), spec.target_refs.is_some()];
    if targets.iter().filter(|t| **t).count() > 1 {
        return Err(invalid("spec", "at most one of selector, targetRef and targetRefs"));
    }
    if let Some(l) = spec.selector.as_ref().and_then(|s| s.match_labels.as_ref()) {
        check_labels(l, "spec.selector.matchLabels")?;
    }
    for (i, r) in spec.jwt_rules.iter().flatten().enumerate() {
        let f = format!("spec.jwtRules[{i}]");
        if r.issuer.as_deref().is_none_or(str::is_empty) && r.jwks_uri.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(&f, "a JWT rule needs an issuer or a jwksUri"));
        }
        if r.audiences.iter().flatten().any(String::is_empty) {
            return Err(invalid(format!("{f}.audiences"), "audiences must be non-empty strings"));
        }
        if let Some(u) = &r.jwks_uri
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(invalid(format!("{f}.jwksUri"), format!("{u:?} is not an http(s) URI")));
        }
        if let Some(j) = &r.jwks
            && serde_json::from_str::<serde_json::Value>(j).map(|v| !v.is_object()).unwrap_or(true)
        {
            return Err(invalid(format!("{f}.jwks"), "jwks must be a JSON Web Key Set (a JSON object)"));
        }
        for (h, fh) in r.from_headers.iter().flatten().enumerate() {
            if fh.name.is_empty() {
                return Err(invalid(format!("{f}.fromHeaders[{h}].name"), "a header name is required"));
            }
            let _ = &fh.prefix;
        }
        if r.from_params.iter().flatten().chain(r.from_cookies.iter().flatten()).any(String::is_empty) {
            return Err(invalid(&f, "fromParams and fromCookies entries must be non-empty"));
        }
        for (h, c) in r.output_claim_to_headers.iter().flatten().enumerate() {
            if c.claim.is_empty() || !header_name_ok(&c.header) {
                return Err(invalid(format!("{f}.outputClaimToHeaders[{h}]"), "needs a claim and a valid header name"));
            }
        }
        if let Some(t) = &r.timeout
            && !duration_ok(t)
        {
            return Err(invalid(format!("{f}.timeout"), format!("{t:?} is not a duration (e.g. 5s)")));
        }
        let _ = (&r.output_payload_to_header, r.forward_original_token);
    }
    Ok(())
}
