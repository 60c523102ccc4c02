"""``[providers.openrouter]``: the key, the attribution headers, and the models an operator lists.

Each model is a table under ``models``, keyed by the gateway's own slug (``vendor/model``, one
slash) and naming OpenRouter's slug in ``upstream``::

    [providers.openrouter.models."openrouter/gemini-2.5-flash-image"]
    upstream = "google/gemini-2.5-flash-image"
    credits = 5
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from tryon_core.plugin import ProviderConfig
from tryon_openrouter.options import ImageConfigKey

__all__ = ["DEFAULT_BASE_URL", "UPSTREAM_SLUG", "ConfiguredModel", "OpenRouterConfig"]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
#: OpenRouter's model ids: ``author/slug``, optionally with a variant (``:free``, ``:nitro``).
UPSTREAM_SLUG = r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(:[a-z0-9._-]+)?$"

Modality = Literal["image", "text"]


class ConfiguredModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ``[providers.openrouter.models."SLUG"]`` table."""

    upstream: Annotated[str, msgspec.Meta(pattern=UPSTREAM_SLUG)]
    """OpenRouter's slug of the model, as in ``google/gemini-2.5-flash-image``."""
    credits: Annotated[int, msgspec.Meta(ge=0)]
    """The price in credits per output image."""
    name: str | None = None
    description: str | None = None
    modalities: tuple[Modality, ...] = ("image", "text")
    """Sent as ``modalities``: ``["image", "text"]`` for models that answer with both
    (Gemini), ``["image"]`` for image-only models (FLUX, Seedream), which refuse ``text``."""
    max_garments: Annotated[int, msgspec.Meta(ge=1, le=4)] = 2
    """Garment photos per request; with the person photo the model gets one image more."""
    image_config: tuple[ImageConfigKey, ...] = ("aspect_ratio",)
    """The ``image_config`` keys the model takes: the per-model options clients may send."""

    def __post_init__(self) -> None:
        if "image" not in self.modalities:
            raise ValueError("modalities must include 'image'")
        if len(set(self.modalities)) != len(self.modalities):
            raise ValueError("modalities must not repeat a modality")
        if len(set(self.image_config)) != len(self.image_config):
            raise ValueError("image_config must not repeat a key")


class OpenRouterConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``[providers.openrouter]``: ``api_key`` (``sk-or-…``) is required when enabled."""

    secrets = ("api_key",)

    api_key: str | None = None
    base_url: str | None = DEFAULT_BASE_URL
    http_referer: str | None = None
    """Sent as ``HTTP-Referer``: the site OpenRouter attributes the usage to."""
    app_title: str | None = None
    """Sent as ``X-OpenRouter-Title``: the app's name in OpenRouter's rankings."""
    data_collection: Literal["allow", "deny"] | None = None
    """Sent as ``provider.data_collection``; ``"deny"`` keeps the photos away from providers
    that may store or train on them. Unset: the account's own setting."""
    models: dict[str, ConfiguredModel] = msgspec.field(default_factory=dict)
    """The gateway's slug -> the OpenRouter model it runs."""
