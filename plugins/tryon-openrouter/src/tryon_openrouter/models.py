"""The models an operator lists in ``[providers.openrouter.models]``, as the gateway serves them.

Nothing is registered in code: which OpenRouter models to offer, and at what price, is the
operator's choice (``ProviderSpec.models_from_config``).
"""

from __future__ import annotations

import re

from tryon_core.plugin import Capabilities, ModelSpec
from tryon_openrouter.config import ConfiguredModel, OpenRouterConfig
from tryon_openrouter.options import options_type

__all__ = ["models_from_config", "spec_of"]

_ONE_SLASH = re.compile(r"^[^/]+/[^/]+$")


def models_from_config(config: OpenRouterConfig) -> list[ModelSpec]:
    """One ModelSpec per configured model; ValueError for a slug the gateway cannot route."""
    for slug, model in config.models.items():
        if not _ONE_SLASH.match(slug):
            raise ValueError(
                f'models."{slug}": a gateway slug is vendor/model with one slash; name a '
                f'local slug such as "openrouter/{slug.rsplit("/", 1)[-1]}" and put '
                f'OpenRouter\'s slug in upstream (here "{model.upstream}")'
            )
    return [spec_of(slug, model) for slug, model in config.models.items()]


def spec_of(slug: str, model: ConfiguredModel) -> ModelSpec:
    """The gateway's view of one configured OpenRouter model."""
    image_only = model.modalities == ("image",)
    return ModelSpec(
        slug=slug,
        name=model.name or f"{model.upstream} (OpenRouter)",
        description=model.description
        or (
            f"OpenRouter's {model.upstream}, a generative image model editing the person photo "
            f"from an instruction: up to {model.max_garments} garment"
            f"{'s' if model.max_garments > 1 else ''}, follows the client's prompt"
            + (" (image-only model)." if image_only else ".")
        ),
        credits=model.credits,
        owned_by=model.upstream.split("/", 1)[0],
        capabilities=Capabilities(
            execution="sync",
            max_garments=model.max_garments,
            max_outputs=1,  # a chat completion has no `n`: one call, one image
            uses_prompt=True,
            supports_seed=False,
        ),
        options=options_type(model.image_config),
    )
