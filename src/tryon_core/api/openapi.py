"""OpenAPI beyond what Litestar infers: error answers, and bodies the handlers parse themselves.

Every failure leaves as the one error envelope (:mod:`tryon_core.api.errors`); each route
names the statuses it can answer with through :func:`errors`, so the document shows the
envelope under each of them rather than Litestar's own validation-error shape.

Litestar documents a request body only when it parses it; ``POST /api/v1/tryon`` chooses by
Content-Type, so its body is described here from the same msgspec types that parse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from tryon_core.api.errors import ErrorEnvelope

__all__ = ["AUTHED", "body_operation", "errors", "schema_of"]

ERRORS = {
    400: "The request is invalid; `param` names the field (`invalid_request`, `invalid_image`).",
    401: "No API key, or a malformed, unknown or revoked one (`authentication`).",
    402: "Not enough credits for the request (`payment_required`).",
    403: "The signed link is invalid or has expired (`invalid_signature`).",
    404: "No such resource for this account, or no such model (`not_found`).",
    413: "The body, a form or an image is too large (`payload_too_large`).",
    415: "The body's or an image's media type is not one the route takes.",
    422: "Well-formed but unusable: no capable model, an upstream refused the input, an "
    "Idempotency-Key reused for another request.",
    429: "The upstream is rate limited and no fallback was left; see `Retry-After`.",
    500: "An unexpected failure; logged, never described to the caller (`server`).",
    502: "Every upstream attempt failed (`provider_unavailable`, `bad_response`, ...).",
    503: "The database or file store is unavailable; retry after `Retry-After`.",
    504: "The upstream did not answer in time (`timeout`).",
}
"""What each status means on this API; every one is answered with the error envelope."""

AUTHED = (401, 503)
"""What any route that takes an API key (and reads the database) can answer besides its own."""


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """``responses=`` for a route: the error envelope under each status, and under 500."""
    return {
        status: ResponseSpec(
            data_container=ErrorEnvelope, description=ERRORS[status], generate_examples=False
        )
        for status in sorted({*statuses, 500})
    }


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
