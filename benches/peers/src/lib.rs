//! Palisade side by side with the engines a user would embed instead, on one workload.
//!
//! [`Workload::generate`] makes the logical policy for N allow rules: a deny tier for
//! blocked source ranges, allow rules on (principal, destination port, method, path
//! prefix), default deny; and the requests that hit the first rule, the last rule, fall
//! through to the default, or come from a blocked range. Each engine gets it in its own
//! language:
//!
//! * [`palisade_peer`]: a Calico tier plus one Istio ALLOW `AuthorizationPolicy` per rule,
//!   with the pods the principals belong to (Palisade binds a principal to its pod's IP);
//! * [`cedar_peer`]: `forbid` per range, `permit` per rule;
//! * [`rego_peer`]: one Rego module over rules held as data, run by regorus' RVM;
//! * [`casbin_peer`]: a casbin model with deny and allow rows;
//! * [`scan`]: a hand-written loop over pre-parsed rules, the floor.
//!
//! ```
//! use palisade_peers::{Shape, Workload};
//! let w = Workload::generate(10);
//! let palisade = palisade_peers::palisade_peer::PalisadePeer::new(&w).unwrap();
//! let scan = palisade_peers::scan::HandScan::new(&w);
//! for shape in Shape::ALL {
//!     let r = w.request(shape);
//!     assert_eq!(palisade.decide(r), r.expect_allow);
//!     assert_eq!(scan.decide(r), r.expect_allow);
//! }
//! ```

pub mod casbin_peer;
pub mod cedar_peer;
pub mod palisade_peer;
pub mod rego_peer;
pub mod scan;
pub mod workload;

pub use workload::{PeerRequest, Shape, Workload};

/// The sizes the benchmarks and the report use.
pub const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
