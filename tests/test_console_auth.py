"""The console's doors: signing in (key, one-time link), the session cookie, CSRF, the CSP,
the bound on sign-in attempts, signing out, and every page closed without a session."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from http.cookies import SimpleCookie

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.console_helpers import (
    Client,
    console_routes,
    csrf,
    fill,
    page,
    post_form,
    sign_in,
)
from tests.helpers import auth, new_key, own_database
from tryon_core import accounts
from tryon_core.api import create_app
from tryon_core.config import Settings
from tryon_core.console_sessions import create_link, start_session
from tryon_core.testing import ScriptedProvider


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """Each Set-Cookie of a response, parsed, by cookie name."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


async def test_signing_in_with_a_key_sets_a_session_cookie_and_never_the_key(
    client: Client,
) -> None:
    key, account = await new_key(client)
    response = await sign_in(client, key)
    assert response.headers["location"] == "/"
    header = session_cookie_header(response)
    assert "HttpOnly" in header
    assert "SameSite=lax" in header or "SameSite=Lax" in header
    assert "Path=/" in header
    assert "Secure" not in header  # plain http, and public_url is http
    assert key not in header
    assert key not in response.text
    overview = await page(client, "/")
    assert key not in overview.text
    assert account in overview.text


def session_cookie_header(response: httpx.Response) -> str:
    return next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("tryon_console=")
    )


@pytest.mark.parametrize("public_url", ["https://tryon.example", "http://testserver.local"])
async def test_the_cookie_is_secure_over_https_or_when_public_url_is_https(
    make_settings: Callable[..., Settings],
    scripted: ScriptedProvider,
    database_url: str,
    public_url: str,
) -> None:
    settings = make_settings(database_url)
    settings.server.public_url = public_url
    app = create_app(settings, extra_plugins=[scripted], load_entry_points=False)
    async with AsyncTestClient(app=app) as client:
        key, _ = await new_key(client)
        first = await page(client, "/sign-in")  # over http: the visitor cookie
        (visitor,) = first.headers.get_list("set-cookie")
        assert visitor.startswith("tryon_console_visitor=")
        assert "HttpOnly" in visitor
        assert ("Secure" in visitor) == public_url.startswith("https")
        if not public_url.startswith("https"):
            response = await post_form(client, "/sign-in", {"api_key": key})
            assert "Secure" not in session_cookie_header(response)
        client.cookies.clear()
        https = "https://testserver.local"
        response = await post_form(
            client, f"{https}/sign-in", {"api_key": key}, from_page=f"{https}/sign-in"
        )
        assert response.status_code == 303
        assert "Secure" in session_cookie_header(response)  # the request came over https


async def test_a_wrong_or_revoked_key_does_not_sign_in(client: Client) -> None:
    key, account = await new_key(client)
    for wrong, status, message in [
        ("", 400, "Paste a management key"),
        ("tryon_nope", 401, "not valid, or it was revoked"),
        ("sk-something-else", 401, "not valid, or it was revoked"),
    ]:
        response = await post_form(client, "/sign-in", {"api_key": wrong})
        assert response.status_code == status
        assert message in response.text
        assert "tryon_console" not in set_cookies(response)
    async with own_database(client) as database, database.transaction() as conn:
        (info,) = await accounts.list_keys(conn, account_id=account)
        await accounts.revoke_key(conn, info.id)
    response = await post_form(client, "/sign-in", {"api_key": key})
    assert response.status_code == 401
    await page(client, "/", 303)


async def test_every_unsafe_console_request_needs_the_csrf_token(client: Client) -> None:
    key, _ = await new_key(client)
    await sign_in(client, key)
    good = await csrf(client, "/keys")
    posts = [(m, p) for m, p, _ in console_routes(client.app) if m == "POST"]
    assert len(posts) >= 8
    for method, path in posts:
        target = fill(path, {"key_id": "key_x"})
        for data, headers in [
            ({}, {}),
            ({"csrf_token": "0" * 64}, {}),
            ({}, {"X-CSRF-Token": "not-it"}),
            ({"csrf_token": good[:-1] + ("0" if good[-1] != "0" else "1")}, {}),
        ]:
            response = await client.request(
                method, target, data=data, headers=headers, follow_redirects=False
            )
            assert response.status_code == 403, (target, response.text[:300])
            assert "security token" in response.text


