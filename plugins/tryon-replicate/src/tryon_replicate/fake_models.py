"""The models the fake Replicate hosts, and how it checks a prediction's input against one.

Replicate validates ``input`` against the version's OpenAPI ``Input`` schema before it
creates a prediction: required inputs, JSON types, ``enum`` values, ``minimum``/``maximum``,
and ``format: uri`` for files (an ``http(s)`` URL or a data URL). A failure is a 422 problem
with ``invalid_fields`` (``{"type", "field": "input.NAME", "description"}``). Inputs the
schema does not name are accepted (Cog ignores them); the fake records them.

The catalog holds the two models the README's examples use, with the input names seen in
public code that runs them (their full schemas, ranges included, could not be checked here),
and one made-up official model, ``tryon-test/outfit``, that runs by name and makes several
images per prediction.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CATALOG", "OUTFIT_ENTRY", "FakeModel", "InputField", "check_input", "openapi_schema"]

InputType = Literal["uri", "string", "integer", "number", "boolean"]


@dataclass(frozen=True)
class InputField:
    type: InputType
    required: bool = False
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class FakeModel:
    """A model on the fake: ``person``/``garment`` name the file inputs it renders from,
    ``count`` the input that sets how many images it makes; ``output`` is one URL or a list."""

    owner: str
    name: str
    version: str
    inputs: dict[str, InputField]
    person: str
    garment: str
    output: Literal["uri", "list"] = "uri"
    count: str | None = None
    by_name: bool = False
    deployments: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.name}"


IDM_VTON = FakeModel(
    owner="cuuupid",
    name="idm-vton",
    version="c871bb9b046607b680449ecbae55fd8c6d945e0a1948644bf2361b3d021d3ff4",
    inputs={
        "human_img": InputField("uri", required=True),
        "garm_img": InputField("uri", required=True),
        "garment_des": InputField("string"),
        "category": InputField("string", enum=("upper_body", "lower_body", "dresses")),
        "mask_img": InputField("uri"),
        "crop": InputField("boolean"),
        "seed": InputField("integer"),
        "steps": InputField("integer", minimum=1, maximum=40),
        "force_dc": InputField("boolean"),
        "mask_only": InputField("boolean"),
    },
    person="human_img",
    garment="garm_img",
    deployments=("acme/idm-vton-prod",),
)
CATVTON_FLUX = FakeModel(
    owner="mmezhov",
    name="catvton-flux",
    version="cc41d1b963023987ed2ddf26e9264efcc96ee076640115c303f95b0010f6a958",
    inputs={
        "image": InputField("uri", required=True),
        "garment": InputField("uri", required=True),
        "num_steps": InputField("integer", minimum=1),
        "guidance_scale": InputField("number", minimum=0),
        "seed": InputField("integer"),
    },
    person="image",
    garment="garment",
    output="list",
)
OUTFIT = FakeModel(
    owner="tryon-test",
    name="outfit",
    version="0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
    inputs={
        "person_image": InputField("uri", required=True),
        "garment_image": InputField("uri", required=True),
        "garment_type": InputField("string", enum=("upper", "lower", "full")),
        "prompt": InputField("string"),
        "seed": InputField("integer"),
        "num_outputs": InputField("integer", minimum=1, maximum=4),
        "quality": InputField("string", enum=("fast", "balanced", "best")),
        "guidance": InputField("number", minimum=0, maximum=10),
    },
    person="person_image",
    garment="garment_image",
    output="list",
    count="num_outputs",
    by_name=True,
)
CATALOG = (IDM_VTON, CATVTON_FLUX, OUTFIT)

OUTFIT_ENTRY: dict[str, Any] = {
    "model": "tryon-test/outfit",
    "credits": 2,
    "person": "person_image",
    "garment": "garment_image",
    "category": "garment_type",
    "categories": {"auto": "full", "tops": "upper", "bottoms": "lower", "one-pieces": "full"},
    "prompt": "prompt",
    "seed": "seed",
    "outputs": "num_outputs",
    "max_outputs": 4,
    "options": {
        "quality": {"type": "string", "choices": ["fast", "balanced", "best"]},
        "guidance": {"type": "number", "minimum": 0, "maximum": 10},
    },
}
"""The ``[providers.replicate.models]`` entry that serves ``tryon-test/outfit`` (by name, with
its version's latest, several images per prediction, a prompt and two options)."""


def openapi_schema(model: FakeModel) -> dict[str, Any]:
    """The version's ``openapi_schema`` as Cog writes it (the parts clients read)."""
    properties: dict[str, Any] = {}
    for order, (name, spec) in enumerate(model.inputs.items()):
        prop: dict[str, Any] = {"title": name.replace("_", " ").title(), "x-order": order}
        prop.update(
            {"type": "string", "format": "uri"} if spec.type == "uri" else {"type": spec.type}
        )
        if spec.enum is not None:
            prop["enum"] = list(spec.enum)
        if spec.minimum is not None:
            prop["minimum"] = spec.minimum
        if spec.maximum is not None:
            prop["maximum"] = spec.maximum
        properties[name] = prop
    required = [name for name, spec in model.inputs.items() if spec.required]
    uri = {"type": "string", "format": "uri"}
    output = uri if model.output == "uri" else {"type": "array", "items": uri}
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {
            "schemas": {
                "Input": {
                    "type": "object",
                    "title": "Input",
                    "required": required,
                    "properties": properties,
                },
                "Output": {"title": "Output", **output},
            }
        },
    }


