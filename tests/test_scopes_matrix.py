"""Who may call what: every route of the app, for every kind of caller.

The routes come from the app's own route table, so a new route fails here until it is in
``ACCESS`` (what it should need) and ``REQUESTS`` (a request that reaches its handler once
the caller is let through). ``ACCESS`` is written out, not read from the routes' ``opt``: a
route that declares the wrong scope fails :func:`test_each_route_declares_what_it_should`.

Callers: an inference key, a management key, a demo session's token from an origin it
allows, from another origin, with no Origin, after it expired, after it was revoked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.demo_helpers import OTHER_ORIGIN, demo, expire, new_session
from tests.helpers import auth, live_server, new_key
from tests.test_adversarial_keys import concrete
from tryon_core import accounts
from tryon_core.api.app import ROUTES
from tryon_core.api.scopes import check

Client = AsyncTestClient[Litestar]
WS = "/api/v1/tryon/{job_id}/ws"

# (method, path) -> (key scope needed: "inference" | "management" | "any" | None for no
# credential, open to demo sessions)
ACCESS: dict[tuple[str, str], tuple[str | None, bool]] = {
    ("POST", "/api/v1/tryon"): ("inference", True),
    ("GET", "/api/v1/tryon"): ("inference", True),
    ("GET", "/api/v1/tryon/{job_id}"): ("inference", True),
    ("DELETE", "/api/v1/tryon/{job_id}"): ("inference", False),
    ("WEBSOCKET", WS): ("inference", True),
    ("POST", "/api/v1/chat/completions"): ("inference", False),
    ("GET", "/api/v1/files/{file_id}"): ("inference", True),
    ("HEAD", "/api/v1/files/{file_id}"): ("inference", True),
    ("GET", "/api/v1/credits"): ("inference", False),
    ("GET", "/api/v1/key"): ("any", False),
    ("GET", "/api/v1/keys"): ("management", False),
    ("POST", "/api/v1/keys"): ("management", False),
    ("DELETE", "/api/v1/keys/{key_id}"): ("management", False),
    ("PATCH", "/api/v1/keys/{key_id}"): ("management", False),
    ("GET", "/api/v1/webhooks/secret"): ("management", False),
    ("POST", "/api/v1/webhooks/secret/rotate"): ("management", False),
    ("GET", "/api/v1/webhooks/deliveries"): ("management", False),
    ("POST", "/api/v1/demo-sessions"): ("management", False),
    ("GET", "/api/v1/demo-sessions"): ("management", False),
    ("DELETE", "/api/v1/demo-sessions/{session_id}"): ("management", False),
    ("GET", "/api/v1/generations"): ("any", False),
    ("GET", "/api/v1/generation"): ("any", False),
    ("GET", "/api/v1/models"): (None, True),
    ("GET", "/healthz"): (None, False),
    ("GET", "/readyz"): (None, False),
}

# (method, path) -> (request options, the status once the caller is let through)
REQUESTS: dict[tuple[str, str], tuple[dict[str, Any], int]] = {
    ("POST", "/api/v1/tryon"): ({"json": {}}, 400),
    ("GET", "/api/v1/tryon"): ({}, 200),
    ("GET", "/api/v1/tryon/{job_id}"): ({}, 404),
    ("DELETE", "/api/v1/tryon/{job_id}"): ({}, 404),
    ("POST", "/api/v1/chat/completions"): ({"json": {}}, 400),
    ("GET", "/api/v1/files/{file_id}"): ({}, 404),
    ("HEAD", "/api/v1/files/{file_id}"): ({}, 404),
    ("GET", "/api/v1/credits"): ({}, 200),
    ("GET", "/api/v1/key"): ({}, 200),
    ("GET", "/api/v1/keys"): ({}, 200),
    ("POST", "/api/v1/keys"): ({"json": {"name": "matrix"}}, 201),
    ("DELETE", "/api/v1/keys/{key_id}"): ({}, 404),
    ("PATCH", "/api/v1/keys/{key_id}"): ({"json": {"limit": 5}}, 404),
    ("GET", "/api/v1/webhooks/secret"): ({}, 200),
    ("POST", "/api/v1/webhooks/secret/rotate"): ({}, 200),
    ("GET", "/api/v1/webhooks/deliveries"): ({}, 200),
    ("POST", "/api/v1/demo-sessions"): ({"json": {}}, 400),
    ("GET", "/api/v1/demo-sessions"): ({}, 200),
    ("DELETE", "/api/v1/demo-sessions/{session_id}"): ({}, 404),
    ("GET", "/api/v1/generations"): ({}, 200),
    ("GET", "/api/v1/generation"): ({"params": {"id": "gen_missing"}}, 404),
    ("GET", "/api/v1/models"): ({}, 200),
    ("GET", "/healthz"): ({}, 200),
    ("GET", "/readyz"): ({}, 200),
}

KINDS = [
    "inference",
    "management",
    "demo",
    "demo_other_origin",
    "demo_no_origin",
    "demo_expired",
    "demo_revoked",
]


def declared() -> dict[tuple[str, str], tuple[str | None, bool]]:
    """What each route of the app declares in its ``opt``."""
    found = {}
    for handler in ROUTES:
        methods = getattr(handler, "http_methods", None) or {"WEBSOCKET"}
        access = (handler.opt.get("scope"), bool(handler.opt.get("demo")))
        for path in handler.paths:
            found |= {(method, path.replace(":str}", "}")): access for method in methods}
    return found


def test_each_route_declares_what_it_should() -> None:
    assert declared() == ACCESS


def test_every_http_route_has_a_request() -> None:
    assert set(REQUESTS) == {route for route in ACCESS if route[0] != "WEBSOCKET"}


def expected(kind: str, access: tuple[str | None, bool], passed: int) -> tuple[int, str | None]:
    """The status (and error type) ``kind`` gets on a route needing ``access``."""
    scope, demo_open = access
    if kind.startswith("demo") and (scope is not None or demo_open):
        refusals = {
            "demo_other_origin": (403, "origin_not_allowed"),
            "demo_no_origin": (403, "origin_not_allowed"),
            "demo_expired": (401, "demo_session_expired"),
            "demo_revoked": (401, "demo_session_revoked"),
        }
        if kind in refusals:
            return refusals[kind]
        return (passed, None) if demo_open else (403, "insufficient_scope")
    if scope is None or kind.startswith("demo") or scope == "any" or scope == kind:
        return passed, None
    return 403, "insufficient_scope"


async def callers(app: Litestar, http: Client | httpx.AsyncClient) -> dict[str, dict[str, str]]:
    """Headers for each kind of caller, all of one account."""
    runner, account = await new_key(app, credits=100)
    manager, _ = await new_key(app, 0, scope="management", account=account)
    live = await new_session(http, manager)
    expired = await new_session(http, manager)
    revoked = await new_session(http, manager)
    await expire(app, expired["id"])
    gone = await http.delete(f"/api/v1/demo-sessions/{revoked['id']}", headers=auth(manager))
    assert gone.status_code == 200, gone.text
    return {
        "inference": auth(runner),
        "management": auth(manager),
        "demo": demo(live["token"]),
        "demo_other_origin": demo(live["token"], OTHER_ORIGIN),
        "demo_no_origin": demo(live["token"], None),
        "demo_expired": demo(expired["token"]),
        "demo_revoked": demo(revoked["token"]),
    }


async def test_every_route_for_every_kind_of_caller(client: Client) -> None:
    headers = await callers(client.app, client)
    seen: dict[tuple[str, str], dict[str, int]] = {}
    for (method, path), (options, passed) in sorted(REQUESTS.items()):
        for kind in KINDS:
            response = await client.request(
                method, concrete(path), headers=headers[kind], **options
            )
            status, kind_of_error = expected(kind, ACCESS[method, path], passed)
            seen.setdefault((method, path), {})[kind] = response.status_code
            assert response.status_code == status, (method, path, kind, response.text)
            if kind_of_error is None or method == "HEAD":
                continue
            error = response.json()["error"]
            assert set(error) == {"code", "message", "type", "param", "metadata"}
            assert (error["code"], error["type"]) == (status, kind_of_error), (path, kind)
            if kind_of_error == "insufficient_scope":
                needed = ACCESS[method, path][0]
                assert error["metadata"]["required_scope"] == needed
                assert repr(needed) in error["message"]  # names the scope needed
    # every refusal kind was seen somewhere: the matrix is not vacuous
    statuses = {status for row in seen.values() for status in row.values()}
    assert {401, 403} <= statuses


async def test_the_websocket_for_every_kind_of_caller(
    make_app: Callable[..., Litestar], database_url: str, tryon_body: Callable[..., Any]
) -> None:
    app = make_app(database_url)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        headers = await callers(app, http)
        accepted = await http.post(
            "/api/v1/tryon", json=tryon_body(mode="async"), headers=headers["demo"]
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["jobId"]
        ws = f"ws://{urlsplit(url).netloc}{WS.replace('{job_id}', job_id)}"
        for kind in KINDS:
            given = headers[kind]
            token = given["Authorization"].split()[1]
            status, kind_of_error = expected(kind, ACCESS["WEBSOCKET", WS], 200)
            async with connect(
                ws,
                subprotocols=["tryon", f"tryon-key.{token}"],  # type: ignore[list-item]
                origin=given.get("Origin"),  # type: ignore[arg-type]
            ) as socket:
                first = json.loads(await socket.recv())
                if status == 200:
                    assert first["type"] == "status", (kind, first)
                    assert first["job"]["id"] == job_id
                    continue
                assert first["type"] == "error", (kind, first)
                assert first["error"]["type"] == kind_of_error, (kind, first)
                with pytest.raises(ConnectionClosed) as closed:
                    await socket.recv()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 4000 + status, kind


def test_a_console_session_may_do_what_either_scope_may() -> None:
    """The console acts for its account with both scopes; it is never a demo session."""
    principal = accounts.console_principal("acct_x")
    assert (principal.kind, principal.key_id, principal.demo_session_id) == ("console", None, None)
    for handler in ROUTES:
        if handler.opt.get("scope") is not None:
            check(principal, handler.opt)  # raises nothing


def test_a_route_with_a_before_request_hook_of_its_own_stops_the_start() -> None:
    """Litestar runs only the nearest ``before_request`` hook: one on a router or handler would
    run instead of the app's guard, so the app refuses to start with it."""
    from litestar import Router, get

    from tryon_core.api.scopes import check_guarded, guard

    @get("/open", opt={"scope": "inference"})
    async def open_route() -> str:
        return "reached without the guard"

    async def own_hook(_: Any) -> None:
        return None

    guarded = Litestar(route_handlers=[open_route], before_request=guard)
    check_guarded(guarded)
    bypassed = Litestar(
        route_handlers=[Router("/r", route_handlers=[open_route], before_request=own_hook)],
        before_request=guard,
    )
    with pytest.raises(RuntimeError, match="before_request hook of its own"):
        check_guarded(bypassed)
