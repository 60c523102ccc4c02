"""Demo sessions through the API: made with a management key, used by a browser page.

Which routes a token may call, from which origins, and its 401s after expiry and revocation
are in test_scopes_matrix.py; the cap under concurrency in test_demo_credit_cap.py; CORS in
test_demo_cors.py. Here: creating, listing and revoking; what a token sees and spends; and
that revoking a session ends its live work as revoking a key does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.demo_helpers import ORIGIN, demo, new_session
from tests.helpers import auth, live_server, new_key
from tests.jobs_helpers import money
from tryon_core.errors import ProviderUnavailable
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

Client = AsyncTestClient[Litestar]


async def account_keys(client: Client | Litestar, credits: int = 100) -> tuple[str, str, str]:
    """(inference key, management key, account id) of one new account."""
    runner, account = await new_key(client, credits=credits)
    manager, _ = await new_key(client, 0, scope="management", account=account)
    return runner, manager, account


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_creating_answers_exactly_the_token_and_its_limits(client: Client) -> None:
    _, manager, _ = await account_keys(client)
    created = await new_session(
        client,
        manager,
        origins=[ORIGIN, "https://shop.example"],
        max_credits=7,
        ttl_seconds=600,
        models=["scripted/alpha"],
    )
    assert set(created) == {"id", "token", "expires_at", "allowed_origins", "max_credits", "models"}
    assert created["id"].startswith("demo_") and created["token"].startswith("tryon_demo_")
    assert created["allowed_origins"] == [ORIGIN, "https://shop.example"]
    assert (created["max_credits"], created["models"]) == (7, ["scripted/alpha"])
    listed = (await client.get("/api/v1/demo-sessions", headers=auth(manager))).json()["data"]
    (session,) = listed
    assert session["id"] == created["id"] and session["status"] == "active"
    assert (session["spent"], session["reserved"]) == (0, 0)
    assert (when(session["expires_at"]) - when(session["created_at"])).total_seconds() == 600
    assert created["token"] not in json.dumps(listed)  # shown once


async def test_the_lifetime_is_cut_to_the_configured_maximum(make_app: Any) -> None:
    app = make_app(extra="[demo_sessions]\nmax_ttl_seconds = 60\n")
    async with AsyncTestClient(app=app) as client:
        _, manager, _ = await account_keys(client)
        await new_session(client, manager, ttl_seconds=86400)
        await new_session(client, manager)  # no ttl_seconds: the maximum
        for session in (await client.get("/api/v1/demo-sessions", headers=auth(manager))).json()[
            "data"
        ]:
            lifetime = when(session["expires_at"]) - when(session["created_at"])
            assert lifetime.total_seconds() == 60


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"allowed_origins": []}, "allowed_origins"),
        ({"allowed_origins": "https://shop.example"}, "allowed_origins"),
        ({"allowed_origins": ["*"]}, "allowed_origins[0]"),
        ({"allowed_origins": ["null"]}, "allowed_origins[0]"),
        ({"allowed_origins": ["https://shop.example/"]}, "allowed_origins[0]"),
        ({"allowed_origins": ["https://shop.example/page"]}, "allowed_origins[0]"),
        ({"allowed_origins": ["https://Shop.example"]}, "allowed_origins[0]"),
        ({"allowed_origins": ["https://shop.example:443"]}, "allowed_origins[0]"),
        ({"allowed_origins": ["ftp://shop.example"]}, "allowed_origins[0]"),
        ({"allowed_origins": ["https://user@shop.example"]}, "allowed_origins[0]"),
        ({"allowed_origins": ["https://shop.example:99999"]}, "allowed_origins[0]"),
        ({"max_credits": -1}, "max_credits"),
        ({"max_credits": 1.5}, "max_credits"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"models": []}, "models"),
        ({"models": ["nobody/nothing"]}, "models[0]"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_sessions_are_refused_with_the_field_named(
    client: Client, fields: dict[str, Any], param: str
) -> None:
    _, manager, _ = await account_keys(client)
    body = {"allowed_origins": [ORIGIN], "max_credits": 5, **fields}
    response = await client.post("/api/v1/demo-sessions", json=body, headers=auth(manager))
    assert response.status_code in (400, 404), response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert (await client.get("/api/v1/demo-sessions", headers=auth(manager))).json()["data"] == []


async def test_revoking_is_at_once_and_only_for_the_account(client: Client) -> None:
    _, manager, _ = await account_keys(client)
    _, stranger, _ = await account_keys(client)
    created = await new_session(client, manager)
    path = f"/api/v1/demo-sessions/{created['id']}"
    assert (await client.delete(path, headers=auth(stranger))).status_code == 404
    assert (await client.get("/api/v1/models", headers=demo(created["token"]))).status_code == 200
    first = await client.delete(path, headers=auth(manager))
    assert first.status_code == 200 and first.json()["data"]["status"] == "revoked"
    again = await client.delete(path, headers=auth(manager))
    assert again.json()["data"]["revoked_at"] == first.json()["data"]["revoked_at"]
    refused = await client.get("/api/v1/models", headers=demo(created["token"]))
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "demo_session_revoked"


async def test_a_token_sees_and_spends_only_what_its_session_allows(
    client: Client, tryon_body: Callable[..., dict[str, Any]]
) -> None:
    runner, manager, account = await account_keys(client, credits=100)
    created = await new_session(client, manager, max_credits=20, models=["scripted/alpha"])
    page = demo(created["token"])

    models = (await client.get("/api/v1/models", headers=page)).json()["data"]
    assert [m["id"] for m in models] == ["auto", "scripted/alpha"]
    everything = (await client.get("/api/v1/models")).json()["data"]
    assert len(everything) > 2  # without the token: every model

    sync = await client.post("/api/v1/tryon", json=tryon_body(), headers=page)  # auto: alpha
    assert sync.status_code == 200, sync.text
    assert sync.json()["model"] == "scripted/alpha" and sync.json()["usage"]["credits"] == 3
    other = await client.post("/api/v1/tryon", json=tryon_body(model="scripted/beta"), headers=page)
    assert other.status_code == 403
    assert (other.json()["error"]["type"], other.json()["error"]["param"]) == (
        "model_not_allowed",
        "model",
    )
    hooked = await client.post(
        "/api/v1/tryon",
        json=tryon_body(mode="async", webhook_url="https://example.com/hook"),
        headers=page,
    )
    assert hooked.status_code == 403 and hooked.json()["error"]["param"] == "webhook_url"

    accepted = await client.post("/api/v1/tryon", json=tryon_body(mode="async"), headers=page)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["jobId"]
    for _ in range(200):
        body = (await client.get(f"/api/v1/tryon/{job_id}", headers=page)).json()
        if body["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.02)
    assert body["status"] == "completed", body
    mine = urlsplit(body["images"][0]["url"]).path
    assert (await client.get(mine, headers=page)).status_code == 200

    # the account's own work (an inference key's) is not the session's
    theirs = await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(runner))
    their_file = urlsplit(theirs.json()["images"][0]["url"]).path
    assert (await client.get(their_file, headers=page)).status_code == 404
    their_job = await client.get(f"/api/v1/tryon/{theirs.json()['id']}", headers=page)
    assert their_job.status_code == 404
    listed = (await client.get("/api/v1/tryon", headers=page)).json()["data"]
    assert {j["id"] for j in listed} == {sync.json()["id"], job_id}
    account_jobs = (await client.get("/api/v1/tryon", headers=auth(runner))).json()["data"]
    assert len(account_jobs) == 3  # the key sees the session's jobs too: same account

    # charged to the account, counted against the session
    left = 100 - 6 - theirs.json()["usage"]["credits"]
    assert await money(client, account) == (left, 0, left, 0)
    (session,) = (await client.get("/api/v1/demo-sessions", headers=auth(manager))).json()["data"]
    assert (session["spent"], session["reserved"]) == (6, 0)


async def test_the_cap_refuses_what_it_does_not_cover_and_failures_give_it_back(
    client: Client, scripted: ScriptedProvider, tryon_body: Callable[..., dict[str, Any]]
) -> None:
    _, manager, account = await account_keys(client, credits=100)
    created = await new_session(client, manager, max_credits=7)
    page = demo(created["token"])
    body = tryon_body(model="scripted/alpha")  # 3 credits
    scripted.script("scripted/alpha", ProviderUnavailable("down"))
    failed = await client.post("/api/v1/tryon", json=body, headers=page)
    assert failed.status_code == 502, failed.text
    for _ in range(2):
        assert (await client.post("/api/v1/tryon", json=body, headers=page)).status_code == 200
    beyond = await client.post("/api/v1/tryon", json=body, headers=page)
    assert beyond.status_code == 402, beyond.text
    error = beyond.json()["error"]
    assert error["type"] == "demo_credit_limit"
    assert error["metadata"] == {"required": 3, "remaining": 1, "max_credits": 7}
    assert await money(client, account) == (94, 0, 94, 0)
    (session,) = (await client.get("/api/v1/demo-sessions", headers=auth(manager))).json()["data"]
    assert (session["spent"], session["reserved"], session["max_credits"]) == (6, 0, 7)


async def test_a_demo_session_replays_only_its_own_idempotent_answers(
    client: Client, tryon_body: Callable[..., dict[str, Any]]
) -> None:
    runner, manager, _ = await account_keys(client)
    created = await new_session(client, manager)
    body = tryon_body(model="scripted/alpha")
    same = {"Idempotency-Key": "order-1"}
    by_key = await client.post("/api/v1/tryon", json=body, headers=auth(runner) | same)
    by_page = await client.post("/api/v1/tryon", json=body, headers=demo(created["token"]) | same)
    again = await client.post("/api/v1/tryon", json=body, headers=demo(created["token"]) | same)
    assert by_key.status_code == by_page.status_code == again.status_code == 200
    assert by_page.json()["id"] != by_key.json()["id"]  # not the account's answer
    assert again.json()["id"] == by_page.json()["id"]  # its own, replayed


async def revoke(http: httpx.AsyncClient, manager: str, session_id: str) -> None:
    response = await http.delete(f"/api/v1/demo-sessions/{session_id}", headers=auth(manager))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("opened_with", ["token", "job_link"])
async def test_revoking_a_session_closes_its_websockets(
    make_app: Callable[..., Litestar],
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
    opened_with: str,
) -> None:
    """However the socket was opened (the session's token from its origin, or the job link
    of the 202 answer), it closes with 4401 once the session is revoked."""
    scripted.script("scripted/alpha", Sleep(20.0))
    app = make_app()
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        _, manager, _ = await account_keys(app)
        created = await new_session(http, manager)
        accepted = await http.post(
            "/api/v1/tryon",
            json=tryon_body(model="scripted/alpha", mode="async"),
            headers=demo(created["token"]),
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["jobId"]
        base = f"ws://{urlsplit(url).netloc}/api/v1/tryon/{job_id}/ws"
        if opened_with == "token":
            socket_cm = connect(
                base,
                subprotocols=[f"tryon-key.{created['token']}"],  # type: ignore[list-item]
                origin=ORIGIN,  # type: ignore[arg-type]
            )
        else:
            socket_cm = connect(f"{base}?{urlsplit(accepted.json()['wsUrl']).query}")
        async with socket_cm as socket:
            while True:  # until the attempt runs: from then on, nothing changes for 20 s
                job = json.loads(await socket.recv())["job"]
                if job["status"] == "processing" and job.get("progress"):
                    break
            await revoke(http, manager, created["id"])
            after = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    after.append(json.loads(await asyncio.wait_for(socket.recv(), 15)))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert [m["type"] for m in after] == ["error"]
        assert after[0]["error"]["type"] == "demo_session_revoked"


async def test_a_sync_generation_finishing_after_revocation_is_not_charged(
    make_app: Callable[..., Litestar],
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    scripted.script("scripted/alpha", Sleep(1.0))
    app = make_app()
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        _, manager, account = await account_keys(app, credits=10)
        created = await new_session(http, manager, max_credits=10)
        pending = asyncio.ensure_future(
            http.post(
                "/api/v1/tryon",
                json=tryon_body(model="scripted/alpha"),
                headers=demo(created["token"]),
            )
        )
        for _ in range(500):  # until the model is at work
            if scripted.calls_to("scripted/alpha"):
                break
            await asyncio.sleep(0.02)
        await revoke(http, manager, created["id"])
        answer = await pending
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["type"] == "demo_session_revoked"
        assert await money(app, account) == (10, 0, 10, 0)
        (session,) = (await http.get("/api/v1/demo-sessions", headers=auth(manager))).json()["data"]
        assert (session["spent"], session["reserved"]) == (0, 0)