def check_input(model: FakeModel, data: Any) -> tuple[list[dict[str, str]], dict[str, bytes]]:
    """The ``invalid_fields`` Replicate would list for ``data``, and the files it carries."""
    if not isinstance(data, dict):
        return [_invalid("invalid_type", "input", "Invalid type. Expected: object")], {}
    problems: list[dict[str, str]] = []
    files: dict[str, bytes] = {}
    for name, spec in model.inputs.items():
        if name not in data:
            if spec.required:
                problems.append(_invalid("required", "input", f"{name} is required"))
            continue
        problem = _check_value(name, spec, data[name], files)
        if problem is not None:
            problems.append(problem)
    return problems, files


def _check_value(
    name: str, spec: InputField, value: Any, files: dict[str, bytes]
) -> dict[str, str] | None:
    where = f"input.{name}"
    if not _is_type(spec.type, value):
        expected = "string" if spec.type == "uri" else spec.type
        return _invalid("invalid_type", where, f"Invalid type. Expected: {expected}")
    if spec.enum is not None and value not in spec.enum:
        allowed = ", ".join(f'"{v}"' for v in spec.enum)
        return _invalid("enum", where, f"{where} must be one of the following: {allowed}")
    if spec.minimum is not None and value < spec.minimum:
        return _invalid("number_gte", where, f"Must be greater than or equal to {spec.minimum:g}")
    if spec.maximum is not None and value > spec.maximum:
        return _invalid("number_lte", where, f"Must be less than or equal to {spec.maximum:g}")
    if spec.type == "uri":
        data = _file(value)
        if data is None:
            return _invalid("format", where, "Does not match format 'uri'")
        files[name] = data
    return None


def _is_type(kind: InputType, value: Any) -> bool:
    if kind in ("uri", "string"):
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return type(value) is int
    return type(value) in (int, float)


def _file(value: str) -> bytes | None:
    """The bytes of a data URL (b"" for an http(s) link, which the fake does not fetch), or
    None when ``value`` is not a URI Replicate takes."""
    if value.startswith(("https://", "http://")):
        return b""
    if not value.startswith("data:"):
        return None
    header, comma, payload = value.partition(",")
    if not comma or not header.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def _invalid(kind: str, where: str, description: str) -> dict[str, str]:
    return {"type": kind, "field": where, "description": description}
