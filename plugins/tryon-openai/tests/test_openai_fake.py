"""The fake refuses what OpenAI refuses, in OpenAI's words, and answers with its shapes."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from PIL import Image
from tryon_openai.fake import MAX_PROMPT, create_app

from tryon_core.plugin import InputImage, sniff
from tryon_core.testing import FakeState, Fault

AUTH = {"Authorization": "Bearer test-key"}


def form(
    person: InputImage, garment: InputImage, *, drop: tuple[str, ...] = (), **fields: str
) -> dict[str, Any]:
    """A valid edit (``httpx`` keyword arguments), with fields replaced, added or dropped."""
    data = {"model": "gpt-image-1", "prompt": "Dress the person.", **fields}
    return {
        "data": {k: v for k, v in data.items() if k not in drop},
        "files": [
            ("image[]", ("person.png", person.data, "image/png")),
            ("image[]", ("garment.jpg", garment.data, "image/jpeg")),
        ],
    }


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


async def post(http: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", AUTH)
    return await http.post(f"{url}/v1/images/edits", headers=headers, **kwargs)


async def test_success_has_openai_s_shape(
    http: httpx.AsyncClient, fake_url: str, person: InputImage, garment: InputImage
) -> None:
    response = await post(http, fake_url, **form(person, garment, n="2", output_format="jpeg"))

    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert set(body) == {
        "created",
        "data",
        "background",
        "output_format",
        "quality",
        "size",
        "usage",
    }
    assert body["output_format"] == "jpeg"
    assert body["size"] == "1024x1536"  # a portrait person
    assert len(body["data"]) == 2
    for item in body["data"]:
        assert set(item) == {"b64_json"}
        data = base64.b64decode(item["b64_json"], validate=True)
        assert sniff(data) == "image/jpeg"
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (person.width, person.height)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "bearer test-key"},
        {"Authorization": "Basic test-key"},
        {"Authorization": "Bearer  test-key"},
        {"Authorization": "test-key"},
    ],
    ids=["none", "wrong", "lower-case", "basic", "two-spaces", "no-scheme"],
)
async def test_auth_is_exact(
    headers: dict[str, str],
    http: httpx.AsyncClient,
    fake_url: str,
    state: FakeState,
    person: InputImage,
    garment: InputImage,
) -> None:
    response = await post(http, fake_url, headers=headers, **form(person, garment))
    assert response.status_code == 401
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == (None if not headers else "invalid_api_key")
    assert state.requests[0].summary["status"] == 401


async def test_organization_must_match(
    http: httpx.AsyncClient, person: InputImage, garment: InputImage
) -> None:
    from tryon_core.testing import serve_app

    async with serve_app(create_app(api_key="k2", organization="org-a")) as url:
        auth = {"Authorization": "Bearer k2"}
        ok = await post(http, url, headers=auth, **form(person, garment))
        wrong = await post(
            http, url, headers={**auth, "OpenAI-Organization": "org-b"}, **form(person, garment)
        )
        right = await post(
            http, url, headers={**auth, "OpenAI-Organization": "org-a"}, **form(person, garment)
        )
    assert (ok.status_code, wrong.status_code, right.status_code) == (200, 401, 200)
    assert error_of(wrong)["code"] == "mismatched_organization"


@pytest.mark.parametrize(
    ("change", "param", "code"),
    [
        ({"drop": ("model",)}, "model", "missing_required_parameter"),
        ({"model": "dall-e-3"}, "model", "invalid_value"),
        ({"drop": ("prompt",)}, "prompt", "missing_required_parameter"),
        ({"prompt": "x" * (MAX_PROMPT + 1)}, "prompt", "string_above_max_length"),
        ({"n": "0"}, "n", "integer_below_min_value"),
        ({"n": "11"}, "n", "integer_above_max_value"),
        ({"n": "two"}, "n", "invalid_type"),
        ({"output_format": "gif"}, "output_format", "invalid_value"),
        ({"size": "512x512"}, "size", "invalid_value"),
        ({"quality": "standard"}, "quality", "invalid_value"),
        ({"background": "transparent", "output_format": "jpeg"}, "background", "invalid_value"),
        (
            {"model": "gpt-image-1-mini", "input_fidelity": "high"},
            "input_fidelity",
            "unsupported_parameter",
        ),
        ({"input_fidelity": "max"}, "input_fidelity", "invalid_value"),
        ({"response_format": "b64_json"}, None, None),
    ],
)
async def test_fields_are_checked(
    change: dict[str, Any],
    param: str | None,
    code: str | None,
    http: httpx.AsyncClient,
    fake_url: str,
    person: InputImage,
    garment: InputImage,
) -> None:
    response = await post(http, fake_url, **form(person, garment, **change))
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


async def test_exact_limits_are_accepted(
    http: httpx.AsyncClient, fake_url: str, person: InputImage, garment: InputImage
) -> None:
    response = await post(
        http,
        fake_url,
        **form(person, garment, prompt="x" * MAX_PROMPT, n="10", input_fidelity="low"),
    )
    assert response.status_code == 200
    assert len(response.json()["data"]) == 10


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ([("mask", ("mask.png", "PERSON", "image/png"))], "missing_required_parameter"),
        (
            [("image[]", ("p.png", "PERSON", "application/octet-stream"))],
            "unsupported_file_mimetype",
        ),
        ([("image[]", ("p.png", "PERSON", "image/jpeg"))], "unsupported_file_mimetype"),
        ([("image[]", ("p.gif", b"GIF89a....", "image/gif"))], "unsupported_file_mimetype"),
        (
            [("image[]", ("p.png", b"\x89PNG\r\n\x1a\n truncated", "image/png"))],
            "invalid_image_file",
        ),
    ],
    ids=["none", "octet-stream", "type-mismatch", "gif", "truncated"],
)
async def test_image_parts_are_checked(
    files: list[Any],
    code: str,
    http: httpx.AsyncClient,
    fake_url: str,
    person: InputImage,
) -> None:
    files = [
        (name, (filename, person.data if content == "PERSON" else content, ctype))
        for name, (filename, content, ctype) in files
    ]
    data = {"model": "gpt-image-1", "prompt": "Dress the person."}
    response = await post(http, fake_url, data=data, files=files)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["param"], error["code"]) == ("image", code)


async def test_a_single_image_part_is_accepted(
    http: httpx.AsyncClient, fake_url: str, person: InputImage
) -> None:
    response = await post(
        http,
        fake_url,
        data={"model": "gpt-image-1", "prompt": "Dress the person."},
        files=[("image", ("person.png", person.data, "image/png"))],
    )
    assert response.status_code == 200


async def test_json_bodies_and_unknown_fields_are_refused(
    http: httpx.AsyncClient, fake_url: str, person: InputImage, garment: InputImage
) -> None:
    as_json = await post(http, fake_url, json={"model": "gpt-image-1", "prompt": "x"})
    unknown = await post(http, fake_url, **form(person, garment, seed="3"))
    assert (as_json.status_code, unknown.status_code) == (400, 400)
    assert "multipart/form-data" in error_of(as_json)["message"]
    assert error_of(unknown)["message"] == "Unrecognized request argument supplied: seed"


async def test_unknown_paths_answer_like_openai(http: httpx.AsyncClient, fake_url: str) -> None:
    response = await http.post(f"{fake_url}/images/edits", headers=AUTH)
    assert response.status_code == 404
    assert error_of(response)["message"] == "Invalid URL (POST /images/edits)"


async def test_faults_are_rendered_in_openai_s_shapes(
    http: httpx.AsyncClient,
    fake_url: str,
    state: FakeState,
    person: InputImage,
    garment: InputImage,
) -> None:
    state.inject(
        Fault(kind="rate_limit", retry_after=1.2),
        "rate_limit",
        "quota",
        "content_refused",
    )
    limited = await post(http, fake_url, **form(person, garment))
    bare = await post(http, fake_url, **form(person, garment))
    quota = await post(http, fake_url, **form(person, garment))
    refused = await post(http, fake_url, **form(person, garment))

    assert limited.status_code == bare.status_code == quota.status_code == 429
    assert (limited.headers["retry-after"], limited.headers["retry-after-ms"]) == ("2", "1200")
    assert "retry-after" not in bare.headers and "retry-after-ms" not in bare.headers
    assert error_of(bare)["code"] == "rate_limit_exceeded"
    assert (error_of(quota)["type"], error_of(quota)["code"]) == (
        "insufficient_quota",
        "insufficient_quota",
    )
    assert refused.status_code == 400
    assert (error_of(refused)["type"], error_of(refused)["code"]) == (
        "image_generation_user_error",
        "moderation_blocked",
    )
    assert [r.summary["fault"] for r in state.requests] == [
        "rate_limit",
        "rate_limit",
        "quota",
        "content_refused",
    ]


def test_a_failed_task_cannot_be_injected() -> None:
    """A synchronous API has no task to fail; the fake says so instead of faking it."""
    app = create_app()
    with pytest.raises(ValueError, match="task_failed"):
        app.state.fake.inject("task_failed")
    assert "task_failed" not in app.state.fake.supported
    assert "slow_task" in app.state.fake.supported


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.one_of(st.integers(-3, 14).map(str), st.text(max_size=4)))
def test_n_is_an_integer_string_from_1_to_10(
    n: str, person: InputImage, garment: InputImage
) -> None:
    valid = n.isascii() and n.isdigit() and 1 <= int(n) <= 10
    with TestClient(create_app()) as client:
        response = client.post("/v1/images/edits", headers=AUTH, **form(person, garment, n=n))
    assert response.status_code == (200 if valid else 400), response.text
    if valid:
        assert len(response.json()["data"]) == int(n)
    else:
        assert error_of(response)["param"] == "n"
