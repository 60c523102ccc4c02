"""A fake Kling API for tests and ``tryon fakes serve``: the Kolors virtual try-on endpoints.

It checks what it receives as strictly as Kling does and answers in Kling's shapes:

- ``Authorization: Bearer <JWT>``: an HS256 token signed with the test secret key, header
  ``alg`` HS256 and ``typ`` JWT, ``iss`` = the test access key, integer ``exp`` in the future
  and ``nbf`` not in the future (5 s of skew allowed). Else HTTP 401 with code 1001 (no
  header), 1002 (invalid), 1003 (not yet valid) or 1004 (expired).
- ``POST /v1/images/kolors-virtual-try-on``: a JSON object with ``human_image`` and
  ``cloth_image`` as bare base64 (no ``data:`` prefix) of a JPEG or PNG of at most 10 MB with
  both sides at least 300 px; optional ``model_name`` (``kolors-virtual-try-on-v1`` or
  ``-v1-5``), ``callback_url`` and ``external_task_id`` (unique). Anything else: HTTP 400 with
  code 1201 (1200 when the body is not a JSON object).
- ``GET /v1/images/kolors-virtual-try-on/{task_id or external_task_id}``: the task,
  ``submitted`` -> ``processing`` -> ``succeed`` (or ``failed``); result URLs it serves itself.
- ``GET /v1/images/kolors-virtual-try-on?pageNum=&pageSize=``: the task list.
- Any other path or method: HTTP 404 with code 1203 / 1202.

Test credentials: access key ``test-access-key``, secret key ``test-secret-key``.

Faults (``tryon_core.testing.fakes``), rendered on whichever call meets them first:
``rate_limit`` 429/1302 (``code`` may say 1303; ``Retry-After`` only when the fault carries
``retry_after``), ``quota`` 429/1102 (or 1100/1101), ``server_error`` ``status``/5000
(5001 for 503, 5002 for 504), ``hang``, ``malformed`` (a 200 that is not JSON; ``code="shape"``:
JSON without the envelope), ``content_refused`` 400/1301 (or 1300; ``code="task"``: the task
fails with a risk-control message), ``invalid_input`` 400/1201, ``auth`` 401/1002 (or
1000-1004), ``task_failed``, ``slow_task`` (``seconds`` until done), ``no_image`` (``succeed``
with no image), ``bad_image`` (``succeed`` with a URL to bytes that do not decode).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import io
import json
import math
import re
import time
import uuid
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.params import FromPath
from PIL import Image

from tryon_core.testing import (
    FakeState,
    FakeTask,
    Fault,
    create_fake_app,
    file_url,
    result_image,
)

__all__ = ["TEST_ACCESS_KEY", "TEST_SECRET_KEY", "create_app"]

TEST_ACCESS_KEY = "test-access-key"
TEST_SECRET_KEY = "test-secret-key"

PATH = "/v1/images/kolors-virtual-try-on"
MODEL_NAMES = ("kolors-virtual-try-on-v1", "kolors-virtual-try-on-v1-5")
FIELDS = ("model_name", "human_image", "cloth_image", "callback_url", "external_task_id")
MAX_BYTES = 10 * 1024 * 1024
MIN_SIDE = 300
SKEW = 5
RISK_MESSAGE = "Failure to pass the risk control system: content risk detected"
FAILED_MESSAGE = "Task failed: the try-on image could not be generated"

_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class KlingFake:
    """The fake's settings: the credentials it accepts and how long tasks run."""

    def __init__(self, access_key: str, secret_key: str, processing_polls: int) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.processing_polls = processing_polls


def create_app(
    *,
    access_key: str = TEST_ACCESS_KEY,
    secret_key: str = TEST_SECRET_KEY,
    processing_polls: int = 1,
) -> Litestar:
    """The fake. ``processing_polls``: status queries that see ``processing`` before the end."""
    app = create_fake_app(
        [create_task, query_task, list_tasks],
        exception_handlers={
            NotFoundException: _not_found,
            MethodNotAllowedException: _bad_method,
        },
    )
    app.state.kling = KlingFake(access_key, secret_key, processing_polls)
    return app


