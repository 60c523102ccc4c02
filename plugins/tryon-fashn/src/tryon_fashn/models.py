"""The ``[providers.fashn]`` section, FASHN's try-on options and the two models, with prices."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from tryon_core.plugin import Capabilities, ModelSpec, ProviderConfig

__all__ = [
    "CREDITS_PER_IMAGE",
    "DEFAULT_BASE_URL",
    "MAX_SAMPLES",
    "MODELS",
    "TRYON_V1_5",
    "TRYON_V1_6",
    "UPSTREAM_NAMES",
    "FashnConfig",
    "FashnOptions",
]

DEFAULT_BASE_URL = "https://api.fashn.ai"
"""The API's origin, as FASHN's SDKs have it: the paths carry the version (``/v1/run``)."""

CREDITS_PER_IMAGE = 8
"""Default price of one output image. FASHN charges 1 API credit per image (docs.fashn.ai,
tryon-v1.6 page); its pay-as-you-go credit costs about US$0.075 (the price fal lists for the
same model), so 8 credits at 1 credit ~ US$0.01, rounded up. UNCONFIRMED: FASHN's own price
list was not readable here, and volume plans cost less per credit."""

MAX_SAMPLES = 4
"""``num_samples`` takes 1 to 4 (the official SDK's TryOnRequestInputs)."""


class FashnConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``[providers.fashn]``: ``api_key`` is required when ``enabled = true``."""

    secrets = ("api_key",)

    api_key: str | None = None
    base_url: str | None = DEFAULT_BASE_URL
    poll_interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    """Seconds before the second status query; later ones back off (x1.5) up to 5 s."""
    return_base64: bool = True
    """Ask for the results as data URIs in the status answer (kept 60 min, never stored by
    FASHN) rather than as CDN links (kept 72 h) that the gateway then downloads."""


class FashnOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """FASHN's own try-on settings. Unset ones are left to FASHN's defaults."""

    mode: (
        Annotated[
            Literal["performance", "balanced", "quality"],
            msgspec.Meta(
                description="Speed against quality: performance (~5 s), balanced (~8 s) or "
                "quality (12-17 s). FASHN's default: balanced."
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    garment_photo_type: (
        Annotated[
            Literal["auto", "flat-lay", "model"],
            msgspec.Meta(
                description="What the garment photo shows: a flat-lay or ghost-mannequin "
                "shot, or a garment worn by a model. FASHN's default: auto (FASHN tells)."
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    moderation_level: (
        Annotated[
            Literal["conservative", "permissive", "none"],
            msgspec.Meta(
                description="FASHN's moderation of the garment: conservative also blocks "
                "underwear, swimwear and revealing outfits; permissive blocks explicit nudity; "
                "none moderates nothing."
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    segmentation_free: (
        Annotated[
            bool,
            msgspec.Meta(
                description="Fit the garment without segmenting the clothes worn (better for "
                "bulky garments); false when the original garments show through. FASHN's "
                "default: true."
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


def _capabilities() -> Capabilities:
    return Capabilities(
        execution="submit-poll",
        max_garments=1,
        max_outputs=MAX_SAMPLES,
        input_formats=("image/jpeg", "image/png", "image/webp"),
        uses_prompt=False,
        supports_seed=True,
        keyed_tasks=False,  # FASHN finds a prediction by its id only: the id is recorded
    )


TRYON_V1_6 = ModelSpec(
    slug="fashn/tryon-v1.6",
    name="FASHN Virtual Try-On v1.6",
    description=(
        "FASHN's dedicated try-on model, direct: one garment (flat-lay or worn by a model) on "
        "the person photo, 864x1296, up to four samples per request."
    ),
    credits=CREDITS_PER_IMAGE,
    owned_by="fashn",
    capabilities=_capabilities(),
    options=FashnOptions,
)

TRYON_V1_5 = ModelSpec(
    slug="fashn/tryon-v1.5",
    name="FASHN Virtual Try-On v1.5",
    description=(
        "FASHN's previous try-on model, direct: one garment on the person photo, 576x864, "
        "slightly faster than v1.6, up to four samples per request."
    ),
    credits=CREDITS_PER_IMAGE,
    owned_by="fashn",
    capabilities=_capabilities(),
    options=FashnOptions,
)

MODELS = (TRYON_V1_6, TRYON_V1_5)

UPSTREAM_NAMES = {TRYON_V1_6.slug: "tryon-v1.6", TRYON_V1_5.slug: "tryon-v1.5"}
"""Our slug -> FASHN's ``model_name``."""
