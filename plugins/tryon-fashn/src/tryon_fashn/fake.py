"""A fake FASHN API for tests and ``tryon fakes serve``: ``/v1/run`` and ``/v1/status/{id}``.

It checks what it receives as FASHN does and answers in FASHN's shapes (WIRE.md section 5,
the official ``fashn`` SDK's types):

- ``Authorization: Bearer <api_key>`` exactly, else 401 ``UnauthorizedAccess``.
- ``POST /v1/run``: a JSON object ``{"model_name", "inputs"}`` (``tryon-v1.6`` or
  ``tryon-v1.5``), with ``model_image`` and ``garment_image`` strings and the documented
  optional inputs, each of its type and values (:mod:`tryon_fashn.fake_inputs`); else 400
  ``BadRequest``. Stricter than FASHN on one point: an unknown field is refused, so that a
  misspelt option cannot pass unseen. ``?webhook_url=`` is accepted and noted, never called.
  Answers ``{"id", "error": null}``.
- ``GET /v1/status/{id}``: ``starting`` -> ``in_queue`` -> ``processing`` -> ``completed``
  with ``output`` (``num_samples`` images in ``output_format``: data URIs when
  ``return_base64``, else links the fake serves), or ``failed`` with ``error {name,
  message}``. An image that is not a ``data:image/...;base64,`` URL of a JPEG, PNG or WebP of
  the type it names fails the prediction with ``ImageLoadError`` (the fake downloads no URLs).
  A finished prediction's answer carries ``x-fashn-credits-used``. Unknown id: 404
  ``NotFound``.
- Any other path: 404 ``NotFound``.

Test key: ``test-key``. Faults, on whichever call meets them first: ``rate_limit`` 429
``RateLimitExceeded`` (``code="ConcurrencyLimitExceeded"``; ``Retry-After`` only when the
fault has ``retry_after``), ``quota`` 429 ``OutOfCredits``, ``auth`` 401, ``server_error``
the fault's status with ``InternalServerError``, ``hang``, ``malformed`` (a 200 HTML page;
``code="shape"``: JSON without the fields), ``invalid_input`` 400 ``BadRequest`` (or, with a
runtime error name as ``code``, e.g. ``PoseError``, the prediction fails with it); on the
prediction: ``content_refused`` (``ContentModerationError``), ``task_failed``
(``PipelineError``; ``code`` another error name, or ``canceled`` / ``time_out``),
``slow_task``, ``no_image`` (``completed`` with an empty output), ``bad_image`` (an output that
is not an image).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import uuid
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.params import FromPath

from tryon_core.testing import FakeState, FakeTask, Fault, create_fake_app, file_url, result_image
from tryon_fashn.fake_inputs import check_run, load_image

__all__ = ["RUNTIME_NAMES", "TEST_API_KEY", "create_app"]

TEST_API_KEY = "test-key"
RUNTIME_NAMES = (
    "ImageLoadError",
    "ContentModerationError",
    "PoseError",
    "LoRALoadError",
    "InputValidationError",
    "PipelineError",
    "ThirdPartyError",
    "3rdPartyProviderError",
    "InternalServerError",
    "PollingTimeout",
)
TASK_FAULTS = ("content_refused", "task_failed", "slow_task", "no_image", "bad_image")
MESSAGES = {
    "ContentModerationError": "Prohibited content detected in the garment image.",
    "PoseError": "Unable to detect body pose in the model image.",
    "PipelineError": "Unexpected pipeline execution error.",
}


class FashnFake:
    """The fake's settings: the key it accepts and how long predictions run."""

    def __init__(self, api_key: str, running_polls: int) -> None:
        self.api_key = api_key
        self.running_polls = running_polls


def create_app(*, api_key: str = TEST_API_KEY, running_polls: int = 2) -> Litestar:
    """The fake. ``running_polls``: status queries that see the prediction still running
    (the first ``in_queue``, the others ``processing``) before it ends."""
    app = create_fake_app(
        [run, status],
        exception_handlers={NotFoundException: _not_found, MethodNotAllowedException: _not_found},
    )
    app.state.fashn = FashnFake(api_key, running_polls)
    return app


