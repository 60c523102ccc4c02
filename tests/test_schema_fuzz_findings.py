"""What schemathesis found (tests/test_schema_fuzz.py, ``nox -s slow``), kept as fast tests.

A signature or token the caller controls was handed to ``hmac.compare_digest``, which raises
``TypeError`` on a non-ASCII str: a 500 for a crafted file link. The same mistake, found by
reading, in the WebSocket's job token (``"²".isdigit()`` is true, ``int("²")`` fails) and in
the webhook verifier a receiver runs on a header anyone can send.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import auth, new_key
from tryon_core.jobs.links import verify_job_token
from tryon_core.storage import UrlSigner
from tryon_core.webhooks.signing import signature_header, verify

NOT_ASCII = ["¶'\U000f0508f", "é" * 64, "\uff10" * 64, "\udcff"]


@pytest.mark.parametrize("signature", NOT_ASCII)
def test_a_non_ascii_file_signature_is_refused_not_raised(signature: str) -> None:
    signer = UrlSigner(b"secret", ttl_seconds=60)
    expires, good = signer.sign("file_x")
    assert signer.verify("file_x", expires, good)
    assert not signer.verify("file_x", expires, signature)


async def test_a_file_link_with_a_non_ascii_signature_is_403(
    make_app: Callable[..., Litestar],
) -> None:
    async with AsyncTestClient(app=make_app()) as client:
        key, _ = await new_key(client)
        expires = int(time.time()) + 60
        for query in (f"expires={expires}&sig=%C2%B6%27%F3%90%94%88f", "expires=1e99&sig=x"):
            response = await client.get(f"/api/v1/files/file_0?{query}", headers=auth(key))
            assert response.status_code in (400, 403), response.text
            assert response.json()["error"]["code"] == response.status_code


@pytest.mark.parametrize("token", ["²³.abc", "١٢٣.abc", "9999999999.é", "9999999999.\udcff"])
def test_a_malformed_job_token_is_refused_not_raised(
    make_app: Callable[..., Litestar], token: str
) -> None:
    gateway = make_app().state.gateway
    assert not verify_job_token(gateway, "job_x", token)


@pytest.mark.parametrize("digest", NOT_ASCII)
def test_a_non_ascii_webhook_digest_is_refused_not_raised(digest: str) -> None:
    body = b'{"event": "job.completed"}'
    header = signature_header("whsec", body)
    assert verify("whsec", header, body)
    timestamp = header.split(",")[0]
    assert not verify("whsec", f"{timestamp},v1={digest}", body)
    assert verify("whsec", f"{header},v1={digest}", body)  # another v1 may still match


async def test_a_nul_character_anywhere_is_never_a_500(
    client: AsyncTestClient[Litestar],
) -> None:
    """Schemathesis sent ``job_id=...%00...`` to the deliveries list: PostgreSQL refuses NUL
    in text, which surfaced as a 500. Wherever a client's text reaches the database, a NUL
    is a 400 (PostgreSQL) or simply matches nothing (SQLite)."""
    manager, _ = await new_key(client, credits=5, scope="management")
    inference, _ = await new_key(client, credits=5)
    answers = [
        await client.get("/api/v1/webhooks/deliveries?job_id=gen%00x", headers=auth(manager)),
        await client.post("/api/v1/keys", json={"name": "a\u0000b"}, headers=auth(manager)),
        await client.get("/api/v1/tryon/gen_%00", headers=auth(inference)),
        await client.get("/api/v1/tryon?cursor=%00", headers=auth(inference)),
        await client.delete("/api/v1/keys/key_%00", headers=auth(manager)),
    ]
    for answer in answers:
        assert answer.status_code < 500, (answer.request.url, answer.text)
        if answer.status_code >= 400:
            assert set(answer.json()["error"]) >= {"code", "message", "type"}
