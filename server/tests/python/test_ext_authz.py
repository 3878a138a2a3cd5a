"""palisade-serve as Envoy sees it: Envoy's own generated Python stubs (xds-protos) send the
CheckRequests that Envoy's ext_authz filters send, over grpcio, to a running palisade-serve.

The server is started by scripts/server-tests.sh with examples/shop as its bundle; its address
is in PALISADE_SERVE_ADDR.
"""

import os

import grpc
import pytest
from envoy.config.core.v3 import address_pb2
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc
from google.protobuf import struct_pb2
from google.rpc import code_pb2

FRONTEND = "spiffe://cluster.local/ns/shop/sa/frontend"
CART = "spiffe://cluster.local/ns/shop/sa/cart"
PAYMENTS = "spiffe://cluster.local/ns/payments/sa/payments"
PROMETHEUS = "spiffe://cluster.local/ns/monitoring/sa/prometheus"


@pytest.fixture(scope="module")
def stub():
    channel = grpc.insecure_channel(os.environ["PALISADE_SERVE_ADDR"])
    grpc.channel_ready_future(channel).result(timeout=10)
    yield external_auth_pb2_grpc.AuthorizationStub(channel)
    channel.close()


def peer(ip, port, principal=""):
    return attribute_context_pb2.AttributeContext.Peer(
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address=ip, port_value=port)),
        principal=principal,
    )


def http_check(src, dst, method, path, headers=None, host="cart.shop"):
    h = {":method": method, ":path": path, ":authority": host}
    h.update(headers or {})
    return external_auth_pb2.CheckRequest(
        attributes=attribute_context_pb2.AttributeContext(
            source=src,
            destination=dst,
            request=attribute_context_pb2.AttributeContext.Request(
                http=attribute_context_pb2.AttributeContext.HttpRequest(
                    id="1", method=method, path=path, host=host, scheme="https", protocol="HTTP/2", headers=h
                )
            ),
        )
    )


def network_check(src, dst):
    return external_auth_pb2.CheckRequest(
        attributes=attribute_context_pb2.AttributeContext(source=src, destination=dst)
    )


def check(stub, req):
    return stub.Check(req, timeout=10)


def decision_header(resp):
    which = resp.WhichOneof("http_response")
    headers = resp.ok_response.headers if which == "ok_response" else resp.denied_response.headers
    return {h.header.key: h.header.value for h in headers}.get("x-palisade-decision")


def meta(resp, key):
    f = resp.dynamic_metadata.fields.get(key)
    if f is None:
        return None
    kind = f.WhichOneof("kind")
    return getattr(f, kind)


def assert_denied(resp, reason):
    assert resp.status.code == code_pb2.PERMISSION_DENIED, resp
    assert resp.WhichOneof("http_response") == "denied_response"
    assert resp.denied_response.status.code == 403
    assert resp.denied_response.body == "RBAC: access denied"
    assert decision_header(resp).startswith(f"deny; reason={reason};")
    assert meta(resp, "reason") == reason


