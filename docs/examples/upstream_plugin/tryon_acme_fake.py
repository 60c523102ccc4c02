"""A fake Acme Try-On API for tests and ``tryon fakes serve``, built on tryon_core.testing.fakes.

It checks what Acme checks and answers in Acme's shapes (see tryon_acme.py):

- ``Authorization: Bearer <api_key>`` exactly, else 401 ``unauthorized``;
- ``POST /v1/tasks``: a JSON object with exactly ``person``, ``garment``, ``category`` and
  ``seed``; both images standard base64 of a JPEG or PNG of at most 5 MB; a known category; a
  seed that is null or 0 to 4294967295. Else 422 ``invalid_request``;
- ``GET /v1/tasks/{id}``: ``queued``, then ``running`` for ``running_polls`` polls, then
  ``succeeded`` with an ``image_url`` the fake serves itself (``result_image`` of the inputs),
  or ``failed``. An unknown id: 404 ``not_found``.

Faults (``POST /_fake/faults`` or ``FakeState.inject``), taken by whichever call comes next:

- ``rate_limit`` 429 (``Retry-After`` only when the fault has ``retry_after``), ``quota`` 403,
  ``auth`` 401, ``server_error`` the fault's ``status``, ``hang`` (no answer), ``malformed``
  (a 200 HTML page), ``invalid_input`` 422 ``no_person``: that call's answer;
- ``content_refused`` (the task fails with ``content_policy``), ``task_failed``, ``slow_task``
  (the task runs ``seconds`` longer), ``no_image`` (success without ``image_url``),
  ``bad_image`` (a link to bytes that are not an image): the task being submitted or polled.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath

from tryon_core.testing import (
    FakeState,
    FakeTask,
    Fault,
    create_fake_app,
    file_url,
    result_image,
)

__all__ = ["TEST_API_KEY", "create_app"]

TEST_API_KEY = "test-key"
MAX_BYTES = 5 * 1024 * 1024
CATEGORIES = ("auto", "tops", "bottoms", "one-pieces")
SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # JPEG, PNG
TASK_FAULTS = ("content_refused", "task_failed", "slow_task", "no_image", "bad_image")


class AcmeFake:
    """The fake's settings: the key it accepts, how long tasks run, how result links look."""

    def __init__(self, api_key: str, running_polls: int, public_url: str | None) -> None:
        self.api_key = api_key
        self.running_polls = running_polls
        self.public_url = public_url


def create_app(
    *, api_key: str = TEST_API_KEY, running_polls: int = 1, public_url: str | None = None
) -> Litestar:
    """The fake. ``public_url`` replaces the base of result links (default: as reached)."""
    app = create_fake_app([submit, status])  # every fault kind: Acme's protocol has them all
    app.state.acme = AcmeFake(api_key, running_polls, public_url)
    return app


@post("/v1/tasks", status_code=201)
async def submit(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    body = await request.body()
    state.fake.record(request, body)
    fault = state.fake.next_fault()
    refused = await _refusal(request, state, fault)
    if refused is not None:
        return refused
    try:
        person, garment = _inputs(json.loads(body))
    except (ValueError, TypeError) as exc:
        return _error(422, "invalid_request", str(exc))
    task = state.fake.new_task(person=person, garment=garment)
    if fault is not None and fault.kind in TASK_FAULTS:
        _shape(task, fault)
    return Response({"id": task.id, "status": task.status}, status_code=201)


@get("/v1/tasks/{task_id:str}")
async def status(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str]
) -> Response[Any]:
    state.fake.record(request, b"")
    fault = state.fake.next_fault()
    refused = await _refusal(request, state, fault)
    if refused is not None:
        return refused
    task: FakeTask | None = state.fake.tasks.get(task_id)
    if task is None:
        return _error(404, "not_found", "No such task.")
    if fault is not None and fault.kind in TASK_FAULTS:
        _shape(task, fault)
    if task.status in ("queued", "running"):
        task.polls += 1
        early = task.polls <= state.acme.running_polls
        if early or asyncio.get_running_loop().time() < task.ready_at:
            task.status = "running"
        else:
            _finish(task, request, state)
    answer: dict[str, Any] = {"id": task.id, "status": task.status}
    if task.status == "succeeded" and task.result:
        answer["image_url"] = task.result[0]
    if task.status == "failed":
        answer["error"] = {"code": task.error, "message": task.data["message"]}
    return Response(answer)


