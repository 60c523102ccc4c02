"""A fake of Replicate's predictions API for tests and ``tryon fakes serve``.

It speaks the protocol of ``tryon_replicate.predictions`` as Replicate does, and checks what
Replicate checks:

- ``Authorization: Bearer <api_token>``, else 401 ``Unauthenticated`` (a problem+json);
- the create body: a JSON object with ``input`` (an object) and, on ``/v1/predictions``,
  ``version``; no other keys than Replicate's (``webhook``, ``webhook_completed``,
  ``webhook_events_filter``, ``stream``); an unknown version is 422 "Invalid version or not
  permitted", an unknown model or deployment 404; ``Prefer`` must be ``wait`` or ``wait=1``
  to ``wait=60``;
- the input against the model's schema (``fake_models``): 422 "Input validation failed"
  with ``invalid_fields``.

A prediction is ``starting`` for ``starting_polls`` polls, then ``processing`` (for one poll at
least) until it has run ``run_seconds``, then ``succeeded`` with its output: links to images the
fake serves itself (``result_image`` of the photos). With ``Prefer: wait=N`` the create call is
held until the prediction is done (the output then comes as data URLs, status ``processing``, as
Replicate's sync mode answers) or N seconds have passed (status ``starting``). ``POST …/cancel``
cancels a running prediction and returns it; an ended one is returned as it is.

Faults (``state.fake.next_fault()``, taken at the start of every API call):

- that call's answer: ``rate_limit`` 429 (``Retry-After`` when the fault has a wait),
  ``quota`` 402 "Insufficient credit", ``auth`` 401, ``server_error`` the fault's status,
  ``malformed`` a 200 HTML page, ``hang`` no answer, ``invalid_input`` 422 on the person
  input;
- the prediction's (created or polled): ``task_failed`` (``failed``; ``code`` is the error
  text), ``content_refused`` (``failed`` with the safety checker's "NSFW content detected"),
  ``slow_task`` (``seconds`` longer), ``no_image`` (``succeeded``, output null),
  ``bad_image`` (a link to bytes that are not an image).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import math
import re
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.params import FromPath

from tryon_core.testing import FakeState, FakeTask, Fault, create_fake_app, result_image
from tryon_replicate.fake_models import CATALOG, FakeModel, check_input, openapi_schema

__all__ = ["TEST_TOKEN", "create_app"]

TEST_TOKEN = "r8_test-token"
CREATE_KEYS = frozenset(
    {"input", "webhook", "webhook_completed", "webhook_events_filter", "stream"}
)
NSFW = "NSFW content detected. Try running it again, or try a different prompt."
FAILED = "RuntimeError: CUDA error: out of memory"
_PREFER = re.compile(r"^wait(=([1-9]|[1-5][0-9]|60))?$")
_CALL_FAULTS = frozenset({"rate_limit", "quota", "auth", "server_error", "malformed"})
_TASK_FAULTS = frozenset({"task_failed", "content_refused", "slow_task", "no_image", "bad_image"})
_NOT_AN_IMAGE = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

AnyRequest = Request[Any, Any, Any]


@dataclass(frozen=True)
class _Options:
    api_token: str
    starting_polls: int
    run_seconds: float
    public_url: str | None
    models: tuple[FakeModel, ...]


class _Refused(Exception):
    """Ends a call with Replicate's answer."""

    def __init__(self, answer: Response[Any]) -> None:
        self.answer = answer


def create_app(
    *,
    api_token: str = TEST_TOKEN,
    starting_polls: int = 1,
    run_seconds: float = 0.05,
    public_url: str | None = None,
    models: tuple[FakeModel, ...] = CATALOG,
) -> Litestar:
    """The fake API. ``public_url`` replaces the origin of the links it answers with (as an
    API behind another host name would), by default the URL the client reached."""
    app = create_fake_app(
        [
            create_by_version,
            create_by_model,
            create_by_deployment,
            get_prediction,
            cancel,
            get_version,
        ],
        exception_handlers={
            NotFoundException: _not_found,
            MethodNotAllowedException: _not_found,
        },
    )
    app.state.replicate = _Options(api_token, starting_polls, run_seconds, public_url, models)
    return app


