"""ns per decide from Python (dict and keywords) and per request in decide_many.

    target/py-venv/bin/python python/bench.py
"""
import pathlib
import time

import palisade

ROOT = pathlib.Path(__file__).resolve().parents[1]
engine = palisade.Engine.from_paths([str(ROOT / "examples" / "shop")])
DICT = {"source": {"ip": "10.1.0.5", "principal": "spiffe://cluster.local/ns/shop/sa/frontend"},
        "destination": {"ip": "10.1.0.9", "port": 8080}}
KW = dict(src_ip="10.1.0.5", principal="spiffe://cluster.local/ns/shop/sa/frontend", dst_ip="10.1.0.9", dst_port=8080)


def best(f, n, rounds=5):
    out = []
    for _ in range(rounds):
        t = time.perf_counter_ns()
        f(n)
        out.append((time.perf_counter_ns() - t) / n)
    return min(out)


def dict_loop(n):
    for _ in range(n):
        engine.decide(DICT)


def kw_loop(n):
    for _ in range(n):
        engine.decide(**KW)


pre = palisade.Request(DICT)


def prebuilt_loop(n):
    for _ in range(n):
        engine.decide(pre)


batch = [pre] * 10_000


def many(n):
    for _ in range(n // 10_000):
        engine.decide_many(batch)


print(f"decide(dict):            {best(dict_loop, 20_000):.0f} ns")
print(f"decide(**keywords):      {best(kw_loop, 20_000):.0f} ns")
print(f"decide(Request):         {best(prebuilt_loop, 20_000):.0f} ns")
print(f"decide_many(10,000 Request): {best(many, 100_000):.0f} ns per request")
