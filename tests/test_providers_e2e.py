"""Every installed provider, through the gateway's HTTP API, against its fake upstream.

For each model slug a successful try-on, and for each fault its fake can inject the
documented outcome: upstream failures fall back to the offline engine and only the model that
served is charged; content refusals and rejected inputs stop with 400 / 422 and cost nothing.
The gateway reads ``config/tryon.fakes.toml``, the same file a user starts it with.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import Fakes, all_fakes, auth, fakes_settings, new_key, sample_tryon_body
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.testing.contract import STANDARD_FAULTS

STANDARD = {kind: e.error for kind, e in STANDARD_FAULTS.items()}
FALLBACK = {kind for kind, error in STANDARD.items() if error is not None and error.fallback}
STOP = {kind: error.status for kind, error in STANDARD.items() if error and not error.fallback}


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with all_fakes() as served:
        if not served.apps:
            pytest.skip("no installed plugin ships a fake upstream")
        yield served


def gateway(fakes: Fakes, tmp_path: Path, *, timeout: float = 20.0) -> Litestar:
    settings = fakes_settings(fakes, tmp_path)
    settings.routing.failure_threshold = 1000  # every fault below is deliberate
    settings.routing.fallbacks = {}  # the request's own `models` list decides the fallback
    for name in fakes.apps:
        settings.providers[name]["timeout"] = timeout
    return create_app(settings)


async def test_every_model_serves_a_tryon_against_its_fake(fakes: Fakes, tmp_path: Path) -> None:
    app = gateway(fakes, tmp_path)
    async with AsyncTestClient(app=app) as client:
        catalog = app.state.gateway.catalog
        slugs = [e.slug for e in catalog.entries.values() if e.provider.name in fakes.apps]
        assert slugs, "config/tryon.fakes.toml enables no provider that has a fake"
        key, _ = await new_key(client, credits=10_000)
        for slug in slugs:
            response = await client.post(
                "/api/v1/tryon", json=sample_tryon_body(model=slug), headers=auth(key)
            )
            assert response.status_code == 200, (slug, response.text)
            result = response.json()
            assert result["model"] == slug
            assert result["usage"]["credits"] == catalog.entries[slug].credits
            assert len(result["images"]) == 1


async def test_each_fault_has_its_documented_outcome(fakes: Fakes, tmp_path: Path) -> None:
    app = gateway(fakes, tmp_path, timeout=2.0)
    problems: list[str] = []
    async with AsyncTestClient(app=app) as client:
        catalog = app.state.gateway.catalog
        local = catalog.entries["local/overlay"].credits
        key, _ = await new_key(client, credits=100_000)
        for provider in sorted(fakes.apps):
            slug = next(e.slug for e in catalog.entries.values() if e.provider.name == provider)
            state = fakes.state(provider)
            for kind in state.supported:
                state.faults.clear()
                state.inject(kind)
                before = (await client.get("/api/v1/credits", headers=auth(key))).json()
                response = await client.post(
                    "/api/v1/tryon",
                    json=sample_tryon_body(models=[slug, "local/overlay"]),
                    headers=auth(key),
                )
                after = (await client.get("/api/v1/credits", headers=auth(key))).json()
                spent = before["balance"] - after["balance"]
                label = f"{provider}/{kind}"
                result = response.json()
                if kind in FALLBACK:
                    ok = (
                        response.status_code == 200
                        and result["model"] == "local/overlay"
                        and result["attempts"][0]["status"] == "failed"
                        and spent == local
                    )
                elif kind in STOP:
                    ok = response.status_code == STOP[kind] and spent == 0
                else:
                    ok = response.status_code == 200 and result["model"] == slug
                if not ok or after["reserved"] != 0:
                    problems.append(f"{label}: {response.status_code} {response.text[:300]}")
    assert not problems, "\n".join(problems)


def test_disabled_providers_are_neither_listed_nor_routable(tmp_path: Path) -> None:
    import asyncio

    settings = parse_settings(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
        f'[storage]\npath = "{tmp_path}/files"\n[providers.local]\nenabled = true\n'
    )
    registry = collect_providers(make_plugin_manager())
    hidden = [slug for slug, (spec, _) in registry.models.items() if spec.name != "local"]
    assert hidden, "no provider plugin besides the offline engine is installed"
    app = create_app(settings)

    async def go() -> None:
        async with AsyncTestClient(app=app) as client:
            listed = {m["id"] for m in (await client.get("/api/v1/models")).json()["data"]}
            assert listed.isdisjoint(hidden)
            key, _ = await new_key(client)
            for slug in hidden:
                response = await client.post(
                    "/api/v1/tryon", json=sample_tryon_body(model=slug), headers=auth(key)
                )
                assert response.status_code == 404, (slug, response.text)
                assert response.json()["error"]["type"] == "model_not_found"

    asyncio.run(go())


def test_an_enabled_provider_without_its_secret_stops_the_start(tmp_path: Path) -> None:
    from tryon_core.errors import ConfigError

    registry = collect_providers(make_plugin_manager())
    keyed = {n: s for n, s in registry.providers.items() if s.config_type.secrets}
    assert keyed, "no installed provider declares a secret"
    for name, spec in keyed.items():
        with pytest.raises(ConfigError, match=rf"providers\.{name}\.{spec.config_type.secrets[0]}"):
            create_app(parse_settings(f"[providers.{name}]\nenabled = true\n"))
