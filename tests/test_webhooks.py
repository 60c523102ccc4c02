"""Webhooks, the parts without deliveries: signatures, the URL check, the secret endpoints."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import auth, new_key, own_database
from tryon_core.errors import InvalidRequest
from tryon_core.webhooks import (
    EVENTS,
    event_for_status,
    get_secret,
    sign,
    signature_header,
    validate_webhook_url,
    verify,
)

# -- signatures -------------------------------------------------------------------------------

secrets_ = st.text(min_size=1, max_size=60)
bodies = st.binary(max_size=512)
timestamps = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)


@given(secret=secrets_, body=bodies, t=timestamps)
def test_a_signature_verifies_for_its_body_and_secret(secret: str, body: bytes, t: int) -> None:
    header = signature_header(secret, body, timestamp=t)
    assert header == f"t={t},v1={sign(secret, t, body)}"
    assert verify(secret, header, body, now=t)
    assert verify(secret, header, body, tolerance=300, now=t + 300)


@given(secret=secrets_, body=bodies, t=timestamps, data=st.data())
def test_any_change_breaks_the_signature(
    secret: str, body: bytes, t: int, data: st.DataObject
) -> None:
    header = signature_header(secret, body, timestamp=t)
    other_body = data.draw(bodies.filter(lambda b: b != body))
    other_secret = data.draw(secrets_.filter(lambda s: s != secret))
    assert not verify(secret, header, other_body, now=t)
    assert not verify(other_secret, header, body, now=t)
    assert not verify(secret, header.replace(f"t={t}", f"t={t + 1}"), body, now=t)
    assert not verify(secret, header, body, tolerance=300, now=t + 301)  # a replay
    assert not verify(secret, header, body, tolerance=300, now=t - 301)


@given(header=st.text(max_size=200), body=bodies)
def test_a_malformed_header_is_refused_never_raises(header: str, body: bytes) -> None:
    assert not verify("whsec_x", header, body, now=time.time())


def test_the_signed_message_is_the_timestamp_a_dot_and_the_body() -> None:
    """A known answer (computed with `openssl dgst -sha256 -hmac`), so the spec cannot drift."""
    body = b'{"id":"gen_1","status":"completed"}'
    assert sign("whsec_test", 1700000000, body) == (
        "0cf74d8d6a1116ddbed9a8bd7da9ac79d3c162f1c3897dc2f19cacf229211017"
    )


def test_any_v1_of_several_may_match() -> None:
    body = b"{}"
    now = int(time.time())
    good = sign("whsec_a", now, body)
    assert verify("whsec_a", f"t={now},v1={'0' * 64},v1={good},v0=zzz", body)
    assert not verify("whsec_a", f"t={now}", body)
    assert not verify("whsec_a", f"v1={good}", body)


@pytest.mark.parametrize(
    ("status", "event"),
    [("completed", "job.completed"), ("failed", "job.failed"), ("cancelled", "job.failed")],
)
def test_every_final_status_has_an_event(status: str, event: str) -> None:
    assert event_for_status(status) == event
    assert event in EVENTS


# -- webhook_url ------------------------------------------------------------------------------

REFUSED = {
    "http://127.0.0.1/hook": "forbidden_url",
    "http://127.1:8080/hook": "forbidden_url",
    "http://2130706433/hook": "forbidden_url",
    "http://10.1.2.3/hook": "forbidden_url",
    "http://192.168.0.10/hook": "forbidden_url",
    "http://169.254.169.254/latest/meta-data": "forbidden_url",
    "http://[::1]:9000/hook": "forbidden_url",
    "http://[::ffff:10.0.0.1]/hook": "forbidden_url",
    "http://[fe80::1]/hook": "forbidden_url",
    "http://0.0.0.0/hook": "forbidden_url",
    "file:///etc/passwd": "invalid_url",
    "ftp://hooks.example.com/x": "invalid_url",
    "gopher://hooks.example.com/x": "invalid_url",
    "https://user:pass@hooks.example.com/x": "invalid_url",
    "https://user@hooks.example.com/x": "invalid_url",
    "hooks.example.com/x": "invalid_url",
    "": "invalid_url",
    "https://hooks.example.com/" + "a" * 2000: "invalid_url",
}


@pytest.mark.parametrize(("url", "kind"), REFUSED.items(), ids=lambda v: str(v)[:60])
def test_a_webhook_url_inside_or_malformed_is_refused(url: str, kind: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_webhook_url(url, allow_hosts=frozenset())
    assert caught.value.param == "webhook_url"
    assert caught.value.type == kind
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/tryon?x=1",
        "http://93.184.216.34:8080/hook",
        "https://[2606:4700::1111]/hook",
        "HTTPS://Hooks.Example.COM/tryon",
    ],
)
def test_a_public_webhook_url_is_accepted(url: str) -> None:
    assert validate_webhook_url(url, allow_hosts=()).lower() == url.lower()


def test_allow_hosts_exempts_exactly_one_host_and_port() -> None:
    allowed = ["127.0.0.1:8080", "[::1]:9000"]
    assert validate_webhook_url("http://127.0.0.1:8080/h", allow_hosts=allowed)
    assert validate_webhook_url("http://[::1]:9000/h", allow_hosts=allowed)
    for url in ("http://127.0.0.1:8081/h", "http://127.0.0.1/h", "http://[::1]:9001/h"):
        with pytest.raises(InvalidRequest, match="private, local or reserved"):
            validate_webhook_url(url, allow_hosts=allowed)


def test_a_url_of_exactly_2000_characters_is_accepted() -> None:
    url = "https://hooks.example.com/"
    url += "a" * (2000 - len(url))
    assert validate_webhook_url(url, allow_hosts=()) == url


# -- the secret over HTTP ---------------------------------------------------------------------


async def test_the_secret_is_created_on_first_read_and_stays(
    client: AsyncTestClient[Litestar],
) -> None:
    key, _ = await new_key(client, scope="management")
    first = await client.get("/api/v1/webhooks/secret", headers=auth(key))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["object"] == "webhook_secret"
    assert body["secret"].startswith("whsec_") and len(body["secret"]) >= 40
    assert body["created_at"].endswith("Z")
    again = await client.get("/api/v1/webhooks/secret", headers=auth(key))
    assert again.json() == body


async def test_rotating_replaces_the_secret(client: AsyncTestClient[Litestar]) -> None:
    key, _ = await new_key(client, scope="management")
    old = (await client.get("/api/v1/webhooks/secret", headers=auth(key))).json()
    rotated = await client.post("/api/v1/webhooks/secret/rotate", headers=auth(key))
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["object"] == "webhook_secret"
    assert new["secret"].startswith("whsec_") and new["secret"] != old["secret"]
    assert (await client.get("/api/v1/webhooks/secret", headers=auth(key))).json() == new


async def test_rotating_before_any_read_creates_one(client: AsyncTestClient[Litestar]) -> None:
    key, _ = await new_key(client, scope="management")
    rotated = (await client.post("/api/v1/webhooks/secret/rotate", headers=auth(key))).json()
    assert (await client.get("/api/v1/webhooks/secret", headers=auth(key))).json() == rotated


async def test_each_account_has_its_own_secret(client: AsyncTestClient[Litestar]) -> None:
    alice, _ = await new_key(client, scope="management")
    bob, _ = await new_key(client, scope="management")
    a = (await client.get("/api/v1/webhooks/secret", headers=auth(alice))).json()
    b = (await client.get("/api/v1/webhooks/secret", headers=auth(bob))).json()
    assert a["secret"] != b["secret"]
    await client.post("/api/v1/webhooks/secret/rotate", headers=auth(bob))
    assert (await client.get("/api/v1/webhooks/secret", headers=auth(alice))).json() == a


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/webhooks/secret"),
        ("POST", "/api/v1/webhooks/secret/rotate"),
        ("GET", "/api/v1/webhooks/deliveries"),
    ],
)
async def test_the_webhook_routes_need_a_key(
    client: AsyncTestClient[Litestar], method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication"


async def test_first_reads_at_once_agree_on_one_secret(client: AsyncTestClient[Litestar]) -> None:
    _, account_id = await new_key(client)

    async def read() -> str:
        async with database.transaction() as conn:
            return (await get_secret(conn, account_id)).secret

    async with own_database(client) as database:
        found = await asyncio.gather(*(read() for _ in range(8)))
    assert len(set(found)) == 1
