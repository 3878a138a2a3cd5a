//! In-process tier ownership: a policy store in front of an [`Engine`] that hands out
//! writers scoped to tiers (or to a Kubernetes user), for embedders that accept policy from
//! several teams.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use palisade::load::Source;
use palisade::model::Bundle;
use palisade::{Engine, LoadError};

use crate::rbac::{Rbac, User, go_quote};
use crate::review::{Change, Verbs, diff};

/// Why a write was not made. The engine keeps the policy it had.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The new bundle does not load (the message is the loader's).
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The write changes something its writer may not change; one message per change.
    #[error("refused: {}", .0.join("; "))]
    Refused(Vec<String>),
}

/// Who a writer writes as.
#[derive(Debug, Clone)]
pub enum Authority {
    /// The policies of these tiers, and nothing else (no Tier object, no network set).
    Tiers(BTreeSet<String>),
    /// What this Kubernetes user may do under this RBAC, as Calico's API server decides.
    Rbac {
        /// The RBAC objects.
        rbac: Arc<Rbac>,
        /// The user.
        user: User,
        /// The verbs of changes.
        verbs: Verbs,
    },
}

impl Authority {
    /// The refusal of a change, if refused.
    pub fn refusal(&self, c: &Change) -> Option<String> {
        match self {
            Authority::Tiers(tiers) => {
                let allowed = !c.tiers().is_empty() && c.tiers().iter().all(|t| tiers.contains(*t));
                if allowed {
                    return None;
                }
                let what = match &c.namespace {
                    Some(ns) => format!("{} {}/{}", c.kind.name(), ns, c.name),
                    None => format!("{} {}", c.kind.name(), c.name),
                };
                let own: Vec<&str> = tiers.iter().map(String::as_str).collect();
                let outside = c.tiers().iter().find(|t| !tiers.contains(**t)).map(|t| go_quote(t));
                Some(match outside {
                    Some(t) => format!(
                        "{what} {}: tier {t} is not one of this writer's tiers [{}]",
                        c.op.as_str(),
                        own.join(", ")
                    ),
                    None => {
                        format!("{what} {}: not a policy of this writer's tiers [{}]", c.op.as_str(), own.join(", "))
                    }
                })
            }
            Authority::Rbac { rbac, user, verbs } => {
                let v = crate::review::judge(rbac, user, c, verbs);
                v.outcome.denial().map(str::to_string)
            }
        }
    }
}

struct State {
    sources: BTreeMap<String, String>,
    bundle: Bundle,
}

/// The policy of an engine as named sources (`team-a/policies.yaml` ...), changed only
/// through writers. Load through the store only: it compares each write with what it last
/// loaded.
pub struct PolicyStore {
    engine: Arc<Engine>,
    state: Mutex<State>,
}

impl PolicyStore {
    /// A store that loads `sources` into `engine` (as an administrator: unchecked).
    pub fn new(
        engine: Arc<Engine>,
        sources: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Arc<PolicyStore>, WriteError> {
        let sources: BTreeMap<String, String> = sources.into_iter().collect();
        let bundle = load(&engine, &sources)?;
        engine.load(&as_sources(&sources))?;
        Ok(Arc::new(PolicyStore { engine, state: Mutex::new(State { sources, bundle }) }))
    }

    /// The engine decisions are made with.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// A writer that may change the policies of `tiers` only.
    pub fn tier_writer(self: &Arc<Self>, tiers: impl IntoIterator<Item = impl Into<String>>) -> TierWriter {
        TierWriter { store: Arc::clone(self), authority: Authority::Tiers(tiers.into_iter().map(Into::into).collect()) }
    }

    /// A writer that may do what `user` may do under `rbac` (Calico's tier check included).
    pub fn rbac_writer(self: &Arc<Self>, rbac: Arc<Rbac>, user: User) -> TierWriter {
        TierWriter { store: Arc::clone(self), authority: Authority::Rbac { rbac, user, verbs: Verbs::default() } }
    }

    /// The source names in force.
    pub fn source_names(&self) -> Vec<String> {
        self.lock().sources.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(
        &self,
        authority: &Authority,
        edit: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<u64, WriteError> {
        let mut state = self.lock();
        let mut next = state.sources.clone();
        edit(&mut next);
        let bundle = load(&self.engine, &next)?;
        let refusals: Vec<String> = diff(&state.bundle, &bundle).iter().filter_map(|c| authority.refusal(c)).collect();
        if !refusals.is_empty() {
            return Err(WriteError::Refused(refusals));
        }
        let generation = self.engine.load(&as_sources(&next))?;
        *state = State { sources: next, bundle };
        Ok(generation)
    }
}

fn as_sources(s: &BTreeMap<String, String>) -> Vec<Source<'_>> {
    s.iter().map(|(n, t)| Source { name: n, text: t }).collect()
}

fn load(engine: &Engine, s: &BTreeMap<String, String>) -> Result<Bundle, LoadError> {
    palisade::load::load(&as_sources(s), engine.config())
}

/// A handle that writes sources of a [`PolicyStore`], refused when the resulting bundle
/// creates, changes or deletes anything its [`Authority`] does not cover. A refused or
/// failed write changes nothing.
pub struct TierWriter {
    store: Arc<PolicyStore>,
    authority: Authority,
}

impl TierWriter {
    /// Who this writer writes as.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Adds or replaces the source `name`; returns the engine's new generation.
    pub fn put(&self, name: &str, text: &str) -> Result<u64, WriteError> {
        self.store.write(&self.authority, |s| {
            s.insert(name.to_string(), text.to_string());
        })
    }

    /// Removes the source `name` (an unknown name reloads the same policy).
    pub fn remove(&self, name: &str) -> Result<u64, WriteError> {
        self.store.write(&self.authority, |s| {
            s.remove(name);
        })
    }

    /// Replaces every source at once.
    pub fn replace_all(&self, sources: impl IntoIterator<Item = (String, String)>) -> Result<u64, WriteError> {
        let sources: BTreeMap<String, String> = sources.into_iter().collect();
        self.store.write(&self.authority, |s| *s = sources)
    }
}

impl std::fmt::Debug for TierWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierWriter").field("authority", &self.authority).finish()
    }
}
