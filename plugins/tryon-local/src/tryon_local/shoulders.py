"""Lift a top's shoulders onto the person's own (when their silhouette is known).

A garment keeps the shoulder slope it had in its photo; a person's shoulders are often
squarer (a jacket, a uniform, a suit), and their old clothing then shows between the collar
and the sleeves. Column by column, where the silhouette rises a little above the garment's
upper edge, the upper part of the garment is stretched up to meet it. Where the silhouette
rises a lot (the neck and head), nothing moves: the collar stays where the fit put it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tryon_local.fit import Layer

__all__ = ["follow_shoulders"]

_MAX_LIFT = 0.25  # the most a column is lifted, as a share of the shoulder span
_BAND = 0.3  # the stretched part under the garment's edge, as a share of the shoulder span
_INSET = 0.015  # the lifted edge stays this far inside the outline (share of the span), as
# the silhouette's soft edge runs a little wide of the person


def follow_shoulders(layer: Layer, silhouette: NDArray[Any], span: float) -> Layer:
    """``layer`` with its upper edge raised to the silhouette's shoulders."""
    if layer.alpha.size == 0:
        return layer
    h, w = layer.alpha.shape
    limit, band = _MAX_LIFT * span, max(2.0, _BAND * span)
    lift = np.maximum(_lift(layer, silhouette, limit) - _INSET * span, 0.0)
    if lift.max() < 1.0:
        return layer
    grow = min(layer.y0, int(np.ceil(lift.max())))
    if grow < 1:
        return layer
    top = _top_edge(layer.alpha)
    rows = np.arange(h + grow, dtype=np.float32)[:, None] - grow  # layer rows, new box
    # rows between (top - lift) and (top + band) take the rows top..top + band, stretched
    start = top - lift
    stretched = top + (rows - start) * band / (band + lift)
    source = np.where((rows >= start) & (rows < top + band), stretched, rows)
    source = np.where(rows < start, rows + lift, source).astype(np.float32)
    cols = np.broadcast_to(np.arange(w, dtype=np.float32), source.shape)
    alpha = cv2.remap(layer.alpha, cols, source, cv2.INTER_LINEAR, borderValue=(0.0,))
    rgb = cv2.remap(layer.rgb, cols, source, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return replace(layer, rgb=rgb, alpha=alpha, y0=layer.y0 - grow)


def _top_edge(alpha: NDArray[Any]) -> NDArray[Any]:
    """The first opaque row of each column (the column's height when it has none)."""
    solid = alpha > 0.5
    top = np.where(solid.any(axis=0), solid.argmax(axis=0), alpha.shape[0])
    return top.astype(np.float32)


def _lift(layer: Layer, silhouette: NDArray[Any], limit: float) -> NDArray[Any]:
    """How far each column's upper edge rises to meet the silhouette, smoothed along the
    shoulders: 0 where the column has no garment or the body rises past ``limit``."""
    h, w = layer.alpha.shape
    top = _top_edge(layer.alpha)
    reach = int(np.ceil(limit)) + 1
    y_from = max(0, layer.y0 - reach)
    region = silhouette[y_from : layer.y0 + h, layer.x0 : layer.x0 + w] > 0.5
    lift = np.zeros(w, np.float32)
    for x in np.flatnonzero(top < h):
        row = int(top[x]) + layer.y0 - y_from  # the garment's edge, in the region
        if not region[row, x]:
            continue
        above = np.flatnonzero(~region[max(0, row - reach) : row + 1, x][::-1])
        if above.size:  # the body ends above the edge, within reach
            lift[x] = float(above[0] - 1)
    lift[lift > limit] = 0.0
    # a neck or head column next to a shoulder one: no ramp from full lift to nothing
    lift = cv2.erode(lift[None, :], np.ones((1, 5), np.uint8))[0]
    smooth: NDArray[Any] = cv2.GaussianBlur(lift[None, :], (0, 0), max(1.0, 0.02 * w))[0]
    return np.minimum(smooth, lift.max())
