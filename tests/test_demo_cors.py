"""CORS answers only the origins a demo session allows, and only on the demo routes.

A preflight carries no token: it is allowed for an origin some live demo session lists, for
the methods the path opens to demo sessions and the headers a page needs. A request with a
demo token gets the allow header for its session's origins (so a page can read even its
401 once the session ended); nothing else of the API is readable from a browser page.
"""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.demo_helpers import ORIGIN, OTHER_ORIGIN, demo, expire, new_session
from tests.helpers import auth, new_key

Client = AsyncTestClient[Litestar]


def preflight(origin: str, method: str, headers: str = "authorization") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def manager_of(client: Client) -> str:
    _, account = await new_key(client)
    manager, _ = await new_key(client, 0, scope="management", account=account)
    return manager


@pytest.mark.parametrize(
    ("path", "method", "methods"),
    [
        ("/api/v1/tryon", "POST", "GET, POST"),
        ("/api/v1/tryon", "GET", "GET, POST"),
        ("/api/v1/tryon/gen_x", "GET", "GET"),
        ("/api/v1/files/file_x", "GET", "GET, HEAD"),
        ("/api/v1/models", "GET", "GET"),
    ],
)
async def test_a_preflight_from_an_allowed_origin_is_answered(
    client: Client, path: str, method: str, methods: str
) -> None:
    await new_session(client, await manager_of(client))
    answer = await client.options(
        path, headers=preflight(ORIGIN, method, "Authorization, Content-Type, Idempotency-Key")
    )
    assert answer.status_code == 204, answer.text
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.headers["access-control-allow-methods"] == methods
    assert answer.headers["access-control-allow-headers"] == (
        "Authorization, Content-Type, Idempotency-Key"
    )
    assert "Origin" in answer.headers["vary"]
    assert "access-control-allow-credentials" not in answer.headers  # no cookies, ever


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/api/v1/tryon/gen_x", "DELETE", "authorization"),  # cancelling is not for pages
        ("/api/v1/chat/completions", "POST", "authorization"),
        ("/api/v1/keys", "GET", "authorization"),
        ("/api/v1/keys", "POST", "authorization"),
        ("/api/v1/credits", "GET", "authorization"),
        ("/api/v1/webhooks/secret", "GET", "authorization"),
        ("/api/v1/demo-sessions", "POST", "authorization"),
        ("/api/v1/tryon", "POST", "authorization, x-custom"),  # a header pages do not need
        ("/api/v1/tryon", "PUT", "authorization"),
        ("/api/v1/nothing", "GET", "authorization"),
    ],
)
async def test_a_preflight_for_anything_else_is_refused(
    client: Client, path: str, method: str, headers: str
) -> None:
    await new_session(client, await manager_of(client))
    answer = await client.options(path, headers=preflight(ORIGIN, method, headers))
    if path == "/api/v1/nothing":  # no route at all: the router's 404
        assert answer.status_code == 404, answer.text
    else:
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"]["type"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in answer.headers


async def test_a_preflight_from_an_origin_no_live_session_lists_is_refused(
    client: Client,
) -> None:
    manager = await manager_of(client)
    assert (
        await client.options("/api/v1/tryon", headers=preflight(ORIGIN, "POST"))
    ).status_code == (403)  # no session at all yet
    ended = await new_session(client, manager)
    revoked = await new_session(client, manager, origins=[OTHER_ORIGIN])
    await expire(client, ended["id"])
    await client.delete(f"/api/v1/demo-sessions/{revoked['id']}", headers=auth(manager))
    for origin in (ORIGIN, OTHER_ORIGIN, "http://third.localhost:8003", "null"):
        answer = await client.options("/api/v1/tryon", headers=preflight(origin, "POST"))
        assert answer.status_code == 403, origin
        assert "access-control-allow-origin" not in answer.headers
    await new_session(client, manager)  # a live one lists it again
    assert (
        await client.options("/api/v1/tryon", headers=preflight(ORIGIN, "POST"))
    ).status_code == (204)


async def test_answers_to_a_token_carry_the_allow_header_for_its_origins_only(
    client: Client,
) -> None:
    manager = await manager_of(client)
    created = await new_session(client, manager)
    allowed = await client.get("/api/v1/tryon", headers=demo(created["token"]))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in allowed.headers["vary"]
    other = await client.get("/api/v1/tryon", headers=demo(created["token"], OTHER_ORIGIN))
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers
    # a route not open to demo sessions never carries it, whoever asks
    refused = await client.get("/api/v1/credits", headers=demo(created["token"]))
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    # the page can read that its session ended
    await expire(client, created["id"])
    ended = await client.get("/api/v1/tryon", headers=demo(created["token"]))
    assert ended.status_code == 401
    assert ended.json()["error"]["type"] == "demo_session_expired"
    assert ended.headers["access-control-allow-origin"] == ORIGIN


async def test_a_key_from_a_browser_gets_no_allow_header_unless_a_session_lists_the_origin(
    client: Client,
) -> None:
    runner, account = await new_key(client)
    answer = await client.get("/api/v1/tryon", headers=auth(runner) | {"Origin": ORIGIN})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    models = await client.get("/api/v1/models", headers={"Origin": ORIGIN})
    assert models.status_code == 200 and "access-control-allow-origin" not in models.headers
    manager, _ = await new_key(client, 0, scope="management", account=account)
    await new_session(client, manager)
    models = await client.get("/api/v1/models", headers={"Origin": ORIGIN})
    assert models.headers["access-control-allow-origin"] == ORIGIN