# -- answers ---------------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ok(data: Any) -> Response[Any]:
    body = {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data}
    return Response(body, status_code=200, media_type="application/json")


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _not_found(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _error(404, 1203, "resource not found")


def _bad_method(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _error(404, 1202, "request method not supported")


def _task_json(task: FakeTask) -> dict[str, Any]:
    external = task.data.get("external_task_id")
    body: dict[str, Any] = {
        "task_id": task.id,
        "task_status": task.status,
        "task_status_msg": task.error or "",
        "task_info": {"external_task_id": external} if external else {},
        "created_at": task.data["created_at"],
        "updated_at": task.data["updated_at"],
    }
    if task.status == "succeed":
        body["task_result"] = {
            "images": [{"index": i, "url": url} for i, url in enumerate(task.result)]
        }
        body["final_unit_deduction"] = "1"
    return body


async def _fault_answer(fault: Fault) -> Response[Any] | None:
    """The answer a call-level fault makes; None for faults that shape the task instead."""
    kind, code = fault.kind, fault.code
    if kind == "hang":
        await FakeState.hang()
    if kind == "rate_limit":
        headers = None
        if fault.retry_after is not None:
            headers = {"Retry-After": str(math.ceil(fault.retry_after))}
        number = int(code or 1302)
        message = (
            "parallel task over resource pack limit" if number == 1303 else "too many requests"
        )
        return _error(429, number, message, headers)
    if kind == "quota":
        return _error(429, int(code or 1102), "resource pack exhausted or expired")
    if kind == "server_error":
        number = int(code or {503: 5001, 504: 5002}.get(fault.status, 5000))
        return _error(fault.status, number, "internal server error")
    if kind == "malformed":
        if code == "shape":
            return Response({"ok": True}, status_code=200, media_type="application/json")
        return Response(b"<html>bad gateway</html>", status_code=200, media_type="text/html")
    if kind == "content_refused" and code != "task":
        return _error(400, int(code or 1301), "content security policy triggered")
    if kind == "invalid_input":
        return _error(400, int(code or 1201), "invalid parameter: human_image has no person")
    if kind == "auth":
        return _error(401, int(code or 1002), "authorization is invalid")
    return None


def _shape_task(task: FakeTask, fault: Fault) -> None:
    """Apply a task-level fault to a task that has not ended."""
    if task.status in ("succeed", "failed"):
        return
    task.data["fault"] = fault
    if fault.kind == "slow_task":
        task.ready_at = asyncio.get_running_loop().time() + fault.seconds


# -- auth ------------------------------------------------------------------------------------


def _b64url(segment: str) -> bytes:
    if not _BASE64URL.fullmatch(segment):
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def check_token(header: str | None, fake: KlingFake, now: float) -> tuple[int, str] | None:
    """Kling's verdict on an ``Authorization`` header: None, or (code, message)."""
    if not header:
        return 1001, "authorization is empty"
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token or " " in token:
        return 1002, "authorization is invalid"
    parts = token.split(".")
    if len(parts) != 3:
        return 1002, "authorization is invalid"
    try:
        head = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except ValueError:
        return 1002, "authorization is invalid"
    if not isinstance(head, dict) or head.get("alg") != "HS256" or head.get("typ") != "JWT":
        return 1002, "authorization is invalid"
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    expected = hmac.new(fake.secret_key.encode(), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        return 1002, "authorization is invalid"
    if not isinstance(claims, dict) or claims.get("iss") != fake.access_key:
        return 1002, "authorization is invalid"
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, nbf)):
        return 1002, "authorization is invalid"
    assert isinstance(exp, int) and isinstance(nbf, int)
    if exp <= now:
        return 1004, "authorization has expired"
    if nbf > now + SKEW:
        return 1003, "authorization is not yet valid"
    return None


# -- input -----------------------------------------------------------------------------------


def check_image(value: object, field: str) -> tuple[bytes, dict[str, Any]] | str:
    """The decoded image and a summary of it, or why Kling refuses it."""
    if not isinstance(value, str) or not value:
        return f"{field} is required"
    if value.startswith("data:"):
        return f"{field}: base64 must not carry a data: prefix"
    if value.startswith(("http://", "https://")):
        return f"{field}: this fake takes base64 only, not URLs"
    if len(value) % 4 or not _BASE64.fullmatch(value):
        return f"{field} is not valid base64"
    try:
        data = base64.b64decode(value, validate=True)
    except binascii.Error:
        return f"{field} is not valid base64"
    if len(data) > MAX_BYTES:
        return f"{field} is larger than 10MB"
    if data.startswith(b"\xff\xd8\xff"):
        kind = "image/jpeg"
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = "image/png"
    else:
        return f"{field} must be a jpg/jpeg/png image"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return f"{field} cannot be decoded"
    if min(width, height) < MIN_SIDE:
        return f"{field} resolution is too small: each side must be at least {MIN_SIDE}px"
    return data, {"type": kind, "width": width, "height": height, "bytes": len(data)}


def check_body(raw: bytes) -> tuple[dict[str, Any], dict[str, bytes], dict[str, Any]] | str:
    """The create-task body, its two images and a summary; or why it is refused."""
    try:
        body = json.loads(raw)
    except ValueError:
        return "request body is not JSON"
    if not isinstance(body, dict):
        return "request body is not a JSON object"
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        return f"unknown parameter: {unknown[0]}"
    model = body.get("model_name", MODEL_NAMES[0])
    if model not in MODEL_NAMES:
        return f"model_name {model!r} is not supported"
    for field in ("callback_url", "external_task_id"):
        if field in body and not isinstance(body[field], str):
            return f"{field} must be a string"
    images: dict[str, bytes] = {}
    summary: dict[str, Any] = {"fields": sorted(body), "model_name": model}
    for field in ("human_image", "cloth_image"):
        checked = check_image(body.get(field), field)
        if isinstance(checked, str):
            return checked
        images[field], summary[field] = checked
    return body, images, summary


# -- routes ----------------------------------------------------------------------------------


def _auth(request: Request[Any, Any, Any], state: State) -> Response[Any] | None:
    verdict = check_token(request.headers.get("authorization"), state.kling, time.time())
    return None if verdict is None else _error(401, *verdict)


@post(PATH, status_code=200)
async def create_task(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    fake: FakeState = state.fake
    raw = await request.body()
    fault = fake.next_fault()
    if fault is not None and (answer := await _fault_answer(fault)) is not None:
        fake.record(request, raw, fault=fault.kind)
        return answer
    if (refused := _auth(request, state)) is not None:
        fake.record(request, raw, rejected="auth")
        return refused
    if not request.headers.get("content-type", "").startswith("application/json"):
        fake.record(request, raw, rejected="content-type")
        return _error(400, 1200, "Content-Type must be application/json")
    checked = await asyncio.to_thread(check_body, raw)
    if isinstance(checked, str):
        fake.record(request, raw, rejected=checked)
        return _error(400, 1200 if "JSON" in checked else 1201, checked)
    body, images, summary = checked
    external = body.get("external_task_id")
    if external and any(t.data.get("external_task_id") == external for t in fake.tasks.values()):
        fake.record(request, raw, rejected="external_task_id")
        return _error(400, 1201, "external_task_id already exists")
    now = _now_ms()
    task = fake.new_task(
        person=images["human_image"],
        cloth=images["cloth_image"],
        external_task_id=external,
        created_at=now,
        updated_at=now,
    )
    task.status = "submitted"
    if fault is not None:
        _shape_task(task, fault)
    fake.record(request, raw, task_id=task.id, **summary)
    return _ok({k: v for k, v in _task_json(task).items() if k != "task_status_msg"})


@get(PATH + "/{task_id:str}")
async def query_task(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str]
) -> Response[Any]:
    fake: FakeState = state.fake
    fault = fake.next_fault()
    if fault is not None and (answer := await _fault_answer(fault)) is not None:
        fake.record(request, b"", fault=fault.kind, task_id=task_id)
        return answer
    if (refused := _auth(request, state)) is not None:
        fake.record(request, b"", rejected="auth", task_id=task_id)
        return refused
    task = fake.tasks.get(task_id) or next(
        (t for t in fake.tasks.values() if t.data.get("external_task_id") == task_id), None
    )
    fake.record(request, b"", task_id=task_id, found=task is not None)
    if task is None:
        return _error(404, 1203, "task not found")
    if fault is not None:
        _shape_task(task, fault)
    await _advance(task, request, state)
    return _ok(_task_json(task))


@get(PATH)
async def list_tasks(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    fake: FakeState = state.fake
    fault = fake.next_fault()
    if fault is not None and (answer := await _fault_answer(fault)) is not None:
        fake.record(request, b"", fault=fault.kind)
        return answer
    if (refused := _auth(request, state)) is not None:
        fake.record(request, b"", rejected="auth")
        return refused
    fake.record(request, b"")
    try:
        page = int(request.query_params.get("pageNum", "1"))
        size = int(request.query_params.get("pageSize", "30"))
    except ValueError:
        return _error(400, 1201, "pageNum and pageSize must be integers")
    if not (1 <= page <= 1000 and 1 <= size <= 500):
        return _error(400, 1201, "pageNum must be 1-1000 and pageSize 1-500")
    tasks = sorted(fake.tasks.values(), key=lambda t: t.data["created_at"], reverse=True)
    return _ok([_task_json(t) for t in tasks[(page - 1) * size : page * size]])


async def _advance(task: FakeTask, request: Request[Any, Any, Any], state: State) -> None:
    """One status query's worth of progress: processing for a while, then the outcome."""
    if task.status in ("succeed", "failed"):
        return
    task.polls += 1
    running = asyncio.get_running_loop().time() < task.ready_at
    if task.polls <= state.kling.processing_polls or running:
        task.status = "processing"
        return
    fault: Fault | None = task.data.get("fault")
    kind = fault.kind if fault else None
    task.data["updated_at"] = _now_ms()
    if kind == "task_failed" or (kind == "content_refused" and fault and fault.code == "task"):
        task.status = "failed"
        task.error = RISK_MESSAGE if kind == "content_refused" else FAILED_MESSAGE
        return
    fake: FakeState = state.fake
    if kind == "bad_image":
        task.result = [file_url(request, fake.store(b"\x89PNG\r\n\x1a\nnot really", "image/png"))]
    elif kind != "no_image":
        made = await asyncio.to_thread(
            result_image, task.data["person"], [task.data["cloth"]], output_format="png"
        )
        task.result = [file_url(request, fake.store(made, "image/png"))]
    task.status = "succeed"
