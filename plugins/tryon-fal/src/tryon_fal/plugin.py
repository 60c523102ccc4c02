"""Registers the ``fal`` provider: several apps on fal's queue, one protocol for all.

Models, prices and capabilities are declared beside their input builders in
``tryon_fal.endpoints``; operators override prices with ``[models."fal/…"] credits``.
"""

from __future__ import annotations

from tryon_core.plugin import ProviderSpec, Registrar, hookimpl
from tryon_fal.adapter import FalAdapter
from tryon_fal.config import FalConfig
from tryon_fal.endpoints import MODELS

__all__ = ["tryon_register_providers"]


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(
        ProviderSpec(
            name="fal",
            config_type=FalConfig,
            models=MODELS,
            adapter_factory=FalAdapter,
            fake="tryon_fal.fake:create_app",
        )
    )
