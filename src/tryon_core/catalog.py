"""The models this gateway serves: registered, enabled, priced by config, with their adapters."""

from __future__ import annotations

import msgspec

from tryon_core.config import NO_OVERRIDE, Settings
from tryon_core.provider import Adapter, ModelSpec, ProviderConfig, ProviderSpec
from tryon_core.registry import Registry

__all__ = ["Catalog", "Entry"]


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One routable model: its spec, its provider, its effective price and adapter."""

    model: ModelSpec
    provider: ProviderSpec
    config: ProviderConfig
    adapter: Adapter
    credits: int

    @property
    def slug(self) -> str:
        return self.model.slug


class Catalog:
    """Only models whose provider is enabled and that config did not disable are routable."""

    def __init__(
        self, settings: Settings, registry: Registry, configs: dict[str, ProviderConfig]
    ) -> None:
        adapters = {
            name: spec.adapter_factory(configs[name])
            for name, spec in registry.providers.items()
            if configs[name].enabled
        }
        self.entries: dict[str, Entry] = {}
        for slug, (provider, model) in registry.models.items():
            override = settings.models.get(slug, NO_OVERRIDE)
            if provider.name not in adapters or not override.enabled:
                continue
            credits = override.price(model.credits)
            self.entries[slug] = Entry(
                model=model,
                provider=provider,
                config=configs[provider.name],
                adapter=adapters[provider.name],
                credits=credits,
            )
        self.auto = [s for s in settings.routing.auto if s in self.entries] or sorted(
            self.entries, key=lambda s: (self.entries[s].credits, s)
        )
        self.fallbacks = settings.routing.fallbacks

    def __contains__(self, slug: str) -> bool:
        return slug in self.entries
