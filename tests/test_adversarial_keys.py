"""Keys and isolation, adversarially: every authenticated route, every kind of bad key.

- Missing, malformed, unknown and revoked keys get 401 with the envelope on every route that
  needs a key, and the presented key never appears in an answer or a log line.
- One account can never read, list, cancel or download another's jobs, files, keys or
  webhook deliveries: the answer is byte for byte the answer for something absent.
- Signed links (result files, job WebSockets) refuse tampering, expiry and reuse for another
  object or another purpose.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import auth, new_key
from tests.jobs_helpers import submit, wait_for
from tryon_core.api.app import ROUTES
from tryon_core.jobs.links import verify_job_token

Client = AsyncTestClient[Litestar]

# Every route that needs a key, with a request that would otherwise be valid enough to reach
# the handler (the key is checked first). Built from the app's own route list below, so a new
# route without an entry here fails the test that checks coverage.
KEYED: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/tryon"): {"json": {}},
    ("GET", "/api/v1/tryon"): {},
    ("GET", "/api/v1/tryon/{job_id}"): {},
    ("DELETE", "/api/v1/tryon/{job_id}"): {},
    ("POST", "/api/v1/chat/completions"): {"json": {}},
    ("GET", "/api/v1/credits"): {},
    ("GET", "/api/v1/key"): {},
    ("GET", "/api/v1/keys"): {},
    ("POST", "/api/v1/keys"): {"json": {}},
    ("DELETE", "/api/v1/keys/{key_id}"): {},
    ("PATCH", "/api/v1/keys/{key_id}"): {"json": {}},
    ("GET", "/api/v1/generations"): {},
    ("GET", "/api/v1/generation"): {"params": {"id": "gen_x"}},
    ("GET", "/api/v1/files/{file_id}"): {},
    ("HEAD", "/api/v1/files/{file_id}"): {},
    ("GET", "/api/v1/webhooks/secret"): {},
    ("POST", "/api/v1/webhooks/secret/rotate"): {},
    ("GET", "/api/v1/webhooks/deliveries"): {},
    ("POST", "/api/v1/demo-sessions"): {"json": {}},
    ("GET", "/api/v1/demo-sessions"): {},
    ("DELETE", "/api/v1/demo-sessions/{session_id}"): {},
}
OPEN = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/models"),
}
BAD_KEYS = {
    "missing": None,
    "empty": "",
    "no_scheme": "tryon_" + "a" * 32,
    "basic": "Basic dHJ5b246c2VjcmV0",
    "bearer_only": "Bearer",
    "other_prefix": "Bearer sk-" + "a" * 40,
    "too_long": "Bearer tryon_" + "a" * 5000,
    "unicode": "Bearer tryon_ключ",
    "unknown": "Bearer tryon_" + "Z" * 32,
}


def routes() -> set[tuple[str, str]]:
    found = set()
    for handler in ROUTES:
        methods = getattr(handler, "http_methods", None)
        if not methods:  # the WebSocket: refusals are tested in test_jobs_websocket.py
            continue
        for path in handler.paths:
            plain = path.replace(":str}", "}")
            found |= {(method, plain) for method in methods}
    return found


def test_every_keyed_route_is_in_the_table() -> None:
    assert routes() - OPEN == set(KEYED)


def concrete(path: str) -> str:
    return (
        path.replace("{job_id}", "gen_x")
        .replace("{key_id}", "key_x")
        .replace("{file_id}", "file_x")
        .replace("{session_id}", "demo_x")
    )


def assert_401(response: Any, secret: str | None) -> None:
    assert response.status_code == 401, (response.status_code, response.text)
    if secret:
        assert all(secret not in value for value in response.headers.values())
    if response.request.method == "HEAD":  # the answer GET gets, without its body
        assert response.content == b""
        assert response.headers["content-type"] == "application/json"
        return
    error = response.json()["error"]
    assert set(error) == {"code", "message", "type", "param", "metadata"}
    assert error["code"] == 401 and error["type"] == "authentication" and error["message"]
    if secret:
        assert secret not in response.text


@pytest.mark.parametrize("kind", sorted(BAD_KEYS))
async def test_bad_keys_are_401_on_every_route_and_never_echoed(
    client: Client, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    header = BAD_KEYS[kind]
    secret = header.split()[-1] if header and len(header.split()) > 1 else None
    headers = {} if header is None else {"Authorization": header.encode()}  # raw UTF-8 too
    for (method, path), options in sorted(KEYED.items()):
        response = await client.request(method, concrete(path), headers=headers, **options)
        assert_401(response, secret)
    if secret:
        assert all(secret not in record.getMessage() for record in caplog.records)


async def test_a_revoked_key_is_401_everywhere_at_once(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, _ = await new_key(client, scope="management")
    spare, _ = await new_key(client)
    key_id = (await client.get("/api/v1/key", headers=auth(key))).json()["data"]["id"]
    revoked = await client.delete(f"/api/v1/keys/{key_id}", headers=auth(key))
    assert revoked.status_code == 200
    for (method, path), options in sorted(KEYED.items()):
        response = await client.request(method, concrete(path), headers=auth(key), **options)
        assert_401(response, key)
    assert (await client.get("/api/v1/credits", headers=auth(spare))).status_code == 200
    assert all(key not in record.getMessage() for record in caplog.records)


async def test_no_answer_or_log_line_ever_contains_a_key(
    client: Client, tryon_body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The happy paths too: creating keys, jobs, failures, listings."""
    caplog.set_level(logging.DEBUG)
    key, account = await new_key(client)
    manager, _ = await new_key(client, 0, scope="management", account=account)
    created = await client.post("/api/v1/keys", json={"name": "second"}, headers=auth(manager))
    second = created.json()["key"]
    accepted = await submit(client, key, tryon_body())
    await wait_for(client, key, accepted["jobId"])
    answers = [
        await client.get("/api/v1/keys", headers=auth(manager)),
        await client.get("/api/v1/key", headers=auth(second)),
        await client.get("/api/v1/tryon", headers=auth(key)),
        await client.post("/api/v1/tryon", json=tryon_body(n=99), headers=auth(key)),
    ]
    for answer in answers:
        assert key not in answer.text and second not in answer.text
        assert manager not in answer.text
    logged = [record.getMessage() for record in caplog.records]
    assert all(key not in line and second not in line for line in logged)
    assert all(manager not in line for line in logged)


