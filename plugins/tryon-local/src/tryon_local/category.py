"""Guess what kind of garment a cut-out is from its outline alone, for ``category="auto"``.

Three cues, measured on the opaque mask: the aspect (height / width), whether the lower part
splits into two legs, and where the outline is widest. A T-shirt is about as tall as wide and
widest at the sleeves; trousers and shorts split into legs; a skirt widens downwards from a
waistband; a dress is tall and does not split; a jumpsuit is tall, splits, and has a top.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from tryon_local.garment import Garment

__all__ = ["Kind", "guess_category"]

Kind = Literal["tops", "bottoms", "one-pieces"]


def guess_category(garment: Garment) -> Kind:
    aspect = garment.height / max(garment.width, 1)
    legs = _leg_split(garment)
    top_w, _ = garment.band(0.05, 0.35)
    bottom_w, _ = garment.band(0.65, 0.95)
    waist_w, _ = garment.band(0.0, 0.08)
    if legs:
        return "one-pieces" if aspect > 2.4 else "bottoms"
    if aspect > 1.45:
        return "one-pieces"
    if waist_w < 0.75 * bottom_w and top_w < bottom_w:
        return "bottoms"  # a skirt: a narrow waistband flaring downwards
    return "tops"


def _leg_split(garment: Garment) -> bool:
    """Do most rows of the lowest third hold two opaque runs with a gap near the middle?"""
    solid = garment.alpha > 0.5
    start = int(garment.height * 0.67)
    rows = solid[start : int(garment.height * 0.95)]
    if rows.shape[0] == 0:
        return False
    min_run = max(2, garment.width // 20)
    split = 0
    for row in rows:
        runs = _runs(row)
        wide = [r for r in runs if r[1] - r[0] >= min_run]
        if len(wide) == 2:
            gap = wide[1][0] - wide[0][1]
            middle = (wide[0][1] + wide[1][0]) / 2
            centred = abs(middle - garment.width / 2) < garment.width / 4
            if centred and gap >= max(2, garment.width // 40):
                split += 1
    return split >= 0.6 * rows.shape[0]


def _runs(row: NDArray[Any]) -> list[tuple[int, int]]:
    padded = np.concatenate(([0], row.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
