"""Place a garment cut-out on the body: an affine map from garment pixels to the person photo
built from the body axis, a reference width measured on both, and the category's anchor.

* ``tops``: collar a little above the shoulder line; the garment's body width (below the
  sleeves) matches the chest; the hem lands near the hips.
* ``bottoms``: waistband a little above the hip joints; the waistband spans the hips; full-length
  garments are stretched or squeezed (at most 15 %) to end at the ankles.
* ``one-pieces``: like a top at the shoulders, with a length kept from the garment's aspect.

Skirts and dresses (no leg split) hang free of the silhouette below the hips.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tryon_local.body import Body
from tryon_local.category import Kind, crotch
from tryon_local.garment import Garment

__all__ = ["Jitter", "Layer", "fit"]


@dataclass(frozen=True, slots=True)
class Jitter:
    """A small deliberate change of fit, for variations: fractions of the body's own sizes."""

    scale: float = 0.0
    dx: float = 0.0
    dy: float = 0.0
    degrees: float = 0.0

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Jitter:
        def bounded(sigma: float, limit: float) -> float:
            return float(np.clip(rng.normal(0.0, sigma), -limit, limit))

        return cls(
            scale=bounded(0.03, 0.06),
            dx=bounded(0.02, 0.04),
            dy=bounded(0.02, 0.04),
            degrees=bounded(1.5, 3.0),
        )


@dataclass(frozen=True, slots=True)
class Layer:
    """A garment warped into the person's frame, kept only where it lands: straight RGB
    (0..255) and alpha (0..1) for the box whose top-left corner is ``(x0, y0)``.

    A skirt or dress (no leg split) is not clipped to the silhouette below ``hangs_from``:
    it hangs across the gap between the legs."""

    rgb: NDArray[Any]
    alpha: NDArray[Any]
    x0: int
    y0: int
    kind: Kind
    hangs_from: float | None = None  # below this y, a skirt hangs free of the silhouette

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x0 + self.alpha.shape[1], self.y0 + self.alpha.shape[0])


def fit(garment: Garment, kind: Kind, body: Body, jitter: Jitter = Jitter()) -> Layer:
    shoulder_mid = np.array(_mid(body.shoulders))
    hip_mid = np.array(_mid(body.hips))
    ankle_mid = np.array(_mid(body.ankles))
    torso = max(body.torso_length, 1.0)
    if kind == "bottoms":
        down = _unit(ankle_mid - hip_mid)
        anchor = hip_mid - down * 0.15 * torso
        ref_w, ref_c = garment.band(0.0, 0.08)
        target_w = max(body.hip_span * 1.7, body.shoulder_span * 0.8)
        span = float(np.dot(ankle_mid - anchor, down)) + 0.03 * body.leg_length
        full_length = 0.7
    else:
        down = _unit(hip_mid - shoulder_mid)
        anchor = shoulder_mid - down * 0.17 * torso
        ref_w, ref_c = garment.band(0.6, 0.9) if kind == "tops" else garment.band(0.25, 0.4)
        target_w = body.shoulder_span * 1.02
        if kind == "tops":
            span = float(np.dot(hip_mid - anchor, down)) + 0.08 * torso
            full_length = 0.0
        else:
            span = float(np.dot(ankle_mid - anchor, down))
            full_length = 0.8
    sx = target_w / max(ref_w, 1.0)
    natural = garment.height * sx
    # a garment that reaches the end of its span is stretched or squeezed to it, a bit
    stretch = float(np.clip(span / natural, 0.85, 1.15)) if natural >= full_length * span else 1.0
    sy = sx * stretch

    scale = 1.0 + jitter.scale
    sx, sy = sx * scale, sy * scale
    turn = np.deg2rad(jitter.degrees)
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    down = rot @ down
    across = np.array([down[1], -down[0]])
    anchor = anchor + across * jitter.dx * body.shoulder_span + down * jitter.dy * torso

    layer = _warp(garment, ref_c, anchor, across * sx, down * sy, (body.width, body.height), kind)
    if kind != "tops" and crotch(garment) is None:
        layer = replace(layer, hangs_from=float(hip_mid[1]))
    return layer


def _warp(
    garment: Garment,
    ref_c: float,
    anchor: NDArray[Any],
    col: NDArray[Any],
    row: NDArray[Any],
    size: tuple[int, int],
    kind: Kind,
) -> Layer:
    """Map garment (x, y) to ``anchor + (x - ref_c)·col + y·row``, shrinking first if needed."""
    rgb, alpha = garment.rgb, garment.alpha
    shrink = min(1.0, float(np.hypot(*col)), float(np.hypot(*row)))
    if shrink < 0.8:
        gw = max(1, round(garment.width * shrink))
        gh = max(1, round(garment.height * shrink))
        rgb = cv2.resize(rgb, (gw, gh), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, (gw, gh), interpolation=cv2.INTER_AREA)
        col = col * (garment.width / gw)
        row = row * (garment.height / gh)
        ref_c = ref_c * gw / garment.width
    matrix = np.array(
        [
            [col[0], row[0], anchor[0] - ref_c * col[0]],
            [col[1], row[1], anchor[1] - ref_c * col[1]],
        ],
        np.float64,
    )
    gh, gw = alpha.shape
    corners = matrix @ np.array([[0, gw, 0, gw], [0, 0, gh, gh], [1, 1, 1, 1]], np.float64)
    x0 = int(np.clip(np.floor(corners[0].min()) - 2, 0, size[0]))
    y0 = int(np.clip(np.floor(corners[1].min()) - 2, 0, size[1]))
    x1 = int(np.clip(np.ceil(corners[0].max()) + 2, 0, size[0]))
    y1 = int(np.clip(np.ceil(corners[1].max()) + 2, 0, size[1]))
    if x1 - x0 < 1 or y1 - y0 < 1:
        empty = np.zeros((0, 0), np.float32)
        return Layer(rgb=empty[..., None], alpha=empty, x0=x0, y0=y0, kind=kind)
    matrix[:, 2] -= (x0, y0)
    box = (x1 - x0, y1 - y0)
    premult = np.ascontiguousarray(rgb * alpha[..., None], dtype=np.float32)
    warped = cv2.warpAffine(premult, matrix, box, flags=cv2.INTER_LINEAR)
    a = np.clip(cv2.warpAffine(alpha, matrix, box, flags=cv2.INTER_LINEAR), 0.0, 1.0)
    straight = warped / np.maximum(a, 1e-4)[..., None]
    return Layer(rgb=np.clip(straight, 0.0, 255.0), alpha=a, x0=x0, y0=y0, kind=kind)


def _mid(pair: tuple[tuple[float, float], tuple[float, float]]) -> tuple[float, float]:
    return ((pair[0][0] + pair[1][0]) / 2, (pair[0][1] + pair[1][1]) / 2)


def _unit(v: NDArray[Any]) -> NDArray[Any]:
    n = float(np.hypot(*v))
    return np.array([0.0, 1.0]) if n < 1e-6 else v / n
