//! The workload in Cedar: one `forbid` per blocked range (`isInRange`), one `permit` per
//! allow rule keyed on the principal entity, with port, method and path prefix (`like`) in
//! the context. Cedar denies by default and a matching `forbid` overrides every `permit`.

use std::fmt::Write as _;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression,
};

use crate::workload::{PeerRequest, Workload};

/// Renders the policy text.
pub fn policies(w: &Workload) -> String {
    let mut p = String::with_capacity(220 * w.n + 1_000);
    for net in &w.blocked {
        let _ = writeln!(p, "forbid(principal, action, resource) when {{ context.src_ip.isInRange(ip(\"{net}\")) }};");
    }
    for r in &w.rules {
        let _ = writeln!(
            p,
            "permit(principal == Workload::\"{}\", action == Action::\"http\", resource == Service::\"api\") \
             when {{ context.port == {}{} }};",
            r.principal,
            r.port,
            if w.http {
                format!(" && context.method == \"{}\" && context.path like \"{}*\"", r.method, r.prefix)
            } else {
                String::new()
            }
        );
    }
    p
}

/// A parsed Cedar policy set with what a caller keeps between requests.
pub struct CedarPeer {
    /// The policies.
    pub policies: PolicySet,
    /// Entities (none are needed: the principal is matched by its UID).
    pub entities: Entities,
    authorizer: Authorizer,
    workload_type: EntityTypeName,
    action: EntityUid,
    resource: EntityUid,
}

/// Errors of the Cedar peer, as text (the peer's own error types vary by stage).
pub type CedarError = String;

impl CedarPeer {
    /// Parses the workload's policies.
    pub fn new(w: &Workload) -> Result<CedarPeer, CedarError> {
        CedarPeer::from_text(&policies(w))
    }

    /// Parses rendered policy text.
    pub fn from_text(text: &str) -> Result<CedarPeer, CedarError> {
        let policies = PolicySet::from_str(text).map_err(|e| e.to_string())?;
        let uid = |t: &str, id: &str| -> Result<EntityUid, CedarError> {
            let t = EntityTypeName::from_str(t).map_err(|e| e.to_string())?;
            Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
        };
        Ok(CedarPeer {
            policies,
            entities: Entities::empty(),
            authorizer: Authorizer::new(),
            workload_type: EntityTypeName::from_str("Workload").map_err(|e| e.to_string())?,
            action: uid("Action", "http")?,
            resource: uid("Service", "api")?,
        })
    }

    /// Builds Cedar's request (principal entity, context record): a caller's per-request work.
    pub fn request(&self, r: &PeerRequest) -> Result<Request, CedarError> {
        let principal = EntityUid::from_type_name_and_id(
            self.workload_type.clone(),
            EntityId::new(r.principal.as_deref().unwrap_or("")),
        );
        let context = Context::from_pairs([
            ("src_ip".to_string(), RestrictedExpression::new_ip(r.src_ip.to_string())),
            ("port".to_string(), RestrictedExpression::new_long(i64::from(r.port))),
            ("method".to_string(), RestrictedExpression::new_string(r.method.clone())),
            ("path".to_string(), RestrictedExpression::new_string(r.path.clone())),
        ])
        .map_err(|e| e.to_string())?;
        Request::new(principal, self.action.clone(), self.resource.clone(), context, None).map_err(|e| e.to_string())
    }

    /// Evaluates a built request (the pure evaluation).
    #[inline]
    pub fn evaluate(&self, req: &Request) -> bool {
        self.authorizer.is_authorized(req, &self.policies, &self.entities).decision() == Decision::Allow
    }

    /// Builds and evaluates (the headline number); a request Cedar rejects is a deny.
    #[inline]
    pub fn decide(&self, r: &PeerRequest) -> bool {
        self.request(r).is_ok_and(|q| self.evaluate(&q))
    }
}
