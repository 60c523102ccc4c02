"""Registers the ``openrouter`` provider: image models reached through OpenRouter's chat
completions, each listed by the operator with its price in ``[providers.openrouter.models]``.
"""

from __future__ import annotations

from tryon_core.plugin import ProviderSpec, Registrar, hookimpl
from tryon_openrouter.adapter import OpenRouterAdapter
from tryon_openrouter.config import OpenRouterConfig
from tryon_openrouter.models import models_from_config

__all__ = ["PROVIDER", "tryon_register_providers"]

PROVIDER = ProviderSpec(
    name="openrouter",
    config_type=OpenRouterConfig,
    models=(),  # the operator's choice: see models_from_config
    models_from_config=models_from_config,
    adapter_factory=OpenRouterAdapter,
    fake="tryon_openrouter.fake:create_app",
)


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(PROVIDER)
