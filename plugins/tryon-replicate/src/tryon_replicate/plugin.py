"""Registers the ``replicate`` provider: models come from ``[providers.replicate.models]``."""

from __future__ import annotations

from tryon_core.plugin import ProviderSpec, Registrar, hookimpl
from tryon_replicate.adapter import ReplicateAdapter
from tryon_replicate.config import ReplicateConfig
from tryon_replicate.models import configured_models

__all__ = ["tryon_register_providers"]


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(
        ProviderSpec(
            name="replicate",
            config_type=ReplicateConfig,
            models=(),
            models_from_config=configured_models,
            adapter_factory=ReplicateAdapter,
            fake="tryon_replicate.fake:create_app",
        )
    )
