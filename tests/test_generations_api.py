"""Usage through HTTP: GET /api/v1/generations (filters, keyset pages, who sees what) and
GET /api/v1/generation (one, under OpenRouter's names), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import insert

from tests.helpers import auth, key_id, new_key, own_database
from tryon_core.db.schema import attempts, generations
from tryon_core.errors import ContentRefused, ProviderUnavailable
from tryon_core.testing import ScriptedProvider

Client = AsyncTestClient[Litestar]
LIST = "/api/v1/generations"
ONE = "/api/v1/generation"


async def listed(client: Client, key: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(LIST, params={"limit": 100, **params}, headers=auth(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["next_cursor"] is None
    items: list[dict[str, Any]] = body["data"]
    return items


async def tryon(client: Client, key: str, body: dict[str, Any]) -> str:
    response = await client.post("/api/v1/tryon", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    generation_id: str = response.json()["id"]
    return generation_id


async def test_records_show_keys_credits_attempts_and_who_may_see_them(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    runner, account = await new_key(client, credits=100)
    other_runner, _ = await new_key(client, 0, account=account)
    manager, _ = await new_key(client, 0, scope="management", account=account)
    stranger, _ = await new_key(client, credits=100)
    runner_id, other_id = await key_id(client, runner), await key_id(client, other_runner)

    scripted.script("scripted/gamma", ProviderUnavailable("down", provider_code="503"))
    served = await tryon(client, runner, tryon_body(models=["scripted/gamma", "scripted/alpha"]))
    scripted.script("scripted/alpha", ContentRefused("refused", provider_code="1301"))
    refused = await client.post(
        "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(runner)
    )
    assert refused.status_code == 400, refused.text
    cheap = await tryon(client, other_runner, tryon_body(model="scripted/beta"))
    await tryon(client, stranger, tryon_body(model="scripted/beta"))

    everything = await listed(client, manager)
    assert len(everything) == 3
    assert everything[0]["id"] == cheap and everything[2]["id"] == served
    failed = everything[1]
    first = everything[2]
    assert first["key_id"] == runner_id and everything[0]["key_id"] == other_id
    assert (first["status"], first["mode"], first["route"]) == ("completed", "sync", "native")
    assert (first["model"], first["provider"]) == ("scripted/alpha", "scripted")
    assert (first["credits_reserved"], first["credits_charged"]) == (5, 3)
    assert first["completed_at"] is not None and first["duration_ms"] >= 0
    assert first["error"] is None and first["object"] == "generation"
    tried = first["attempts"]
    assert [(a["position"], a["model"], a["status"]) for a in tried] == [
        (1, "scripted/gamma", "failed"),
        (2, "scripted/alpha", "succeeded"),
    ]
    assert tried[0]["error_type"] == "provider_unavailable" and tried[1]["error_type"] is None
    for attempt in tried:
        assert attempt["provider"] == "scripted" and attempt["duration_ms"] >= 0
        assert attempt["started_at"] <= attempt["finished_at"]
    assert (failed["status"], failed["credits_charged"], failed["model"]) == ("failed", 0, None)
    assert failed["error"]["type"] == "content_policy_violation"
    assert failed["provider"] == "scripted"

    # an inference key sees its own generations only, whatever it asks for
    assert [g["id"] for g in await listed(client, runner)] == [failed["id"], served]
    assert await listed(client, runner, key_id=other_id) == []
    assert [g["id"] for g in await listed(client, runner, key_id=runner_id)] == [
        failed["id"],
        served,
    ]
    # a management key filters by key, model, status and time
    assert [g["id"] for g in await listed(client, manager, key_id=other_id)] == [cheap]
    assert [g["id"] for g in await listed(client, manager, model="scripted/alpha")] == [served]
    assert [g["id"] for g in await listed(client, manager, status="failed")] == [failed["id"]]
    later = datetime.fromisoformat(everything[0]["created_at"]) + timedelta(seconds=1)
    assert await listed(client, manager, created_after=later.isoformat()) == []
    assert len(await listed(client, manager, created_before=later.isoformat())) == 3
    assert len(await listed(client, manager, created_after=str(int(later.timestamp()) - 3600))) == 3
    # never another account's
    assert [g["key_id"] for g in await listed(client, stranger)] == [await key_id(client, stranger)]

    one = await client.get(ONE, params={"id": served}, headers=auth(runner))
    assert one.status_code == 200, one.text
    detail = one.json()["data"]
    assert {k: detail[k] for k in first} == first  # the record, plus OpenRouter's names
    assert detail["total_cost"] == detail["usage"] == 3
    assert detail["provider_name"] == "scripted" and detail["model"] == "scripted/alpha"
    assert detail["latency"] == first["duration_ms"]
    assert detail["generation_time"] == tried[1]["duration_ms"]
    assert detail["upstream_id"] == tried[1]["task_id"]
    assert detail["cancelled"] is False and detail["num_media_prompt"] == 2
    refused_detail = await client.get(ONE, params={"id": failed["id"]}, headers=auth(manager))
    assert refused_detail.json()["data"]["generation_time"] is None

    unknown = await client.get(ONE, params={"id": "gen_unknown"}, headers=auth(runner))
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "id"
    for caller, generation_id in ((stranger, served), (runner, cheap)):
        hidden = await client.get(ONE, params={"id": generation_id}, headers=auth(caller))
        assert hidden.status_code == 404
        assert hidden.json() == unknown.json()
    seen_by_manager = await client.get(ONE, params={"id": cheap}, headers=auth(manager))
    assert seen_by_manager.json()["data"]["key_id"] == other_id


async def test_bad_parameters_are_400_envelopes_naming_the_parameter(client: Client) -> None:
    key, _ = await new_key(client, credits=0)
    bad = {
        "created_after": ["yesterday", "2026-01-31T12:00:00", "2026-01-31", "1e9", "-5", ""],
        "created_before": ["9999999999999", "2026-13-01T00:00:00Z"],
        "cursor": ["%%%", "abc", "MjAyNi0wMS0wMVQwMDowMDowMHxnZW5feA", "x" * 80],
        "limit": ["0", "101", "ten"],
        "status": ["done"],
    }
    for param, values in bad.items():
        for value in values:
            response = await client.get(LIST, params={param: value}, headers=auth(key))
            assert response.status_code == 400, (param, value, response.text)
            error = response.json()["error"]
            assert set(error) == {"code", "message", "type", "param", "metadata"}
            assert (error["code"], error["param"]) == (400, param), (value, error)
    for params in ({}, {"id": ""}):
        missing = await client.get(ONE, params=params, headers=auth(key))
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "id"


async def test_a_cursor_made_for_another_form_of_the_same_place_is_refused(client: Client) -> None:
    """Cursors are opaque: only the exact text the API handed out is taken back."""
    key, account = await new_key(client, credits=0, scope="management")
    await seed(client, account, [(0, None, "completed", None)] * 3)
    first = await client.get(LIST, params={"limit": 1}, headers=auth(key))
    cursor = first.json()["next_cursor"]
    assert cursor
    ok = await client.get(LIST, params={"limit": 1, "cursor": cursor}, headers=auth(key))
    assert ok.status_code == 200
    for changed in (cursor + "=", cursor[:-1], cursor.upper(), " " + cursor):
        if changed == cursor:
            continue
        response = await client.get(LIST, params={"cursor": changed}, headers=auth(key))
        assert response.status_code == 400, changed
        assert response.json()["error"]["param"] == "cursor"


BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Row = tuple[int, str | None, str, str | None]
"""(seconds after BASE, key, status, model): a generation to seed; many share a second."""


async def seed(client: Client, account: str, rows: list[Row]) -> list[dict[str, Any]]:
    """Put generations (each with one attempt) straight into the database; returns what the
    listing should show of them: id, created_at, key_id, status, model."""
    made = []
    async with own_database(client) as database, database.transaction() as conn:
        for at, key, status, model in rows:
            generation_id = f"gen_{len(made):03d}_{account[-6:]}"
            created = BASE + timedelta(seconds=at)
            await conn.execute(
                insert(generations).values(
                    id=generation_id,
                    account_id=account,
                    key_id=key,
                    status=status,
                    route="native",
                    mode="sync",  # settled, no deadline: no worker or sweep touches it
                    request={"garments": ["data URL"]},
                    model=model,
                    credits_reserved=3,
                    credits_charged=3 if status == "completed" else 0,
                    settled=True,
                    created_at=created,
                    updated_at=created,
                )
            )
            await conn.execute(
                insert(attempts).values(
                    generation_id=generation_id,
                    position=0,
                    model=model or "scripted/alpha",
                    provider="scripted",
                    status="succeeded" if status == "completed" else "running",
                    started_at=created,
                )
            )
            made.append(
                {"id": generation_id, "at": at, "key_id": key, "status": status, "model": model}
            )
    return made


KEYS = ["key_one", "key_two", None]
rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 12),
        st.sampled_from(KEYS),
        st.sampled_from(["queued", "processing", "completed", "failed"]),
        st.sampled_from(["scripted/alpha", "scripted/beta", None]),
    ),
    max_size=30,
)
queries = st.fixed_dictionaries(
    {},
    optional={
        "key_id": st.sampled_from([*KEYS[:2], "key_unknown"]),
        "status": st.sampled_from(["queued", "processing", "completed", "failed"]),
        "model": st.sampled_from(["scripted/alpha", "scripted/beta"]),
        "created_after": st.integers(-1, 13),
        "created_before": st.integers(-1, 13),
    },
)


def instant(seconds: int, as_unix: bool) -> str:
    moment = BASE + timedelta(seconds=seconds)
    return str(int(moment.timestamp())) if as_unix else moment.isoformat().replace("+00:00", "Z")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy, query=queries, limit=st.integers(1, 7), as_unix=st.booleans())
async def test_pages_concatenated_are_the_filtered_list_once_each_newest_first(
    client: Client, rows: list[Row], query: dict[str, Any], limit: int, as_unix: bool
) -> None:
    key, account = await new_key(client, credits=0, scope="management")
    made = await seed(client, account, rows)
    expected = [
        g
        for g in made
        if all(g[name] == query[name] for name in ("key_id", "status", "model") if name in query)
        and g["at"] >= query.get("created_after", -99)
        and g["at"] < query.get("created_before", 99)
    ]
    expected.sort(key=lambda g: (g["at"], g["id"]), reverse=True)
    params = {
        name: instant(value, as_unix) if name.startswith("created") else value
        for name, value in query.items()
    }
    seen: list[str] = []
    cursor = None
    while True:
        page = await client.get(
            LIST,
            params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})},
            headers=auth(key),
        )
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["data"]) <= limit
        seen += [g["id"] for g in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(body["data"]) == limit
    assert seen == [g["id"] for g in expected]
