"""Where the person's body is: shoulder, hip, knee and ankle points, a face to keep clear,
and (when known) a silhouette and the forearms that stay in front of clothing.

Two tiers produce the same :class:`Body`:

* ``pose``: mediapipe landmarks and its person mask (see :mod:`tryon_local.pose`).
* ``base``: a frontal face (Haar cascade) scaled by average body proportions, measured in
  face-box widths ``u``; without a face, the silhouette's bounding box. The silhouette comes
  from selfie segmentation when mediapipe is there, else from the same GrabCut matting as
  garments on a plain background, else from GrabCut seeded by the face
  (:mod:`tryon_local.figure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from tryon_local.errors import PersonNotFound
from tryon_local.faces import Box, FaceDetector
from tryon_local.figure import seeded_silhouette
from tryon_local.matte import separate
from tryon_local.pose import Landmarks, PoseModels

__all__ = ["Body", "locate"]

Point = tuple[float, float]
Pair = tuple[Point, Point]

# Average adult proportions. Face-box widths ``u`` (the Haar box spans brow to chin, about ear
# to ear, ~16 cm): shoulder joints 2.1u apart and 1.8u below the box top, hip joints 3.1u
# lower, ankles 5.1u below those. As shares of standing height from the top of the head: hip
# joints 0.48, knees 0.72, ankles 0.96. A head is ~1.3u tall, an adult ~7.5 heads.
_SHOULDER_SPAN = 2.1
_SHOULDER_DROP = 1.8
_TORSO = 3.1
_LEG = 5.1
_SHOULDER_WIDTH = 2.0  # where the silhouette first grows this wide below the chin ...
_BELOW_SHOULDER_LINE = 0.25  # ... the shoulder joints are this much lower
_HIP_SPAN = 0.55  # hip joints, as a share of the shoulder span
_CHEST = 0.92  # the torso's width under the arms, as a share of the shoulder span
_HIP_WIDTH = 1.6  # the body's width at the hips, as a multiple of the hip-joint span
_HIP_H, _KNEE_H, _ANKLE_H = 0.48, 0.72, 0.96
_HEADS_TALL = 7.5


@dataclass(frozen=True, slots=True)
class Body:
    """Body points in pixels, each pair ordered image-left first."""

    width: int
    height: int
    tier: Literal["pose", "base"]
    found: tuple[str, ...]  # what located the person: "pose", "face", "silhouette", ...
    shoulders: Pair
    hips: Pair
    knees: Pair
    ankles: Pair
    face: Box | None = None  # region to keep clear of garments
    silhouette: NDArray[Any] | None = None  # float32 0..1, image size
    arms: NDArray[Any] | None = None  # float32 0..1: forearms and hands, drawn over garments

    @property
    def shoulder_span(self) -> float:
        return _dist(*self.shoulders)

    @property
    def hip_span(self) -> float:
        return _dist(*self.hips)

    @property
    def torso_length(self) -> float:
        return _dist(_mid(self.shoulders), _mid(self.hips))

    @property
    def leg_length(self) -> float:
        return _dist(_mid(self.hips), _mid(self.ankles))


def locate(rgb: NDArray[Any], *, faces: FaceDetector, pose: PoseModels | None) -> Body:
    """Find the person in an RGB uint8 image, or raise :class:`PersonNotFound`."""
    h, w = rgb.shape[:2]
    hint: NDArray[Any] | None = None
    if pose is not None:
        marks = pose.landmarks(rgb)
        if marks is not None and marks.visibility[[11, 12]].min() > 0.5:
            return _from_landmarks(marks, (w, h))
        hint = pose.person_mask(rgb)
    face = faces.largest(rgb)
    silhouette, source = _silhouette(rgb, hint, face)
    if face is not None:
        return _from_face(face, (w, h), silhouette, ("face", *source))
    if silhouette is not None:
        return _from_silhouette(silhouette, (w, h), source)
    raise PersonNotFound(
        "no person was found in the person image: use a photo of one person, front-facing, "
        "with the face visible or against a plain background"
    )


def _silhouette(
    rgb: NDArray[Any], hint: NDArray[Any] | None, face: Box | None
) -> tuple[NDArray[Any] | None, tuple[str, ...]]:
    if hint is not None and _plausible(hint, face):
        return hint, ("selfie-segmentation",)
    matte = separate(rgb, work_side=224)
    if matte is not None and _plausible(matte.alpha, face):
        return matte.alpha, ("silhouette",)
    if face is not None:
        # a busy background, or one the plain-background matting mistook for the subject
        seeded = seeded_silhouette(rgb, face)
        if seeded is not None and _plausible(seeded, face):
            return seeded, ("seeded-silhouette",)
    return None, ()


def _plausible(mask: NDArray[Any], face: Box | None) -> bool:
    """A person's mask: neither tiny nor the whole photo; with a face, it holds the face and
    the middle of the chest below it (where the photo shows it)."""
    share = float((mask > 0.5).mean())
    if not 0.03 <= share <= 0.9:
        return False
    if face is None:
        return True
    x, y, fw, fh = (round(v) for v in face)
    inside = mask[max(0, y) : y + fh, max(0, x) : x + fw]
    if inside.size == 0 or float((inside > 0.5).mean()) <= 0.5:
        return False
    chest = mask[max(0, y + 2 * fw) : y + 3 * fw, max(0, x + fw // 3) : x + fw - fw // 3]
    return chest.size == 0 or float((chest > 0.5).mean()) > 0.5


def _from_face(
    face: Box, size: tuple[int, int], silhouette: NDArray[Any] | None, found: tuple[str, ...]
) -> Body:
    x, y, u, _ = face
    cx = x + u / 2
    span = _SHOULDER_SPAN * u
    shoulder_y = y + _SHOULDER_DROP * u
    if silhouette is not None:
        shoulder_y = _shoulder_line(silhouette, cx, y, u) or shoulder_y
    hip_y = shoulder_y + _TORSO * u
    knee_y = hip_y + 0.5 * _LEG * u
    ankle_y = hip_y + _LEG * u
    stature = _stature(silhouette, cx, u, size[1]) if silhouette is not None else None
    if stature is not None:
        # a full-length silhouette: average the face's estimate with the height's
        top, tall = stature
        hip_y = (hip_y + top + _HIP_H * tall) / 2
        knee_y = (knee_y + top + _KNEE_H * tall) / 2
        ankle_y = top + _ANKLE_H * tall
    hip_half = _HIP_SPAN * span / 2
    if silhouette is not None:
        # where the arms hang apart from the torso, the silhouette measures chest and hips
        chest = _run_width(silhouette, cx, shoulder_y + 0.35 * (hip_y - shoulder_y))
        if chest is not None and 0.6 < chest / (_CHEST * span) < 1.25:
            span = chest / _CHEST
        hips = _run_width(silhouette, cx, hip_y - 0.05 * (hip_y - shoulder_y))
        if hips is not None and 0.6 < hips / (2 * _HIP_WIDTH * hip_half) < 1.4:
            hip_half = hips / _HIP_WIDTH / 2
    return Body(
        width=size[0],
        height=size[1],
        tier="base",
        found=found,
        shoulders=((cx - span / 2, shoulder_y), (cx + span / 2, shoulder_y)),
        hips=((cx - hip_half, hip_y), (cx + hip_half, hip_y)),
        knees=((cx - hip_half * 0.9, knee_y), (cx + hip_half * 0.9, knee_y)),
        ankles=((cx - hip_half * 0.8, ankle_y), (cx + hip_half * 0.8, ankle_y)),
        face=(x + 0.05 * u, y, 0.9 * u, 1.05 * u),
        silhouette=silhouette,
    )


def _shoulder_line(silhouette: NDArray[Any], cx: float, y: float, u: float) -> float | None:
    """The shoulder joints' height where the silhouette shows the shoulders: a little below
    the first row under the chin that is twice as wide as the face. Average proportions miss
    it when the face box is off (a cap's brim, a close crop)."""
    for row in range(round(y + 0.9 * u), round(y + _SHOULDER_DROP * u + 0.5 * u)):
        width = _run_width(silhouette, cx, row)
        if width is None or width > _SHOULDER_WIDTH * u:
            return row + _BELOW_SHOULDER_LINE * u if width is not None else None
    return None


def _run_width(silhouette: NDArray[Any], cx: float, y: float) -> float | None:
    """Width of the silhouette's run through ``(cx, y)`` on row ``y``, if there is one."""
    row_index, col = round(y), round(cx)
    if not (0 <= row_index < silhouette.shape[0] and 0 <= col < silhouette.shape[1]):
        return None
    row = silhouette[row_index] > 0.5
    if not row[col]:
        return None
    outside = np.flatnonzero(~row)
    left = outside[outside < col]
    right = outside[outside > col]
    if left.size == 0 or right.size == 0:
        return None  # the run reaches the image's edge: not a body part
    return float(right[0] - left[-1] - 1)


def _stature(
    silhouette: NDArray[Any], cx: float, u: float, height: int
) -> tuple[float, float] | None:
    """Top of the head and standing height, when the silhouette shows the feet."""
    left, right = max(0, int(cx - 2 * u)), int(cx + 2 * u) + 1
    rows = np.flatnonzero((silhouette[:, left:right] > 0.5).any(axis=1))
    if rows.size == 0 or rows[-1] >= height - 2:
        return None
    top, bottom = float(rows[0]), float(rows[-1])
    if bottom - top < 4.5 * u:  # shorter than a standing person: a crop, not the feet
        return None
    return top, bottom - top


def _from_silhouette(
    silhouette: NDArray[Any], size: tuple[int, int], found: tuple[str, ...]
) -> Body:
    """No face: read the person's height off the silhouette, assuming an upright person."""
    solid = silhouette > 0.5
    rows = np.flatnonzero(solid.any(axis=1))
    top, bottom = float(rows[0]), float(rows[-1])
    tall = bottom - top
    cols = np.flatnonzero(solid[int(top) : int(top + 0.08 * tall) + 1].any(axis=0))
    cx = float(cols.mean())
    width = float(np.ptp(np.flatnonzero(solid.any(axis=0)))) + 1.0
    full_body = tall / max(width, 1.0) >= 1.8 or bottom < size[1] - 2
    head = tall / (_HEADS_TALL if full_body else 3.5)
    u = head / 1.3
    face = (cx - u / 2, top + 0.2 * head, u, u)
    return _from_face(face, size, silhouette, ("proportions", *found))


# BlazePose indices
_NOSE, _EYES, _EARS, _MOUTH = 0, (2, 5), (7, 8), (9, 10)
_SHOULDERS, _HIPS, _KNEES, _ANKLES = (11, 12), (23, 24), (25, 26), (27, 28)
_ELBOWS, _WRISTS, _HANDS = (13, 14), (15, 16), ((17, 19), (18, 20))


def _from_landmarks(marks: Landmarks, size: tuple[int, int]) -> Body:
    pts, vis = marks.points, marks.visibility
    shoulders = _pair(pts, _SHOULDERS)
    span = _dist(*shoulders)
    across = np.subtract(shoulders[1], shoulders[0]) / max(span, 1e-6)
    down = np.array([-across[1], across[0]])  # across rotated a quarter turn, pointing down
    if down[1] < 0:
        down = -down
    # Landmarks BlazePose is unsure of (out of frame, hidden) are extrapolated down the body.
    hips = _pair(pts, _HIPS)
    if vis[list(_HIPS)].min() < 0.5:
        hips = _shift(shoulders, down, 1.3 * span, 0.55)
    torso = _dist(_mid(shoulders), _mid(hips))
    legs = np.subtract(_mid(hips), _mid(shoulders))
    legs = legs / max(float(np.hypot(*legs)), 1e-6)
    knees = _pair(pts, _KNEES)
    if vis[list(_KNEES)].min() < 0.3:
        knees = _shift(hips, legs, 0.85 * torso, 0.95)
    ankles = _pair(pts, _ANKLES)
    if vis[list(_ANKLES)].min() < 0.3:
        ankles = _shift(knees, legs, 0.95 * _dist(_mid(hips), _mid(knees)), 0.9)
    return Body(
        width=size[0],
        height=size[1],
        tier="pose",
        found=("pose", "segmentation") if marks.mask is not None else ("pose",),
        shoulders=shoulders,
        hips=hips,
        knees=knees,
        ankles=ankles,
        face=_face_box(pts, vis),
        silhouette=marks.mask,
        arms=_forearms(pts, vis, size, span, marks.mask),
    )


def _face_box(pts: NDArray[Any], vis: NDArray[Any]) -> Box | None:
    if vis[_NOSE] < 0.5:
        return None
    ears = pts[list(_EARS)]
    eyes = pts[list(_EYES)]
    width = max(float(abs(ears[0, 0] - ears[1, 0])), 2.2 * float(abs(eyes[0, 0] - eyes[1, 0])), 4.0)
    eye_y = float(eyes[:, 1].mean())
    mouth_y = float(pts[list(_MOUTH), 1].mean())
    top = eye_y - 0.45 * width
    bottom = mouth_y + 0.35 * width
    x = float(pts[_NOSE, 0]) - 0.5 * width
    return (x, top, width, max(bottom - top, 1.0))


def _forearms(
    pts: NDArray[Any],
    vis: NDArray[Any],
    size: tuple[int, int],
    span: float,
    mask: NDArray[Any] | None,
) -> NDArray[Any] | None:
    arms = np.zeros((size[1], size[0]), np.float32)
    thick = max(2, round(0.2 * span))
    drawn = False
    for elbow, wrist, hand in zip(_ELBOWS, _WRISTS, _HANDS, strict=True):
        if min(vis[elbow], vis[wrist]) < 0.5:
            continue
        e, wr = _ipt(pts[elbow]), _ipt(pts[wrist])
        cv2.line(arms, e, wr, (1.0,), thick, cv2.LINE_AA)
        # the hand landmarks sit on the knuckles: the fingers reach about as far again
        tip = _ipt(pts[wrist] + 1.8 * (pts[list(hand)].mean(axis=0) - pts[wrist]))
        cv2.line(arms, wr, tip, (1.0,), round(thick * 1.3), cv2.LINE_AA)
        cv2.circle(arms, tip, round(thick * 0.7), (1.0,), -1, cv2.LINE_AA)
        drawn = True
    if not drawn:
        return None
    if mask is not None:
        arms *= np.clip((mask - 0.3) / 0.4, 0.0, 1.0)
    return arms


def _pair(pts: NDArray[Any], idx: tuple[int, int]) -> Pair:
    a = (float(pts[idx[0], 0]), float(pts[idx[0], 1]))
    b = (float(pts[idx[1], 0]), float(pts[idx[1], 1]))
    return (a, b) if a[0] <= b[0] else (b, a)


def _shift(pair: Pair, direction: NDArray[Any], length: float, narrow: float) -> Pair:
    """A pair moved ``length`` along ``direction`` and narrowed about its midpoint."""
    mid = np.add(_mid(pair), direction * length)
    half = np.subtract(pair[1], pair[0]) * narrow / 2
    a, b = mid - half, mid + half
    return ((float(a[0]), float(a[1])), (float(b[0]), float(b[1])))


def _mid(pair: Pair) -> Point:
    return ((pair[0][0] + pair[1][0]) / 2, (pair[0][1] + pair[1][1]) / 2)


def _dist(a: Point, b: Point) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def _ipt(p: NDArray[Any]) -> tuple[int, int]:
    return (round(float(p[0])), round(float(p[1])))