async def test_a_token_of_another_session_is_refused(client: Client) -> None:
    """A CSRF token is bound to its cookie: one browser's token is worthless in another."""
    key, _ = await new_key(client)
    await sign_in(client, key)
    mine = client.cookies.get("tryon_console")
    await sign_in(client, key)  # another browser, another session
    theirs = await csrf(client, "/keys")
    client.cookies.set("tryon_console", mine)
    response = await client.post(
        "/keys", data={"csrf_token": theirs, "name": "x"}, follow_redirects=False
    )
    assert response.status_code == 403


async def test_every_console_page_has_the_csp_and_no_inline_script_or_style(
    client: Client,
) -> None:
    key, _ = await new_key(client)
    await sign_in(client, key)
    keys = (await client.get("/api/v1/keys", headers=auth(key))).json()["data"]
    job = await client.post(
        "/playground/jobs",
        files={"person_sample": (None, "person.jpg"), "garment_sample": (None, "garment.png")},
        headers={"X-CSRF-Token": await csrf(client, "/playground")},
    )
    assert job.status_code == 202, job.text
    values = {
        "key_id": keys[0]["id"],
        "job_id": job.json()["jobId"],
        "name": "person.jpg",
        "file_path": "console.css",
    }
    gets = [(p, h) for m, p, h in console_routes(client.app) if m == "GET"]
    assert len(gets) >= 12
    for path, handler in gets:
        target = fill(path, values)
        response = await client.get(target, follow_redirects=False)
        assert response.status_code in (200, 403), (target, response.status_code)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        if response.headers["content-type"].startswith("text/html"):
            html = response.text
            assert not re.search(r"<script(?![^>]*\ssrc=)", html), target
            assert not re.search(r"\sstyle=", html), target
            assert not re.search(r"\son[a-z]+=", html), target
            assert response.headers["cache-control"] == "no-store"
            assert handler.opt.get("console_page")


async def test_pages_redirect_and_scripts_get_401_without_a_session(client: Client) -> None:
    values = {"key_id": "key_x", "job_id": "gen_x", "name": "person.jpg", "file_path": "x"}
    open_paths = {"/sign-in", "/sign-in/link", "/samples/{name:str}", "/static/{file_path:path}"}
    for method, path, handler in console_routes(client.app):
        if method != "GET" or path in open_paths:
            continue
        target = fill(path, values)
        response = await client.get(target, follow_redirects=False)
        if handler.opt.get("console_page"):
            assert response.status_code == 303, target
            location = response.headers["location"]
            assert location.startswith("/sign-in"), location
            if target != "/":
                assert location == "/sign-in?next=" + target
        else:
            assert response.status_code == 401, target
            assert response.json()["error"]["type"] == "sign_in_required"


