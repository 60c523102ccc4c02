"""The ``POST /v1/run`` body for one try-on request.

    {"model_name": "tryon-v1.6" | "tryon-v1.5",
     "inputs": {"model_image": DATA_URL, "garment_image": DATA_URL, "category": C,
                "num_samples": n, "output_format": "png" | "jpeg", "return_base64": B,
                ["seed": S,] [mode, garment_photo_type, moderation_level, segmentation_free]}}

Images go as base64 data URLs (FASHN reads base64 only with its ``data:image/...;base64,``
prefix), kept as they came when they are JPEG, PNG or WebP of at most 2000 px a side (FASHN's
preprocessing guide for its 1K endpoints); larger ones are scaled down. A WebP output is asked
for as PNG (FASHN makes PNG or JPEG) and converted by the core.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tryon_core.plugin import InputImage, ProviderRequest, fit_image_base64
from tryon_fashn.models import UPSTREAM_NAMES, FashnConfig

__all__ = ["FORMATS", "MAX_SIDE", "data_url", "run_body"]

FORMATS = ("image/jpeg", "image/png", "image/webp")
MAX_SIDE = 2000


def run_body(request: ProviderRequest, config: FashnConfig) -> dict[str, Any]:
    """The JSON object to submit. Re-encodes images when they need it: may be CPU-bound."""
    inputs: dict[str, Any] = {
        "model_image": data_url(request.person),
        "garment_image": data_url(request.garments[0]),
        "category": request.category,
        "num_samples": request.n,
        "output_format": "jpeg" if request.output_format == "jpeg" else "png",
        "return_base64": config.return_base64,
    }
    if request.seed is not None:
        inputs["seed"] = request.seed
    if request.options is not None:
        inputs.update(msgspec.to_builtins(request.options))  # unset options are left out
    return {"model_name": UPSTREAM_NAMES[request.model], "inputs": inputs}


def data_url(image: InputImage) -> str:
    """The image as FASHN takes base64: ``data:image/TYPE;base64,...``."""
    text, content_type = fit_image_base64(image, formats=FORMATS, max_side=MAX_SIDE)
    return f"data:{content_type};base64,{text}"
