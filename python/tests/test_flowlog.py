"""palisade.FlowLog: decisions recorded as Calico flow-log records, the bounded queue and its
drop counter, aggregation."""
import pytest

import palisade

FRONTEND = "spiffe://cluster.local/ns/shop/sa/frontend"
CART = dict(src_ip="10.1.0.5", principal=FRONTEND, dst_ip="10.1.0.9", dst_port=8080, method="GET", path="/api/cart/42")


def test_decide_equals_the_engine_and_drain_gives_calico_records(shop):
    log = palisade.FlowLog(shop)
    d = log.decide(**CART)
    e = shop.decide(**CART)
    assert (d.action, d.reason, d.policy, d.rule, d.tier, d.generation) == (
        e.action, e.reason, e.policy, e.rule, e.tier, e.generation)
    assert d.policy == "np:shop/cart-api" and d.trace is None
    denied = log.decide({"source": {"ip": "10.1.0.66"}, "destination": {"ip": "10.1.0.9", "port": 8080}})
    assert denied.action == "deny"
    records = log.drain()
    assert log.drain() == []
    dst = [r for r in records if r["reporter"] == "dst" and r["action"] == "allow"]
    assert len(dst) == 1
    r = dst[0]
    assert r["source_ip"] == "10.1.0.5" and r["dest_name_aggr"] == "cart-5c4b" and r["dest_port"] == 8080
    assert r["proto"] == "tcp" and r["source_type"] == "wep" and r["http_requests_allowed_in"] == 1
    assert r["policies"]["enforced_policies"][-1] == "2|default|shop/default.cart-api|allow|0"
    assert r["palisade"]["principal"] == FRONTEND and r["palisade"]["http_path"] == "/api/cart/42"
    assert len(r["palisade"]["decision_id"]) == 32
    assert any(x["action"] == "deny" and "security.block-quarantine" in x["policies"]["enforced_policies"][0]
               for x in records)
    assert log.dropped == 0


def test_a_full_queue_still_decides_and_counts_drops(shop):
    log = palisade.FlowLog(shop, capacity=2)
    for _ in range(5):
        assert log.decide(**CART).allowed
    assert log.dropped == 3
    assert len([r for r in log.drain() if r["reporter"] == "dst"]) == 2
    log.decide(**CART)
    assert log.dropped == 3  # never reset, nothing more dropped
    assert "dropped=3" in repr(log)


def test_requests_that_do_not_parse_are_not_recorded(shop):
    log = palisade.FlowLog(shop)
    bad = {"source": {"ip": "10.1.0.5", "principle": FRONTEND}, "destination": {"ip": "10.1.0.9", "port": 8080}}
    assert log.decide(bad).reason == "invalid_request"
    with pytest.raises(palisade.RequestError):
        log.decide(bad, strict=True)
    assert log.decide(palisade.Request(**CART)).allowed
    assert {r["palisade"]["decisions"] for r in log.drain()} == {1}


def test_aggregation(shop):
    log = palisade.FlowLog(shop, aggregation=1)
    for port in (40001, 40002, 40003):
        log.decide(src_port=port, **CART)
    dst = [r for r in log.drain() if r["reporter"] == "dst"]
    assert len(dst) == 1 and dst[0]["num_flows"] == 3 and dst[0]["source_port"] is None
    assert "decision_id" not in dst[0]["palisade"]
    log = palisade.FlowLog(shop, aggregation="default")  # Felix's: allowed at 2 (IPs aggregated)
    log.decide(**CART)
    assert {r["source_ip"] for r in log.drain()} == {None}
    for bad in (4, -1, "felix", 1.5):
        with pytest.raises(ValueError):
            palisade.FlowLog(shop, aggregation=bad)
    with pytest.raises(ValueError):
        palisade.FlowLog(shop, capacity=0)


def test_no_bundle_is_recorded_with_its_reason():
    log = palisade.FlowLog(palisade.Engine())
    assert log.decide(**CART).reason == "no_bundle"
    (r,) = log.drain()
    assert r["action"] == "deny" and r["palisade"]["reason"] == "no_bundle" and r["policies"]["enforced_policies"] == []
