"""Idempotency-Key on POST /api/v1/chat/completions, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from tests.helpers import auth, live_server, new_key, own_database
from tryon_core import accounts, billing, idempotency
from tryon_core.db.schema import generations, idempotency_keys, ledger
from tryon_core.errors import ProviderUnavailable
from tryon_core.ids import utcnow
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

Client = AsyncTestClient[Litestar]
ENDPOINT = "/api/v1/chat/completions"


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


@pytest.fixture
def chat_body(person_url: str, garment_url: str) -> Callable[..., dict[str, Any]]:
    def body(*, text: str = "Put this shirt on this person", **fields: Any) -> dict[str, Any]:
        content = [{"type": "text", "text": text}, image(person_url), image(garment_url)]
        return {"model": "scripted/alpha", "messages": [{"role": "user", "content": content}]} | (
            fields
        )

    return body


def idem(key: str, idempotency_key: str) -> dict[str, str]:
    return auth(key) | {"Idempotency-Key": idempotency_key}


async def captures(client: Client | Litestar, account_id: str) -> int:
    """How many times the account was charged (capture rows in the ledger)."""
    async with own_database(client) as database, database.reading() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(ledger)
            .where(ledger.c.account_id == account_id, ledger.c.kind == "capture")
        )
    return int(count or 0)


async def balance(client: Client, key: str, account_id: str) -> tuple[int, int]:
    """The balance and reservation from the API, checked against the ledger."""
    body = (await client.get("/api/v1/credits", headers=auth(key))).json()
    async with own_database(client) as database, database.reading() as conn:
        totals = await billing.ledger_totals(conn, account_id)
    assert (body["balance"], body["reserved"]) == (totals.balance, totals.reserved)
    return body["balance"], body["reserved"]


async def test_the_same_key_and_body_replays_the_first_answer_and_charges_once(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    first = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "order-1"))
    second = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "order-1"))
    assert first.status_code == second.status_code == 200, first.text
    assert second.content == first.content
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == first.headers["content-type"]
    for name in ("x-tryon-generation", "x-tryon-model", "x-tryon-credits", "x-tryon-attempts"):
        assert second.headers[name] == first.headers[name]
    assert len(scripted.calls) == 1
    assert await captures(client, account) == 1
    assert await balance(client, key, account) == (7, 0)
    async with own_database(client) as database, database.reading() as conn:
        row = (await conn.execute(select(idempotency_keys))).one()
    assert (row.status, row.route, row.response_status) == ("done", "chat", 200)
    assert row.generation_id == first.json()["id"]


async def test_a_kept_chat_answer_holds_references_not_images(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    """Inlined result images are kept as references to their files (not 24 hours of base64
    in the database) and put back byte for byte on replay."""
    key, _ = await new_key(client, credits=10)
    first = await client.post(ENDPOINT, json=chat_body(n=2), headers=idem(key, "k"))
    assert first.status_code == 200, first.text
    images = first.json()["choices"][0]["message"]["images"]
    assert len(images) == 2 and all(i["image_url"]["url"].startswith("data:") for i in images)
    async with own_database(client) as database, database.reading() as conn:
        kept = (await conn.execute(select(idempotency_keys.c.response_body))).scalar_one()
    assert b";base64," not in kept
    assert kept.count(b";tryon-file,file_") == 2
    assert len(kept) < len(first.content) / 10
    replay = await client.post(ENDPOINT, json=chat_body(n=2), headers=idem(key, "k"))
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content


async def test_the_same_key_with_another_body_is_a_422(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    first = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    assert first.status_code == 200, first.text
    for changed in (
        chat_body(text="Another prompt"),
        chat_body(model="scripted/gamma"),
        chat_body(seed=7),
        chat_body(tryon={"image_delivery": "url"}),
        chat_body(modalities=["image"]),
    ):
        response = await client.post(ENDPOINT, json=changed, headers=idem(key, "k"))
        assert response.status_code == 422, response.text
        assert response.json() == {
            "error": {
                "code": 422,
                "message": "This Idempotency-Key was already used with a different request; "
                "use a new key for a new request.",
                "type": "idempotency_key_reused",
                "param": "Idempotency-Key",
                "metadata": {},
            }
        }
    assert len(scripted.calls) == 1
    assert await balance(client, key, account) == (7, 0)


async def test_what_does_not_change_the_request_does_not_change_the_fingerprint(
    client: Client, scripted: ScriptedProvider, chat_body: Any, person_url: str
) -> None:
    """Ignored OpenAI fields and the layout of the messages are not part of the request."""
    key, _ = await new_key(client, credits=10)
    first = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    same = chat_body(user="someone", temperature=0.2)
    same["messages"].insert(0, {"role": "system", "content": "You are a stylist."})
    again = await client.post(ENDPOINT, json=same, headers=idem(key, "k"))
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert len(scripted.calls) == 1


async def test_keys_are_scoped_per_account(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key_a, account_a = await new_key(client, credits=10)
    key_b, account_b = await new_key(client, credits=10)
    a = await client.post(ENDPOINT, json=chat_body(), headers=idem(key_a, "shared"))
    b = await client.post(ENDPOINT, json=chat_body(seed=1), headers=idem(key_b, "shared"))
    assert a.status_code == b.status_code == 200
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert len(scripted.calls) == 2
    assert await balance(client, key_a, account_a) == (7, 0)
    assert await balance(client, key_b, account_b) == (7, 0)


async def test_two_keys_of_one_account_share_its_idempotency_keys(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    async with own_database(client) as database, database.transaction() as conn:
        _, other = await accounts.create_key(conn, account_id=account, name="second")
    first = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    second = await client.post(ENDPOINT, json=chat_body(), headers=idem(other, "k"))
    assert second.headers["idempotent-replayed"] == "true"
    assert second.content == first.content
    assert len(scripted.calls) == 1


async def test_a_rejected_request_does_not_burn_the_key(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    bad = chat_body()
    bad["messages"][0]["content"][2] = image("data:image/png;base64,bm90IGFuIGltYWdl")
    rejected = await client.post(ENDPOINT, json=bad, headers=idem(key, "k"))
    assert rejected.status_code == 415, rejected.text
    assert rejected.json()["error"]["param"] == "messages[0].content[2].image_url"
    retried = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert len(scripted.calls) == 1
    assert await balance(client, key, account) == (7, 0)


async def test_a_request_refused_for_credits_can_be_retried_after_a_top_up(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, account = await new_key(client, credits=2)
    refused = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    assert refused.status_code == 402, refused.text
    async with own_database(client) as database, database.transaction() as conn:
        await billing.grant(conn, account, 10)
    retried = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    assert retried.status_code == 200, retried.text
    assert await balance(client, key, account) == (9, 0)


async def test_a_generation_that_failed_is_stored_and_replayed_byte_for_byte(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    scripted.script("scripted/alpha", ProviderUnavailable("down"))
    first = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    assert first.status_code == 502, first.text
    second = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    assert second.status_code == 502
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["error"]["type"] == "provider_unavailable"
    assert len(scripted.calls) == 1
    assert await balance(client, key, account) == (10, 0)


async def test_an_expired_key_can_be_used_again(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    first = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    async with own_database(client) as database, database.reading() as conn:
        row = (await conn.execute(select(idempotency_keys))).one()
    assert row.expires_at - row.created_at == timedelta(hours=24)
    async with own_database(client) as database, database.transaction() as conn:
        await conn.execute(
            update(idempotency_keys).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    second = await client.post(ENDPOINT, json=chat_body(seed=5), headers=idem(key, "k"))
    assert second.status_code == 200, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert len(scripted.calls) == 2
    assert await captures(client, account) == 2


async def _orphan(client: Client, **values: Any) -> None:
    """Make the key's row look like the claim of a process that died two hours ago."""
    async with own_database(client) as database, database.transaction() as conn:
        await conn.execute(
            update(idempotency_keys).values(
                status="pending", created_at=utcnow() - timedelta(hours=2), **values
            )
        )


