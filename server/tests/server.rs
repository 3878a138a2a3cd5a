//! The server end to end, in process, on 127.0.0.1 port 0, with tonic clients: the
//! examples/shop decisions as Envoy would ask them, network checks, JWT claims, the policy
//! source (no snapshot, reload, bad update), health, /metrics, the Unix socket, hostile input
//! and graceful shutdown. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use palisade_server::envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use palisade_server::envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use palisade_server::envoy_types::pb::envoy::config::core::v3::{
    Address, HeaderMap, HeaderValue, Metadata, Pipe, SocketAddress,
};
use palisade_server::envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request as AttrRequest,
};
use palisade_server::envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use palisade_server::envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use palisade_server::envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use palisade_server::envoy_types::pb::google::protobuf::{ListValue, Struct, Value, value::Kind};
use palisade_server::{Running, ServeOptions, translate};
use prost::Message;
use tonic::transport::Channel;

const FRONTEND: &str = "spiffe://cluster.local/ns/shop/sa/frontend";
const CART: &str = "spiffe://cluster.local/ns/shop/sa/cart";
const PAYMENTS: &str = "spiffe://cluster.local/ns/payments/sa/payments";
const LIMIT: Duration = Duration::from_secs(20);

fn shop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop")
}

fn opts(bundle: PathBuf) -> ServeOptions {
    ServeOptions {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        metrics: Some("127.0.0.1:0".parse().unwrap()),
        bundles: vec![bundle],
        ..ServeOptions::default()
    }
}

async fn client(r: &Running) -> AuthorizationClient<Channel> {
    let url = format!("http://{}", r.grpc_addrs[0]);
    tokio::time::timeout(LIMIT, AuthorizationClient::connect(url)).await.unwrap().unwrap()
}

fn peer(ip: &str, port: u32, principal: &str) -> Peer {
    Peer {
        address: Some(Address {
            address: Some(AddressKind::SocketAddress(SocketAddress {
                address: ip.to_string(),
                port_specifier: Some(PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }),
        principal: principal.to_string(),
        ..Default::default()
    }
}

fn http_check(src: Peer, dst: Peer, method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let mut h: HashMap<String, String> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    h.insert(":method".into(), method.into());
    h.insert(":path".into(), path.into());
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(src),
            destination: Some(dst),
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    host: "cart.shop".into(),
                    headers: h,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

fn network_check(src: Peer, dst: Peer) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext { source: Some(src), destination: Some(dst), ..Default::default() }),
    }
}

async fn check(c: &mut AuthorizationClient<Channel>, req: CheckRequest) -> CheckResponse {
    tokio::time::timeout(LIMIT, c.check(req)).await.unwrap().unwrap().into_inner()
}

fn code(r: &CheckResponse) -> i32 {
    r.status.as_ref().map_or(-1, |s| s.code)
}

fn meta<'a>(r: &'a CheckResponse, key: &str) -> Option<&'a Kind> {
    r.dynamic_metadata.as_ref()?.fields.get(key)?.kind.as_ref()
}

