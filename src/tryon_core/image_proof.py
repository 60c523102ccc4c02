"""Proving an image whole for less than a full decode, when its bytes go on unchanged.

Most images reach the gateway as they should leave it: 8-bit RGB or RGBA, one frame, upright.
Their bytes are passed on as they are, and were decoded in full for one reason only: to refuse
a truncated or corrupt file before anything is charged. A full decode is the most expensive
thing the gateway does to a request (a 1024 x 1536 photo: ~4 ms of Pillow as JPEG, ~28 ms as
PNG, on the project's build machine), so such an image is proven whole more cheaply:

* **PNG**, with no Pillow at all: the chunks are walked, each one's CRC checked up to the first
  image data, the image data's zlib stream inflated (fed 32 KiB at a time, so that what zlib
  leaves unread is never copied whole; 128 KiB of pixels at a time, never held whole) to
  exactly the size the header declares, its Adler-32 checked where the stream ends, and every
  row's filter type read. What is left of a full decode is undoing the filters and converting
  pixels, which cannot fail. The stream is inflated by zlib-ng (the ``zlib-ng`` package): a
  fork of zlib with the same inflate and the same checks (what one refuses, the other does),
  that decodes, copies and sums Adler-32 with SIMD where Debian's zlib 1.2.13 goes a byte at a
  time. Accepting a 1024 x 1536 PNG photo took 8.9 ms with zlib, 4.8 with zlib-ng; the peer
  benchmark's 787 KB noise PNGs 0.34 and 0.12 ms (``benchmarks/bench_images.py``), 0.09 ms
  fed in slices (one IDAT chunk of 787 KB handed over whole left an ``unconsumed_tail`` to
  copy after every 128 KiB: 2.4 MB of copies).
* **JPEG**, decoded by Pillow at an eighth of its size: libjpeg still reads every scan and every
  coefficient of the file (a truncated file is refused as before), it only spares the inverse
  DCT and colour conversion at full size.

:func:`proven_as_is` says yes only when it is sure: the image needs no change (no mode
conversion, no turn, a single frame) and the cheap proof passed. Any doubt (a kind it does not
prove, a chunk it does not know how to weigh, damage of any sort) is a no, and the caller decodes
in full as before: a damaged file gets the same answer it always got, from the same full decode.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Generator

from PIL import Image
from zlib_ng import zlib_ng

__all__ = ["STEP", "proven_as_is", "proven_on_loop"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STEP = 1 << 17
"""Raw bytes inflated at a time: the proof of a PNG holds at most this much of its pixels, and
:func:`proven_on_loop` hands the event loop back after each."""
_FEED = 1 << 15
"""Compressed bytes handed to zlib at a time: what it leaves unread (``unconsumed_tail``, a
copy) stays small, however large one IDAT chunk is."""
_CHUNKS_PER_PAUSE = 256
"""Chunks walked between two pauses (about 0.2 ms), however few pixels they hold."""
_INFLATE_ERROR: type[Exception] = zlib_ng.error  # type: ignore[assignment]
"""What zlib-ng raises for a damaged stream (a class; its type stubs call it an instance)."""
_CHANNELS = {2: 3, 6: 4}
"""PNG colour types that are RGB (2) and RGBA (6), and their channels: the only ones that pass
unchanged (grey, palette and grey-with-alpha are converted)."""
_ORIENTATION_TEXT = (b"Raw profile type exif\x00", b"XML:com.adobe.xmp\x00")
"""Text chunks Pillow reads an EXIF orientation from, besides ``eXIf``."""
_NOT_AS_IS = frozenset({b"eXIf", b"tRNS", b"acTL"})
"""Chunks that can make a PNG need a change: an orientation, transparency on RGB, frames."""


def proven_as_is(data: bytes, content_type: str, size: tuple[int, int]) -> bool:
    """True when ``data`` (sniffed as ``content_type``, ``size`` read from its header and
    already checked against the limits) needs no change and is proven whole; False when it
    must be decoded in full to know."""
    if _over_pillow_ceiling(size):
        return False
    if content_type == "image/png":
        return _png_as_is(data, size)
    if content_type == "image/jpeg":
        return _jpeg_as_is(data, size)
    return False


async def proven_on_loop(data: bytes, content_type: str, size: tuple[int, int]) -> bool:
    """:func:`proven_as_is` for a PNG, on the event loop, handing it back after each
    ``STEP`` of pixels inflated (~0.13 ms on the build machine for a photo, less for one that
    compresses poorly): no worker thread, whose two hops and fight for the GIL cost more than
    the proof of a big, poorly compressed PNG. False at once for anything else."""
    if content_type != "image/png" or _over_pillow_ceiling(size):
        return False
    steps = _png_steps(data, size)
    try:
        while True:
            next(steps)
            await asyncio.sleep(0)
    except StopIteration as finished:
        return bool(finished.value)


def _over_pillow_ceiling(size: tuple[int, int]) -> bool:
    ceiling = Image.MAX_IMAGE_PIXELS  # Pillow's bomb guard, the second line: let it speak
    return ceiling is not None and size[0] * size[1] > ceiling


def _png_as_is(data: bytes, size: tuple[int, int]) -> bool:
    steps = _png_steps(data, size)
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return bool(finished.value)


def _png_steps(data: bytes, size: tuple[int, int]) -> Generator[None, None, bool]:
    """The proof of a PNG, pausing (``yield``) after each ``STEP`` of pixels; returns its
    verdict."""
    view = memoryview(data)
    end = len(data)
    if not data.startswith(_PNG_SIGNATURE) or end < 33 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        return False
    width, height = size
    if data[16:24] != width.to_bytes(4, "big") + height.to_bytes(4, "big"):
        return False
    depth, colour, compression, filtering, interlace = data[24:29]
    channels = _CHANNELS.get(colour)
    if channels is None or depth not in (8, 16) or compression or filtering or interlace:
        return False
    stride = 1 + width * channels * depth // 8  # a filter-type byte, then the row
    rows = _Rows(stride, height)
    position = 8
    seen_data = False
    previous = b""
    chunks = 0
    while position + 12 <= end:
        chunks += 1
        if chunks % _CHUNKS_PER_PAUSE == 0:
            yield  # a file of many tiny chunks pauses as often as one of many pixels
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        body_end = position + 8 + length
        if length > 0x7FFFFFFF or body_end + 4 > end:
            return False
        body = view[position + 8 : body_end]
        if kind == b"IDAT":
            if seen_data and previous != b"IDAT":
                return False  # image data after the stream ended, or in two separate runs
            seen_data = True
            if not (yield from rows.inflate(body)):
                return False
        else:
            if kind in _NOT_AS_IS or (kind[:1].isupper() and kind not in _CRITICAL):
                return False  # a change to make, or a critical chunk we do not know
            if kind in (b"tEXt", b"zTXt", b"iTXt") and bytes(body[:32]).startswith(
                _ORIENTATION_TEXT
            ):
                return False
            crc = int.from_bytes(data[body_end : body_end + 4], "big")
            if not seen_data and zlib_ng.crc32(body, zlib_ng.crc32(kind)) != crc:
                return False
            if kind == b"IEND":
                return rows.done
        previous = kind
        position = body_end + 4
    return False  # no IEND: let the full decode judge


_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})


class _Rows:
    """The image data's zlib stream, inflated a step at a time and weighed as it comes."""

    def __init__(self, stride: int, height: int) -> None:
        self.stride = stride
        self.expected = stride * height
        self.seen = 0
        self.stream = zlib_ng.decompressobj()
        self.done = False
        self.since_pause = 0

    def inflate(self, chunk: memoryview) -> Generator[None, None, bool]:
        """Take one IDAT chunk's bytes, pausing after each ``STEP`` inflated; False at the
        first sign of damage."""
        if self.done:
            return False
        pending: bytes | memoryview = b""
        offset = 0
        try:
            while pending or offset < len(chunk):
                if not pending:
                    pending = chunk[offset : offset + _FEED]
                    offset += _FEED
                raw = self.stream.decompress(pending, STEP)
                pending = self.stream.unconsumed_tail
                if raw and not self._weigh(raw):
                    return False
                if self.since_pause >= STEP:
                    self.since_pause = 0
                    yield
                if self.stream.eof:
                    rest = pending or offset < len(chunk) or self.stream.unused_data
                    self.done = self.seen == self.expected and not rest
                    return self.done
                if not raw and pending:
                    return False  # no progress: never loop on what zlib will not take
        except _INFLATE_ERROR:
            return False
        return True

    def _weigh(self, raw: bytes) -> bool:
        if self.seen + len(raw) > self.expected:
            return False
        first = -self.seen % self.stride  # where the next row's filter-type byte is
        self.seen += len(raw)
        self.since_pause += len(raw)
        return max(raw[first :: self.stride], default=0) <= 4


def _jpeg_as_is(data: bytes, size: tuple[int, int]) -> bool:
    try:
        image = Image.open(io.BytesIO(data), formats=("JPEG",))
        if (
            image.format != "JPEG"  # not MPO: more than one picture is a change to make
            or image.mode != "RGB"
            or image.size != size
            or image.getexif().get(0x0112, 1) not in (1, None)
        ):
            return False
        width, height = size
        image.draft("RGB", ((width + 7) // 8, (height + 7) // 8))
        image.load()
    except Exception:  # anything Pillow raises: the full decode will say what it is
        return False
    return True
