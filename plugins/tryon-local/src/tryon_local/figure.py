"""A person's silhouette on any background, seeded by their face (base tier).

GrabCut learns the person's and the background's colours from a body-shaped prior drawn
around the face: the face's core and a strip down the chest are surely the person, the head
and a torso widening below the shoulders probably are, and the photo's border beside and above
the head surely is not. It runs on a copy 160 px on its long side (tens of ms); the
components that hold the sure seeds are kept, their holes filled, and the mask upscaled.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tryon_local.faces import Box

__all__ = ["seeded_silhouette"]

_WORK_SIDE = 160


def seeded_silhouette(rgb: NDArray[Any], face: Box) -> NDArray[Any] | None:
    """A soft mask (float32 0..1, the image's size) of the person whose face is ``face``, or
    ``None`` when GrabCut keeps too little of them."""
    h, w = rgb.shape[:2]
    scale = min(1.0, _WORK_SIDE / max(h, w))
    sw, sh = max(8, round(w * scale)), max(8, round(h * scale))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1.0 else rgb
    x, y, u, _ = (v * scale for v in face)
    cx = x + u / 2
    seeds = _prior((sh, sw), cx, y, u)
    if not (seeds == cv2.GC_BGD).any() or not (seeds == cv2.GC_FGD).any():
        return None
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0x7A11)
    small = np.ascontiguousarray(small)
    sure = seeds == cv2.GC_FGD  # before GrabCut rewrites the undecided seeds
    cv2.grabCut(small, seeds, (0, 0, 0, 0), bgd, fgd, 2, cv2.GC_INIT_WITH_MASK)
    person = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.uint8)
    person = _holding(person, sure)
    if person is None:
        return None
    soft = cv2.GaussianBlur(person.astype(np.float32), (0, 0), 0.8)
    if scale == 1.0:
        return np.clip(soft, 0.0, 1.0)
    big = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip((big - 0.5) * (0.5 / scale) + 0.5, 0.0, 1.0).astype(np.float32)


def _prior(shape: tuple[int, int], cx: float, y: float, u: float) -> NDArray[Any]:
    """GrabCut's seeds, in face-box widths ``u`` from the face box's top ``y``."""
    h, w = shape
    seeds = np.full(shape, cv2.GC_PR_BGD, np.uint8)

    def pts(*xy: tuple[float, float]) -> NDArray[Any]:
        return np.round([(cx + dx * u, y + dy * u) for dx, dy in xy]).astype(np.int32)

    # probably the person: the head, the neck, shoulders and a torso widening a little downwards
    head = (round(cx), round(y + 0.45 * u)), (round(0.8 * u), round(0.95 * u))
    cv2.ellipse(seeds, head[0], head[1], 0, 0, 360, (cv2.GC_PR_FGD,), -1)
    body = pts(
        (-0.4, 1.0), (0.4, 1.0), (1.25, 1.75), (1.5, 4.0), (1.6, 40.0),
        (-1.6, 40.0), (-1.5, 4.0), (-1.25, 1.75),
    )  # fmt: skip
    cv2.fillPoly(seeds, [body], (cv2.GC_PR_FGD,))
    # surely the person: the middle of the face and a strip down the chest
    core = (round(cx), round(y + 0.55 * u)), (max(1, round(0.25 * u)), max(1, round(0.3 * u)))
    cv2.ellipse(seeds, core[0], core[1], 0, 0, 360, (cv2.GC_FGD,), -1)
    cv2.fillPoly(seeds, [pts((-0.3, 2.0), (0.3, 2.0), (0.3, 3.5), (-0.3, 3.5))], (cv2.GC_FGD,))
    # surely not: the border ring, wherever the prior does not reach it
    ring = np.zeros(shape, bool)
    r = max(1, round(0.02 * min(h, w)))
    ring[:r] = ring[-r:] = True
    ring[:, :r] = ring[:, -r:] = True
    seeds[ring & (seeds == cv2.GC_PR_BGD)] = cv2.GC_BGD
    # and beside the head, well clear of it, above the shoulders
    ys, xs = np.mgrid[0:h, 0:w]
    beside = (ys < y + 1.4 * u) & (np.abs(xs - cx) > 1.3 * u)
    seeds[beside & (seeds == cv2.GC_PR_BGD)] = cv2.GC_BGD
    return seeds


def _holding(mask: NDArray[Any], sure: NDArray[Any]) -> NDArray[Any] | None:
    """The components of ``mask`` that hold a sure seed (the face, the chest: a dark collar
    may part them), their holes filled; ``None`` if none does."""
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    kept = np.setdiff1d(np.unique(labels[sure]), [0])
    if count <= 1 or kept.size == 0:
        return None
    solid = np.isin(labels, kept)
    _, gaps = cv2.connectedComponents((~solid).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([gaps[0], gaps[-1], gaps[:, 0], gaps[:, -1]]))
    holes = ~solid & ~np.isin(gaps, border)
    filled: NDArray[Any] = (solid | holes).astype(np.uint8)
    return filled