def _error(
    status: int, name: str, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response({"error": name, "message": message}, status_code=status, headers=headers)


def _not_found(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _error(404, "NotFound", "Resource not found.")


def _is_task_fault(fault: Fault) -> bool:
    return fault.kind in TASK_FAULTS or (
        fault.kind == "invalid_input" and fault.code in RUNTIME_NAMES
    )


async def _refusal(
    request: Request[Any, Any, Any], state: State, fault: Fault | None
) -> Response[Any] | None:
    """The answer a call-level fault or a wrong key gives this call, if any."""
    if fault is not None and fault.kind == "hang":
        await FakeState.hang()
    if (fault is not None and fault.kind == "auth") or request.headers.get(
        "authorization"
    ) != f"Bearer {state.fashn.api_key}":
        return _error(401, "UnauthorizedAccess", "Unauthorized: Invalid token")
    if fault is None or _is_task_fault(fault):
        return None
    if fault.kind == "rate_limit":
        wait = fault.retry_after
        headers = {"Retry-After": str(math.ceil(wait))} if wait is not None else None
        if fault.code == "ConcurrencyLimitExceeded":
            return _error(429, fault.code, "Concurrency limit exceeded.", headers)
        return _error(429, "RateLimitExceeded", "Rate limit exceeded.", headers)
    if fault.kind == "quota":
        return _error(429, "OutOfCredits", "You have run out of API credits.")
    if fault.kind == "server_error":
        return _error(fault.status, "InternalServerError", "Internal server error.")
    if fault.kind == "malformed":
        if fault.code == "shape":
            return Response({"ok": True})
        return Response("<html>502 Bad Gateway</html>", media_type="text/html")
    assert fault.kind == "invalid_input"
    return _error(400, "BadRequest", "The request is invalid.")


@post("/v1/run", status_code=200)
async def run(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    fake: FakeState = state.fake
    raw = await request.body()
    fake.record(request, raw)  # first: a refused or hanging call is counted too
    note = fake.requests[-1].summary
    fault = fake.next_fault()
    refused = await _refusal(request, state, fault)
    if refused is not None:
        note["refused"] = refused.status_code
        return refused
    if not request.headers.get("content-type", "").startswith("application/json"):
        note["refused"] = "content-type"
        return _error(400, "BadRequest", "Content-Type must be application/json.")
    try:
        checked = check_run(json.loads(raw))
    except ValueError:
        checked = "Request body is not valid JSON."
    if isinstance(checked, str):
        note["refused"] = checked
        return _error(400, "BadRequest", checked)
    model_name, inputs = checked
    task = await _new_prediction(fake, model_name, inputs)
    if fault is not None:
        _shape(task, fault)
    note.update(
        model_name=model_name,
        inputs={k: v for k, v in inputs.items() if k not in ("model_image", "garment_image")},
        images={k: task.data[k] for k in ("model_image", "garment_image")},
        id=task.id,
    )
    if request.query_params.get("webhook_url"):
        note["webhook_url"] = request.query_params["webhook_url"]
    return Response({"id": task.id, "error": None})


async def _new_prediction(fake: FakeState, model_name: str, inputs: dict[str, Any]) -> FakeTask:
    """A prediction with FASHN's id shape; its images loaded as the pipeline would."""
    loaded = {}
    for field in ("model_image", "garment_image"):
        loaded[field] = await asyncio.to_thread(load_image, inputs[field], field)
    task = fake.new_task(model_name=model_name, inputs=inputs)
    del fake.tasks[task.id]
    task.id = f"{uuid.uuid4()}-u1"
    task.status = "starting"
    fake.tasks[task.id] = task
    for field, result in loaded.items():
        if isinstance(result, str):
            task.data.setdefault("load_error", result)
            task.data[field] = "unreadable"
        else:
            task.data[f"{field}_bytes"], task.data[field] = result
    return task


def _shape(task: FakeTask, fault: Fault) -> None:
    """Apply a prediction-level fault to a prediction that has not ended."""
    if task.status in ("starting", "in_queue", "processing") and _is_task_fault(fault):
        task.data["fault"] = fault
        if fault.kind == "slow_task":
            task.ready_at = asyncio.get_running_loop().time() + fault.seconds


@get("/v1/status/{prediction_id:str}")
async def status(
    request: Request[Any, Any, Any], state: State, prediction_id: FromPath[str]
) -> Response[Any]:
    fake: FakeState = state.fake
    task = fake.tasks.get(prediction_id)
    fake.record(request, b"", id=prediction_id, found=task is not None)
    fault = fake.next_fault()
    refused = await _refusal(request, state, fault)
    if refused is not None:
        return refused
    if task is None:
        return _error(404, "NotFound", f"Prediction {prediction_id} not found.")
    if fault is not None:
        _shape(task, fault)
    await _advance(task, request, state)
    answer: dict[str, Any] = {"id": task.id, "status": task.status, "output": None, "error": None}
    headers = None
    if task.status == "completed":
        answer["output"] = task.result
        headers = {"x-fashn-credits-used": str(len(task.result))}
    elif task.status in ("failed", "canceled", "time_out"):
        if task.error is not None:
            answer["error"] = {"name": task.error, "message": task.data["message"]}
        headers = {"x-fashn-credits-used": "0"}
    return Response(answer, headers=headers)


async def _advance(task: FakeTask, request: Request[Any, Any, Any], state: State) -> None:
    """One status query's worth of progress: queued, processing for a while, then the end."""
    if task.status not in ("starting", "in_queue", "processing"):
        return
    task.polls += 1
    running = asyncio.get_running_loop().time() < task.ready_at
    if task.polls <= state.fashn.running_polls or running:
        task.status = "in_queue" if task.polls == 1 else "processing"
    else:
        await _finish(task, request, state.fake)


async def _finish(task: FakeTask, request: Request[Any, Any, Any], fake: FakeState) -> None:
    fault: Fault | None = task.data.get("fault")
    kind = fault.kind if fault is not None else None
    failure: tuple[str, str | None, str] | None = None
    if "load_error" in task.data:
        failure = ("failed", "ImageLoadError", task.data["load_error"])
    elif kind == "content_refused":
        failure = ("failed", "ContentModerationError", MESSAGES["ContentModerationError"])
    elif kind in ("task_failed", "invalid_input") and fault is not None:
        failure = _runtime_failure(fault)
    if failure is not None:
        task.status, task.error, task.data["message"] = failure
        return
    task.status = "completed"
    if kind == "no_image":
        return
    inputs = task.data["inputs"]
    fmt = inputs.get("output_format", "png")
    if kind == "bad_image":
        made = [b"<html>not an image</html>"]
    else:
        person, garment = task.data["model_image_bytes"], task.data["garment_image_bytes"]
        made = await asyncio.to_thread(
            lambda: [
                result_image(person, [garment], output_format=fmt, variant=i)
                for i in range(inputs.get("num_samples", 1))
            ]
        )
    mime = f"image/{fmt}"
    if inputs.get("return_base64", False):
        task.result = [f"data:{mime};base64,{base64.b64encode(m).decode()}" for m in made]
    else:
        task.result = [file_url(request, fake.store(m, mime)) for m in made]


def _runtime_failure(fault: Fault) -> tuple[str, str | None, str]:
    """(status, error name, message) of a prediction that a fault makes fail."""
    if fault.code == "canceled":
        return "canceled", None, "The prediction was canceled."
    if fault.code == "time_out":
        return "time_out", "PollingTimeout", "The prediction timed out."
    name = fault.code if fault.code in RUNTIME_NAMES else "PipelineError"
    return "failed", name, MESSAGES.get(name, f"{name} (injected by the fake).")
