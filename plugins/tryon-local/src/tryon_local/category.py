"""Guess what kind of garment a cut-out is from its outline alone, for ``category="auto"``.

Three cues, measured on the opaque mask: the aspect (height / width), whether and where the
lower part splits into two legs, and where the outline is widest. A T-shirt is about as tall
as wide and widest at the sleeves; trousers and shorts part into legs high up; a skirt widens
downwards from a waistband; a dress is tall and does not split; a jumpsuit is tall and its
legs part low, under a bodice.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from tryon_local.garment import Garment

__all__ = ["Kind", "crotch", "guess_category"]

Kind = Literal["tops", "bottoms", "one-pieces"]


def guess_category(garment: Garment) -> Kind:
    aspect = garment.height / max(garment.width, 1)
    parted = crotch(garment)
    if parted is not None:
        # a jumpsuit is long, and its legs part low, under a bodice; trousers part high
        return "one-pieces" if aspect > 2.0 and parted > 0.45 else "bottoms"
    if aspect > 1.45:
        return "one-pieces"
    top_w, _ = garment.band(0.05, 0.35)
    bottom_w, _ = garment.band(0.65, 0.95)
    waist_w, _ = garment.band(0.0, 0.08)
    if waist_w < 0.75 * bottom_w and top_w < bottom_w:
        return "bottoms"  # a skirt: a narrow waistband flaring downwards
    return "tops"


def crotch(garment: Garment) -> float | None:
    """Where the legs part, as a share of the height, if the lower part splits in two.

    The gap between legs closes to nothing at the crotch, and its narrow top is lost to the
    matting's resolution; so where the gap widens downwards, its width is extrapolated up to
    zero rather than read off the first split row."""
    step = max(1, garment.height // 160)  # ~160 rows are plenty
    solid = garment.alpha[::step] > 0.5
    height = solid.shape[0]
    bottom = int(height * 0.95)
    gaps = [_leg_gap(row, garment.width) for row in solid[:bottom]]
    if not gaps or not all(g > 0 for g in gaps[int(height * 0.8) :]):
        return None
    top = bottom
    while top > 0 and gaps[top - 1] > 0:
        top -= 1
    rows = np.arange(top, bottom, dtype=np.float64)
    slope, intercept = np.polyfit(rows, np.asarray(gaps[top:bottom], np.float64), 1)
    if slope * (bottom - top) > 0.25 * gaps[bottom - 1]:  # clearly widening downwards
        top = int(np.clip(-intercept / slope, 0, top))
    return top / height


def _leg_gap(row: NDArray[Any], width: int) -> int:
    """The gap's width when the row holds two wide opaque runs parted near the middle, else 0."""
    wide = [r for r in _runs(row) if r[1] - r[0] >= max(2, width // 20)]
    if len(wide) != 2:
        return 0
    gap = wide[1][0] - wide[0][1]
    middle = (wide[0][1] + wide[1][0]) / 2
    centred = abs(middle - width / 2) < width / 4
    return gap if centred and gap >= max(2, width // 40) else 0


def _runs(row: NDArray[Any]) -> list[tuple[int, int]]:
    padded = np.concatenate(([0], row.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
