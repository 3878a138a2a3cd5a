//! Evaluation: request validation, the reference evaluator, and the trace vocabulary.

pub mod reference;
mod reference_istio;
pub mod trace;
pub(crate) mod validate;

pub use trace::{Hit, HitAction, HitSource, NoTrace, Recorder, Trace};
