"""The .pyi stubs describe the native module: every public name in one is in the other, and
every stubbed method or property exists on the class."""
import ast
import pathlib

import palisade._palisade as native

STUB = pathlib.Path(__file__).resolve().parents[1] / "python" / "palisade" / "_palisade.pyi"


def stub_tree():
    tree = ast.parse(STUB.read_text())
    names, members = set(), {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
            members[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    return names, members


def test_stub_names_match_the_module():
    names, _ = stub_tree()
    public = {n for n in dir(native) if not n.startswith("_") or n == "__version__"}
    assert names == public


def test_stub_members_exist():
    _, members = stub_tree()
    for cls, ms in members.items():
        obj = getattr(native, cls)
        for m in ms - {"__init__"}:
            assert hasattr(obj, m), f"{cls}.{m}"