async def test_a_claim_whose_owner_died_before_opening_a_generation_is_taken_over(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    """A pending row older than the longest a request can run was left by a dead process."""
    key, _ = await new_key(client, credits=10)
    await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    await _orphan(client, generation_id=None)
    again = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    assert again.status_code == 200, again.text
    assert "idempotent-replayed" not in again.headers
    assert len(scripted.calls) == 2
    async with own_database(client) as database, database.reading() as conn:
        row = (await conn.execute(select(idempotency_keys))).one()
    assert row.status == "done" and row.generation_id == again.json()["id"]


async def test_a_dead_claim_whose_generation_was_charged_never_runs_twice(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    """The process died after its generation was charged, before the answer was kept: the
    key names that generation (409, for good) and nothing runs or is charged again."""
    key, account = await new_key(client, credits=10)
    first = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    await _orphan(client)  # the generation id stays on the claim, as the pipeline wrote it
    for _ in range(2):
        again = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
        assert again.status_code == 409, again.text
        error = again.json()["error"]
        assert error["type"] == "idempotency_answer_lost"
        assert error["metadata"]["generation_id"] == first.json()["id"]
    assert len(scripted.calls) == 1
    assert await captures(client, account) == 1


async def test_a_dead_claim_whose_generation_was_released_runs_again(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    """Nothing was charged for the dead claim's generation: running again charges once."""
    scripted.script("scripted/alpha", ProviderUnavailable("down"))
    key, _ = await new_key(client, credits=10)
    failed = await client.post(ENDPOINT, json=chat_body(), headers=auth(key))
    assert failed.status_code >= 500, failed.text
    async with own_database(client) as database, database.reading() as conn:
        released = await conn.scalar(select(generations.c.id))
    await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    await _orphan(client, generation_id=released)  # as if "k" had opened the failed one
    calls = len(scripted.calls)
    again = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    assert again.status_code == 200, again.text
    assert "idempotent-replayed" not in again.headers
    assert len(scripted.calls) == calls + 1


async def test_a_duplicate_of_a_request_still_running_gets_a_409_then_the_answer(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    chat_body: Any,
) -> None:
    """A retry never hangs behind its first request: 409 with Retry-After, then the replay."""
    scripted.script("scripted/alpha", Sleep(idempotency.IN_PROGRESS_WAIT + 2.0))
    app = make_app(database_url)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        key, account = await new_key(app, credits=10)
        first = asyncio.ensure_future(http.post(ENDPOINT, json=chat_body(), headers=idem(key, "k")))
        await asyncio.sleep(0.5)
        duplicate = await http.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
        assert duplicate.status_code == 409, duplicate.text
        assert duplicate.json()["error"]["type"] == "idempotency_key_in_progress"
        assert duplicate.headers["retry-after"] == "1"
        answer = await first
        replay = await http.post(ENDPOINT, json=chat_body(), headers=idem(key, "k"))
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == answer.content
    assert len(scripted.calls) == 1 and await captures(app, account) == 1


@pytest.mark.parametrize("bad", ["", "x" * 256])
async def test_a_malformed_key_is_a_400(
    client: Client, scripted: ScriptedProvider, chat_body: Any, bad: str
) -> None:
    key, _ = await new_key(client, credits=10)
    response = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, bad))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "Idempotency-Key"
    assert scripted.calls == []


async def test_the_longest_key_is_accepted(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, _ = await new_key(client, credits=10)
    long_key = "~ " + "k" * 253
    first = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, long_key))
    second = await client.post(ENDPOINT, json=chat_body(), headers=idem(key, long_key))
    assert first.status_code == 200, first.text
    assert second.headers["idempotent-replayed"] == "true"


async def test_a_streamed_completion_refuses_the_header(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    response = await client.post(ENDPOINT, json=chat_body(stream=True), headers=idem(key, "k"))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "Idempotency-Key" and "stream" in error["message"]
    assert scripted.calls == []
    assert await balance(client, key, account) == (10, 0)


async def test_without_a_key_every_request_runs(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, _ = await new_key(client, credits=10)
    for _ in range(2):
        response = await client.post(ENDPOINT, json=chat_body(), headers=auth(key))
        assert response.status_code == 200
        assert "idempotent-replayed" not in response.headers
    assert len(scripted.calls) == 2
    async with own_database(client) as database, database.reading() as conn:
        assert (await conn.execute(select(idempotency_keys))).all() == []
