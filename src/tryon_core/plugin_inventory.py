"""What ``tryon plugins list`` shows: every installed plugin, its package and version, the
providers it registers, their models, and whether the config enables each."""

from __future__ import annotations

from importlib.metadata import entry_points

import msgspec

from tryon_core import hookspecs
from tryon_core.config import NO_OVERRIDE, Settings, resolve_providers
from tryon_core.model_options import declared
from tryon_core.plugins import make_plugin_manager
from tryon_core.registry import Registrar, Registry

__all__ = ["InstalledModel", "InstalledPlugin", "InstalledProvider", "inventory", "render"]


class InstalledModel(msgspec.Struct, kw_only=True):
    slug: str
    credits: int
    """The price after any ``[models."SLUG"] credits`` override."""
    enabled: bool
    options: list[str]


class InstalledProvider(msgspec.Struct, kw_only=True):
    name: str
    enabled: bool
    models: list[InstalledModel]


class InstalledPlugin(msgspec.Struct, kw_only=True):
    name: str
    """The entry point's name: what ``[plugins] blocked`` takes."""
    package: str | None
    version: str | None
    blocked: bool
    providers: list[InstalledProvider] = msgspec.field(default_factory=list)


def inventory(settings: Settings) -> list[InstalledPlugin]:
    """Every ``tryon`` entry point, blocked ones too, with what each registers under
    ``settings`` (a config section a plugin cannot read stops this with ``ConfigError``)."""
    blocked = set(settings.plugins.blocked)
    manager = make_plugin_manager(blocked=blocked)
    registry = Registry()
    owners: dict[str, str] = {}  # provider name -> plugin name
    for impl in manager.hook.tryon_register_providers.get_hookimpls():
        before = set(registry.providers)
        impl.function(registrar=Registrar(registry))
        owners.update({name: impl.plugin_name for name in set(registry.providers) - before})
    configs = resolve_providers(settings, registry)
    versions = {
        manager.get_name(plugin): (dist.project_name, dist.version)
        for plugin, dist in manager.list_plugin_distinfo()
    }
    plugins: dict[str, InstalledPlugin] = {}
    for point in entry_points(group=hookspecs.PROJECT):
        package = point.dist.name if point.dist is not None else None
        version = point.dist.version if point.dist is not None else None
        package, version = versions.get(point.name, (package, version))
        plugins[point.name] = InstalledPlugin(
            name=point.name, package=package, version=version, blocked=point.name in blocked
        )
    for slug, (spec, model) in sorted(registry.models.items()):
        owner = owners.get(spec.name, spec.name)
        plugin = plugins.setdefault(
            owner, InstalledPlugin(name=owner, package=None, version=None, blocked=False)
        )
        provider = next((p for p in plugin.providers if p.name == spec.name), None)
        if provider is None:
            provider = InstalledProvider(
                name=spec.name, enabled=configs[spec.name].enabled, models=[]
            )
            plugin.providers.append(provider)
        override = settings.models.get(slug, NO_OVERRIDE)
        provider.models.append(
            InstalledModel(
                slug=slug,
                credits=override.price(model.credits),
                enabled=provider.enabled and override.enabled,
                options=sorted(declared(model.options)),
            )
        )
    for name, owner in owners.items():  # a provider whose config lists no models (yet)
        plugin = plugins[owner]
        if not any(p.name == name for p in plugin.providers):
            plugin.providers.append(
                InstalledProvider(name=name, enabled=configs[name].enabled, models=[])
            )
    return sorted(plugins.values(), key=lambda p: p.name)


def render(plugins: list[InstalledPlugin]) -> str:
    """The inventory as text, a block per plugin."""
    if not plugins:
        return "no tryon plugins are installed"
    lines: list[str] = []
    for plugin in plugins:
        package = f"{plugin.package} {plugin.version}" if plugin.package else "(not a package)"
        lines.append(
            f"{plugin.name}  {package}"
            + ("  BLOCKED by [plugins] blocked" if plugin.blocked else "")
        )
        for provider in plugin.providers:
            state = "enabled" if provider.enabled else "disabled"
            lines.append(f"  provider {provider.name}: {state}")
            for model in provider.models:
                mark = "on " if model.enabled else "off"
                options = f"  options: {', '.join(model.options)}" if model.options else ""
                lines.append(f"    {mark} {model.slug:34} {model.credits:>4} credits{options}")
            if not provider.models:
                lines.append("    (no models: its config section lists none)")
    return "\n".join(lines)
