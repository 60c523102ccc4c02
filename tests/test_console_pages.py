"""The console's pages for a signed-in account: each renders, and each form does what it says
(a key created works against the API and stops when revoked; the playground runs a job
charged to the account; generations filter and export; the webhook secret is the API's)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.console_helpers import (
    CSRF,
    CSRF_DATA,
    SAMPLE_FORM,
    Client,
    csrf,
    finished,
    page,
    post_form,
    run,
    sign_in,
)
from tests.helpers import SAMPLES, auth, data_url, live_server, new_key, own_database
from tests.jobs_helpers import money
from tryon_core import accounts
from tryon_core.errors import ContentRefused, ProviderUnavailable
from tryon_core.testing import ScriptedProvider

PAGES = {
    "/": "Overview",
    "/keys": "API keys",
    "/models": "Models",
    "/playground": "Playground",
    "/generations": "Generations",
    "/webhooks": "Webhooks",
    "/demo-sessions": "Demo sessions",
}


@pytest.fixture
async def signed_in(client: Client) -> tuple[str, str]:
    """(key, account): an account with 100 credits, signed in to the console."""
    key, account = await new_key(client, credits=100, scope="management")
    await sign_in(client, key)
    return key, account


async def test_every_page_renders_for_a_signed_in_account(
    client: Client, signed_in: tuple[str, str]
) -> None:
    _, account = signed_in
    for path, title in PAGES.items():
        html = (await page(client, path)).text
        assert f"<h1>{title}</h1>" in html, path
        assert f"<title>{title} · tryon-core console</title>" in html
        assert re.search(rf'<a href="{re.escape(path)}" aria-current="page">', html), path
        assert account in html
        assert "Sign out" in html
        assert 'href="/operator"' not in html  # not an operator
        for label_for in re.findall(r'<label for="([^"]+)"', html):
            assert f'id="{label_for}"' in html, (path, label_for)


async def test_a_key_created_in_the_console_works_until_it_is_revoked(
    client: Client, signed_in: tuple[str, str]
) -> None:
    _, account = signed_in
    created = await post_form(client, "/keys", {"name": "shop backend", "scope": "inference"})
    assert created.status_code == 201
    secret = re.search(r'value="(tryon_[\w-]+)" data-testid="new-key-secret"', created.text)
    assert secret, created.text
    key = secret.group(1)
    assert "it is not shown again" in created.text
    credits = await client.get("/api/v1/credits", headers=auth(key))
    assert credits.status_code == 200
    assert credits.json()["account_id"] == account
    listing = (await page(client, "/keys")).text
    assert "shop backend" in listing
    assert key[:12] in listing
    assert key not in listing  # shown once only
    row = re.search(r'data-testid="key-row" data-id="(key_[\w-]+)">\s*<td>shop backend<', listing)
    assert row, listing
    key_id = row.group(1)
    confirm = (await page(client, f"/keys/{key_id}/revoke")).text
    assert "Revoke key" in confirm and "stops working at once" in confirm
    revoked = await post_form(
        client, f"/keys/{key_id}/revoke", {}, from_page=f"/keys/{key_id}/revoke"
    )
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/keys?done=revoked"
    assert (await client.get("/api/v1/credits", headers=auth(key))).status_code == 401
    after = (await page(client, "/keys?done=revoked")).text
    assert "The key was revoked" in after
    assert "revoked 20" in after


async def test_the_key_form_sent_twice_makes_one_key(
    client: Client, signed_in: tuple[str, str]
) -> None:
    """A reload of the answer (the browser sends the same form again) or a double click."""
    form_id = re.search(r'name="form_id" value="([^"]+)"', (await page(client, "/keys")).text)
    assert form_id
    fields = {"name": "twice", "scope": "inference", "form_id": form_id.group(1)}
    assert (await post_form(client, "/keys", fields)).status_code == 201
    again = await post_form(client, "/keys", fields)
    assert again.status_code == 303
    assert again.headers["location"] == "/keys?done=sent_twice"
    listing = (await page(client, "/keys?done=sent_twice")).text
    assert listing.count("<td>twice<") == 1
    assert "no other key was made" in listing


async def test_a_management_key_made_in_the_console_manages_and_runs_nothing(
    client: Client, signed_in: tuple[str, str]
) -> None:
    created = await post_form(client, "/keys", {"name": "ops", "scope": "management"})
    assert created.status_code == 201
    assert "Scope: <strong>management</strong>" in created.text
    secret = re.search(r'value="(tryon_[\w-]+)" data-testid="new-key-secret"', created.text)
    assert secret
    key = secret.group(1)
    assert (await client.get("/api/v1/keys", headers=auth(key))).status_code == 200
    refused = await client.post("/api/v1/tryon", json={}, headers=auth(key))
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "insufficient_scope"
    listing = (await page(client, "/keys")).text
    assert re.search(
        r'data-id="key_[\w-]+">\s*<td>ops</td>\s*<td class="mono">tryon_\S+</td>\s*'
        r'<td><span class="badge scope-management">management<',
        listing,
    )


async def test_key_forms_refuse_bad_input_and_keys_of_other_accounts(
    client: Client, signed_in: tuple[str, str]
) -> None:
    for fields, message in [
        ({"name": "", "scope": "inference"}, "Give the key a name"),
        ({"name": "x" * 201, "scope": "inference"}, "Give the key a name"),
        ({"name": "x", "scope": "admin"}, "Choose the key&#39;s scope"),
    ]:
        response = await post_form(client, "/keys", fields)
        assert response.status_code == 400
        assert message in response.text
    other_key, _ = await new_key(client)
    other_id = (await client.get("/api/v1/key", headers=auth(other_key))).json()["data"]["id"]
    assert (await page(client, f"/keys/{other_id}/revoke", 404)).status_code == 404
    response = await post_form(client, f"/keys/{other_id}/revoke", {}, from_page="/keys")
    assert response.status_code == 404
    assert "no such key" in response.text.lower() or "No key" in response.text
    assert (await client.get("/api/v1/credits", headers=auth(other_key))).status_code == 200


async def test_the_overview_shows_money_spend_and_recent_generations(
    client: Client, signed_in: tuple[str, str]
) -> None:
    _, account = signed_in
    empty = (await page(client, "/")).text
    assert 'data-testid="spend-empty"' in empty
    assert 'data-testid="recent-empty"' in empty
    accepted = await run(client, {"model": (None, "scripted/alpha")})
    assert (await finished(client, accepted["jobId"]))["status"] == "completed"
    html = (await page(client, "/")).text
    assert re.search(r'data-testid="balance">97<', html)
    assert re.search(r'data-testid="reserved">0<', html)
    assert re.search(r'data-testid="spent">3<', html)
    assert re.search(r"<title>\d{4}-\d\d-\d\d: 3 credits</title>", html)
    assert accepted["jobId"] in html
    assert await money(client, account) == (97, 0, 97, 0)


async def test_the_models_page_shows_every_model_and_its_health(
    client: Client, signed_in: tuple[str, str]
) -> None:
    html = (await page(client, "/models")).text
    for slug, credits in [("scripted/alpha", 3), ("scripted/beta", 2), ("scripted/gamma", 5)]:
        card = html[html.index(f'data-slug="{slug}"') :]
        card = card[: card.index("</li>")]
        assert f"{credits} credits per image" in card
        assert "scripted" in card
        assert 'data-testid="model-health">fine<' in card
    assert "tops, bottoms, one-pieces" in html
    assert "<dd>tops</dd>" in html  # beta takes tops only
    health = client.app.state.gateway.health
    for _ in range(health.threshold):
        health.failure("scripted/beta")
    html = (await page(client, "/models")).text
    card = html[html.index('data-slug="scripted/beta"') :]
    assert re.search(r"cooling down, \d+ s left", card[: card.index("</li>")])


async def test_the_playground_runs_a_job_charged_to_the_account(
    client: Client, signed_in: tuple[str, str], scripted: ScriptedProvider
) -> None:
    _, account = signed_in
    accepted = await run(client, {"model": (None, "scripted/gamma"), "category": (None, "tops")})
    job_id = accepted["jobId"]
    assert accepted["status"] == "queued"
    assert accepted["statusUrl"] == f"/playground/jobs/{job_id}"
    assert accepted["wsUrl"].startswith(f"ws://testserver.local/api/v1/tryon/{job_id}/ws?token=")
    body = await finished(client, job_id)
    assert body["status"] == "completed"
    assert body["model"] == "scripted/gamma"
    assert body["usage"] == {"credits": 5, "reserved": 0}
    (image,) = body["images"]
    assert image["url"].startswith("/api/v1/files/")  # on the console's own origin
    download = await client.get(image["url"])
    assert download.status_code == 200 and download.content[:4] == b"\x89PNG"
    (call,) = scripted.calls
    assert call.category == "tops"
    assert call.person.width > 0 and len(call.garments) == 1
    assert await money(client, account) == (95, 0, 95, 0)


async def test_the_playground_takes_uploads(
    client: Client, signed_in: tuple[str, str], scripted: ScriptedProvider
) -> None:
    person = (SAMPLES / "person.jpg").read_bytes()
    garment = (SAMPLES / "garment.png").read_bytes()
    response = await client.post(
        "/playground/jobs",
        files=[
            ("person_image", ("me.jpg", person, "image/jpeg")),
            ("garment_images", ("a.png", garment, "image/png")),
            ("garment_images", ("b.png", garment, "image/png")),
            ("model", (None, "scripted/alpha")),
        ],
        headers={"X-CSRF-Token": await csrf(client, "/playground")},
    )
    assert response.status_code == 202, response.text
    assert (await finished(client, response.json()["jobId"]))["status"] == "completed"
    assert len(scripted.calls[0].garments) == 2


async def test_a_failed_playground_job_says_why_and_charges_nothing(
    client: Client, signed_in: tuple[str, str], scripted: ScriptedProvider
) -> None:
    _, account = signed_in
    scripted.script("scripted/alpha", ContentRefused("The upstream refused this image."))
    accepted = await run(client, {"model": (None, "scripted/alpha")})
    body = await finished(client, accepted["jobId"])
    assert body["status"] == "failed"
    assert "refused this image" in body["error"]["message"]
    assert body["usage"]["credits"] == 0
    assert await money(client, account) == (100, 0, 100, 0)
    detail = (await page(client, f"/generations/{accepted['jobId']}")).text
    assert "refused this image" in detail and "Nothing was charged." in detail


async def test_the_playground_refuses_what_it_cannot_run(
    client: Client, signed_in: tuple[str, str]
) -> None:
    token = await csrf(client, "/playground")
    for files, status, param in [
        ({"garment_sample": (None, "garment.png")}, 400, "person"),
        ({"person_sample": (None, "person.jpg")}, 400, "garment"),
        ({**SAMPLE_FORM, "person_sample": (None, "../../etc/passwd")}, 400, "person_sample"),
        ({**SAMPLE_FORM, "garment_sample": (None, "person.jpg")}, 400, "garment_sample"),
        ({**SAMPLE_FORM, "category": (None, "hats")}, 400, "category"),
        ({**SAMPLE_FORM, "model": (None, "nobody/nothing")}, 404, None),
    ]:
        response = await client.post(
            "/playground/jobs", files=files, headers={"X-CSRF-Token": token}
        )
        assert response.status_code == status, response.text
        error = response.json()["error"]
        if param:
            assert error["param"] == param
    response = await client.post(
        "/playground/jobs", data={"x": "1"}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 400


async def test_the_playground_needs_credits(client: Client) -> None:
    key, account = await new_key(client, credits=0, scope="management")
    await sign_in(client, key)
    response = await client.post(
        "/playground/jobs",
        files=SAMPLE_FORM,
        headers={"X-CSRF-Token": await csrf(client, "/playground")},
    )
    assert response.status_code == 402
    assert "Insufficient credits" in response.json()["error"]["message"]
    assert await money(client, account) == (0, 0, 0, 0)


async def test_the_playground_job_is_followed_on_its_websocket(
    make_app: Callable[..., Litestar], database_url: str, scripted: ScriptedProvider
) -> None:
    """As the page's script does it: the wsUrl of the 202, on the console's own origin."""
    scripted.script("scripted/beta", ProviderUnavailable("down"))
    app = make_app(database_url, extra='[routing.fallbacks]\n"scripted/beta" = ["scripted/alpha"]')
    async with live_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        key, _ = await new_key(app, scope="management")
        token = CSRF.search((await http.get("/sign-in")).text)
        assert token
        signed = await http.post("/sign-in", data={"csrf_token": token.group(1), "api_key": key})
        assert signed.status_code == 303
        header = CSRF_DATA.search((await http.get("/playground")).text)
        assert header
        accepted = await http.post(
            "/playground/jobs",
            files={**SAMPLE_FORM, "model": (None, "scripted/beta")},
            headers={"X-CSRF-Token": header.group(1)},
        )
        assert accepted.status_code == 202, accepted.text
        ws = urlsplit(accepted.json()["wsUrl"])
        received = []
        async with connect(f"ws://{urlsplit(url).netloc}{ws.path}?{ws.query}") as socket:
            try:
                async for raw in socket:
                    received.append(json.loads(raw))
            except ConnectionClosed:
                pass
        jobs = [m["job"] for m in received if m["type"] == "status"]
        assert jobs[-1]["status"] == "completed"
        assert [a["status"] for a in jobs[-1]["attempts"]] == ["failed", "succeeded"]
        assert jobs[-1]["model"] == "scripted/alpha"
        final = await http.get(accepted.json()["statusUrl"])
        assert final.json()["status"] == "completed"


async def test_generations_are_listed_filtered_shown_and_exported(
    client: Client, signed_in: tuple[str, str], scripted: ScriptedProvider
) -> None:
    scripted.script("scripted/beta", ContentRefused('=HYPERLINK("http://evil")'))
    done = await run(client, {"model": (None, "scripted/alpha")})
    await finished(client, done["jobId"])
    failed = await run(client, {"model": (None, "scripted/beta")})
    await finished(client, failed["jobId"])
    html = (await page(client, "/generations")).text
    rows = re.findall(r'data-testid="generation-row" data-id="(gen_[\w-]+)"', html)
    assert rows == [failed["jobId"], done["jobId"]]  # newest first
    assert 'data-testid="export-csv"' in html
    only_failed = (await page(client, "/generations?status=failed")).text
    assert re.findall(r'data-id="(gen_[\w-]+)"', only_failed) == [failed["jobId"]]
    alpha = (await page(client, "/generations?model=scripted/alpha")).text
    assert re.findall(r'data-id="(gen_[\w-]+)"', alpha) == [done["jobId"]]
    nothing = (await page(client, "/generations?status=queued")).text
    assert "No generation matches these filters" in nothing
    await page(client, "/generations?status=bogus", 400)
    await page(client, "/generations?cursor=nonsense", 400)

    detail = (await page(client, f"/generations/{done['jobId']}")).text
    assert 'data-testid="attempt-row"' in detail
    assert 'data-testid="generation-image"' in detail
    assert re.search(r'data-testid="generation-credits">3<', detail)

    export = await client.get("/generations.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    records = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["id"] for r in records] == [failed["jobId"], done["jobId"]]
    assert records[1]["status"] == "completed"
    assert records[1]["model"] == "scripted/alpha"
    assert records[1]["credits"] == "3"
    assert int(records[1]["duration_ms"]) >= 0
    assert records[0]["credits"] == "0"
    assert records[0]["error_type"] == "content_policy_violation"
    assert records[0]["error_message"] == (
        'All candidate models failed; last error: =HYPERLINK("http://evil")'
    )
    filtered = await client.get("/generations.csv?status=completed")
    assert [r["id"] for r in csv.DictReader(io.StringIO(filtered.text))] == [done["jobId"]]


async def test_generations_of_other_accounts_are_absent(
    client: Client, signed_in: tuple[str, str]
) -> None:
    other_key, _ = await new_key(client)
    response = await client.post(
        "/api/v1/tryon",
        files={
            "person_images": ("p.jpg", (SAMPLES / "person.jpg").read_bytes(), "image/jpeg"),
            "garment_images": ("g.png", (SAMPLES / "garment.png").read_bytes(), "image/png"),
        },
        headers=auth(other_key),
    )
    assert response.status_code == 200, response.text
    theirs = response.json()["id"]
    await page(client, f"/generations/{theirs}", 404)
    assert (await client.get(f"/playground/jobs/{theirs}")).status_code == 404
    assert theirs not in (await page(client, "/generations")).text
    assert theirs not in (await client.get("/generations.csv")).text


async def test_the_webhook_secret_is_revealed_and_rotated(
    client: Client, signed_in: tuple[str, str]
) -> None:
    key, _ = signed_in
    hidden = (await page(client, "/webhooks")).text
    assert "whsec_••" in hidden
    assert 'data-testid="deliveries-empty"' in hidden
    revealed = await post_form(client, "/webhooks/reveal", {}, from_page="/webhooks")
    assert revealed.status_code == 200
    shown = re.search(r'value="(whsec_[\w-]+)" data-testid="webhook-secret"', revealed.text)
    assert shown
    api = await client.get("/api/v1/webhooks/secret", headers=auth(key))
    assert api.json()["secret"] == shown.group(1)
    assert shown.group(1) not in (await page(client, "/webhooks")).text
    assert "Rotate secret" in (await page(client, "/webhooks/rotate")).text
    rotated = await post_form(client, "/webhooks/rotate", {}, from_page="/webhooks/rotate")
    assert rotated.status_code == 200
    assert "The secret was rotated" in rotated.text
    new = re.search(r'value="(whsec_[\w-]+)" data-testid="webhook-secret"', rotated.text)
    assert new and new.group(1) != shown.group(1)
    api = await client.get("/api/v1/webhooks/secret", headers=auth(key))
    assert api.json()["secret"] == new.group(1)


async def test_webhook_deliveries_are_listed(
    make_app: Callable[..., Litestar], database_url: str
) -> None:
    app = make_app(database_url, extra='[fetch]\nallow_hosts = ["127.0.0.1:9"]')
    async with AsyncTestClient(app=app) as client:
        manager, account = await new_key(client, scope="management")
        await sign_in(client, manager)
        key, _ = await new_key(client, account=account)
        response = await client.post(
            "/api/v1/tryon",
            json={
                "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
                "garment_images": data_url(SAMPLES / "garment.png", "image/png"),
                "mode": "async",
                "webhook_url": "http://127.0.0.1:9/hook",
            },
            headers=auth(key),
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["jobId"]
        end = time.monotonic() + 20
        while True:
            html = (await page(client, "/webhooks")).text
            if 'data-testid="delivery-row"' in html:
                break
            assert time.monotonic() < end
            await asyncio.sleep(0.05)
        assert job_id in html
        assert "http://127.0.0.1:9/hook" in html
        assert "job.completed" in html


async def test_operator_pages_are_refused_to_other_accounts(
    client: Client, signed_in: tuple[str, str]
) -> None:
    _, account = signed_in
    refused = await page(client, "/operator", 403)
    assert "for the server&#39;s operators" in refused.text
    grant = await post_form(
        client, "/operator/grant", {"account_id": account, "credits": "1000"}, from_page="/"
    )
    assert grant.status_code == 403
    assert await money(client, account) == (100, 0, 100, 0)


async def test_an_operator_sees_every_account_and_grants_credits(
    client: Client, signed_in: tuple[str, str]
) -> None:
    _, account = signed_in
    _, other = await new_key(client, credits=7)
    async with own_database(client) as database, database.transaction() as conn:
        await accounts.set_operator(conn, account, True)
    assert 'href="/operator"' in (await page(client, "/")).text
    client.app.state.gateway.health.failure("scripted/beta")
    html = (await page(client, "/operator")).text
    rows = dict(
        re.findall(r'data-testid="account-row" data-id="(acct_[\w-]+)">(.*?)</tr>', html, re.S)
    )
    assert set(rows) >= {account, other}
    assert "operator" in rows[account] and "operator" not in rows[other]
    assert re.search(r'<td class="num">7</td>', rows[other])
    assert re.search(r"scripted/beta</td><td>scripted</td><td class=\"num\">1</td>", html)
    granted = await post_form(
        client,
        "/operator/grant",
        {"account_id": other, "credits": "25", "note": "welcome"},
        from_page="/operator",
    )
    assert granted.status_code == 303 and granted.headers["location"] == "/operator?done=granted"
    assert await money(client, other) == (32, 0, 32, 0)
    for fields, status, message in [
        ({"account_id": other, "credits": "many"}, 400, "whole number"),
        ({"account_id": other, "credits": "0"}, 400, "zero credits"),
        ({"account_id": other, "credits": "-100"}, 400, "below zero"),
        ({"account_id": "acct_nope", "credits": "5"}, 404, "No account"),
    ]:
        refused = await post_form(client, "/operator/grant", fields, from_page="/operator")
        assert refused.status_code == status, refused.text
        assert message in refused.text
    assert await money(client, other) == (32, 0, 32, 0)


async def test_a_demo_session_made_in_the_console_works_until_it_is_revoked(
    client: Client, signed_in: tuple[str, str]
) -> None:
    manager, _ = signed_in
    assert 'data-testid="demo-sessions-empty"' in (await page(client, "/demo-sessions")).text
    created = await post_form(
        client,
        "/demo-sessions",
        {
            "allowed_origins": "https://shop.example\r\nhttp://127.0.0.1:5500",
            "max_credits": "6",
            "ttl_minutes": "10",
            "models": "scripted/alpha",
        },
    )
    assert created.status_code == 201, created.text
    found = re.search(r'value="(tryon_demo_[\w-]+)" data-testid="new-demo-token"', created.text)
    assert found
    token = found.group(1)
    assert "it is not shown again" in created.text
    (listed,) = (await client.get("/api/v1/demo-sessions", headers=auth(manager))).json()["data"]
    assert listed["allowed_origins"] == ["https://shop.example", "http://127.0.0.1:5500"]
    assert listed["max_credits"] == 6 and listed["models"] == ["scripted/alpha"]
    assert listed["status"] == "active"
    demo = {"Authorization": f"Bearer {token}", "Origin": "https://shop.example"}
    assert (await client.get("/api/v1/tryon", headers=demo)).status_code == 200
    html = (await page(client, "/demo-sessions")).text
    assert token not in html  # shown once
    assert re.search(rf'data-id="{listed["id"]}">.*?0 / 6.*?scripted/alpha.*?>active<', html, re.S)
    confirm = (await page(client, f"/demo-sessions/{listed['id']}/revoke")).text
    assert "Revoke demo session" in confirm
    revoked = await post_form(
        client, f"/demo-sessions/{listed['id']}/revoke", {}, from_page="/demo-sessions"
    )
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/demo-sessions?done=revoked"
    assert (await client.get("/api/v1/tryon", headers=demo)).status_code == 401
    assert ">revoked<" in (await page(client, "/demo-sessions?done=revoked")).text


async def test_the_demo_session_form_refuses_bad_input(
    client: Client, signed_in: tuple[str, str]
) -> None:
    good = {"allowed_origins": "https://shop.example", "max_credits": "5", "ttl_minutes": "10"}
    for change, message in [
        ({"allowed_origins": " "}, "at least one origin"),
        ({"allowed_origins": "shop.example"}, "origin"),
        ({"allowed_origins": "https://shop.example/path"}, "origin"),
        ({"max_credits": "many"}, "Credit cap: a whole number"),
        ({"ttl_minutes": "-5"}, "Lifetime: a whole number"),
        ({"models": "nobody/nothing"}, "nobody/nothing"),
    ]:
        response = await post_form(client, "/demo-sessions", {**good, **change})
        assert response.status_code == 400, (change, response.text)
        assert message in response.text, (change, response.text)
    assert 'data-testid="demo-sessions-empty"' in (await page(client, "/demo-sessions")).text
    other_manager, _ = await new_key(client, scope="management")
    theirs = await client.post(
        "/api/v1/demo-sessions",
        json={"allowed_origins": ["https://other.example"], "max_credits": 1},
        headers=auth(other_manager),
    )
    await page(client, f"/demo-sessions/{theirs.json()['id']}/revoke", 404)
    refused = await post_form(
        client, f"/demo-sessions/{theirs.json()['id']}/revoke", {}, from_page="/demo-sessions"
    )
    assert refused.status_code == 404
