//! A deterministic synthetic-cluster generator for Palisade's benchmarks.
//!
//! A cluster has `namespaces` x `apps_per_namespace` applications, each with its service
//! account and pods; labels `app`, `team`, `env`, `version`; named ports `http` and
//! `metrics`; global network sets for blocked and partner CIDRs. Policy is spread over
//! tiers as teams write it: a security tier (a few global blocklists, many narrow
//! quarantines), a platform tier (DNS, metrics scraping, team egress rules, then `Pass`),
//! optional compliance and team tiers, and per-application policies in `default` (callers by
//! service account, namespace selectors, HTTP rules on a share).
//!
//! ```
//! let c = palisade_bench::Cluster::generate(&palisade_bench::Size::SMALL);
//! let engine = palisade::Engine::new(palisade::Config::default());
//! engine.load_str(&c.yaml).unwrap();
//! let d = engine.decide(&c.requests.l4_allow.as_request());
//! assert!(d.allowed());
//! ```

pub mod alloc_count;

use std::fmt::Write as _;

use palisade::OwnedRequest;

/// The shape of a synthetic cluster.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Name used in reports.
    pub name: &'static str,
    /// Number of namespaces.
    pub namespaces: usize,
    /// Applications per namespace.
    pub apps_per_namespace: usize,
    /// Total pods.
    pub pods: usize,
    /// Total policies (approximately; the exact count is reported).
    pub policies: usize,
    /// Tiers, counting `default` (3 or 5).
    pub tiers: usize,
    /// Whether a third of the applications use Kubernetes NetworkPolicy and another third add
    /// an Istio AuthorizationPolicy (ALLOW by caller identity) to their Calico policy.
    pub mixed: bool,
}

impl Size {
    /// 50 pods, 10 policies.
    pub const SMALL: Size =
        Size { name: "small", namespaces: 2, apps_per_namespace: 5, pods: 50, policies: 10, tiers: 3, mixed: false };
    /// 5,000 pods, 1,000 policies, 3 tiers.
    pub const MEDIUM: Size = Size {
        name: "medium",
        namespaces: 50,
        apps_per_namespace: 20,
        pods: 5_000,
        policies: 1_000,
        tiers: 3,
        mixed: false,
    };
    /// The medium cluster with a share of Kubernetes and Istio policies.
    pub const MEDIUM_MIXED: Size = Size { name: "medium_mixed", mixed: true, ..Size::MEDIUM };
    /// 100,000 pods, 10,000 policies, 5 tiers.
    pub const LARGE: Size = Size {
        name: "large",
        namespaces: 500,
        apps_per_namespace: 20,
        pods: 100_000,
        policies: 10_000,
        tiers: 5,
        mixed: false,
    };
}

/// Representative requests for a cluster.
#[derive(Debug, Clone)]
pub struct Requests {
    /// Caller pod to callee pod on the `http` port, allowed by the callee's L4 policy.
    pub l4_allow: OwnedRequest,
    /// A pod of another namespace to the same callee: the default tier's end-of-tier deny.
    pub l4_deny: OwnedRequest,
    /// An HTTP request allowed by an HTTP rule.
    pub http_allow: OwnedRequest,
    /// An HTTP request to a path the rule does not allow.
    pub http_deny: OwnedRequest,
    /// The caller's IP presenting another workload's certificate.
    pub stolen: OwnedRequest,
    /// Ingress only (one side), allowed.
    pub ingress_only: OwnedRequest,
    /// In a mixed cluster: a call allowed by a Kubernetes NetworkPolicy.
    pub k8s_allow: Option<OwnedRequest>,
    /// In a mixed cluster: a call that passes an Istio ALLOW, then the Calico policy.
    pub istio_allow: Option<OwnedRequest>,
}

/// A generated cluster: the bundle text and requests against it.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The bundle as multi-document YAML.
    pub yaml: String,
    /// Requests with known outcomes.
    pub requests: Requests,
    /// Number of policies written.
    pub policies: usize,
}

fn pod_ip(i: usize) -> String {
    format!("10.{}.{}.{}", 1 + i / 65_536, (i / 256) % 256, i % 256)
}

fn app_index(size: &Size, ns: usize, app: usize) -> usize {
    ns * size.apps_per_namespace + app
}

/// Index of the first pod of `(ns, app)`.
fn first_pod(size: &Size, ns: usize, app: usize) -> usize {
    app_index(size, ns, app)
}

/// In a mixed cluster: 0 Calico only, 1 Kubernetes, 2 Istio ALLOW plus Calico.
fn mix_kind(ns: usize, app: usize) -> usize {
    (ns * 7 + app) % 3
}

/// Whether the app's default-tier policy uses an HTTP rule.
fn has_http(ns: usize, app: usize) -> bool {
    (ns + app) % 3 == 0
}

