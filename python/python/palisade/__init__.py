"""Palisade: policy decisions for zero-trust networks.

One engine decides Calico, Kubernetes and Istio policy in a single tier walk and binds the
peer's certificate identity (SPIFFE ID) to the IP that presents it.

    >>> import palisade
    >>> engine = palisade.Engine.from_paths(["examples/shop"])        # doctest: +SKIP
    >>> engine.decide(src_ip="10.1.0.5", dst_ip="10.1.0.9", dst_port=8080).action  # doctest: +SKIP
    'allow'

This package is a thin layer over the native module ``palisade._palisade``; every behaviour
is the Rust core's.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from ._palisade import (
    BundleError,
    ConfigError,
    Decision,
    FlowLog,
    PalisadeError,
    Request,
    RequestError,
    __version__,
    lint_paths,
)
from ._palisade import Engine as _NativeEngine

__all__ = [
    "BundleError",
    "ConfigError",
    "Decision",
    "Engine",
    "FlowLog",
    "PalisadeError",
    "Request",
    "RequestError",
    "__version__",
    "lint_paths",
]

PathLike = Union[str, "os.PathLike[str]"]  # a file or directory


class Engine(_NativeEngine):
    """A policy decision point. ``decide`` is thread-safe and may run while ``load_*`` swaps
    in new policy. ``config`` is a dict of the CLI's configuration keys (``trust_domain``,
    ``require_peer_identity``, ``no_policy_action``, ``istio_root_namespace``, limits)."""

    @classmethod
    def from_paths(cls, paths: Union[PathLike, Sequence[PathLike]], config: Optional[Mapping[str, Any]] = None) -> "Engine":
        """An engine loaded from files and directories (raises ``BundleError``)."""
        engine = cls(config)
        engine.load_paths(paths)
        return engine

    def decide_all(self, requests: Iterable[Union[Mapping[str, Any], Request]]) -> list:
        """Alias of ``decide_many`` for readability in comprehensions."""
        return self.decide_many(list(requests))

