"""``GET /api/v1/models``: the enabled models, readable by OpenAI and OpenRouter clients."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from tryon_core.api.deps import GatewayDep
from tryon_core.api.openapi import errors
from tryon_core.api.schemas import (
    Architecture,
    ModelList,
    ModelObject,
    Pricing,
    TopProvider,
    TryOnCapabilities,
)
from tryon_core.api.scopes import OPEN_TO_DEMO, principal_of
from tryon_core.catalog import Entry
from tryon_core.model_options import options_schema

_PARAMETERS = ["seed", "n"]


@get(
    "/api/v1/models",
    summary="List the models this gateway serves (no auth; a demo session's token, if sent, "
    "lists only the models it may use).",
    tags=["models"],
    responses=errors(401, 403),
    opt=OPEN_TO_DEMO,
)
async def list_models(request: Request[Any, Any, Any], gateway: GatewayDep) -> ModelList:
    catalog = gateway.catalog
    caller = principal_of(request)
    allowed = caller.models if caller is not None else None
    entries = sorted(
        (e for e in catalog.entries.values() if allowed is None or e.slug in allowed),
        key=lambda e: e.slug,
    )
    data = [_model(entry) for entry in entries]
    auto = [
        catalog.entries[s]
        for s in (catalog.auto if allowed is None else allowed)
        if s in catalog.entries
    ]
    if auto:
        data.insert(
            0,
            ModelObject(
                id="auto",
                canonical_slug="auto",
                name="Auto (best available)",
                description="Routes to the first capable, healthy model of: "
                + ", ".join(e.slug for e in auto),
                created=0,
                owned_by="tryon-core",
                pricing=Pricing(credits_per_image=max(e.credits for e in auto)),
                architecture=Architecture(),
                top_provider=TopProvider(),
                tryon=None,
                supported_parameters=_PARAMETERS,
            ),
        )
    return ModelList(data=data)


def _model(entry: Entry) -> ModelObject:
    model, caps = entry.model, entry.model.capabilities
    return ModelObject(
        id=model.slug,
        canonical_slug=model.slug,
        name=model.name,
        description=model.description,
        created=model.created,
        owned_by=model.owned_by or entry.provider.name,
        pricing=Pricing(credits_per_image=entry.credits),
        architecture=Architecture(),
        top_provider=TopProvider(),
        tryon=TryOnCapabilities(
            execution=caps.execution,
            max_garments=caps.max_garments,
            categories=list(caps.categories),
            max_outputs=caps.max_outputs,
            input_formats=list(caps.input_formats),
            max_input_bytes=caps.max_input_bytes,
            min_input_side=caps.min_input_side,
            max_input_side=caps.max_input_side,
            uses_prompt=caps.uses_prompt,
            supports_seed=caps.supports_seed,
            options=None if model.options is None else options_schema(model.options),
        ),
        supported_parameters=[p for p in _PARAMETERS if p != "seed" or caps.supports_seed],
    )
