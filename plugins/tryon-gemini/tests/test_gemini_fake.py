"""The fake refuses what Gemini refuses, in Gemini's own error shapes, and accepts what the
official SDK sends (mixed casing, URL-safe base64, /v1/, ?key=)."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from tryon_gemini.fake import create_app
from tryon_gemini.wire import ASPECT_RATIOS, MAX_REQUEST_BYTES

from tryon_core.testing import serve_app

PATH = "/v1beta/models/gemini-2.5-flash-image:generateContent"
KEY = {"x-goog-api-key": "test-key"}


def blob(data: bytes, mime: str = "image/png", *, urlsafe: bool = False) -> dict[str, Any]:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return {"inlineData": {"mimeType": mime, "data": encode(data).decode()}}


def body(*parts: dict[str, Any], **generation: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"contents": [{"role": "user", "parts": list(parts)}]}
    if generation:
        document["generationConfig"] = generation
    return document


@pytest.fixture
def two_images(picture: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return blob(picture(300, 400, "JPEG"), "image/jpeg"), blob(picture(120, 120))


async def post(
    fake: Any, http: httpx.AsyncClient, document: Any, *, path: str = PATH, **kw: Any
) -> httpx.Response:
    kw.setdefault("headers", KEY)
    if isinstance(document, bytes):
        return await http.post(fake.url + path, content=document, **kw)
    return await http.post(fake.url + path, json=document, **kw)


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) <= {"code", "message", "status", "details"}
    assert error["code"] == response.status_code
    return error  # type: ignore[no-any-return]


async def test_a_success_has_gemini_s_response_shape(
    fake: Any, http: httpx.AsyncClient, two_images: Any
) -> None:
    response = await post(fake, http, body(*two_images, {"text": "Dress the first image."}))
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"candidates", "usageMetadata", "modelVersion", "responseId"}
    [candidate] = answer["candidates"]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["role"] == "model"
    text, image = candidate["content"]["parts"]  # text + image: the default modalities
    assert isinstance(text["text"], str)
    assert image["inlineData"]["mimeType"] == "image/png"
    made = Image.open(io.BytesIO(base64.b64decode(image["inlineData"]["data"], validate=True)))
    assert made.size == ASPECT_RATIOS["3:4"]  # the person photo's ratio, none being asked for
    usage = answer["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert answer["modelVersion"] == "gemini-2.5-flash-image"


async def test_image_only_modality_gets_no_text_and_the_asked_ratio(
    fake: Any, http: httpx.AsyncClient, two_images: Any
) -> None:
    document = body(*two_images, responseModalities=["IMAGE"], imageConfig={"aspectRatio": "16:9"})
    response = await post(fake, http, document)
    [part] = response.json()["candidates"][0]["content"]["parts"]
    data = base64.b64decode(part["inlineData"]["data"])
    assert Image.open(io.BytesIO(data)).size == ASPECT_RATIOS["16:9"]


async def test_what_the_official_sdk_sends_is_accepted(
    fake: Any, http: httpx.AsyncClient, picture: Any
) -> None:
    # google-genai 3.6.1: /v1/, inlineData + mime_type, URL-safe base64 (WIRE.md 2.2)
    person = picture(301, 401, "JPEG", colour=(250, 250, 251))
    sdk_blob = {
        "inlineData": {"data": base64.urlsafe_b64encode(person).decode(), "mime_type": "image/jpeg"}
    }
    document = {
        "contents": [{"parts": [sdk_blob, {"text": "x"}], "role": "user"}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "3:4"},
        },
    }
    response = await post(fake, http, document, path=PATH.replace("v1beta", "v1"))
    assert response.status_code == 200, response.text
    summary = fake.state.requests[-1].summary
    assert summary["version"] == "v1"
    assert summary["casing"] == "mixed"
    assert summary["sniffed"] == ["image/jpeg"]


async def test_snake_case_and_the_key_in_the_query_are_accepted(
    fake: Any, http: httpx.AsyncClient, picture: Any
) -> None:
    document = {
        "contents": [
            {
                "parts": [
                    {
                        "inline_data": {
                            "mime_type": "image/png",
                            "data": base64.b64encode(picture(64, 64)).decode().rstrip("="),
                        }
                    }
                ]
            }
        ],
        "generation_config": {
            "response_modalities": ["image"],
            "image_config": {"aspect_ratio": "1:1"},
        },
    }
    response = await post(fake, http, document, headers={}, params={"key": "test-key"})
    assert response.status_code == 200, response.text
    summary = fake.state.requests[-1].summary
    assert summary["auth"] == ["query"]
    assert summary["casing"] == "snake"


@pytest.mark.parametrize(
    "headers, params",
    [({"x-goog-api-key": "wrong"}, {}), ({}, {"key": "wrong"}), (KEY, {"key": "wrong"})],
)
async def test_a_wrong_key_is_400_api_key_invalid(
    fake: Any, http: httpx.AsyncClient, two_images: Any, headers: Any, params: Any
) -> None:
    response = await post(fake, http, body(*two_images), headers=headers, params=params)
    assert response.status_code == 400
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == "API key not valid. Please pass a valid API key."
    [info] = [d for d in error["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert info["reason"] == "API_KEY_INVALID"


async def test_another_test_key_can_be_configured(http: httpx.AsyncClient, two_images: Any) -> None:
    async with serve_app(create_app(api_key="other")) as url:
        denied = await http.post(url + PATH, json=body(*two_images), headers=KEY)
        allowed = await http.post(
            url + PATH, json=body(*two_images), headers={"x-goog-api-key": "other"}
        )
    assert (denied.status_code, allowed.status_code) == (400, 200)


async def test_no_key_is_403_permission_denied(
    fake: Any, http: httpx.AsyncClient, two_images: Any
) -> None:
    for headers in ({}, {"Authorization": "Bearer test-key"}):
        response = await post(fake, http, body(*two_images), headers=headers)
        assert response.status_code == 403
        assert error_of(response)["status"] == "PERMISSION_DENIED"


async def test_an_unknown_model_is_404_not_found_and_a_wrong_path_google_s_html(
    fake: Any, http: httpx.AsyncClient, two_images: Any
) -> None:
    model = await post(fake, http, body(*two_images), path=PATH.replace("flash-image", "pro"))
    assert model.status_code == 404
    assert error_of(model)["status"] == "NOT_FOUND"
    for path in (
        PATH.replace("v1beta", "v2"),
        PATH.replace("generateContent", "predict"),
        "/v1beta/gemini-2.5-flash-image:generateContent",
    ):
        page = await post(fake, http, body(*two_images), path=path)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")


def _invalid(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    return str(error["message"])


@pytest.mark.parametrize(
    "document, says",
    [
        ({}, "contents is not specified"),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "user", "parts": []}]}, "contents.parts must not be empty"),
        ({"contents": [{"role": "user", "parts": [{}]}]}, "required oneof field 'data'"),
        ({"contents": [{"role": "person", "parts": [{"text": "x"}]}]}, "valid role"),
        ({"contents": [{"parts": [{"text": 5}]}]}, "Invalid value at 'contents[0].parts[0].text'"),
        ({"contents": "x"}, "Invalid value at 'contents'"),
        ({"contents": [{"parts": [{"text": "x"}]}], "prompt": "x"}, 'Unknown name "prompt"'),
        (
            {"contents": [{"parts": [{"text": "x", "inlineData": {"mimeType": "image/png"}}]}]},
            "Multiple values for oneof",
        ),
        (
            {
                "contents": [
                    {"parts": [{"inlineData": {"mimeType": "image/png", "data": "", "x": 1}}]}
                ]
            },
            "Unknown name \"x\" at 'contents[0].parts[0].inline_data'",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "text/plain", "data": "aGk="}}]}]},
            "Unsupported MIME type: text/plain",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"data": "aGk="}}]}]},
            "mime_type is not specified",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "aGk="}}]}]},
            "Unable to process input image",
        ),
        (
            {
                "contents": [
                    {
                        "parts": [
                            {
                                "inlineData": {
                                    "mimeType": "image/png",
                                    "data": "data:image/png;base64,aGk=",
                                }
                            }
                        ]
                    }
                ]
            },
            "Base64 decoding failed",
        ),
        (
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {"responseModalities": ["PICTURE"]},
            },
            "response_modalities[0]",
        ),
        (
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {"imageConfig": {"aspectRatio": "7:5"}},
            },
            "aspect ratio",
        ),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}},
            "Multiple candidates",
        ),
        (
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {"imageConfig": {"outputMimeType": "image/jpeg"}},
            },
            'Unknown name "outputMimeType"',
        ),
    ],
)
async def test_invalid_requests_are_400_invalid_argument(
    fake: Any, http: httpx.AsyncClient, document: Any, says: str
) -> None:
    assert says in _invalid(await post(fake, http, document))


async def test_a_body_that_is_not_json_or_not_declared_json_is_refused(
    fake: Any, http: httpx.AsyncClient
) -> None:
    assert "Invalid JSON payload" in _invalid(
        await post(fake, http, b"{oops", headers={**KEY, "content-type": "application/json"})
    )
    assert "content type" in _invalid(
        await post(fake, http, b"{}", headers={**KEY, "content-type": "text/plain"})
    )


async def test_a_body_over_20_mib_is_refused(fake: Any, http: httpx.AsyncClient) -> None:
    filler = "A" * (MAX_REQUEST_BYTES + 4)
    document = {"contents": [{"parts": [{"text": filler}]}]}
    assert "payload size exceeds the limit" in _invalid(await post(fake, http, document))


async def test_every_request_is_recorded_even_refused_ones(
    fake: Any, http: httpx.AsyncClient, two_images: Any
) -> None:
    await post(fake, http, {}, headers={})
    await post(fake, http, body(*two_images))
    assert [r.summary.get("auth") for r in fake.state.requests] == [[], ["header"]]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(min_size=1, max_size=64), urlsafe=st.booleans(), pad=st.booleans())
def test_both_base64_alphabets_decode_to_the_same_bytes(
    data: bytes, urlsafe: bool, pad: bool
) -> None:
    from tryon_gemini.fake_checks import Reader as _Reader

    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    reader = _Reader()
    assert reader.bytes(text if pad else text.rstrip("="), "x") == data
    used = set(text) & set("+/-_")
    assert (
        reader.alphabets == ({"urlsafe"} if urlsafe else {"standard"})
        if used
        else not reader.alphabets
    )
