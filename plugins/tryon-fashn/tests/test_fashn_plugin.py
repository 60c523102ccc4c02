"""The plugin as the gateway loads it: its entry point, its config section, its registration."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import tryon_fashn.plugin
from tryon_fashn.models import DEFAULT_BASE_URL, FashnConfig

from tryon_core.testing import gateway


def test_the_entry_point_names_the_plugin_module() -> None:
    found = {e.name: e.value for e in entry_points(group="tryon")}
    assert found.get("fashn") == "tryon_fashn.plugin"


def test_the_defaults_point_at_fashn() -> None:
    config = FashnConfig()
    assert config.base_url == DEFAULT_BASE_URL == "https://api.fashn.ai"
    assert not config.enabled and config.return_base64 and config.poll_interval == 1.0
    assert FashnConfig.secrets == ("api_key",)


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ("enabled = true\n", r"providers\.fashn\.api_key is required"),
        ('enabled = true\napi_key = ""\n', r"providers\.fashn\.api_key is required"),
        ('api_key = "k"\nreturn_b64 = true\n', r"providers\.fashn"),  # a misspelt key
        ('api_key = "k"\npoll_interval = 0\n', r"providers\.fashn"),
    ],
)
async def test_a_bad_section_stops_the_start(tmp_path: Path, section: str, says: str) -> None:
    with pytest.raises(Exception, match=says):
        async with gateway(
            f"[providers.fashn]\n{section}", plugins=[tryon_fashn.plugin], tmp_path=tmp_path
        ):
            pass


async def test_a_disabled_provider_needs_no_key_and_serves_nothing(tmp_path: Path) -> None:
    config = "[providers.fashn]\nenabled = false\n"
    async with gateway(config, plugins=[tryon_fashn.plugin], tmp_path=tmp_path) as gw:
        listed = (await gw.client.get("/api/v1/models?output_modalities=all")).json()["data"]
    assert not [m for m in listed if m["id"].startswith("fashn/")]


def test_the_spec_names_its_fake_and_both_models() -> None:
    spec = tryon_fashn.plugin.SPEC
    assert spec.fake == "tryon_fashn.fake:create_app"
    assert [m.slug for m in spec.models] == ["fashn/tryon-v1.6", "fashn/tryon-v1.5"]
