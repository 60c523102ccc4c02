"""Build the plugin manager and collect every provider, in one factory with no side effects."""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from tryon_core import hookspecs
from tryon_core.errors import ConfigError
from tryon_core.registry import Registrar, Registry

__all__ = ["collect_providers", "make_plugin_manager"]


def make_plugin_manager(
    *,
    extra_plugins: Iterable[object] = (),
    blocked: Iterable[str] = (),
    load_entry_points: bool = True,
) -> pluggy.PluginManager:
    """Specs, blocked plugins, entry points, extra (built-in or test) plugins, check_pending."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for name in blocked:
        manager.set_blocked(name)
    if load_entry_points:
        manager.load_setuptools_entrypoints(hookspecs.PROJECT)
    for plugin in extra_plugins:
        manager.register(plugin)
    manager.check_pending()
    return manager


def collect_providers(manager: pluggy.PluginManager) -> Registry:
    """Run the registration hook of every plugin into one fresh registry.

    A plugin that registers something inconsistent stops the start with a ``ConfigError``
    naming the plugin.
    """
    registry = Registry()
    try:
        manager.hook.tryon_register_providers(registrar=Registrar(registry))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"a provider plugin failed to register: {exc}") from exc
    return registry
