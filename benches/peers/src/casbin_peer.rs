//! The workload in casbin: one model whose matcher takes deny rows (`ipMatch` on a blocked
//! range) and allow rows (principal, port, method, `keyMatch` on the path prefix); the
//! effect is "some allow and no deny". The L4 workload uses the same model with an empty
//! method and path (`keyMatch("", "*")` holds), which costs casbin two trivial comparisons.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};

use crate::workload::{PeerRequest, Workload};

/// The casbin model (the same for every N).
pub const MODEL: &str = r#"[request_definition]
r = sub, ip, port, method, path

[policy_definition]
p = sub, port, method, path, eft

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = (p.eft == "deny" && ipMatch(r.ip, p.sub)) || (p.eft == "allow" && r.sub == p.sub && r.port == p.port && r.method == p.method && keyMatch(r.path, p.path))
"#;

/// The policy rows: one deny row per blocked range, one allow row per rule.
pub fn rows(w: &Workload) -> Vec<Vec<String>> {
    let deny = w.blocked.iter().map(|n| vec![n.to_string(), "-".into(), "-".into(), "-".into(), "deny".into()]);
    let allow = w.rules.iter().map(|r| {
        vec![r.principal.clone(), r.port.to_string(), r.method.to_string(), format!("{}*", r.prefix), "allow".into()]
    });
    deny.chain(allow).collect()
}

/// casbin's API is async; its memory adapter never waits, so polling to completion on
/// this thread is enough (no runtime).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// A casbin enforcer with the workload loaded.
pub struct CasbinPeer {
    enforcer: Enforcer,
}

/// Errors of the casbin peer.
pub type CasbinError = String;

impl CasbinPeer {
    /// Loads the workload.
    pub fn new(w: &Workload) -> Result<CasbinPeer, CasbinError> {
        CasbinPeer::from_rows(rows(w))
    }

    /// Loads rendered rows.
    pub fn from_rows(rows: Vec<Vec<String>>) -> Result<CasbinPeer, CasbinError> {
        block_on(async {
            let model = DefaultModel::from_str(MODEL).await.map_err(|e| e.to_string())?;
            let mut enforcer = Enforcer::new(model, MemoryAdapter::default()).await.map_err(|e| e.to_string())?;
            enforcer.add_policies(rows).await.map_err(|e| e.to_string())?;
            Ok(CasbinPeer { enforcer })
        })
    }

    /// Builds the request tuple and enforces (the headline number); an error is a deny.
    #[inline]
    pub fn decide(&self, r: &PeerRequest) -> bool {
        let args = (
            r.principal.as_deref().unwrap_or(""),
            r.src_ip.to_string(),
            r.port.to_string(),
            r.method.as_str(),
            r.path.as_str(),
        );
        self.enforcer.enforce(args).unwrap_or(false)
    }
}
