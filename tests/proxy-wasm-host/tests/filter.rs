//! The real filter `.wasm` (built by `scripts/wasm-filter.sh`) driven through the host
//! harness as Envoy drives it: allow, deny by a tier, the stolen certificate, plaintext under
//! `require_peer_identity`, a rejected configuration and fail-closed afterwards,
//! reconfiguration, a large bundle, missing addresses, a TCP listener; and the peer binding:
//! on Istio's inbound listener (`use_remote_address: false`) a stolen certificate with a
//! spoofed `X-Forwarded-For` is still bound to the TCP peer, whatever the listener settings,
//! and without the `peer` network filter every request is denied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use palisade_proxy_wasm_host::{FilterVm, Hcm, Outcome};

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

/// The `peer` network filter's configuration (README, `proxy-wasm/envoy.yaml`).
const PEER: &[u8] = br#"{"listener": "peer"}"#;

/// A VM with the HTTP filter configured with `cfg` and the `peer` network filter in the chain.
fn vm(cfg: &[u8]) -> FilterVm {
    let mut vm = FilterVm::load(&wasm()).expect("the filter loads");
    assert!(vm.configure(cfg).unwrap(), "configuration accepted; logs: {:?}", vm.state().logs);
    assert!(vm.configure_peer_filter(PEER).unwrap(), "peer filter accepted; logs: {:?}", vm.state().logs);
    vm
}

fn get(vm: &mut FilterVm, src: &str, principal: Option<&str>, dst: &str, path: &str) -> Outcome {
    get_xff(vm, src, principal, dst, path, None)
}

