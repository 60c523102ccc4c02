"""Regenerate the two sample images deterministically: ``uv run python samples/make_samples.py``.

``person.jpg`` is a drawn, front-facing standing figure on a plain studio background (768x1024)
and ``garment.png`` a T-shirt product photo on a near-white background. Both are procedural, so
the repository ships no third-party imagery. The engine knows nothing about them: tests and the
benchmark feed them in like any upload.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SS = 2  # supersampling factor: draw at 2x, then downsample for anti-aliased edges

Color = tuple[float, float, float]


def _pts(points: list[tuple[float, float]]) -> np.ndarray:
    return (np.asarray(points, dtype=np.float64) * SS * 16).round().astype(np.int32)


def _poly(shape: tuple[int, int], points: list[tuple[float, float]]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [_pts(points)], 255, cv2.LINE_AA, shift=4)
    return mask


def _ellipse(
    shape: tuple[int, int], center: tuple[float, float], axes: tuple[float, float], angle: float = 0
) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    c = (round(center[0] * SS * 16), round(center[1] * SS * 16))
    a = (round(axes[0] * SS * 16), round(axes[1] * SS * 16))
    cv2.ellipse(mask, c, a, angle, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
    return mask


def _limb(shape: tuple[int, int], points: list[tuple[float, float]], width: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    pts = _pts(points)
    thickness = round(width * SS)
    for a, b in itertools.pairwise(pts):
        cv2.line(mask, tuple(a), tuple(b), 255, thickness, cv2.LINE_AA, shift=4)
    return mask


def _roundness(mask: np.ndarray, depth: float) -> np.ndarray:
    """Shade a flat shape as if rounded: darker towards its outline (distance transform)."""
    dist = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 5)
    norm = np.clip(dist / max(depth * SS, 1.0), 0.0, 1.0)
    return (0.62 + 0.38 * np.sqrt(norm)).astype(np.float32)


def _paint(
    canvas: np.ndarray,
    mask: np.ndarray,
    color: Color,
    shade: np.ndarray | float = 1.0,
) -> None:
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    layer = np.asarray(color, np.float32)[None, None, :] * np.asarray(shade, np.float32)[..., None]
    canvas[:] = canvas * (1.0 - alpha) + layer * alpha


def _light(shape: tuple[int, int]) -> np.ndarray:
    """A soft key light from the upper left."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return (1.06 - 0.12 * (xx / w) - 0.06 * (yy / h)).astype(np.float32)


