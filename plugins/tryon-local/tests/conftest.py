"""Fixtures for the offline engine: the repository's sample photos and shared engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from tryon_local import Engine
from tryon_local.pose import pose_available

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


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
