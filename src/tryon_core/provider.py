"""What a provider plugin hands the core, and what the core hands an adapter.

A plugin registers a :class:`ProviderSpec`: its config section, the models it serves and a
factory for its adapter. On the request path the core calls ``adapter.run(request, context)``
with a :class:`ProviderRequest` (images already sniffed, bounded and re-oriented) and a
:class:`ProviderContext` (the shared HTTP client, the provider's validated config, a place to
record the upstream task id). The adapter returns :class:`OutputImage` bytes or raises a
:class:`tryon_core.errors.ProviderError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, ClassVar, Literal, Protocol

import httpx
import msgspec

__all__ = [
    "CATEGORIES",
    "IMAGE_TYPES",
    "Adapter",
    "CancellableAdapter",
    "Capabilities",
    "Category",
    "InputImage",
    "ModelSpec",
    "OutputImage",
    "ProviderConfig",
    "ProviderContext",
    "ProviderRequest",
    "ProviderSpec",
]

Category = Literal["auto", "tops", "bottoms", "one-pieces"]
CATEGORIES: tuple[Category, ...] = ("auto", "tops", "bottoms", "one-pieces")
ImageType = Literal["image/jpeg", "image/png", "image/webp"]
IMAGE_TYPES: tuple[ImageType, ...] = ("image/jpeg", "image/png", "image/webp")
OutputFormat = Literal["png", "jpeg", "webp"]


class Capabilities(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a model can do. The planner filters candidates on these before any upstream call."""

    execution: Literal["sync", "submit-poll"] = "sync"
    max_garments: int = 1
    categories: tuple[Category, ...] = CATEGORIES
    max_outputs: int = 1
    input_formats: tuple[ImageType, ...] = IMAGE_TYPES
    max_input_bytes: int = 10 * 1024 * 1024
    min_input_side: int = 64
    max_input_side: int = 4096
    uses_prompt: bool = False
    supports_seed: bool = False
    keyed_tasks: bool = False
    """A submit-poll model whose adapter names its upstream task with
    ``ProviderContext.attempt_key`` and, when the core runs an attempt again after a crash
    (``ProviderContext.resumed``) without a recorded task id, finds that task by its key
    instead of submitting again. The core then resumes such an attempt in place: a process
    dying between the upstream's acceptance and the task id's commit costs no second task."""


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One model a provider serves. ``slug`` is ``vendor/model``; ``credits`` is per image."""

    slug: str
    name: str
    description: str
    credits: int
    capabilities: Capabilities = Capabilities()
    owned_by: str | None = None
    created: int = 0
    options: type[msgspec.Struct] | None = None
    """The model's own options, as a ``msgspec.Struct`` type whose every field has a default
    (``msgspec.UNSET`` for "the upstream's own default": such a field is left out of
    ``msgspec.to_builtins``). ``GET /api/v1/models`` publishes it as JSON Schema; a request's
    ``options`` are decoded into it (a bad value is a 422 before anything is charged) and the
    adapter reads them as ``ProviderRequest.options``. Options this model does not declare
    are never sent to it (they may be meant for another candidate)."""


class ProviderConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Keys every ``[providers.NAME]`` section has. Plugins subclass it with their own keys.

    ``secrets`` names the fields that must be set when the provider is enabled; they never
    appear in errors, logs or attempt records.
    """

    secrets: ClassVar[tuple[str, ...]] = ()

    enabled: bool = False
    base_url: str | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 120.0


class InputImage(msgspec.Struct, frozen=True, kw_only=True):
    """A validated input image: bytes whose type was sniffed, EXIF orientation applied."""

    data: bytes
    content_type: ImageType
    width: int
    height: int


class ProviderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The canonical try-on request as an adapter sees it, for one model."""

    model: str
    person: InputImage
    garments: tuple[InputImage, ...]
    category: Category = "auto"
    prompt: str | None = None
    n: int = 1
    seed: int | None = None
    output_format: OutputFormat = "png"
    options: Any = None
    """An instance of the model's ``ModelSpec.options`` type holding the options the client
    sent that this model declares (None when the model declares none)."""


class OutputImage(msgspec.Struct, frozen=True, kw_only=True):
    """An image an adapter produced. The core sniffs and re-checks the bytes itself."""

    data: bytes


class ProviderContext(msgspec.Struct, kw_only=True):
    """What the core lends an adapter for one attempt.

    ``http`` is the shared client for calls to the provider's API. ``fetch`` downloads a result
    URL the upstream returned: bounded in bytes and time, behind the egress guard (the
    provider's own ``base_url`` origin is allowed); a failure raises ``BadResponse``.
    ``record_task`` commits the upstream's task id before polling; ``task_id`` is set when the
    core resumes an attempt that an upstream already accepted. ``attempt_key`` names the
    attempt, the same each time the core runs it; ``resumed`` says the attempt ran before and
    may have reached the upstream without its task id being kept (see
    ``Capabilities.keyed_tasks``). ``report_state`` tells the core
    the upstream's own state of the task as it polls (``"processing"``); async jobs show it as
    their progress. Calling it with an unchanged state costs nothing.
    """

    http: httpx.AsyncClient
    config: Any
    timeout: float
    record_task: Callable[[str], Awaitable[None]]
    fetch: Callable[[str], Awaitable[bytes]] = msgspec.field(default_factory=lambda: _no_fetch)
    task_id: str | None = None
    attempt_key: str | None = None
    resumed: bool = False
    report_state: Callable[[str], Awaitable[None]] = msgspec.field(
        default_factory=lambda: _no_report
    )


async def _no_report(state: str) -> None:
    return None


async def _no_fetch(url: str) -> bytes:
    raise RuntimeError("this ProviderContext was built without a result fetcher")


class Adapter(Protocol):
    """Turns one normalized request into images, or raises a ``ProviderError``."""

    async def run(
        self, request: ProviderRequest, context: ProviderContext
    ) -> Sequence[OutputImage]: ...


class CancellableAdapter(Adapter, Protocol):
    """An adapter whose upstream can drop a task it accepted (optional).

    ``cancel`` asks it to; True means the upstream will not finish (nor charge) the task,
    False that it is too late. The core calls it when a client cancels an async job whose
    current attempt has a recorded task id; without it, that attempt runs to its end.
    """

    async def cancel(self, model: str, task_id: str, context: ProviderContext) -> bool: ...


class ProviderSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A provider as a plugin registers it."""

    name: str
    config_type: type[ProviderConfig]
    models: tuple[ModelSpec, ...]
    adapter_factory: Callable[[Any], Adapter]
    models_from_config: Callable[[Any], Sequence[ModelSpec]] | None = None
    """Models that come from the provider's validated config rather than from code (a hosted
    model an operator adds in TOML): called once at start with the ``[providers.NAME]``
    section, after ``models``. A provider with it may register ``models=()``."""
    fake: str | None = None
    """``"module:callable"`` returning this provider's fake upstream (an ASGI app), for
    ``tryon fakes serve`` and the contract kit. Imported only when asked for."""
