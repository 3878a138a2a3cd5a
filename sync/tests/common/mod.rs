//! Test helpers: real etcd members on loopback ports with temporary data directories
//! (killed on drop), and a TCP proxy that can cut a client off from etcd while etcd stays up.
//! Shared by `sources.rs`, `etcd_resilience.rs` and the CLI's `sync` test (`#[path]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether an `etcd` binary is on PATH; prints why the test is skipped when not.
pub fn etcd_available() -> bool {
    if Command::new("etcd").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        eprintln!(
            "SKIPPED: no `etcd` binary on PATH (Debian: apt-get install etcd-server); the etcd source is untested here"
        );
        return false;
    }
    true
}

/// One etcd member: its ports, data directory and (while running) its process.
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    data: PathBuf,
    initial_cluster: String,
    child: Option<Child>,
}

impl Member {
    /// Its client URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    /// Starts it (again, on the same data directory and ports).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let (url, peer) = (self.url(), self.peer_url());
        let child = Command::new("etcd")
            .args(["--name", &self.name, "--data-dir"])
            .arg(&self.data)
            .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster, "--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "palisade-test"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Kills it (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether it is running.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// An etcd cluster of one or more members, killed on drop.
pub struct Etcd {
    pub members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
    }
}

impl Etcd {
    /// The first member's client URL.
    pub fn url(&self) -> String {
        self.members[0].url()
    }

    /// Every member's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.members.iter().map(Member::url).collect()
    }
}

/// Starts an `n`-member cluster on loopback (distinct client and peer ports, one temporary
/// data directory each); `None` (test skipped) without an `etcd` binary.
pub fn start_cluster(n: usize) -> Option<Etcd> {
    if !etcd_available() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut members: Vec<Member> = (1..=n)
        .map(|i| Member {
            name: format!("t{i}"),
            client_port: free_port(),
            peer_port: free_port(),
            data: dir.path().join(format!("data{i}")),
            initial_cluster: String::new(),
            child: None,
        })
        .collect();
    let initial: Vec<String> = members.iter().map(|m| format!("{}={}", m.name, m.peer_url())).collect();
    for m in &mut members {
        m.initial_cluster = initial.join(",");
        m.start();
    }
    Some(Etcd { members, _dir: dir })
}

/// A single-member etcd.
pub fn start_etcd() -> Option<Etcd> {
    start_cluster(1)
}

/// A client of `url` once it answers a read (up to 20 s).
pub async fn etcd_client(url: &str) -> etcd_client::Client {
    for _ in 0..200 {
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(2));
        if let Ok(mut c) = etcd_client::Client::connect([url], Some(opts)).await
            && c.get("/", None).await.is_ok()
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("etcd at {url} did not become ready in 20 s");
}

/// A loopback TCP proxy to `127.0.0.1:target`. [`Proxy::cut`] closes every connection
/// through it and refuses new ones (etcd itself stays up); [`Proxy::freeze`] stops every byte
/// while closing nothing (a silent partition); [`Proxy::heal`] lets them through again.
pub struct Proxy {
    pub url: String,
    up: Arc<AtomicBool>,
    frozen: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

impl Proxy {
    /// Starts it on a free loopback port.
    pub async fn start(target: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let frozen = Arc::new(AtomicBool::new(false));
        let (up2, conns2, frozen2) = (up.clone(), conns.clone(), frozen.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let frozen = frozen2.clone();
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let (ri, wi) = inbound.into_split();
                        let (ro, wo) = outbound.into_split();
                        tokio::join!(pump(ri, wo, frozen.clone()), pump(ro, wi, frozen));
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Proxy { url, up, frozen, conns, accept }
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Holds every byte (in both directions, on every connection, new ones too) and closes
    /// nothing.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Lets connections through again (held bytes are delivered).
    pub fn heal(&self) {
        self.frozen.store(false, Ordering::SeqCst);
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, holding what it read while `frozen`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