def make_person() -> Image.Image:
    w, h = 768, 1024
    shape = (h * SS, w * SS)
    yy = np.linspace(0.0, 1.0, shape[0], dtype=np.float32)[:, None, None]
    canvas = np.array([226, 222, 216], np.float32) * (1 - yy) + np.array([196, 192, 186]) * yy
    canvas = np.broadcast_to(canvas, (*shape, 3)).astype(np.float32).copy()
    light = _light(shape)

    # floor shadow under the feet
    _paint(canvas, _ellipse(shape, (384, 992), (150, 18)), (150, 146, 140), 1.0)

    skin: Color = (224, 172, 140)
    shirt: Color = (58, 96, 120)
    jeans: Color = (52, 62, 92)

    # legs (jeans) and shoes
    for side in (-1, 1):
        leg = _poly(
            shape,
            [
                (384 + side * 4, 540),
                (384 + side * 92, 540),
                (384 + side * 86, 770),
                (384 + side * 66, 960),
                (384 + side * 30, 960),
                (384 + side * 16, 770),
                (384 + side * 6, 600),
            ],
        )
        _paint(canvas, leg, jeans, _roundness(leg, 40) * light)
        shoe = _ellipse(shape, (384 + side * 50, 975), (36, 16))
        _paint(canvas, shoe, (40, 36, 34), _roundness(shoe, 10))

    # arms: upper arm in the sleeve, bare forearm and hand, hanging slightly away from the body
    for side in (-1, 1):
        forearm = _limb(
            shape,
            [
                (384 + side * 150, 400),
                (384 + side * 168, 560),
                (384 + side * 172, 600),
            ],
            40,
        )
        _paint(canvas, forearm, skin, _roundness(forearm, 18) * light)
        hand = _ellipse(shape, (384 + side * 173, 622), (20, 32), side * -4)
        _paint(canvas, hand, skin, _roundness(hand, 12) * light)
        upper = _limb(shape, [(384 + side * 114, 284), (384 + side * 150, 420)], 46)
        _paint(canvas, upper, skin, _roundness(upper, 20) * light)

    # neck
    neck = _poly(shape, [(360, 168), (408, 168), (412, 252), (356, 252)])
    _paint(canvas, neck, skin, _roundness(neck, 20) * light * 0.9)

    # T-shirt: torso and short sleeves
    torso = _poly(
        shape,
        [
            (350, 236),
            (384, 262),
            (418, 236),
            (494, 256),
            (512, 290),
            (486, 340),
            (478, 450),
            (484, 560),
            (284, 560),
            (290, 450),
            (282, 340),
            (256, 290),
            (274, 256),
        ],
    )
    for side in (-1, 1):
        sleeve = _poly(
            shape,
            [
                (384 + side * 100, 250),
                (384 + side * 140, 262),
                (384 + side * 176, 352),
                (384 + side * 128, 370),
                (384 + side * 100, 320),
            ],
        )
        _paint(canvas, sleeve, shirt, _roundness(sleeve, 22) * light)
    _paint(canvas, torso, shirt, _roundness(torso, 90) * light)
    collar = _limb(shape, [(352, 238), (384, 262), (416, 238)], 7)
    _paint(canvas, collar, (46, 78, 98), 1.0)
    belt = _poly(shape, [(284, 548), (484, 548), (484, 562), (284, 562)])
    _paint(canvas, belt, (48, 36, 30), 1.0)

    _draw_head(canvas, shape, light, skin)

    blurred = cv2.GaussianBlur(canvas, (0, 0), 0.8 * SS)
    small = cv2.resize(blurred, (w, h), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(7)
    small += rng.normal(0.0, 2.2, small.shape).astype(np.float32)
    return Image.fromarray(np.clip(small, 0, 255).round().astype(np.uint8), "RGB")


def _draw_head(canvas: np.ndarray, shape: tuple[int, int], light: np.ndarray, skin: Color) -> None:
    cx, cy = 384.0, 120.0
    hair: Color = (52, 36, 28)
    # hair behind the head
    back = _ellipse(shape, (cx, cy - 10), (58, 66))
    _paint(canvas, back, hair, _roundness(back, 14))
    for side in (-1, 1):
        ear = _ellipse(shape, (cx + side * 50, cy + 6), (9, 16))
        _paint(canvas, ear, skin, _roundness(ear, 6) * 0.9)
    chin_shadow = _ellipse(shape, (cx, cy + 58), (26, 16))
    _paint(canvas, chin_shadow, (168, 120, 96), 1.0)
    face = _ellipse(shape, (cx, cy + 4), (48, 62))
    _paint(canvas, face, skin, _roundness(face, 34) * light)
    # fringe
    fringe = _poly(
        shape,
        [
            (cx - 52, cy - 10),
            (cx - 48, cy - 48),
            (cx - 20, cy - 66),
            (cx + 20, cy - 66),
            (cx + 48, cy - 48),
            (cx + 52, cy - 10),
            (cx + 40, cy - 36),
            (cx, cy - 44),
            (cx - 40, cy - 36),
        ],
    )
    _paint(canvas, fringe, hair, _roundness(fringe, 8))
    # eye sockets: the dark band the frontal-face cascade keys on
    for side in (-1, 1):
        socket = _ellipse(shape, (cx + side * 20, cy - 2), (17, 10))
        _paint(canvas, socket, (170, 118, 96), 1.0)
        white = _ellipse(shape, (cx + side * 20, cy), (10, 5))
        _paint(canvas, white, (236, 232, 226), 1.0)
        iris = _ellipse(shape, (cx + side * 19, cy), (5, 5))
        _paint(canvas, iris, (40, 28, 22), 1.0)
        brow = _limb(
            shape,
            [
                (cx + side * 8, cy - 14),
                (cx + side * 20, cy - 18),
                (cx + side * 33, cy - 14),
            ],
            5,
        )
        _paint(canvas, brow, (50, 34, 26), 1.0)
    # nose: bright bridge, shadowed sides and nostrils
    for side in (-1, 1):
        shadow = _limb(shape, [(cx + side * 7, cy + 4), (cx + side * 9, cy + 24)], 5)
        _paint(canvas, shadow, (186, 130, 104), 1.0)
        nostril = _ellipse(shape, (cx + side * 6, cy + 29), (4, 2.5))
        _paint(canvas, nostril, (120, 72, 58), 1.0)
    bridge = _limb(shape, [(cx, cy + 2), (cx, cy + 24)], 6)
    _paint(canvas, bridge, (240, 196, 166), 1.0)
    mouth = _ellipse(shape, (cx, cy + 44), (14, 4.5))
    _paint(canvas, mouth, (160, 80, 74), 1.0)
    lip_line = _limb(shape, [(cx - 13, cy + 44), (cx + 13, cy + 44)], 2)
    _paint(canvas, lip_line, (100, 48, 44), 1.0)


def make_garment() -> Image.Image:
    w, h = 600, 640
    shape = (h * SS, w * SS)
    canvas = np.full((*shape, 3), 246.0, np.float32)
    color: Color = (200, 58, 52)
    back_neck = [(300 + 64 * np.cos(t), 56 + 10 * np.sin(t)) for t in np.linspace(np.pi, 0, 9)]
    front_neck = [(300 + 64 * np.cos(t), 58 + 40 * np.sin(t)) for t in np.linspace(0, np.pi, 9)]
    outline = [
        (364, 58),
        (452, 84),
        (580, 210),
        (520, 292),
        (470, 250),
        (468, 600),
        (132, 600),
        (130, 250),
        (80, 292),
        (20, 210),
        (148, 84),
        (236, 58),
    ]
    body = _poly(shape, [*back_neck[1:-1], *outline])
    shadow = cv2.GaussianBlur(body, (0, 0), 10 * SS)
    shadow = np.roll(shadow, (8 * SS, 6 * SS), axis=(0, 1))
    _paint(canvas, shadow, (214, 214, 214), 1.0)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    ripple = np.sin(xx / (37.0 * SS)) * np.cos(yy / (53.0 * SS))
    folds = 1.0 - 0.06 * ripple - 0.05 * (yy / shape[0])
    _paint(canvas, body, color, folds * _roundness(body, 40) ** 0.4)
    inside = _poly(shape, [*back_neck, *front_neck[1:-1]])
    _paint(canvas, inside, (150, 40, 38), 1.0)
    rib = _limb(shape, front_neck[1:-1], 9)
    _paint(canvas, rib, (176, 48, 44), 1.0)
    hem = _limb(shape, [(134, 586), (466, 586)], 3)
    _paint(canvas, hem, (170, 46, 42), 1.0)
    for side in (-1, 1):
        cuff = _limb(shape, [(300 + side * 266, 209), (300 + side * 214, 280)], 3)
        _paint(canvas, cuff, (170, 46, 42), 1.0)
    small = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    return Image.fromarray(np.clip(small, 0, 255).round().astype(np.uint8), "RGB")


def main() -> None:
    make_person().save(HERE / "person.jpg", quality=88, optimize=True)
    make_garment().save(HERE / "garment.png", optimize=True)


if __name__ == "__main__":
    main()
