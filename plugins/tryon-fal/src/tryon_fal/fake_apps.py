"""What the fake fal knows of each app: its input schema, checked the way fal's pydantic
models check it, and the shape of its output.

A violation is one pydantic-style item ``{"loc": ["body", FIELD], "msg", "type", "input"}``;
fal answers the list of them as ``422 {"detail": [...]}`` when the result is fetched. Image
fields take an http(s) URL or a data URI ``data:image/…;base64,…`` in the standard base64
alphabet with padding (URL-safe base64 does not decode). Unknown fields are ignored, as
pydantic ignores them, but noted so that tests can assert there are none.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image

from tryon_core.testing import result_image

__all__ = [
    "APPS",
    "AppSchema",
    "Checked",
    "Resolve",
    "check_input",
    "image_size",
    "output_json",
    "person_and_garments",
    "render_image",
]

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)
_INT_MAX = 2**63 - 1

Resolve = Callable[[str], bytes | None]
"""Bytes for an http(s) URL the fake serves itself, or None (it cannot reach others)."""


@dataclass
class Checked:
    """The outcome of checking one input: violations, decoded images, a summary to record."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    images: dict[str, list[bytes]] = field(default_factory=dict)
    images_seen: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


Check = Callable[[str, Any, Checked, Resolve], None]


@dataclass(frozen=True, kw_only=True)
class AppSchema:
    """One endpoint's input fields (name -> (required, check)) and output shape."""

    fields: dict[str, tuple[bool, Check]]
    output: Literal["images", "image"]
    person: str
    garment: str | None = None
    count: str | None = None
    format_field: str | None = None
    default_format: str = "png"
    seed_in_output: bool = False
    nsfw: Literal["list", "bool", None] = None


def _fail(out: Checked, name: str, kind: str, msg: str, value: Any) -> None:
    shown = value if not isinstance(value, str) or len(value) <= 64 else value[:64] + "…"
    out.errors.append({"loc": ["body", name], "msg": msg, "type": kind, "input": shown})


def _string(name: str, value: Any, out: Checked, resolve: Resolve) -> None:
    if not isinstance(value, str):
        _fail(out, name, "string_type", "Input should be a valid string", value)
    else:
        out.fields[name] = value


def _boolean(name: str, value: Any, out: Checked, resolve: Resolve) -> None:
    if not isinstance(value, bool):
        _fail(out, name, "bool_type", "Input should be a valid boolean", value)
    else:
        out.fields[name] = value


def _integer(low: int = -_INT_MAX, high: int = _INT_MAX) -> Check:
    def check(name: str, value: Any, out: Checked, resolve: Resolve) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(out, name, "int_type", "Input should be a valid integer", value)
        elif value < low:
            _fail(out, name, "greater_than_equal", f"Input should be >= {low}", value)
        elif value > high:
            _fail(out, name, "less_than_equal", f"Input should be <= {high}", value)
        else:
            out.fields[name] = value

    return check


def _number(low: float, high: float) -> Check:
    def check(name: str, value: Any, out: Checked, resolve: Resolve) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(out, name, "float_type", "Input should be a valid number", value)
        elif not low <= value <= high:
            _fail(out, name, "less_than_equal", f"Input should be in [{low}, {high}]", value)
        else:
            out.fields[name] = value

    return check


def _literal(*values: str) -> Check:
    expected = ", ".join(f"'{v}'" for v in values[:-1]) + f" or '{values[-1]}'"

    def check(name: str, value: Any, out: Checked, resolve: Resolve) -> None:
        if value not in values or not isinstance(value, str):
            _fail(out, name, "literal_error", f"Input should be {expected}", value)
        else:
            out.fields[name] = value

    return check


def _image(name: str, value: Any, out: Checked, resolve: Resolve) -> None:
    data = _image_bytes(name, value, out, resolve)
    if data is not None:
        out.images.setdefault(name, []).append(data)


def _image_list(name: str, value: Any, out: Checked, resolve: Resolve) -> None:
    if not isinstance(value, list):
        _fail(out, name, "list_type", "Input should be a valid list", value)
        return
    if not value:
        _fail(out, name, "too_short", "List should have at least 1 item after validation", value)
        return
    for index, item in enumerate(value):
        data = _image_bytes(f"{name}.{index}", item, out, resolve)
        if data is not None:
            out.images.setdefault(name, []).append(data)


def _image_size(name: str, value: Any, out: Checked, resolve: Resolve) -> None:
    presets = ("square_hd", "square", "portrait_4_3", "portrait_16_9")
    landscapes = ("landscape_4_3", "landscape_16_9")
    if isinstance(value, str):
        _literal(*presets, *landscapes)(name, value, out, resolve)
    elif not (isinstance(value, dict) and set(value) <= {"width", "height"}):
        _fail(out, name, "model_type", "Input should be a preset or {width, height}", value)


def _image_bytes(loc: str, value: Any, out: Checked, resolve: Resolve) -> bytes | None:
    if not isinstance(value, str):
        _fail(out, loc, "string_type", "Input should be a valid string", value)
        return None
    seen: dict[str, Any] = {"field": loc}
    out.images_seen.append(seen)
    match = _DATA_URI.match(value)
    if match:
        seen.update(scheme="data", mime=match["mime"])
        try:
            data = base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError):
            _load_error(out, loc, value)
            return None
    elif value.startswith(("http://", "https://")):
        seen.update(scheme="url")
        found = resolve(value)
        if found is None:
            _fail(out, loc, "file_download_error", "Failed to download the file.", value)
            return None
        data = found
    else:
        _load_error(out, loc, value)
        return None
    try:
        with Image.open(io.BytesIO(data)) as opened:
            seen.update(format=opened.format, size=list(opened.size), bytes=len(data))
            opened.verify()
    except Exception:
        _load_error(out, loc, value)
        return None
    return data


