//! The configuration examples (examples/envoy, examples/istio) are documents: this test parses
//! them and checks that they point at palisade-serve as it runs (default port, health service
//! name, the JWT metadata namespace it reads), fail closed, and name only protobuf messages
//! that Envoy's API (the `envoy-types` crate) defines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use palisade_server::envoy_types::pb::envoy::extensions as ext;
use prost::Name;
use serde_json::Value;

fn example(rel: &str) -> (PathBuf, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    let value: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, value)
}

/// Every `@type` anywhere in a document.
fn type_urls(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "@type" {
                    out.push(v.as_str().unwrap().to_string());
                }
                type_urls(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| type_urls(v, out)),
        _ => {}
    }
}

fn known_type_urls() -> Vec<String> {
    vec![
        ext::filters::http::ext_authz::v3::ExtAuthz::type_url(),
        ext::filters::network::ext_authz::v3::ExtAuthz::type_url(),
        ext::filters::network::http_connection_manager::v3::HttpConnectionManager::type_url(),
        ext::filters::http::router::v3::Router::type_url(),
        ext::filters::http::jwt_authn::v3::JwtAuthentication::type_url(),
        ext::transport_sockets::tls::v3::DownstreamTlsContext::type_url(),
        ext::upstreams::http::v3::HttpProtocolOptions::type_url(),
        ext::access_loggers::stream::v3::StdoutAccessLog::type_url(),
        ext::filters::listener::tls_inspector::v3::TlsInspector::type_url(),
        ext::filters::network::tcp_proxy::v3::TcpProxy::type_url(),
    ]
}

fn assert_known_types(path: &Path, doc: &Value) {
    let mut urls = Vec::new();
    type_urls(doc, &mut urls);
    assert!(!urls.is_empty());
    let known = known_type_urls();
    for u in urls {
        assert!(known.contains(&u), "{}: {u} is not a message of Envoy's API", path.display());
    }
}

fn cluster<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

fn assert_grpc_cluster(doc: &Value, ext_authz: &Value) -> Value {
    let name = ext_authz["grpc_service"]["envoy_grpc"]["cluster_name"].as_str().unwrap();
    let c = cluster(doc, name);
    // gRPC needs HTTP/2 to the cluster.
    let opts = &c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert!(opts["explicit_http_config"]["http2_protocol_options"].is_object(), "{c}");
    assert_eq!(ext_authz["failure_mode_allow"], Value::Bool(false), "fail closed");
    assert_eq!(ext_authz["transport_api_version"], "V3");
    assert_eq!(ext_authz["include_peer_certificate"], Value::Bool(true));
    c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"].clone()
}

#[test]
fn envoy_http_ext_authz() {
    let (path, doc) = example("envoy/ext-authz-http.yaml");
    assert_known_types(&path, &doc);
    let listener = &doc["static_resources"]["listeners"][0];
    let hcm = &listener["filter_chains"][0]["filters"][0]["typed_config"];
    let filters: Vec<&str> =
        hcm["http_filters"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(filters, ["envoy.filters.http.jwt_authn", "envoy.filters.http.ext_authz", "envoy.filters.http.router"]);
    let authz = &hcm["http_filters"][1]["typed_config"];
    assert_eq!(authz["@type"], ext::filters::http::ext_authz::v3::ExtAuthz::type_url());
    let addr = assert_grpc_cluster(&doc, authz);
    assert_eq!(addr["socket_address"]["port_value"], 9191, "palisade-serve's default port");
    // The JWT payloads reach the check under the namespace palisade-serve reads.
    assert_eq!(authz["metadata_context_namespaces"][0], palisade_server::translate::JWT_AUTHN_NAMESPACE);
    assert_eq!(authz["include_tls_session"], Value::Bool(true));
    let jwt = &hcm["http_filters"][0]["typed_config"]["providers"]["issuer-example"];
    assert_eq!(jwt["payload_in_metadata"], jwt["issuer"], "payload stored under its issuer, as Istio does");
    // The health check asks for the service palisade-serve reports.
    let hc = &cluster(&doc, "palisade")["health_checks"][0]["grpc_health_check"]["service_name"];
    assert_eq!(hc, palisade_server::reload::HEALTH_SERVICE);
    // mTLS: the peer certificate, whose URI SAN is source.principal, is required.
    let tls = &listener["filter_chains"][0]["transport_socket"]["typed_config"];
    assert_eq!(tls["require_client_certificate"], Value::Bool(true));
}

#[test]
fn envoy_network_ext_authz_over_a_unix_socket() {
    let (path, doc) = example("envoy/ext-authz-network.yaml");
    assert_known_types(&path, &doc);
    let filters = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"].as_array().unwrap();
    // First in the chain: the connection is decided before it is proxied.
    assert_eq!(filters[0]["name"], "envoy.filters.network.ext_authz");
    assert_eq!(filters[1]["name"], "envoy.filters.network.tcp_proxy");
    let authz = &filters[0]["typed_config"];
    assert_eq!(authz["@type"], ext::filters::network::ext_authz::v3::ExtAuthz::type_url());
    let addr = assert_grpc_cluster(&doc, authz);
    let sock = addr["pipe"]["path"].as_str().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("--unix {sock}")), "the command in the comment uses the cluster's socket");
}

#[test]
fn istio_extension_provider_and_custom_policy() {
    let (_, mesh) = example("istio/mesh-config.yaml");
    let (_, policy) = example("istio/custom-policy.yaml");
    let provider = &mesh["spec"]["meshConfig"]["extensionProviders"][0];
    let grpc = &provider["envoyExtAuthzGrpc"];
    assert_eq!(grpc["port"], 9191);
    assert_eq!(grpc["failOpen"], Value::Bool(false));
    assert!(grpc["service"].as_str().unwrap().ends_with(".svc.cluster.local"));
    assert_eq!(policy["kind"], "AuthorizationPolicy");
    assert_eq!(policy["spec"]["action"], "CUSTOM");
    assert_eq!(policy["spec"]["provider"]["name"], provider["name"]);
    // The CUSTOM policy is Istio's delegation, not a policy for Palisade's bundle: the core
    // refuses it, so it cannot be loaded into palisade-serve by mistake.
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/istio/custom-policy.yaml"))
            .unwrap();
    let err = palisade::Engine::new(palisade::Config::default()).load_str(&text).unwrap_err();
    assert!(err.to_string().to_lowercase().contains("custom"), "{err}");
}
