"""A hosted model's client options: the TOML declarations turned into a msgspec Struct type.

Each ``[providers.replicate.models."SLUG".options] NAME = {type = ..., ...}`` becomes a field
``NAME: Annotated[T, Meta(...)] | UnsetType = UNSET`` of a Struct made at start with
``msgspec.defstruct``: the gateway validates a client's ``options`` against it (a 422 naming
``options.NAME`` before anything is charged) and publishes its JSON Schema in
``GET /api/v1/models``. An option the client leaves out stays UNSET and is not sent, so the
model's own default (or the entry's fixed ``inputs``) applies.
"""

from __future__ import annotations

import keyword
import re
from typing import Annotated, Any, Literal

import msgspec

from tryon_replicate.config import OptionSpec

__all__ = ["DEFAULT_MAX_LENGTH", "options_type"]

DEFAULT_MAX_LENGTH = 1000
_BASES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}
_INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def options_type(slug: str, declared: dict[str, OptionSpec]) -> type[msgspec.Struct] | None:
    """The Struct type of ``declared`` (None when the model declares none); ``ValueError``
    names the option that cannot be one."""
    if not declared:
        return None
    fields = [(name, _field_type(name, spec), msgspec.UNSET) for name, spec in declared.items()]
    return msgspec.defstruct(
        _type_name(slug),
        fields,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
        module=__name__,
    )


def _field_type(name: str, spec: OptionSpec) -> Any:
    where = f"options.{name}"
    if not _INPUT_NAME.match(name) or keyword.iskeyword(name):
        raise ValueError(f"{where}: an option is named like the model's input (letters, digits, _)")
    base = _BASES[spec.type]
    numeric = spec.type in ("integer", "number")
    if (spec.minimum is not None or spec.maximum is not None) and not numeric:
        raise ValueError(f"{where}: minimum and maximum are for integer and number options")
    if spec.minimum is not None and spec.maximum is not None and spec.minimum > spec.maximum:
        raise ValueError(f"{where}: minimum is above maximum")
    if spec.max_length is not None and spec.type != "string":
        raise ValueError(f"{where}: max_length is for string options")
    meta: dict[str, Any] = {}
    if spec.description:
        meta["description"] = spec.description
    if spec.choices is not None:
        choices = _choices(where, spec)
        kind: Any = Literal[choices]
    else:
        kind = base
        if numeric:
            meta.update(_bounds(where, spec))
        elif spec.type == "string":
            meta["max_length"] = spec.max_length or DEFAULT_MAX_LENGTH
    annotated = Annotated[kind, msgspec.Meta(**meta)] if meta else kind
    return annotated | msgspec.UnsetType


def _choices(where: str, spec: OptionSpec) -> tuple[Any, ...]:
    choices = tuple(spec.choices or ())
    if not choices:
        raise ValueError(f"{where}: choices is empty")
    if spec.type == "boolean" or spec.type == "number":
        raise ValueError(f"{where}: choices are for string and integer options")
    wanted = str if spec.type == "string" else int
    if any(type(choice) is not wanted for choice in choices):
        raise ValueError(f"{where}: every choice must be a {spec.type}")
    if len(set(choices)) != len(choices):
        raise ValueError(f"{where}: a choice is listed twice")
    return choices


def _bounds(where: str, spec: OptionSpec) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    for key, value in (("ge", spec.minimum), ("le", spec.maximum)):
        if value is None:
            continue
        if spec.type == "integer" and value != int(value):
            raise ValueError(f"{where}: the bounds of an integer option are whole numbers")
        bounds[key] = int(value) if spec.type == "integer" else value
    return bounds


def _type_name(slug: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", slug)
    return "".join(word[:1].upper() + word[1:] for word in words if word) + "Options"