def _error(
    status_code: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    body = {"error": {"code": code, "message": message}}
    return Response(body, status_code=status_code, headers=headers)


async def _refusal(
    request: Request[Any, Any, Any], state: State, fault: Fault | None
) -> Response[Any] | None:
    """The answer a wrong key or a call-level fault gives this call, if any."""
    kind = fault.kind if fault is not None else None
    if kind == "hang":
        await FakeState.hang()
    if kind == "auth" or request.headers.get("authorization") != f"Bearer {state.acme.api_key}":
        return _error(401, "unauthorized", "Invalid API key.")
    if fault is None or kind in TASK_FAULTS:
        return None
    if kind == "rate_limit":
        wait = fault.retry_after
        headers = {"Retry-After": str(math.ceil(wait))} if wait is not None else None
        return _error(429, "rate_limited", "Too many requests.", headers)
    if kind == "quota":
        return _error(403, "quota_exceeded", "This account's quota is used up.")
    if kind == "server_error":
        return _error(fault.status, "internal", "Something went wrong on our side.")
    if kind == "malformed":
        return Response("<html>502 Bad Gateway</html>", status_code=200, media_type="text/html")
    assert kind == "invalid_input"
    return _error(422, fault.code or "no_person", "No person was found in the photo.")


def _inputs(data: Any) -> tuple[bytes, bytes]:
    """The two images of a submission, or ValueError saying what Acme would refuse."""
    if not isinstance(data, dict) or sorted(data) != ["category", "garment", "person", "seed"]:
        raise ValueError("The body must have exactly person, garment, category and seed.")
    if data["category"] not in CATEGORIES:
        raise ValueError(f"category must be one of {', '.join(CATEGORIES)}.")
    seed = data["seed"]
    if seed is not None and (type(seed) is not int or not 0 <= seed <= 2**32 - 1):
        raise ValueError("seed must be null or an integer from 0 to 4294967295.")
    images = []
    for field in ("person", "garment"):
        try:
            image = base64.b64decode(data[field], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise ValueError(f"{field} is not standard base64.") from None
        if not image.startswith(SIGNATURES) or len(image) > MAX_BYTES:
            raise ValueError(f"{field} must be a JPEG or PNG of at most 5 MB.")
        images.append(image)
    return images[0], images[1]


def _shape(task: FakeTask, fault: Fault) -> None:
    """Apply a task-level fault to a task that has not ended."""
    if task.status in ("queued", "running"):
        task.data["fault"] = fault.kind
        if fault.kind == "slow_task":
            task.ready_at = asyncio.get_running_loop().time() + fault.seconds


def _finish(task: FakeTask, request: Request[Any, Any, Any], state: State) -> None:
    fault = task.data.get("fault")
    if fault in ("content_refused", "task_failed"):
        refused = fault == "content_refused"
        task.status = "failed"
        task.error = "content_policy" if refused else "internal"
        task.data["message"] = "The image was flagged." if refused else "The task crashed."
        return
    task.status = "succeeded"
    if fault == "no_image":
        return
    if fault == "bad_image":
        file_id = state.fake.store(b"<html>not an image</html>", "image/png")
    else:
        image = result_image(task.data["person"], [task.data["garment"]])
        file_id = state.fake.store(image, "image/png")
    link = file_url(request, file_id)
    if state.acme.public_url:
        link = f"{state.acme.public_url.rstrip('/')}/_fake/files/{file_id}"
    task.result = [link]
