"""tests/corpus/: every case through the Python package's public API (Engine.from_paths,
Engine.decide on the request as a dict, Decision.to_dict), checked against the case's expected
decisions. The format and the skip list: tests/corpus/README.md."""
import json
import pathlib

import pytest

import palisade

CORPUS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "corpus"


def jsonl(path):
    return [line for line in path.read_text().splitlines() if line.strip()]


def load_cases():
    cases = []
    for d in sorted(p for p in (CORPUS / "cases").iterdir() if p.is_dir()):
        manifest = json.loads((d / "case.json").read_text())
        requests = jsonl(d / manifest.get("requests", "requests.jsonl"))
        expected = [json.loads(line) for line in jsonl(d / "expected.jsonl")]
        assert len(requests) == len(expected), f"{d.name}: one expected decision per request"
        cases.append((d.name, [str(d / p) for p in manifest["bundle"]], requests, expected))
    return cases


def load_skips(surface, cases):
    skips = {}
    path = CORPUS / "skip" / f"{surface}.txt"
    sizes = {name: len(requests) for name, _, requests, _ in cases}
    for n, line in enumerate(path.read_text().splitlines() if path.exists() else [], 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        assert len(parts) == 3 and parts[2].strip(), f"{surface}.txt:{n}: a skip needs a reason"
        case, index = parts[0], int(parts[1])
        assert 1 <= index <= sizes.get(case, 0), f"{surface}.txt:{n}: no request {case} {index}"
        skips[(case, index)] = parts[2]
    return skips


def mismatches(what, actual, expected):
    out = []
    for key, want in expected.items():
        if key == "why":
            continue
        if key == "trace":
            for side, hits in want.items():
                got = (actual.get("trace") or {}).get(side)
                if got != hits:
                    out.append(f"{what}: trace.{side} is {got}, expected {hits}\n  decision: {actual}")
        elif actual.get(key) != want:
            out.append(f"{what}: {key} is {actual.get(key)!r}, expected {want!r}\n  decision: {actual}")
    return out


CASES = load_cases()
SKIPS = load_skips("python", CASES)


@pytest.mark.parametrize("name,bundle,requests,expected", CASES, ids=[c[0] for c in CASES])
def test_corpus_case(name, bundle, requests, expected):
    engine = palisade.Engine.from_paths(bundle)
    failures = []
    decided = 0
    for i, (line, want) in enumerate(zip(requests, expected), 1):
        got = engine.decide(json.loads(line)).to_dict()
        found = mismatches(f"{name} line {i}", got, want)
        if (name, i) in SKIPS:
            # A skipped line must still disagree: once it decides as expected, drop the skip.
            if not found:
                failures.append(f"{name} line {i}: skipped in skip/python.txt but decides as expected: remove the skip")
            continue
        failures += found
        decided += 1
    assert decided > 0
    assert not failures, "\n".join(failures)


def test_corpus_is_read():
    assert len(CASES) >= 8
    assert sum(len(c[2]) for c in CASES) >= 80
