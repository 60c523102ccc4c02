"""A garment product photo → a cropped RGBA cut-out with its edge colours cleaned of the
background, plus the width profile that fitting and the category guess measure it by."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tryon_local.errors import GarmentUnusable
from tryon_local.matte import separate

__all__ = ["Garment", "cut_out"]

_MIN_SIDE = 32
_MAX_SIDE = 2048  # larger photos are analysed at this long side
_WORK_SIDE = 192  # GrabCut's long side; the edge is refined at full size afterwards


@dataclass(frozen=True, slots=True)
class Garment:
    """A cut-out: ``rgb`` float32 0..255 and ``alpha`` float32 0..1, cropped to the garment,
    whose top-left corner is at ``origin`` (x, y) in the photo as analysed: the photo resized
    by ``scale`` (photos past 2048 px are analysed smaller)."""

    rgb: NDArray[Any]
    alpha: NDArray[Any]
    origin: tuple[int, int] = (0, 0)
    scale: float = 1.0
    widths: NDArray[Any] = field(init=False)  # opaque pixels per row
    centers: NDArray[Any] = field(init=False)  # centre x of each row's opaque span

    def __post_init__(self) -> None:
        solid = self.alpha > 0.5
        widths = solid.sum(axis=1).astype(np.float32)
        xs = np.arange(solid.shape[1], dtype=np.float32)
        centers = (solid * xs).sum(axis=1) / np.maximum(widths, 1.0)
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "centers", centers)

    @property
    def height(self) -> int:
        return int(self.alpha.shape[0])

    @property
    def width(self) -> int:
        return int(self.alpha.shape[1])

    def band(self, start: float, stop: float) -> tuple[float, float]:
        """Median opaque width and centre over rows ``start``..``stop`` (fractions of height)."""
        a = min(self.height - 1, int(start * self.height))
        b = max(a + 1, int(stop * self.height))
        rows = slice(a, b)
        widths = self.widths[rows]
        filled = widths > 0
        if not filled.any():
            return float(self.width), self.width / 2
        return float(np.median(widths[filled])), float(np.median(self.centers[rows][filled]))


def cut_out(image: Image.Image) -> Garment:
    """Separate the garment from a plain background, or use the image's own transparency."""
    if min(image.size) < _MIN_SIDE:
        raise GarmentUnusable(f"the garment image is too small ({image.width}x{image.height})")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"))
        alpha = rgba[..., 3].astype(np.float32) / 255.0
        if 0.01 < float((alpha < 0.5).mean()) < 0.99:
            return _crop(rgba[..., :3].astype(np.float32), alpha, 1.0)
    rgb = np.asarray(image.convert("RGB"))
    scale = min(1.0, _MAX_SIDE / max(image.size))
    if scale < 1.0:
        size = (round(image.width * scale), round(image.height * scale))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    matte = separate(rgb, work_side=_WORK_SIDE, shadows=True)
    if matte is None:
        raise GarmentUnusable(
            "the garment could not be separated from its background: use a product photo on a "
            "plain, light background (or a PNG with transparency)"
        )
    colour, alpha = _refine_edge(rgb.astype(np.float32), matte.alpha, matte.background)
    return _crop(colour, alpha, scale)


def _refine_edge(
    rgb: NDArray[Any], alpha: NDArray[Any], background: NDArray[Any]
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Sharpen the upscaled mask's edge at full resolution and clean edge colours.

    Each edge pixel C is read as a mix a·F + (1 - a)·B of the background B and the garment
    colour F nearby (a normalised blur of the solid pixels): a is C's projection onto B→F,
    kept within 0.5 of the upscaled mask (a white stripe at the edge of a white-background
    photo stays garment), and the pixel takes colour F, so no background fringe is carried
    onto the person. Only the band along the outline is computed.
    """
    band = cv2.dilate(((alpha > 0.02) & (alpha < 0.98)).astype(np.uint8), np.ones((5, 5), np.uint8))
    ys, xs = np.nonzero(band)
    if ys.size == 0:
        return rgb, alpha
    solid = (alpha >= 0.98).astype(np.float32)
    sigma = max(2.0, 0.006 * max(alpha.shape))
    total = cv2.GaussianBlur(solid, (0, 0), sigma)[ys, xs]
    spread = cv2.GaussianBlur(rgb * solid[..., None], (0, 0), sigma)[ys, xs]
    local = spread / np.maximum(total, 1e-3)[:, None]
    towards = local - background
    contrast = (towards**2).sum(axis=1)
    usable = (total > 0.02) & (contrast > 20.0**2)
    colour, a = rgb[ys, xs], alpha[ys, xs]
    projected = ((colour - background) * towards).sum(axis=1) / np.maximum(contrast, 1e-3)
    refined = np.minimum(np.maximum(projected, a - 0.5), a + 0.5)
    a = np.where(usable, np.minimum(np.maximum(refined, 0.0), 1.0), a)
    solved = (colour - (1.0 - a[:, None]) * background) / np.maximum(a, 0.05)[:, None]
    alpha, rgb = alpha.copy(), rgb.copy()
    alpha[ys, xs] = a
    rgb[ys, xs] = np.where(usable[:, None], local, np.minimum(np.maximum(solved, 0.0), 255.0))
    return rgb, alpha


def _crop(rgb: NDArray[Any], alpha: NDArray[Any], scale: float) -> Garment:
    solid = alpha > 0.5
    if solid.sum() < 0.005 * solid.size:
        raise GarmentUnusable("no garment was found in the garment image")
    rows = np.flatnonzero(solid.any(axis=1))
    cols = np.flatnonzero(solid.any(axis=0))
    top, bottom = max(0, rows[0] - 2), min(alpha.shape[0], rows[-1] + 3)
    left, right = max(0, cols[0] - 2), min(alpha.shape[1], cols[-1] + 3)
    if bottom - top < _MIN_SIDE // 2 or right - left < _MIN_SIDE // 2:
        raise GarmentUnusable("the garment in the garment image is too small to use")
    return Garment(
        rgb=np.ascontiguousarray(rgb[top:bottom, left:right]),
        alpha=np.ascontiguousarray(alpha[top:bottom, left:right]),
        origin=(int(left), int(top)),
        scale=scale,
    )
