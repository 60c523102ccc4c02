"""No secret in a real server's log, whatever clients send: keys in query strings and request
ids, forged signatures, data URLs and image bytes in URLs, webhook secrets, sign-in forms.

Besides this module, every log of every real server the suite starts is scanned at the end of
the session (``tests/server_logs.py``, ``pytest_sessionfinish`` in ``tests/log_scan.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.sync.client import connect

from tests.helpers import SAMPLES, auth
from tests.served import Gateway, configured
from tests.server_logs import leaks, remember
from tryon_core import accounts, billing
from tryon_core.db import create_database
from tryon_core.server.logs import redact

PNG = base64.b64encode((SAMPLES / "garment.png").read_bytes()).decode()
JPEG = base64.b64encode((SAMPLES / "person.jpg").read_bytes()).decode()


async def _keys(database_url: str) -> tuple[str, str]:
    """An inference and a management key of one account with credits."""
    database = create_database(database_url)
    try:
        await database.upgrade()
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn, name="hostile")
            _, inference = await accounts.create_key(conn, account_id=account_id, name="i")
            _, management = await accounts.create_key(
                conn, account_id=account_id, name="m", scope="management"
            )
            await billing.grant(conn, account_id, 100)
    finally:
        await database.dispose()
    return remember(inference), remember(management)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str, str]]:
    directory = tmp_path_factory.mktemp("hostile")
    database_url = f"sqlite+aiosqlite:///{directory}/tryon.db"
    inference, management = asyncio.run(_keys(database_url))
    gateway = configured(directory, database_url, "[providers.local]\nenabled = true\n")
    gateway.options = ("--log-format", "json", "--log-level", "debug")
    gateway.start()
    try:
        yield gateway, inference, management
    finally:
        gateway.stop()


def test_hostile_requests_leave_no_secret_in_the_log(served: tuple[Gateway, str, str]) -> None:
    gateway, key, management = served
    start = gateway.log_size()
    person = f"data:image/jpeg;base64,{JPEG}"
    garment = f"data:image/png;base64,{PNG}"
    with httpx.Client(base_url=gateway.url, timeout=60) as http:
        # keys where they do not belong
        for name in ("api_key", "key", "token", "access_token"):
            http.get("/api/v1/models", params={name: key})
        http.get("/api/v1/nowhere", headers={**auth(key), "X-Request-Id": key})
        http.get("/api/v1/credits", headers={"Authorization": f"Bearer {key}x"})
        http.get("/api/v1/credits", headers={"Authorization": f"Basic {key}"})
        http.post("/sign-in", data={"api_key": key})
        # forged and replayed signatures
        answer = http.post(
            "/api/v1/tryon",
            json={"model": "local/overlay", "person_images": [person], "garment_images": [garment]},
            headers=auth(key),
        )
        assert answer.status_code == 200, answer.text
        link = answer.json()["images"][0]["url"]
        signature = httpx.URL(link).params["sig"]
        http.get(link.replace(signature, signature[::-1]))
        http.get(link.replace("expires=", "expires=1"))
        # image bytes where URLs belong, broken images, a data URL in a path
        for images in (
            [f"http://127.0.0.1:9/{PNG[:400]}"],
            [f"data:image/png;base64,{PNG[:300]}"],
            [f"data:image/jpeg;base64,{JPEG[8:900]}"],
            ["data:image/webp;base64,UklGRiQAAABXRUJQVlA4IBgAAAAwAQCdASoBAAEAAwA0JaQAA3AA/vuUAAA="],
        ):
            http.post(
                "/api/v1/tryon",
                json={"model": "local/overlay", "person_images": images, "garment_images": images},
                headers=auth(key),
            )
        http.get(f"/api/v1/files/{PNG[:200]}", headers=auth(key))
        # the webhook secret, read and rotated, then sent back in a query
        secret = http.get("/api/v1/webhooks/secret", headers=auth(management)).json()["secret"]
        rotated = http.post("/api/v1/webhooks/secret/rotate", headers=auth(management)).json()
        http.get("/api/v1/models", params={"secret": rotated["secret"], "x": secret})
        http.get(f"/api/v1/jobs/{rotated['secret']}", headers=auth(key))
        # a job's WebSocket with its token, and with a forged one
        accepted = http.post(
            "/api/v1/tryon",
            json={
                "model": "local/overlay",
                "person_images": [person],
                "garment_images": [garment],
                "mode": "async",
            },
            headers=auth(key),
        )
        ws_url = accepted.json()["wsUrl"]
        with connect(ws_url, open_timeout=30) as socket_:
            list(socket_)
        token = httpx.URL(ws_url).params["token"]
        forged = ws_url.replace(token, token[::-1])
        with contextlib.suppress(Exception), connect(forged, open_timeout=30) as socket_:
            list(socket_)  # refused, at the handshake or by a close code
        assert http.get("/healthz").status_code == 200
    gateway.stop()  # everything it had to say is written now
    logged = gateway.log_since(start)
    assert "/api/v1/webhooks/secret" in logged  # the lines are there
    secrets = {key, management, secret, rotated["secret"], signature, token}
    assert leaks(logged, secrets) == []


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("GET /x?api_key=tryon_abcdefghijklmnopqrstuvwx", "a gateway key"),
        ('{"message": "whsec_0123456789abcdef"}', "a webhook secret"),
        ("cookie tcs_0123456789abcdef", "a console token"),
        ("GET /api/v1/files/f?expires=1&sig=abc123", "a signature"),
        ("WebSocket /ws?token=abc123", "a job token"),
        ("Authorization: Bearer something", "credentials"),
        ("image iVBORw0KGgoAAAANSUhEUg", "PNG bytes"),
        ("data:image/jpeg;base64,/9j/4AAQ", "JPEG bytes"),
        ("UklGRiQAAABXRUJQ", "WebP bytes"),
        ("x " + "QUJD" * 50, "a long base64 run"),
    ],
)
def test_the_scan_finds_each_kind_of_secret(line: str, what: str) -> None:
    assert what in [found for found, _ in leaks(line)]


def test_the_scan_lets_blanked_values_pass() -> None:
    line = (
        "GET /x?api_key=[redacted]&sig=[redacted]&token=[redacted] tryon_[redacted] "
        "whsec_[redacted] tcs_[redacted] Bearer [redacted] /api/v1/files/file_abc 200 "
        "gen_LnfuS708XmIo5yy2bEQWnjvD key_LS-3d3aU4WXOLM-JWL-DNJyo req_" + "a" * 24
    )
    assert leaks(line) == []


@given(
    data=st.binary(min_size=90, max_size=2000),
    urlsafe=st.booleans(),
    where=st.sampled_from(["GET /api/v1/files/{} 404", '{{"message": "bad image {}"}}', "x={}"]),
)
def test_image_bytes_in_base64_never_survive_the_redaction(
    data: bytes, urlsafe: bool, where: str
) -> None:
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    line = redact(where.format(encoded))
    assert leaks(line) == []
    assert encoded[:120] not in line
