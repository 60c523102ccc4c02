"""Images in and out: sniff, bound, decode, orient and normalise.

Every image a client sends passes :func:`load_image` before an adapter sees it, and every image
an upstream returns passes :func:`describe_output` before a client sees it. The rules:

* The type comes from the bytes (JPEG, PNG, WebP), never from a file name or a declared type.
* Sizes are checked from the file header, by our own parser, before Pillow allocates anything:
  too many pixels or a side over ``max_side`` is refused as ``PayloadTooLarge`` (413,
  ``image_too_large``), the same status as too many bytes, so a client sees one answer for
  "too big" however it is measured. Pillow's own decompression-bomb guard stays on as a second
  line (see ``HARD_MAX_PIXELS``) and is mapped to the same error, never left to escape.
* Animated images (APNG, animated WebP) and multi-picture JPEGs keep their first frame only.
* Every image is proven whole (not truncated, not corrupt) before it is accepted. One that
  needs no change (below) is proven by :mod:`~tryon_core.image_proof` for less than a full
  decode where it can be (PNG, JPEG); anything else is decoded in full.
* EXIF orientation is applied; modes are normalised to 8-bit ``RGB`` or ``RGBA``. When nothing
  had to change the client's bytes are kept as they are; otherwise the image is re-encoded
  (JPEG at quality 92 when there is no alpha and the source was a JPEG, PNG otherwise; JPEG
  too when a PNG without alpha would not fit ``max_bytes``).
"""

from __future__ import annotations

import binascii
import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageFile, ImageOps

from tryon_core import b64
from tryon_core.errors import InvalidImage, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from tryon_core.image_proof import proven_as_is
from tryon_core.provider import ImageType, InputImage

__all__ = [
    "HARD_MAX_PIXELS",
    "ImageLimits",
    "UndecodableImage",
    "decode_data_url",
    "decodes_quickly",
    "describe_output",
    "encode",
    "load_image",
    "sniff",
]

#: No ``ImageLimits`` may allow more pixels than this (Pillow's own default ceiling).
HARD_MAX_PIXELS = 89_478_485

# Pillow's guards are a second line behind our own header checks: make sure nobody switched
# them off, and that truncated files are errors rather than grey bottoms.
if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > HARD_MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = HARD_MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False

_JPEG_QUALITY = 92
_WEBP_QUALITY = 90
_PIL_FORMATS: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("JPEG", "MPO"),
    "image/png": ("PNG",),
    "image/webp": ("WEBP",),
}
# Data-URL media types we accept; the bytes decide the real type either way.
_DATA_URL_TYPES = ("", "application/octet-stream")
_SPACES = " \t\r\n\f\v"
_NO_SPACES = str.maketrans("", "", _SPACES)


class UndecodableImage(ValueError):
    """An upstream's output is not an image we can decode, or breaks the limits."""


@dataclass(frozen=True, kw_only=True)
class ImageLimits:
    """Bounds for one image. ``max_pixels`` is width times height."""

    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 64
    max_side: int = 8192

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_pixels, self.min_side, self.max_side) < 1:
            raise ValueError("image limits must be positive")
        if self.min_side > self.max_side:
            raise ValueError("min_side must not exceed max_side")
        if self.max_pixels > HARD_MAX_PIXELS:
            raise ValueError(f"max_pixels must not exceed {HARD_MAX_PIXELS}")


