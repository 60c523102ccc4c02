"""Registers the ``kling`` provider: Kling's Kolors virtual try-on, v1-5 and v1."""

from __future__ import annotations

from tryon_core.plugin import ProviderSpec, Registrar, hookimpl
from tryon_kling.adapter import KlingAdapter
from tryon_kling.models import MODELS, KlingConfig

__all__ = ["SPEC", "tryon_register_providers"]

SPEC = ProviderSpec(
    name="kling",
    config_type=KlingConfig,
    models=MODELS,
    adapter_factory=KlingAdapter,
    fake="tryon_kling.fake:create_app",
)


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(SPEC)
