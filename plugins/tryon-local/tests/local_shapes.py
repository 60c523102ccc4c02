"""Synthetic garment product photos with a known true mask, for tests."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

Outline = list[tuple[float, float]]

# outlines in a unit box (x right, y down)
TSHIRT: Outline = [
    (0.40, 0.0),
    (0.60, 0.0),
    (0.75, 0.04),
    (0.97, 0.26),
    (0.87, 0.39),
    (0.78, 0.32),
    (0.78, 1.0),
    (0.22, 1.0),
    (0.22, 0.32),
    (0.13, 0.39),
    (0.03, 0.26),
    (0.25, 0.04),
]
TROUSERS: Outline = [
    (0.12, 0.0),
    (0.88, 0.0),
    (0.97, 1.0),
    (0.56, 1.0),
    (0.50, 0.32),
    (0.44, 1.0),
    (0.03, 1.0),
]
SHORTS: Outline = [
    (0.1, 0.0),
    (0.9, 0.0),
    (1.0, 1.0),
    (0.56, 1.0),
    (0.5, 0.45),
    (0.44, 1.0),
    (0.0, 1.0),
]
SKIRT: Outline = [(0.25, 0.0), (0.75, 0.0), (1.0, 1.0), (0.0, 1.0)]
DRESS: Outline = [
    (0.30, 0.0),
    (0.40, 0.0),
    (0.42, 0.10),
    (0.58, 0.10),
    (0.60, 0.0),
    (0.70, 0.0),
    (0.72, 0.30),
    (0.66, 0.42),
    (1.0, 1.0),
    (0.0, 1.0),
    (0.34, 0.42),
    (0.28, 0.30),
]
JUMPSUIT: Outline = [
    (0.30, 0.0),
    (0.40, 0.0),
    (0.42, 0.08),
    (0.58, 0.08),
    (0.60, 0.0),
    (0.70, 0.0),
    (0.74, 0.25),
    (0.80, 0.45),
    (0.86, 1.0),
    (0.56, 1.0),
    (0.50, 0.55),
    (0.44, 1.0),
    (0.14, 1.0),
    (0.20, 0.45),
    (0.26, 0.25),
]


def product_photo(
    outline: Outline,
    *,
    size: tuple[int, int] = (480, 520),
    box: tuple[float, float, float, float] = (0.1, 0.08, 0.8, 0.84),
    colour: tuple[int, int, int] = (40, 70, 160),
    background: tuple[int, int, int] = (244, 242, 236),
    stripes: tuple[int, int, int] | None = None,
    stripe_period: int = 18,
    trim: int = 0,
    shadow: float = 0.0,
    noise: float = 2.5,
    seed: int = 0,
) -> tuple[Image.Image, NDArray[Any]]:
    """A garment of ``outline`` placed in ``box`` (fractions of ``size``) on a plain
    background, optionally striped with a ``trim`` px hem and collar in the main colour, and
    casting a soft drop shadow ``shadow`` (0..1) deep; returns the photo and its true mask."""
    w, h = size
    bx, by, bw, bh = box
    pts = np.array([(bx + x * bw, by + y * bh) for x, y in outline]) * (w, h)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    truth = mask.astype(bool)
    img = np.empty((h, w, 3), np.float32)
    img[:] = background
    if shadow:
        offset = max(2, w // 60)
        cast = np.roll(mask.astype(np.float32), (offset, offset), axis=(0, 1))
        cast = cv2.GaussianBlur(cast, (0, 0), offset * 1.5)
        img *= (1.0 - shadow * cast)[..., None]
    garment = np.empty((h, w, 3), np.float32)
    garment[:] = colour
    if stripes is not None:
        rows = (np.arange(h) // stripe_period) % 2 == 0
        garment[rows] = stripes
        if trim:
            inner = cv2.erode(mask, np.ones((2 * trim + 1, 2 * trim + 1), np.uint8)).astype(bool)
            garment[truth & ~inner] = colour
    img[truth] = garment[truth]
    rng = np.random.default_rng(seed)
    img += rng.normal(0.0, noise, img.shape)
    photo = Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), "RGB")
    return photo, truth


def iou(alpha_full: NDArray[Any], truth: NDArray[Any]) -> float:
    pred = alpha_full > 0.5
    return float((pred & truth).sum() / max(int((pred | truth).sum()), 1))
