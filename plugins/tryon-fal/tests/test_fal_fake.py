"""The fake fal queue refuses what fal refuses and answers in fal's shapes, spoken to directly."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from tryon_fal.fake import EXHAUSTED, create_app

from tryon_core.testing import serve_app

AUTH = {"Authorization": "Key test-key"}


def data_uri(data: bytes, mime: str = "image/jpeg", *, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return f"data:{mime};base64,{encode(data).decode()}"


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    import io

    buffer = io.BytesIO()
    # a noisy image, so that its base64 holds both '+' and '/' (URL-safe: '-' and '_')
    Image.effect_noise((96, 128), 90).convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


async def submit(
    http: httpx.AsyncClient, url: str, endpoint: str, body: Any, **headers: str
) -> httpx.Response:
    return await http.post(f"{url}/{endpoint}", json=body, headers={**AUTH, **headers})


async def finished(http: httpx.AsyncClient, queued: dict[str, Any]) -> httpx.Response:
    """Poll a submitted request (by its returned URLs) and fetch its result."""
    while True:
        status = await http.get(queued["status_url"], headers=AUTH)
        if status.json()["status"] == "COMPLETED":
            return await http.get(queued["response_url"], headers=AUTH)
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer test-key", "Key other-key", "Key  test-key", "Key test-key:x", "test-key"],
)
async def test_only_the_key_scheme_with_the_test_key_is_accepted(
    authorization: str | None, fake: Any, http: httpx.AsyncClient, jpeg: bytes
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    body = {"human_image_url": data_uri(jpeg), "garment_image_url": data_uri(jpeg)}
    refused = await http.post(
        f"{fake.url}/fal-ai/kling/v1-5/kolors-virtual-try-on", json=body, headers=headers
    )
    assert refused.status_code == 401
    assert set(refused.json()) == {"detail"} and isinstance(refused.json()["detail"], str)
    assert "test-key" not in refused.text
    queued = (await submit(http, fake.url, "fal-ai/kling/v1-5/kolors-virtual-try-on", body)).json()
    for follow in (queued["status_url"], queued["response_url"]):
        assert (await http.get(follow, headers=headers)).status_code == 401
    assert fake.state.tasks.keys() == {queued["request_id"]}


async def test_a_request_goes_through_the_queue_states(
    http: httpx.AsyncClient, jpeg: bytes
) -> None:
    app = create_app(queue_seconds=0.3, run_seconds=0.3)
    async with serve_app(app) as url:
        body = {"prompt": "x", "image_urls": [data_uri(jpeg), data_uri(jpeg, "image/png")]}
        submitted = await submit(http, url, "fal-ai/flux-pro/kontext/max/multi", body)
        queued = submitted.json()
        request_id = queued["request_id"]
        root = f"{url}/fal-ai/flux-pro/requests/{request_id}"
        assert submitted.status_code == 200
        assert queued == {
            "status": "IN_QUEUE",
            "request_id": request_id,
            "response_url": root,
            "status_url": f"{root}/status",
            "cancel_url": f"{root}/cancel",
            "queue_position": 0,
        }
        early = await http.get(queued["response_url"], headers=AUTH)
        assert early.status_code == 400
        waiting = await http.get(f"{root}/status", params={"logs": "0"}, headers=AUTH)
        assert (waiting.status_code, waiting.json()["status"]) == (202, "IN_QUEUE")
        assert waiting.json()["queue_position"] == 0
        await asyncio.sleep(0.35)
        running = await http.get(f"{root}/status", params={"logs": "1"}, headers=AUTH)
        assert (running.status_code, running.json()["status"]) == (202, "IN_PROGRESS")
        assert running.json()["logs"][0]["message"]
        quiet = await http.get(f"{root}/status", params={"logs": "0"}, headers=AUTH)
        assert "logs" in quiet.json() and quiet.json()["logs"] is None
        await asyncio.sleep(0.3)
        done = await http.get(f"{root}/status", headers=AUTH)
        assert (done.status_code, done.json()["status"]) == (200, "COMPLETED")
        assert done.json()["logs"] is None and done.json()["metrics"]["inference_time"] > 0
        assert "error" not in done.json()
        output = (await http.get(root, headers=AUTH)).json()
    assert set(output) == {"images", "seed", "has_nsfw_concepts", "prompt", "timings"}
    (image,) = output["images"]
    assert set(image) >= {"url", "width", "height", "content_type"}
    assert (image["width"], image["height"], image["content_type"]) == (96, 128, "image/jpeg")
    assert output["has_nsfw_concepts"] == [False]


async def test_status_and_result_live_under_owner_and_app_only(
    fake: Any, http: httpx.AsyncClient, jpeg: bytes
) -> None:
    body = {"prompt": "x", "image_urls": [data_uri(jpeg)]}
    queued = (await submit(http, fake.url, "fal-ai/flux-pro/kontext/max/multi", body)).json()
    request_id = queued["request_id"]
    for wrong in (
        f"fal-ai/flux-pro/kontext/max/multi/requests/{request_id}/status",
        f"fal-ai/flux-pro/kontext/requests/{request_id}/status",
        f"fal-ai/leffa/requests/{request_id}/status",  # another app's queue
        "fal-ai/flux-pro/requests/unknown/status",
    ):
        answer = await http.get(f"{fake.url}/{wrong}", headers=AUTH)
        assert answer.status_code == 404, wrong
        assert "detail" in answer.json()
    assert (await http.get(queued["status_url"], headers=AUTH)).status_code in (200, 202)


@pytest.mark.parametrize(
    ("endpoint", "body", "violations"),
    [
        (
            "fal-ai/flux-pro/kontext/multi",
            {"image_urls": ["IMG"]},
            [(["body", "prompt"], "missing")],
        ),
        (
            "fal-ai/flux-pro/kontext/multi",
            {"prompt": "x", "image_urls": ["IMG"], "safety_tolerance": 2},
            [(["body", "safety_tolerance"], "literal_error")],
        ),
        (
            "fal-ai/flux-pro/kontext/multi",
            {"prompt": "x", "image_urls": "IMG", "num_images": 5},
            [(["body", "image_urls"], "list_type"), (["body", "num_images"], "less_than_equal")],
        ),
        (
            "fal-ai/flux-pro/kontext/max/multi",
            {"prompt": "x", "image_urls": ["IMG", "URLSAFE"], "output_format": "webp"},
            [
                (["body", "image_urls.1"], "image_load_error"),
                (["body", "output_format"], "literal_error"),
            ],
        ),
        (
            "fal-ai/fashn/tryon/v1.6",
            {"model_image": "IMG", "garment_image": "RAW", "category": "dress", "num_samples": "2"},
            [
                (["body", "garment_image"], "image_load_error"),
                (["body", "category"], "literal_error"),
                (["body", "num_samples"], "int_type"),
            ],
        ),
        (
            "fal-ai/cat-vton",
            {"human_image_url": "IMG", "garment_image_url": "IMG", "cloth_type": "tops"},
            [(["body", "cloth_type"], "literal_error")],
        ),
        (
            "fal-ai/leffa/virtual-tryon",
            {"human_image_url": "IMG", "garment_image_url": "https://example.com/g.jpg"},
            [
                (["body", "garment_image_url"], "file_download_error"),
                (["body", "garment_type"], "missing"),
            ],
        ),
        (
            "fal-ai/kling/v1-5/kolors-virtual-try-on",
            {"human_image_url": "IMG", "garment_image_url": "IMG", "sync_mode": "yes"},
            [(["body", "sync_mode"], "bool_type")],
        ),
    ],
)
async def test_the_app_refuses_what_its_schema_refuses(
    endpoint: str,
    body: dict[str, Any],
    violations: list[tuple[list[str], str]],
    fake: Any,
    http: httpx.AsyncClient,
    jpeg: bytes,
) -> None:
    values = {
        "IMG": data_uri(jpeg),
        "URLSAFE": data_uri(jpeg, urlsafe=True),
        "RAW": base64.b64encode(jpeg).decode(),
    }
    assert "-" in values["URLSAFE"] or "_" in values["URLSAFE"]

    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(v) for v in value]
        return values.get(value, value) if isinstance(value, str) else value

    queued = await submit(http, fake.url, endpoint, {k: fill(v) for k, v in body.items()})
    assert queued.status_code == 200  # the queue takes any JSON object; the app checks it
    result = await finished(http, queued.json())
    assert result.status_code == 422
    detail = result.json()["detail"]
    assert [(item["loc"], item["type"]) for item in detail] == violations
    assert all(isinstance(item["msg"], str) and item["msg"] for item in detail)


async def test_the_queue_takes_only_a_json_object(fake: Any, http: httpx.AsyncClient) -> None:
    for content in (b"not json", b"[1, 2]"):
        answer = await http.post(
            f"{fake.url}/fal-ai/cat-vton",
            content=content,
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body"]
    assert fake.state.tasks == {}


async def test_an_image_url_the_fake_serves_is_an_accepted_input(
    fake: Any, http: httpx.AsyncClient, jpeg: bytes
) -> None:
    file_id = fake.state.store(jpeg, "image/jpeg")
    link = f"{fake.url}/_fake/files/{file_id}"
    body = {"human_image_url": link, "garment_image_url": data_uri(jpeg), "cloth_type": "lower"}
    queued = (await submit(http, fake.url, "fal-ai/cat-vton", body)).json()
    output = (await finished(http, queued)).json()
    assert set(output) == {"image"}
    assert set(output["image"]) >= {"url", "content_type", "width", "height"}
    seen = fake.state.requests[0].summary["images"]
    assert [i["scheme"] for i in seen] == ["url", "data"]


@pytest.mark.parametrize(
    ("endpoint", "body", "keys"),
    [
        (
            "fal-ai/leffa/virtual-tryon",
            {"garment_type": "dresses", "seed": 5},
            {"image", "seed", "has_nsfw_concepts"},
        ),
        ("fal-ai/kling/v1-5/kolors-virtual-try-on", {}, {"image"}),
        ("fal-ai/fashn/tryon/v1.6", {"num_samples": 3}, {"images"}),
    ],
)
async def test_outputs_have_each_apps_shape(
    endpoint: str,
    body: dict[str, Any],
    keys: set[str],
    fake: Any,
    http: httpx.AsyncClient,
    jpeg: bytes,
) -> None:
    people = (
        ("model_image", "garment_image")
        if "fashn" in endpoint
        else ("human_image_url", "garment_image_url")
    )
    full = {people[0]: data_uri(jpeg), people[1]: data_uri(jpeg), **body}
    output = (await finished(http, (await submit(http, fake.url, endpoint, full)).json())).json()
    assert set(output) == keys
    files = output.get("images") or [output["image"]]
    assert len(files) == body.get("num_samples", 1)
    for file in files:
        downloaded = await http.get(file["url"])  # fal's CDN needs no key
        assert downloaded.headers["content-type"] == file["content_type"]
    if "seed" in keys:
        assert output["seed"] == 5 and output["has_nsfw_concepts"] is False


async def test_failed_requests_are_completed_with_an_error(
    fake: Any, http: httpx.AsyncClient, jpeg: bytes
) -> None:
    from tryon_core.testing import Fault

    fake.state.inject(Fault(kind="task_failed", code="runner_disconnected"))
    body = {"human_image_url": data_uri(jpeg), "garment_image_url": data_uri(jpeg)}
    queued = (await submit(http, fake.url, "fal-ai/kling/v1-5/kolors-virtual-try-on", body)).json()
    while (status := (await http.get(queued["status_url"], headers=AUTH)).json())["status"] != (
        "COMPLETED"
    ):
        assert status["status"] in ("IN_QUEUE", "IN_PROGRESS")
        await asyncio.sleep(0.01)
    assert status["error"] and status["error_type"] == "runner_disconnected"
    assert "logs" in status and "metrics" in status
    result = await http.get(queued["response_url"], headers=AUTH)
    assert result.status_code == 503
    assert result.headers["x-fal-error-type"] == "runner_disconnected"
    assert result.json()["error_type"] == "runner_disconnected"


async def test_quota_and_rate_limits_look_like_fals(fake: Any, http: httpx.AsyncClient) -> None:
    from tryon_core.testing import Fault

    fake.state.inject("quota", Fault(kind="rate_limit", retry_after=12), "rate_limit")
    quota = await submit(http, fake.url, "fal-ai/cat-vton", {})
    assert (quota.status_code, quota.json()) == (403, {"detail": EXHAUSTED})
    limited = await submit(http, fake.url, "fal-ai/cat-vton", {})
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "12")
    unhinted = await submit(http, fake.url, "fal-ai/cat-vton", {})
    assert unhinted.status_code == 429 and "retry-after" not in unhinted.headers


async def test_cancel_stops_a_queued_request(fake: Any, http: httpx.AsyncClient) -> None:
    fake.state.inject("hang")  # never completes on its own
    queued = (await submit(http, fake.url, "fal-ai/cat-vton", {})).json()
    cancelled = await http.put(queued["cancel_url"], headers=AUTH)
    assert (cancelled.status_code, cancelled.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    status = (await http.get(queued["status_url"], headers=AUTH)).json()
    assert status["status"] == "COMPLETED" and status["error"]
    again = await http.put(queued["cancel_url"], headers=AUTH)
    assert again.json() == {"status": "ALREADY_COMPLETED"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["prompt", "image_urls", "num_images", "seed", "safety_tolerance"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=5),
            st.lists(st.text(max_size=3), max_size=2),
        ),
    )
)
def test_any_wrong_input_gets_fals_422_and_never_a_crash(body: dict[str, Any]) -> None:
    from tryon_fal.fake_apps import APPS, check_input

    checked = check_input(APPS["fal-ai/flux-pro/kontext/multi"], body, lambda _url: None)
    # this alphabet never makes a valid image list, so there is always a violation…
    assert checked.errors
    # …and each is a pydantic-style item naming a field of the body
    for item in checked.errors:
        assert item["loc"][0] == "body" and item["msg"] and item["type"]
        assert item["loc"][1].split(".")[0] in APPS["fal-ai/flux-pro/kontext/multi"].fields
