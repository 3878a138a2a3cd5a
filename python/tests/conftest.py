import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def root():
    return ROOT


@pytest.fixture
def shop(root):
    import palisade

    return palisade.Engine.from_paths([str(root / "examples" / "shop")])
