"""Helpers adapters share for talking to an upstream: reading answers, polling, re-encoding.

Adapters translate one protocol each; what every protocol needs the same way lives here, so
that no plugin copies another's code.
"""

from __future__ import annotations

import asyncio
import email.utils
import io
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx
from PIL import Image

from tryon_core import b64
from tryon_core.errors import (
    BadResponse,
    InputRejected,
    ProviderError,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from tryon_core.imaging import QUICK_BYTES
from tryon_core.provider import InputImage

__all__ = [
    "INLINE_BYTES",
    "SendOnce",
    "build_for_upstream",
    "classify_status",
    "error_object",
    "fit_image",
    "fit_image_base64",
    "image_fits",
    "json_body",
    "poll",
    "retry_after",
]

T = TypeVar("T")


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if (ms := response.headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def error_object(response: httpx.Response) -> dict[str, Any]:
    """The ``{"error": {...}}`` object of an error answer's JSON body (of its first element,
    when the body is a list), or ``{}`` when the body is not JSON or holds none."""
    try:
        body = response.json()
    except ValueError:
        return {}  # e.g. an HTML error page from a proxy in front of the API
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def json_body(response: httpx.Response, slug: str) -> Any:
    """The response's JSON, or ``BadResponse`` naming the model (never echoing the body)."""
    try:
        return response.json()
    except ValueError:
        raise BadResponse(
            f"{slug} answered HTTP {response.status_code} with a body that is not JSON.",
            provider_code=str(response.status_code),
        ) from None


def classify_status(
    response: httpx.Response,
    slug: str,
    *,
    code: str | int | None = None,
    message: str | None = None,
) -> ProviderError:
    """The usual meaning of an HTTP error status; adapters refine it with the body's code."""
    status = response.status_code
    detail = f"{slug} answered HTTP {status}."  # the upstream's own words stay in upstream_message
    kwargs: dict[str, Any] = {"provider_code": code if code is not None else status}
    kwargs["upstream_message"] = message
    if status == 429:
        return RateLimited(detail, retry_after=retry_after(response), **kwargs)
    if status in (401, 403):
        return ProviderMisconfigured(detail, **kwargs)
    if status in (400, 404, 413, 415, 422):
        return InputRejected(detail, **kwargs)
    if status in (408, 504):
        return ProviderTimeout(detail, **kwargs)
    return ProviderUnavailable(detail, **kwargs)


async def poll(
    check: Callable[[], Awaitable[T | None]],
    *,
    interval: float = 1.0,
    max_interval: float = 8.0,
    factor: float = 1.5,
) -> T:
    """Call ``check`` until it returns a value, sleeping with exponential backoff between calls.

    The core bounds the whole attempt by the provider's timeout, so this never gives up itself.
    """
    delay = interval
    while True:
        result = await check()
        if result is not None:
            return result
        await asyncio.sleep(delay)
        delay = min(max_interval, delay * factor)


#: The core's bound for decoding an image on the event loop (:data:`QUICK_BYTES`), for adapters
#: that decide by size for themselves; :func:`build_for_upstream` no longer needs it.
INLINE_BYTES = QUICK_BYTES


async def build_for_upstream(
    build: Callable[[], T], images: Sequence[InputImage], *, formats: Sequence[str]
) -> T:
    """``build()``, the construction of an upstream request from ``images``: on the event loop
    when they are already in ``formats``, in a worker thread when Pillow must re-encode one.

    Without Pillow work a build is base64 and joins: C code that holds the GIL from start to
    end, so a thread would spare the event loop nothing and cost a hop there and back (two
    ~787 KB images: ~1 ms either way)."""
    if all(image_fits(image, formats=formats) for image in images):
        return build()
    return await asyncio.to_thread(build)


def image_fits(
    image: InputImage,
    *,
    formats: Sequence[str] = ("image/jpeg", "image/png"),
    max_bytes: int | None = None,
    max_side: int | None = None,
) -> bool:
    """Whether :func:`fit_image` keeps ``image`` as it is (cheap: no Pillow work, so an adapter
    can skip the thread that a re-encoding needs)."""
    return (
        image.content_type in formats
        and (max_bytes is None or len(image.data) <= max_bytes)
        and (max_side is None or max(image.width, image.height) <= max_side)
    )


def fit_image_base64(
    image: InputImage,
    *,
    formats: Sequence[str] = ("image/jpeg", "image/png"),
    max_bytes: int | None = None,
    max_side: int | None = None,
) -> tuple[str, str]:
    """:func:`fit_image`, as standard base64 text (no ``data:`` prefix) and its content type.
    (Encoding is cheap, ~0.05 ms per MB: the gateway keeps no image's base64 beside its bytes.)"""
    data, content_type = fit_image(image, formats=formats, max_bytes=max_bytes, max_side=max_side)
    return b64.encode(data), content_type


def fit_image(
    image: InputImage,
    *,
    formats: Sequence[str] = ("image/jpeg", "image/png"),
    max_bytes: int | None = None,
    max_side: int | None = None,
) -> tuple[bytes, str]:
    """The image as an upstream accepts it: a format it takes, within its size limits.

    Returns the original bytes when they already fit; otherwise re-encodes (JPEG quality 92,
    or PNG where there is transparency and PNG is accepted), downscaling as needed.
    """
    if image_fits(image, formats=formats, max_bytes=max_bytes, max_side=max_side):
        return image.data, image.content_type
    with Image.open(io.BytesIO(image.data)) as opened:
        picture = opened.copy()
    if max_side and max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    keep_alpha = "A" in picture.getbands() and "image/png" in formats
    target = "image/png" if keep_alpha or "image/jpeg" not in formats else "image/jpeg"
    while True:
        buffer = io.BytesIO()
        if target == "image/png":
            picture.save(buffer, format="PNG", optimize=True)
        else:
            picture.convert("RGB").save(buffer, format="JPEG", quality=92)
        data = buffer.getvalue()
        if max_bytes is None or len(data) <= max_bytes or max(picture.size) <= 256:
            return data, target
        picture.thumbnail(
            (int(picture.width * 0.8), int(picture.height * 0.8)), Image.Resampling.LANCZOS
        )


class SendOnce:
    """A request body that is let go once it has been sent: ``content=body`` for httpx, with
    ``body.headers`` among the request's headers (its ``Content-Length``: the same bytes on
    the wire as ``content=<bytes>``, not chunked).

    httpx keeps a body given as bytes with its request, and the response keeps the request:
    a synchronous upstream that works for seconds would have each request in flight hold its
    body (megabytes of base64) all that time, beside the images it was built from. Build the
    body straight into ``SendOnce(...)``, keeping no other reference. It can be sent once: a
    second send raises ``RuntimeError`` (the gateway's client follows no redirects and retries
    no request).
    """

    __slots__ = ("_pieces", "headers")

    def __init__(self, data: bytes) -> None:
        self._hold([data])

    def _hold(self, pieces: list[bytes]) -> None:
        self._pieces: list[bytes] | None = pieces
        self.headers = {"Content-Length": str(sum(map(len, pieces)))}

    @classmethod
    def multipart(
        cls,
        fields: Mapping[str, str],
        files: Iterable[tuple[str, tuple[str, bytes, str]]],
        *,
        boundary: str | None = None,
    ) -> SendOnce:
        """A ``multipart/form-data`` body: the ``fields`` (name: value), then the ``files``
        (``(name, (filename, data, content_type))``, as httpx's ``files=`` takes them), with a
        random boundary unless given. ``headers`` carries its ``Content-Type`` too.

        The bytes are those httpx's ``data=`` and ``files=`` send (names and file names
        escaped as HTML forms do), in a few pieces: what lies between two files of
        ``_WRITE_AS_IS`` bytes or more is joined, those files go to the socket as they are.
        httpx builds a field object for each part and a request to hold them, then hands the
        socket some forty pieces, one write each; this costs an eighth of that (7 against 54 us
        for the OpenAI adapter's form). Joining the files too would copy them once more
        (0.3 ms for the peer benchmark's two 787 KB images)."""
        boundary = boundary or os.urandom(16).hex()
        opening = f"--{boundary}\r\n".encode()
        pieces: list[bytes] = []
        for name, value in fields.items():
            disposition = f"Content-Disposition: form-data; name={_form_quoted(name)}\r\n\r\n"
            pieces += (opening, disposition.encode(), value.encode(), b"\r\n")
        for name, (filename, data, content_type) in files:
            disposition = (
                f"Content-Disposition: form-data; name={_form_quoted(name)}; "
                f"filename={_form_quoted(filename)}\r\nContent-Type: {content_type}\r\n\r\n"
            )
            pieces += (opening, disposition.encode(), data, b"\r\n")
        pieces.append(f"--{boundary}--\r\n".encode())
        body = cls.__new__(cls)
        body._hold(_coalesced(pieces))
        body.headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        return body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        pieces, self._pieces = self._pieces, None
        if pieces is None:
            raise RuntimeError("this request body has been sent already")
        pieces.reverse()
        while pieces:
            yield pieces.pop()  # held by nothing here once it is sent


_WRITE_AS_IS = 1 << 16
"""A piece of a body this long or longer is written as it is; shorter ones between two such
are joined first (a write costs more than copying a few KiB, less than copying megabytes)."""


def _coalesced(pieces: list[bytes]) -> list[bytes]:
    """``pieces`` with each run of short ones joined into one."""
    coalesced: list[bytes] = []
    short: list[bytes] = []
    for piece in pieces:
        if len(piece) < _WRITE_AS_IS:
            short.append(piece)
            continue
        if short:
            coalesced.append(b"".join(short))
            short = []
        coalesced.append(piece)
    if short:
        coalesced.append(b"".join(short))
    return coalesced


_FORM_ESCAPES = {'"': "%22", "\\": "\\\\"} | {
    chr(code): f"%{code:02X}" for code in range(0x20) if code != 0x1B
}
_FORM_ESCAPED = re.compile("|".join(map(re.escape, _FORM_ESCAPES)))


def _form_quoted(text: str) -> str:
    """A multipart name or file name, quoted as HTML forms (and httpx) write it."""
    return '"' + _FORM_ESCAPED.sub(lambda match: _FORM_ESCAPES[match.group()], text) + '"'
