"""Real photos of people with hand-drawn outlines, and how a try-on is scored on them.

Outlines are polygons in the photo's pixels, traced by eye on a 20 px grid (see
``photos/SOURCES.md`` for where the photos come from):

* ``body``: the person's outline (hair, face, clothing, arms), without what they hold (the
  astronaut's helmet) or stand before.
* ``torso``: the clothing a top must cover: below the collar, between the arms (the
  astronaut's left forearm crosses in front of her, low on the left), down to the photo's
  lower edge (both photos end above the hips).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

PHOTOS = Path(__file__).resolve().parent / "photos"

Polygon = list[tuple[int, int]]


@dataclass(frozen=True)
class RealPhoto:
    name: str
    body: Polygon
    torso: Polygon
    face: tuple[int, int, int, int]  # left, top, right, bottom: eyes to mouth

    def open(self, scale: float = 1.0) -> Image.Image:
        image = Image.open(PHOTOS / self.name)
        image.load()
        if scale != 1.0:
            size = (round(image.width * scale), round(image.height * scale))
            image = image.resize(size, Image.Resampling.LANCZOS)
        return image


def mask(polygon: Polygon, size: tuple[int, int], scale: float = 1.0) -> NDArray[Any]:
    """A polygon given at the photo's own size, drawn on a copy ``scale`` times that size."""
    canvas = np.zeros((size[1], size[0]), np.uint8)
    points = np.round(np.array(polygon, np.float64) * scale).astype(np.int32)
    cv2.fillPoly(canvas, [points], (1,))
    return canvas.astype(bool)


ASTRONAUT = RealPhoto(
    name="astronaut.jpg",
    body=[
        (215, 14), (255, 18), (285, 40), (298, 75), (298, 110), (288, 128), (280, 145),
        (300, 170), (305, 205), (305, 240), (330, 258), (345, 275), (355, 300), (362, 345),
        (335, 345), (305, 362), (288, 395), (280, 440), (280, 511), (22, 511), (18, 450),
        (24, 380), (30, 330), (45, 290), (65, 255), (95, 225), (118, 210), (113, 185),
        (125, 163), (150, 150), (165, 140), (160, 122), (153, 95), (157, 62), (175, 35),
    ],
    torso=[
        (100, 265), (135, 245), (200, 290), (260, 285), (300, 258), (330, 268), (340, 300),
        (342, 345), (305, 362), (288, 395), (280, 440), (280, 490), (160, 490), (140, 470),
        (100, 425),
    ],
    face=(190, 90, 260, 150),
)  # fmt: skip

GRACE_HOPPER = RealPhoto(
    name="grace_hopper.jpg",
    body=[
        (260, 22), (300, 25), (340, 45), (360, 80), (372, 100), (370, 150), (362, 200),
        (355, 250), (345, 290), (335, 320), (370, 345), (430, 370), (480, 395), (511, 420),
        (511, 599), (14, 599), (16, 520), (22, 440), (40, 390), (80, 360), (130, 345),
        (180, 335), (195, 320), (170, 290), (160, 230), (155, 170), (150, 120), (160, 80),
        (185, 50), (220, 28),
    ],
    torso=[
        (70, 370), (130, 350), (190, 340), (215, 380), (245, 420), (290, 415), (320, 370),
        (335, 330), (375, 350), (440, 375), (470, 395), (470, 599), (60, 599), (60, 420),
    ],
    face=(225, 200, 325, 315),
)  # fmt: skip


@dataclass(frozen=True)
class Score:
    coverage: float  # share of the torso the garment covers
    spill: float  # share of the garment's pixels outside the body's outline
    face: float  # share of the face (eyes to mouth) changed


def garment_pixels(before: Image.Image, after: Image.Image) -> NDArray[Any]:
    """Where the try-on visibly changed the photo (the test garment's colour is far from any
    colour the people in these photos wear)."""
    diff = np.abs(np.asarray(after, np.int16) - np.asarray(before.convert("RGB"), np.int16))
    changed: NDArray[Any] = diff.sum(axis=2) > 45
    return changed


def score(photo: RealPhoto, before: Image.Image, after: Image.Image, scale: float = 1.0) -> Score:
    """How the try-on ``after`` of ``before`` (``photo`` resized by ``scale``) went."""
    garment = garment_pixels(before, after)
    body = mask(photo.body, before.size, scale)
    torso = mask(photo.torso, before.size, scale)
    left, top, right, bottom = (round(v * scale) for v in photo.face)
    return Score(
        coverage=float((garment & torso).sum() / torso.sum()),
        spill=float((garment & ~body).sum() / max(int(garment.sum()), 1)),
        face=float(garment[top:bottom, left:right].mean()),
    )
