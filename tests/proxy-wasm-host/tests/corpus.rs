//! `tests/corpus/` through the real filter `.wasm` (built by `scripts/wasm-filter.sh`): each
//! case's bundle as the filter's configuration (`direction: both`); each HTTP request of the
//! corpus driven through the HTTP filter as Envoy drives one (the TCP peer and local address,
//! the peer certificate's URI SAN and the SNI as connection properties, method, path,
//! authority and headers), each TCP request without HTTP through the filter on a TCP listener
//! (`listener: tcp`, deciding per connection); the outcome checked against the case's
//! expected decision: allowed or not, and for a deny the reason (the decision header, or the
//! TCP filter's log line). What the filter cannot express (JWT claims, another protocol, a
//! destination principal, a direction per request, JSON-level errors) is in
//! `tests/corpus/skip/wasm.txt` with the reason; the format: `tests/corpus/README.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../corpus/support/corpus.rs"]
mod corpus;

use std::path::{Path, PathBuf};

use palisade_proxy_wasm_host::FilterVm;
use serde_json::Value;

fn wasm() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = std::env::var("PALISADE_FILTER_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/wasm/wasm32-unknown-unknown/release/palisade_filter.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; build it with scripts/wasm-filter.sh", path.display()))
}

/// The bundle's YAML text: files as given, directories' `*.yaml`/`*.yml`/`*.json` files
/// recursively in name order (as the engine reads a directory).
fn bundle_text(path: &Path, out: &mut Vec<String>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for e in entries {
            let bundle_file = e.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json");
            if e.is_dir() || bundle_file {
                bundle_text(&e, out);
            }
        }
    } else {
        out.push(std::fs::read_to_string(path).unwrap());
    }
}

/// `ip` and `port` as a socket address's text.
fn socket(ip: &str, port: Option<u64>) -> String {
    match (ip.contains(':'), port) {
        (true, Some(p)) => format!("[{ip}]:{p}"),
        (false, Some(p)) => format!("{ip}:{p}"),
        (_, None) => ip.to_string(),
    }
}

/// What an Envoy HTTP filter sees of the request, or why it cannot see this one.
struct Stream {
    peer: String,
    local: String,
    principal: Option<String>,
    sni: Option<String>,
    /// `None`: no HTTP attributes, a TCP connection.
    headers: Option<Vec<(String, String)>>,
}

fn stream(req: &Value) -> Result<Stream, String> {
    let obj = req.as_object().ok_or("not an object")?;
    for key in obj.keys() {
        match key.as_str() {
            "source" | "destination" | "http" | "sni" => {}
            "direction" if req["direction"] == "both" => {}
            "protocol" if req["protocol"] == "TCP" || req["protocol"] == 6 => {}
            other => return Err(format!("the field {other} as given")),
        }
    }
    let (src, dst, http) = (&req["source"], &req["destination"], &req["http"]);
    let ip = |v: &Value| v["ip"].as_str().map(str::to_string).ok_or("an IP that is not a string");
    let port = |v: &Value| -> Result<Option<u64>, String> {
        match &v["port"] {
            Value::Null => Ok(None),
            p => p.as_u64().filter(|p| *p <= 65535).map(Some).ok_or_else(|| format!("the port {p}")),
        }
    };
    for (v, allowed) in [(src, &["ip", "port", "principal"][..]), (dst, &["ip", "port"][..])] {
        let o = v.as_object().ok_or("an end that is not an object")?;
        if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!("the end field {k}"));
        }
    }
    let peer = socket(&ip(src)?, port(src)?.or(Some(43122)));
    let (local, principal) = (socket(&ip(dst)?, port(dst)?), src["principal"].as_str().map(str::to_string));
    let sni = req["sni"].as_str().map(str::to_string);
    let Some(http) = http.as_object() else {
        if !http.is_null() {
            return Err("http that is not an object".into());
        }
        return Ok(Stream { peer, local, principal, sni, headers: None });
    };
    let mut headers = Vec::new();
    for (name, key) in [(":method", "method"), (":path", "path"), (":authority", "host")] {
        match &http.get(key) {
            Some(Value::String(s)) => headers.push((name.to_string(), s.clone())),
            None | Some(Value::Null) => {}
            Some(_) => return Err(format!("http.{key} that is not a string")),
        }
    }
    if let Some(h) = http.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            headers.push((k.clone(), v.as_str().ok_or("a header that is not a string")?.to_string()));
        }
    }
    if let Some(k) = http.keys().find(|k| !["method", "path", "host", "headers"].contains(&k.as_str())) {
        return Err(format!("the http field {k}"));
    }
    Ok(Stream { peer, local, principal, sni, headers: Some(headers) })
}

