import json
import subprocess
import threading

import pytest

import palisade


def test_example_decisions_equal_the_cli(shop, root):
    lines = (root / "examples" / "shop" / "requests.jsonl").read_text().splitlines()
    cli = root / "target" / "debug" / "palisade"
    if not cli.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "palisade-cli"], cwd=root, check=True)
    out = subprocess.run(
        [str(cli), "decide", "--bundle", str(root / "examples" / "shop"), "--requests", "-"],
        input="\n".join(lines), capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert len(out) == len(lines) == 11
    for line, expected in zip(lines, out):
        got = shop.decide(json.loads(line)).to_dict()
        want = json.loads(expected)
        # A request that does not parse: the CLI read text and also says where (column).
        got_detail, want_detail = got.pop("detail"), want.pop("detail")
        assert (got_detail is None) == (want_detail is None), line
        assert got_detail is None or want_detail.startswith(got_detail), line
        assert got == want, line


def test_stolen_certificate(shop):
    d = shop.decide(
        src_ip="10.1.0.5", principal="spiffe://cluster.local/ns/payments/sa/payments", dst_ip="10.2.0.7", dst_port=8443
    )
    assert (d.action, d.reason, d.peer, d.allowed, bool(d)) == ("deny", "identity_mismatch", "source", False, False)
    assert d.policy is None and d.side is None


def test_decision_fields(shop):
    d = shop.decide(
        {"source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/shop/sa/frontend"},
         "destination": {"ip": "10.1.0.9", "port": 8080},
         "http": {"method": "GET", "path": "/api/cart/42"}}
    )
    assert (d.action, d.reason, d.side, d.tier, d.policy, d.rule) == ("allow", "rule", "ingress", "default", "np:shop/cart-api", 0)
    assert d.generation == 1 and not d.l7_pending and d.staged is None
    assert d.trace["ingress"][-1] == "2|default|np:shop/cart-api|allow|0"
    with pytest.raises(AttributeError):
        d.action = "deny"  # frozen


def test_keywords_and_dicts_agree(shop):
    kw = shop.decide(src_ip="10.1.0.9", dst_ip="10.2.0.7", dst_port=8443, method="POST", path="/v1/charges")
    dct = shop.decide({"source": {"ip": "10.1.0.9"}, "destination": {"ip": "10.2.0.7", "port": 8443},
                       "http": {"method": "POST", "path": "/v1/charges"}})
    assert kw.to_dict() == dct.to_dict()
    assert kw.staged == "deny"


def test_invalid_requests(shop):
    d = shop.decide({"source": {"ip": "10.1.0.5", "principle": "x"}, "destination": {"ip": "10.1.0.9", "port": 80}})
    assert (d.action, d.reason) == ("deny", "invalid_request")
    with pytest.raises(palisade.RequestError) as e:
        shop.decide({"source": {"ip": "nope"}, "destination": {"ip": "10.1.0.9", "port": 80}}, strict=True)
    assert isinstance(e.value, palisade.PalisadeError)
    assert shop.decide(src_ip="10.1.0.5", dst_ip="10.1.0.9", dst_port=80, colour="red").reason == "invalid_request"
    d = shop.decide(src_ip="10.1.0.5", dst_ip="10.1.0.9", dst_port=80, principal="spiffe://bad/../x")
    assert d.reason == "invalid_request" and d.detail.startswith("source.principal is not a valid SPIFFE ID")
    d = shop.decide(src_ip="10.1.0.5", dst_ip="10.1.0.9", dst_port=80, principal="cluster.local/ns/shop/sa/frontend")
    assert d.reason == "invalid_request" and "spiffe://<trust domain>/ns/<namespace>/sa/<service account>" in d.detail


