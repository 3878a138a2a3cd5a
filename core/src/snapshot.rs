//! An immutable, compiled policy snapshot: the unit that `arc-swap` replaces on reload.

use std::sync::{Arc, OnceLock};

use crate::compiled::{Overlay, Program};
use crate::config::Config;
use crate::decision::Decision;
use crate::error::LoadError;
use crate::explain::Explanation;
use crate::load::{self, Source};
use crate::model::Bundle;
use crate::reference;
use crate::request::Request;
use crate::trace::{Hit, HitSource, NoTrace, Recorder, Trace};

/// A loaded bundle, ready to decide. Immutable and `Send + Sync`.
///
/// A snapshot is a compiled program and the bundle it was compiled from, shared with the
/// snapshots made from it by incremental pod changes ([`crate::Engine::apply`]), which lay
/// their endpoint changes over the program ([`Snapshot::incremental_changes`]) instead of
/// compiling it again.
#[derive(Debug)]
pub struct Snapshot {
    base: Arc<Base>,
    /// Endpoint changes since `base` was compiled, if any.
    live: Option<Live>,
    config: Config,
    generation: u64,
}

/// A full compile: the program, the bundle it was compiled from, the policies' names.
#[derive(Debug)]
struct Base {
    program: Program,
    /// `<kind>:[<ns>/]<name>` of every policy, by id (for borrowed names in the bindings).
    policy_names: Vec<String>,
    bundle: Bundle,
}

