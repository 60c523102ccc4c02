"""Frontal-face detection with the Haar cascade that opencv-python-headless 4.x bundles."""

from __future__ import annotations

import threading
from typing import Any

import cv2
from numpy.typing import NDArray

__all__ = ["FaceDetector"]

Box = tuple[float, float, float, float]  # x, y, width, height in pixels

_WORK_SIDES = (480, 960)


class FaceDetector:
    """Finds the most certain frontal face. One instance is shared; calls are serialised."""

    def __init__(self) -> None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"cannot load the frontal-face cascade from {path}")
        self._lock = threading.Lock()

    def largest(self, rgb: NDArray[Any]) -> Box | None:
        """The most certain face (the larger of equally certain ones), searched on a 480 px
        copy, then on a 960 px one for small faces."""
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        for work_side in _WORK_SIDES:
            face = self._search(gray, work_side)
            if face is not None or max(gray.shape) <= work_side:
                return face
        return None

    def _search(self, gray: NDArray[Any], work_side: int) -> Box | None:
        h, w = gray.shape
        scale = min(1.0, work_side / max(h, w))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        side = max(20, round(0.02 * min(gray.shape)))
        with self._lock:
            found, votes = self._cascade.detectMultiScale2(
                gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side)
            )
        if len(found) == 0:
            return None
        # the most certain face (a photo's subject gathers dozens of overlapping detections, a
        # face-like pattern in the background a few), the larger one of equally certain faces
        best = max(range(len(found)), key=lambda i: (int(votes[i]), int(found[i][2])))
        x, y, fw, fh = found[best]
        return (x / scale, y / scale, fw / scale, fh / scale)
