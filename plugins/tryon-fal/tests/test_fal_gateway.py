"""fal models through the whole gateway over HTTP, against the fake queue on 127.0.0.1: the
result links pass the egress guard (they are on base_url's origin), the request id is kept with
the attempt, fal's failures reach the client as the documented errors, and nothing leaks the
key."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import tryon_fal.plugin
from litestar.testing import AsyncTestClient
from tryon_fal.fake import create_app as create_fake

from tryon_core import accounts, billing
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.db import create_database
from tryon_core.testing import Fault, serve_app_in_thread

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
KEY = "gateway-key-id:gateway-key-secret"


def data_url(name: str, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode((SAMPLES / name).read_bytes()).decode()


async def new_key(database_url: str, credits: int) -> str:
    database = create_database(database_url)
    try:
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn, name="test")
            _, key = await accounts.create_key(conn, account_id=account_id, name="test")
            await billing.grant(conn, account_id, credits)
    finally:
        await database.dispose()
    return key


@pytest.mark.parametrize(
    ("fault", "status", "error_type", "charged"),
    [
        (None, 200, None, 16),
        (Fault(kind="content_refused"), 400, "content_policy_violation", 0),
        (Fault(kind="invalid_input"), 422, "invalid_input", 0),
        (Fault(kind="rate_limit", retry_after=7), 429, "rate_limit_exceeded", 0),
        (Fault(kind="bad_image"), 502, "bad_response", 0),
        (Fault(kind="quota"), 502, "provider_misconfigured", 0),
    ],
)
async def test_a_tryon_through_the_gateway(
    fault: Fault | None,
    status: int,
    error_type: str | None,
    charged: int,
    tmp_path: Path,
) -> None:

    fake = create_fake(api_key=KEY)
    if fault is not None:
        fake.state.fake.inject(fault)
    database_url = f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"
    # the test client runs the gateway on its own event loop: the fake gets a thread of its own
    with serve_app_in_thread(fake) as upstream:
        settings = parse_settings(
            f'[database]\nurl = "{database_url}"\n[storage]\npath = "{tmp_path}/files"\n'
            '[providers.fal]\nenabled = true\napi_key = "${FAL_KEY}"\n'
            f'base_url = "{upstream}"\npoll_interval = 0.02\ntimeout = 20\n',
            environ={"FAL_KEY": KEY},
        )
        app = create_app(settings, extra_plugins=[tryon_fal.plugin], load_entry_points=False)
        async with AsyncTestClient(app=app) as client:
            key = await new_key(database_url, credits=100)
            headers = {"Authorization": f"Bearer {key}"}
            response = await client.post(
                "/api/v1/tryon",
                json={
                    "model": "fal/fashn-tryon-v1.6",
                    "person_images": data_url("person.jpg", "image/jpeg"),
                    "garment_images": [data_url("garment.png", "image/png")],
                    "category": "tops",
                    "n": 2,
                    "output_format": "webp",
                },
                headers=headers,
            )
            credits = (await client.get("/api/v1/credits", headers=headers)).json()

    assert response.status_code == status, response.text
    assert KEY not in response.text and "gateway-key-secret" not in response.text
    body: dict[str, Any] = response.json()
    submitted = [r for r in fake.state.fake.requests if r.summary.get("call") == "submit"]
    if error_type is None:
        assert len(body["images"]) == 2
        assert body["attempts"][0]["task_id"] == submitted[0].summary["request_id"]
        assert submitted[0].summary["fields"]["num_samples"] == 2
    else:
        assert body["error"]["type"] == error_type
        attempt = body["error"]["metadata"]["attempts"][0]
        assert attempt["model"] == "fal/fashn-tryon-v1.6" and attempt["status"] == "failed"
    if fault is not None and fault.kind == "rate_limit":
        assert response.headers["retry-after"] == "7"
    assert (credits["balance"], credits["reserved"]) == (100 - charged, 0)
