"""A fake of fal's queue (``queue.fal.run``) for every app the plugin serves.

It speaks the queue protocol as fal does (WIRE.md section 4): submit at the full endpoint id,
status, result and cancel at ``owner/app/requests/{id}`` only; ``IN_QUEUE`` with
``queue_position``, ``IN_PROGRESS`` with ``logs``, ``COMPLETED`` with ``logs`` and ``metrics``
(HTTP 202 until complete, then 200); a failed request is ``COMPLETED`` with ``error`` and
``error_type``. It accepts ``Authorization: Key <api_key>`` only (401 ``{"detail"}``
otherwise). The queue takes any JSON object; the app checks it when it runs, so schema
violations come back from the result URL as ``422 {"detail": [...]}`` (see ``fake_apps``).
Results are in each app's own shape, with image URLs served by the fake itself.

Faults (``state.fake.next_fault()``, taken at the start of every queue call):

- on any call: ``rate_limit`` 429 (``Retry-After`` when the fault has a wait), ``quota`` 403
  "User is locked. Reason: Exhausted balance", ``auth`` 401, ``server_error`` the fault's
  status (503/504 carry fal's ``error_type``; ``code`` sets one), ``malformed`` 200 HTML,
  ``hang`` no answer until the client goes;
- on the request (taken at submit, or at a later status/result call): ``task_failed``
  (``COMPLETED`` with ``error``; ``code`` is the ``error_type``, none by default),
  ``slow_task`` (``seconds`` longer), ``hang`` at submit (the status never completes),
  ``no_image``, ``bad_image``, ``content_refused`` (422 ``content_policy_violation``, or with
  ``code="nsfw_output"`` images flagged in ``has_nsfw_concepts``), ``invalid_input`` (422).
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from tryon_core.testing import FakeState, FakeTask, Fault, create_fake_app
from tryon_fal.fake_apps import (
    APPS,
    AppSchema,
    Checked,
    Resolve,
    check_input,
    image_size,
    output_json,
    person_and_garments,
    render_image,
)

__all__ = ["TEST_KEY", "create_app"]

TEST_KEY = "test-key"
EXHAUSTED = (
    "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
)
_CALL_FAULTS = frozenset({"rate_limit", "quota", "auth", "server_error", "malformed"})
_RESULT_FAULTS = frozenset({"no_image", "bad_image", "content_refused", "invalid_input"})
_STATUS_ERROR_TYPES = {503: "runner_scheduling_failure", 504: "request_timeout"}
_NOT_AN_IMAGE = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

AnyRequest = Request[Any, Any, Any]


@dataclass(frozen=True)
class _Options:
    api_key: str
    queue_seconds: float
    run_seconds: float
    public_url: str | None


def create_app(
    *,
    api_key: str = TEST_KEY,
    queue_seconds: float = 0.05,
    run_seconds: float = 0.05,
    public_url: str | None = None,
) -> Litestar:
    """The fake queue. A request waits ``queue_seconds`` in the queue, then runs
    ``run_seconds``; ``public_url`` replaces the origin written into status/result URLs (as a
    fal behind another host name would), by default the URL the client reached."""
    options = _Options(api_key, queue_seconds, run_seconds, public_url)
    handlers: list[HTTPRouteHandler] = [_submit(eid, options) for eid in APPS]
    for app in sorted({_app(eid) for eid in APPS}):
        handlers += _request_routes(app, options)
    return create_fake_app(
        handlers,
        exception_handlers={
            NotFoundException: _not_found,
            MethodNotAllowedException: _not_found,
        },
    )


def _app(endpoint_id: str) -> str:
    return "/".join(endpoint_id.split("/")[:2])


def _submit(endpoint_id: str, options: _Options) -> HTTPRouteHandler:
    schema = APPS[endpoint_id]

    async def submit(request: AnyRequest, state: State) -> Response[Any]:
        fake: FakeState = state.fake
        body = await request.body()
        summary: dict[str, Any] = {"call": "submit", "endpoint": endpoint_id}
        refused = _refuse(request, options)
        if refused is not None:
            fake.record(request, body, **summary, refused="auth")
            return refused
        fault = fake.next_fault()
        if fault is not None and (fault.kind in _CALL_FAULTS):
            fake.record(request, body, **summary, fault=fault.kind)
            return _call_fault(fault)
        try:
            payload = msgspec.json.decode(body)
        except msgspec.DecodeError:
            payload = None
        if not isinstance(payload, dict):
            fake.record(request, body, **summary, errors=["model_attributes_type"])
            detail = [
                {
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary or object",
                    "type": "model_attributes_type",
                    "input": None,
                }
            ]
            return _json({"detail": detail}, 422)
        base = _base(request, options)
        checked = await asyncio.to_thread(check_input, schema, payload, _resolver(fake, request))
        task = _new_task(fake, endpoint_id, schema, checked, options, fault)
        fake.record(
            request,
            body,
            **summary,
            request_id=task.id,
            content_type=request.headers.get("content-type"),
            fields=checked.fields,
            images=checked.images_seen,
            unknown_fields=checked.unknown,
            errors=[e["type"] for e in checked.errors],
            fault=None if fault is None else fault.kind,
        )
        return _json(
            {"status": "IN_QUEUE", **_urls(base, task), "queue_position": _position(fake, task)},
            200,
        )

    return post(f"/{endpoint_id}", status_code=200, name=f"submit {endpoint_id}")(submit)


def _new_task(
    fake: FakeState,
    endpoint_id: str,
    schema: AppSchema,
    checked: Checked,
    options: _Options,
    fault: Fault | None,
) -> FakeTask:
    loop = asyncio.get_running_loop()
    slow = fault.seconds if fault is not None and fault.kind == "slow_task" else 0.0
    task = fake.new_task(
        delay=options.queue_seconds + options.run_seconds + slow,
        endpoint=endpoint_id,
        app=_app(endpoint_id),
        images=person_and_garments(schema, checked.images),
        errors=checked.errors,
        fields=checked.fields,
        queued_until=loop.time() + options.queue_seconds,
        stuck=fault is not None and fault.kind == "hang",
        fault=fault if fault is not None and fault.kind in _RESULT_FAULTS else None,
    )
    if fault is not None and fault.kind == "task_failed":
        _fail_task(task, fault)
    return task


def _fail_task(task: FakeTask, fault: Fault) -> None:
    task.status = "failed"
    task.error = "Unexpected error while processing the request."
    task.data["error_type"] = fault.code
    task.data["fault"] = None


def _request_routes(app: str, options: _Options) -> list[HTTPRouteHandler]:
    root = f"/{app}/requests/{{request_id:str}}"

    async def status(request: AnyRequest, state: State, request_id: FromPath[str]) -> Response[Any]:
        fake: FakeState = state.fake
        found = await _follow(request, fake, app, request_id, options, "status")
        if isinstance(found, Response):
            return found
        task = found
        loop = asyncio.get_running_loop()
        common = _urls(_base(request, options), task)
        logs = _logs() if request.query_params.get("logs") in ("1", "true", "True") else None
        if not _done(task):
            if loop.time() < task.data["queued_until"]:
                position = _position(fake, task)
                return _json({"status": "IN_QUEUE", **common, "queue_position": position}, 202)
            return _json({"status": "IN_PROGRESS", **common, "logs": logs}, 202)
        body: dict[str, Any] = {
            "status": "COMPLETED",
            **common,
            "logs": logs,
            "metrics": {"inference_time": options.run_seconds},
        }
        if task.status == "failed":
            body.update(error=task.error, error_type=task.data.get("error_type"))
        return _json(body, 200)

    async def result(request: AnyRequest, state: State, request_id: FromPath[str]) -> Response[Any]:
        fake: FakeState = state.fake
        found = await _follow(request, fake, app, request_id, options, "result")
        if isinstance(found, Response):
            return found
        task = found
        if not _done(task):
            return _json({"detail": "Request is still in progress"}, 400)
        if task.status == "failed":
            return _failed_result(task)
        if task.data["errors"]:
            return _json({"detail": task.data["errors"]}, 422)
        return await _output(request, fake, task)

    async def cancel(request: AnyRequest, state: State, request_id: FromPath[str]) -> Response[Any]:
        fake: FakeState = state.fake
        found = await _follow(request, fake, app, request_id, options, "cancel")
        if isinstance(found, Response):
            return _json({"status": "NOT_FOUND"}, 404) if found.status_code == 404 else found
        if _done(found):
            return _json({"status": "ALREADY_COMPLETED"}, 400)
        found.status = "failed"
        found.error = "Request was cancelled."
        found.ready_at = asyncio.get_running_loop().time()
        found.data["stuck"] = False
        return _json({"status": "CANCELLATION_REQUESTED"}, 202)

    return [
        get(f"{root}/status", name=f"status {app}")(status),
        get(root, name=f"result {app}")(result),
        put(f"{root}/cancel", status_code=202, name=f"cancel {app}")(cancel),
    ]


async def _follow(
    request: AnyRequest,
    fake: FakeState,
    app: str,
    request_id: str,
    options: _Options,
    call: str,
) -> FakeTask | Response[Any]:
    """The task a status/result/cancel call is about, or the answer that ends the call."""
    summary: dict[str, Any] = {"call": call, "app": app, "request_id": request_id}
    if call == "status":
        summary["logs"] = request.query_params.get("logs")
    refused = _refuse(request, options)
    if refused is not None:
        fake.record(request, b"", **summary, refused="auth")
        return refused
    fault = fake.next_fault()
    fake.record(request, b"", **summary, fault=None if fault is None else fault.kind)
    if fault is not None and fault.kind in _CALL_FAULTS:
        return _call_fault(fault)
    if fault is not None and fault.kind == "hang":
        await _hang(request)
        return Response(b"", status_code=499)
    task = fake.tasks.get(request_id)
    if task is None or task.data["app"] != app:
        return _json({"detail": f"Request {request_id} not found"}, 404)
    if fault is not None:
        await _apply(task, fault, call)
    if call == "status":
        task.polls += 1
    return task


async def _apply(task: FakeTask, fault: Fault, call: str) -> None:
    """A request-level fault taken after the request was queued."""
    loop = asyncio.get_running_loop()
    if fault.kind == "task_failed":
        _fail_task(task, fault)
    elif fault.kind == "slow_task" and call == "result":
        await asyncio.sleep(fault.seconds)
    elif fault.kind == "slow_task":
        task.ready_at = max(task.ready_at, loop.time() + fault.seconds)
    else:
        task.data["fault"] = fault


def _done(task: FakeTask) -> bool:
    if task.data["stuck"]:
        return False
    return asyncio.get_running_loop().time() >= task.ready_at


def _failed_result(task: FakeTask) -> Response[Any]:
    error_type = task.data.get("error_type")
    status = 500
    if error_type in ("request_timeout", "startup_timeout"):
        status = 504
    elif isinstance(error_type, str) and error_type.startswith("runner_"):
        status = 503
    body: dict[str, Any] = {"detail": task.error}
    headers = {}
    if error_type:
        body["error_type"] = error_type
        headers["X-Fal-Error-Type"] = error_type
    return _json(body, status, headers)


async def _output(request: AnyRequest, fake: FakeState, task: FakeTask) -> Response[Any]:
    schema = APPS[task.data["endpoint"]]
    fields: dict[str, Any] = task.data["fields"]
    fault: Fault | None = task.data.get("fault")
    kind = None if fault is None else fault.kind
    if kind == "invalid_input":
        item = {
            "loc": ["body", schema.person],
            "msg": "Could not detect a person in the image.",
            "type": fault.code if fault and fault.code else "face_detection_error",
        }
        return _json({"detail": [item]}, 422)
    flagged = kind == "content_refused" and fault is not None and fault.code == "nsfw_output"
    if kind == "content_refused" and not (flagged and schema.nsfw):
        item = {
            "loc": ["body", schema.person],
            "msg": "The content could not be processed because it contained material flagged "
            "by a content checker.",
            "type": "content_policy_violation",
            "url": "https://docs.fal.ai/errors#content_policy_violation",
            "categories": ["sexual"],
        }
        return _json({"detail": [item]}, 422)
    fmt = fields.get(schema.format_field or "", schema.default_format)
    count = fields.get(schema.count or "", 1) if schema.output == "images" else 1
    files: list[dict[str, Any]] = []
    if kind != "no_image":
        files = await _files(
            request, fake, task, fmt, count, bad=kind == "bad_image", black=flagged
        )
    return _json(output_json(schema, fields, files, flagged), 200)


async def _files(
    request: AnyRequest,
    fake: FakeState,
    task: FakeTask,
    fmt: str,
    count: int,
    *,
    bad: bool,
    black: bool,
) -> list[dict[str, Any]]:
    images: list[bytes] = task.data["images"]
    content_type = "image/png" if fmt == "png" else "image/jpeg"
    files = []
    for variant in range(count):
        if bad:
            data = _NOT_AN_IMAGE
        else:
            data = await asyncio.to_thread(
                render_image, images[0], images[1:], fmt=fmt, variant=variant, black=black
            )
        file_id = fake.store(data, content_type)
        task.result.append(file_id)
        width, height = image_size(data)
        files.append(
            {
                "url": f"{str(request.base_url).rstrip('/')}/_fake/files/{file_id}",
                "content_type": content_type,
                "file_name": f"{file_id}.{'png' if fmt == 'png' else 'jpg'}",
                "file_size": len(data),
                "width": width,
                "height": height,
            }
        )
    return files


def _refuse(request: AnyRequest, options: _Options) -> Response[Any] | None:
    header = request.headers.get("authorization")
    if header is None:
        return _json({"detail": "Missing authorization header."}, 401)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "key" or token != options.api_key:  # schemes are case-insensitive
        return _json({"detail": "Invalid authorization credentials."}, 401)
    return None


def _call_fault(fault: Fault) -> Response[Any]:
    if fault.kind == "rate_limit":
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        detail = "Too many concurrent requests: this key's concurrency limit is reached."
        return _json({"detail": detail}, 429, headers)
    if fault.kind == "quota":
        return _json({"detail": EXHAUSTED}, 403)
    if fault.kind == "auth":
        return _json({"detail": "Invalid authorization credentials."}, 401)
    if fault.kind == "malformed":
        page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
        return Response(page, status_code=200, media_type="text/html")
    error_type = fault.code or _STATUS_ERROR_TYPES.get(fault.status)
    if error_type is None:
        return _json({"detail": "Internal Server Error"}, fault.status)
    body = {"detail": "The request could not be processed.", "error_type": error_type}
    return _json(body, fault.status, {"X-Fal-Error-Type": error_type})


async def _hang(request: AnyRequest) -> None:
    """Never answer; stop waiting when the client hangs up (so the server can shut down)."""

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    waits = [asyncio.ensure_future(FakeState.hang()), asyncio.ensure_future(gone())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _resolver(fake: FakeState, request: AnyRequest) -> Resolve:
    prefix = f"{str(request.base_url).rstrip('/')}/_fake/files/"

    def resolve(url: str) -> bytes | None:
        found = fake.files.get(url[len(prefix) :]) if url.startswith(prefix) else None
        return None if found is None else found[0]

    return resolve


def _base(request: AnyRequest, options: _Options) -> str:
    return (options.public_url or str(request.base_url)).rstrip("/")


def _urls(base: str, task: FakeTask) -> dict[str, str]:
    root = f"{base}/{task.data['app']}/requests/{task.id}"
    return {
        "request_id": task.id,
        "response_url": root,
        "status_url": f"{root}/status",
        "cancel_url": f"{root}/cancel",
    }


def _position(fake: FakeState, task: FakeTask) -> int:
    now = asyncio.get_running_loop().time()
    return sum(
        1
        for other in fake.tasks.values()
        if other.id != task.id
        and other.data["queued_until"] > now
        and other.data["queued_until"] < task.data["queued_until"]
    )


def _logs() -> list[dict[str, str]]:
    stamp = datetime.datetime.now(datetime.UTC).isoformat()
    return [{"message": "Running inference", "level": "INFO", "source": "user", "timestamp": stamp}]


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(body, status_code=status, headers=headers or {}, media_type="application/json")


def _not_found(request: AnyRequest, exc: Exception) -> Response[Any]:
    status = 405 if isinstance(exc, MethodNotAllowedException) else 404
    return _json({"detail": "Not Found" if status == 404 else "Method Not Allowed"}, status)
