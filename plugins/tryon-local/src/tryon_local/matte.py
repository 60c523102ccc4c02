"""Separate a subject from a plain or near-plain background: a border-colour estimate (a
linear gradient fitted to the border ring) seeds GrabCut on a downscaled copy, and the mask is
upscaled to the full size. A border that is mostly textured is not a plain background.

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
_PLAIN = 0.6  # share of the ring that must be free of texture
_TEXTURE = 3.0  # local gradient (Lab units per pixel) above which the ring is textured
_CLEAR = 0.012  # distance from any non-background pixel that makes a pixel surely background
_HOLE = 0.3  # enclosed background smaller than this share of the subject is filled


@dataclass(frozen=True, slots=True)
class Matte:
    """A soft foreground mask (float32 in [0, 1], the image's size) and the background colour."""

    alpha: NDArray[Any]
    background: NDArray[Any]  # RGB float32, 0..255


def separate(
    rgb: NDArray[Any], *, work_side: int = 256, iterations: int = 2, shadows: bool = False
) -> Matte | None:
    """Foreground of an RGB uint8 image on a plain background, or ``None`` when the border is
    too busy to be a background, or nothing stands out from it. ``shadows`` treats soft
    neutral shadows cast on the background as background (product photos)."""
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

    if _smooth_share(lab, ring) < _PLAIN:
        return None
    plane = _background_plane(lab, ring)
    dist = np.linalg.norm(lab - plane, axis=2)
    noise = float(np.percentile(dist[ring], 60))
    low = float(np.clip(3.0 * noise, 6.0, 25.0))
    candidate = dist > low
    if candidate.sum() < 0.005 * sh * sw:
        return None
    if shadows:
        # A soft shadow is the background, darker: seed it as background, unless that would
        # leave little of the subject (a grey garment is shadow-coloured through and through).
        coloured = candidate & ~_shadow_like(lab, plane, low)
        if coloured.sum() >= 0.5 * candidate.sum():
            candidate = coloured

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


def _smooth_share(lab: NDArray[Any], ring: NDArray[Any]) -> float:
    """Share of the border ring without local texture (a subject may cross part of it)."""
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3)
    gradient = np.sqrt((gx**2 + gy**2).sum(axis=2)) / 8.0  # Lab units per pixel
    return float(np.mean(gradient[ring] < _TEXTURE))


def _background_plane(lab: NDArray[Any], ring: NDArray[Any]) -> NDArray[Any]:
    """The background as a linear gradient over the image, fitted to the ring in two passes
    (the second without the ring pixels the first fits worst: a subject crossing the border)."""
    h, w = ring.shape
    ys, xs = np.nonzero(ring)
    design = np.stack([np.ones(xs.size), xs / w, ys / h], axis=1)
    values = lab[ys, xs].astype(np.float64)
    coef = np.linalg.lstsq(design, values, rcond=None)[0]
    residual = np.linalg.norm(values - design @ coef, axis=1)
    keep = residual <= np.percentile(residual, 75)
    coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
    yy, xx = np.mgrid[0:h, 0:w]
    plane: NDArray[Any] = coef[0] + (xx / w)[..., None] * coef[1] + (yy / h)[..., None] * coef[2]
    return plane.astype(np.float32)


def _shadow_like(lab: NDArray[Any], plane: NDArray[Any], low: float) -> NDArray[Any]:
    """Pixels with the background's hue, darker than it by less than 30 % (OpenCV's 8-bit Lab:
    L scaled to 0..255, a and b offset by 128)."""
    chroma = np.hypot(lab[..., 1] - plane[..., 1], lab[..., 2] - plane[..., 2])
    darker = plane[..., 0] - lab[..., 0]
    shadow: NDArray[Any] = (
        (chroma < 6.0) & (darker > low * 0.5) & (lab[..., 0] > 0.7 * plane[..., 0])
    )
    return shadow


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