#[test]
fn every_tcp_case_decides_as_expected_through_the_filter() {
    let dir = corpus::corpus(env!("CARGO_MANIFEST_DIR"));
    let cases = corpus::cases(&dir);
    assert!(cases.len() >= 8, "the corpus is read");
    let skips = corpus::skips(&dir, "wasm", &cases);
    let wasm = wasm();
    let mut failures = Vec::new();
    let mut decided = 0;
    for case in &cases {
        let mut text = Vec::new();
        for p in &case.bundle {
            bundle_text(p, &mut text);
        }
        let config = serde_json::json!({"bundle": text.join("\n---\n"), "direction": "both"}).to_string();
        let mut vm = FilterVm::load(&wasm).expect("the filter loads");
        assert!(
            vm.configure(config.as_bytes()).unwrap(),
            "{}: configuration accepted: {:?}",
            case.name,
            vm.state().logs
        );
        assert!(vm.configure_peer_filter(br#"{"listener": "peer"}"#).unwrap(), "peer filter accepted");
        let tcp_config = serde_json::json!({"bundle": text.join("\n---\n"), "direction": "both", "listener": "tcp"});
        let mut tcp = FilterVm::load(&wasm).expect("the filter loads");
        assert!(tcp.configure(tcp_config.to_string().as_bytes()).unwrap(), "{}: TCP configuration accepted", case.name);
        for (i, (line, expected)) in case.requests.iter().zip(&case.expected).enumerate() {
            let what = format!("{} line {}", case.name, i + 1);
            if skips.contains_key(&(case.name.clone(), i + 1)) {
                continue;
            }
            let req: Value = serde_json::from_str(line).unwrap();
            let s = match stream(&req) {
                Ok(s) => s,
                Err(why) => {
                    failures.push(format!("{what}: the filter cannot express {why}: list it in skip/wasm.txt"));
                    continue;
                }
            };
            let (allowed, why) = match &s.headers {
                Some(h) => {
                    vm.set_connection(Some(&s.peer), Some(&s.local), s.principal.as_deref(), s.sni.as_deref());
                    let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    let o = vm.http_request(&headers).unwrap();
                    let header = o.response.as_ref().and_then(|r| {
                        r.headers.iter().find(|(k, _)| k == "x-palisade-decision").map(|(_, v)| v.clone())
                    });
                    (o.allowed(), header)
                }
                None => {
                    tcp.set_connection(Some(&s.peer), Some(&s.local), s.principal.as_deref(), s.sni.as_deref());
                    let o = tcp.tcp_connection().unwrap();
                    let log = tcp.state().logs.last().map(|(_, m)| m.clone()).unwrap_or_default();
                    (o.allowed(), log.split_once("connection denied: ").map(|(_, why)| why.to_string()))
                }
            };
            let action = if allowed { "allow" } else { "deny" };
            if expected["action"] != action {
                failures.push(format!("{what}: {action} ({why:?}), expected {}", expected["action"]));
            } else if action == "deny" {
                let reason = why.as_deref().unwrap_or("").split(':').next().unwrap_or("");
                if expected["reason"] != reason {
                    failures.push(format!("{what}: reason {why:?}, expected {}", expected["reason"]));
                }
            }
            decided += 1;
        }
        assert!(vm.state().unimplemented.is_empty(), "{:?}", vm.state().unimplemented);
        assert!(tcp.state().unimplemented.is_empty(), "{:?}", tcp.state().unimplemented);
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(decided >= 50, "{decided} requests decided");
}
