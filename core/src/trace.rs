//! The tier walk as a list of hits per side, in Calico's flow-log vocabulary.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))] // on the decision path: nothing here may panic

use crate::model::{Bundle, PolicyId, TierId};

/// What a hit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitAction {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
    /// Passed to the next tier.
    Pass,
    /// Logged and went on.
    Log,
}

impl HitAction {
    /// `allow`, `deny`, `pass` or `log`.
    pub fn as_str(self) -> &'static str {
        match self {
            HitAction::Allow => "allow",
            HitAction::Deny => "deny",
            HitAction::Pass => "pass",
            HitAction::Log => "log",
        }
    }
}

/// Where a hit happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitSource {
    /// A rule (or, with rule `-1`, the end-of-tier action attributed to this policy).
    Policy {
        /// The tier.
        tier: TierId,
        /// The policy.
        policy: PolicyId,
    },
    /// The endpoint's namespace profile (`no_policy_action`).
    Profile {
        /// Index of the endpoint whose profile decided.
        endpoint: u32,
    },
}

/// One hit of the tier walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Where.
    pub source: HitSource,
    /// What it did.
    pub action: HitAction,
    /// The rule index; `-1` for an end-of-tier action; `0` for the profile.
    pub rule: i32,
}

/// The hits of each evaluated side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// The source's egress walk, when evaluated.
    pub egress: Option<Vec<Hit>>,
    /// The destination's ingress walk, when evaluated.
    pub ingress: Option<Vec<Hit>>,
}

impl Hit {
    /// The flow-log string `<i>|<tier>|<policy>|<action>|<rule>`.
    pub fn render(&self, index: usize, bundle: &Bundle) -> String {
        match self.source {
            HitSource::Policy { tier, policy } => format!(
                "{index}|{}|{}|{}|{}",
                bundle.tier(tier).map(|t| t.name.as_str()).unwrap_or("?"),
                bundle.policy(policy).map(|p| p.display_name()).unwrap_or_else(|| "?".into()),
                self.action.as_str(),
                self.rule
            ),
            HitSource::Profile { endpoint } => format!(
                "{index}|__PROFILE__|pro:kns.{}|{}|{}",
                bundle.endpoints.get(endpoint as usize).map(|e| e.namespace.as_str()).unwrap_or("?"),
                self.action.as_str(),
                self.rule
            ),
        }
    }
}

/// A sink for hits. The allocation-free `decide` path uses [`NoTrace`]; `explain` uses a
/// [`Trace`].
pub trait Recorder {
    /// Records a hit on `side`.
    fn hit(&mut self, side: crate::Side, hit: Hit);
    /// Marks a side as evaluated.
    fn side(&mut self, side: crate::Side);
}

/// Records nothing.
pub struct NoTrace;

impl Recorder for NoTrace {
    #[inline]
    fn hit(&mut self, _: crate::Side, _: Hit) {}
    #[inline]
    fn side(&mut self, _: crate::Side) {}
}

impl Recorder for Trace {
    fn hit(&mut self, side: crate::Side, hit: Hit) {
        self.side(side);
        let list = match side {
            crate::Side::Egress => &mut self.egress,
            crate::Side::Ingress => &mut self.ingress,
        };
        if let Some(l) = list {
            l.push(hit);
        }
    }

    fn side(&mut self, side: crate::Side) {
        let list = match side {
            crate::Side::Egress => &mut self.egress,
            crate::Side::Ingress => &mut self.ingress,
        };
        if list.is_none() {
            *list = Some(Vec::new());
        }
    }
}
