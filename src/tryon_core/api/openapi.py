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
from litestar.openapi.spec import (
    Example,
    Link,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)

from tryon_core.api.errors import ErrorEnvelope

__all__ = [
    "AUTHED",
    "BINARY",
    "EXAMPLE_IMAGE",
    "KEYED",
    "KEY_OR_LINK",
    "SECURITY_SCHEMES",
    "SSE_EVENT",
    "body_operation",
    "errors",
    "link",
    "schema_of",
]

ERRORS = {
    400: "The request is invalid; `param` names the field (`invalid_request`, `invalid_image`).",
    401: "No API key, or a malformed, unknown or revoked one (`authentication`); a demo "
    "session that expired or was revoked (`demo_session_expired`, `demo_session_revoked`).",
    402: "Not enough credits for the request (`payment_required`), or past a demo session's "
    "cap (`demo_credit_limit`) or the key's credit limit (`key_limit_exceeded`).",
    403: "A key outside its scope or a demo session token on a route it does not open "
    "(`insufficient_scope`), a demo token from an origin it does not allow "
    "(`origin_not_allowed`), a model it may not use (`model_not_allowed`), or an invalid or "
    "expired signed link (`invalid_signature`).",
    404: "No such resource for this account, or no such model (`not_found`).",
    413: "The body, a form or an image is too large (`payload_too_large`).",
    415: "The body's or an image's media type is not one the route takes.",
    422: "Well-formed but unusable: no capable model, an upstream refused the input, an "
    "Idempotency-Key reused for another request.",
    429: "The upstream is rate limited and no fallback was left (`rate_limit_exceeded`), or one "
    "of the gateway's own limits on the caller is reached (`too_many_requests`); see "
    "`Retry-After`.",
    500: "An unexpected failure; logged, never described to the caller (`server`).",
    502: "Every upstream attempt failed (`provider_unavailable`, `bad_response`, ...).",
    503: "The database or file store is unavailable; retry after `Retry-After`.",
    504: "The upstream did not answer in time (`timeout`).",
}
"""What each status means on this API; every one is answered with the error envelope."""

AUTHED = (401, 403, 503)
"""What any route that takes an API key (and reads the database) can answer besides its own:
403 is a key outside the route's scope."""

KEY_SCHEME = "ApiKey"
SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    KEY_SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="tryon_…",
        description="An API key of the account: `Authorization: Bearer tryon_…`, of the scope "
        "the route needs (inference or management); on the routes open to demo sessions, a "
        "demo session's token (`tryon_demo_…`) from an origin it allows.",
    )
}
KEYED: list[dict[str, list[str]]] = [{KEY_SCHEME: []}]
"""``security=`` for a route that needs an API key."""
KEY_OR_LINK: list[dict[str, list[str]]] = [{KEY_SCHEME: []}, {}]
"""``security=`` for a route that takes an API key or a signed link instead."""


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


def body_operation(
    content: dict[str, Any],
    *,
    examples: dict[str, dict[str, Any]] | None = None,
    links: dict[int, dict[str, Link]] | None = None,
    answers: dict[int, dict[str, Any]] | None = None,
) -> type[Operation]:
    """An ``operation_class`` that documents a body as ``{media type: msgspec type}`` (none
    when empty), ``examples`` of it as ``{media type: {name: value}}``, ``links`` from a
    response to the operations its values lead to as ``{status: {name: link}}``, and
    ``answers``: a response's media types as ``{status: {media type: msgspec type or
    Schema}}``, where the handler builds its own Response (one route, several media types)."""

    @dataclass
    class Documented(Operation):
        def __post_init__(self) -> None:
            if content:
                self.request_body = RequestBody(
                    required=True,
                    content={
                        media: OpenAPIMediaType(
                            schema=schema_of(type_),
                            examples={
                                name: Example(value=value)
                                for name, value in (examples or {}).get(media, {}).items()
                            }
                            or None,
                        )
                        for media, type_ in content.items()
                    },
                )
            for status, named in (links or {}).items():
                response = (self.responses or {})[str(status)]
                assert isinstance(response, OpenAPIResponse)
                response.links = {**(response.links or {}), **named}
            for status, media_types in (answers or {}).items():
                response = (self.responses or {})[str(status)]
                assert isinstance(response, OpenAPIResponse)
                response.content = {
                    media: OpenAPIMediaType(
                        schema=type_ if isinstance(type_, Schema) else schema_of(type_)
                    )
                    for media, type_ in media_types.items()
                }

    return Documented


def link(method: str, path: str, **parameters: str) -> Link:
    """A link to the operation ``method path`` (by ``operationRef``, stable as long as the
    path is), its parameters given as runtime expressions such as ``$response.body#/id``."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return Link(operation_ref=f"#/paths/{pointer}/{method.lower()}", parameters=parameters)


EXAMPLE_IMAGE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAUUlEQVR42u3PMQ0AMAg"
    "AMJhC5CARWVPBQdI6aE5XXPbiOAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAY"
    "F9H6axAhCWnvu4AAAAAElFTkSuQmCC"
)
"""A 64 x 64 PNG of one colour, the smallest picture every model must take: the person and the
garment of the examples (a real request sends photos)."""

BINARY = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
"""The body of a file answer: its bytes."""

SSE_EVENT = Schema(
    type=OpenAPIType.OBJECT,
    required=["data"],
    properties={"data": Schema(type=OpenAPIType.STRING)},
    description="One server-sent event: `data` is a chat.completion.chunk as JSON, or "
    "`[DONE]` last. Comment lines (`: TRYON PROCESSING`) keep the stream alive meanwhile.",
)
"""One event of a streamed chat completion (OpenAPI 3.1: ``schema`` describes each event)."""