def test_requests_keep_their_shape(shop):
    # Issue 14: never read by position, never two values for one field.
    by_position = {"source": ("10.1.0.5", None, "spiffe://cluster.local/ns/shop/sa/frontend"),
                   "destination": {"ip": "10.1.0.9", "port": 8080}}
    assert shop.decide(by_position).reason == "invalid_request"
    with pytest.raises(palisade.RequestError, match="found an array"):
        shop.decide(by_position, strict=True)
    twice = dict(src_ip="10.1.0.5", dst_ip="10.1.0.9", dst_port=8080,
                 principal="spiffe://cluster.local/ns/shop/sa/frontend", src_principal="spiffe://cluster.local/ns/shop/sa/cart")
    assert shop.decide(**twice).reason == "invalid_request"
    headers = {"X-Evil": "1", "x-evil": "2"}
    d = shop.decide(src_ip="10.1.0.5", dst_ip="10.1.0.9", dst_port=8080, method="GET", path="/", headers=headers)
    assert d.reason == "invalid_request"
    d = shop.decide(src_ip="10.1.0.5", dst_ip="10.1.0.9", dst_port=8080, method="GET", path="/api/%2F..%2Fx")
    assert d.reason == "invalid_request" and "%2F or %5C" in d.detail


def test_bundle_error_attributes(root):
    e = palisade.Engine()
    assert e.decide(src_ip="10.0.0.1", dst_ip="10.0.0.2", dst_port=80).reason == "no_bundle"
    bad = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: '(('}\n"
    with pytest.raises(palisade.BundleError) as err:
        e.load_yaml(bad)
    x = err.value
    assert isinstance(x, palisade.PalisadeError)
    assert (x.kind, x.file, x.document, x.object, x.field) == ("invalid", "<string>", 0, "GlobalNetworkPolicy p", "spec.selector")
    assert "byte 2" in x.message
    assert e.generation == 0
    with pytest.raises(palisade.BundleError):
        palisade.Engine.from_paths([str(root / "no-such-dir")])


def test_every_load_error_and_skipped_kinds(root):
    e = palisade.Engine()
    two = (
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: a}\nspec: {selector: '(('}\n---\n"
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicies\nmetadata: {name: b}\nspec: {}\n"
    )
    with pytest.raises(palisade.BundleError) as err:
        e.load_yaml(two)
    errors = err.value.errors
    assert [x["object"] for x in errors] == ["GlobalNetworkPolicy a", "GlobalNetworkPolicies b"]
    assert "did you mean GlobalNetworkPolicy" in errors[1]["message"]
    assert len(str(err.value).splitlines()) == 2
    ok = palisade.Engine()
    ok.load_yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n")
    assert ok.skipped() == [("apps/v1", "Deployment", 1)]


def test_trust_domain_aliases(root):
    e = palisade.Engine.from_paths([str(root / "examples" / "shop")], config={"trust_domain_aliases": ["old.example"]})
    own = e.decide(src_ip="10.1.0.5", src_principal="spiffe://old.example/ns/shop/sa/frontend", dst_ip="10.1.0.9", dst_port=8080, method="GET", path="/api/cart/42")
    assert own.reason != "identity_mismatch"
    other = palisade.Engine.from_paths([str(root / "examples" / "shop")])
    d = other.decide(src_ip="10.1.0.5", src_principal="spiffe://old.example/ns/shop/sa/frontend", dst_ip="10.1.0.9", dst_port=8080, method="GET", path="/api/cart/42")
    assert d.reason == "identity_mismatch"


def test_config(root):
    e = palisade.Engine.from_paths([str(root / "examples" / "shop")], config={"require_peer_identity": True})
    assert e.decide(src_ip="10.1.0.5", dst_ip="10.1.0.9", dst_port=8080).reason == "missing_peer_identity"
    with pytest.raises(palisade.ConfigError) as err:
        palisade.Engine(config={"no_policy_action": "maybe"})
    assert err.value.field == "no_policy_action"


def test_decide_many_equals_a_loop(shop, root):
    lines = (root / "examples" / "shop" / "requests.jsonl").read_text().splitlines()
    reqs = [json.loads(l) for l in lines]
    many = shop.decide_many(reqs)
    single = [shop.decide(r) for r in reqs]
    assert [m.to_dict() | {"trace": None} for m in many] == [s.to_dict() | {"trace": None} for s in single]
    prebuilt = [palisade.Request(r) for r in reqs[:-1]]
    assert [d.action for d in shop.decide_many(prebuilt)] == [s.action for s in single[:-1]]


def test_explain_and_lint(shop, root):
    text = shop.explain(src_ip="10.1.0.66", dst_ip="10.1.0.9", dst_port=8080)
    assert "gnp:block-quarantine" in text and "decision: deny" in text
    assert palisade.lint_paths([str(root / "examples" / "shop")]) == []


