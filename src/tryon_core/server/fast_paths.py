"""The event loop and HTTP parser ``tryon serve`` runs on: ``[server] loop`` and ``http``.

``auto`` takes uvloop and httptools when installed (``pip install 'tryon-core[speed]'``), else
asyncio and h11. Naming one that is not installed is a ConfigError with that hint. Either
parser is guarded alike (:mod:`~tryon_core.server.connections`).
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

from tryon_core.config import ServerConfig
from tryon_core.errors import ConfigError
from tryon_core.server.connections import ConnectionGate, GuardedH11Protocol

__all__ = ["http_protocol", "loop_name", "parser_name"]

_HINT = "is not installed: pip install 'tryon-core[speed]'"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def loop_name(server: ServerConfig) -> str:
    """What uvicorn's ``loop`` option gets: ``uvloop`` or ``asyncio``."""
    if server.loop == "uvloop" and not _installed("uvloop"):
        raise ConfigError(f"server.loop = 'uvloop': uvloop {_HINT}")
    if server.loop == "auto":
        return "uvloop" if _installed("uvloop") else "asyncio"
    return server.loop


def http_protocol(server: ServerConfig) -> Any:
    """The guarded protocol class for uvicorn's ``http`` option, bound to a new gate (one per
    process: the parent's copy is pickled into each worker)."""
    gate = ConnectionGate(
        max_connections=server.max_connections, max_per_client=server.max_connections_per_client
    )
    protocol: Any = GuardedH11Protocol
    if server.http == "httptools" and not _installed("httptools"):
        raise ConfigError(f"server.http = 'httptools': httptools {_HINT}")
    if server.http != "h11" and _installed("httptools"):
        from tryon_core.server.httptools_guard import GuardedHttpToolsProtocol

        protocol = GuardedHttpToolsProtocol
    return functools.partial(protocol, gate=gate, header_timeout=server.header_timeout_seconds)


def parser_name(protocol: Any) -> str:
    """``httptools`` or ``h11``: which parser :func:`http_protocol` chose."""
    return "h11" if protocol.func is GuardedH11Protocol else "httptools"
