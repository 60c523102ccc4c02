"""The kit every provider's fake upstream is built from.

A fake is a small Litestar app on 127.0.0.1 that speaks one provider's wire protocol, checks
what it receives as strictly as the real service, and answers with the real response shapes.
What all fakes share lives here, once:

- :class:`FakeState`: the faults queued for the next calls, every request received, the
  result files the fake serves itself, and the tasks of submit-poll protocols.
- Control routes under ``/_fake`` (queue faults, read requests, reset), so that a gateway in
  another process can be scripted over HTTP exactly like one in the same process.
- :func:`result_image`: a deterministic, decodable "try-on" made from the inputs.
- A cookie on every answer (:data:`FAKE_COOKIE`), as the real services set behind Cloudflare.
- :func:`create_fake_app`: the provider's handlers plus the control routes, and
  :func:`mount_fakes`: several fakes on one port under ``/NAME`` prefixes (``tryon fakes serve``).

Faults are generic (:data:`FAULT_KINDS`); each fake renders them in its own protocol, e.g.
``rate_limit`` is Kling's HTTP 429 with business code 1302 and Gemini's RESOURCE_EXHAUSTED with
a RetryInfo delay.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import io
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from PIL import Image, ImageOps

__all__ = [
    "FAKE_COOKIE",
    "FAULT_KINDS",
    "FakeState",
    "FakeTask",
    "Fault",
    "RecordedRequest",
    "create_fake_app",
    "file_url",
    "load_fake",
    "mount_fakes",
    "result_image",
]

FaultKind = Literal[
    "rate_limit",  # 429; retry_after seconds as the protocol carries it (None: no hint)
    "quota",  # out of credit / quota at the upstream: not worth retrying soon
    "server_error",  # status 5xx
    "hang",  # never answer (until the client gives up)
    "malformed",  # a 200 whose body is not the protocol's JSON
    "no_image",  # a success without any image
    "bad_image",  # a success whose image does not decode
    "content_refused",  # the upstream's content-policy refusal
    "invalid_input",  # the upstream refuses the input as invalid
    "auth",  # the upstream refuses the credentials
    "task_failed",  # submit-poll: the task ends failed
    "slow_task",  # submit-poll: the task takes `seconds` to finish
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]


class Fault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: FaultKind
    retry_after: float | None = None
    status: int = 500
    seconds: float = 0.0
    code: str | None = None
    """The provider's own error code to use, where it has several for one kind."""


class RecordedRequest(msgspec.Struct, kw_only=True):
    method: str
    path: str
    headers: dict[str, str]
    body_bytes: int
    summary: dict[str, Any] = msgspec.field(default_factory=dict)
    """What the fake chose to note about the body (field names, image types, sizes)."""


class FakeTask(msgspec.Struct, kw_only=True):
    id: str
    status: str
    ready_at: float
    result: list[str] = msgspec.field(default_factory=list)
    error: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    polls: int = 0


class FakeState:
    """What one fake remembers between calls."""

    def __init__(self, supported: Iterable[str] = FAULT_KINDS) -> None:
        self.supported = tuple(supported)
        self.faults: deque[Fault] = deque()
        self.requests: list[RecordedRequest] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.tasks: dict[str, FakeTask] = {}

    def reset(self) -> None:
        self.__init__(self.supported)  # type: ignore[misc]

    def inject(self, *faults: Fault | str) -> None:
        """Queue faults for the next calls, in order (a bare string is a kind)."""
        queued = [Fault(kind=f) if isinstance(f, str) else f for f in faults]  # type: ignore[arg-type]
        unknown = [f.kind for f in queued if f.kind not in self.supported]
        if unknown:
            raise ValueError(f"this fake cannot inject {unknown}; it supports {self.supported}")
        self.faults.extend(queued)

    def next_fault(self) -> Fault | None:
        return self.faults.popleft() if self.faults else None

    def record(self, request: Request[Any, Any, Any], body: bytes, **summary: Any) -> None:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body_bytes=len(body),
                summary=summary,
            )
        )

    def store(self, data: bytes, content_type: str) -> str:
        """Keep a result file; returns its id (served at ``/_fake/files/{id}``)."""
        file_id = secrets.token_hex(8)
        self.files[file_id] = (data, content_type)
        return file_id

    def new_task(self, *, delay: float = 0.0, **data: Any) -> FakeTask:
        loop = asyncio.get_running_loop()
        task = FakeTask(
            id=secrets.token_hex(12), status="queued", ready_at=loop.time() + delay, data=data
        )
        self.tasks[task.id] = task
        return task

    @staticmethod
    async def hang() -> None:
        await asyncio.Event().wait()


