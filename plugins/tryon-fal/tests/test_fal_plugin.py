"""What the plugin registers: six models with honest capabilities, its config, its fake."""

from __future__ import annotations

from typing import Any

import pytest
import tryon_fal.plugin
from tryon_fal import DEFAULT_BASE_URL, FalAdapter, FalConfig

from tryon_core.config import parse_settings, resolve_providers
from tryon_core.errors import ConfigError
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.registry import Registry
from tryon_core.testing import FAULT_KINDS, load_fake

#: slug -> (credits, max garments, max outputs, uses the prompt, takes a seed)
DECLARED = {
    "fal/flux-kontext-pro": (4, 3, 4, True, True),
    "fal/flux-kontext-max": (8, 3, 4, True, True),
    "fal/fashn-tryon-v1.6": (8, 1, 4, False, True),
    "fal/kling-kolors-v1-5": (7, 1, 1, False, False),
    "fal/cat-vton": (2, 1, 1, False, True),
    "fal/leffa": (4, 1, 1, False, True),
}


def registry() -> Registry:
    return collect_providers(
        make_plugin_manager(extra_plugins=[tryon_fal.plugin], load_entry_points=False)
    )


def test_the_plugin_registers_six_submit_poll_models() -> None:
    spec = registry().providers["fal"]
    assert spec.config_type is FalConfig and spec.fake == "tryon_fal.fake:create_app"
    assert isinstance(spec.adapter_factory(FalConfig()), FalAdapter)
    declared = {
        m.slug: (
            m.credits,
            m.capabilities.max_garments,
            m.capabilities.max_outputs,
            m.capabilities.uses_prompt,
            m.capabilities.supports_seed,
        )
        for m in spec.models
    }
    assert declared == DECLARED
    for model in spec.models:
        caps = model.capabilities
        assert caps.execution == "submit-poll"
        assert caps.categories == ("auto", "tops", "bottoms", "one-pieces")
        assert caps.input_formats == ("image/jpeg", "image/png", "image/webp")
    kolors = next(m for m in spec.models if m.slug == "fal/kling-kolors-v1-5")
    assert kolors.capabilities.min_input_side == 300


def test_the_config_section() -> None:
    config = FalConfig()
    assert (config.base_url, config.fashn_mode, config.safety_tolerance) == (
        DEFAULT_BASE_URL,
        "balanced",
        "2",
    )
    assert DEFAULT_BASE_URL == "https://queue.fal.run"
    assert FalConfig.secrets == ("api_key",)


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ("enabled = true\n", r"providers\.fal\.api_key is required"),
        ('enabled = true\napi_key = "k"\nsafety_tolerance = 2\n', r"providers\.fal"),
        ('enabled = true\napi_key = "k"\nfashn_mode = "fast"\n', r"providers\.fal"),
        ('enabled = true\napi_key = "k"\nfal_key = "k"\n', r"providers\.fal"),
        ("", None),
        ('enabled = true\napi_key = "${FAL_KEY}"\nfashn_mode = "quality"\n', None),
    ],
)
def test_the_section_is_checked_at_start_up(section: str, error: str | None) -> None:
    settings = parse_settings(f"[providers.fal]\n{section}", environ={"FAL_KEY": "id:secret"})
    if error is None:
        config = resolve_providers(settings, registry())["fal"]
        assert isinstance(config, FalConfig)
        assert config.api_key in (None, "id:secret")
    else:
        with pytest.raises(ConfigError, match=error):
            resolve_providers(settings, registry())


def test_the_fake_loads_from_the_spec_and_renders_every_fault_kind() -> None:
    app = load_fake("tryon_fal.fake:create_app", api_key="other")
    assert app.state.fake.supported == FAULT_KINDS


async def test_an_attempt_without_a_key_is_misconfigured(person: Any, garment: Any) -> None:
    import httpx

    from tryon_core.plugin import ProviderContext, ProviderMisconfigured, ProviderRequest

    async def record_task(task_id: str) -> None:
        raise AssertionError("nothing may be submitted without a key")

    async with httpx.AsyncClient() as http:
        context = ProviderContext(
            http=http, config=FalConfig(enabled=True), timeout=5, record_task=record_task
        )
        request = ProviderRequest(model="fal/leffa", person=person, garments=(garment,))
        with pytest.raises(ProviderMisconfigured, match="api_key"):
            await FalAdapter(context.config).run(request, context)