def sniff(data: bytes) -> ImageType | None:
    """The image type the magic bytes announce: JPEG, PNG or WebP; anything else is None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_data_url(url: str, *, param: str, max_bytes: int) -> bytes:
    """The bytes of a ``data:[<mediatype>][;base64],<data>`` URL.

    Only base64 data is accepted (images are binary). A declared media type must be empty,
    ``image/*`` or ``application/octet-stream``; it is never trusted beyond that. The size is
    bounded from the length of the text before anything is decoded.

    A data URL is as big as the image and a third: the data after the comma is copied once
    (again without its line breaks if it has some), decoded, and let go.
    """
    if not url[:5].lower() == "data:":
        raise _bad_data_url(param, "is not a data: URL")
    comma = url.find(",", 5)
    if comma < 0:
        raise _bad_data_url(param, "is not a valid data: URL: it has no comma before the data")
    parts = [p.strip().lower() for p in url[5:comma].split(";")]
    if parts[-1] != "base64":
        raise _bad_data_url(param, "must be a base64 data: URL (data:image/png;base64,...)")
    media_type = parts[0]
    if not (media_type.startswith("image/") or media_type in _DATA_URL_TYPES):
        raise UnsupportedMediaType(
            f"{param} declares the media type {media_type[:64]!r}; send a JPEG, PNG or WebP image.",
            type="unsupported_image_format",
            param=param,
        )
    # Base64 gives 3 bytes per 4 characters; line breaks and spaces are allowed and not counted.
    # The bound is exact and taken before anything is copied or decoded. Most clients send no
    # spaces: the text is decoded as it is first, and counted and cleaned only if that fails
    # (each count is a pass over a text as big as the image).
    characters = len(url) - comma - 1
    data = None
    if characters // 4 * 3 <= max_bytes + 2:
        data = _base64(url[comma + 1 :], characters)
    if data is None:
        spaces = sum(url.count(space, comma) for space in _SPACES)
        characters -= spaces
        if characters // 4 * 3 > max_bytes + 2:
            raise _too_many_bytes(param, max_bytes)
        data = _base64(url[comma + 1 :].translate(_NO_SPACES), characters) if spaces else None
    if data is None:
        raise _bad_data_url(param, "is not valid base64 data")
    if len(data) > max_bytes:
        raise _too_many_bytes(param, max_bytes)
    if not data:
        raise _bad_data_url(param, "contains no data")
    return data


def inspect(data: bytes, *, param: str, limits: ImageLimits) -> tuple[ImageType, int, int]:
    """Type and size from the bytes and the header alone, checked against ``limits``: what can
    be refused without decoding a pixel (cheap enough for the event loop)."""
    if len(data) > limits.max_bytes:
        raise _too_many_bytes(param, limits.max_bytes)
    content_type = sniff(data)
    if content_type is None:
        raise UnsupportedMediaType(
            f"{param} is not a JPEG, PNG or WebP image.",
            type="unsupported_image_format",
            param=param,
        )
    size = _header_size(data, content_type)
    if size is None:
        raise _invalid(param, "its header is damaged")
    _check_dimensions(*size, param=param, limits=limits, check_min=True)
    return content_type, *size


def load_image(data: bytes, *, param: str, limits: ImageLimits, prove: bool = True) -> InputImage:
    """Validate and normalise one input image; see the module docstring for the rules.
    ``prove=False``: the caller has had :mod:`~tryon_core.image_proof` try already, and it said
    no; the image is decoded in full.

    Errors: ``PayloadTooLarge`` ``image_too_large`` (bytes, pixels or a side), 415
    ``UnsupportedMediaType`` ``unsupported_image_format``, ``InvalidImage`` ``image_too_small``
    or ``invalid_image`` (truncated, corrupt, inconsistent). Each names ``param``.
    """
    content_type, width, height = inspect(data, param=param, limits=limits)
    if prove and proven_as_is(data, content_type, (width, height)):
        return InputImage(data=data, content_type=content_type, width=width, height=height)
    image, oriented = _decode(data, content_type, param=param, limits=limits)
    width, height = oriented.size
    if min(width, height) < limits.min_side:  # the header agreed, but be sure
        raise _too_small(param, width, height, limits.min_side)
    normalised = _to_8bit(oriented)
    if normalised is image and getattr(image, "n_frames", 1) == 1:  # no mode change, no turn
        return InputImage(data=data, content_type=content_type, width=width, height=height)
    out_format: Literal["jpeg", "png"] = (
        "jpeg" if content_type == "image/jpeg" and normalised.mode == "RGB" else "png"
    )
    icc = image.info.get("icc_profile") if image.mode in ("RGB", "RGBA", "P") else None
    encoded = _encode(normalised, out_format, icc_profile=icc)
    if len(encoded) > limits.max_bytes and normalised.mode == "RGB" and out_format == "png":
        out_format = "jpeg"  # a lossless re-encoding of a lossy WebP can grow past the limit
        encoded = _encode(normalised, out_format, icc_profile=icc)
    if len(encoded) > limits.max_bytes:
        raise _too_many_bytes(param, limits.max_bytes, after="once normalised")
    return InputImage(
        data=encoded,
        content_type="image/jpeg" if out_format == "jpeg" else "image/png",
        width=width,
        height=height,
    )


def describe_output(data: bytes, *, limits: ImageLimits) -> tuple[ImageType, int, int]:
    """Sniffed type, width and height (after EXIF orientation) of an upstream's image.

    The image is proven whole as inputs are (:mod:`~tryon_core.image_proof`, else a full
    decode). ``limits.min_side`` is not applied to outputs. Raises :class:`UndecodableImage` (a
    ``ValueError``) otherwise.
    """
    if len(data) > limits.max_bytes:
        raise UndecodableImage(f"image is larger than {limits.max_bytes} bytes")
    content_type = sniff(data)
    if content_type is None:
        raise UndecodableImage("not a JPEG, PNG or WebP image")
    size = _header_size(data, content_type)
    if size is None:
        raise UndecodableImage("damaged image header")
    try:
        _check_dimensions(*size, param="output", limits=limits, check_min=False)
        if proven_as_is(data, content_type, size):
            return content_type, *size
        _, oriented = _decode(data, content_type, param="output", limits=limits)
    except (InvalidImage, PayloadTooLarge) as exc:
        raise UndecodableImage(exc.message) from None
    return content_type, oriented.width, oriented.height


QUICK_BYTES = 64 * 1024
"""Image bytes that cost less to handle on the event loop than a hop to a worker thread."""
QUICK_PIXELS = 256 * 256


def decodes_quickly(data: bytes, *, pixels: int | None = None) -> bool:
    """``data`` is small enough, in bytes and in the pixels its header declares (``pixels``,
    when the caller has read the header already), to decode on the event loop (well under a
    millisecond): a worker thread would cost more than it spares. Anything else, a
    decompression bomb included, is decoded in a thread."""
    if len(data) > QUICK_BYTES:
        return False
    if pixels is None:
        content_type = sniff(data)
        size = None if content_type is None else _header_size(data, content_type)
        if size is None:
            return False
        pixels = size[0] * size[1]
    return pixels <= QUICK_PIXELS


def encode(image: Image.Image, output_format: Literal["png", "jpeg", "webp"]) -> bytes:
    """Encode ``image`` as PNG, JPEG (quality 92; alpha flattened onto white) or WebP.

    The current frame is written, turned by its EXIF orientation (no EXIF is written), so the
    result looks as the source did and has the size :func:`describe_output` reported.
    """
    if output_format not in ("png", "jpeg", "webp"):
        raise ValueError(f"unknown output format {output_format!r}")
    if _has_orientation(image):
        image = ImageOps.exif_transpose(image)
    return _encode(_to_8bit(image), output_format)


# -- header parsing ---------------------------------------------------------------------------


def _header_size(data: bytes, content_type: str) -> tuple[int, int] | None:
    """Width and height from the file header alone, or None when the header is unreadable."""
    if content_type == "image/png":
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if content_type == "image/webp":
        return _webp_size(data)
    if content_type == "image/jpeg":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    body = data[20:30]
    if chunk == b"VP8X" and len(body) >= 10:
        return int.from_bytes(body[4:7], "little") + 1, int.from_bytes(body[7:10], "little") + 1
    if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(body[6:8], "little") & 0x3FFF,
            int.from_bytes(body[8:10], "little") & 0x3FFF,
        )
    return None


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    end = len(data)
    while pos < end:
        if data[pos] != 0xFF:
            return None
        while pos < end and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            return None
        marker = data[pos]
        pos += 1
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length field
            continue
        if marker in (0xD9, 0xDA) or pos + 2 > end:  # end of image / start of scan first
            return None
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if pos + 7 > end:
                return None
            height = int.from_bytes(data[pos + 3 : pos + 5], "big")
            width = int.from_bytes(data[pos + 5 : pos + 7], "big")
            return width, height
        pos += length
    return None


# -- decoding ---------------------------------------------------------------------------------


def _check_dimensions(
    width: int, height: int, *, param: str, limits: ImageLimits, check_min: bool
) -> None:
    if width < 1 or height < 1:
        raise _invalid(param, f"its header declares an empty size ({width}x{height})")
    if width > limits.max_side or height > limits.max_side:
        raise PayloadTooLarge(
            f"{param} is {width}x{height} pixels; no side may exceed {limits.max_side}.",
            type="image_too_large",
            param=param,
        )
    if width * height > limits.max_pixels:
        raise PayloadTooLarge(
            f"{param} is {width}x{height} pixels; at most {limits.max_pixels} pixels are allowed.",
            type="image_too_large",
            param=param,
        )
    if check_min and min(width, height) < limits.min_side:
        raise _too_small(param, width, height, limits.min_side)


def _decode(
    data: bytes, content_type: str, *, param: str, limits: ImageLimits
) -> tuple[Image.Image, Image.Image]:
    """Open and fully decode the first frame; return it and its EXIF-oriented version."""
    formats = _PIL_FORMATS[content_type]
    # No warnings.catch_warnings() here: it swaps process-wide state and races when images are
    # decoded in worker threads. Our header check already ran; Pillow's DecompressionBomb
    # warning (an exception under ``-W error``) or error is mapped below, and Pillow's own idea
    # of the size is checked again before a single pixel is decoded.
    try:
        image = Image.open(io.BytesIO(data), formats=formats)
        if image.format not in formats:
            raise _invalid(param, "its content does not match its signature")
        _check_dimensions(*image.size, param=param, limits=limits, check_min=False)
        image.seek(0)
        image.load()
        oriented = ImageOps.exif_transpose(image) if _has_orientation(image) else image
    except (InvalidImage, PayloadTooLarge):
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise PayloadTooLarge(
            f"{param} has too many pixels to decode safely.", type="image_too_large", param=param
        ) from None
    except Exception:  # Pillow raises OSError, ValueError, SyntaxError, struct.error, ...
        raise _invalid(param, "it is truncated or corrupt") from None
    return image, oriented


def _has_orientation(image: Image.Image) -> bool:
    try:
        return image.getexif().get(0x0112, 1) not in (1, None)
    except Exception:  # a broken EXIF block is not worth refusing the image for
        return False


def _to_8bit(image: Image.Image) -> Image.Image:
    """The same picture as 8-bit RGB or RGBA; ``image`` itself when it already is."""
    mode = image.mode
    transparent = image.has_transparency_data
    if mode == "RGBA" or (mode == "RGB" and not transparent):
        return image
    if mode.startswith("I"):  # I;16, I;16B, I: PNG's 16-bit grey; scale 0..65535, not clip
        scaled = image.convert("I").point(lambda v: v * (1 / 257))
        return scaled.convert("L").convert("RGB")
    if mode == "F":
        return image.convert("L").convert("RGB")
    if transparent or "A" in image.getbands():
        return image.convert("RGBA")
    return image.convert("RGB")  # P, L, 1, CMYK, YCbCr, LAB, HSV, RGBX


def _encode(image: Image.Image, output_format: str, *, icc_profile: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    extra: dict[str, object] = {"icc_profile": icc_profile} if icc_profile else {}
    if output_format == "jpeg":
        if image.mode == "RGBA":
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image.save(buffer, "JPEG", quality=_JPEG_QUALITY, **extra)
    elif output_format == "webp":
        image.save(buffer, "WEBP", quality=_WEBP_QUALITY, **extra)
    else:
        image.save(buffer, "PNG", **extra)
    return buffer.getvalue()


# -- errors -----------------------------------------------------------------------------------


def _base64(payload: str, characters: int) -> bytes | None:
    """Strict base64 of ``characters`` characters (padding added where a client dropped it), or
    None if it is not that. An ASCII str is decoded in place: no bytes copy of the text."""
    if characters % 4:
        payload += "=" * (-characters % 4)
    try:
        return b64.decode(payload)
    except (binascii.Error, ValueError):  # ValueError: not ASCII
        return None


def _too_many_bytes(param: str, max_bytes: int, *, after: str = "") -> PayloadTooLarge:
    when = f" {after}" if after else ""
    return PayloadTooLarge(
        f"{param} is larger than {max_bytes} bytes{when}.", type="image_too_large", param=param
    )


def _bad_data_url(param: str, reason: str) -> InvalidRequest:
    return InvalidRequest(f"{param} {reason}.", type="invalid_data_url", param=param)


def _too_small(param: str, width: int, height: int, min_side: int) -> InvalidImage:
    return InvalidImage(
        f"{param} is {width}x{height} pixels; each side must be at least {min_side}.",
        type="image_too_small",
        param=param,
    )


def _invalid(param: str, reason: str) -> InvalidImage:
    return InvalidImage(
        f"{param} is not a valid image: {reason}.", type="invalid_image", param=param
    )
