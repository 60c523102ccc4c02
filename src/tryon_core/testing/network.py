"""A pytest fixture that fails any test which tries to leave this machine.

Use it in a plugin's ``conftest.py``::

    from tryon_core.testing.network import no_network  # noqa: F401  (autouse fixture)
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

__all__ = ["no_network"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse connections to anything but loopback (127.0.0.0/8, ::1, localhost)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if host not in ("::1", "localhost") and not host.startswith("127."):
                raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
