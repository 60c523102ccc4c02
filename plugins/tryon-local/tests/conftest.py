"""Fixtures for the offline engine: the repository's sample photos and shared engines."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tryon_local import Engine
from tryon_local.pose import pose_available

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine is offline: fail any test that connects beyond loopback."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if host not in ("::1", "localhost") and not host.startswith("127."):
                raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _open(name: str) -> Image.Image:
    image = Image.open(SAMPLES / name)
    image.load()
    return image


@pytest.fixture(scope="session")
def person() -> Image.Image:
    return _open("person.jpg")


@pytest.fixture(scope="session")
def garment() -> Image.Image:
    return _open("garment.png")


@pytest.fixture(scope="session")
def pose_engine() -> Engine:
    if not pose_available():
        pytest.skip("the pose tier needs mediapipe: install 'tryon-local[pose]'")
    return Engine(use_pose=True)


@pytest.fixture(scope="session")
def base_engine() -> Engine:
    return Engine(use_pose=False)


@pytest.fixture(scope="session", params=["pose", "base"])
def engine(request: pytest.FixtureRequest, pose_engine: Engine, base_engine: Engine) -> Engine:
    """Each test that takes ``engine`` runs once per tier."""
    return pose_engine if request.param == "pose" else base_engine
