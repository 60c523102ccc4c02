"""Try each candidate model in order; fall through only on upstream failures.

The core owns the transport: it lends the adapter the shared HTTP client, bounds each attempt
by the provider's timeout, and classifies what escapes the adapter (timeouts, connection
errors, adapter bugs) into the same error classes adapters raise.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import httpx
import msgspec
from PIL import Image

from tryon_core import metrics
from tryon_core.attempt_log import attempt_finished, attempt_started
from tryon_core.catalog import Entry
from tryon_core.egress import GuardedFetcher
from tryon_core.errors import (
    AllProvidersFailed,
    BadResponse,
    ClientError,
    InputRejected,
    NoImage,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    TryOnError,
)
from tryon_core.health import HealthTracker
from tryon_core.imaging import ImageLimits, decodes_quickly, describe_output, encode
from tryon_core.model_options import NO_OPTIONS, AttemptOptions, ModelOptions
from tryon_core.provider import Adapter, OutputImage, ProviderContext, ProviderRequest

__all__ = [
    "Attempt",
    "AttemptRecorder",
    "Produced",
    "cancel_task",
    "result_download",
    "run_attempt",
    "run_candidates",
]

log = logging.getLogger("tryon.fallback")

CANCEL_SECONDS = 10.0
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class Attempt(msgspec.Struct, kw_only=True):
    """One call to one model, as recorded and reported."""

    model: str
    provider: str
    status: str = "running"
    duration_ms: int = 0
    task_id: str | None = None
    error: dict[str, str | None] | None = None
    options: AttemptOptions | msgspec.UnsetType = msgspec.UNSET
    """Which of the client's options this model received; absent when none were sent."""


class Produced(msgspec.Struct, frozen=True, kw_only=True):
    """An output image after the core checked it: bytes in the requested format."""

    data: bytes
    content_type: str
    width: int
    height: int


class AttemptRecorder(Protocol):
    """Persists attempts as they happen (the pipeline writes them to the database)."""

    async def started(self, position: int, attempt: Attempt) -> None: ...
    async def task(self, position: int, task_id: str, attempt: Attempt) -> None: ...
    async def state(self, position: int, state: str, attempt: Attempt) -> None: ...
    async def finished(
        self, position: int, attempt: Attempt, upstream_message: str | None
    ) -> None: ...


async def run_candidates(
    candidates: Sequence[Entry],
    build: Callable[[Entry], ProviderRequest],
    *,
    http: httpx.AsyncClient,
    health: HealthTracker,
    recorder: AttemptRecorder,
    limits: ImageLimits,
    result_fetcher: Callable[[Entry], GuardedFetcher],
    first_position: int = 0,
    resume_task: str | None = None,
    resumed: bool = False,
    options: ModelOptions = NO_OPTIONS,
    key_prefix: str | None = None,
) -> tuple[Entry, list[Produced], list[Attempt]]:
    """The first candidate that produces images, its images, and every attempt made.

    Attempts are numbered from ``first_position``. ``resume_task`` is an upstream task the
    first candidate already accepted (a resumed job): its adapter polls it instead of
    submitting again. ``resumed``: the first attempt ran before (its task id, if any, was not
    kept). Each attempt is named ``KEY_PREFIX-POSITION`` for its adapter (``attempt_key``).
    ``options``: the client's options; each attempt records which its model took.
    """
    attempts: list[Attempt] = []
    errors: list[ProviderError] = []
    for position, entry in enumerate(candidates, start=first_position):
        if errors:
            metrics.fell_back(attempts[-1].model, entry.slug, errors[-1].type)
        task_id = resume_task if position == first_position else None
        attempt = Attempt(
            model=entry.slug,
            provider=entry.provider.name,
            task_id=task_id,
            options=options.attempt(entry),
        )
        attempts.append(attempt)
        await recorder.started(position, attempt)
        traced = attempt_started(entry, position, key_prefix)  # key_prefix: the generation id
        started = time.monotonic()
        upstream_message: str | None = None
        try:
            context = ProviderContext(
                http=http,
                config=entry.config,
                timeout=entry.config.timeout,
                record_task=_task_hook(recorder, position, attempt),
                fetch=result_download(result_fetcher(entry), entry.slug),
                task_id=task_id,
                attempt_key=None if key_prefix is None else f"{key_prefix}-{position}",
                resumed=resumed and position == first_position,
                report_state=_state_hook(recorder, position, attempt),
            )
            produced = await run_attempt(
                entry.adapter, build(entry), context, slug=entry.slug, limits=limits
            )
        except asyncio.CancelledError:
            attempt.status = "cancelled"
            raise
        except ProviderError as error:
            attempt.status = "failed"
            attempt.error = {
                "type": error.type,
                "message": error.message,
                "code": error.provider_code,
            }
            errors.append(error)
            upstream_message = error.upstream_message
            if error.fallback:
                health.failure(entry.slug)
            if isinstance(error, ProviderTimeout) and attempt.task_id:
                await cancel_task(entry, attempt.task_id, http)  # nobody will collect it
        else:
            attempt.status = "succeeded"
            health.success(entry.slug)
            return entry, produced, attempts
        finally:
            attempt.duration_ms = int((time.monotonic() - started) * 1000)
            metrics.attempt_finished(attempt, time.monotonic() - started)
            attempt_finished(traced, attempt, upstream_message)
            await recorder.finished(position, attempt, upstream_message)
        if not errors[-1].fallback:
            break
    raise AllProvidersFailed(errors, [msgspec.to_builtins(a) for a in attempts])


