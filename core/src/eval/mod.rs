//! Evaluation: request validation, the reference evaluator, and the trace vocabulary.

pub mod reference;
pub mod trace;
pub(crate) mod validate;

pub use trace::{Hit, HitAction, HitSource, NoTrace, Recorder, Trace};
