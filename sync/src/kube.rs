//! The Kubernetes API as a source (kube-rs: `kube`'s client and `kube-runtime`'s watcher).
//!
//! One watcher per kind Palisade reads ([`default_kinds`]), all namespaces, every kind as an
//! `Api<DynamicObject>` with its `ApiResource`, so core kinds and the Calico, Istio and
//! admin-network-policy CRDs are handled alike. Each watcher lists (paginated,
//! [`KubeSource::page_size`] objects a page), then watches from the list's resource version
//! with bookmarks; a dropped watch is watched again from the last resource version, and a
//! `410 Gone` (the version expired) lists again. Errors are sent as [`Event::Error`] and the
//! watcher retries with kube-runtime's default backoff (0.8 s doubling to 30 s, jittered).
//!
//! * Each object is an item with id `kube:<group>/<kind>/<namespace>/<name>`
//!   (`kube:<group>/<kind>/<name>` for cluster-scoped kinds; `core` for the core group, the
//!   CRD group `crd.projectcalico.org` written `projectcalico.org`). [`WatchedKind::scope`] is the
//!   prefix of one kind's ids.
//! * **Before every kind has been listed once nothing is sent** but errors: the first event
//!   is one [`Event::ResyncScoped`] naming every kind's scope, so the engine's first snapshot
//!   has every kind (until then `decide` answers `no_bundle`). Watch events that arrive
//!   meanwhile are folded into that first list.
//! * A relist of one kind (after `410 Gone`) is an [`Event::ResyncScoped`] of that kind's scope
//!   only: objects of that kind that are not in the new list are removed, other kinds are left
//!   alone.
//! * **A kind the API server does not serve** (a CRD that is not installed: the list answers
//!   404) is tried under its next API version if it has one (Calico's `projectcalico.org/v3`,
//!   then the `crd.projectcalico.org/v1` CRDs; Istio's `v1`, then `v1beta1`); when none is
//!   served the kind counts as listed and empty (a cluster without the CRD has no such
//!   objects, so this grants nothing the cluster does not), it is named in
//!   [`Status::unserved`](crate::Status::unserved) through [`Event::Unserved`], and the
//!   watcher keeps listing it with backoff, so a CRD installed later is picked up.
//! * Calico `WorkloadEndpoint` and `Profile` are not watched: in the Kubernetes datastore
//!   Calico derives them from Pods, Namespaces and ServiceAccounts, which are watched, and
//!   one workload described both as a Pod and as a WorkloadEndpoint is a load error (SPEC
//!   9.2). They are the etcd datastore's form ([`crate::etcd`]).

use std::collections::BTreeMap;
use std::path::Path;

use ::kube::api::{Api, ApiResource, DynamicObject};
use ::kube::runtime::WatchStreamExt;
use ::kube::runtime::watcher;
use ::kube::{Client, Config};
use futures::StreamExt;
use palisade::Change;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::Event;

/// `(group, version, kind, plural)` of one API resource.
type Resource = (&'static str, &'static str, &'static str, &'static str);