async def cancel_task(entry: Entry, task_id: str, http: httpx.AsyncClient) -> bool:
    """Ask the upstream to drop a task nobody will collect, where its adapter can
    (:class:`~tryon_core.provider.CancellableAdapter`). Best effort, bounded: True if the
    upstream confirmed it will not finish (nor charge) the task."""
    cancel = getattr(entry.adapter, "cancel", None)
    if cancel is None:
        return False

    async def no_record(_: str) -> None:
        return None

    context = ProviderContext(
        http=http, config=entry.config, timeout=CANCEL_SECONDS, record_task=no_record
    )
    try:
        async with asyncio.timeout(CANCEL_SECONDS):
            confirmed = bool(await cancel(entry.slug, task_id, context))
    except Exception as exc:
        log.warning(
            "could not cancel %s task %s upstream (%s)", entry.slug, task_id, type(exc).__name__
        )
        return False
    log.info("cancelled %s task %s upstream: %s", entry.slug, task_id, confirmed)
    return confirmed


def _task_hook(
    recorder: AttemptRecorder, position: int, attempt: Attempt
) -> Callable[[str], Awaitable[None]]:
    async def record_task(task_id: str) -> None:
        attempt.task_id = task_id
        await recorder.task(position, task_id, attempt)

    return record_task


def _state_hook(
    recorder: AttemptRecorder, position: int, attempt: Attempt
) -> Callable[[str], Awaitable[None]]:
    last: list[str] = []

    async def report_state(state: str) -> None:
        state = str(state)[:64]
        if last and last[-1] == state:
            return
        last[:] = [state]
        await recorder.state(position, state, attempt)

    return report_state


async def run_attempt(
    adapter: Adapter,
    request: ProviderRequest,
    context: ProviderContext,
    *,
    slug: str,
    limits: ImageLimits,
) -> list[Produced]:
    """One call to one adapter, classified and checked exactly as the gateway does it.

    Bounded by ``context.timeout``; whatever escapes the adapter becomes a ``ProviderError``;
    the images are sniffed, re-encoded to ``request.output_format`` and trimmed to ``n``.
    """
    timeout = context.timeout
    try:
        async with asyncio.timeout(timeout):
            outputs = await adapter.run(request, context)
    except ProviderError as error:
        _redact(error, context.config)
        raise
    except TimeoutError:
        raise ProviderTimeout(f"{slug} did not answer within {timeout:g} s.") from None
    except httpx.TimeoutException:
        raise ProviderTimeout(f"{slug} timed out.") from None
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"{slug} could not be reached ({type(exc).__name__}).") from None
    except ClientError as exc:
        raise InputRejected(exc.message, param=exc.param) from None
    except Exception:
        log.exception("adapter for %s raised an unexpected error", slug)
        raise BadResponse(f"{slug} failed unexpectedly.") from None
    outputs = list(outputs)
    if all(decodes_quickly(output.data) for output in outputs[: request.n]):
        return _check_outputs(slug, request, outputs, limits)
    return await asyncio.to_thread(_check_outputs, slug, request, outputs, limits)


def _redact(error: ProviderError, config: Any) -> None:
    """Blank the provider's secrets out of an error, whatever the adapter put in it."""
    secrets = [
        str(value)
        for name in getattr(type(config), "secrets", ())
        if (value := getattr(config, name, None)) and len(str(value)) >= 4
    ]
    for secret in secrets:
        error.message = error.message.replace(secret, "[redacted]")
        if error.upstream_message:
            error.upstream_message = error.upstream_message.replace(secret, "[redacted]")
        if error.provider_code:
            error.provider_code = error.provider_code.replace(secret, "[redacted]")
    error.args = (error.message,)


def result_download(fetcher: GuardedFetcher, slug: str) -> Callable[[str], Awaitable[bytes]]:
    async def fetch(url: str) -> bytes:
        try:
            return await fetcher.fetch(url, param="result")
        except TryOnError as exc:
            raise BadResponse(f"{slug}: its result could not be downloaded ({exc.type}).") from None

    return fetch


def _check_outputs(
    slug: str, request: ProviderRequest, outputs: list[OutputImage], limits: ImageLimits
) -> list[Produced]:
    if not outputs:
        raise NoImage(f"{slug} returned no image.")
    wanted: str = _MIME[request.output_format]
    produced: list[Produced] = []
    for output in outputs[: request.n]:
        try:
            sniffed, width, height = describe_output(output.data, limits=limits)
            content_type: str = sniffed
            data = output.data
            if content_type != wanted:
                with Image.open(io.BytesIO(output.data)) as image:
                    data = encode(image, request.output_format)
                content_type = wanted
        except ValueError:
            raise BadResponse(f"{slug} returned an image that does not decode.") from None
        produced.append(Produced(data=data, content_type=content_type, width=width, height=height))
    return produced
