"""The plugin inside the whole gateway: registration, config, models, and requests end to end."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import tryon_kling.plugin
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY, create_app
from tryon_kling.models import DEFAULT_BASE_URL, KlingConfig

from tryon_core import accounts, billing
from tryon_core.api import create_app as create_gateway
from tryon_core.config import parse_settings, resolve_providers
from tryon_core.errors import ConfigError
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.testing import FakeState, Fault, ScriptedProvider, serve_app_in_thread


def test_the_entry_point_names_the_plugin_module() -> None:
    found = {e.name: e.value for e in entry_points(group="tryon")}
    assert found.get("kling") == "tryon_kling.plugin"


def test_the_config_needs_both_keys_only_when_enabled() -> None:
    manager = make_plugin_manager(extra_plugins=[tryon_kling.plugin], load_entry_points=False)
    registry = collect_providers(manager)
    quiet = resolve_providers(parse_settings(""), registry)["kling"]
    assert isinstance(quiet, KlingConfig) and quiet.base_url == DEFAULT_BASE_URL
    for missing in ("access_key", "secret_key"):
        keys = {"access_key": '"ak"', "secret_key": '"sk"'}
        del keys[missing]
        text = "[providers.kling]\nenabled = true\n" + "".join(
            f"{k} = {v}\n" for k, v in keys.items()
        )
        with pytest.raises(ConfigError, match=rf"providers\.kling\.{missing} is required"):
            resolve_providers(parse_settings(text), registry)
    with pytest.raises(ConfigError, match=r"providers\.kling"):
        resolve_providers(parse_settings('[providers.kling]\napi_key = "x"\n'), registry)


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


class Gateway:
    def __init__(self, client: AsyncTestClient[Litestar], fake: FakeState, key: str) -> None:
        self.client, self.fake, self.key = client, fake, key

    async def tryon(self, body: dict[str, Any]) -> Any:
        return await self.client.post(
            "/api/v1/tryon", json=body, headers={"Authorization": f"Bearer {self.key}"}
        )

    async def balance(self) -> int:
        response = await self.client.get(
            "/api/v1/credits", headers={"Authorization": f"Bearer {self.key}"}
        )
        return int(response.json()["balance"])


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    fake_app = create_app()
    # The test client runs the gateway through a blocking portal: the fake needs its own loop.
    with serve_app_in_thread(fake_app) as url:
        settings = parse_settings(
            f"""
[database]
url = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"
[storage]
path = "{tmp_path}/files"
[providers.kling]
enabled = true
base_url = "{url}"
access_key = "{TEST_ACCESS_KEY}"
secret_key = "{TEST_SECRET_KEY}"
poll_interval = 0.02
timeout = 10
[providers.scripted]
enabled = true
[routing.fallbacks]
"kling/kolors-v1-5" = ["scripted/beta"]
"""
        )
        scripted = ScriptedProvider()
        app = create_gateway(
            settings, extra_plugins=[tryon_kling.plugin, scripted], load_entry_points=False
        )
        async with AsyncTestClient(app=app) as client:
            database = app.state.gateway.database
            async with database.transaction() as conn:
                account = await accounts.create_account(conn, name="kling")
                _, key = await accounts.create_key(conn, account_id=account, name="kling")
                await billing.grant(conn, account, 100)
            yield Gateway(client, fake_app.state.fake, key)


def body(encoded: Any, **changes: Any) -> dict[str, Any]:
    return {
        "model": "kling/kolors-v1-5",
        "person_images": data_url(encoded(400, 600), "image/jpeg"),
        "garment_images": [data_url(encoded(320, 320, "PNG"), "image/png")],
        **changes,
    }


async def test_the_models_are_listed_with_their_capabilities(gateway: Gateway) -> None:
    listed = (await gateway.client.get("/api/v1/models?output_modalities=all")).json()["data"]
    models = {m["id"]: m for m in listed}
    pair, single = models["kling/kolors-v1-5"], models["kling/kolors-v1"]
    assert pair["tryon"]["max_garments"] == 2 and single["tryon"]["max_garments"] == 1
    for model in (pair, single):
        assert model["tryon"]["max_outputs"] == 1
        assert model["tryon"]["min_input_side"] == 300
        assert model["pricing"]["credits_per_image"] == 7


async def test_a_try_on_through_the_gateway_records_kling_s_task(
    gateway: Gateway, encoded: Any
) -> None:
    response = await gateway.tryon(body(encoded, output_format="webp"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model"] == "kling/kolors-v1-5" and result["usage"] == {"credits": 7}
    assert result["images"][0]["content_type"] == "image/webp"
    (attempt,) = result["attempts"]
    assert attempt["task_id"] in gateway.fake.tasks
    assert await gateway.balance() == 93


async def test_no_credit_at_kling_falls_back_and_charges_only_the_fallback(
    gateway: Gateway, encoded: Any
) -> None:
    gateway.fake.inject(Fault(kind="quota"))
    response = await gateway.tryon(body(encoded))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model"] == "scripted/beta"
    first = result["attempts"][0]
    assert first["error"]["type"] == "provider_misconfigured" and first["error"]["code"] == "1102"
    assert await gateway.balance() == 100 - 2


async def test_a_content_refusal_stops_and_costs_nothing(gateway: Gateway, encoded: Any) -> None:
    gateway.fake.inject(Fault(kind="content_refused"))
    response = await gateway.tryon(body(encoded))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "content_policy_violation"
    assert TEST_SECRET_KEY not in response.text and TEST_ACCESS_KEY not in response.text
    assert await gateway.balance() == 100


async def test_small_images_never_reach_kling(gateway: Gateway, encoded: Any) -> None:
    small = body(encoded, person_images=data_url(encoded(299, 600), "image/jpeg"))
    response = await gateway.tryon(small)
    assert response.status_code == 200, response.text  # served by the fallback instead
    assert response.json()["model"] == "scripted/beta"
    assert gateway.fake.requests == []