# -- routes --------------------------------------------------------------------------------------


@post("/v1/predictions", status_code=201)
async def create_by_version(request: AnyRequest, state: State) -> Response[Any]:
    return await _create(request, state, route=("version", ""))


@post("/v1/models/{owner:str}/{name:str}/predictions", status_code=201)
async def create_by_model(
    request: AnyRequest, state: State, owner: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    return await _create(request, state, route=("model", f"{owner}/{name}"))


@post("/v1/deployments/{owner:str}/{name:str}/predictions", status_code=201)
async def create_by_deployment(
    request: AnyRequest, state: State, owner: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    return await _create(request, state, route=("deployment", f"{owner}/{name}"))


@get("/v1/predictions/{prediction_id:str}")
async def get_prediction(
    request: AnyRequest, state: State, prediction_id: FromPath[str]
) -> Response[Any]:
    fake: FakeState = state.fake
    fake.record(request, b"", call="get", prediction_id=prediction_id)
    try:
        task = await _follow(request, state, prediction_id)
    except _Refused as refused:
        return refused.answer
    task.polls += 1
    await _advance(task, state.replicate, fake)
    return _json(_prediction(task, _base(request, state.replicate)), 200)


@get("/v1/models/{owner:str}/{name:str}/versions/{version_id:str}")
async def get_version(
    request: AnyRequest,
    state: State,
    owner: FromPath[str],
    name: FromPath[str],
    version_id: FromPath[str],
) -> Response[Any]:
    """A model version (the official client reads it to know the output's type)."""
    fake: FakeState = state.fake
    fake.record(request, b"", call="version", target=f"{owner}/{name}", version=version_id)
    try:
        await _call_fault(request, state)
    except _Refused as refused:
        return refused.answer
    options: _Options = state.replicate
    found = (m for m in options.models if m.ref == f"{owner}/{name}" and m.version == version_id)
    model = next(found, None)
    if model is None:
        return _problem(404, "Not found", "The requested resource could not be found.")
    version = {
        "id": model.version,
        "created_at": "2024-07-30T00:00:00.000000Z",
        "cog_version": "0.9.6",
        "openapi_schema": openapi_schema(model),
    }
    return _json(version, 200)


@post("/v1/predictions/{prediction_id:str}/cancel", status_code=200)
async def cancel(request: AnyRequest, state: State, prediction_id: FromPath[str]) -> Response[Any]:
    fake: FakeState = state.fake
    fake.record(request, await request.body(), call="cancel", prediction_id=prediction_id)
    try:
        task = await _follow(request, state, prediction_id)
    except _Refused as refused:
        return refused.answer
    await _advance(task, state.replicate, fake)
    if task.status in ("starting", "processing"):
        task.status = "canceled"
        task.data["completed_at"] = _now()
    return _json(_prediction(task, _base(request, state.replicate)), 200)


# -- create --------------------------------------------------------------------------------------


async def _create(request: AnyRequest, state: State, *, route: tuple[str, str]) -> Response[Any]:
    fake: FakeState = state.fake
    options: _Options = state.replicate
    body = await request.body()
    fake.record(request, body, call="create", route=route[0], target=route[1])
    summary = fake.requests[-1].summary
    try:
        fault = await _call_fault(request, state)
        model, payload = _resolve(options, route, body)
        wait = _prefer(request)
        if fault is not None and fault.kind == "invalid_input":
            raise _Refused(_input_rejected(model, fault))
        problems, files = check_input(model, payload["input"])
        summary.update(
            inputs=sorted(payload["input"]),
            unknown_inputs=sorted(set(payload["input"]) - set(model.inputs)),
            files={name: len(data) for name, data in files.items()},
            prefer=request.headers.get("prefer"),
            errors=[p["type"] for p in problems],
        )
        if problems:
            raise _Refused(_input_rejected(model, None, problems))
    except _Refused as refused:
        summary.setdefault("refused", refused.answer.status_code)
        return refused.answer
    task = _new_task(fake, options, model, payload, files, fault)
    summary["prediction_id"] = task.id
    headers: dict[str, str] = {}
    if wait is not None:
        headers["Preference-Applied"] = request.headers["prefer"]
        answer = await _hold(task, options, fake, wait, _base(request, options))
        if answer is not None:
            return _json(answer, 201, headers)
    return _json(_prediction(task, _base(request, options)), 201, headers)


def _resolve(options: _Options, route: tuple[str, str], body: bytes) -> tuple[FakeModel, Any]:
    """The model a create call runs and its parsed body, or the refusal Replicate answers."""
    try:
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError:
        words = "The request body is not valid JSON."
        raise _Refused(_problem(400, "Invalid JSON", words)) from None
    if not isinstance(payload, dict):
        raise _Refused(_problem(400, "Invalid JSON", "The request body must be a JSON object."))
    allowed = CREATE_KEYS | ({"version"} if route[0] == "version" else set())
    for key in payload:
        if key not in allowed:
            words = f"Additional property {key} is not allowed"
            items = [("additional_property", "(root)", words)]
            raise _Refused(_validation("Invalid request", items))
    for key in ("input", "version") if route[0] == "version" else ("input",):
        if key not in payload:
            items = [("required", "(root)", f"{key} is required")]
            raise _Refused(_validation("Invalid request", items))
    if not isinstance(payload["input"], dict):
        words = "Invalid type. Expected: object, given: " + type(payload["input"]).__name__
        raise _Refused(_validation("Input validation failed", [("invalid_type", "input", words)]))
    kind, target = route
    if kind == "version":
        model = next((m for m in options.models if m.version == payload["version"]), None)
        if model is None:
            raise _Refused(
                _problem(
                    422,
                    "Invalid version or not permitted",
                    "The specified version does not exist (or perhaps you don't have permission "
                    "to use it?)",
                )
            )
        return model, payload
    if kind == "model":
        model = next((m for m in options.models if m.ref == target and m.by_name), None)
    else:
        model = next((m for m in options.models if target in m.deployments), None)
    if model is None:
        raise _Refused(_problem(404, "Not found", "The requested resource could not be found."))
    return model, payload


def _prefer(request: AnyRequest) -> int | None:
    """Seconds of ``Prefer: wait`` (60 for a bare ``wait``), None without the header."""
    prefer = request.headers.get("prefer")
    if prefer is None:
        return None
    if not _PREFER.match(prefer.strip()):
        raise _Refused(_problem(400, "Invalid Prefer header", "Prefer must be wait or wait=1..60."))
    _, _, seconds = prefer.strip().partition("=")
    return int(seconds) if seconds else 60


def _new_task(
    fake: FakeState,
    options: _Options,
    model: FakeModel,
    payload: dict[str, Any],
    files: dict[str, bytes],
    fault: Fault | None,
) -> FakeTask:
    model_input = payload["input"]
    slow = fault.seconds if fault is not None and fault.kind == "slow_task" else 0.0
    count = model_input.get(model.count, 1) if model.count else 1
    task = fake.new_task(
        delay=options.run_seconds + slow,
        model=model,
        input=model_input,
        person=files.get(model.person, b""),
        garment=files.get(model.garment, b""),
        count=count,
        created_at=_now(),
        fault=None,
    )
    task.status = "starting"
    if fault is not None and fault.kind in _TASK_FAULTS:
        task.data["fault"] = fault
    return task


async def _hold(
    task: FakeTask, options: _Options, fake: FakeState, wait: int, base: str
) -> dict[str, Any] | None:
    """Sync mode: the answer once the prediction is done within ``wait`` seconds, else None."""
    loop = asyncio.get_running_loop()
    until = min(task.ready_at, loop.time() + wait)
    # asyncio may run a timer a hair early; a millisecond more makes "done" certain
    await asyncio.sleep(max(0.0, until - loop.time()) + 0.001)
    task.polls = max(task.polls, options.starting_polls + 1)  # a held call skips "starting"
    if task.status == "starting":
        task.status = "processing"
        task.data.setdefault("started_at", _now())
    await _advance(task, options, fake)
    if task.status in ("starting", "processing"):
        task.status = "starting"  # Replicate answers a wait that ran out as "starting"
        return None
    answer = _prediction(task, base)
    if task.status == "succeeded" and task.data.get("data_urls") is not None:
        answer.update(status="processing", output=_shape(task, task.data["data_urls"]))
        answer["completed_at"] = None
    return answer


# -- the prediction's life -----------------------------------------------------------------------


async def _follow(request: AnyRequest, state: State, prediction_id: str) -> FakeTask:
    fault = await _call_fault(request, state)
    fake: FakeState = state.fake
    task = fake.tasks.get(prediction_id)
    if task is None:
        raise _Refused(_problem(404, "Not found", "The requested resource could not be found."))
    if fault is not None and fault.kind == "invalid_input":
        raise _Refused(_input_rejected(task.data["model"], fault))
    running = task.status in ("starting", "processing")
    if fault is not None and fault.kind in _TASK_FAULTS and running:
        task.data["fault"] = fault
        if fault.kind == "slow_task":
            task.ready_at = max(task.ready_at, asyncio.get_running_loop().time() + fault.seconds)
    return task


async def _advance(task: FakeTask, options: _Options, fake: FakeState) -> None:
    """Move a running prediction along: starting, processing, then its end."""
    if task.status not in ("starting", "processing"):
        return
    fault: Fault | None = task.data.get("fault")
    if fault is not None and fault.kind in ("task_failed", "content_refused"):
        task.status = "failed"
        task.error = NSFW if fault.kind == "content_refused" else (fault.code or FAILED)
        task.data["completed_at"] = _now()
        return
    if task.status == "starting":
        if task.polls > options.starting_polls:  # every prediction is seen processing once
            task.status = "processing"
            task.data.setdefault("started_at", _now())
        return
    if asyncio.get_running_loop().time() < task.ready_at:
        return
    await _finish(task, fake, fault)


async def _finish(task: FakeTask, fake: FakeState, fault: Fault | None) -> None:
    task.data.setdefault("started_at", _now())
    task.data["completed_at"] = _now()
    person, garment = task.data["person"], task.data["garment"]
    kind = fault.kind if fault is not None else None
    if kind == "no_image":
        task.status = "succeeded"
        return
    if kind == "bad_image":
        images = [_NOT_AN_IMAGE]
    else:
        try:
            images = await asyncio.to_thread(_render, person, garment, int(task.data["count"]))
        except OSError:  # Pillow cannot read a photo: the model's code fails on it
            task.status = "failed"
            task.error = "PIL.UnidentifiedImageError: cannot identify image file"
            return
    task.status = "succeeded"
    task.result = [fake.store(image, "image/png") for image in images]
    task.data["data_urls"] = [
        "data:image/png;base64," + base64.b64encode(image).decode() for image in images
    ]


def _render(person: bytes, garment: bytes, count: int) -> list[bytes]:
    if not person or not garment:
        raise OSError("the fake reads data URLs only")
    return [result_image(person, [garment], variant=i) for i in range(count)]


def _prediction(task: FakeTask, base: str) -> dict[str, Any]:
    """The prediction as Replicate shows it."""
    model: FakeModel = task.data["model"]
    root = f"{base}/v1/predictions/{task.id}"
    output: Any = None
    if task.status == "succeeded" and task.result:
        output = _shape(task, [f"{base}/_fake/files/{file_id}" for file_id in task.result])
    body: dict[str, Any] = {
        "id": task.id,
        "model": model.ref,
        "version": model.version,
        "input": task.data["input"],
        "logs": _logs(task),
        "output": output,
        "data_removed": False,
        "error": task.error,
        "status": task.status,
        "created_at": task.data["created_at"],
        "urls": {"cancel": f"{root}/cancel", "get": root},
    }
    for stamp in ("started_at", "completed_at"):
        if stamp in task.data:
            body[stamp] = task.data[stamp]
    if task.status in ("succeeded", "failed", "canceled"):
        body["metrics"] = {"predict_time": 0.05}
    return body


def _shape(task: FakeTask, links: list[str]) -> Any:
    model: FakeModel = task.data["model"]
    return links[0] if model.output == "uri" else links


def _logs(task: FakeTask) -> str:
    if task.status == "starting":
        return ""
    if task.status == "failed":
        return f"Running prediction\nTraceback (most recent call last):\n{task.error}\n"
    return "Running prediction\n100%|##########| 30/30 [00:04<00:00,  7.02it/s]\n"


# -- refusals -------------------------------------------------------------------------------------


async def _call_fault(request: AnyRequest, state: State) -> Fault | None:
    """Take this call's fault; raise the answer of a call-level one or of a wrong token."""
    fake: FakeState = state.fake
    fault = fake.next_fault()
    fake.requests[-1].summary["fault"] = None if fault is None else fault.kind
    kind = fault.kind if fault is not None else None
    if kind == "hang":
        await FakeState.hang()
    token = state.replicate.api_token
    if kind == "auth" or request.headers.get("authorization") != f"Bearer {token}":
        raise _Refused(
            _problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        )
    if fault is not None and fault.kind in _CALL_FAULTS:
        raise _Refused(_call_answer(fault))
    return fault


def _call_answer(fault: Fault) -> Response[Any]:
    if fault.kind == "rate_limit":
        wait = fault.retry_after
        headers = {} if wait is None else {"Retry-After": str(math.ceil(wait))}
        later = f" Expected available in {wait:g} seconds." if wait else ""
        detail = "Request was throttled." + later
        return _problem(429, "Request was throttled.", detail, headers)
    if fault.kind == "quota":
        return _problem(
            402,
            "Insufficient credit",
            "You have insufficient credit to run this model. Go to "
            "https://replicate.com/account/billing#billing to purchase credit.",
        )
    if fault.kind == "malformed":
        page = b"<html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"
        return Response(page, status_code=200, media_type="text/html")
    return _problem(fault.status, "Internal Server Error", "Something went wrong on our side.")


def _input_rejected(
    model: FakeModel,
    fault: Fault | None,
    problems: list[dict[str, str]] | None = None,
) -> Response[Any]:
    if problems is None:
        kind = fault.code if fault is not None and fault.code else "format"
        where = f"input.{model.person}"
        problems = [{"type": kind, "field": where, "description": "Invalid image"}]
    items = [(p["type"], p["field"], p["description"]) for p in problems]
    return _validation("Input validation failed", items)


def _validation(title: str, items: list[tuple[str, str, str]]) -> Response[Any]:
    detail = "".join(f"- {where}: {words}\n" for _, where, words in items)
    fields = [{"type": kind, "field": where, "description": words} for kind, where, words in items]
    return _problem(422, title, detail, extra={"invalid_fields": fields})


def _problem(
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[Any]:
    body = {"title": title, "detail": detail, "status": status, **(extra or {})}
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        headers=headers or {},
        media_type="application/problem+json",
    )


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        headers=headers or {},
        media_type="application/json",
    )


def _not_found(request: AnyRequest, exc: Exception) -> Response[Any]:
    if isinstance(exc, MethodNotAllowedException):
        return _problem(405, "Method not allowed", "Method not allowed.")
    return _problem(404, "Not found", "The requested resource could not be found.")


def _base(request: AnyRequest, options: _Options) -> str:
    return (options.public_url or str(request.base_url)).rstrip("/")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