fn meta_str<'a>(r: &'a CheckResponse, key: &str) -> Option<&'a str> {
    match meta(r, key) {
        Some(Kind::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn header(r: &CheckResponse) -> Option<String> {
    let headers = match r.http_response.as_ref()? {
        HttpResponse::OkResponse(ok) => &ok.headers,
        HttpResponse::DeniedResponse(d) => &d.headers,
        HttpResponse::ErrorResponse(_) => return None,
    };
    headers.iter().filter_map(|h| h.header.as_ref()).find(|h| h.key == "x-palisade-decision").map(|h| h.value.clone())
}

fn assert_denied_403(r: &CheckResponse, reason: &str) {
    assert_eq!(code(r), 7, "{r:?}");
    let Some(HttpResponse::DeniedResponse(d)) = &r.http_response else { panic!("no denied response: {r:?}") };
    assert_eq!(d.status.as_ref().map(|s| s.code), Some(403));
    assert_eq!(d.body, "RBAC: access denied");
    assert_eq!(header(r).as_deref(), Some(format!("deny; reason={reason}; generation={}", gen_of(r)).as_str()));
    assert_eq!(meta_str(r, "reason"), Some(reason));
}

fn gen_of(r: &CheckResponse) -> u64 {
    match meta(r, "generation") {
        Some(Kind::NumberValue(n)) => *n as u64,
        _ => u64::MAX,
    }
}

async fn stop(r: Running) {
    r.shutdown(LIMIT).await.unwrap();
}

#[tokio::test]
async fn shop_http_checks_as_envoy_sends_them() {
    let r = palisade_server::start(opts(shop())).await.unwrap();
    assert_eq!(r.initial_load, Ok(1));
    let mut c = client(&r).await;

    // 1. frontend -> cart GET with frontend's certificate: allow by np:shop/cart-api.
    let ok = check(
        &mut c,
        http_check(peer("10.1.0.5", 43122, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/api/cart/42", &[]),
    )
    .await;
    assert_eq!(code(&ok), 0, "{ok:?}");
    assert!(matches!(ok.http_response, Some(HttpResponse::OkResponse(_))));
    assert_eq!(header(&ok).as_deref(), Some("allow; reason=rule; generation=1"));
    assert_eq!(meta_str(&ok, "policy"), Some("np:shop/cart-api"));
    assert_eq!(meta_str(&ok, "tier"), Some("default"));
    assert_eq!(meta_str(&ok, "side"), Some("ingress"));

    // 3. frontend -> payments POST: deny end_of_tier, the policy in metadata only.
    let d = check(
        &mut c,
        http_check(peer("10.1.0.5", 43122, FRONTEND), peer("10.2.0.7", 8443, PAYMENTS), "POST", "/v1/charges", &[]),
    )
    .await;
    assert_denied_403(&d, "end_of_tier");
    assert_eq!(meta_str(&d, "policy"), Some("np:payments/payments-api"));
    assert!(!header(&d).unwrap_or_default().contains("np:"), "policy names stay out of the 403 header");

    // 4. the stolen certificate: frontend's IP presenting payments' certificate.
    let d = check(
        &mut c,
        http_check(peer("10.1.0.5", 43122, PAYMENTS), peer("10.2.0.7", 8443, PAYMENTS), "POST", "/v1/charges", &[]),
    )
    .await;
    assert_denied_403(&d, "identity_mismatch");
    assert_eq!(meta_str(&d, "peer"), Some("source"));

    // 7. a path that normalises to /admin.
    let d = check(
        &mut c,
        http_check(
            peer("10.1.0.9", 40000, CART),
            peer("10.2.0.7", 8443, PAYMENTS),
            "POST",
            "/v1/refunds/../charges/../../admin",
            &[],
        ),
    )
    .await;
    assert_denied_403(&d, "end_of_tier");

    // A DNS SAN or subject (Envoy's fallback without a URI SAN) is no workload identity:
    // network identity only, so frontend still reaches cart.
    let ok = check(
        &mut c,
        http_check(
            peer("10.1.0.5", 43122, "frontend.shop.svc"),
            peer("10.1.0.9", 8080, CART),
            "GET",
            "/api/cart/42",
            &[],
        ),
    )
    .await;
    assert_eq!(code(&ok), 0, "{ok:?}");
    // A malformed SPIFFE ID is the core's invalid_request.
    let d = check(
        &mut c,
        http_check(
            peer("10.1.0.5", 43122, "spiffe://cluster.local/ns/shop/sa/"),
            peer("10.1.0.9", 8080, CART),
            "GET",
            "/api/cart/42",
            &[],
        ),
    )
    .await;
    assert_denied_403(&d, "invalid_request");
    stop(r).await;
}

#[tokio::test]
async fn source_ip_is_the_tcp_peer_never_a_header() {
    let mut o = opts(shop());
    o.translate.remote_ip_header = Some("x-forwarded-for".into());
    let r = palisade_server::start(o).await.unwrap();
    let mut c = client(&r).await;
    // The quarantined pod 10.1.0.66 claims to be the frontend in every header it can.
    let spoof = [("x-forwarded-for", "10.1.0.5"), ("x-real-ip", "10.1.0.5"), ("x-envoy-external-address", "10.1.0.5")];
    let d = check(
        &mut c,
        http_check(peer("10.1.0.66", 5000, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/api/cart/42", &spoof),
    )
    .await;
    assert_eq!(code(&d), 7, "{d:?}");
    assert_eq!(meta_str(&d, "policy"), Some("gnp:block-quarantine"));
    // A remote-IP header whose last element is not an IP is refused, not ignored.
    let d = check(
        &mut c,
        http_check(
            peer("10.1.0.5", 5000, FRONTEND),
            peer("10.1.0.9", 8080, CART),
            "GET",
            "/api/cart/42",
            &[("x-forwarded-for", "10.0.0.1, nonsense")],
        ),
    )
    .await;
    assert_denied_403(&d, "invalid_request");
    stop(r).await;
}

#[tokio::test]
async fn network_checks_and_l7_pending() {
    let r = palisade_server::start(opts(shop())).await.unwrap();
    let mut c = client(&r).await;
    // 9. Prometheus -> payments metrics port: allow, no HTTP response part.
    let ok = check(
        &mut c,
        network_check(
            peer("10.3.0.4", 40000, "spiffe://cluster.local/ns/monitoring/sa/prometheus"),
            peer("10.2.0.7", 9090, PAYMENTS),
        ),
    )
    .await;
    assert_eq!(code(&ok), 0, "{ok:?}");
    assert!(ok.http_response.is_none());
    assert_eq!(meta_str(&ok, "policy"), Some("gnp:allow-metrics-scraping"));
    // 6. cart -> payments without HTTP: the core allows with l7_pending; at a network check
    // nobody decides again, so the server denies.
    let d = check(&mut c, network_check(peer("10.1.0.9", 40000, CART), peer("10.2.0.7", 8443, PAYMENTS))).await;
    assert_eq!(code(&d), 7, "{d:?}");
    assert_eq!(meta_str(&d, "reason"), Some("l7_pending"));
    assert_eq!(meta(&d, "l7_pending"), Some(&Kind::BoolValue(true)));
    // 10. the threat-intel address.
    let d = check(&mut c, network_check(peer("203.0.113.9", 40000, ""), peer("10.1.0.9", 8080, CART))).await;
    assert_eq!(code(&d), 7);
    assert_eq!(meta_str(&d, "policy"), Some("gnp:block-threat-intel"));
    stop(r).await;
}

const JWT_BUNDLE: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: store, labels: {app: api}}
spec: {serviceAccountName: api}
status: {podIP: 10.30.0.10}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: alice-only, namespace: store}
spec:
  selector: {matchLabels: {app: api}}
  action: ALLOW
  rules:
  - from: [{source: {requestPrincipals: ['https://issuer.example/alice']}}]
    when: [{key: 'request.auth.claims[groups]', values: [admins]}]
";

fn jwt_metadata(sub: &str, groups: &[&str]) -> Metadata {
    let s = |v: &str| Value { kind: Some(Kind::StringValue(v.into())) };
    let payload = Struct {
        fields: [
            ("iss".to_string(), s("https://issuer.example")),
            ("sub".to_string(), s(sub)),
            ("aud".to_string(), s("store")),
            ("exp".to_string(), Value { kind: Some(Kind::NumberValue(2_000_000_000.0)) }),
            (
                "groups".to_string(),
                Value { kind: Some(Kind::ListValue(ListValue { values: groups.iter().map(|g| s(g)).collect() })) },
            ),
        ]
        .into_iter()
        .collect(),
    };
    let ns = Struct {
        fields: [("https://issuer.example".to_string(), Value { kind: Some(Kind::StructValue(payload)) })]
            .into_iter()
            .collect(),
    };
    Metadata {
        filter_metadata: [(translate::JWT_AUTHN_NAMESPACE.to_string(), ns)].into_iter().collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn jwt_claims_from_jwt_authn_metadata() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.yaml"), JWT_BUNDLE).unwrap();
    let r = palisade_server::start(opts(dir.path().to_path_buf())).await.unwrap();
    assert!(r.initial_load.is_ok(), "{:?}", r.initial_load);
    let mut c = client(&r).await;
    let with = |sub: &str, groups: &[&str]| {
        let mut req = http_check(peer("192.0.2.10", 5000, ""), peer("10.30.0.10", 8443, ""), "GET", "/", &[]);
        if let Some(a) = req.attributes.as_mut() {
            a.metadata_context = Some(jwt_metadata(sub, groups));
        }
        req
    };
    assert_eq!(code(&check(&mut c, with("alice", &["admins"])).await), 0);
    assert_eq!(code(&check(&mut c, with("alice", &["users"])).await), 7);
    assert_eq!(code(&check(&mut c, with("bob", &["admins"])).await), 7);
    let no_token = http_check(peer("192.0.2.10", 5000, ""), peer("10.30.0.10", 8443, ""), "GET", "/", &[]);
    assert_eq!(code(&check(&mut c, no_token).await), 7);
    stop(r).await;
}

async fn health(r: &Running, service: &str) -> i32 {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let url = format!("http://{}", r.grpc_addrs[0]);
    let channel = tokio::time::timeout(LIMIT, Channel::from_shared(url).unwrap().connect()).await.unwrap().unwrap();
    let mut h = HealthClient::new(channel);
    let resp = tokio::time::timeout(LIMIT, h.check(HealthCheckRequest { service: service.into() })).await.unwrap();
    resp.unwrap().into_inner().status
}

async fn wait_for_generation(r: &Running, generation: u64) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while r.engine.snapshot().map_or(0, |s| s.generation()) < generation {
        assert!(tokio::time::Instant::now() < deadline, "generation {generation} never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const TINY: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
status: {podIP: 10.0.0.2}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [80]}}]
";

#[tokio::test]
async fn no_snapshot_denies_then_reload_then_bad_update_keeps_the_good_one() {
    const SERVING: i32 = 1;
    const NOT_SERVING: i32 = 2;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.yaml");
    std::fs::write(&file, "kind: [not a bundle").unwrap();
    let r = palisade_server::start(opts(dir.path().to_path_buf())).await.unwrap();
    assert!(r.initial_load.is_err());
    let mut c = client(&r).await;
    let req = || network_check(peer("10.0.0.1", 5000, ""), peer("10.0.0.2", 80, ""));
    let d = check(&mut c, req()).await;
    assert_eq!((code(&d), meta_str(&d, "reason")), (7, Some("no_bundle")));
    assert_eq!(health(&r, "").await, NOT_SERVING);
    assert_eq!(health(&r, "envoy.service.auth.v3.Authorization").await, NOT_SERVING);

    std::fs::write(&file, TINY).unwrap();
    wait_for_generation(&r, 1).await;
    let ok = check(&mut c, req()).await;
    assert_eq!((code(&ok), gen_of(&ok)), (0, 1), "{ok:?}");
    assert_eq!(health(&r, "").await, SERVING);

    // A bad update is refused; generation 1 keeps deciding.
    std::fs::write(
        &file,
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: x}\nspec: {order: nonsense}\n",
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !r.metrics.render().contains("palisade_bundle_loads_total{result=\"error\"} 2") {
        assert!(tokio::time::Instant::now() < deadline, "{}", r.metrics.render());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ok = check(&mut c, req()).await;
    assert_eq!((code(&ok), gen_of(&ok)), (0, 1));
    assert_eq!(health(&r, "").await, SERVING);

    // Metrics over HTTP.
    let text = http_get(r.metrics_addr.unwrap(), "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("palisade_checks_total{kind=\"network\",action=\"deny\",reason=\"no_bundle\"} 1"), "{text}");
    assert!(text.contains("palisade_checks_total{kind=\"network\",action=\"allow\",reason=\"rule\"} 2"), "{text}");
    assert!(text.contains("palisade_snapshot_generation 1"), "{text}");
    assert!(text.contains("palisade_check_duration_seconds_bucket"), "{text}");
    stop(r).await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(LIMIT, tokio::net::TcpStream::connect(addr)).await.unwrap().unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(LIMIT, s.read_to_string(&mut out)).await.unwrap().unwrap();
    out
}

#[tokio::test]
async fn reload_under_load_drops_no_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.yaml");
    std::fs::write(&file, TINY).unwrap();
    let r = palisade_server::start(opts(dir.path().to_path_buf())).await.unwrap();
    let c = client(&r).await;
    let mut workers = Vec::new();
    for _ in 0..8 {
        let mut c = c.clone();
        workers.push(tokio::spawn(async move {
            let mut generations = Vec::new();
            for _ in 0..150 {
                let resp = c.check(network_check(peer("10.0.0.1", 5000, ""), peer("10.0.0.2", 80, ""))).await;
                let resp = resp.unwrap().into_inner();
                assert_eq!(code(&resp), 0, "{resp:?}");
                generations.push(gen_of(&resp));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            generations
        }));
    }
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(&file, format!("{TINY}# update {i}\n")).unwrap();
    }
    let mut max = 0;
    for w in workers {
        let g = tokio::time::timeout(LIMIT, w).await.unwrap().unwrap();
        assert!(g.windows(2).all(|p| p[0] <= p[1]), "generations go forward: {g:?}");
        max = max.max(*g.last().unwrap());
    }
    assert!(max >= 2, "the reloads were seen (last generation {max})");
    stop(r).await;
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("palisade.sock");
    let o = ServeOptions { listen: vec![], unix: Some(sock.clone()), ..opts(shop()) };
    let r = palisade_server::start(o).await.unwrap();
    let path = sock.clone();
    let endpoint = tonic::transport::Endpoint::try_from("http://[::]:50051").unwrap();
    let channel =
        endpoint.connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }));
    let channel = tokio::time::timeout(LIMIT, channel).await.unwrap().unwrap();
    let mut c = AuthorizationClient::new(channel);
    let ok = check(
        &mut c,
        http_check(peer("10.1.0.5", 43122, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/api/cart/42", &[]),
    )
    .await;
    assert_eq!(code(&ok), 0, "{ok:?}");
    stop(r).await;
}

// ---------------------------------------------------------------------------------------
// Hostile input: every one answered or refused, and the server answers the next check.

async fn still_answers(c: &mut AuthorizationClient<Channel>) {
    let ok = check(
        c,
        http_check(peer("10.1.0.5", 43122, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/api/cart/42", &[]),
    )
    .await;
    assert_eq!(code(&ok), 0, "{ok:?}");
}

#[tokio::test]
async fn hostile_missing_and_odd_attributes() {
    let r = palisade_server::start(opts(shop())).await.unwrap();
    let mut c = client(&r).await;
    let src = || peer("10.1.0.5", 43122, FRONTEND);
    let dst = || peer("10.1.0.9", 8080, CART);
    let mut cases: Vec<CheckRequest> = vec![
        CheckRequest::default(),
        CheckRequest { attributes: Some(AttributeContext::default()) },
        network_check(Peer::default(), dst()),
        network_check(src(), Peer::default()),
        network_check(peer("not-an-ip", 1, ""), dst()),
        network_check(peer("10.1.0.5", 70000, ""), dst()),
        network_check(src(), peer("10.1.0.9", 70000, "")),
        network_check(peer("::1", 1, ""), dst()),
        http_check(src(), dst(), "", "", &[]),
        http_check(src(), dst(), "GET", "no-slash", &[]),
        http_check(src(), dst(), "GET", "/%ff%fe", &[]),
        http_check(src(), dst(), "GET", "/a%00b", &[]),
        http_check(src(), dst(), "GET", "/a%2fb", &[]),
    ];
    let mut pipe = network_check(src(), dst());
    if let Some(a) = pipe.attributes.as_mut() {
        a.source = Some(Peer {
            address: Some(Address { address: Some(AddressKind::Pipe(Pipe { path: "/tmp/x".into(), mode: 0 })) }),
            ..Default::default()
        });
    }
    cases.push(pipe);
    // Raw headers that are not UTF-8 (encode_raw_headers).
    let mut raw = http_check(src(), dst(), "GET", "/api/cart/42", &[]);
    if let Some(h) = raw.attributes.as_mut().and_then(|a| a.request.as_mut()).and_then(|r| r.http.as_mut()) {
        h.headers.clear();
        h.header_map = Some(HeaderMap {
            headers: vec![HeaderValue { key: "x-bin".into(), raw_value: vec![0xff, 0xfe], ..Default::default() }],
        });
    }
    cases.push(raw);
    // Two different verified JWT payloads.
    let mut two = http_check(src(), dst(), "GET", "/api/cart/42", &[]);
    if let Some(a) = two.attributes.as_mut() {
        let mut m = jwt_metadata("alice", &[]);
        let other = jwt_metadata("bob", &[]);
        let ns = m.filter_metadata.get_mut(translate::JWT_AUTHN_NAMESPACE).unwrap();
        let bob = other.filter_metadata[translate::JWT_AUTHN_NAMESPACE].fields["https://issuer.example"].clone();
        ns.fields.insert("second".into(), bob);
        a.metadata_context = Some(m);
    }
    cases.push(two);
    for (i, req) in cases.into_iter().enumerate() {
        let resp = check(&mut c, req).await;
        assert_eq!(code(&resp), 7, "case {i}: {resp:?}");
        assert!(
            matches!(meta_str(&resp, "reason"), Some("invalid_request") | Some("identity_mismatch")),
            "case {i}: {resp:?}"
        );
    }
    still_answers(&mut c).await;
    stop(r).await;
}

#[tokio::test]
async fn hostile_huge_headers_and_oversized_messages() {
    let mut o = opts(shop());
    o.max_message_bytes = 2 * 1024 * 1024;
    let r = palisade_server::start(o).await.unwrap();
    let mut c = client(&r).await;
    let src = || peer("10.1.0.5", 43122, FRONTEND);
    let dst = || peer("10.1.0.9", 8080, CART);
    // One 1 MiB header value, and 20,000 headers: answered.
    let big = "v".repeat(1024 * 1024);
    let resp = check(&mut c, http_check(src(), dst(), "GET", "/api/cart/42", &[("x-big", big.as_str())])).await;
    assert_eq!(code(&resp), 0, "{:?}", resp.status);
    let names: Vec<String> = (0..20_000).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let resp = check(&mut c, http_check(src(), dst(), "GET", "/api/cart/42", &many)).await;
    assert_eq!(code(&resp), 0, "{:?}", resp.status);
    // A 3 MiB message is over the limit: refused with a gRPC error, not read whole.
    let huge = "v".repeat(3 * 1024 * 1024);
    let err = tokio::time::timeout(LIMIT, c.check(http_check(src(), dst(), "GET", "/", &[("x-huge", huge.as_str())])))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    // A huge path is the core's to judge; answered.
    let path = format!("/{}", "a/".repeat(200_000));
    let resp = check(&mut c, http_check(src(), dst(), "GET", &path, &[])).await;
    assert!(code(&resp) == 0 || code(&resp) == 7);
    still_answers(&mut c).await;
    stop(r).await;
}

/// A `CheckRequest` as raw bytes: field 1 (attributes) given as a byte string, which is the
/// same wire format as the message, so invalid UTF-8 can be planted in a string field.
#[derive(Clone, PartialEq, prost::Message)]
struct RawCheck {
    #[prost(bytes = "vec", tag = "1")]
    attributes: Vec<u8>,
}

#[tokio::test]
async fn hostile_invalid_utf8_on_the_wire_is_refused() {
    let r = palisade_server::start(opts(shop())).await.unwrap();
    let check_req =
        http_check(peer("10.1.0.5", 43122, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/api/PLACEHOLDER", &[]);
    let mut bytes = check_req.attributes.as_ref().unwrap().encode_to_vec();
    let at = bytes.windows(11).position(|w| w == b"PLACEHOLDER").unwrap();
    bytes[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xc0, 0x80]);
    let channel = Channel::from_shared(format!("http://{}", r.grpc_addrs[0])).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    tokio::time::timeout(LIMIT, grpc.ready()).await.unwrap().unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/envoy.service.auth.v3.Authorization/Check");
    let codec: tonic_prost::ProstCodec<RawCheck, CheckResponse> = tonic_prost::ProstCodec::default();
    let res = tokio::time::timeout(LIMIT, grpc.unary(tonic::Request::new(RawCheck { attributes: bytes }), path, codec))
        .await
        .unwrap();
    let err = res.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Internal, "{err:?}");
    let mut c = AuthorizationClient::new(channel);
    still_answers(&mut c).await;
    stop(r).await;
}

#[tokio::test]
async fn thousands_of_concurrent_streams_all_answered() {
    let r = palisade_server::start(opts(shop())).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let c = client(&r).await;
        for i in 0..1000u32 {
            let mut c = c.clone();
            tasks.push(tokio::spawn(async move {
                let req = http_check(
                    peer("10.1.0.5", 40000 + i, FRONTEND),
                    peer("10.1.0.9", 8080, CART),
                    "GET",
                    "/api/cart/42",
                    &[],
                );
                c.check(req).await.map(|r| code(r.get_ref()))
            }));
        }
    }
    let mut answered = 0;
    for t in tasks {
        let got = tokio::time::timeout(LIMIT, t).await.unwrap().unwrap();
        assert_eq!(got.unwrap(), 0);
        answered += 1;
    }
    assert_eq!(answered, 4000);
    let text = r.metrics.render();
    assert!(text.contains("palisade_checks_total{kind=\"http\",action=\"allow\",reason=\"rule\"} 4000"), "{text}");
    stop(r).await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_checks_in_flight() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let r = palisade_server::start(opts(shop())).await.unwrap();
    let addr = r.grpc_addrs[0];
    let c = client(&r).await;
    let answered = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let mut c = c.clone();
        let answered = answered.clone();
        workers.push(tokio::spawn(async move {
            let prom = "spiffe://cluster.local/ns/monitoring/sa/prometheus";
            loop {
                let req = network_check(peer("10.3.0.4", 40000, prom), peer("10.2.0.7", 9090, PAYMENTS));
                match c.check(req).await {
                    Ok(resp) => {
                        assert_eq!(code(resp.get_ref()), 0);
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    // After the shutdown a check is refused, never half-answered: by the
                    // server's GOAWAY (its stream is past the last one the server took), or
                    // UNAVAILABLE once the connection is gone.
                    Err(e) => return e,
                }
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + LIMIT;
    while answered.load(Ordering::Relaxed) < 500 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r.shutdown(LIMIT).await.unwrap();
    for w in workers {
        let e = tokio::time::timeout(LIMIT, w).await.unwrap().unwrap();
        let refused = e.code() == tonic::Code::Unavailable || format!("{e:?}").contains("GoAway");
        assert!(refused, "{e:?}");
    }
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
}
