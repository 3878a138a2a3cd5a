//! An immutable, compiled policy snapshot: the unit that `arc-swap` replaces on reload.

use crate::compiled::Program;
use crate::config::Config;
use crate::decision::Decision;
use crate::error::LoadError;
use crate::explain::Explanation;
use crate::load::{self, Source};
use crate::model::Bundle;
use crate::reference;
use crate::request::Request;
use crate::trace::{NoTrace, Trace};

/// A loaded bundle, ready to decide. Immutable and `Send + Sync`.
#[derive(Debug)]
pub struct Snapshot {
    program: Program,
    /// `<kind>:[<ns>/]<name>` of every policy, by id (for borrowed names in the bindings).
    policy_names: Vec<String>,
    bundle: Bundle,
    config: Config,
    generation: u64,
}

impl Snapshot {
    /// Loads and compiles sources into a snapshot.
    pub fn build(sources: &[Source<'_>], config: &Config, generation: u64) -> Result<Snapshot, LoadError> {
        let bundle = load::load(sources, config)?;
        Ok(Snapshot::from_bundle(bundle, config, generation))
    }

    /// Compiles an already-loaded bundle.
    pub fn from_bundle(bundle: Bundle, config: &Config, generation: u64) -> Snapshot {
        let program = Program::compile(&bundle, config);
        let policy_names = bundle.policies.iter().map(|p| p.display_name()).collect();
        Snapshot { program, policy_names, bundle, config: config.clone(), generation }
    }

    /// The model this snapshot was compiled from.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// The name of policy `id` (`<kind>:[<ns>/]<name>`), as decisions report it.
    pub fn policy_name(&self, id: impl Into<Option<crate::model::PolicyId>>) -> Option<&str> {
        id.into().and_then(|i| self.policy_names.get(i as usize)).map(String::as_str)
    }

    /// The name of tier `id`.
    pub fn tier_name(&self, id: impl Into<Option<crate::model::TierId>>) -> Option<&str> {
        id.into().and_then(|i| self.bundle.tier(i)).map(|t| t.name.as_str())
    }

    /// The configuration it decides with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Its generation (1 for the first load of an engine).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Decides a request with the compiled program: no lock, no allocation.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        crate::compiled::decide(&self.program, req, self.generation, &mut NoTrace)
    }

    /// Approximate heap bytes held by the compiled program (the model is kept beside it
    /// for names and explanations).
    pub fn program_heap_bytes(&self) -> usize {
        self.program.heap_bytes()
    }

    /// Number of tier segments the compiled program indexes by principal or security
    /// identity (for tests of the fast path: the differential test checks it is exercised).
    #[doc(hidden)]
    pub fn indexed_segments(&self) -> usize {
        self.program.indexed_segments()
    }

    /// Rules the compiled program's rule indexes key on principals, source identities and
    /// destination identities (for tests of the fast path).
    #[doc(hidden)]
    pub fn keyed_rules(&self) -> [usize; 3] {
        self.program.keyed_rules()
    }

    /// Decides with the reference evaluator (for differential testing).
    pub fn decide_reference(&self, req: &Request<'_>) -> Decision {
        reference::evaluate(&self.bundle, &self.config, req, self.generation).0
    }

    /// Decides with the compiled program and records the tier walk.
    pub fn decide_traced(&self, req: &Request<'_>) -> (Decision, Trace) {
        let mut trace = Trace::default();
        let d = crate::compiled::decide(&self.program, req, self.generation, &mut trace);
        (d, trace)
    }

    /// Decides with the compiled program and records the tier walk into `rec`; allocation-free
    /// when the recorder is (as [`crate::flowlog::FixedTrace`] is).
    pub fn decide_recorded<R: crate::trace::Recorder>(&self, req: &Request<'_>, rec: &mut R) -> Decision {
        crate::compiled::decide(&self.program, req, self.generation, rec)
    }

    /// Decides with the reference evaluator and records its tier walk.
    pub fn decide_reference_traced(&self, req: &Request<'_>) -> (Decision, Trace) {
        reference::evaluate(&self.bundle, &self.config, req, self.generation)
    }

    /// Decides and explains.
    pub fn explain(&self, req: &Request<'_>) -> Explanation {
        let (d, t) = self.decide_traced(req);
        Explanation::new(self.bundle(), req, d, t)
    }
}
