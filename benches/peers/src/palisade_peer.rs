//! The workload as a Palisade bundle: a Calico tier `blocklist` (deny the blocked ranges,
//! then `Pass`), one Istio ALLOW AuthorizationPolicy per allow rule on the service (Istio's
//! ALLOW layer ends in deny), the caller pods the principals belong to.

use std::fmt::Write as _;

use palisade::{Address, Engine, Headers, Http, Request};

use crate::workload::{PORTS, PeerRequest, SERVICE_IP, SERVICE_NAMESPACE, Workload};

/// Renders the bundle (multi-document YAML).
pub fn bundle(w: &Workload) -> String {
    let mut y = String::with_capacity(600 * w.n + 2_000);
    let ports: Vec<String> =
        PORTS.iter().enumerate().map(|(i, p)| format!("{{name: http-{i}, containerPort: {p}}}")).collect();
    let _ = write!(
        y,
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: api-0, namespace: {SERVICE_NAMESPACE}, labels: {{app: api}}}}\n\
         spec: {{serviceAccountName: api, containers: [{{name: api, ports: [{}]}}]}}\nstatus: {{podIP: {SERVICE_IP}}}\n",
        ports.join(", ")
    );
    for (i, r) in w.rules.iter().enumerate() {
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: client-{i}, namespace: {}, labels: {{app: client}}}}\n\
             spec: {{serviceAccountName: {}}}\nstatus: {{podIP: {}}}\n",
            r.namespace, r.service_account, r.client_ip
        );
    }
    let nets: Vec<String> = w.blocked.iter().map(|n| format!("\"{n}\"")).collect();
    let _ = write!(
        y,
        "---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: blocklist}}\nspec: {{order: 100}}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: blocklist.blocked-ranges}}\n\
         spec:\n  tier: blocklist\n  order: 10\n  selector: all()\n  types: [Ingress]\n  ingress:\n\
         \x20 - action: Deny\n    source: {{nets: [{}]}}\n  - action: Pass\n",
        nets.join(", ")
    );
    for (i, r) in w.rules.iter().enumerate() {
        let principal = r.principal.strip_prefix("spiffe://").unwrap_or(&r.principal);
        let _ = write!(
            y,
            "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
             metadata: {{name: allow-{i:05}, namespace: {SERVICE_NAMESPACE}}}\n\
             spec:\n  selector: {{matchLabels: {{app: api}}}}\n  action: ALLOW\n  rules:\n\
             \x20 - from: [{{source: {{principals: [\"{principal}\"]}}}}]\n\
             \x20   to: [{{operation: {{ports: [\"{}\"], methods: [{}], paths: [\"{}*\"]}}}}]\n",
            r.port, r.method, r.prefix
        );
    }
    y
}

/// Builds Palisade's borrowed request: what a caller does per request.
#[inline]
pub fn request(r: &PeerRequest) -> Request<'_> {
    let source = Address { ip: r.src_ip, port: Some(40_000), principal: r.principal.as_deref() };
    let destination = Address { ip: r.dst_ip, port: Some(r.port), principal: None };
    let http = Http { method: &r.method, path: &r.path, host: None, headers: Headers::default() };
    Request { http: Some(http), ..Request::tcp(source, destination) }
}

/// A loaded Palisade engine for the workload.
pub struct PalisadePeer {
    /// The engine (snapshots swapped with `arc-swap`).
    pub engine: Engine,
}

impl PalisadePeer {
    /// Loads the workload's bundle.
    pub fn new(w: &Workload) -> Result<PalisadePeer, palisade::LoadError> {
        PalisadePeer::from_yaml(&bundle(w))
    }

    /// Loads a rendered bundle.
    pub fn from_yaml(yaml: &str) -> Result<PalisadePeer, palisade::LoadError> {
        let engine = Engine::new(palisade::Config::default());
        engine.load_str(yaml)?;
        Ok(PalisadePeer { engine })
    }

    /// Decides one request (building the request included).
    #[inline]
    pub fn decide(&self, r: &PeerRequest) -> bool {
        self.engine.decide(&request(r)).allowed()
    }
}
