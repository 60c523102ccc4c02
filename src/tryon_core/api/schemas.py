"""Wire types of the gateway's own HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from tryon_core.amounts import Credits
from tryon_core.config import MAX_LIMIT
from tryon_core.fallback import Attempt

__all__ = [
    "Architecture",
    "CreditsResponse",
    "ImageOut",
    "JobAccepted",
    "KeyCreated",
    "KeyData",
    "KeyLimits",
    "KeyList",
    "ModelList",
    "ModelObject",
    "NewKey",
    "Pricing",
    "TryOnCapabilities",
    "TryOnResponse",
    "Usage",
]


class Pricing(msgspec.Struct, kw_only=True):
    """OpenRouter's decimal-string fields (zero: we bill in credits) plus our credit price."""

    credits_per_image: int
    prompt: str = "0"
    completion: str = "0"
    request: str = "0"
    image: str = "0"


class Architecture(msgspec.Struct, kw_only=True):
    modality: str = "text+image->image"
    input_modalities: list[str] = msgspec.field(default_factory=lambda: ["image", "text"])
    output_modalities: list[str] = msgspec.field(default_factory=lambda: ["image"])
    tokenizer: str = "none"
    instruct_type: None = None


class TopProvider(msgspec.Struct, kw_only=True):
    is_moderated: bool = False
    context_length: int | None = None
    max_completion_tokens: int | None = None


class TryOnCapabilities(msgspec.Struct, kw_only=True):
    execution: str
    max_garments: int
    categories: list[str]
    max_outputs: int
    input_formats: list[str]
    max_input_bytes: int
    min_input_side: int
    max_input_side: int
    uses_prompt: bool
    supports_seed: bool
    options: dict[str, Any] | None = None
    """The model's own options as JSON Schema (an object schema), sent as ``options`` in a
    request; None: the model takes none."""


class ModelObject(msgspec.Struct, kw_only=True):
    id: str
    canonical_slug: str
    name: str
    description: str
    created: int
    owned_by: str
    pricing: Pricing
    architecture: Architecture
    top_provider: TopProvider
    tryon: TryOnCapabilities | None
    supported_parameters: list[str]
    object: Literal["model"] = "model"
    context_length: int | None = None
    per_request_limits: None = None


class ModelList(msgspec.Struct, kw_only=True):
    data: list[ModelObject]
    object: Literal["list"] = "list"


class ImageOut(msgspec.Struct, kw_only=True):
    url: str
    content_type: str
    width: int
    height: int


class Usage(msgspec.Struct, kw_only=True):
    credits: int


class TryOnResponse(msgspec.Struct, kw_only=True):
    id: str
    model: str
    created: int
    images: list[ImageOut]
    usage: Usage
    attempts: list[Attempt]
    status: Literal["completed"] = "completed"
    object: Literal["tryon"] = "tryon"


class JobAccepted(msgspec.Struct, kw_only=True):
    """The ``202`` answer to an async submission (camelCase, as the API has always said)."""

    jobId: str
    status: Literal["queued"]
    statusUrl: str
    wsUrl: str


class CreditsResponse(msgspec.Struct, kw_only=True):
    account_id: str
    balance: int
    reserved: int
    object: Literal["credits"] = "credits"


class KeyData(msgspec.Struct, kw_only=True, omit_defaults=False):
    id: str
    name: str
    prefix: str
    account_id: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    scope: Literal["inference", "management"]
    credits_spent: int
    """Credits charged for the generations this key opened (its usage)."""
    label: str
    """OpenRouter's name for what identifies the key to people: its prefix, then "…"."""
    limit: int | None
    """Credits the key may use per ``limit_reset`` period; null: no limit of its own."""
    limit_remaining: int | None
    limit_reset: Literal["none", "daily", "weekly", "monthly"]
    usage: int
    """Credits charged for the key's generations, all time (= ``credits_spent``)."""
    usage_daily: int
    usage_weekly: int
    usage_monthly: int
    requests_per_minute: int | None
    """The key's own limit; null: ``[limits] requests_per_minute`` applies."""
    concurrent_generations: int | None
    """The key's own limit; null: ``[limits] concurrent_generations`` applies."""


class KeyList(msgspec.Struct, kw_only=True):
    data: list[KeyData]
    object: Literal["list"] = "list"


class KeyCreated(msgspec.Struct, kw_only=True):
    data: KeyData
    key: str


LimitReset = Literal["none", "daily", "weekly", "monthly"]
RateLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)]


class NewKey(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    scope: Literal["inference", "management"] = "inference"
    limit: Credits | None = None
    limit_reset: LimitReset = "none"
    requests_per_minute: RateLimit | None = None
    concurrent_generations: RateLimit | None = None


class KeyLimits(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /api/v1/keys/{key_id}``: a field left out is kept; null clears it."""

    limit: Credits | msgspec.UnsetType | None = msgspec.UNSET
    limit_reset: LimitReset | msgspec.UnsetType = msgspec.UNSET
    requests_per_minute: RateLimit | msgspec.UnsetType | None = msgspec.UNSET
    concurrent_generations: RateLimit | msgspec.UnsetType | None = msgspec.UNSET