fn request(
    src: &str,
    src_principal: Option<&str>,
    dst: &str,
    http: Option<(&str, &str)>,
    direction: &str,
) -> OwnedRequest {
    let principal = src_principal.map(|p| format!(r#", "principal": "{p}""#)).unwrap_or_default();
    let http = http.map(|(m, p)| format!(r#", "http": {{"method": "{m}", "path": "{p}"}}"#)).unwrap_or_default();
    let text = format!(
        r#"{{"direction": "{direction}", "source": {{"ip": "{src}", "port": 43122{principal}}}, "destination": {{"ip": "{dst}", "port": 8080}}{http}}}"#
    );
    match OwnedRequest::from_json(&text) {
        Ok(r) => r,
        Err(e) => unreachable_request(&text, &e),
    }
}

#[cold]
fn unreachable_request(text: &str, e: &palisade::RequestError) -> OwnedRequest {
    // The generator writes these requests itself; a parse failure is a generator bug.
    eprintln!("generator wrote an invalid request {text}: {e}");
    std::process::abort()
}

impl Cluster {
    /// Generates a cluster deterministically.
    pub fn generate(size: &Size) -> Cluster {
        let mut y = String::with_capacity(size.pods * 400 + size.policies * 600);
        let apps = size.namespaces * size.apps_per_namespace;
        let ns_name = |n: usize| format!("ns-{n}");
        let app_name = |a: usize| format!("app-{a}");
        // Namespaces and service accounts.
        for n in 0..size.namespaces {
            let env = if n % 2 == 0 { "prod" } else { "staging" };
            let _ = write!(
                y,
                "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {}, labels: {{team: team-{}, env: {env}}}}}\n---\n",
                ns_name(n),
                n % 10
            );
            for a in 0..size.apps_per_namespace {
                let _ = write!(
                    y,
                    "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {}, namespace: {}, labels: {{team: team-{}}}}}\n---\n",
                    app_name(a),
                    ns_name(n),
                    a % 4
                );
            }
        }
        // Pods, round-robin over applications.
        for i in 0..size.pods {
            let k = i % apps;
            let (n, a) = (k / size.apps_per_namespace, k % size.apps_per_namespace);
            let quarantine = if i % 997 == 996 { ", quarantine: 'true'" } else { "" };
            let _ = write!(
                y,
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {}-{i}, namespace: {}, labels: {{app: {}, team: team-{}, version: v{}{quarantine}}}}}\n\
                 spec: {{serviceAccountName: {}, containers: [{{name: c, ports: [{{name: http, containerPort: 8080}}, {{name: metrics, containerPort: 9090}}]}}]}}\n\
                 status: {{phase: Running, podIP: {}}}\n---\n",
                app_name(a),
                ns_name(n),
                app_name(a),
                a % 4,
                i % 2 + 1,
                app_name(a),
                pod_ip(i)
            );
        }
        // Network sets.
        let sets = (size.policies / 50).max(2);
        for s in 0..sets {
            let role = if s % 2 == 0 { "blocked" } else { "partner" };
            let _ = write!(
                y,
                "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: set-{s}, labels: {{role: {role}, feed: feed-{}}}}}\n\
                 spec: {{nets: [198.{}.{}.0/24, 203.0.{}.0/24]}}\n---\n",
                s % 5,
                18 + s / 256 % 2,
                s % 256,
                s % 256
            );
        }
        // Tiers.
        let mut tiers = vec![("security", 100), ("platform", 200)];
        if size.tiers >= 5 {
            tiers.push(("compliance", 300));
            tiers.push(("team", 400));
        }
        for (t, order) in &tiers {
            let action = if *t == "security" || *t == "compliance" { "Pass" } else { "Deny" };
            let _ = write!(
                y,
                "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {t}}}\nspec: {{order: {order}, defaultAction: {action}}}\n---\n"
            );
        }
        let mut written = 0usize;
        let budget = size.policies;
        // Security: global blocklists, then narrow per-namespace quarantines.
        let security = (budget / 20).max(1);
        for i in 0..security {
            if i < 3 {
                let _ = write!(
                    y,
                    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: block-{i}}}\n\
                     spec: {{tier: security, order: {i}, selector: all(), types: [Ingress, Egress],\n  \
                     ingress: [{{action: Deny, source: {{selector: \"role == 'blocked' && feed == 'feed-{i}'\"}}}}],\n  \
                     egress: [{{action: Deny, destination: {{selector: \"role == 'blocked' && feed == 'feed-{i}'\"}}}}]}}\n---\n"
                );
            } else {
                let n = i % size.namespaces;
                let _ = write!(
                    y,
                    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: quarantine-{i}}}\n\
                     spec: {{tier: security, order: 10, selector: \"quarantine == 'true' && projectcalico.org/namespace == '{}'\", types: [Ingress, Egress],\n  \
                     ingress: [{{action: Log}}, {{action: Deny}}], egress: [{{action: Deny}}]}}\n---\n",
                    ns_name(n)
                );
            }
            written += 1;
        }
        // Platform: DNS, metrics, per-team egress, then pass everything to the next tier.
        let platform = (budget / 30).max(2);
        for i in 0..platform {
            match i {
                0 => {
                    let _ = write!(
                        y,
                        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: pass-to-apps}}\n\
                         spec: {{tier: platform, order: 10000, selector: all(), types: [Ingress, Egress], ingress: [{{action: Pass}}], egress: [{{action: Pass}}]}}\n---\n"
                    );
                }
                1 => {
                    let _ = write!(
                        y,
                        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: allow-dns}}\n\
                         spec: {{tier: platform, order: 100, selector: all(), types: [Egress], egress: [{{action: Allow, protocol: UDP, destination: {{ports: [53]}}}}]}}\n---\n"
                    );
                }
                2 => {
                    let _ = write!(
                        y,
                        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: allow-metrics}}\n\
                         spec: {{tier: platform, order: 200, selector: all(), types: [Ingress],\n  \
                         ingress: [{{action: Allow, protocol: TCP, source: {{namespaceSelector: \"team == 'team-0'\", selector: \"app == 'app-0'\"}}, destination: {{ports: [metrics]}}}}]}}\n---\n"
                    );
                }
                _ => {
                    let team = i % 10;
                    let _ = write!(
                        y,
                        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: team-egress-{i}}}\n\
                         spec: {{tier: platform, order: 300, namespaceSelector: \"team == 'team-{team}'\", selector: \"app == 'app-{}'\", types: [Egress],\n  \
                         egress: [{{action: Allow, protocol: TCP, destination: {{selector: \"role == 'partner'\", ports: [443]}}}}]}}\n---\n",
                        i % size.apps_per_namespace
                    );
                }
            }
            written += 1;
        }
        if size.tiers >= 5 {
            let compliance = budget / 20;
            for i in 0..compliance {
                let n = i % size.namespaces;
                let _ = write!(
                    y,
                    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: pci-{i}}}\n\
                     spec: {{tier: compliance, order: {}, namespaceSelector: \"projectcalico.org/name == '{}'\", selector: \"version == 'v{}'\", types: [Ingress],\n  \
                     ingress: [{{action: Log, protocol: TCP, source: {{notNets: [10.0.0.0/8]}}}}, {{action: Deny, protocol: TCP, source: {{nets: [192.168.0.0/16]}}}}]}}\n---\n",
                    i % 7,
                    ns_name(n),
                    i % 2 + 1
                );
                written += 1;
            }
            let team = budget / 10;
            for i in 0..team {
                let n = i % size.namespaces;
                let a = (i / size.namespaces) % size.apps_per_namespace;
                let _ = write!(
                    y,
                    "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: team-{i}, namespace: {}}}\n\
                     spec: {{tier: team, order: 100, selector: \"app == '{}'\", types: [Ingress],\n  \
                     ingress: [{{action: Pass, source: {{selector: \"app in {{'{}', '{}'}}\"}}}}, {{action: Pass, source: {{namespaceSelector: \"env == 'prod'\"}}}}]}}\n---\n",
                    ns_name(n),
                    app_name(a),
                    app_name((a + 1) % size.apps_per_namespace),
                    app_name((a + 2) % size.apps_per_namespace)
                );
                written += 1;
            }
        }
        // Default tier: one policy per application until the budget is spent.
        let mut i = 0;
        while written < budget && i < apps {
            let (n, a) = (i / size.apps_per_namespace, i % size.apps_per_namespace);
            let caller = (a + 1) % size.apps_per_namespace;
            if size.mixed && mix_kind(n, a) == 1 {
                let _ = write!(
                    y,
                    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {}, namespace: {}}}\n\
                     spec: {{podSelector: {{matchLabels: {{app: {}}}}}, policyTypes: [Ingress, Egress],\n  \
                     ingress: [{{from: [{{podSelector: {{matchLabels: {{app: {}}}}}}}], ports: [{{port: http}}]}}],\n  \
                     egress: [{{to: [{{podSelector: {{matchLabels: {{app: {}}}}}}}], ports: [{{port: 8080}}]}}, {{ports: [{{protocol: UDP}}]}}]}}\n---\n",
                    app_name(a),
                    ns_name(n),
                    app_name(a),
                    app_name(caller),
                    app_name((a + size.apps_per_namespace - 1) % size.apps_per_namespace)
                );
                written += 1;
                i += 1;
                continue;
            }
            if size.mixed && mix_kind(n, a) == 2 {
                let _ = write!(
                    y,
                    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {}, namespace: {}}}\n\
                     spec: {{selector: {{matchLabels: {{app: {}}}}}, rules: [{{from: [{{source: {{principals: [cluster.local/ns/{}/sa/{}]}}}}], to: [{{operation: {{ports: ['8080']}}}}]}}]}}\n---\n",
                    app_name(a),
                    ns_name(n),
                    app_name(a),
                    ns_name(n),
                    app_name(caller)
                );
                written += 1;
            }
            let http = if has_http(n, a) {
                format!(
                    ", http: {{methods: [GET, POST], paths: [{{prefix: /api/{}}}, {{exact: /healthz}}]}}",
                    app_name(a)
                )
            } else {
                String::new()
            };
            let _ = write!(
                y,
                "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: {}, namespace: {}}}\n\
                 spec: {{selector: \"app == '{}'\", types: [Ingress, Egress],\n  \
                 ingress: [{{action: Allow, protocol: TCP, source: {{serviceAccounts: {{names: [{}]}}}}, destination: {{ports: [http]}}{http}}},\n    \
                 {{action: Allow, protocol: TCP, source: {{namespaceSelector: \"team == 'team-{}'\", selector: \"app == '{}'\"}}, destination: {{ports: [8080]}}}}],\n  \
                 egress: [{{action: Allow, protocol: TCP, destination: {{selector: \"app == '{}'\", ports: [8080]}}}}, {{action: Allow, protocol: UDP}}]}}\n---\n",
                app_name(a),
                ns_name(n),
                app_name(a),
                app_name(caller),
                (n + 5) % 10,
                app_name(caller),
                app_name((a + size.apps_per_namespace - 1) % size.apps_per_namespace)
            );
            written += 1;
            i += 1;
        }

        // Requests. The callee is app 1 of namespace 0 (its caller app 2) when it has no HTTP
        // rule, and app 2 of namespace 1 otherwise.
        let pick = |want_http: bool| -> (usize, usize) {
            for n in 0..size.namespaces {
                for a in 0..size.apps_per_namespace {
                    let calico_only = !size.mixed || mix_kind(n, a) == 0;
                    if calico_only && has_http(n, a) == want_http && app_index(size, n, a) < written {
                        return (n, a);
                    }
                }
            }
            (0, 0)
        };
        let principal = |n: usize, a: usize| format!("spiffe://cluster.local/ns/{}/sa/{}", ns_name(n), app_name(a));
        let (ln, la) = pick(false);
        let lc = (la + 1) % size.apps_per_namespace;
        let l4_dst = pod_ip(first_pod(size, ln, la));
        let l4_src = pod_ip(first_pod(size, ln, lc));
        let other_ns = (ln + 1) % size.namespaces;
        let outsider = pod_ip(first_pod(size, other_ns, (la + 3) % size.apps_per_namespace));
        let (hn, ha) = pick(true);
        let hc = (ha + 1) % size.apps_per_namespace;
        let h_dst = pod_ip(first_pod(size, hn, ha));
        let h_src = pod_ip(first_pod(size, hn, hc));
        let api = format!("/api/{}/items", app_name(ha));
        let requests = Requests {
            l4_allow: request(&l4_src, Some(&principal(ln, lc)), &l4_dst, None, "both"),
            l4_deny: request(&outsider, None, &l4_dst, None, "both"),
            http_allow: request(&h_src, Some(&principal(hn, hc)), &h_dst, Some(("GET", &api)), "both"),
            http_deny: request(&h_src, Some(&principal(hn, hc)), &h_dst, Some(("DELETE", "/admin")), "both"),
            stolen: request(&l4_src, Some(&principal(ln, la)), &l4_dst, None, "both"),
            ingress_only: request(&l4_src, Some(&principal(ln, lc)), &l4_dst, None, "ingress"),
            k8s_allow: None,
            istio_allow: None,
        };
        let mut requests = requests;
        if size.mixed {
            let find = |kind: usize| {
                (0..apps)
                    .map(|k| (k / size.apps_per_namespace, k % size.apps_per_namespace))
                    .find(|&(n, a)| mix_kind(n, a) == kind && !has_http(n, a) && app_index(size, n, a) < written)
            };
            for kind in [1, 2] {
                if let Some((n, a)) = find(kind) {
                    let c = (a + 1) % size.apps_per_namespace;
                    let r = request(
                        &pod_ip(first_pod(size, n, c)),
                        Some(&principal(n, c)),
                        &pod_ip(first_pod(size, n, a)),
                        None,
                        "both",
                    );
                    if kind == 1 {
                        requests.k8s_allow = Some(r);
                    } else {
                        requests.istio_allow = Some(r);
                    }
                }
            }
        }
        Cluster { yaml: y, requests, policies: written }
    }
}
