"""Facts of the Gemini API's wire protocol that the adapter and the fake both rely on.

Sources: /work/shared/WIRE.md section 2 (python-genai ``types.py``, ``models.py``; the
official 1K size table as mirrored by docs.gptproto.com).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "ASPECT_RATIOS",
    "MAX_IMAGE_BYTES",
    "MAX_REQUEST_BYTES",
    "GeminiOptions",
    "closest_aspect_ratio",
    "parse_duration",
]

#: Output sizes of gemini-2.5-flash-image per ``imageConfig.aspectRatio`` (1K, the only size).
ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}

AspectRatio = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]


class GeminiOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of gemini-2.5-flash-image (``generationConfig.imageConfig``)."""

    aspect_ratio: (
        Annotated[
            AspectRatio,
            msgspec.Meta(
                description="The output's aspect ratio (default: the one closest to the "
                "person photo's, so the framing is kept)."
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


#: The Gemini API refuses larger request bodies: "Request payload size exceeds the limit:
#: 20971520 bytes." (inline data: total request < 20 MB).
MAX_REQUEST_BYTES = 20 * 1024 * 1024

#: Per input image (model card: <= 7 MB each). Decimal megabytes, the safer reading.
MAX_IMAGE_BYTES = 7_000_000

_DURATION = re.compile(r"^\s*(\d+)(?:\.(\d{1,9}))?s\s*$")


def closest_aspect_ratio(width: int, height: int) -> str:
    """The supported ratio nearest to ``width:height`` (compared on a log scale)."""
    if width <= 0 or height <= 0:
        raise ValueError("width and height must be positive")
    wanted = math.log(width / height)
    return min(
        ASPECT_RATIOS,
        key=lambda ratio: abs(wanted - math.log(_ratio(ratio))),
    )


def _ratio(name: str) -> float:
    across, _, down = name.partition(":")
    return int(across) / int(down)


def parse_duration(value: Any) -> float | None:
    """Seconds from a protobuf ``Duration`` in JSON: ``"37s"``, ``"45.800s"`` (or the
    ``{"seconds", "nanos"}`` object form). None for anything else, negatives included."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            return None
        seconds, fraction = match.groups()
        return int(seconds) + (int(fraction.ljust(9, "0")) / 1e9 if fraction else 0.0)
    if isinstance(value, dict):
        seconds, nanos = value.get("seconds", 0), value.get("nanos", 0)
        if isinstance(seconds, str) and seconds.isdigit():
            seconds = int(seconds)  # proto3 JSON renders int64 as a string
        if (
            isinstance(seconds, int)
            and isinstance(nanos, int)
            and not isinstance(seconds, bool)
            and not isinstance(nanos, bool)
            and seconds >= 0
            and 0 <= nanos < 1_000_000_000
        ):
            return seconds + nanos / 1e9
    return None
