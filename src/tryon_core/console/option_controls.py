"""A model's options as the playground's form controls, made from the JSON Schema that
``GET /api/v1/models`` publishes for it (:func:`tryon_core.model_options.options_schema`).

An enum (or a boolean) becomes a choice whose first entry leaves the option unset; a number or
an integer a number field with the schema's bounds; a string a text field; anything else a
field taking a JSON value. A choice's values are JSON texts, so that the page's script sends
each option with the type the model declares. What the form cannot check (an exclusive bound,
a pattern) the server does, and its 422 is shown beside the field.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from tryon_core.gateway import Gateway
from tryon_core.model_options import options_schema

__all__ = ["Choice", "ModelOptionControls", "OptionControl", "controls", "model_option_controls"]

Kind = Literal["choice", "number", "integer", "text", "json"]


class Choice(msgspec.Struct, frozen=True):
    value: str
    """The value as JSON text (``"high"``, ``true``, ``4``): what the script sends."""
    label: str


class OptionControl(msgspec.Struct, frozen=True, kw_only=True):
    """One option of a model, as a form control."""

    name: str
    """The option's name as clients send it (``options.NAME``)."""
    label: str
    kind: Kind
    description: str = ""
    limits: str = ""
    """The bounds in words ("From 1 to 20."), for the help text."""
    required: bool = False
    choices: tuple[Choice, ...] = ()
    default: str = ""
    """The schema's default as text ("" when the model does not say)."""
    minimum: str = ""
    maximum: str = ""
    step: str = ""
    min_length: str = ""
    max_length: str = ""

    @property
    def unset_label(self) -> str:
        """The first choice, which leaves the option to the model."""
        return f"default ({self.default})" if self.default else "default"


class ModelOptionControls(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    controls: tuple[OptionControl, ...]


def model_option_controls(gateway: Gateway) -> list[ModelOptionControls]:
    """Every enabled model that declares options, by slug, with its controls."""
    return [
        ModelOptionControls(slug=entry.slug, controls=controls(entry.model.options))
        for entry in sorted(gateway.catalog.entries.values(), key=lambda e: e.slug)
        if entry.model.options is not None
    ]


@functools.cache
def controls(options: type[msgspec.Struct]) -> tuple[OptionControl, ...]:
    """The controls of one options type, in the order it declares its fields."""
    schema = options_schema(options)
    definitions: Mapping[str, Any] = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    return tuple(
        _control(name, _resolved(prop, definitions), required=name in required)
        for name, prop in schema["properties"].items()
    )


def _resolved(prop: Mapping[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """``prop`` with its ``$ref`` followed and a nullable ``anyOf`` reduced to its other member
    (null is what an unset option means already)."""
    merged = dict(prop)
    ref = merged.pop("$ref", None)
    if isinstance(ref, str):
        merged = {**definitions.get(ref.rsplit("/", 1)[-1], {}), **merged}
    members = merged.get("anyOf")
    if isinstance(members, list):
        others = [m for m in members if m.get("type") != "null"]
        if len(others) == 1:
            del merged["anyOf"]
            merged = {**_resolved(others[0], definitions), **merged}
    return merged


def _control(name: str, prop: Mapping[str, Any], *, required: bool) -> OptionControl:
    common: dict[str, Any] = {
        "name": name,
        "label": prop.get("title") or name.replace("_", " ").capitalize(),
        "description": prop.get("description", ""),
        "required": required,
        "default": "" if prop.get("default") is None else _text(prop["default"]),
    }
    kind = prop.get("type")
    values = prop.get("enum", [prop["const"]] if "const" in prop else None)
    if values is not None:
        choices = tuple(Choice(_json(v), _text(v)) for v in values)
        return OptionControl(kind="choice", choices=choices, **common)
    if kind == "boolean":
        choices = (Choice("true", "true"), Choice("false", "false"))
        return OptionControl(kind="choice", choices=choices, **common)
    if kind in ("number", "integer"):
        return _number(kind, prop, common)
    if kind == "string":
        return OptionControl(
            kind="text",
            min_length=_number_text(prop.get("minLength")),
            max_length=_number_text(prop.get("maxLength")),
            limits=_length_words(prop.get("minLength"), prop.get("maxLength")),
            **common,
        )
    return OptionControl(kind="json", limits="A JSON value.", **common)


def _number(
    kind: Literal["number", "integer"], prop: Mapping[str, Any], common: dict[str, Any]
) -> OptionControl:
    low, low_open = _bound(prop, "minimum", "exclusiveMinimum")
    high, high_open = _bound(prop, "maximum", "exclusiveMaximum")
    step = prop.get("multipleOf")
    return OptionControl(
        kind=kind,
        minimum=_number_text(low),
        maximum=_number_text(high),
        step=_number_text(step) if step is not None else ("1" if kind == "integer" else "any"),
        limits=_range_words(low, low_open, high, high_open, step),
        **common,
    )


def _bound(prop: Mapping[str, Any], closed: str, open_: str) -> tuple[float | None, bool]:
    if prop.get(open_) is not None:
        return prop[open_], True
    return prop.get(closed), False


def _range_words(
    low: float | None, low_open: bool, high: float | None, high_open: bool, step: float | None
) -> str:
    lower = "" if low is None else f"{'more than' if low_open else 'at least'} {_text(low)}"
    upper = "" if high is None else f"{'less than' if high_open else 'at most'} {_text(high)}"
    if low is not None and high is not None and not (low_open or high_open):
        words = f"from {_text(low)} to {_text(high)}"
    else:
        words = " and ".join(part for part in (lower, upper) if part)
    if step is not None:
        words = f"{words}, in steps of {_text(step)}" if words else f"in steps of {_text(step)}"
    return f"{words[:1].upper()}{words[1:]}." if words else ""


def _length_words(shortest: int | None, longest: int | None) -> str:
    if shortest and longest:
        return f"{shortest} to {longest} characters."
    if longest is not None:
        return f"Up to {longest} characters."
    return f"At least {shortest} characters." if shortest else ""


def _number_text(value: float | None) -> str:
    return "" if value is None else _text(value)


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _text(value: Any) -> str:
    """A value as a person reads it: a string as itself, anything else as JSON."""
    return value if isinstance(value, str) else _json(value)
