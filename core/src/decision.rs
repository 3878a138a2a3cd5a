//! The decision: allow or deny, and why. It carries ids, not strings, so that `decide`
//! allocates nothing; names are looked up in the snapshot that made it.

pub use crate::model::{Action, Side};
use crate::model::{PolicyId, TierId};

/// Why the decision is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A rule decided.
    Rule,
    /// A tier that selected the endpoint reached no verdict and its default action denied.
    EndOfTier,
    /// Every tier passed or none applied: the profile default (`no_policy_action`) decided.
    NoPolicy,
    /// The presented principal is not the identity of the workload that owns the IP.
    IdentityMismatch,
    /// `require_peer_identity` is set and a known workload presented no principal.
    MissingPeerIdentity,
    /// The request is malformed.
    InvalidRequest,
    /// Nothing is loaded.
    NoBundle,
}

impl Reason {
    /// The reason's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rule => "rule",
            Reason::EndOfTier => "end_of_tier",
            Reason::NoPolicy => "no_policy",
            Reason::IdentityMismatch => "identity_mismatch",
            Reason::MissingPeerIdentity => "missing_peer_identity",
            Reason::InvalidRequest => "invalid_request",
            Reason::NoBundle => "no_bundle",
        }
    }

    /// Every reason, for exhaustive tests.
    pub const ALL: [Reason; 7] = [
        Reason::Rule,
        Reason::EndOfTier,
        Reason::NoPolicy,
        Reason::IdentityMismatch,
        Reason::MissingPeerIdentity,
        Reason::InvalidRequest,
        Reason::NoBundle,
    ];
}

/// Which end of the connection an identity reason concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// The source.
    Source,
    /// The destination.
    Destination,
}

impl Peer {
    /// `source` or `destination`.
    pub fn as_str(self) -> &'static str {
        match self {
            Peer::Source => "source",
            Peer::Destination => "destination",
        }
    }
}

/// The answer for one request. Cheap to copy; holds ids into the snapshot that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// The side that decided (see the SPEC, section 4).
    pub side: Option<Side>,
    /// The tier of the deciding rule or end-of-tier action.
    pub tier: Option<TierId>,
    /// The policy of the deciding rule, or the first policy of the tier for `end_of_tier`.
    pub policy: Option<PolicyId>,
    /// The rule index; `-1` for an end-of-tier action.
    pub rule: Option<i32>,
    /// For identity reasons: which end's identity failed.
    pub peer: Option<Peer>,
    /// An HTTP-constrained rule allowed a request that carried no HTTP attributes: the
    /// proxy that sees the HTTP request must decide again.
    pub l7_pending: bool,
    /// The verdict had staged policies been enforced, when some staged policy selected
    /// an evaluated endpoint.
    pub staged: Option<Action>,
    /// The snapshot generation that decided (0 when nothing is loaded).
    pub generation: u64,
    /// For `invalid_request`, what was wrong (a static text: deciding never allocates).
    pub detail: Option<&'static str>,
}

impl Decision {
    /// Whether the action is `allow`.
    pub fn allowed(&self) -> bool {
        self.action == Action::Allow
    }

    /// A decision made before any policy: identity, validation and bundle reasons.
    pub fn pre_policy(reason: Reason, peer: Option<Peer>, generation: u64) -> Decision {
        Decision {
            action: Action::Deny,
            reason,
            side: None,
            tier: None,
            policy: None,
            rule: None,
            peer,
            l7_pending: false,
            staged: None,
            generation,
            detail: None,
        }
    }

    /// An `invalid_request` deny with a static explanation.
    pub fn invalid(detail: &'static str, generation: u64) -> Decision {
        Decision { detail: Some(detail), ..Decision::pre_policy(Reason::InvalidRequest, None, generation) }
    }
}
