"""The offline try-on engine: find the person, cut out each garment, fit it by category and
blend it in. Deterministic: same inputs and seed, same pixels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tryon_local.body import Body, locate
from tryon_local.bounds import MAX_GARMENTS
from tryon_local.category import Kind, guess_category
from tryon_local.composite import composite
from tryon_local.errors import GarmentUnusable
from tryon_local.faces import FaceDetector
from tryon_local.fit import Jitter, Layer, fit
from tryon_local.garment import Garment, cut_out
from tryon_local.pose import PoseModels, pose_available
from tryon_local.shoulders import follow_shoulders

__all__ = ["Engine"]

Category = Literal["auto", "tops", "bottoms", "one-pieces"]
_KINDS: tuple[Kind, ...] = ("tops", "bottoms", "one-pieces")
_DRAW_ORDER = {"bottoms": 0, "one-pieces": 1, "tops": 2}


class Engine:
    """Shareable across threads; build one and reuse it (models load once, lazily).

    :param use_pose: ``None`` uses the mediapipe tier when it is installed, ``False`` forces
        the base tier, ``True`` requires mediapipe (``ImportError`` with an install hint).
    """

    def __init__(self, *, use_pose: bool | None = None) -> None:
        self._auto = use_pose is None
        if use_pose is None:
            use_pose = pose_available()
        elif use_pose and not pose_available():
            raise ImportError("the pose tier needs mediapipe: install 'tryon-local[pose]'")
        self._faces = FaceDetector()
        self._pose: PoseModels | None = PoseModels() if use_pose else None

    @property
    def tier(self) -> Literal["pose", "base"]:
        """The best tier this engine tries first."""
        return "pose" if self._pose is not None else "base"

    def locate(self, person: Image.Image) -> Body:
        """Where the body is in ``person``; raises ``PersonNotFound``."""
        return self._locate(_rgb(person))

    def _locate(self, rgb: NDArray[Any]) -> Body:
        try:
            return locate(rgb, faces=self._faces, pose=self._pose)
        except ImportError:
            if not self._auto:
                raise
            # mediapipe is installed but cannot be imported: keep to the base tier from now on
            self._pose = None
            return locate(rgb, faces=self._faces, pose=None)

    def render(
        self,
        person: Image.Image,
        garments: Sequence[Image.Image],
        category: Category = "auto",
        seed: int | None = None,
    ) -> Image.Image:
        """One try-on image, the size of ``person``. ``seed=None`` gives the plain fit; a seed
        picks a slightly varied one."""
        return self.variations(person, garments, category, seed=seed, n=1)[0]

    def variations(
        self,
        person: Image.Image,
        garments: Sequence[Image.Image],
        category: Category = "auto",
        *,
        seed: int | None = None,
        n: int = 1,
    ) -> list[Image.Image]:
        """``n`` distinct try-on images. The person and garments are analysed once; each image
        varies the fit a little (scale, offset, angle), drawn from ``(seed, index)``. With
        ``seed=None`` the first image is the plain fit."""
        if n < 1:
            raise ValueError("n must be at least 1")
        if category not in ("auto", *_KINDS):
            raise ValueError(f"unknown category {category!r}")
        if not garments:
            raise GarmentUnusable("at least one garment image is needed")
        if len(garments) > MAX_GARMENTS:
            raise GarmentUnusable(f"at most {MAX_GARMENTS} garments can be worn at once")
        rgb = _rgb(person)
        body = self._locate(rgb)
        cutouts = [cut_out(g) for g in garments]
        worn = sorted(
            zip(_kinds(cutouts, category), cutouts, strict=True),
            key=lambda pair: _DRAW_ORDER[pair[0]],
        )
        images = []
        for index in range(n):
            jitter = _jitter(seed, index)
            layers = [_worn(fit(garment, kind, body, jitter), body) for kind, garment in worn]
            images.append(Image.fromarray(composite(rgb, layers, body), "RGB"))
        return images


def _worn(layer: Layer, body: Body) -> Layer:
    """A top or one-piece reaches up to the person's shoulders, where their outline is known."""
    if layer.kind == "bottoms" or body.silhouette is None:
        return layer
    return follow_shoulders(layer, body.silhouette, body.shoulder_span)


def _kinds(cutouts: Sequence[Garment], category: Category) -> list[Kind]:
    """One garment: as asked, or guessed. Two: an outfit of a top and bottoms."""
    if len(cutouts) == 1:
        return [guess_category(cutouts[0]) if category == "auto" else category]
    if category == "one-pieces":
        raise GarmentUnusable("a one-piece cannot be worn with a second garment")
    if category == "tops":
        return ["tops", "bottoms"]
    if category == "bottoms":
        return ["bottoms", "tops"]
    guesses = [guess_category(g) for g in cutouts]
    if sorted(guesses) == ["bottoms", "tops"]:
        return guesses
    return ["tops", "bottoms"]


def _jitter(seed: int | None, index: int) -> Jitter:
    if seed is None and index == 0:
        return Jitter()
    rng = np.random.default_rng([(seed or 0) % 2**64, index])
    return Jitter.draw(rng)


def _rgb(image: Image.Image) -> NDArray[Any]:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return np.asarray(flat)
    return np.asarray(image.convert("RGB"))
