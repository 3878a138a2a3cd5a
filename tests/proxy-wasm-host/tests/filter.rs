//! The real filter `.wasm` (built by `scripts/wasm-filter.sh`) driven through the host
//! harness as Envoy drives it: allow, deny by a tier, the stolen certificate, plaintext under
//! `require_peer_identity`, a rejected configuration and fail-closed afterwards,
//! reconfiguration, a large bundle, missing addresses, and a TCP listener.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use palisade_proxy_wasm_host::{FilterVm, Outcome};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wasm() -> Vec<u8> {
    let path = std::env::var("PALISADE_FILTER_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/wasm/wasm32-unknown-unknown/release/palisade_filter.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; build it with scripts/wasm-filter.sh", path.display()))
}

fn shop_bundle() -> String {
    let mut files: Vec<_> = std::fs::read_dir(root().join("examples/shop"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect::<Vec<_>>().join("\n---\n")
}

fn config(bundle: &str, extra: &str) -> Vec<u8> {
    format!(r#"{{"bundle": {}{extra}}}"#, serde_json_string(bundle)).into_bytes()
}

/// A JSON string literal (the harness has no serde dependency).
fn serde_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn vm(cfg: &[u8]) -> FilterVm {
    let mut vm = FilterVm::load(&wasm()).expect("the filter loads");
    assert!(vm.configure(cfg).unwrap(), "configuration accepted; logs: {:?}", vm.state().logs);
    vm
}

fn get(vm: &mut FilterVm, src: &str, principal: Option<&str>, dst: &str, path: &str) -> Outcome {
    vm.set_connection(Some(src), Some(dst), principal, Some("cart.shop.svc.cluster.local"));
    vm.http_request(&[(":method", "GET"), (":path", path), (":authority", "cart.shop"), ("x-request-id", "1")]).unwrap()
}

fn reason(o: &Outcome) -> String {
    let r = o.response.as_ref().expect("a local reply");
    assert_eq!(r.status, 403);
    assert_eq!(r.body, b"RBAC: access denied");
    assert_eq!(o.action, 1, "the stream pauses");
    r.headers.iter().find(|(k, _)| k == "x-palisade-decision").map(|(_, v)| v.clone()).unwrap()
}

const FRONTEND: &str = "spiffe://cluster.local/ns/shop/sa/frontend";

#[test]
fn allow_and_deny_by_tier() {
    let mut vm = vm(&config(&shop_bundle(), ""));
    let o = get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42");
    assert!(o.allowed(), "{o:?} {:?}", vm.state().logs);
    let o = get(&mut vm, "10.1.0.66:43122", None, "10.1.0.9:8080", "/api/cart/42");
    assert_eq!(reason(&o), "rule");
    let o = get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/admin");
    assert_eq!(reason(&o), "end_of_tier");
    assert!(vm.state().unimplemented.is_empty(), "{:?}", vm.state().unimplemented);
}

#[test]
fn stolen_certificate_is_denied() {
    let mut vm = vm(&config(&shop_bundle(), ""));
    let o = get(
        &mut vm,
        "10.1.0.5:43122",
        Some("spiffe://cluster.local/ns/payments/sa/payments"),
        "10.1.0.9:8080",
        "/api/cart/1",
    );
    assert_eq!(reason(&o), "identity_mismatch");
}

#[test]
fn plaintext_under_require_peer_identity() {
    let mut vm = vm(&config(
        &shop_bundle(),
        r#", "config": {"require_peer_identity": true}, "deny_status": 401, "decision_header": "x-why""#,
    ));
    vm.set_connection(Some("10.1.0.5:43122"), Some("10.1.0.9:8080"), None, None);
    let o = vm.http_request(&[(":method", "GET"), (":path", "/api/cart/1")]).unwrap();
    let r = o.response.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.headers, vec![("x-why".to_string(), "missing_peer_identity".to_string())]);
}

#[test]
fn bad_configuration_is_rejected_and_fails_closed() {
    let mut vm = FilterVm::load(&wasm()).unwrap();
    // Before any configuration: deny.
    let o = get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42");
    assert!(reason(&o).starts_with("no_bundle"));
    for bad in [
        &b"not: [a bundle"[..],
        b"{\"bundle\": \"apiVersion: v1\\nkind: Service\\nmetadata: {name: s}\\n\"}",
        b"{\"bundle\": \"x\", \"colour\": 1}",
        &[0xff, 0xfe],
    ] {
        assert!(!vm.configure(bad).unwrap(), "{:?} must be rejected", String::from_utf8_lossy(bad));
    }
    assert!(vm.state().logs.iter().any(|(l, m)| *l >= 3 && m.contains("configuration rejected")));
    let o = get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42");
    assert!(reason(&o).starts_with("no_bundle"), "still fail closed");
}

#[test]
fn reconfiguration_swaps_the_policy_and_a_bad_update_keeps_it() {
    let mut vm = vm(&config(&shop_bundle(), ""));
    assert!(get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42").allowed());
    let locked = format!(
        "{}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: lockdown}}\nspec: {{tier: security, order: 1, selector: all(), ingress: [{{action: Deny}}]}}\n",
        shop_bundle()
    );
    assert!(vm.configure(&config(&locked, "")).unwrap());
    assert_eq!(reason(&get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42")), "rule");
    assert!(!vm.configure(b"{\"bundle\": \"kind: Nope\"}").unwrap());
    assert_eq!(reason(&get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42")), "rule");
    // Plain YAML as the whole configuration is accepted too.
    assert!(vm.configure(shop_bundle().as_bytes()).unwrap());
    assert!(get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42").allowed());
}

#[test]
fn large_bundle() {
    let mut y = String::new();
    for i in 0..2000 {
        y += &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: ns{}, labels: {{app: a{}}}}}\nstatus: {{podIP: 10.{}.{}.{}}}\n---\n",
            i % 20,
            i % 50,
            100 + i / 65536,
            (i / 256) % 256,
            i % 256
        );
    }
    for i in 0..300 {
        y += &format!(
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: p{i}, namespace: ns{}}}\nspec: {{selector: app == 'a{}', ingress: [{{action: Allow, source: {{selector: app == 'a{}'}}}}]}}\n---\n",
            i % 20,
            i % 50,
            (i + 1) % 50
        );
    }
    let mut vm = vm(&config(&y, ""));
    // p1 (a1 in ns1) -> p21 (a21 in ns1)? Use a pair the policies allow: a20 -> a19 in ns19.
    vm.set_connection(Some("10.100.0.20:1000"), Some("10.100.0.19:80"), None, None);
    let o = vm.http_request(&[(":method", "GET"), (":path", "/")]).unwrap();
    assert!(o.response.is_some() || o.allowed());
    vm.set_connection(Some("10.100.0.20:1000"), Some("10.100.0.119:80"), None, None);
    let d = vm.http_request(&[(":method", "GET"), (":path", "/")]).unwrap();
    assert_eq!(reason(&d), "end_of_tier", "a20 may not reach a19 in another namespace");
}

#[test]
fn missing_or_bad_addresses_deny() {
    let mut vm = vm(&config(&shop_bundle(), ""));
    vm.set_connection(None, Some("10.1.0.9:8080"), None, None);
    let o = vm.http_request(&[(":method", "GET"), (":path", "/")]).unwrap();
    assert!(reason(&o).starts_with("invalid_request"));
    vm.set_connection(Some("[fd00::5]:4000"), Some("10.1.0.9:8080"), None, None);
    let o = vm.http_request(&[(":method", "GET"), (":path", "/")]).unwrap();
    assert!(reason(&o).starts_with("invalid_request"), "IPv6 to IPv4");
    vm.set_connection(Some("10.1.0.5:4000"), Some("10.1.0.9:8080"), Some(FRONTEND), None);
    let o = vm.http_request(&[(":method", "GET"), (":path", "/a/%252e%252e/b")]).unwrap();
    assert_eq!(reason(&o), "invalid_request: HTTP path is still percent-encoded after one decoding pass");
    let o = vm.http_request(&[(":path", "/")]).unwrap();
    assert!(reason(&o).starts_with("invalid_request"));
}

#[test]
fn tcp_listener() {
    let mut vm = vm(&config(&shop_bundle(), r#", "listener": "tcp""#));
    vm.set_connection(Some("10.1.0.66:40000"), Some("10.1.0.9:8080"), None, None);
    let o = vm.tcp_connection().unwrap();
    assert!(o.closed && o.action == 1, "quarantined pod: {o:?}");
    // The cart's only allow rule needs HTTP: on a TCP listener that is a deny.
    vm.set_connection(Some("10.1.0.5:40000"), Some("10.1.0.9:8080"), Some(FRONTEND), None);
    let o = vm.tcp_connection().unwrap();
    assert!(o.closed, "an l7_pending allow is a deny on TCP: {:?}", vm.state().logs);
    // DNS-like plain allow: prometheus -> payments metrics.
    vm.set_connection(Some("10.3.0.4:40000"), Some("10.2.0.7:9090"), None, None);
    let o = vm.tcp_connection().unwrap();
    assert!(o.allowed(), "{o:?}");
}

#[test]
fn the_envoy_example_configuration_works() {
    let text = std::fs::read_to_string(root().join("proxy-wasm/envoy.yaml")).unwrap();
    let start = text.find("value: |\n").expect("the inline plugin configuration") + "value: |\n".len();
    let block: String =
        text[start..].lines().take_while(|l| l.starts_with("                    ")).collect::<Vec<_>>().join("\n");
    let mut vm = vm(block.trim().as_bytes());
    let o = get(
        &mut vm,
        "10.1.0.5:50000",
        Some("spiffe://cluster.local/ns/shop/sa/frontend"),
        "10.1.0.9:8080",
        "/api/cart/3",
    );
    assert!(o.allowed(), "{o:?}");
    let o =
        get(&mut vm, "10.1.0.5:50000", Some("spiffe://cluster.local/ns/shop/sa/cart"), "10.1.0.9:8080", "/api/cart/3");
    assert_eq!(reason(&o), "identity_mismatch");
}