def file_url(request: Request[Any, Any, Any], file_id: str) -> str:
    """The absolute URL of a stored result, as the client reached this fake."""
    base = str(request.base_url).rstrip("/")
    return f"{base}/_fake/files/{file_id}"


def result_image(
    person: bytes, garments: Sequence[bytes], *, output_format: str = "png", variant: int = 0
) -> bytes:
    """A deterministic stand-in for a try-on: the person with the garments inset."""
    with Image.open(io.BytesIO(person)) as opened:
        canvas = ImageOps.exif_transpose(opened).convert("RGB")
    width, height = canvas.size
    side = max(16, min(width, height) // 3)
    for index, garment in enumerate(garments):
        with Image.open(io.BytesIO(garment)) as opened:
            thumb = ImageOps.contain(opened.convert("RGB"), (side, side))
        canvas.paste(thumb, (width // 2 - side // 2, height // 3 + index * side // 2))
    if variant:
        digest = hashlib.sha256(f"{variant}".encode()).digest()
        canvas.paste(tuple(digest[:3]), (0, 0, max(1, width // 20), max(1, height // 20)))
    buffer = io.BytesIO()
    fmt = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[output_format.lower()]
    canvas.save(buffer, format=fmt)
    return buffer.getvalue()


@post("/_fake/faults", status_code=200)
async def _queue_faults(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    try:
        faults = msgspec.json.decode(await request.body(), type=list[Fault])
        state.fake.inject(*faults)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        return Response({"error": str(exc)}, status_code=400)
    return Response({"queued": len(state.fake.faults)})


@get("/_fake/faults")
async def _supported_faults(state: State) -> dict[str, list[str]]:
    return {"supported": list(state.fake.supported)}


@get("/_fake/requests")
async def _requests(state: State) -> list[RecordedRequest]:
    return list(state.fake.requests)


@delete("/_fake", status_code=200)
async def _reset(state: State) -> dict[str, str]:
    state.fake.reset()
    return {"status": "reset"}


@get("/_fake/files/{file_id:str}")
async def _file(state: State, file_id: FromPath[str]) -> Response[bytes]:
    found = state.fake.files.get(file_id)
    if found is None:
        return Response(b"not found", status_code=404, media_type="text/plain")
    return Response(found[0], media_type=found[1])


def create_fake_app(
    route_handlers: Iterable[Any],
    *,
    faults: Iterable[str] = FAULT_KINDS,
    state: FakeState | None = None,
    exception_handlers: dict[Any, Any] | None = None,
) -> Litestar:
    """A fake upstream: the provider's handlers plus the shared ``/_fake`` control routes.

    ``faults`` names the fault kinds this fake renders (injecting another is an error).
    Handlers reach the shared state as ``state.fake`` (Litestar's ``state`` argument).
    """
    return Litestar(
        route_handlers=[
            *route_handlers,
            _queue_faults,
            _supported_faults,
            _requests,
            _reset,
            _file,
        ],
        state=State({"fake": state or FakeState(faults)}),
        exception_handlers=exception_handlers or {},
        after_request=_sets_a_cookie,
        openapi_config=None,
        logging_config=None,  # a fake must not reconfigure the logging of the process it runs in
        request_max_body_size=64 * 1024 * 1024,
    )


FAKE_COOKIE = "__cf_bm"
"""The cookie every fake's answers set, as the real services' do behind Cloudflare (OpenAI's
sets ``__cf_bm`` and ``_cfuvid``): the gateway must send none of them back."""


async def _sets_a_cookie(response: Response[Any]) -> Response[Any]:
    response.set_cookie(FAKE_COOKIE, secrets.token_hex(8), path="/", httponly=True)
    return response


ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def load_fake(reference: str, **options: Any) -> Any:
    """Build the fake a ``ProviderSpec.fake`` reference (``"module:callable"``) names."""
    module_name, _, attribute = reference.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    return factory(**options)


def mount_fakes(apps: dict[str, Any]) -> ASGIApp:
    """One ASGI app serving each fake under ``/NAME`` (its base_url is ``…/NAME``)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path: str = scope["path"]
        name, _, rest = path.lstrip("/").partition("/")
        target = apps.get(name)
        if target is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"no such fake"})
            return
        # ASGI: `path` keeps the mount prefix and `root_path` names it
        prefix = f"{scope.get('root_path', '')}/{name}"
        child = {**scope, "path": f"{prefix}/{rest}", "root_path": prefix}
        child["raw_path"] = child["path"].encode()
        await target(child, receive, send)

    return app