/// A GET on a new connection from peer `src`, with an `X-Forwarded-For` header when given.
fn get_xff(vm: &mut FilterVm, src: &str, principal: Option<&str>, dst: &str, path: &str, xff: Option<&str>) -> Outcome {
    vm.set_connection(Some(src), Some(dst), principal, Some("cart.shop.svc.cluster.local"));
    let mut headers = vec![(":method", "GET"), (":path", path), (":authority", "cart.shop"), ("x-request-id", "1")];
    if let Some(x) = xff {
        headers.push(("x-forwarded-for", x));
    }
    vm.http_request(&headers).unwrap()
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
    assert!(vm.configure_peer_filter(PEER).unwrap());
    // Before any configuration: deny.
    let o = get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42");
    assert!(reason(&o).starts_with("no_bundle"));
    for bad in [
        &b"not: [a bundle"[..],
        b"{\"bundle\": \"apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: s}\\n\"}",
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
    // The network filter comes first, before the HTTP connection manager, and both wasm filters
    // have the same vm_config, so Envoy gives them one VM (one per worker).
    let net = text.find("name: envoy.filters.network.wasm").expect("the peer network filter");
    let hcm = text.find("name: envoy.filters.network.http_connection_manager").unwrap();
    let http = text.find("name: envoy.filters.http.wasm").unwrap();
    assert!(net < hcm && hcm < http);
    let vm_config = |from: usize| -> String {
        let at = from + text[from..].find("vm_config:").unwrap();
        let indent = text[..at].rsplit('\n').next().unwrap().len();
        text[at..]
            .lines()
            .skip(1)
            .take_while(|l| l.len() > indent && l[..=indent].trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (net_vm, http_vm) = (vm_config(net), vm_config(http));
    assert!(net_vm.contains("vm_id: palisade") && net_vm.contains("palisade_filter.wasm"), "{net_vm}");
    assert_eq!(net_vm, http_vm, "both filters must share one VM");
    let peer = &text[net..hcm];
    let line = peer.lines().find(|l| l.trim_start().starts_with("value:")).expect("the peer configuration");
    let peer_cfg = line.trim_start().trim_start_matches("value:").trim().trim_matches('\'');

    let start = text.find("value: |\n").expect("the inline plugin configuration") + "value: |\n".len();
    let block: String =
        text[start..].lines().take_while(|l| l.starts_with("                    ")).collect::<Vec<_>>().join("\n");
    let mut vm = FilterVm::load(&wasm()).unwrap();
    assert!(vm.configure(block.trim().as_bytes()).unwrap());
    assert!(vm.configure_peer_filter(peer_cfg.as_bytes()).unwrap(), "{peer_cfg}");
    vm.set_hcm(Hcm::EDGE); // as the example's connection manager is set
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

const PAYMENTS: &str = "spiffe://cluster.local/ns/payments/sa/payments";
/// Every listener setting the connection manager may have: whatever it trusts, the filter's
/// source is the TCP peer.
const LISTENERS: [Hcm; 5] = [
    Hcm::ISTIO_INBOUND,
    Hcm::EDGE,
    Hcm { use_remote_address: false, xff_num_trusted_hops: 1 },
    Hcm { use_remote_address: true, xff_num_trusted_hops: 1 },
    Hcm { use_remote_address: true, xff_num_trusted_hops: 2 },
];

#[test]
fn the_host_derives_the_remote_address_as_envoy_does() {
    // Istio's inbound listener: the rightmost X-Forwarded-For entry, with port 0.
    let h = Hcm::ISTIO_INBOUND;
    assert_eq!(h.remote_address(Some("10.3.0.4:5000"), Some("10.1.0.5")).0.as_deref(), Some("10.1.0.5:0"));
    assert_eq!(h.remote_address(Some("10.3.0.4:5000"), Some("1.2.3.4, 10.1.0.5")).0.as_deref(), Some("10.1.0.5:0"));
    assert_eq!(h.remote_address(Some("10.3.0.4:5000"), Some("fd00::5")).0.as_deref(), Some("[fd00::5]:0"));
    assert_eq!(h.remote_address(Some("10.3.0.4:5000"), Some("junk")).0.as_deref(), Some("10.3.0.4:5000"));
    assert_eq!(h.remote_address(Some("10.3.0.4:5000"), None).0.as_deref(), Some("10.3.0.4:5000"));
    let h = Hcm { use_remote_address: false, xff_num_trusted_hops: 1 };
    assert_eq!(h.remote_address(Some("10.3.0.4:5000"), Some("10.1.0.5,9.9.9.9")).0.as_deref(), Some("10.1.0.5:0"));
    // An edge listener: the peer, and the peer appended to X-Forwarded-For.
    let (remote, xff) = Hcm::EDGE.remote_address(Some("10.3.0.4:5000"), Some("10.1.0.5"));
    assert_eq!((remote.as_deref(), xff.as_deref()), (Some("10.3.0.4:5000"), Some("10.1.0.5,10.3.0.4")));
    // One trusted hop: the entry the hop appended (the header's last one before Envoy appends).
    let h = Hcm { use_remote_address: true, xff_num_trusted_hops: 1 };
    assert_eq!(h.remote_address(Some("10.3.0.4:5000"), Some("10.1.0.5")).0.as_deref(), Some("10.1.0.5:0"));
}

#[test]
fn spoofed_x_forwarded_for_on_istio_inbound_does_not_move_the_binding() {
    let mut vm = vm(&config(&shop_bundle(), ""));
    vm.set_hcm(Hcm::ISTIO_INBOUND);
    // Prometheus' pod presents frontend's stolen certificate and names frontend's pod IP in
    // X-Forwarded-For: Envoy's remote address (`source.address` in the HTTP context) is then
    // 10.1.0.5, which owns that certificate, but the TCP peer is 10.3.0.4.
    let o = get_xff(&mut vm, "10.3.0.4:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42", Some("10.1.0.5"));
    assert_eq!(reason(&o), "identity_mismatch");
    // The same from outside the cluster (an in-cluster identity used from outside), with a list.
    let o = get_xff(
        &mut vm,
        "198.51.100.20:43122",
        Some(FRONTEND),
        "10.1.0.9:8080",
        "/api/cart/42",
        Some("203.0.113.50, 10.1.0.5"),
    );
    assert_eq!(reason(&o), "identity_mismatch");
    // Payments' certificate from payments' IP, spoofed as frontend's, is judged as payments.
    let o = get_xff(&mut vm, "10.2.0.7:43122", Some(PAYMENTS), "10.1.0.9:8080", "/api/cart/42", Some("10.1.0.5"));
    assert_eq!(reason(&o), "end_of_tier", "payments may not call the cart, whatever the header says");
    // The legitimate caller is still allowed, with or without a header naming its own client.
    let o = get_xff(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42", None);
    assert!(o.allowed(), "{o:?} {:?}", vm.state().logs);
    let o = get_xff(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42", Some("192.0.2.44"));
    assert!(o.allowed(), "a client address in X-Forwarded-For does not unbind frontend: {o:?}");
}

#[test]
fn the_binding_holds_whatever_the_listener_trusts() {
    let mut vm = vm(&config(&shop_bundle(), ""));
    for hcm in LISTENERS {
        vm.set_hcm(hcm);
        for xff in ["10.1.0.5", "10.1.0.5, 10.1.0.5", "10.1.0.5,10.1.0.5,10.1.0.5"] {
            let o = get_xff(&mut vm, "10.3.0.4:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/1", Some(xff));
            assert_eq!(reason(&o), "identity_mismatch", "{hcm:?}, X-Forwarded-For: {xff}");
        }
        let o = get_xff(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/1", Some("10.3.0.4"));
        assert!(o.allowed(), "{hcm:?}: {o:?}");
    }
}

#[test]
fn repeated_headers_are_judged_as_envoy_joins_them() {
    // A DENY on `x-evil: 1`: the value is judged whole, as Envoy's matchers see `2,1`, and a
    // DENY written for the joined form catches the repeated header in either order.
    let bundle = format!(
        "{}\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: no-evil, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: cart}}}}\n  action: DENY\n  rules: [{{when: [{{key: 'request.headers[x-evil]', values: ['1', '*,1', '1,*']}}]}}]\n",
        shop_bundle()
    );
    let mut vm = vm(&config(&bundle, ""));
    for order in [["2", "1"], ["1", "2"]] {
        vm.set_connection(
            Some("10.1.0.5:43122"),
            Some("10.1.0.9:8080"),
            Some(FRONTEND),
            Some("cart.shop.svc.cluster.local"),
        );
        let headers = [
            (":method", "GET"),
            (":path", "/api/cart/42"),
            (":authority", "cart.shop"),
            ("x-evil", order[0]),
            ("X-Evil", order[1]),
        ];
        let o = vm.http_request(&headers).unwrap();
        assert_eq!(reason(&o), "rule", "{order:?}: {o:?}");
    }
    let o = get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42");
    assert!(o.allowed(), "{o:?}");
}

#[test]
fn remote_ip_blocks_see_the_header_and_source_rules_do_not() {
    // SPEC 9.3: only `source.remote_ip` may come from a header (Istio `remoteIpBlocks`).
    let bundle = format!(
        "{}\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: banned-clients, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: cart}}}}\n  action: DENY\n  rules: [{{from: [{{source: {{remoteIpBlocks: [192.0.2.0/24]}}}}]}}]\n",
        shop_bundle()
    );
    let mut vm = vm(&config(&bundle, ""));
    vm.set_hcm(Hcm::ISTIO_INBOUND);
    let o = get_xff(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42", Some("192.0.2.44"));
    assert_eq!(reason(&o), "rule", "the client named by the trusted header is banned");
    let o = get_xff(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42", Some("198.51.100.1"));
    assert!(o.allowed(), "{o:?}");
    let o = get_xff(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42", None);
    assert!(o.allowed(), "{o:?}");
}

#[test]
fn without_the_peer_filter_every_request_is_denied() {
    let mut vm = FilterVm::load(&wasm()).unwrap();
    assert!(vm.configure(&config(&shop_bundle(), "")).unwrap());
    for hcm in LISTENERS {
        vm.set_hcm(hcm);
        let o = get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42");
        assert!(reason(&o).starts_with("invalid_request: no TCP peer recorded"), "{hcm:?}: {o:?}");
    }
}

#[test]
fn a_closed_connection_leaves_no_record() {
    let mut vm = vm(&config(&shop_bundle(), ""));
    let o = get(&mut vm, "10.1.0.5:43122", Some(FRONTEND), "10.1.0.9:8080", "/api/cart/42");
    assert!(o.allowed(), "{o:?}");
    // Several streams on one connection (HTTP/1.1 keep-alive, HTTP/2) share its record.
    for _ in 0..3 {
        let o = vm.http_request(&[(":method", "GET"), (":path", "/api/cart/7")]).unwrap();
        assert!(o.allowed(), "{o:?}");
    }
    let id = vm.connection_id();
    vm.close_connection().unwrap();
    // A stream claiming the closed connection's id, with no network filter run, finds nothing.
    vm.remove_peer_filter();
    vm.set_connection(Some("10.1.0.5:43122"), Some("10.1.0.9:8080"), Some(FRONTEND), None);
    vm.set_connection_id(id);
    let o = vm.http_request(&[(":method", "GET"), (":path", "/api/cart/42")]).unwrap();
    assert!(reason(&o).starts_with("invalid_request: no TCP peer recorded"), "{o:?}");
}

#[test]
fn a_connection_whose_peer_is_unreadable_is_not_recorded() {
    let mut vm = vm(&config(&shop_bundle(), ""));
    // The network context cannot read the peer; the HTTP context would read an address from
    // the header (Istio inbound): the request is still denied.
    vm.set_hcm(Hcm::ISTIO_INBOUND);
    vm.set_connection(None, Some("10.1.0.9:8080"), Some(FRONTEND), None);
    let o = vm.http_request(&[(":method", "GET"), (":path", "/api/cart/1"), ("x-forwarded-for", "10.1.0.5")]).unwrap();
    assert!(reason(&o).starts_with("invalid_request: no TCP peer recorded"), "{o:?}");
    assert!(vm.state().logs.iter().any(|(_, m)| m.contains("peer not recorded")));
}

#[test]
fn peer_filter_configuration() {
    let mut vm = FilterVm::load(&wasm()).unwrap();
    for bad in [
        &br#"{"listener": "peer", "direction": "ingress"}"#[..],
        br#"{"listener": "tcp"}"#,
        br#"{"listener": "peer", "bundle": "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"}"#,
    ] {
        assert!(!vm.configure_peer_filter(bad).unwrap(), "{:?} must be rejected", String::from_utf8_lossy(bad));
    }
    assert!(vm.configure_peer_filter(PEER).unwrap());
    // The peer filter decides nothing: it lets a connection from anywhere through.
    assert!(vm.configure(&config(&shop_bundle(), "")).unwrap());
    vm.set_connection(Some("10.1.0.66:1"), Some("10.1.0.9:8080"), None, None);
    let o = vm.http_request(&[(":method", "GET"), (":path", "/")]).unwrap();
    assert!(!o.closed, "the HTTP filter, not the peer filter, answers: {o:?}");
    assert_eq!(reason(&o), "rule");
}
