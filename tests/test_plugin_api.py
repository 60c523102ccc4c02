"""The plugin API as a plugin author meets it: one import surface, models from config, and the
registrar's checks on a model's options."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import msgspec
import pytest

import tryon_core.plugin
import tryon_core.testing
from tryon_core.config import parse_settings
from tryon_core.errors import ConfigError
from tryon_core.gateway import build_catalog
from tryon_core.plugin import (
    Capabilities,
    ModelSpec,
    ProviderConfig,
    ProviderSpec,
    Registrar,
    hookimpl,
)
from tryon_core.testing import ScriptedProvider

ROOT = Path(__file__).resolve().parents[1]
SURFACES = {"tryon_core.plugin", "tryon_core.testing"}


@pytest.mark.parametrize("module", [tryon_core.plugin, tryon_core.testing])
def test_every_name_of_the_surface_resolves(module: Any) -> None:
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def plugin_sources() -> list[Path]:
    sources = sorted(ROOT.glob("plugins/*/src/**/*.py"))
    assert sources, "no plugin sources found"
    return sources


@pytest.mark.parametrize("path", plugin_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_the_core_only_through_its_plugin_api(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            if module == "tryon_core" or module.startswith("tryon_core."):
                assert module in SURFACES, f"{path.name}:{node.lineno} imports {module}"


class ListedConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """A provider whose models an operator lists in TOML."""

    models: dict[str, int] = msgspec.field(default_factory=dict)


def listed_models(config: ListedConfig) -> list[ModelSpec]:
    return [
        ModelSpec(slug=slug, name=slug, description="configured", credits=credits)
        for slug, credits in config.models.items()
    ]


class Listed:
    def __init__(self, **changes: Any) -> None:
        self.spec = ProviderSpec(
            name="listed",
            config_type=ListedConfig,
            adapter_factory=lambda _: ScriptedProvider(),
            **{"models": (), "models_from_config": listed_models, **changes},
        )

    @hookimpl
    def tryon_register_providers(self, registrar: Registrar) -> None:
        registrar.add_provider(self.spec)


def catalog(toml: str, *plugins: object) -> Any:
    return build_catalog(parse_settings(toml), extra_plugins=plugins, load_entry_points=False)


def test_models_listed_in_config_become_routable_with_their_price() -> None:
    built = catalog(
        '[providers.listed]\nenabled = true\nmodels = { "acme/one" = 3, "acme/two" = 0 }\n'
        '[models."acme/two"]\ncredits = 5\n[routing]\nauto = ["acme/two"]\n',
        Listed(),
    )
    assert sorted(built.entries) == ["acme/one", "acme/two"]
    assert (built.entries["acme/one"].credits, built.entries["acme/two"].credits) == (3, 5)
    assert built.auto == ["acme/two"]


def test_a_provider_without_config_serves_no_configured_model() -> None:
    assert catalog("", Listed()).entries == {}


@pytest.mark.parametrize(
    ("models", "match"),
    [
        ('{ "no-slash" = 1 }', "vendor/model"),
        ('{ "acme/one" = -1 }', "credits"),
        ('{ "scripted/alpha" = 1 }', "registered twice"),
    ],
)
def test_a_bad_configured_model_stops_the_start_naming_the_provider(
    models: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=rf"providers\.listed: .*{match}"):
        catalog(
            f"[providers.listed]\nenabled = true\nmodels = {models}\n",
            Listed(),
            ScriptedProvider(),
        )


class Required(msgspec.Struct, frozen=True, kw_only=True):
    mode: str


@pytest.mark.parametrize(
    ("options", "match"),
    [(Required, "needs a default"), (dict, "msgspec.Struct"), (int, "msgspec.Struct")],
)
def test_the_registrar_refuses_options_a_request_could_not_fill(options: Any, match: str) -> None:
    model = ModelSpec(slug="acme/x", name="x", description="", credits=1, options=options)
    plugin = Listed(models=(model,))
    with pytest.raises(ConfigError, match=match):
        catalog("", plugin)


def test_options_with_defaults_are_accepted() -> None:
    class Fine(msgspec.Struct, frozen=True, kw_only=True):
        mode: str | msgspec.UnsetType = msgspec.UNSET
        steps: int = 28

    model = ModelSpec(slug="acme/x", name="x", description="", credits=1, options=Fine)
    built = catalog("[providers.listed]\nenabled = true\n", Listed(models=(model,)))
    assert built.entries["acme/x"].model.options is Fine
    assert Capabilities() == built.entries["acme/x"].model.capabilities