def test_http_with_mtls_allowed(stub):
    resp = check(stub, http_check(peer("10.1.0.5", 43122, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/api/cart/42"))
    assert resp.status.code == code_pb2.OK, resp
    assert resp.WhichOneof("http_response") == "ok_response"
    assert decision_header(resp) == "allow; reason=rule; generation=1"
    assert meta(resp, "policy") == "np:shop/cart-api"
    assert meta(resp, "rule") == 0


def test_http_without_mtls_is_network_identity_only(stub):
    # No principal: frontend's IP alone still matches cart's rule on the frontend workload.
    resp = check(stub, http_check(peer("10.1.0.5", 43122), peer("10.1.0.9", 8080), "GET", "/api/cart/42"))
    assert resp.status.code == code_pb2.OK, resp


def test_http_denied_end_of_tier(stub):
    resp = check(stub, http_check(peer("10.1.0.5", 43122, FRONTEND), peer("10.2.0.7", 8443, PAYMENTS), "POST", "/v1/charges"))
    assert_denied(resp, "end_of_tier")
    assert meta(resp, "policy") == "np:payments/payments-api"
    assert "np:" not in decision_header(resp)


def test_stolen_certificate(stub):
    resp = check(stub, http_check(peer("10.1.0.5", 43122, PAYMENTS), peer("10.2.0.7", 8443, PAYMENTS), "POST", "/v1/charges"))
    assert_denied(resp, "identity_mismatch")
    assert meta(resp, "peer") == "source"


def test_forwarded_for_never_sets_the_source(stub):
    # The quarantined pod claims the frontend's address in the headers a proxy would trust.
    headers = {"x-forwarded-for": "10.1.0.5", "x-real-ip": "10.1.0.5"}
    resp = check(stub, http_check(peer("10.1.0.66", 5000, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/api/cart/42", headers))
    assert resp.status.code == code_pb2.PERMISSION_DENIED
    assert meta(resp, "policy") == "gnp:block-quarantine"


def test_network_check(stub):
    resp = check(stub, network_check(peer("10.3.0.4", 40000, PROMETHEUS), peer("10.2.0.7", 9090, PAYMENTS)))
    assert resp.status.code == code_pb2.OK, resp
    assert resp.WhichOneof("http_response") is None
    assert meta(resp, "policy") == "gnp:allow-metrics-scraping"


def test_network_check_l7_pending_is_denied(stub):
    resp = check(stub, network_check(peer("10.1.0.9", 40000, CART), peer("10.2.0.7", 8443, PAYMENTS)))
    assert resp.status.code == code_pb2.PERMISSION_DENIED
    assert meta(resp, "reason") == "l7_pending"
    assert meta(resp, "l7_pending") is True


def test_jwt_payload_reaches_auth(stub):
    # examples/shop has no JWT rule; the payload must simply be accepted and not change the
    # network decision.
    req = http_check(peer("10.1.0.5", 43122, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/api/cart/42")
    payload = struct_pb2.Struct()
    payload.update({"iss": "https://issuer.example", "sub": "alice", "aud": ["shop"], "groups": ["admins"]})
    req.attributes.metadata_context.filter_metadata["envoy.filters.http.jwt_authn"].update(
        {"https://issuer.example": payload}
    )
    assert check(stub, req).status.code == code_pb2.OK


@pytest.mark.parametrize(
    "req",
    [
        external_auth_pb2.CheckRequest(),
        external_auth_pb2.CheckRequest(attributes=attribute_context_pb2.AttributeContext()),
        network_check(attribute_context_pb2.AttributeContext.Peer(), peer("10.1.0.9", 8080)),
        network_check(peer("10.1.0.5", 1), attribute_context_pb2.AttributeContext.Peer()),
        network_check(peer("not-an-ip", 1), peer("10.1.0.9", 8080)),
        http_check(peer("10.1.0.5", 1, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "relative"),
        http_check(peer("10.1.0.5", 1, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/a%2fb"),
        http_check(peer("10.1.0.5", 1, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/%ff"),
        http_check(peer("10.1.0.5", 1, "spiffe://cluster.local/ns/shop/sa/"), peer("10.1.0.9", 8080), "GET", "/"),
    ],
    ids=["empty", "empty-attributes", "no-source", "no-destination", "bad-ip", "relative-path", "encoded-slash",
         "bad-utf8-escape", "malformed-spiffe-id"],
)
def test_malformed_and_empty_requests_are_denied(stub, req):
    resp = check(stub, req)
    assert resp.status.code == code_pb2.PERMISSION_DENIED, resp
    assert meta(resp, "reason") == "invalid_request"


def test_huge_header_is_answered(stub):
    big = {"x-big": "v" * (512 * 1024)}
    resp = check(stub, http_check(peer("10.1.0.5", 43122, FRONTEND), peer("10.1.0.9", 8080, CART), "GET", "/api/cart/42", big))
    assert resp.status.code == code_pb2.OK


def test_health_serving():
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415 (optional package)

    channel = grpc.insecure_channel(os.environ["PALISADE_SERVE_ADDR"])
    h = health_pb2_grpc.HealthStub(channel)
    resp = h.Check(health_pb2.HealthCheckRequest(service="envoy.service.auth.v3.Authorization"), timeout=10)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    channel.close()
