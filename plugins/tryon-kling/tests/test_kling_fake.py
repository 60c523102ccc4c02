"""The fake refuses what Kling refuses, in Kling's own error shape, and runs tasks like Kling."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from tryon_kling.auth import mint_token
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY, create_app

from tryon_core.testing import Fault, mount_fakes, serve_app

PATH = "/v1/images/kolors-virtual-try-on"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def auth() -> dict[str, str]:
    token = mint_token(TEST_ACCESS_KEY, TEST_SECRET_KEY, now=int(time.time()))
    return {"Authorization": f"Bearer {token}"}


def handmade(head: dict[str, Any], claims: dict[str, Any], secret: str = TEST_SECRET_KEY) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing = f"{part(head)}.{part(claims)}"
    digest = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


@pytest.fixture
def body(encoded: Any) -> dict[str, str]:
    return {
        "model_name": "kolors-virtual-try-on-v1-5",
        "human_image": b64(encoded(400, 600)),
        "cloth_image": b64(encoded(300, 300, "PNG")),
    }


def assert_kling_error(response: httpx.Response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"code", "message", "request_id"}
    assert payload["code"] == code
    assert payload["message"] and payload["request_id"]


NOW = int(time.time())
GOOD_HEAD = {"alg": "HS256", "typ": "JWT"}
GOOD_CLAIMS = {"iss": TEST_ACCESS_KEY, "exp": NOW + 86_400, "nbf": NOW - 5}  # lasts the whole suite


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, 1001),
        ("", 1001),
        (f"bearer {handmade(GOOD_HEAD, GOOD_CLAIMS)}", 1002),
        (f"Bearer  {handmade(GOOD_HEAD, GOOD_CLAIMS)}", 1002),
        (f"Token {handmade(GOOD_HEAD, GOOD_CLAIMS)}", 1002),
        (f"Bearer {handmade(GOOD_HEAD, GOOD_CLAIMS, secret='wrong')}", 1002),
        (f"Bearer {handmade(GOOD_HEAD, {**GOOD_CLAIMS, 'iss': 'someone-else'})}", 1002),
        (f"Bearer {handmade({'alg': 'none', 'typ': 'JWT'}, GOOD_CLAIMS)}", 1002),
        (f"Bearer {handmade({'alg': 'HS256'}, GOOD_CLAIMS)}", 1002),
        (f"Bearer {handmade(GOOD_HEAD, {'iss': TEST_ACCESS_KEY, 'exp': NOW + 86_400})}", 1002),
        (f"Bearer {handmade(GOOD_HEAD, {**GOOD_CLAIMS, 'exp': str(NOW + 86_400)})}", 1002),
        (f"Bearer {handmade(GOOD_HEAD, GOOD_CLAIMS)}=", 1002),
        (f"Bearer {handmade(GOOD_HEAD, {**GOOD_CLAIMS, 'exp': NOW - 1})}", 1004),
        (f"Bearer {handmade(GOOD_HEAD, {**GOOD_CLAIMS, 'nbf': NOW + 86_400})}", 1003),
        (f"Bearer {TEST_SECRET_KEY}", 1002),
    ],
)
async def test_the_fake_refuses_bad_credentials_with_401(
    kling: Any, body: dict[str, str], header: str | None, code: int
) -> None:
    headers = {} if header is None else {"Authorization": header}
    created = await kling.http.post(kling.url + PATH, json=body, headers=headers)
    assert_kling_error(created, 401, code)
    queried = await kling.http.get(f"{kling.url}{PATH}/anything", headers=headers)
    assert_kling_error(queried, 401, code)
    assert kling.state.tasks == {}


async def test_a_well_made_token_is_accepted_and_the_task_is_submitted(
    kling: Any, body: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {handmade(GOOD_HEAD, GOOD_CLAIMS)}"}
    created = await kling.http.post(kling.url + PATH, json=body, headers=headers)
    assert created.status_code == 200
    payload = created.json()
    assert payload["code"] == 0 and payload["message"] == "SUCCEED" and payload["request_id"]
    data = payload["data"]
    assert data["task_status"] == "submitted" and data["task_id"] in kling.state.tasks
    assert isinstance(data["created_at"], int) and data["created_at"] > 10**12  # milliseconds


@pytest.mark.parametrize(
    "change",
    [
        {"human_image": None},
        {"cloth_image": None},
        {"cloth_image": ""},
        {"human_image": 12},
        {"model_name": "kolors-virtual-try-on-v2"},
        {"model_name": 1},
        {"external_task_id": 7},
        {"n": 1},
        {"cloth_type": "upper"},
    ],
)
async def test_the_fake_refuses_missing_or_mistyped_fields_with_1201(
    kling: Any, body: dict[str, str], change: dict[str, Any]
) -> None:
    sent = {k: v for k, v in {**body, **change}.items() if v is not None}
    response = await kling.http.post(kling.url + PATH, json=sent, headers=auth())
    assert_kling_error(response, 400, 1201)
    assert kling.state.tasks == {}


async def test_the_fake_refuses_images_kling_refuses(kling: Any, encoded: Any) -> None:
    person = b64(encoded(400, 600))
    cases = {
        "data: prefix": "data:image/png;base64," + b64(encoded(300, 300, "PNG")),
        "webp": b64(encoded(300, 300, "WEBP")),
        "side under 300 px": b64(encoded(299, 600)),
        "URL-safe alphabet": b64(encoded(300, 300)).replace("+", "-").replace("/", "_") + "-_",
        "line breaks": base64.encodebytes(encoded(300, 300)).decode(),
        "not an image": b64(b"\xff\xd8\xff" + b"junk" * 20),
        "a URL": "https://example.com/cloth.png",
    }
    for label, cloth in cases.items():
        sent = {
            "model_name": "kolors-virtual-try-on-v1",
            "human_image": person,
            "cloth_image": cloth,
        }
        response = await kling.http.post(kling.url + PATH, json=sent, headers=auth())
        assert response.status_code == 400, label
        assert response.json()["code"] == 1201, label
    assert kling.state.tasks == {}


async def test_the_fake_wants_a_json_object(kling: Any, body: dict[str, str]) -> None:
    as_form = await kling.http.post(kling.url + PATH, data=body, headers=auth())
    assert_kling_error(as_form, 400, 1200)
    not_object = await kling.http.post(kling.url + PATH, json=[body], headers=auth())
    assert_kling_error(not_object, 400, 1200)


async def test_unknown_paths_and_methods_answer_in_kling_shape(kling: Any) -> None:
    assert_kling_error(await kling.http.get(kling.url + "/v1/nothing", headers=auth()), 404, 1203)
    assert_kling_error(await kling.http.delete(kling.url + PATH, headers=auth()), 404, 1202)
    missing = await kling.http.get(f"{kling.url}{PATH}/no-such-task", headers=auth())
    assert_kling_error(missing, 404, 1203)


async def test_a_task_goes_submitted_processing_succeed_and_its_image_is_served(
    kling: Any, body: dict[str, str]
) -> None:
    created = await kling.http.post(
        kling.url + PATH, json={**body, "external_task_id": "order-1"}, headers=auth()
    )
    task_id = created.json()["data"]["task_id"]
    assert created.json()["data"]["task_info"] == {"external_task_id": "order-1"}
    statuses = []
    for _ in range(2):
        polled = (await kling.http.get(f"{kling.url}{PATH}/{task_id}", headers=auth())).json()
        statuses.append(polled["data"]["task_status"])
    assert statuses == ["processing", "succeed"]
    data = polled["data"]
    assert data["task_status_msg"] == "" and data["final_unit_deduction"] == "1"
    assert isinstance(data["updated_at"], int) and data["updated_at"] >= data["created_at"]
    (image,) = data["task_result"]["images"]
    assert image["index"] == 0
    served = await kling.http.get(image["url"])
    assert served.status_code == 200 and served.content.startswith(b"\x89PNG")

    by_external = await kling.http.get(f"{kling.url}{PATH}/order-1", headers=auth())
    assert by_external.json()["data"]["task_id"] == task_id
    again = await kling.http.post(
        kling.url + PATH, json={**body, "external_task_id": "order-1"}, headers=auth()
    )
    assert_kling_error(again, 400, 1201)

    listed = await kling.http.get(kling.url + PATH, params={"pageSize": 5}, headers=auth())
    assert [t["task_id"] for t in listed.json()["data"]] == [task_id]
    bad_page = await kling.http.get(kling.url + PATH, params={"pageSize": 501}, headers=auth())
    assert_kling_error(bad_page, 400, 1201)


async def test_a_slow_task_stays_processing_until_its_time(
    kling: Any, body: dict[str, str]
) -> None:
    kling.state.inject(Fault(kind="slow_task", seconds=0.4))
    created = await kling.http.post(kling.url + PATH, json=body, headers=auth())
    task_id = created.json()["data"]["task_id"]
    url = f"{kling.url}{PATH}/{task_id}"
    for _ in range(3):
        assert (await kling.http.get(url, headers=auth())).json()["data"]["task_status"] == (
            "processing"
        )
    await asyncio.sleep(0.45)
    assert (await kling.http.get(url, headers=auth())).json()["data"]["task_status"] == "succeed"


async def test_result_urls_carry_the_mount_prefix(body: dict[str, str]) -> None:
    app = create_app(processing_polls=0)
    async with (
        serve_app(mount_fakes({"kling": app})) as root,
        httpx.AsyncClient() as http,
    ):
        base = root + "/kling"
        created = await http.post(base + PATH, json=body, headers=auth())
        task_id = created.json()["data"]["task_id"]
        polled = (await http.get(f"{base}{PATH}/{task_id}", headers=auth())).json()
        url = polled["data"]["task_result"]["images"][0]["url"]
        assert url.startswith(base + "/_fake/files/")
        assert (await http.get(url)).status_code == 200


async def test_the_fake_can_be_made_with_other_credentials(body: dict[str, str]) -> None:
    app = create_app(access_key="AK-2", secret_key="SK-2")
    async with serve_app(app) as url, httpx.AsyncClient() as http:
        theirs = {"Authorization": f"Bearer {mint_token('AK-2', 'SK-2', now=int(time.time()))}"}
        assert (await http.post(url + PATH, json=body, headers=theirs)).status_code == 200
        assert_kling_error(await http.post(url + PATH, json=body, headers=auth()), 401, 1002)