/// The kinds Palisade reads, each with the API versions to try in order.
const KINDS: &[&[Resource]] = &[
    &[("", "v1", "Namespace", "namespaces")],
    &[("", "v1", "Pod", "pods")],
    &[("", "v1", "ServiceAccount", "serviceaccounts")],
    &[("", "v1", "Service", "services")],
    &[("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices")],
    &[("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies")],
    &[("projectcalico.org", "v3", "Tier", "tiers"), ("crd.projectcalico.org", "v1", "Tier", "tiers")],
    &[
        ("projectcalico.org", "v3", "GlobalNetworkPolicy", "globalnetworkpolicies"),
        ("crd.projectcalico.org", "v1", "GlobalNetworkPolicy", "globalnetworkpolicies"),
    ],
    &[
        ("projectcalico.org", "v3", "NetworkPolicy", "networkpolicies"),
        ("crd.projectcalico.org", "v1", "NetworkPolicy", "networkpolicies"),
    ],
    &[
        ("projectcalico.org", "v3", "StagedGlobalNetworkPolicy", "stagedglobalnetworkpolicies"),
        ("crd.projectcalico.org", "v1", "StagedGlobalNetworkPolicy", "stagedglobalnetworkpolicies"),
    ],
    &[
        ("projectcalico.org", "v3", "StagedNetworkPolicy", "stagednetworkpolicies"),
        ("crd.projectcalico.org", "v1", "StagedNetworkPolicy", "stagednetworkpolicies"),
    ],
    &[
        ("projectcalico.org", "v3", "StagedKubernetesNetworkPolicy", "stagedkubernetesnetworkpolicies"),
        ("crd.projectcalico.org", "v1", "StagedKubernetesNetworkPolicy", "stagedkubernetesnetworkpolicies"),
    ],
    &[
        ("projectcalico.org", "v3", "GlobalNetworkSet", "globalnetworksets"),
        ("crd.projectcalico.org", "v1", "GlobalNetworkSet", "globalnetworksets"),
    ],
    &[
        ("projectcalico.org", "v3", "NetworkSet", "networksets"),
        ("crd.projectcalico.org", "v1", "NetworkSet", "networksets"),
    ],
    &[
        ("projectcalico.org", "v3", "HostEndpoint", "hostendpoints"),
        ("crd.projectcalico.org", "v1", "HostEndpoint", "hostendpoints"),
    ],
    &[
        ("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"),
        ("security.istio.io", "v1beta1", "AuthorizationPolicy", "authorizationpolicies"),
    ],
    &[
        ("security.istio.io", "v1", "PeerAuthentication", "peerauthentications"),
        ("security.istio.io", "v1beta1", "PeerAuthentication", "peerauthentications"),
    ],
    &[
        ("security.istio.io", "v1", "RequestAuthentication", "requestauthentications"),
        ("security.istio.io", "v1beta1", "RequestAuthentication", "requestauthentications"),
    ],
    &[("policy.networking.k8s.io", "v1alpha2", "ClusterNetworkPolicy", "clusternetworkpolicies")],
    &[("policy.networking.k8s.io", "v1alpha1", "AdminNetworkPolicy", "adminnetworkpolicies")],
    &[("policy.networking.k8s.io", "v1alpha1", "BaselineAdminNetworkPolicy", "baselineadminnetworkpolicies")],
];

/// One kind the source watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedKind {
    /// The API resources to try, in order: the first the API server serves is watched (they
    /// must all be the same kind). Never empty in [`default_kinds`].
    pub resources: Vec<ApiResource>,
}

impl WatchedKind {
    /// A kind served under one API resource.
    pub fn new(resource: ApiResource) -> WatchedKind {
        WatchedKind { resources: vec![resource] }
    }

    /// The prefix of this kind's item ids: `kube:<group>/<kind>/` (`core` for the core
    /// group; `crd.projectcalico.org` written `projectcalico.org`, as the loader folds it).
    pub fn scope(&self) -> String {
        let (group, kind) = match self.resources.first() {
            Some(r) => (r.group.as_str(), r.kind.as_str()),
            None => ("", ""),
        };
        let group = match group {
            "" => "core",
            "crd.projectcalico.org" => "projectcalico.org",
            g => g,
        };
        format!("kube:{group}/{kind}/")
    }

    /// `group/version kind`, for messages.
    fn describe(&self) -> String {
        self.resources.iter().map(|r| format!("{} {}", r.api_version, r.plural)).collect::<Vec<_>>().join(" or ")
    }
}

/// Every kind Palisade reads: core v1 Namespace, Pod, ServiceAccount, Service; EndpointSlice;
/// Kubernetes NetworkPolicy; the Calico policy, tier, network set and host endpoint kinds
/// (`projectcalico.org/v3`, else `crd.projectcalico.org/v1`); Istio AuthorizationPolicy,
/// PeerAuthentication, RequestAuthentication (`v1`, else `v1beta1`); ClusterNetworkPolicy
/// (`v1alpha2`), AdminNetworkPolicy and BaselineAdminNetworkPolicy (`v1alpha1`).
pub fn default_kinds() -> Vec<WatchedKind> {
    KINDS
        .iter()
        .map(|versions| WatchedKind {
            resources: versions
                .iter()
                .map(|&(group, version, kind, plural)| ApiResource {
                    group: group.into(),
                    version: version.into(),
                    api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
                    kind: kind.into(),
                    plural: plural.into(),
                })
                .collect(),
        })
        .collect()
}

