"""A loopback fake of OpenAI's ``POST /v1/images/edits`` for GPT image models.

It checks what it receives as strictly as the real service (WIRE.md section 3): the exact
``Authorization: Bearer KEY`` header (and ``OpenAI-Organization`` when sent), a
``multipart/form-data`` body, known fields only, ``model`` and ``prompt`` present and valid,
``image`` / ``image[]`` file parts whose Content-Type is an image type matching their bytes,
``input_fidelity`` refused for ``gpt-image-1-mini``, ``n`` an integer string from 1 to 10,
``output_format`` png/jpeg/webp. Violations get OpenAI's own status and
``{"error": {"message", "type", "param", "code"}}``. Successes carry ``data[].b64_json`` images
in the requested format, made from the inputs with :func:`result_image`.

Faults (``state.fake.inject(...)``) are rendered as OpenAI would: see the README's table.
``task_failed`` has no meaning for a synchronous call: the fake does not offer it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, post
from litestar.datastructures import State, UploadFile
from litestar.exceptions import HTTPException
from PIL import Image, UnidentifiedImageError

from tryon_core.plugin import sniff
from tryon_core.testing import (
    FAULT_KINDS,
    FakeState,
    Fault,
    create_fake_app,
    result_image,
)

__all__ = ["EDITS_PATH", "FAULTS", "MAX_PROMPT", "MODELS", "TEST_API_KEY", "create_app"]

TEST_API_KEY = "test-key"
EDITS_PATH = "/v1/images/edits"
MODELS = ("gpt-image-1", "gpt-image-1-mini")
MAX_PROMPT = 32000
MAX_IMAGES = 16
MAX_IMAGE_BYTES = 50 * 1024 * 1024
#: The fault kinds this fake renders: all but ``task_failed`` (a synchronous call has no task).
FAULTS = tuple(kind for kind in FAULT_KINDS if kind != "task_failed")

_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
_FILE_FIELDS = ("image", "image[]", "mask")
_TEXT_FIELDS = (
    "background",
    "input_fidelity",
    "model",
    "n",
    "output_compression",
    "output_format",
    "partial_images",
    "prompt",
    "quality",
    "size",
    "stream",
    "user",
)
_CHOICES = {
    "output_format": ("png", "jpeg", "webp"),
    "size": ("1024x1024", "1536x1024", "1024x1536", "auto"),
    "quality": ("low", "medium", "high", "auto"),
    "background": ("transparent", "opaque", "auto"),
    "input_fidelity": ("high", "low"),
    "stream": ("true", "false"),
}
_RANGES = {"n": (1, 10), "output_compression": (0, 100), "partial_images": (0, 3)}
_INTEGER = re.compile(r"[0-9]+")
_KEY_HINT = "You can find your API key at https://platform.openai.com/account/api-keys."


class _Reject(Exception):
    """An answer other than success, in OpenAI's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        self.headers = headers or {}

    def response(self) -> Response[Any]:
        return _reply(self.body, self.status, self.headers)