/// Endpoint changes laid over a base, and the bundle they make (built when first asked).
#[derive(Debug)]
struct Live {
    overlay: Overlay,
    /// Objects in the store behind this snapshot.
    objects: usize,
    bundle: OnceLock<Bundle>,
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
        Snapshot {
            base: Arc::new(Base { program, policy_names, bundle }),
            live: None,
            config: config.clone(),
            generation,
        }
    }

    /// A snapshot deciding as this one with `overlay`'s endpoint changes (an overlay started
    /// from [`Snapshot::overlay`]), sharing this one's compiled program.
    pub(crate) fn with_overlay(&self, overlay: Overlay, objects: usize, generation: u64) -> Snapshot {
        Snapshot {
            base: self.base.clone(),
            live: Some(Live { overlay, objects, bundle: OnceLock::new() }),
            config: self.config.clone(),
            generation,
        }
    }

    /// A copy of the endpoint changes laid over the compiled program (empty after a full
    /// compile), to add to for the next snapshot.
    pub(crate) fn overlay(&self) -> Overlay {
        match &self.live {
            Some(l) => l.overlay.clone(),
            None => Overlay::new(&self.base.program),
        }
    }

    /// The compiled program and the bundle it was compiled from (not counting the
    /// overlay's changes): what an [`Overlay`] is built against.
    pub(crate) fn base(&self) -> (&Program, &Bundle) {
        (&self.base.program, &self.base.bundle)
    }

    /// This snapshot compiled again from its own bundle (overlay included), same generation.
    pub(crate) fn compacted(&self) -> Snapshot {
        let bundle = match &self.live {
            // One copy of the model, not one cached here and a copy of that.
            Some(l) if l.bundle.get().is_none() => self.materialize(l),
            _ => self.bundle().clone(),
        };
        Snapshot::from_bundle(bundle, &self.config, self.generation)
    }

    /// The model with the overlay's endpoints: the compiled bundle's other parts copied, its
    /// endpoints those in force (every field named, so a new one is not forgotten).
    fn materialize(&self, live: &Live) -> Bundle {
        let b = &self.base.bundle;
        Bundle {
            tiers: b.tiers.clone(),
            policies: b.policies.clone(),
            endpoints: live.overlay.live_endpoints(b),
            network_sets: b.network_sets.clone(),
            services: b.services.clone(),
            service_members: b.service_members.clone(),
            namespaces: b.namespaces.clone(),
            skipped_documents: b.skipped_documents,
            skipped_kinds: b.skipped_kinds.clone(),
            objects: live.objects,
            peer_authentications: b.peer_authentications,
            request_authentications: b.request_authentications,
        }
    }

    /// Where endpoint `index` (program's or overlay's numbering) stands in
    /// [`Snapshot::bundle`]'s endpoints.
    pub(crate) fn live_index(&self, index: u32) -> u32 {
        self.live.as_ref().map_or(index, |l| l.overlay.live_index(index))
    }

    /// How many endpoint changes this snapshot lays over its compiled program (0 after a
    /// full compile). Incremental pod changes add to it; a full compile starts again at 0.
    pub fn incremental_changes(&self) -> usize {
        self.live.as_ref().map_or(0, |l| l.overlay.len())
    }

    /// The model this snapshot decides with. After incremental pod changes it is built from
    /// the compiled bundle and the changes the first time it is asked for (a copy of the
    /// bundle: `explain`, the reference evaluator and flow logs pay it once per snapshot;
    /// `decide` never does).
    pub fn bundle(&self) -> &Bundle {
        match &self.live {
            None => &self.base.bundle,
            Some(l) => l.bundle.get_or_init(|| self.materialize(l)),
        }
    }

    /// The name of policy `id` (`<kind>:[<ns>/]<name>`), as decisions report it.
    pub fn policy_name(&self, id: impl Into<Option<crate::model::PolicyId>>) -> Option<&str> {
        id.into().and_then(|i| self.base.policy_names.get(i as usize)).map(String::as_str)
    }

    /// The name of tier `id`.
    pub fn tier_name(&self, id: impl Into<Option<crate::model::TierId>>) -> Option<&str> {
        id.into().and_then(|i| self.base.bundle.tier(i)).map(|t| t.name.as_str())
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
        crate::compiled::decide(&self.base.program, self.overlay_ref(), req, self.generation, &mut NoTrace)
    }

    /// Approximate heap bytes held by the compiled program (the model is kept beside it
    /// for names and explanations).
    pub fn program_heap_bytes(&self) -> usize {
        self.base.program.heap_bytes()
    }

    /// Number of tier segments the compiled program indexes by principal or security
    /// identity (for tests of the fast path: the differential test checks it is exercised).
    #[doc(hidden)]
    pub fn indexed_segments(&self) -> usize {
        self.base.program.indexed_segments()
    }

    /// Rules the compiled program's rule indexes key on principals, source identities and
    /// destination identities (for tests of the fast path).
    #[doc(hidden)]
    pub fn keyed_rules(&self) -> [usize; 3] {
        self.base.program.keyed_rules()
    }

    /// Decides with the reference evaluator (for differential testing).
    pub fn decide_reference(&self, req: &Request<'_>) -> Decision {
        reference::evaluate(self.bundle(), &self.config, req, self.generation).0
    }

    /// Decides with the compiled program and records the tier walk.
    pub fn decide_traced(&self, req: &Request<'_>) -> (Decision, Trace) {
        let mut trace = Trace::default();
        let d = self.decide_recorded(req, &mut trace);
        (d, trace)
    }

    /// Decides with the compiled program and records the tier walk into `rec`; allocation-free
    /// when the recorder is (as [`crate::flowlog::FixedTrace`] is).
    pub fn decide_recorded<R: crate::trace::Recorder>(&self, req: &Request<'_>, rec: &mut R) -> Decision {
        match &self.live {
            None => crate::compiled::decide(&self.base.program, None, req, self.generation, rec),
            Some(l) => {
                let mut rec = LiveIndexes { inner: rec, overlay: &l.overlay };
                crate::compiled::decide(&self.base.program, Some(&l.overlay), req, self.generation, &mut rec)
            }
        }
    }

    #[inline]
    fn overlay_ref(&self) -> Option<&Overlay> {
        self.live.as_ref().map(|l| &l.overlay)
    }

    /// Decides with the reference evaluator and records its tier walk.
    pub fn decide_reference_traced(&self, req: &Request<'_>) -> (Decision, Trace) {
        reference::evaluate(self.bundle(), &self.config, req, self.generation)
    }

    /// Decides and explains.
    pub fn explain(&self, req: &Request<'_>) -> Explanation {
        let (d, t) = self.decide_traced(req);
        Explanation::new(self.bundle(), req, d, t)
    }
}

/// Renumbers the endpoint of a profile hit from the program's and overlay's numbering to
/// the position in [`Snapshot::bundle`]'s endpoints, where traces are rendered.
struct LiveIndexes<'a, R> {
    inner: &'a mut R,
    overlay: &'a Overlay,
}

impl<R: Recorder> Recorder for LiveIndexes<'_, R> {
    fn hit(&mut self, side: crate::Side, mut hit: Hit) {
        if let HitSource::Profile { endpoint } = &mut hit.source {
            *endpoint = self.overlay.live_index(*endpoint);
        }
        self.inner.hit(side, hit);
    }

    fn side(&mut self, side: crate::Side) {
        self.inner.side(side);
    }
}
