//! Calico's etcd v3 datastore as a source (`etcd-client`).
//!
//! Calico in etcd mode keeps each resource as JSON under
//! `/calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>` (namespaced kinds)
//! or `.../<plural>/<name>` (cluster-scoped), as libcalico-go's etcdv3 backend writes it.
//! The source lists the prefix, then watches it from the listed revision; when the watch
//! is lost (etcd restarted, the revision compacted, a member gone) it lists again and sends
//! the whole state as a [`Event::ResyncScoped`] of its prefix, so deletions missed meanwhile
//! are not missed and items other sources sent are left alone.
//! Each key is an item; a value's missing `apiVersion`, `kind`, `metadata.name` or
//! `metadata.namespace` are taken from the key.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, EventType, GetOptions, WatchOptions};
use palisade::Change;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::Event;

/// Calico's resource prefix.
pub const CALICO_PREFIX: &str = "/calico/resources/v3/projectcalico.org/";

/// Calico's plural resource names: `(plural, kind, namespaced)`.
pub const CALICO_KINDS: &[(&str, &str, bool)] = &[
    ("tiers", "Tier", false),
    ("globalnetworkpolicies", "GlobalNetworkPolicy", false),
    ("stagedglobalnetworkpolicies", "StagedGlobalNetworkPolicy", false),
    ("networkpolicies", "NetworkPolicy", true),
    ("stagednetworkpolicies", "StagedNetworkPolicy", true),
    ("stagedkubernetesnetworkpolicies", "StagedKubernetesNetworkPolicy", true),
    ("globalnetworksets", "GlobalNetworkSet", false),
    ("networksets", "NetworkSet", true),
    ("hostendpoints", "HostEndpoint", false),
    ("workloadendpoints", "WorkloadEndpoint", true),
    ("profiles", "Profile", false),
];

/// The item a key is about: `(kind, namespace, name)`, or `None` for a key that is not a
/// Calico resource Palisade reads (IP pools, Felix configuration, nodes...: skipped).
pub fn parse_key(prefix: &str, key: &str) -> Option<(&'static str, Option<String>, String)> {
    let rest = key.strip_prefix(prefix)?;
    let (plural, rest) = rest.split_once('/')?;
    let &(_, kind, namespaced) = CALICO_KINDS.iter().find(|(p, _, _)| *p == plural)?;
    if namespaced {
        let (ns, name) = rest.split_once('/')?;
        Some((kind, Some(ns.to_string()), name.to_string()))
    } else {
        Some((kind, None, rest.to_string()))
    }
}

/// The change for a key's value.
fn change(prefix: &str, key: &str, value: &[u8]) -> Option<Change> {
    let (kind, ns, name) = parse_key(prefix, key)?;
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(value) else {
        // Not a JSON object: let the loader report it, located at the key.
        return Some(Change::upsert_text(key, String::from_utf8_lossy(value)));
    };
    obj.entry("apiVersion").or_insert_with(|| Value::String("projectcalico.org/v3".into()));
    obj.entry("kind").or_insert_with(|| Value::String(kind.into()));
    let meta = obj.entry("metadata").or_insert_with(|| Value::Object(Default::default()));
    if let Value::Object(m) = meta {
        m.entry("name").or_insert_with(|| Value::String(name));
        if let Some(ns) = ns {
            m.entry("namespace").or_insert_with(|| Value::String(ns));
        }
    }
    Some(Change::upsert_from(key, Value::Object(obj)))
}

/// Where to read from.
#[derive(Debug, Clone)]
pub struct EtcdSource {
    /// Client URLs of the members (`http://127.0.0.1:2379`).
    pub endpoints: Vec<String>,
    /// The key prefix (default [`CALICO_PREFIX`]).
    pub prefix: String,
    /// Timeout of each request and of connecting.
    pub timeout: Duration,
    /// First delay before reconnecting; doubles up to 5 s.
    pub backoff: Duration,
    /// How long a watch may be silent before the source asks etcd for progress; when that
    /// request goes unanswered as long again, the connection is taken as lost (a silent
    /// network partition closes nothing) and the source reconnects and lists (default 30 s).
    pub idle: Duration,
}

impl EtcdSource {
    /// Calico's prefix on these endpoints.
    pub fn new(endpoints: Vec<String>) -> EtcdSource {
        EtcdSource {
            endpoints,
            prefix: CALICO_PREFIX.into(),
            timeout: Duration::from_secs(5),
            backoff: Duration::from_millis(100),
            idle: Duration::from_secs(30),
        }
    }

    /// Lists and watches until `events` closes, relisting whenever the watch is lost.
    pub async fn run(self, events: mpsc::Sender<Event>) {
        let mut backoff = self.backoff;
        loop {
            let outcome = self.once(&events).await;
            if events.is_closed() {
                return;
            }
            if let Err(e) = outcome {
                if events.send(Event::Error(format!("etcd: {e} (retrying)"))).await.is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            } else {
                backoff = self.backoff;
            }
        }
    }

    /// One list and watch; returns when the watch ends (an error, or a compaction).
    async fn once(&self, events: &mpsc::Sender<Event>) -> Result<(), String> {
        let options = ConnectOptions::new().with_timeout(self.timeout).with_connect_timeout(self.timeout);
        let mut client = Client::connect(&self.endpoints, Some(options)).await.map_err(|e| e.to_string())?;
        let listed = client
            .get(self.prefix.as_str(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|e| format!("list {}: {e}", self.prefix))?;
        let revision = listed.header().map(|h| h.revision()).unwrap_or_default();
        let mut all = Vec::new();
        for kv in listed.kvs() {
            let Ok(key) = kv.key_str() else { continue };
            if let Some(c) = change(&self.prefix, key, kv.value()) {
                all.push((key.to_string(), c));
            }
        }
        // Scoped to the prefix: a relist replaces this datastore's items, not what other
        // sources or an embedder sent to the same syncer.
        let resync = Event::ResyncScoped { scopes: vec![self.prefix.clone()], items: all };
        events.send(resync).await.map_err(|e| e.to_string())?;
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let mut stream = client.watch(self.prefix.as_str(), Some(options)).await.map_err(|e| format!("watch: {e}"))?;
        let mut asked = false;
        loop {
            let msg = match tokio::time::timeout(self.idle, stream.message()).await {
                // Asked for progress and nothing came back: the connection is dead even if
                // nothing closed it.
                Err(_) if asked => {
                    return Err(format!("watch: no answer to a progress request in {:?}: reconnecting", self.idle));
                }
                // Quiet: ask for progress (etcd answers with an empty response), so a dead
                // connection is noticed.
                Err(_) => {
                    stream.request_progress().await.map_err(|e| format!("watch progress: {e}"))?;
                    asked = true;
                    continue;
                }
                Ok(m) => m.map_err(|e| format!("watch: {e}"))?,
            };
            asked = false;
            let Some(resp) = msg else { return Err("watch stream ended".into()) };
            if resp.compact_revision() > 0 {
                return Err(format!("watch revision compacted (at {}): listing again", resp.compact_revision()));
            }
            if resp.canceled() {
                return Err(format!("watch canceled: {}", resp.cancel_reason()));
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let Ok(key) = kv.key_str() else { continue };
                let event = match ev.event_type() {
                    EventType::Put => match change(&self.prefix, key, kv.value()) {
                        Some(c) => Event::Upsert(key.to_string(), c),
                        None => continue,
                    },
                    EventType::Delete => Event::Remove(key.to_string()),
                };
                events.send(event).await.map_err(|e| e.to_string())?;
            }
        }
    }
}
