"""OpenAPI for bodies the handlers parse themselves (JSON or multipart on one route).

Litestar documents a request body only when it parses it; ``POST /api/v1/tryon`` chooses by
Content-Type, so its body is described here from the same msgspec types that parse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

__all__ = ["body_operation", "schema_of"]

_KEYS = {
    "minimum": "minimum",
    "maximum": "maximum",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_items",
    "maxItems": "max_items",
    "pattern": "pattern",
    "default": "default",
    "description": "description",
    "title": "title",
    "format": "format",
}


def schema_of(type_: Any) -> Schema:
    """An OpenAPI Schema for a msgspec type, with every ``$ref`` inlined."""
    (root,), components = msgspec.json.schema_components([type_])
    return _convert(root, components)


def _convert(node: dict[str, Any], components: dict[str, Any]) -> Schema:
    if "$ref" in node:
        return _convert(components[node["$ref"].rsplit("/", 1)[1]], components)
    kwargs: dict[str, Any] = {attr: node[key] for key, attr in _KEYS.items() if key in node}
    if "type" in node:
        kwargs["type"] = OpenAPIType(node["type"])
    if "enum" in node:
        kwargs["enum"] = node["enum"]
    if "properties" in node:
        kwargs["properties"] = {
            name: _convert(sub, components) for name, sub in node["properties"].items()
        }
        kwargs["required"] = node.get("required") or None
    if "items" in node:
        kwargs["items"] = _convert(node["items"], components)
    if "anyOf" in node:
        kwargs["any_of"] = [_convert(sub, components) for sub in node["anyOf"]]
    return Schema(**kwargs)


def body_operation(content: dict[str, Any]) -> type[Operation]:
    """An ``operation_class`` that documents a body as ``{media type: msgspec type}``."""

    @dataclass
    class WithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                required=True,
                content={
                    media: OpenAPIMediaType(schema=schema_of(type_))
                    for media, type_ in content.items()
                },
            )

    return WithBody
