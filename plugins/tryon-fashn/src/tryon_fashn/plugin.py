"""Registers the ``fashn`` provider: FASHN's virtual try-on API, v1.6 and v1.5."""

from __future__ import annotations

from tryon_core.plugin import ProviderSpec, Registrar, hookimpl
from tryon_fashn.adapter import FashnAdapter
from tryon_fashn.models import MODELS, FashnConfig

__all__ = ["SPEC", "tryon_register_providers"]

SPEC = ProviderSpec(
    name="fashn",
    config_type=FashnConfig,
    models=MODELS,
    adapter_factory=FashnAdapter,
    fake="tryon_fashn.fake:create_app",
)


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(SPEC)
