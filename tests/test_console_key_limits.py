"""A key's limits in the console: set when the key is made, shown in the keys table, changed
on the key's own limits page; each checked through the API's view of the key."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.console_helpers import Client, page, post_form, sign_in
from tests.helpers import auth, new_key
from tryon_core.amounts import MAX_CREDITS
from tryon_core.config import MAX_LIMIT
from tryon_core.console.limits_form import limit_changes
from tryon_core.errors import InvalidRequest
from tryon_core.limit_periods import LIMIT_RESETS

NO_LIMITS = {
    "limit": "",
    "limit_reset": "none",
    "requests_per_minute": "",
    "concurrent_generations": "",
}


@pytest.fixture
async def signed_in(client: Client) -> str:
    """A management key of an account with 100 credits, signed in to the console."""
    key, _ = await new_key(client, credits=100, scope="management")
    await sign_in(client, key)
    return key


async def api_keys(client: Client, management_key: str) -> dict[str, dict[str, Any]]:
    """The account's keys as ``GET /api/v1/keys`` shows them, by name."""
    response = await client.get("/api/v1/keys", headers=auth(management_key))
    assert response.status_code == 200, response.text
    return {k["name"]: k for k in response.json()["data"]}


async def create(client: Client, name: str, **limits: str) -> tuple[str, str]:
    """Create a key in the console with these limit fields; returns (secret, key id)."""
    fields = {"name": name, "scope": "inference", **NO_LIMITS, **limits}
    created = await post_form(client, "/keys", fields)
    assert created.status_code == 201, created.text
    secret = re.search(r'value="(tryon_[\w-]+)" data-testid="new-key-secret"', created.text)
    assert secret
    info = (await client.get("/api/v1/key", headers=auth(secret.group(1)))).json()["data"]
    return secret.group(1), info["id"]


def row_of(html: str, key_id: str) -> str:
    found = re.search(rf'data-id="{key_id}".*?</tr>', html, re.S)
    assert found, html
    return found.group(0)


def shown(row: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]*)<', row)
    assert found, row
    return found.group(1)


async def test_a_key_made_with_limits_has_them_and_the_table_shows_them(
    client: Client, signed_in: str, tryon_body: Any
) -> None:
    secret, key_id = await create(
        client,
        "capped",
        limit="50",
        limit_reset="monthly",
        requests_per_minute="60",
        concurrent_generations="4",
    )
    capped = (await api_keys(client, signed_in))["capped"]
    assert capped["limit"] == capped["limit_remaining"] == 50
    assert capped["limit_reset"] == "monthly"
    assert (capped["requests_per_minute"], capped["concurrent_generations"]) == (60, 4)
    row = row_of((await page(client, "/keys")).text, key_id)
    assert shown(row, "key-limit") == "50 of 50 left · monthly"
    assert shown(row, "key-rates") == "4 at once · 60/min"
    assert shown(row, "key-spent-month") == "0 this month"

    done = await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(secret))
    assert done.status_code == 200, done.text
    cost = done.json()["usage"]["credits"]
    assert cost > 0
    row = row_of((await page(client, "/keys")).text, key_id)
    assert shown(row, "key-limit") == f"{50 - cost} of 50 left · monthly"
    assert shown(row, "key-spent") == str(cost)
    assert shown(row, "key-spent-month") == f"{cost} this month"


async def test_a_key_made_without_limits_shows_none(client: Client, signed_in: str) -> None:
    _, key_id = await create(client, "open")
    plain = (await api_keys(client, signed_in))["open"]
    assert (plain["limit"], plain["limit_reset"], plain["requests_per_minute"]) == (
        None,
        "none",
        None,
    )
    assert plain["concurrent_generations"] is None
    row = row_of((await page(client, "/keys")).text, key_id)
    assert shown(row, "key-limit") == "no limit"
    assert shown(row, "key-rates") == "defaults"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"limit": "-1"}, "Credit limit: a whole number of credits from 0 to"),
        ({"limit": "2.5"}, "Credit limit: a whole number"),
        ({"limit": str(MAX_CREDITS + 1)}, "Credit limit: a whole number"),
        ({"limit": "ten"}, "Credit limit: a whole number"),
        ({"limit_reset": "yearly"}, "Limit resets: choose one of none, daily, weekly, monthly"),
        ({"requests_per_minute": "0"}, "Requests per minute: a whole number of requests from 1"),
        ({"concurrent_generations": str(MAX_LIMIT + 1)}, "Generations at once: a whole number"),
    ],
)
async def test_bad_limits_at_creation_make_no_key_and_keep_the_form(
    client: Client, signed_in: str, fields: dict[str, str], message: str
) -> None:
    sent = {"name": "refused", "scope": "management", **NO_LIMITS, "limit": "7", **fields}
    response = await post_form(client, "/keys", sent)
    assert response.status_code == 400, response.text
    error = re.search(r'data-testid="error-message">([^<]*)<', response.text)
    assert error and message in error.group(1), response.text
    assert 'value="refused"' in response.text  # the form keeps what was typed
    assert '<option value="management" selected>' in response.text
    for field, value in sent.items():
        if field in ("limit", "requests_per_minute", "concurrent_generations"):
            assert re.search(rf'name="{field}"[^>]*value="{re.escape(value)}"', response.text)
    assert "refused" not in await api_keys(client, signed_in)