@dataclass
class _Part:
    name: str
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class _Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[_Part] = field(default_factory=list)

    def value(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def summary(self) -> dict[str, Any]:
        return {
            "fields": {name: values[-1] for name, values in self.fields.items()},
            "parts": [
                {
                    "name": part.name,
                    "filename": part.filename,
                    "content_type": part.content_type,
                    "sniffed": sniff(part.data),
                    "bytes": len(part.data),
                }
                for part in self.files
            ],
        }


def create_app(
    *, api_key: str = TEST_API_KEY, organization: str | None = None, state: FakeState | None = None
) -> Litestar:
    """The fake. It accepts only ``Authorization: Bearer {api_key}`` and, when a request sends
    ``OpenAI-Organization``, only ``organization``."""

    @post(EDITS_PATH, status_code=200)
    async def edits(request: Request[Any, Any, Any], state: State) -> Response[Any]:
        fake: FakeState = state.fake
        fault = fake.next_fault()
        body = await request.body()
        try:
            form = await _read_form(request)
        except _Reject as reject:
            fake.record(request, body, status=reject.status, error=reject.code)
            return reject.response()
        summary = form.summary()
        if fault is not None and fault.kind == "hang":
            fake.record(request, body, fault=fault.kind, **summary)
            await fake.hang()
        if fault is not None and fault.kind == "slow_task":
            await asyncio.sleep(fault.seconds)
        elif fault is not None:
            answer = _fault(fault, form.value("model") or MODELS[0], api_key)
            fake.record(request, body, status=answer.status_code, fault=fault.kind, **summary)
            return answer
        try:
            _check_auth(request, api_key, organization)
            result = await _edit(form)
        except _Reject as reject:
            fake.record(request, body, status=reject.status, error=reject.code, **summary)
            return reject.response()
        fake.record(request, body, status=200, **summary)
        return _reply(result, 200)

    return create_fake_app(
        [edits],
        faults=FAULTS,
        state=state,
        exception_handlers={404: _no_route, 405: _no_route},
    )


def _reply(body: Any, status: int, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        body,
        status_code=status,
        headers={"x-request-id": f"req_{secrets.token_hex(16)}", **(headers or {})},
    )


def _no_route(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    message = f"Invalid URL ({request.method} {request.url.path})"
    return _Reject(exc.status_code, message).response()


async def _read_form(request: Request[Any, Any, Any]) -> _Form:
    media_type, _options = request.content_type
    if media_type != "multipart/form-data":
        raise _Reject(
            400,
            f"Invalid Content-Type header ({media_type or 'none'}), expected multipart/form-data.",
        )
    try:
        raw = await request.form()
    except HTTPException:
        raise _Reject(400, "Could not parse multipart form.") from None
    form = _Form()
    try:
        for name, value in raw.multi_items():
            if isinstance(value, UploadFile):
                declared = {k.lower(): v for k, v in value.headers.items()}.get("content-type")
                data = await value.read()
                form.files.append(_Part(name, value.filename, declared, data))
            else:
                form.fields.setdefault(name, []).append(value)
    finally:
        for _name, value in raw.multi_items():
            if isinstance(value, UploadFile):
                await value.close()
    return form


def _check_auth(request: Request[Any, Any, Any], api_key: str, organization: str | None) -> None:
    header = request.headers.get("authorization")
    if not header:
        raise _Reject(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). "
            + _KEY_HINT,
        )
    scheme, _, presented = header.partition(" ")
    if scheme != "Bearer" or presented != api_key:
        raise _Reject(
            401,
            f"Incorrect API key provided: {_masked(presented or scheme)}. {_KEY_HINT}",
            code="invalid_api_key",
        )
    sent = request.headers.get("openai-organization")
    if sent is not None and sent != organization:
        raise _Reject(
            401,
            "OpenAI-Organization header should match organization for API key",
            code="mismatched_organization",
        )


def _masked(key: str) -> str:
    """How OpenAI quotes a wrong key: a few characters at each end, the rest starred."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


async def _edit(form: _Form) -> dict[str, Any]:
    """Validate the fields like the real endpoint, then make ``n`` results."""
    for name in form.fields:
        if name not in _TEXT_FIELDS:
            raise _unknown(name, is_file=name in _FILE_FIELDS)
    for part in form.files:
        if part.name not in _FILE_FIELDS:
            raise _unknown(part.name, is_file=False)
    model = _required(form, "model")
    if model not in MODELS:
        raise _invalid_value("model", model, MODELS)
    prompt = _required(form, "prompt")
    if len(prompt) > MAX_PROMPT:
        raise _Reject(
            400,
            f"Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{MAX_PROMPT}, but got a string with length {len(prompt)} instead.",
            param="prompt",
            code="string_above_max_length",
        )
    for name, choices in _CHOICES.items():
        value = form.value(name)
        if value is not None and value not in choices:
            raise _invalid_value(name, value, choices)
    numbers = {name: _integer(form, name) for name in _RANGES}
    if form.value("input_fidelity") is not None and model == "gpt-image-1-mini":
        raise _Reject(
            400,
            f"Unsupported parameter: 'input_fidelity' is not supported with the model {model}.",
            param="input_fidelity",
            code="unsupported_parameter",
        )
    output_format = form.value("output_format") or "png"
    if form.value("background") == "transparent" and output_format == "jpeg":
        raise _Reject(
            400,
            "Transparent background is not supported for the jpeg output format.",
            param="background",
            code="invalid_value",
        )
    if form.value("stream") == "true":
        raise _Reject(
            400, "This fake does not stream; send stream=false.", param="stream", code="fake"
        )
    images = _images(form)
    n = numbers["n"] or 1
    person, garments = images[0], images[1:]
    encoded = [
        base64.b64encode(
            await asyncio.to_thread(
                result_image, person, garments, output_format=output_format, variant=index
            )
        ).decode("ascii")
        for index in range(n)
    ]
    return _images_body(
        encoded, output_format, form.value("quality") or "auto", person, form.value("size")
    )


def _images(form: _Form) -> list[bytes]:
    """The ``image`` / ``image[]`` parts' bytes, each checked like the real endpoint."""
    parts = [part for part in form.files if part.name in ("image", "image[]")]
    if not parts:
        raise _Reject(
            400,
            "Missing required parameter: 'image'.",
            param="image",
            code="missing_required_parameter",
        )
    if len(parts) > MAX_IMAGES:
        raise _Reject(
            400,
            f"Invalid 'image': too many images. Expected at most {MAX_IMAGES}, got {len(parts)}.",
            param="image",
            code="array_above_max_length",
        )
    for index, part in enumerate(parts, start=1):
        declared = (part.content_type or "").split(";")[0].strip().lower()
        if declared not in _IMAGE_TYPES or sniff(part.data) != declared:
            raise _Reject(
                400,
                f"Invalid file 'image': unsupported mimetype ('{declared or 'none'}'). Supported "
                "file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
                param="image",
                code="unsupported_file_mimetype",
            )
        if len(part.data) >= MAX_IMAGE_BYTES:
            raise _Reject(
                400,
                f"Invalid image {index}: the file must be smaller than 50 MB.",
                param="image",
                code="image_too_large",
            )
        try:
            with Image.open(io.BytesIO(part.data)) as opened:
                opened.verify()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise _Reject(
                400,
                f"Invalid image file or mode for image {index}, please check your image file.",
                param="image",
                code="invalid_image_file",
            ) from None
    return [part.data for part in parts]


def _required(form: _Form, name: str) -> str:
    value = form.value(name)
    if not value:
        raise _Reject(
            400,
            f"Missing required parameter: '{name}'.",
            param=name,
            code="missing_required_parameter",
        )
    return value


def _integer(form: _Form, name: str) -> int | None:
    value = form.value(name)
    if value is None:
        return None
    if not _INTEGER.fullmatch(value):
        raise _Reject(
            400,
            f"Invalid type for '{name}': expected an integer, but got a string instead.",
            param=name,
            code="invalid_type",
        )
    number, (low, high) = int(value), _RANGES[name]
    if number < low:
        raise _Reject(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got "
            f"{number} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if number > high:
        raise _Reject(
            400,
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got "
            f"{number} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return number


def _invalid_value(name: str, value: str, choices: Sequence[str]) -> _Reject:
    listed = ", ".join(f"'{choice}'" for choice in choices)
    return _Reject(
        400,
        f"Invalid value: '{value[:64]}'. Supported values are: {listed}.",
        param=name,
        code="invalid_value",
    )


def _unknown(name: str, *, is_file: bool) -> _Reject:
    if is_file:
        return _Reject(
            400,
            f"Invalid '{name}': expected a file, but got a string instead.",
            param=name,
            code="invalid_type",
        )
    return _Reject(400, f"Unrecognized request argument supplied: {name[:64]}")


def _images_body(
    encoded: list[str],
    output_format: str,
    quality: str,
    person: bytes | None = None,
    asked: str | None = None,
) -> dict[str, Any]:
    """OpenAI's ImagesResponse for GPT image models (never URLs)."""
    size = "1024x1024"
    if asked and asked != "auto":
        size = asked
    elif person is not None:
        with Image.open(io.BytesIO(person)) as opened:
            width, height = opened.size
        if height > width * 1.2:
            size = "1024x1536"
        elif width > height * 1.2:
            size = "1536x1024"
    return {
        "created": int(time.time()),
        "data": [{"b64_json": item} for item in encoded],
        "background": "opaque",
        "output_format": output_format,
        "quality": "high" if quality == "auto" else quality,
        "size": size,
        "usage": {
            "input_tokens": 1200,
            "input_tokens_details": {"image_tokens": 1150, "text_tokens": 50},
            "output_tokens": 6240 * len(encoded),
            "total_tokens": 1200 + 6240 * len(encoded),
            "output_tokens_details": {"image_tokens": 6240 * len(encoded), "text_tokens": 0},
        },
    }


def _fault(fault: Fault, model: str, api_key: str) -> Response[Any]:
    """A queued fault as OpenAI would answer it."""
    kind = fault.kind
    if kind == "malformed":
        return Response(
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            status_code=200,
            media_type="text/html",
        )
    if kind == "no_image":
        return _reply(_images_body([], "png", "auto"), 200)
    if kind == "bad_image":
        garbage = base64.b64encode(b"\x00\x01 this is not an image \xfe\xff").decode("ascii")
        return _reply(_images_body([garbage], "png", "auto"), 200)
    return _fault_error(fault, model, api_key).response()


def _fault_error(fault: Fault, model: str, api_key: str) -> _Reject:
    kind = fault.kind
    if kind == "rate_limit":
        headers = {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "0"}
        wait = ""
        if fault.retry_after is not None:
            headers["retry-after"] = str(math.ceil(fault.retry_after))
            headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
            wait = f" Please try again in {fault.retry_after:g}s."
        return _Reject(
            429,
            f"Rate limit reached for {model} in organization org-fake on images per minute "
            f"(IPM): Limit 5, Used 5, Requested 1.{wait}",
            type="requests",
            code=fault.code or "rate_limit_exceeded",
            headers=headers,
        )
    if kind == "quota":
        return _Reject(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        )
    if kind == "server_error":
        return _Reject(
            fault.status,
            "The engine is currently overloaded, please try again later."
            if fault.status == 503
            else "The server had an error while processing your request. Sorry about that!",
            type="server_error",
            code=fault.code,
        )
    if kind == "content_refused":
        return _Reject(
            400,
            "Your request was rejected by the safety system. If you believe this is an error, "
            "contact us at help.openai.com and include the request ID.",
            type="image_generation_user_error",
            code=fault.code or "moderation_blocked",
        )
    if kind == "invalid_input":
        return _Reject(
            400,
            "Invalid image file or mode for image 1, please check your image file.",
            param="image",
            code=fault.code or "invalid_image_file",
        )
    if kind == "auth":
        return _Reject(
            401,
            f"Incorrect API key provided: {_masked(api_key)}. {_KEY_HINT}",
            code="invalid_api_key",
        )
    return _Reject(500, f"The openai fake cannot express the fault {kind!r}.", type="fake_error")