async def test_nothing_of_another_account_is_reachable(client: Client, tryon_body: Any) -> None:
    alice, alice_account = await new_key(client)
    alice_manager, _ = await new_key(client, 0, scope="management", account=alice_account)
    bob, bob_account = await new_key(client)
    bob_manager, _ = await new_key(client, 0, scope="management", account=bob_account)
    hook = "https://example.com/hook"
    job = await submit(client, alice, tryon_body(webhook_url=hook))
    done = await wait_for(client, alice, job["jobId"])
    file_id = urlsplit(done["images"][0]["url"]).path.rsplit("/", 1)[1]
    alice_key_id = (await client.get("/api/v1/key", headers=auth(alice))).json()["data"]["id"]
    session = await client.post(
        "/api/v1/demo-sessions",
        json={"allowed_origins": ["https://shop.example"], "max_credits": 5},
        headers=auth(alice_manager),
    )
    session_id = session.json()["id"]
    pairs = [
        ("GET", f"/api/v1/tryon/{job['jobId']}", "/api/v1/tryon/gen_absent", bob),
        ("DELETE", f"/api/v1/tryon/{job['jobId']}", "/api/v1/tryon/gen_absent", bob),
        ("GET", f"/api/v1/files/{file_id}", "/api/v1/files/file_absent", bob),
        ("DELETE", f"/api/v1/keys/{alice_key_id}", "/api/v1/keys/key_absent", bob_manager),
        (
            "DELETE",
            f"/api/v1/demo-sessions/{session_id}",
            "/api/v1/demo-sessions/demo_absent",
            bob_manager,
        ),
    ]
    for method, theirs, absent, bobs in pairs:
        a = await client.request(method, theirs, headers=auth(bobs))
        b = await client.request(method, absent, headers=auth(bobs))
        assert a.status_code == b.status_code == 404, (theirs, a.text)
        # the same answer, but for the id the client itself sent
        said = a.text.replace(theirs.rsplit("/", 1)[1], "ID")
        assert said == b.text.replace(absent.rsplit("/", 1)[1], "ID")
    listings = [
        await client.get("/api/v1/tryon", headers=auth(bob)),
        await client.get("/api/v1/keys", headers=auth(bob_manager)),
        await client.get(
            "/api/v1/webhooks/deliveries",
            params={"job_id": job["jobId"]},
            headers=auth(bob_manager),
        ),
        await client.get("/api/v1/demo-sessions", headers=auth(bob_manager)),
    ]
    assert listings[0].json()["data"] == []
    assert {k["account_id"] for k in listings[1].json()["data"]} == {bob_account}
    assert listings[2].json()["data"] == []
    assert listings[3].json()["data"] == []
    # and alice still has all of it
    assert (await client.get(f"/api/v1/tryon/{job['jobId']}", headers=auth(alice))).json()[
        "status"
    ] == "completed"
    assert (await client.get(f"/api/v1/files/{file_id}", headers=auth(alice))).status_code == 200


async def test_signed_links_work_for_one_object_and_one_purpose(
    client: Client, tryon_body: Any
) -> None:
    key, _ = await new_key(client)
    first = await submit(client, key, tryon_body())
    second = await submit(client, key, tryon_body())
    done = await wait_for(client, key, first["jobId"])
    await wait_for(client, key, second["jobId"])
    gateway = client.app.state.gateway
    token = parse_qs(urlsplit(first["wsUrl"]).query)["token"][0]
    assert verify_job_token(gateway, first["jobId"], token)
    assert not verify_job_token(gateway, second["jobId"], token)  # another job
    expires, signature = token.split(".")
    assert not verify_job_token(gateway, first["jobId"], f"{int(expires) + 1}.{signature}")
    past, past_sig = gateway.signer.sign(f"ws:{first['jobId']}", ttl_seconds=-10)
    assert not verify_job_token(gateway, first["jobId"], f"{past}.{past_sig}")  # expired
    for broken in ("", ".", "abc", f"{expires}.", f".{signature}", f"-1.{signature}"):
        assert not verify_job_token(gateway, first["jobId"], broken)

    # a file link's signature does not open a job, nor a job token a file
    image = urlsplit(done["images"][0]["url"])
    query = {k: v[0] for k, v in parse_qs(image.query).items()}
    file_id = image.path.rsplit("/", 1)[1]
    assert not verify_job_token(gateway, file_id, f"{query['expires']}.{query['sig']}")
    reused = await client.get(image.path, params={"expires": expires, "sig": signature})
    assert reused.status_code == 403
    assert reused.json()["error"]["type"] == "invalid_signature"
    as_job = await client.get(
        f"/api/v1/files/{first['jobId']}", params={"expires": expires, "sig": signature}
    )
    assert as_job.status_code == 403


async def test_the_openapi_document_says_which_routes_need_a_key(client: Client) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            needs = (method.upper(), path) in KEYED
            security = operation.get("security")
            if path == "/api/v1/files/{file_id}":
                assert security == [{"ApiKey": []}, {}]  # a key, or a signed link
            elif needs:
                assert security == [{"ApiKey": []}], (method, path)
            else:
                assert security is None, (method, path)
