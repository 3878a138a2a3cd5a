//! The two words of a verdict that the model, the configuration and decisions share:
//! [`Action`] (allow or deny) and [`Side`] (ingress or egress). They live in the model so
//! that nothing below the decision layer imports from it.

use serde::{Deserialize, Serialize};

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The connection or request may proceed.
    Allow,
    /// It may not.
    Deny,
}

impl Action {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

/// A direction of policy: the destination's ingress or the source's egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The destination endpoint's ingress policy.
    Ingress,
    /// The source endpoint's egress policy.
    Egress,
}

impl Side {
    /// `ingress` or `egress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Ingress => "ingress",
            Side::Egress => "egress",
        }
    }
}
