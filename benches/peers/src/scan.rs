//! The floor: a hand-written linear scan over pre-parsed rules, what one would write for a
//! handful of rules with no policy engine at all (no identity binding, no tiers, no trace).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::workload::{PeerRequest, Workload};

struct Rule {
    principal: Box<str>,
    port: u16,
    method: Box<str>,
    prefix: Box<str>,
}

/// Pre-parsed blocked ranges and allow rules.
pub struct HandScan {
    /// Whether rules check method and path (the L4 workload's do not).
    http: bool,
    blocked: Vec<IpNet>,
    rules: Vec<Rule>,
}

impl HandScan {
    /// Builds the scan from the workload.
    pub fn new(w: &Workload) -> HandScan {
        let rules = w
            .rules
            .iter()
            .map(|r| Rule {
                principal: r.principal.as_str().into(),
                port: r.port,
                method: r.method.into(),
                prefix: r.prefix.as_str().into(),
            })
            .collect();
        HandScan { http: w.http, blocked: w.blocked.clone(), rules }
    }

    /// Blocked ranges first, then the first rule that matches allows.
    #[inline]
    pub fn decide_parts(&self, principal: Option<&str>, src: IpAddr, port: u16, method: &str, path: &str) -> bool {
        if self.blocked.iter().any(|n| n.contains(&src)) {
            return false;
        }
        let Some(p) = principal else { return false };
        if !self.http {
            return self.rules.iter().any(|r| r.port == port && *r.principal == *p);
        }
        self.rules
            .iter()
            .any(|r| r.port == port && *r.principal == *p && *r.method == *method && path.starts_with(&*r.prefix))
    }

    /// Decides an engine-neutral request.
    #[inline]
    pub fn decide(&self, r: &PeerRequest) -> bool {
        self.decide_parts(r.principal.as_deref(), r.src_ip, r.port, &r.method, &r.path)
    }
}
