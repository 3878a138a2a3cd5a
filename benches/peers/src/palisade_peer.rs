//! The workload as a Palisade bundle: a Calico tier `blocklist` (deny the blocked ranges,
//! then `Pass`), one Istio ALLOW AuthorizationPolicy per allow rule on the service (Istio's
//! ALLOW layer ends in deny), the caller pods the principals belong to.
//!
//! [`calico_bundle`] is the same logical policy in Calico's own rule form (issue 21): one
//! `NetworkPolicy` on the service with N ingress rules, rule `i` allowing source
//! `serviceAccounts: {names: [client-i]}` (any namespace) on its port, method and path
//! prefix; the `default` tier's end denies the rest.
//!
//! [`k8s_bundle`] is the Kubernetes NetworkPolicy form (L4 only: Kubernetes has no HTTP or
//! principal criteria): one NetworkPolicy on the service with N ingress rules, rule `i`
//! allowing pods labelled `caller: client-i` in namespace `team<i % 16>` on its port.
//! Palisade still binds the presented principal to the caller pod's IP.
//!
//! For the L4 workload ([`Workload::generate_l4`]) every form leaves HTTP out.

use std::fmt::Write as _;

use palisade::{Address, Engine, Headers, Http, Request};

use crate::workload::{PORTS, PeerRequest, SERVICE_IP, SERVICE_NAMESPACE, Workload};

/// Renders the bundle (multi-document YAML).
pub fn bundle(w: &Workload) -> String {
    let mut y = String::with_capacity(600 * w.n + 2_000);
    common(w, &mut y);
    for (i, r) in w.rules.iter().enumerate() {
        let principal = r.principal.strip_prefix("spiffe://").unwrap_or(&r.principal);
        let _ = write!(
            y,
            "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
             metadata: {{name: allow-{i:05}, namespace: {SERVICE_NAMESPACE}}}\n\
             spec:\n  selector: {{matchLabels: {{app: api}}}}\n  action: ALLOW\n  rules:\n\
             \x20 - from: [{{source: {{principals: [\"{principal}\"]}}}}]\n\
             \x20   to: [{{operation: {{ports: [\"{}\"]{}}}}}]\n",
            r.port,
            if w.http { format!(", methods: [{}], paths: [\"{}*\"]", r.method, r.prefix) } else { String::new() }
        );
    }
    y
}

/// The rendered pods and blocklist tier, shared by both forms.
fn common(w: &Workload, y: &mut String) {
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
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: client-{i}, namespace: {}, labels: {{app: client, caller: client-{i}}}}}\n\
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
}

/// The workload in Calico's rule form: one `NetworkPolicy` with N `serviceAccounts` rules.
pub fn calico_bundle(w: &Workload) -> String {
    let mut y = String::with_capacity(400 * w.n + 2_000);
    common(w, &mut y);
    let _ = write!(
        y,
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
         metadata: {{name: allow-callers, namespace: {SERVICE_NAMESPACE}}}\n\
         spec:\n  selector: app == 'api'\n  types: [Ingress]\n  ingress:\n"
    );
    for r in &w.rules {
        // Calico's prefix matches whole segments: `/api/v1/r1` covers `/api/v1/r1/...`.
        let prefix = r.prefix.trim_end_matches('/');
        let _ = write!(
            y,
            "\x20 - action: Allow\n    protocol: TCP\n\
             \x20   source: {{namespaceSelector: all(), serviceAccounts: {{names: [{}]}}}}\n\
             \x20   destination: {{ports: [{}]}}\n{}",
            r.service_account,
            r.port,
            if w.http {
                format!("\x20   http: {{methods: [{}], paths: [{{prefix: \"{prefix}\"}}]}}\n", r.method)
            } else {
                String::new()
            }
        );
    }
    y
}

/// The workload as one Kubernetes NetworkPolicy with N ingress rules (L4: ports only).
pub fn k8s_bundle(w: &Workload) -> String {
    let mut y = String::with_capacity(300 * w.n + 2_000);
    common(w, &mut y);
    let _ = write!(
        y,
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {{name: allow-callers, namespace: {SERVICE_NAMESPACE}}}\n\
         spec:\n  podSelector: {{matchLabels: {{app: api}}}}\n  policyTypes: [Ingress]\n  ingress:\n"
    );
    for (i, r) in w.rules.iter().enumerate() {
        let _ = write!(
            y,
            "\x20 - from: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {}}}}}, \
             podSelector: {{matchLabels: {{caller: client-{i}}}}}}}]\n\
             \x20   ports: [{{protocol: TCP, port: {}}}]\n",
            r.namespace, r.port
        );
    }
    y
}

/// Builds Palisade's borrowed request: what a caller does per request.
#[inline]
pub fn request(r: &PeerRequest) -> Request<'_> {
    let source = Address { ip: r.src_ip, port: Some(40_000), principal: r.principal.as_deref() };
    let destination = Address { ip: r.dst_ip, port: Some(r.port), principal: None };
    // The L4 workload's requests have no method: no HTTP.
    let http = (!r.method.is_empty()).then(|| Http {
        method: &r.method,
        path: &r.path,
        host: None,
        headers: Headers::default(),
    });
    Request { http, ..Request::tcp(source, destination) }
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

    /// Loads the workload in Calico's rule form ([`calico_bundle`]). Calico caps a policy
    /// at 1,024 rules per direction, as Palisade does by default; the limit is raised to N
    /// so that one policy holds every rule, as in the measurement.
    pub fn new_calico(w: &Workload) -> Result<PalisadePeer, palisade::LoadError> {
        PalisadePeer::from_yaml_with(&calico_bundle(w), w.n)
    }

    /// Loads the workload in the Kubernetes NetworkPolicy form ([`k8s_bundle`], L4).
    pub fn new_k8s(w: &Workload) -> Result<PalisadePeer, palisade::LoadError> {
        PalisadePeer::from_yaml_with(&k8s_bundle(w), w.n)
    }

    /// Loads a rendered bundle.
    pub fn from_yaml(yaml: &str) -> Result<PalisadePeer, palisade::LoadError> {
        PalisadePeer::from_yaml_with(yaml, 0)
    }

    /// Loads a rendered bundle allowing at least `max_rules` rules per policy.
    pub fn from_yaml_with(yaml: &str, max_rules: usize) -> Result<PalisadePeer, palisade::LoadError> {
        let mut config = palisade::Config::default();
        config.max_rules_per_policy = config.max_rules_per_policy.max(max_rules);
        let engine = Engine::new(config);
        engine.load_str(yaml)?;
        Ok(PalisadePeer { engine })
    }

    /// Decides one request (building the request included).
    #[inline]
    pub fn decide(&self, r: &PeerRequest) -> bool {
        self.engine.decide(&request(r)).allowed()
    }
}