def test_threads_decide_while_reloading(root):
    allow = ("apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: n}\nstatus: {podIP: 10.0.0.2}\n---\n"
             "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\n"
             "spec: {ingress: [{action: Allow}]}\n")
    deny = allow.replace("Allow", "Deny")
    e = palisade.Engine()
    e.load_yaml(allow)
    stop = threading.Event()
    wrong = []

    def reader():
        req = palisade.Request(src_ip="10.0.0.1", dst_ip="10.0.0.2", dst_port=80)
        while not stop.is_set():
            for d in e.decide_many([req] * 50):
                if d.action != ("allow" if d.generation % 2 == 1 else "deny"):
                    wrong.append(d)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(200):
        e.load_yaml(deny if i % 2 == 0 else allow)
    stop.set()
    for t in threads:
        t.join()
    assert wrong == []
    assert e.generation == 201


HTTP_ONLY = """
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: ns}
spec: {serviceAccountName: a}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: ns}
spec: {serviceAccountName: b}
status: {podIP: 10.0.0.2}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: http-only, namespace: ns}
spec:
  ingress:
  - action: Allow
    protocol: TCP
    http: {methods: [GET]}
"""


def test_an_l7_pending_allow_is_not_allowed_without_saying_connection():
    e = palisade.Engine()
    e.load_yaml(HTTP_ONLY)
    d = e.decide(src_ip="10.0.0.1", dst_ip="10.0.0.2", dst_port=80)
    assert d.action == "allow" and d.l7_pending
    # A caller that meant to decide the request must not see an allow...
    assert not d.allowed and not bool(d)
    # ...an L4 point with a proxy behind it says so explicitly.
    assert d.allows_connection
    full = e.decide(src_ip="10.0.0.1", dst_ip="10.0.0.2", dst_port=80, method="GET", path="/")
    assert full.allowed and full.allows_connection and not full.l7_pending


def test_bundle_errors_have_the_core_field_names():
    e = palisade.Engine()
    with pytest.raises(palisade.BundleError) as info:
        e.load_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\nstatus: {podIP: banana}\n")
    err = info.value
    assert set(err.errors[0]) == {"kind", "file", "document", "object", "field", "message"}
    assert err.errors[0]["message"] == err.message and err.field == err.errors[0]["field"]


def test_apply_changes_the_engine_and_reports():
    e = palisade.Engine()
    e.load_yaml(HTTP_ONLY)
    put = dict(src_ip="10.0.0.1", dst_ip="10.0.0.2", dst_port=80, method="PUT", path="/")
    assert e.decide(**put).reason == "end_of_tier"
    report = e.apply([
        {"op": "delete", "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy", "namespace": "ns",
         "name": "http-only"},
        {"op": "upsert", "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "namespace": "ns"},
                                    "status": {"podIP": "10.0.0.3"}}},
    ])
    assert (report["generation"], report["upserted"], report["deleted"], report["objects"]) == (2, 1, 1, 3)
    assert e.decide(**put).reason == "no_policy"
    bad = [{"op": "upsert", "text": "apiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: ns}\nstatus: {podIP: x}\n"}]
    with pytest.raises(palisade.BundleError) as info:
        e.apply(bad)
    assert info.value.field.startswith("status.podIP") and e.generation == 2
    lenient = e.apply(bad, lenient=True)
    assert lenient["generation"] == 3 and lenient["rejected"][0]["field"].startswith("status.podIP")
    with pytest.raises(palisade.BundleError) as info:
        e.apply([{"op": "rename"}])
    assert info.value.field == "changes[0].op"
    # A policy delete was a full build; a second pod with pod c's labels is laid over the program.
    assert report["incremental"] is False
    replica = e.apply([{"op": "upsert", "object": {"apiVersion": "v1", "kind": "Pod",
                                                   "metadata": {"name": "d", "namespace": "ns"},
                                                   "status": {"podIP": "10.0.0.4"}}}])
    assert replica["incremental"] is True and replica["objects"] == 4
    assert e.decide(src_ip="10.0.0.1", dst_ip="10.0.0.4", dst_port=80).reason == "no_policy"