def _load_error(out: Checked, loc: str, value: Any) -> None:
    _fail(
        out,
        loc,
        "image_load_error",
        "Failed to load the image. Please ensure the image file is not corrupted and is in a "
        "supported format.",
        value,
    )


def check_input(schema: AppSchema, body: dict[str, Any], resolve: Resolve) -> Checked:
    """Check a submitted input against an app's schema, as the app would."""
    out = Checked()
    for name, (required, check) in schema.fields.items():
        if name in body:
            check(name, body[name], out, resolve)
        elif required:
            _fail(out, name, "missing", "Field required", None)
    out.unknown = sorted(set(body) - set(schema.fields))
    return out


def _kontext() -> AppSchema:
    ratios = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
    return AppSchema(
        fields={
            "prompt": (True, _string),
            "image_urls": (True, _image_list),
            "aspect_ratio": (False, _literal(*ratios)),
            "guidance_scale": (False, _number(1, 20)),
            "num_images": (False, _integer(1, 4)),
            "output_format": (False, _literal("jpeg", "png")),
            "safety_tolerance": (False, _literal("1", "2", "3", "4", "5", "6")),
            "seed": (False, _integer()),
            "sync_mode": (False, _boolean),
            "enhance_prompt": (False, _boolean),
        },
        output="images",
        person="image_urls",
        count="num_images",
        format_field="output_format",
        default_format="jpeg",
        seed_in_output=True,
        nsfw="list",
    )


def _vton(extra: dict[str, tuple[bool, Check]], **kwargs: Any) -> AppSchema:
    return AppSchema(
        fields={
            "human_image_url": (True, _image),
            "garment_image_url": (True, _image),
            **extra,
            "sync_mode": (False, _boolean),
        },
        output="image",
        person="human_image_url",
        garment="garment_image_url",
        **kwargs,
    )


APPS: dict[str, AppSchema] = {
    "fal-ai/flux-pro/kontext/multi": _kontext(),
    "fal-ai/flux-pro/kontext/max/multi": _kontext(),
    "fal-ai/fashn/tryon/v1.6": AppSchema(
        fields={
            "model_image": (True, _image),
            "garment_image": (True, _image),
            "category": (False, _literal("tops", "bottoms", "one-pieces", "auto")),
            "garment_photo_type": (False, _literal("auto", "model", "flat-lay")),
            "mode": (False, _literal("performance", "balanced", "quality")),
            "moderation_level": (False, _literal("none", "permissive", "conservative")),
            "num_samples": (False, _integer(1, 4)),
            "seed": (False, _integer(0, 2**32 - 1)),
            "output_format": (False, _literal("png", "jpeg")),
            "segmentation_free": (False, _boolean),
            "sync_mode": (False, _boolean),
        },
        output="images",
        person="model_image",
        garment="garment_image",
        count="num_samples",
        format_field="output_format",
    ),
    "fal-ai/kling/v1-5/kolors-virtual-try-on": _vton({}),
    "fal-ai/cat-vton": _vton(
        {
            "cloth_type": (True, _literal("upper", "lower", "overall", "inner", "outer")),
            "image_size": (False, _image_size),
            "num_inference_steps": (False, _integer(1, 100)),
            "guidance_scale": (False, _number(0, 20)),
            "seed": (False, _integer()),
        }
    ),
    "fal-ai/leffa/virtual-tryon": _vton(
        {
            "garment_type": (True, _literal("upper_body", "lower_body", "dresses")),
            "num_inference_steps": (False, _integer(1, 100)),
            "guidance_scale": (False, _number(0, 20)),
            "output_format": (False, _literal("png", "jpeg")),
            "enable_safety_checker": (False, _boolean),
            "seed": (False, _integer()),
        },
        format_field="output_format",
        seed_in_output=True,
        nsfw="bool",
    ),
}


def person_and_garments(schema: AppSchema, images: dict[str, list[bytes]]) -> Sequence[bytes]:
    """All input images, person first (for ``result_image``)."""
    ordered = list(images.get(schema.person, []))
    if schema.garment:
        ordered += images.get(schema.garment, [])
    return ordered


def render_image(
    person: bytes, garments: list[bytes], *, fmt: str, variant: int, black: bool
) -> bytes:
    """The fake's try-on (black when it plays a flagged image)."""
    data = result_image(person, garments, output_format=fmt, variant=variant)
    if not black:
        return data
    with Image.open(io.BytesIO(data)) as made:
        size = made.size
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, format="PNG" if fmt == "png" else "JPEG")
    return buffer.getvalue()


def image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None, None


def output_json(
    schema: AppSchema, fields: dict[str, Any], files: list[dict[str, Any]], flagged: bool
) -> dict[str, Any]:
    """The app's output JSON."""
    output: dict[str, Any] = {}
    if schema.output == "images":
        output["images"] = files
    elif files:
        output["image"] = files[0]
    if schema.seed_in_output:
        output["seed"] = fields.get("seed", 42)
    if schema.nsfw == "list":
        output["has_nsfw_concepts"] = [flagged] * len(files)
        output["prompt"] = fields.get("prompt", "")
        output["timings"] = {}
    elif schema.nsfw == "bool":
        output["has_nsfw_concepts"] = flagged
    return output
