"""The ``[providers.kling]`` section and the two Kolors try-on models, with their prices."""

from __future__ import annotations

from typing import Annotated

import msgspec

from tryon_core.plugin import Capabilities, ModelSpec, ProviderConfig

__all__ = [
    "CREDITS_PER_IMAGE",
    "DEFAULT_BASE_URL",
    "KOLORS_V1",
    "KOLORS_V1_5",
    "MAX_INPUT_BYTES",
    "MIN_INPUT_SIDE",
    "MODELS",
    "UPSTREAM_NAMES",
    "KlingConfig",
]

DEFAULT_BASE_URL = "https://api-singapore.klingai.com"

CREDITS_PER_IMAGE = 7
"""Default price of one try-on image, for both models (operators override it per model)."""

MAX_INPUT_BYTES = 10 * 1024 * 1024
"""Kling takes images of at most 10 MB..."""
MIN_INPUT_SIDE = 300
"""...whose sides are each at least 300 px, as JPEG or PNG (WebP is re-encoded for it)."""


class KlingConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``[providers.kling]``: both keys are required when ``enabled = true``."""

    secrets = ("access_key", "secret_key")

    access_key: str | None = None
    secret_key: str | None = None
    base_url: str | None = DEFAULT_BASE_URL
    poll_interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    """Seconds before the second status query; later ones back off (x1.5) up to 5 s."""


def _capabilities(max_garments: int) -> Capabilities:
    return Capabilities(
        execution="submit-poll",
        max_garments=max_garments,
        max_outputs=1,  # Kling has no `n`: one image per task
        input_formats=("image/jpeg", "image/png", "image/webp"),
        max_input_bytes=MAX_INPUT_BYTES,
        min_input_side=MIN_INPUT_SIDE,
        uses_prompt=False,
        supports_seed=False,
        keyed_tasks=True,  # external_task_id: a task is found by the attempt's key
    )


KOLORS_V1_5 = ModelSpec(
    slug="kling/kolors-v1-5",
    name="Kolors Virtual Try-On v1.5 (Kling)",
    description=(
        "Kling's dedicated try-on model: one garment of any kind, or a top and a bottom "
        "together. The person's face, pose and background are kept."
    ),
    credits=CREDITS_PER_IMAGE,
    owned_by="kling",
    capabilities=_capabilities(max_garments=2),
)

KOLORS_V1 = ModelSpec(
    slug="kling/kolors-v1",
    name="Kolors Virtual Try-On v1 (Kling)",
    description="Kling's first dedicated try-on model: one garment (top, bottom or dress).",
    credits=CREDITS_PER_IMAGE,
    owned_by="kling",
    capabilities=_capabilities(max_garments=1),
)

MODELS = (KOLORS_V1_5, KOLORS_V1)

UPSTREAM_NAMES = {
    KOLORS_V1_5.slug: "kolors-virtual-try-on-v1-5",
    KOLORS_V1.slug: "kolors-virtual-try-on-v1",
}
"""Our slug -> Kling's ``model_name``."""
