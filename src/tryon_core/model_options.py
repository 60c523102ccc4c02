"""A request's per-model options (``ModelSpec.options``): checked against the candidate models
before anything is charged, then cut, for each model, to the options that model declares.

An option no candidate declares is a 422 naming it; so is a value a declaring model refuses
(each declaring model checks it by its own type). A model that does not declare an option the
client sent never receives it: its attempt records the option as dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from tryon_core.errors import InvalidOption, echo
from tryon_core.normalize import validation_message, validation_param

if TYPE_CHECKING:
    from tryon_core.catalog import Entry

__all__ = [
    "NO_OPTIONS",
    "AttemptOptions",
    "ModelOptions",
    "check_options",
    "declared",
    "options_schema",
    "stored_options",
]


class AttemptOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Which of the client's options one attempt's model received, and which it did not."""

    applied: list[str]
    dropped: list[str]


def stored_options(text: str | None) -> AttemptOptions | msgspec.UnsetType:
    """An attempt row's ``options`` column as reported (UNSET: the request sent none)."""
    return msgspec.UNSET if not text else msgspec.json.decode(text, type=AttemptOptions)


@functools.cache
def declared(options: type[msgspec.Struct] | None) -> frozenset[str]:
    """The option names (as clients send them) an options type declares."""
    if options is None:
        return frozenset()
    return frozenset(field.encode_name for field in msgspec.structs.fields(options))


@functools.cache
def options_schema(options: type[msgspec.Struct]) -> dict[str, Any]:
    """The options type as one self-contained JSON Schema object (its own ``$defs`` inside)."""
    schema = msgspec.json.schema(options)
    defs: dict[str, Any] = dict(schema.pop("$defs", {}))
    ref = schema.get("$ref", "")
    name = ref.rsplit("/", 1)[-1]
    body: dict[str, Any] = dict(defs.pop(name)) if name in defs else schema
    body.setdefault("type", "object")
    body.setdefault("properties", {})
    if defs:
        body["$defs"] = defs
    return body


class ModelOptions(msgspec.Struct, frozen=True):
    """A request's options, decoded for each candidate model that declares options."""

    sent: tuple[str, ...] = ()
    decoded: dict[str, Any] = msgspec.field(default_factory=dict)

    def for_model(self, entry: Entry) -> Any:
        """The instance of ``entry``'s options type to hand its adapter (None: none declared)."""
        return self.decoded.get(entry.slug)

    def attempt(self, entry: Entry) -> AttemptOptions | msgspec.UnsetType:
        """What an attempt at ``entry`` records: UNSET when the client sent no options."""
        if not self.sent:
            return msgspec.UNSET
        names = declared(entry.model.options)
        return AttemptOptions(
            applied=[name for name in self.sent if name in names],
            dropped=[name for name in self.sent if name not in names],
        )


NO_OPTIONS = ModelOptions()
"""A request that sent no options (frozen: one instance serves every such request)."""


def check_options(raw: Mapping[str, Any] | None, candidates: Sequence[Entry]) -> ModelOptions:
    """Decode ``raw`` (the request's ``options`` object) for every candidate, or raise 422."""
    raw = raw or {}
    unknown = [
        name for name in raw if not any(name in declared(e.model.options) for e in candidates)
    ]
    if unknown:
        name = unknown[0]
        takers = {e.slug: sorted(declared(e.model.options)) for e in candidates}
        raise InvalidOption(
            f"Option {echo(name)!r} is not taken by any model this request may use "
            f"({', '.join(takers)}); GET /api/v1/models lists each model's options.",
            param=f"options.{echo(name)}",
            metadata={"options": takers},
        )
    decoded: dict[str, Any] = {}
    for entry in candidates:
        options = entry.model.options
        if options is None:
            continue
        names = declared(options)
        mine = {name: value for name, value in raw.items() if name in names}
        try:
            decoded[entry.slug] = msgspec.convert(mine, options)
        except msgspec.ValidationError as exc:
            where = validation_param(exc)
            raise InvalidOption(
                f"{entry.slug} refuses options.{where}: {validation_message(exc)}"
                if where
                else f"{entry.slug} refuses these options: {validation_message(exc)}",
                param=f"options.{where}" if where else "options",
                metadata={"model": entry.slug},
            ) from None
    return ModelOptions(sent=tuple(raw), decoded=decoded)
