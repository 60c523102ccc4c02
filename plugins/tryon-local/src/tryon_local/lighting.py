"""The light falling on a person, separated from the colours of what they wear (Retinex).

A photo's luminance is the light times the surface's own lightness (its albedo). Light
changes gently (side light, folds, a shadow under the arm); albedo changes in sharp steps (a
white collar on a dark jacket, a badge, a stripe). So on a coarse grid the log luminance's
steps that are steeper than light ever makes are dropped, and the rest is integrated back
(a Poisson equation with Neumann borders, solved with the discrete cosine transform). What
remains is the light alone, up to a constant: a garment multiplied by it is shaded like the
body, without the old clothing showing through.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["illumination"]

_ALBEDO_STEP = 0.12  # log-luminance change per cell past which a step is the surface's own


def illumination(luma: NDArray[Any], support: NDArray[Any], *, cell: float) -> NDArray[Any]:
    """Log light over ``luma`` (float32 0..255, the region's size), from the pixels in
    ``support`` (bool) only, on a grid of ``cell`` px. Outside ``support`` it is continued
    smoothly; its mean is arbitrary: callers compare it with itself."""
    h, w = luma.shape
    factor = max(1.0, cell)
    gw, gh = max(2, round(w / factor)), max(2, round(h / factor))
    gw, gh = gw + gw % 2, gh + gh % 2  # OpenCV's DCT takes even sizes
    log = cv2.resize(np.log(np.maximum(luma, 1.0)), (gw, gh), interpolation=cv2.INTER_AREA)
    inside = cv2.resize(support.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA) > 0.5
    gx = np.diff(log, axis=1)
    gy = np.diff(log, axis=0)
    gx[~(inside[:, 1:] & inside[:, :-1]) | (np.abs(gx) > _ALBEDO_STEP)] = 0.0
    gy[~(inside[1:] & inside[:-1]) | (np.abs(gy) > _ALBEDO_STEP)] = 0.0
    light = _integrate(gx.astype(np.float64), gy.astype(np.float64))
    light = cv2.GaussianBlur(light.astype(np.float32), (0, 0), 1.0)
    grown: NDArray[Any] = cv2.resize(light, (w, h), interpolation=cv2.INTER_LINEAR)
    return grown


def _integrate(gx: NDArray[Any], gy: NDArray[Any]) -> NDArray[Any]:
    """The least-squares surface whose forward differences are ``gx`` (rows x cols-1) and
    ``gy`` (rows-1 x cols): solve laplacian(s) = div(g) in the cosine basis."""
    rows, cols = gy.shape[0] + 1, gx.shape[1] + 1
    div = np.zeros((rows, cols))
    div[:, :-1] += gx
    div[:, 1:] -= gx
    div[:-1] += gy
    div[1:] -= gy
    spectrum = np.asarray(cv2.dct(div), np.float64)
    eig_x = 2.0 * np.cos(np.pi * np.arange(cols) / cols) - 2.0
    eig_y = 2.0 * np.cos(np.pi * np.arange(rows) / rows) - 2.0
    eig = eig_y[:, None] + eig_x[None, :]
    eig[0, 0] = 1.0
    spectrum /= eig
    spectrum[0, 0] = 0.0
    surface: NDArray[Any] = cv2.idct(spectrum)
    return surface
