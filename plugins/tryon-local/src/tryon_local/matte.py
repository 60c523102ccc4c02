"""Separate a subject from a plain or near-plain background: a border-colour estimate seeds
GrabCut on a downscaled copy, and the mask is upscaled and sharpened to the full size.

GrabCut costs ~0.2 s at a 256 px long side and ~10 s at 1 MP, hence the downscale. OpenCV's
GrabCut draws its initial clusters from the calling thread's RNG, so it is reseeded before
every call: same pixels in, same mask out, whichever worker thread runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["Matte", "separate"]

_RING = 0.03  # border ring width, as a fraction of the short side
_PLAIN = 0.6  # share of the ring that must look like the background colour
_CLEAR = 0.012  # distance from any non-background pixel that makes a pixel surely background
_HOLE = 0.3  # enclosed background smaller than this share of the subject is filled


@dataclass(frozen=True, slots=True)
class Matte:
    """A soft foreground mask (float32 in [0, 1], the image's size) and the background colour."""

    alpha: NDArray[Any]
    background: NDArray[Any]  # RGB float32, 0..255


def separate(rgb: NDArray[Any], *, work_side: int = 256, iterations: int = 2) -> Matte | None:
    """Foreground of an RGB uint8 image on a plain background, or ``None`` when the border is
    too busy to be a background, or nothing stands out from it."""
    h, w = rgb.shape[:2]
    scale = min(1.0, work_side / max(h, w))
    small = (
        rgb
        if scale == 1.0
        else cv2.resize(
            rgb, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    )
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    sh, sw = small.shape[:2]
    ring = np.zeros((sh, sw), bool)
    r = max(2, round(min(sh, sw) * _RING))
    ring[:r, :] = ring[-r:, :] = ring[:, :r] = ring[:, -r:] = True

    bg_lab = np.median(lab[ring], axis=0)
    dist = np.linalg.norm(lab - bg_lab, axis=2)
    ring_dist = dist[ring]
    noise = float(np.percentile(ring_dist, 60))
    low = max(6.0, 3.0 * noise)
    if float(np.mean(ring_dist < low)) < _PLAIN:
        return None
    candidate = dist > low
    if candidate.sum() < 0.005 * sh * sw:
        return None

    mask = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    mask[candidate] = cv2.GC_PR_FGD
    # Background-coloured pixels a few pixels from anything else are surely background, or
    # GrabCut's smoothness fills narrow gaps (between trouser legs). Thin background-coloured
    # bands (white stripes) stay undecided, and enclosed holes are filled afterwards.
    clear = cv2.distanceTransform((~candidate).astype(np.uint8), cv2.DIST_L2, 3)
    mask[(clear > _CLEAR * max(sh, sw)) | (ring & ~candidate)] = cv2.GC_BGD
    if not (mask == cv2.GC_BGD).any():
        return None
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0x7A11)
    cv2.grabCut(small, mask, (0, 0, 0, 0), bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    fg = _clean(fg)
    if fg.sum() < 0.005 * sh * sw:
        return None

    background = np.median(small[ring & ~candidate].astype(np.float32), axis=0)
    return Matte(alpha=_upscale(fg, (w, h), scale), background=background)


def _clean(fg: NDArray[Any]) -> NDArray[Any]:
    """Keep the large components and fill the holes that do not reach the border."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if count <= 1:
        return fg
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= 0.2 * areas.max()) + 1
    fg = np.isin(labels, keep).astype(np.uint8)
    # holes: background components that do not touch the border
    inverse = (1 - fg).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inverse, connectivity=4)
    h, w = fg.shape
    total = fg.sum()
    for label in range(1, count):
        x, y, bw, bh, area = stats[label]
        touches = x == 0 or y == 0 or x + bw == w or y + bh == h
        if not touches and area < _HOLE * total:
            fg[labels == label] = 1
    return fg


def _upscale(fg: NDArray[Any], size: tuple[int, int], scale: float) -> NDArray[Any]:
    """A binary low-resolution mask to a soft full-resolution one with a ~2 px edge."""
    soft = cv2.GaussianBlur(fg.astype(np.float32), (0, 0), 0.7)
    if scale == 1.0:
        return np.clip(soft, 0.0, 1.0)
    big = cv2.resize(soft, size, interpolation=cv2.INTER_LINEAR)
    gain = max(1.0, 0.5 / scale)
    return np.clip((big - 0.5) * gain + 0.5, 0.0, 1.0).astype(np.float32)