async def test_the_limits_page_changes_a_key_and_blank_clears(
    client: Client, signed_in: str
) -> None:
    _, key_id = await create(client, "to change", limit="50", limit_reset="daily")
    form = (await page(client, f"/keys/{key_id}/limits")).text
    assert "<h1>Limits of key “to change”</h1>" in form
    assert re.search(r'name="limit"[^>]*value="50"', form)
    assert '<option value="daily" selected>' in form
    assert re.search(r'name="requests_per_minute"[^>]*value=""', form)

    changed = await post_form(
        client,
        f"/keys/{key_id}/limits",
        {
            "limit": "80",
            "limit_reset": "weekly",
            "requests_per_minute": "30",
            "concurrent_generations": "2",
        },
    )
    assert changed.status_code == 303, changed.text
    assert changed.headers["location"] == "/keys?done=limits"
    key = (await api_keys(client, signed_in))["to change"]
    assert (key["limit"], key["limit_remaining"], key["limit_reset"]) == (80, 80, "weekly")
    assert (key["requests_per_minute"], key["concurrent_generations"]) == (30, 2)
    listing = (await page(client, "/keys?done=limits")).text
    assert "The key&#39;s limits were saved" in listing
    assert shown(row_of(listing, key_id), "key-limit") == "80 of 80 left · weekly"
    assert shown(row_of(listing, key_id), "key-rates") == "2 at once · 30/min"

    cleared = await post_form(client, f"/keys/{key_id}/limits", NO_LIMITS)
    assert cleared.status_code == 303, cleared.text
    key = (await api_keys(client, signed_in))["to change"]
    assert (key["limit"], key["limit_remaining"], key["limit_reset"]) == (None, None, "none")
    assert (key["requests_per_minute"], key["concurrent_generations"]) == (None, None)


async def test_bad_limits_on_the_limits_page_change_nothing(client: Client, signed_in: str) -> None:
    _, key_id = await create(client, "kept", limit="50", limit_reset="daily")
    response = await post_form(
        client,
        f"/keys/{key_id}/limits",
        {**NO_LIMITS, "limit": "20", "requests_per_minute": "lots"},
    )
    assert response.status_code == 400
    assert "Requests per minute: a whole number" in response.text
    assert re.search(r'name="requests_per_minute"[^>]*value="lots"', response.text)
    assert re.search(r'name="limit"[^>]*value="20"', response.text)
    key = (await api_keys(client, signed_in))["kept"]
    assert (key["limit"], key["limit_reset"], key["requests_per_minute"]) == (50, "daily", None)


async def test_the_limits_form_needs_its_csrf_token(client: Client, signed_in: str) -> None:
    _, key_id = await create(client, "guarded", limit="50")
    for token in (None, "0" * 64):
        data = {**NO_LIMITS, "limit": "1"} | ({"csrf_token": token} if token else {})
        refused = await client.post(f"/keys/{key_id}/limits", data=data, follow_redirects=False)
        assert refused.status_code == 403, refused.text
    assert (await api_keys(client, signed_in))["guarded"]["limit"] == 50


async def test_another_accounts_key_is_absent_and_a_revoked_key_is_kept(
    client: Client, signed_in: str
) -> None:
    other_key, _ = await new_key(client)
    other = (await client.get("/api/v1/key", headers=auth(other_key))).json()["data"]
    await page(client, f"/keys/{other['id']}/limits", 404)
    refused = await post_form(
        client, f"/keys/{other['id']}/limits", {**NO_LIMITS, "limit": "1"}, from_page="/keys"
    )
    assert refused.status_code == 404
    assert "no such key" in refused.text
    after = (await client.get("/api/v1/key", headers=auth(other_key))).json()["data"]
    assert after["limit"] is None

    _, key_id = await create(client, "gone", limit="50")
    revoked = await post_form(
        client, f"/keys/{key_id}/revoke", {}, from_page=f"/keys/{key_id}/revoke"
    )
    assert revoked.status_code == 303
    shown_page = (await page(client, f"/keys/{key_id}/limits")).text
    assert "its limits can no longer be changed" in shown_page
    assert 'name="limit"' not in shown_page  # no form
    listing = (await page(client, "/keys")).text
    assert f'href="/keys/{key_id}/limits"' not in listing
    refused = await post_form(
        client, f"/keys/{key_id}/limits", {**NO_LIMITS, "limit": "1"}, from_page="/keys"
    )
    assert refused.status_code == 409
    assert "its limits can no longer be changed" in refused.text
    assert (await api_keys(client, signed_in))["gone"]["limit"] == 50


@settings(max_examples=200)
@given(
    st.fixed_dictionaries(
        {
            "limit": st.one_of(st.just(""), st.text(max_size=20), st.integers().map(str)),
            "limit_reset": st.one_of(st.sampled_from(["", *LIMIT_RESETS]), st.text(max_size=8)),
            "requests_per_minute": st.one_of(
                st.just(""), st.text(max_size=8), st.integers().map(str)
            ),
            "concurrent_generations": st.one_of(st.just(""), st.integers().map(str)),
        }
    )
)
def test_the_form_takes_exactly_the_values_the_api_takes(fields: dict[str, str]) -> None:
    """Whatever is typed, the form either refuses it naming a field, or gives limits that are
    whole numbers in the API's ranges (blank: none)."""
    try:
        _, changes = limit_changes(fields)
    except InvalidRequest as exc:
        assert exc.param in fields
        return
    assert changes["limit_reset"] in LIMIT_RESETS
    limit = changes["limit"]
    assert limit is None or (type(limit) is int and 0 <= limit <= MAX_CREDITS)
    assert limit == (int(fields["limit"].strip()) if fields["limit"].strip() else None)
    for field in ("requests_per_minute", "concurrent_generations"):
        value = changes[field]
        assert value is None or (type(value) is int and 1 <= value <= MAX_LIMIT)