async def test_after_sign_in_the_browser_goes_back_to_the_page_it_asked_for(
    client: Client,
) -> None:
    key, _ = await new_key(client)
    response = await page(client, "/generations?status=failed", 303)
    assert response.headers["location"] == "/sign-in?next=/generations%3Fstatus%3Dfailed"
    form = await page(client, response.headers["location"])
    assert 'name="next" value="/generations?status=failed"' in form.text
    token = await csrf(client)
    answer = await client.post(
        "/sign-in",
        data={"csrf_token": token, "api_key": key, "next": "/generations?status=failed"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/generations?status=failed"
    for evil in ["//evil.example/", "https://evil.example/", "/\\evil.example", "keys"]:
        answer = await post_form(client, "/sign-in", {"api_key": key, "next": evil})
        assert answer.headers["location"] == "/", evil


async def test_sign_in_attempts_are_bounded_per_client_address(
    make_app: Callable[..., Litestar], database_url: str
) -> None:
    app = make_app(database_url, extra="[console]\nsign_in_attempts = 3")
    async with AsyncTestClient(app=app) as client:
        key, _ = await new_key(client)
        for _ in range(2):
            response = await post_form(client, "/sign-in", {"api_key": "tryon_wrong"})
            assert response.status_code == 401
        link = await post_form(client, "/sign-in/link", {"token": "tcl_x"}, from_page="/sign-in")
        assert link.status_code == 401  # a link counts as an attempt too
        for fields, path in [({"api_key": key}, "/sign-in"), ({"token": "tcl_x"}, "/sign-in/link")]:
            refused = await post_form(client, path, fields, from_page="/sign-in")
            assert refused.status_code == 429
            assert "Too many sign-in attempts" in refused.text
            assert 1 <= int(refused.headers["retry-after"]) <= 300
            assert "tryon_console" not in set_cookies(refused)


async def test_a_one_time_link_signs_in_once(client: Client) -> None:
    _, account = await new_key(client)
    async with own_database(client) as database, database.transaction() as conn:
        token, _ = await create_link(conn, account_id=account, ttl=timedelta(minutes=15))
    form = await page(client, f"/sign-in/link?token={token}")
    assert "Sign in" in form.text
    assert account not in form.text  # the page tells nothing before the link is used
    response = await post_form(
        client, "/sign-in/link", {"token": token}, from_page=f"/sign-in/link?token={token}"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert account in (await page(client, "/")).text
    client.cookies.clear()
    again = await post_form(
        client, "/sign-in/link", {"token": token}, from_page=f"/sign-in/link?token={token}"
    )
    assert again.status_code == 401
    assert "already used" in again.text
    assert "tryon_console" not in set_cookies(again)
    await page(client, "/", 303)


async def test_an_expired_or_unknown_link_does_not_sign_in(client: Client) -> None:
    _, account = await new_key(client)
    async with own_database(client) as database, database.transaction() as conn:
        token, _ = await create_link(conn, account_id=account, ttl=timedelta(minutes=-1))
    for used, message in [(token, "has expired"), ("tcl_" + "x" * 43, "not valid")]:
        response = await post_form(client, "/sign-in/link", {"token": used}, from_page="/sign-in")
        assert response.status_code == 401
        assert message in response.text
    assert "not valid" in (await page(client, "/sign-in/link")).text


async def test_signing_out_ends_the_session_for_good(client: Client) -> None:
    key, _ = await new_key(client)
    await sign_in(client, key)
    stolen = client.cookies.get("tryon_console")
    assert stolen
    response = await post_form(client, "/sign-out", {}, from_page="/")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?done=signed-out"
    assert "Max-Age=0" in session_cookie_header(response)
    assert "You are signed out" in (await page(client, "/sign-in?done=signed-out")).text
    client.cookies.set("tryon_console", stolen)  # the old cookie, replayed
    await page(client, "/", 303)


async def test_a_session_ends_with_the_key_that_opened_it_and_when_it_expires(
    client: Client,
) -> None:
    key, account = await new_key(client)
    await sign_in(client, key)
    await page(client, "/keys")
    async with own_database(client) as database, database.transaction() as conn:
        (info,) = await accounts.list_keys(conn, account_id=account)
        await accounts.revoke_key(conn, info.id)
    await page(client, "/keys", 303)
    async with own_database(client) as database, database.transaction() as conn:
        _, token = await start_session(
            conn, account_id=account, key_id=None, ttl=timedelta(seconds=-1)
        )
    client.cookies.set("tryon_console", token)
    await page(client, "/keys", 303)


async def test_the_console_can_be_switched_off(
    make_app: Callable[..., Litestar], database_url: str
) -> None:
    app = make_app(database_url, extra="[console]\nenabled = false")
    async with AsyncTestClient(app=app) as client:
        for path in ["/", "/sign-in", "/keys", "/static/console.css"]:
            response = await client.get(path, follow_redirects=False)
            assert response.status_code == 404, path
            assert response.json()["error"]["type"] == "not_found"
        assert (await client.get("/healthz")).status_code == 200


async def test_a_console_form_is_small(client: Client) -> None:
    token = await csrf(client)
    response = await client.post(
        "/sign-in",
        data={"csrf_token": token, "api_key": "tryon_" + "x" * 70_000},
        follow_redirects=False,
    )
    assert response.status_code == 413
    assert "at most 65536 bytes" in response.text
    fields = {f"f{i}": "1" for i in range(60)}
    response = await client.post(
        "/sign-in", data={"csrf_token": token, **fields}, follow_redirects=False
    )
    assert response.status_code == 400
