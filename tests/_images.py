"""Images made in memory for the imaging and egress tests."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image


def make(
    mode: str = "RGB",
    size: tuple[int, int] = (96, 80),
    fmt: str = "PNG",
    color: Any = None,
    **save: Any,
) -> bytes:
    """One image of ``mode`` and ``size`` saved as ``fmt``; a gradient unless ``color`` is set."""
    if color is not None:
        image = Image.new(mode, size, color)
    else:
        image = Image.linear_gradient("L").resize(size)
        if mode != "L":
            image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def animated(fmt: str, size: tuple[int, int] = (80, 80)) -> bytes:
    """Two frames: red, then blue."""
    first = Image.new("RGB", size, (255, 0, 0))
    second = Image.new("RGB", size, (0, 0, 255))
    buffer = io.BytesIO()
    first.save(buffer, fmt, save_all=True, append_images=[second], duration=100, loop=0)
    return buffer.getvalue()


def exif_rotated_jpeg(size: tuple[int, int] = (120, 80), orientation: int = 6) -> bytes:
    """A JPEG stored ``size`` wide with a red block top-left and an EXIF orientation tag."""
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def forged_png(width: int, height: int) -> bytes:
    """A tiny, well-formed-looking PNG whose IHDR (correct CRC) declares ``width``x``height``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def forged_webp(width: int, height: int) -> bytes:
    """A WebP whose VP8X header declares a ``width``x``height`` canvas over a tiny real image."""
    inner = make("RGB", (64, 64), "WEBP")
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + inner[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


def forged_jpeg(width: int, height: int) -> bytes:
    """A small JPEG whose SOF segment is patched to declare ``width``x``height``."""
    data = bytearray(make("RGB", (64, 64), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


NOT_IMAGES: dict[str, bytes] = {
    "empty": b"",
    "html": b"<!doctype html><html><body><img src=x></body></html>",
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="99"/>',
    "pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n",
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40,
    "gif": make("P", (80, 80), "GIF"),
    "bmp": make("RGB", (80, 80), "BMP"),
    "tiff": make("RGB", (80, 80), "TIFF"),
    "text": b"just some text",
    "riff_wave": b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 24,
}
