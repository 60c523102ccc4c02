"""tryon-acme's tests: the contract kit against the fake, and one fallback through the gateway."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, ClassVar

import tryon_acme
import tryon_acme_fake

from tryon_core.testing import (
    Fault,
    ProviderContract,
    ScriptedProvider,
    gateway,
    no_network,  # noqa: F401  (autouse: loopback only)
    serve_app_in_thread,
    synthetic_garment,
    synthetic_person,
)


class TestAcmeContract(ProviderContract):
    plugin = tryon_acme
    provider = "acme"
    config: ClassVar[dict[str, Any]] = {
        "api_key": tryon_acme_fake.TEST_API_KEY,
        "poll_interval": 0.01,  # the fake is quick: do not wait a second between polls
    }
    submission = ("POST", "/v1/tasks")  # how the kit counts submissions when it resumes a task
    # Every fault the fake renders must become what STANDARD_FAULTS says. Where your protocol
    # differs, say so: faults = {"quota": FaultExpectation(RateLimited)}


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def test_a_rate_limit_falls_back_and_only_the_server_is_charged(tmp_path: Path) -> None:
    fake = tryon_acme_fake.create_app()
    backup = ScriptedProvider()  # a stand-in model to fall back to: scripted/beta, 2 credits
    # serve_app_in_thread, not serve_app: the gateway's test client blocks this event loop.
    with serve_app_in_thread(fake) as url:
        config = f"""
[providers.acme]
enabled = true
api_key = "{tryon_acme_fake.TEST_API_KEY}"
base_url = "{url}"
poll_interval = 0.01
[providers.scripted]
enabled = true
[routing.fallbacks]
"acme/tryon-v1" = ["scripted/beta"]
"""
        async with gateway(config, plugins=[tryon_acme, backup], tmp_path=tmp_path) as gw:
            fake.state.fake.inject(Fault(kind="rate_limit", retry_after=3))
            response = await gw.client.post(
                "/api/v1/tryon",
                headers=gw.headers,
                json={
                    "model": "acme/tryon-v1",
                    "person_images": data_url(synthetic_person(480, 640), "image/jpeg"),
                    "garment_images": data_url(synthetic_garment(400, 400), "image/png"),
                },
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert [(a["model"], a["status"]) for a in body["attempts"]] == [
                ("acme/tryon-v1", "failed"),
                ("scripted/beta", "succeeded"),
            ]
            assert body["attempts"][0]["error"]["type"] == "rate_limit_exceeded"
            assert body["usage"] == {"credits": 2}  # scripted/beta's price, nothing for Acme
            assert await gw.credits() == (100 - 2, 0)
    assert [r.path for r in fake.state.fake.requests] == ["/v1/tasks"]
