"""The ``pose`` tier: mediapipe's bundled BlazePose (landmarks and a person mask) and selfie
segmentation, both of which run offline. Imported lazily; models are made once and shared.

Only ``model_complexity=1`` ships inside the wheel: the other complexities download their
model at run time, so they are never used. mediapipe graphs are not re-entrant, so every call
holds the instance's lock.
"""

from __future__ import annotations

import importlib.util
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["Landmarks", "PoseModels", "pose_available"]

_WORK_SIDE = 640


def _import_mediapipe() -> Any:
    with warnings.catch_warnings():
        # 0.10.21 imports cleanly; a newer protobuf runtime may deprecate what it uses. Only
        # deprecations raised from inside mediapipe and protobuf themselves are silenced.
        warnings.filterwarnings(
            "ignore", category=DeprecationWarning, module=r"(mediapipe|google\.protobuf)(\.|$)"
        )
        import mediapipe  # type: ignore[import-untyped]

    return mediapipe


def pose_available() -> bool:
    """Whether the optional ``pose`` extra (mediapipe) is installed. Nothing is imported: the
    import (~1 s) waits for the first request."""
    return importlib.util.find_spec("mediapipe") is not None


@dataclass(frozen=True, slots=True)
class Landmarks:
    """BlazePose's 33 landmarks in pixels (``points`` 33x2), their ``visibility`` (33,) and the
    person mask (float32 0..1, full image size)."""

    points: NDArray[Any]
    visibility: NDArray[Any]
    mask: NDArray[Any] | None


class PoseModels:
    """Lazily built, shared mediapipe pose and selfie-segmentation graphs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pose: Any = None
        self._selfie: Any = None

    def _build(self) -> None:
        if self._pose is not None:
            return
        try:
            mp = _import_mediapipe()
        except ImportError as exc:
            raise ImportError(
                f"the pose tier needs mediapipe, which failed to import ({exc}): "
                "install 'tryon-local[pose]'"
            ) from exc
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, enable_segmentation=True
        )
        self._selfie = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def landmarks(self, rgb: NDArray[Any]) -> Landmarks | None:
        h, w = rgb.shape[:2]
        small = _shrink(rgb)
        with self._lock:
            self._build()
            result = self._pose.process(small)
        if result.pose_landmarks is None:
            return None
        marks = result.pose_landmarks.landmark
        points = np.array([(m.x * w, m.y * h) for m in marks], np.float32)
        visibility = np.array([m.visibility for m in marks], np.float32)
        mask = None
        if result.segmentation_mask is not None:
            mask = _grow(np.asarray(result.segmentation_mask, np.float32), (w, h))
        return Landmarks(points=points, visibility=visibility, mask=mask)

    def person_mask(self, rgb: NDArray[Any]) -> NDArray[Any]:
        h, w = rgb.shape[:2]
        small = _shrink(rgb)
        with self._lock:
            self._build()
            result = self._selfie.process(small)
        return _grow(np.asarray(result.segmentation_mask, np.float32), (w, h))


def _shrink(rgb: NDArray[Any]) -> NDArray[Any]:
    h, w = rgb.shape[:2]
    scale = min(1.0, _WORK_SIDE / max(h, w))
    if scale == 1.0:
        return np.ascontiguousarray(rgb)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _grow(mask: NDArray[Any], size: tuple[int, int]) -> NDArray[Any]:
    if mask.shape[1] != size[0] or mask.shape[0] != size[1]:
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)
    return np.clip(mask, 0.0, 1.0).astype(np.float32)
