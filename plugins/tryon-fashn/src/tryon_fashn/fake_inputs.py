"""What the fake FASHN API checks in a ``POST /v1/run`` body, and how it reads the images.

Two stages, as FASHN has them: the body's shape is checked when it arrives (a 400
``BadRequest`` and no prediction); the images are loaded when the prediction runs (a
prediction that ends ``failed`` with ``ImageLoadError``), as FASHN's own runtime errors say:
"For Base64 - include proper data:image/format;base64 prefix".
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any

from PIL import Image

__all__ = [
    "CATEGORIES",
    "MODEL_NAMES",
    "OPTIONAL_INPUTS",
    "check_run",
    "load_image",
]

MODEL_NAMES = ("tryon-v1.6", "tryon-v1.5")
CATEGORIES = ("auto", "tops", "bottoms", "one-pieces")
ENUMS: dict[str, tuple[str, ...]] = {
    "category": CATEGORIES,
    "garment_photo_type": ("auto", "flat-lay", "model"),
    "mode": ("performance", "balanced", "quality"),
    "moderation_level": ("conservative", "permissive", "none"),
    "output_format": ("png", "jpeg"),
}
BOOLEANS = ("return_base64", "segmentation_free")
INTEGERS: dict[str, tuple[int, int]] = {"num_samples": (1, 4), "seed": (0, 2**32 - 1)}
OPTIONAL_INPUTS = (*ENUMS, *BOOLEANS, *INTEGERS)

_PREFIX = re.compile(r"data:image/(jpeg|jpg|png|webp);base64,")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_PIL_TYPES = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}


def check_run(body: Any) -> tuple[str, dict[str, Any]] | str:
    """The model name and inputs of a run body, or the ``BadRequest`` message refusing it."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object."
    unknown = sorted(set(body) - {"model_name", "inputs"})
    if unknown:
        return f"Unknown field: {unknown[0]}."
    model_name, inputs = body.get("model_name"), body.get("inputs")
    if model_name not in MODEL_NAMES:
        return f"model_name must be one of {', '.join(MODEL_NAMES)} (this fake serves try-on)."
    if not isinstance(inputs, dict):
        return "inputs is required and must be an object."
    problem = _check_inputs(inputs)
    return problem if problem is not None else (str(model_name), inputs)


def _check_inputs(inputs: dict[str, Any]) -> str | None:
    unknown = sorted(set(inputs) - {"model_image", "garment_image", *OPTIONAL_INPUTS})
    if unknown:
        return f"Unknown input: {unknown[0]}."
    for field in ("model_image", "garment_image"):
        if not isinstance(inputs.get(field), str) or not inputs[field]:
            return f"{field} is required and must be a string."
    for field, allowed in ENUMS.items():
        if field in inputs and inputs[field] not in allowed:
            return f"{field} must be one of {', '.join(allowed)}."
    for field in BOOLEANS:
        if field in inputs and not isinstance(inputs[field], bool):
            return f"{field} must be a boolean."
    for field, (low, high) in INTEGERS.items():
        value = inputs.get(field, low)
        if type(value) is not int or not low <= value <= high:
            return f"{field} must be an integer from {low} to {high}."
    return None


def load_image(value: str, field: str) -> tuple[bytes, dict[str, Any]] | str:
    """The image bytes a prediction reads from ``value`` and a summary, or why it cannot
    (the ``ImageLoadError`` message)."""
    if value.startswith(("http://", "https://")):
        return f"Unable to load {field}: this fake downloads no URLs."
    if value.startswith("saved:"):
        return f"Unable to load {field}: no saved model named {value[6:]!r}."
    prefix = _PREFIX.match(value)
    if prefix is None:
        return f"Unable to load {field}: base64 must start with data:image/<format>;base64,"
    text = value[prefix.end() :]
    if len(text) % 4 or not _BASE64.fullmatch(text):
        return f"Unable to load {field}: the base64 is not valid."
    try:
        data = base64.b64decode(text, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            found, size = _PIL_TYPES.get(image.format or ""), image.size
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError):
        return f"Unable to load {field}: the data is not a readable image."
    declared = "jpeg" if prefix.group(1) == "jpg" else prefix.group(1)
    if found != declared:
        return f"Unable to load {field}: the prefix says image/{declared}, the data is {found}."
    return data, {"type": declared, "width": size[0], "height": size[1], "bytes": len(data)}
