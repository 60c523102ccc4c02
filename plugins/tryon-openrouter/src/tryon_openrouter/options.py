"""The per-model options: the ``image_config`` keys OpenRouter documents for image models.

OpenRouter's ``image_config`` is free-form and model-specific; two keys are shared by many
image models (guides/overview/multimodal/image-generation): ``aspect_ratio`` and
``image_size``. An operator says per model which of them it takes
(``[providers.openrouter.models."SLUG"] image_config = [...]``); the model then declares an
options type holding exactly those, each ``UNSET`` unless the client sends it.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = [
    "ASPECT_RATIOS",
    "IMAGE_CONFIG_KEYS",
    "IMAGE_SIZES",
    "AspectRatioOption",
    "ImageConfigKey",
    "ImageConfigOptions",
    "ImageSizeOption",
    "nearest_aspect_ratio",
    "options_type",
]

AspectRatio = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
ImageSize = Literal["0.5K", "1K", "2K", "4K"]
ImageConfigKey = Literal["aspect_ratio", "image_size"]

ASPECT_RATIOS: tuple[str, ...] = AspectRatio.__args__  # type: ignore[attr-defined]
IMAGE_SIZES: tuple[str, ...] = ImageSize.__args__  # type: ignore[attr-defined]
IMAGE_CONFIG_KEYS: tuple[str, ...] = ImageConfigKey.__args__  # type: ignore[attr-defined]

_ASPECT = msgspec.Meta(
    description=(
        "image_config.aspect_ratio: the output's width:height. Unset: the supported ratio "
        "nearest to the person photo's."
    )
)
_SIZE = msgspec.Meta(
    description=(
        "image_config.image_size: the output's resolution (1K is OpenRouter's default; "
        "0.5K only on some models). Unset: the model's default."
    )
)


class AspectRatioOption(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of an OpenRouter image model that takes ``image_config.aspect_ratio``."""

    aspect_ratio: Annotated[AspectRatio, _ASPECT] | msgspec.UnsetType = msgspec.UNSET


class ImageSizeOption(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of an OpenRouter image model that takes ``image_config.image_size``."""

    image_size: Annotated[ImageSize, _SIZE] | msgspec.UnsetType = msgspec.UNSET


class ImageConfigOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of an OpenRouter image model that takes both shared ``image_config`` keys."""

    aspect_ratio: Annotated[AspectRatio, _ASPECT] | msgspec.UnsetType = msgspec.UNSET
    image_size: Annotated[ImageSize, _SIZE] | msgspec.UnsetType = msgspec.UNSET


_TYPES: dict[frozenset[str], type[msgspec.Struct]] = {
    frozenset({"aspect_ratio"}): AspectRatioOption,
    frozenset({"image_size"}): ImageSizeOption,
    frozenset({"aspect_ratio", "image_size"}): ImageConfigOptions,
}


def options_type(keys: tuple[str, ...]) -> type[msgspec.Struct] | None:
    """The options type of a model taking these ``image_config`` keys (None for none)."""
    return _TYPES.get(frozenset(keys))


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The documented ratio that distorts ``width:height`` the least (by their quotient)."""
    shape = width / height

    def stretch(ratio: str) -> float:
        across, down = (int(side) for side in ratio.split(":"))
        quotient = shape * down / across
        return max(quotient, 1 / quotient)

    return min(ASPECT_RATIOS, key=stretch)
