"""The plugin seam: hookspecs, the registrar's checks, the manager factory."""

from __future__ import annotations

from typing import Any

import pytest

from tryon_core import Capabilities, ModelSpec, ProviderSpec, hookimpl
from tryon_core.billing import MAX_CREDITS
from tryon_core.errors import ConfigError
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import ScriptedConfig


def spec(name: str, *slugs: str, credits: Any = 1, **caps: Any) -> ProviderSpec:
    return ProviderSpec(
        name=name,
        config_type=ScriptedConfig,
        models=tuple(
            ModelSpec(
                slug=s, name=s, description="", credits=credits, capabilities=Capabilities(**caps)
            )
            for s in slugs
        ),
        adapter_factory=lambda _: ScriptedProvider(),
    )


class Registers:
    def __init__(self, *specs: ProviderSpec) -> None:
        self.specs = specs

    @hookimpl
    def tryon_register_providers(self, registrar: Any) -> None:
        for s in self.specs:
            registrar.add_provider(s)


def collect(*plugins: object) -> Any:
    return collect_providers(make_plugin_manager(extra_plugins=plugins, load_entry_points=False))


def test_providers_from_several_plugins_are_collected() -> None:
    registry = collect(Registers(spec("one", "a/x")), Registers(spec("two", "b/y", "b/z")))
    assert sorted(registry.providers) == ["one", "two"]
    assert sorted(registry.models) == ["a/x", "b/y", "b/z"]


@pytest.mark.parametrize(
    ("plugins", "match"),
    [
        ((Registers(spec("one", "a/x")), Registers(spec("two", "a/x"))), "registered twice"),
        ((Registers(spec("one", "a/x")), Registers(spec("one", "b/y"))), "registered twice"),
        ((Registers(spec("one", "a/x", "a/x")),), "registered twice"),
        ((Registers(spec("one", "no-slash")),), "vendor/model"),
        ((Registers(spec("Bad Name", "a/x")),), "must match"),
        ((Registers(spec("one", "a/x", max_outputs=0)),), "impossible"),
        *[
            ((Registers(spec("one", "a/x", credits=price)),), r"'a/x'.*price per image.*0 to")
            for price in (-1, MAX_CREDITS + 1, 2**63, 10**5000, 1.5, True, "5")
        ],
    ],
)
def test_the_registrar_refuses_inconsistent_input(plugins: tuple[object, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        collect(*plugins)


def test_the_offline_engine_registers_through_its_entry_point() -> None:
    registry = collect_providers(make_plugin_manager())
    assert "local/overlay" in registry.models


def test_blocked_entry_points_are_not_loaded() -> None:
    registry = collect_providers(make_plugin_manager(blocked=["local"]))
    assert "local/overlay" not in registry.models


def test_a_plugin_with_an_unknown_hook_fails_check_pending() -> None:
    class Typo:
        @hookimpl
        def tryon_register_provider(self, registrar: Any) -> None: ...

    with pytest.raises(Exception, match="unknown hook"):
        make_plugin_manager(extra_plugins=[Typo()], load_entry_points=False)


def test_a_plugin_price_at_the_maximum_is_accepted() -> None:
    registry = collect(Registers(spec("one", "a/x", credits=MAX_CREDITS)))
    assert registry.models["a/x"][1].credits == MAX_CREDITS
