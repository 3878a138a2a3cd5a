//! The logical workload every engine is given: blocked CIDRs, allow rules on (principal,
//! destination port, method, path prefix), default deny, and the requests that probe it.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// Blocked source ranges (the deny tier). Their number does not grow with N: N counts the
/// allow rules, the part that grows as teams add services.
pub const BLOCKED: [&str; 8] = [
    "192.0.2.0/28",
    "198.51.100.0/26",
    "203.0.113.0/24",
    "100.64.0.0/16",
    "169.254.0.0/16",
    "198.18.0.0/15",
    "240.0.0.0/8",
    "233.252.0.0/24",
];

/// The trust domain of every principal.
pub const TRUST_DOMAIN: &str = "cluster.local";
/// The protected service: its namespace, name, IP and ports.
pub const SERVICE_NAMESPACE: &str = "shop";
/// The protected service's IP.
pub const SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
/// Ports the service listens on; rule `i` uses `PORTS[i % 4]`.
pub const PORTS: [u16; 4] = [8080, 8443, 9090, 9443];
/// Methods; rule `i` uses `METHODS[(i / 4) % 4]`.
pub const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// One allow rule: a caller identity may use one method on one port under one path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// The caller's SPIFFE ID (`spiffe://cluster.local/ns/<ns>/sa/<sa>`).
    pub principal: String,
    /// The caller pod's IP (the identity binding needs the principal's pod).
    pub client_ip: IpAddr,
    /// Namespace of the caller.
    pub namespace: String,
    /// Service account of the caller.
    pub service_account: String,
    /// Destination port.
    pub port: u16,
    /// HTTP method.
    pub method: &'static str,
    /// Path prefix, ending in `/`.
    pub prefix: String,
}

/// Which part of the policy a request exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Allowed by the first allow rule.
    First,
    /// Allowed by the last allow rule only.
    Last,
    /// A known caller with a path no rule allows: every rule is tried, default deny.
    FallThrough,
    /// From a blocked range: the deny tier.
    Blocked,
}

impl Shape {
    /// The shapes the benchmarks time.
    pub const TIMED: [Shape; 3] = [Shape::First, Shape::Last, Shape::FallThrough];
    /// Every shape (the agreement test).
    pub const ALL: [Shape; 4] = [Shape::First, Shape::Last, Shape::FallThrough, Shape::Blocked];

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Shape::First => "first",
            Shape::Last => "last",
            Shape::FallThrough => "fallthrough",
            Shape::Blocked => "blocked",
        }
    }
}

/// An engine-neutral request: what each engine's caller has in hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRequest {
    /// What it probes.
    pub shape: Shape,
    /// The caller's SPIFFE ID, if it presented one.
    pub principal: Option<String>,
    /// Source IP.
    pub src_ip: IpAddr,
    /// Destination IP.
    pub dst_ip: IpAddr,
    /// Destination port.
    pub port: u16,
    /// HTTP method.
    pub method: String,
    /// HTTP path.
    pub path: String,
    /// The verdict the policy means (the agreement test checks every engine against it).
    pub expect_allow: bool,
}

/// The generated workload for one N.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Number of allow rules.
    pub n: usize,
    /// Whether rules and requests carry HTTP (method, path). The L4 variant
    /// ([`Workload::generate_l4`]) has rules on (principal, port) alone, requests without
    /// HTTP (empty method and path), and a fall-through on a port no rule names.
    pub http: bool,
    /// Blocked source ranges.
    pub blocked: Vec<IpNet>,
    /// Allow rules, in order.
    pub rules: Vec<AllowRule>,
    /// Requests, one per [`Shape::ALL`], in that order.
    pub requests: Vec<PeerRequest>,
}

/// The caller pod of rule `i`: 10.2.0.0/16 then 10.3.0.0/16, one address each.
fn client_ip(i: usize) -> IpAddr {
    let i = i as u32 + 1;
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 2, 0, 0)) + i))
}

/// A port no rule names (the L4 fall-through).
pub const UNUSED_PORT: u16 = 7070;

impl Workload {
    /// The L4 variant of [`Workload::generate`]: principal and port only.
    pub fn generate_l4(n: usize) -> Workload {
        let mut w = Workload::generate(n);
        w.http = false;
        for r in &mut w.rules {
            r.method = "";
            r.prefix = String::new();
        }
        for q in &mut w.requests {
            q.method = String::new();
            q.path = String::new();
            if q.shape == Shape::FallThrough {
                q.port = UNUSED_PORT;
            }
        }
        w
    }

    /// The workload with `n` allow rules (deterministic; `n >= 1`).
    pub fn generate(n: usize) -> Workload {
        let n = n.max(1);
        let blocked = BLOCKED.iter().filter_map(|c| c.parse().ok()).collect();
        let rules: Vec<AllowRule> = (0..n)
            .map(|i| {
                let namespace = format!("team{}", i % 16);
                let service_account = format!("client-{i}");
                AllowRule {
                    principal: format!("spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"),
                    client_ip: client_ip(i),
                    namespace,
                    service_account,
                    port: PORTS[i % 4],
                    method: METHODS[(i / 4) % 4],
                    prefix: format!("/api/v1/r{i}/"),
                }
            })
            .collect();
        let hit = |shape, r: &AllowRule, allow| PeerRequest {
            shape,
            principal: Some(r.principal.clone()),
            src_ip: r.client_ip,
            dst_ip: IpAddr::V4(SERVICE_IP),
            port: r.port,
            method: r.method.to_string(),
            path: if allow { format!("{}items/42", r.prefix) } else { "/api/v1/other/items/42".to_string() },
            expect_allow: allow,
        };
        let first = &rules[0];
        let last = &rules[n - 1];
        let requests = vec![
            hit(Shape::First, first, true),
            hit(Shape::Last, last, true),
            hit(Shape::FallThrough, first, false),
            PeerRequest {
                shape: Shape::Blocked,
                principal: None,
                src_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
                ..hit(Shape::Blocked, first, false)
            },
        ];
        Workload { n, http: true, blocked, rules, requests }
    }

    /// The request of one shape.
    pub fn request(&self, shape: Shape) -> &PeerRequest {
        let i = Shape::ALL.iter().position(|&s| s == shape).unwrap_or(0);
        &self.requests[i]
    }
}