/// Lists and watches a Kubernetes API server.
#[derive(Clone)]
pub struct KubeSource {
    client: Client,
    /// The kinds watched (default [`default_kinds`]).
    pub kinds: Vec<WatchedKind>,
    /// Objects per page of a list (`limit`; the API server's `continue` token fetches the
    /// next page). Default 500.
    pub page_size: u32,
}

impl std::fmt::Debug for KubeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSource").field("kinds", &self.kinds.len()).field("page_size", &self.page_size).finish()
    }
}

/// Why a client could not be built from a kubeconfig.
pub type ConfigError = Box<dyn std::error::Error + Send + Sync>;

impl KubeSource {
    /// Every kind Palisade reads, through `client` (a real one, or a test's mock service
    /// wrapped by `kube::Client::new`).
    pub fn new(client: Client) -> KubeSource {
        KubeSource { client, kinds: default_kinds(), page_size: 500 }
    }

    /// A source through the default configuration: `$KUBECONFIG` or `~/.kube/config`, else
    /// the in-cluster service account (`kube::Client::try_default`).
    pub async fn try_default() -> Result<KubeSource, ConfigError> {
        Ok(KubeSource::new(Client::try_default().await?))
    }

    /// A source through the kubeconfig file at `path` (its current context).
    pub async fn from_kubeconfig(path: &Path) -> Result<KubeSource, ConfigError> {
        let kubeconfig = ::kube::config::Kubeconfig::read_from(path)?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &::kube::config::KubeConfigOptions::default()).await?;
        Ok(KubeSource::new(Client::try_from(config)?))
    }

    /// Lists and watches every kind until `events` closes: first one [`Event::ResyncScoped`]
    /// of every kind, then upserts and removals, scoped resyncs of one kind after a relist,
    /// [`Event::Unserved`] when the set of unserved kinds changes, and errors.
    pub async fn run(self, events: mpsc::Sender<Event>) {
        let (tx, mut rx) = mpsc::channel::<Msg>(1024);
        let mut tasks = JoinSet::new();
        let config = watcher::Config::default().page_size(self.page_size);
        for (index, kind) in self.kinds.iter().enumerate() {
            tasks.spawn(watch_kind(self.client.clone(), kind.clone(), index, config.clone(), tx.clone()));
        }
        drop(tx);
        let mut state = Coordinator {
            scopes: self.kinds.iter().map(WatchedKind::scope).collect(),
            initial: vec![None; self.kinds.len()],
            synced: false,
            unserved: BTreeMap::new(),
        };
        // The tasks end only if `events` closes (they send to `tx` until it does): returning
        // drops `tasks`, which aborts them.
        while let Some(msg) = rx.recv().await {
            for event in state.take(msg) {
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What a kind's watcher reports to the coordinator.
enum Msg {
    /// A complete list of kind `.0`.
    Listed(usize, Vec<(String, Change)>),
    /// An object of kind `.0` added or changed.
    Upsert(usize, String, Change),
    /// An object of kind `.0` deleted.
    Remove(usize, String),
    /// Kind `.0` is not served (every API version answered 404): `.1` says which.
    Unserved(usize, String),
    /// A watcher error.
    Error(String),
}

/// Holds the first lists until every kind has one, then forwards.
struct Coordinator {
    scopes: Vec<String>,
    /// Before the first complete sync: each kind's list once it has one (item id to change).
    initial: Vec<Option<BTreeMap<String, Change>>>,
    synced: bool,
    /// Unserved kinds: index to message.
    unserved: BTreeMap<usize, String>,
}

impl Coordinator {
    fn unserved_event(&self) -> Event {
        Event::Unserved(self.unserved.values().cloned().collect())
    }

    fn take(&mut self, msg: Msg) -> Vec<Event> {
        let mut out = Vec::new();
        match msg {
            Msg::Error(e) => out.push(Event::Error(e)),
            Msg::Listed(k, items) => {
                if self.unserved.remove(&k).is_some() {
                    out.push(self.unserved_event());
                }
                if self.synced {
                    out.push(Event::ResyncScoped { scopes: vec![self.scopes[k].clone()], items });
                } else {
                    self.initial[k] = Some(items.into_iter().collect());
                }
            }
            Msg::Unserved(k, why) => {
                let changed = self.unserved.get(&k) != Some(&why);
                self.unserved.insert(k, why);
                if changed {
                    out.push(self.unserved_event());
                }
                if self.synced {
                    if changed {
                        out.push(Event::ResyncScoped { scopes: vec![self.scopes[k].clone()], items: Vec::new() });
                    }
                } else {
                    self.initial[k] = Some(BTreeMap::new());
                }
            }
            Msg::Upsert(k, id, c) => {
                if self.synced {
                    out.push(Event::Upsert(id, c));
                } else if let Some(items) = &mut self.initial[k] {
                    items.insert(id, c);
                }
            }
            Msg::Remove(k, id) => {
                if self.synced {
                    out.push(Event::Remove(id));
                } else if let Some(items) = &mut self.initial[k] {
                    items.remove(&id);
                }
            }
        }
        if !self.synced && self.initial.iter().all(Option::is_some) {
            self.synced = true;
            let items = self.initial.iter_mut().filter_map(Option::take).flatten().collect();
            out.push(Event::ResyncScoped { scopes: self.scopes.clone(), items });
        }
        out
    }
}

/// The item id and change for an object of `resource`; `None` for an object without a name.
fn item(scope: &str, resource: &ApiResource, obj: DynamicObject) -> Option<(String, Change)> {
    let id = item_id(scope, &obj)?;
    let mut value = match serde_json::to_value(&obj) {
        Ok(Value::Object(m)) => m,
        _ => return None,
    };
    // List items of built-in kinds come without their type.
    value.entry("apiVersion").or_insert_with(|| Value::String(resource.api_version.clone()));
    value.entry("kind").or_insert_with(|| Value::String(resource.kind.clone()));
    Some((id.clone(), Change::upsert_from(id, Value::Object(value))))
}

fn item_id(scope: &str, obj: &DynamicObject) -> Option<String> {
    let name = obj.metadata.name.as_deref().filter(|n| !n.is_empty())?;
    Some(match obj.metadata.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{scope}{ns}/{name}"),
        None => format!("{scope}{name}"),
    })
}

fn not_found(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::InitialListFailed(::kube::Error::Api(s)) if s.code == 404)
}

/// Watches one kind until the coordinator goes away.
async fn watch_kind(client: Client, kind: WatchedKind, index: usize, config: watcher::Config, tx: mpsc::Sender<Msg>) {
    let scope = kind.scope();
    let mut version = 0;
    'resource: loop {
        let Some(resource) = kind.resources.get(version) else {
            let _ = tx.send(Msg::Unserved(index, format!("{scope}: no API resource to watch"))).await;
            return;
        };
        let api = Api::<DynamicObject>::all_with(client.clone(), resource);
        let mut stream = watcher(api, config.clone()).default_backoff().boxed();
        let mut buffer: Vec<(String, Change)> = Vec::new();
        while let Some(next) = stream.next().await {
            let msg = match next {
                Ok(watcher::Event::Init) => {
                    buffer.clear();
                    continue;
                }
                Ok(watcher::Event::InitApply(obj)) => {
                    buffer.extend(item(&scope, resource, obj));
                    continue;
                }
                Ok(watcher::Event::InitDone) => Msg::Listed(index, std::mem::take(&mut buffer)),
                Ok(watcher::Event::Apply(obj)) => match item(&scope, resource, obj) {
                    Some((id, c)) => Msg::Upsert(index, id, c),
                    None => continue,
                },
                Ok(watcher::Event::Delete(obj)) => match item_id(&scope, &obj) {
                    Some(id) => Msg::Remove(index, id),
                    None => continue,
                },
                Err(e) if not_found(&e) => {
                    if version + 1 < kind.resources.len() {
                        // Not served under this version: try the next one.
                        version += 1;
                        continue 'resource;
                    }
                    Msg::Unserved(
                        index,
                        format!(
                            "{}: not served by the API server (404; CRD not installed?): treated as empty, \
                             listing again with backoff",
                            kind.describe()
                        ),
                    )
                }
                Err(e) => Msg::Error(format!(
                    "kube {} {}: {e} (retrying with backoff)",
                    resource.api_version, resource.plural
                )),
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
        // The watcher's stream does not end; if it ever does, start it again.
        if tx.is_closed() {
            return;
        }
    }
}
