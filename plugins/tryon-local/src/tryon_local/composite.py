"""Blend fitted garments into the person photo so they read as worn, not pasted.

* The garment keeps the person's own light: its colour is multiplied by the light falling on
  the person under it, relative to that light's mean there. The light is the person's
  luminance without the old clothing's own pattern (:mod:`.lighting`): folds, side light and
  shadows carry over; a white collar, a badge or a dark lapel do not.
* Edges turn away from the light: a soft falloff darkens the garment near its outline.
* Edges are feathered inwards, the garment is kept inside the person's silhouette (when
  known), and the face, the neck under the chin and the forearms (when known) stay in front.
  A skirt hangs free below the hips, lit evenly rather than patterned by the legs behind it.

Work is confined to each layer's box plus a margin, so cost follows the garment's size on the
photo, not the photo's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tryon_local.body import Body
from tryon_local.fit import Layer
from tryon_local.lighting import illumination

__all__ = ["composite"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_CELL = 0.015  # the lighting grid's cell, as a share of the shoulder span


def composite(person: NDArray[Any], layers: Sequence[Layer], body: Body) -> NDArray[Any]:
    """``person`` RGB uint8; layers are drawn in order. Returns a new RGB uint8 image; only
    the layers' regions are ever converted to floats."""
    scale = max(body.shoulder_span, 8.0)
    margin = int(np.ceil(0.2 * scale)) + 4
    out = person.copy()
    for layer in layers:
        if layer.alpha.size == 0:
            continue
        lx0, ly0, lx1, ly1 = layer.box
        x0, y0 = max(0, lx0 - margin), max(0, ly0 - margin)
        x1, y1 = min(body.width, lx1 + margin), min(body.height, ly1 + margin)
        region = (slice(y0, y1), slice(x0, x1))
        inner = (slice(ly0 - y0, ly1 - y0), slice(lx0 - x0, lx1 - x0))
        raw = np.zeros((y1 - y0, x1 - x0), np.float32)
        raw[inner] = layer.alpha
        colour = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
        colour[inner] = layer.rgb
        under = out[region].astype(np.float32)
        blended = _blend(under, person[region], colour, raw, body, region, scale, layer)
        out[region] = np.minimum(np.maximum(blended + 0.5, 0.0), 255.0).astype(np.uint8)
    return out


def _blend(
    under: NDArray[Any],
    person: NDArray[Any],
    colour: NDArray[Any],
    raw: NDArray[Any],
    body: Body,
    region: tuple[slice, slice],
    scale: float,
    layer: Layer,
) -> NDArray[Any]:
    alpha = raw
    support = raw
    if body.silhouette is not None:
        inside = _inside(body.silhouette[region], scale)
        if layer.hangs_from is not None:
            fade = _below(layer.hangs_from, region, inside.shape[0], scale)
            inside = inside + (1.0 - inside) * fade
        alpha = alpha * inside
        support = raw * (body.silhouette[region] > 0.5)
    alpha = np.minimum(alpha, cv2.GaussianBlur(alpha, (0, 0), max(0.8, 0.006 * scale)))
    alpha = alpha * (1.0 - _keep_out(body, region, scale))
    weight = float(alpha.sum())
    if weight < 1.0:
        return under
    shading = _shading(person.astype(np.float32) @ _LUMA, support, scale)
    ratio = shading - float((shading * alpha).sum()) / weight
    light = np.exp(0.8 * np.minimum(np.maximum(ratio, -0.7), 0.25))
    falloff = _smooth(raw, 0.05 * scale)
    if layer.hangs_from is not None:
        # a hanging skirt is lit like the body above it, not patterned by the legs behind it
        fade = _below(layer.hangs_from, region, light.shape[0], scale)
        light = light * (1.0 - fade) + fade
    light *= 0.82 + 0.18 * np.minimum(np.maximum(2.0 * falloff - 1.0, 0.0), 1.0)
    garment = np.minimum(colour * light[..., None], 255.0)
    a = alpha[..., None]
    blended: NDArray[Any] = under * (1.0 - a) + garment * a
    return blended


def _shading(luma: NDArray[Any], support: NDArray[Any], scale: float) -> NDArray[Any]:
    """The light on the person under the garment, as log luminance (see :mod:`.lighting`)."""
    return illumination(luma, support > 0.5, cell=_CELL * scale)


def _below(y: float, region: tuple[slice, slice], rows: int, scale: float) -> NDArray[Any]:
    """A column ramp from 0 above ``y`` to 1 a little below it (image coordinates)."""
    ys = np.arange(rows, dtype=np.float32) + region[0].start
    ramp: NDArray[Any] = np.clip((ys - y) / (0.15 * scale), 0.0, 1.0)[:, None]
    return ramp


def _smooth(image: NDArray[Any], sigma: float) -> NDArray[Any]:
    """A Gaussian blur; wide ones run on a reduced copy (the result is smooth anyway)."""
    factor = int(sigma / 2.0)
    h, w = image.shape[:2]
    if factor < 2 or min(h, w) < 4 * factor:
        blurred: NDArray[Any] = cv2.GaussianBlur(image, (0, 0), sigma)
        return blurred
    small = cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    grown: NDArray[Any] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return grown


def _inside(silhouette: NDArray[Any], scale: float) -> NDArray[Any]:
    """The silhouette grown a little and softened: where a garment may appear."""
    grow = max(1, round(0.02 * scale))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    solid = cv2.dilate((silhouette > 0.5).astype(np.uint8), kernel)
    return cv2.GaussianBlur(solid.astype(np.float32), (0, 0), max(1.0, grow / 2))


def _keep_out(body: Body, region: tuple[slice, slice], scale: float) -> NDArray[Any]:
    """The face, the front of the neck and the forearms, softened: garments go behind these."""
    rows, cols = region
    mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)
    if body.face is not None:
        x, y, w, h = body.face
        cx = round(x + w / 2 - cols.start)
        center = (cx, round(y + h / 2 - rows.start))
        axes = (max(1, round(w / 2)), max(1, round(h / 2)))
        cv2.ellipse(mask, center, axes, 0, 0, 360, (1.0,), -1, cv2.LINE_AA)
        # the front of the neck, just under the chin: collars sit below it
        neck = (cx, round(y + h - rows.start))
        cv2.ellipse(
            mask, neck, (max(1, round(0.28 * w)), max(1, round(0.3 * w))), 0, 0, 360, (1.0,), -1
        )
    if body.arms is not None:
        mask = np.maximum(mask, body.arms[region])
    return cv2.GaussianBlur(mask, (0, 0), max(0.8, 0.01 * scale))
