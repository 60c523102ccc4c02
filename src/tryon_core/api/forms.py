"""Read a ``multipart/form-data`` body by the gateway's rules, with the ``multipart`` parser.

Litestar's ``Request.form()`` (the same parser underneath) decodes every text part with the
charset the part names, whatever it is: ``x-bogus``, ``rot13`` or ``base64`` raised a
``LookupError``, a byte that is not UTF-8 a ``UnicodeDecodeError`` (both reached the client as
a 500), and ``punycode`` decodes in quadratic time (400 KB took 45 s of the event loop). It also
reads a file part whose ``filename`` is empty, what a browser sends for an empty file input, as
text. So the gateway walks the parser's events itself:

- Every part has one ``Content-Disposition`` with a non-empty ``name``, and at most one
  ``Content-Type`` and ``Content-Transfer-Encoding``.
- A part with a ``filename`` (even ``""``) is a file: its bytes, of which at most
  ``max_file_bytes + 1`` are kept (a longer file is refused for its size anyway).
- Any other part is text in UTF-8 (no charset, or ``utf-8`` or ``us-ascii``), decoded strictly.
- ``Content-Transfer-Encoding``, if given, is ``binary``, ``8bit`` or ``7bit``: the gateway
  takes a part's bytes as they are and decodes no base64 or quoted-printable.
- At most ``max_parts`` parts, each with at most 8 header lines of 4 KiB each; more is a 413.

Each refusal is a ``400 invalid_request`` (413 for the limits) naming the part's field.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from litestar import Request
from multipart import (  # type: ignore[import-untyped]
    MultipartSegment,
    ParserError,
    ParserLimitReached,
    PushMultipartParser,
)

from tryon_core.errors import InvalidRequest, PayloadTooLarge, echo

__all__ = ["MAX_PART_HEADERS", "FormValue", "read_form"]

MAX_PART_HEADERS = 8
"""Header lines per part; each line at most 4 KiB (the parser's defaults)."""

FormValue = str | bytes
"""A text part's text, or a file part's bytes."""

_UTF8 = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_AS_IS = frozenset({"binary", "8bit", "7bit"})
_ONCE = ("Content-Disposition", "Content-Type", "Content-Transfer-Encoding")


async def read_form(
    request: Request[Any, Any, Any], *, max_parts: int, max_file_bytes: int
) -> list[tuple[str, FormValue]]:
    """The form's parts in order, as (field name, text or file bytes)."""
    boundary = request.content_type[1].get("boundary")
    if not boundary:
        raise InvalidRequest("multipart/form-data needs a boundary parameter in Content-Type.")
    parts: list[tuple[str, FormValue]] = []
    try:
        with PushMultipartParser(
            boundary.encode(), max_header_count=MAX_PART_HEADERS, max_segment_count=max_parts
        ) as parser:
            part: _Part | None = None
            async with aclosing(request.stream()) as stream:
                async for chunk in stream:
                    for event in parser.parse(chunk):
                        if isinstance(event, MultipartSegment):
                            part = _Part(event, max_file_bytes)
                        elif part is None:  # the parser emits a segment before its body
                            raise ParserError("Body before segment headers")
                        elif event:
                            part.add(event)
                        else:
                            parts.append((part.name, part.value()))
                            part = None
                    if parser.closed:
                        break
    except ParserLimitReached:
        raise PayloadTooLarge(
            f"The form is too large: at most {max_parts} parts, each with at most "
            f"{MAX_PART_HEADERS} header lines of 4 KiB each."
        ) from None
    except ParserError as exc:
        reason = str(exc.args[0]) if exc.args else "malformed"
        raise InvalidRequest(f"The body is not valid multipart/form-data: {reason}.") from None
    return parts


class _Part:
    """One part being read: checked when its headers arrive, then its body gathered."""

    def __init__(self, segment: MultipartSegment, max_file_bytes: int) -> None:
        names = [header for header, _ in segment.headerlist]
        for header in _ONCE:
            if names.count(header) > 1:
                raise InvalidRequest(f"A form part has more than one {header} header.")
        if not segment.name:
            raise InvalidRequest(
                'A form part has no name: each needs Content-Disposition: form-data; name="...".'
            )
        self.name: str = segment.name
        encoding = (segment.header("Content-Transfer-Encoding") or "binary").strip().lower()
        if encoding not in _AS_IS:
            raise InvalidRequest(
                f"Content-Transfer-Encoding {echo(encoding)!r} is not supported: send the part's "
                "bytes as they are.",
                param=self.name,
            )
        self.is_file = segment.filename is not None
        charset = (segment.charset or "utf-8").strip().lower()
        if not self.is_file and charset not in _UTF8:
            raise InvalidRequest(
                f"Charset {echo(charset)!r} is not supported: send text fields in UTF-8.",
                param=self.name,
            )
        self.keep = max_file_bytes + 1 if self.is_file else None
        self.chunks: list[bytes] = []  # joined once at the end: one copy of the body
        self.size = 0

    def add(self, chunk: bytes) -> None:
        if self.keep is not None and self.size + len(chunk) > self.keep:
            chunk = chunk[: max(0, self.keep - self.size)]
        if chunk:
            self.chunks.append(chunk)
            self.size += len(chunk)

    def value(self) -> FormValue:
        data = b"".join(self.chunks)
        if self.is_file:
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest(
                f"Field {echo(self.name)!r} is not valid UTF-8 (byte {exc.start}).",
                param=self.name,
            ) from None
