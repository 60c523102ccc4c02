"""The repository-wide guard: a test cannot open a connection beyond loopback."""

from __future__ import annotations

import socket

import pytest


def test_connections_beyond_loopback_are_refused_before_they_start() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(RuntimeError, match="reach the network"),
    ):
        sock.connect(("192.0.2.1", 9))  # TEST-NET-1: refused by the guard, never sent
