"""``[providers.replicate]``: the token, the API's origin, sync mode, and the hosted models.

Replicate hosts thousands of models, each with inputs of its own names. The gateway knows none
of them in code: an operator lists the try-on models to serve under
``[providers.replicate.models."SLUG"]`` and says which of the model's inputs receives the
person photo, the garment photo, the category, the prompt, the seed and the number of images
(:class:`HostedModel`). ``tryon_replicate.models`` checks each entry at start and turns it into
the gateway's model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from tryon_core.plugin import Category, ProviderConfig

__all__ = ["DEFAULT_BASE_URL", "HostedModel", "OptionSpec", "ReplicateConfig"]

DEFAULT_BASE_URL = "https://api.replicate.com"

Scalar = str | int | float


class OptionSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One input of the model a client may set through ``options`` (``options.NAME``).

    ``type`` is the JSON type; ``minimum``/``maximum`` bound numbers, ``choices`` lists the only
    values allowed, ``max_length`` bounds a string (1000 characters unless said).
    """

    type: Literal["string", "integer", "number", "boolean"]
    description: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: list[Scalar] | None = None
    max_length: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None


class HostedModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One model on Replicate, as ``[providers.replicate.models."SLUG"]`` describes it.

    Exactly one of ``model`` (``owner/name``, with an optional ``version`` id) and
    ``deployment`` (``owner/name`` of one of your deployments) says what runs. The other
    keys name the model's inputs: ``person`` and ``garment`` (required) receive the photos as
    data URLs; ``category`` receives the value ``categories`` gives the request's category;
    ``prompt``, ``seed`` and ``outputs`` (the number of images, up to ``max_outputs``) receive
    the request's own. ``inputs`` are sent with every prediction; ``options`` are the inputs a
    client may set.
    """

    credits: int
    person: str
    garment: str
    model: str | None = None
    version: str | None = None
    deployment: str | None = None
    name: str | None = None
    description: str | None = None
    category: str | None = None
    categories: dict[Category, Scalar] = msgspec.field(default_factory=dict)
    prompt: str | None = None
    seed: str | None = None
    outputs: str | None = None
    max_outputs: Annotated[int, msgspec.Meta(ge=1, le=16)] = 1
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    options: dict[str, OptionSpec] = msgspec.field(default_factory=dict)


class ReplicateConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``api_token`` is sent as ``Authorization: Bearer``. ``wait`` (1 to 60) asks Replicate to
    hold the create call open that many seconds (``Prefer: wait=N``) so that a quick
    prediction answers in one call; 0 never waits. ``poll_interval`` is the first wait
    between status polls (it grows to 5 s). ``max_image_bytes`` bounds each photo sent as a
    data URL; larger ones are re-encoded and shrunk to fit."""

    secrets = ("api_token",)

    api_token: str | None = None
    base_url: str | None = DEFAULT_BASE_URL
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    wait: Annotated[int, msgspec.Meta(ge=0, le=60)] = 0
    poll_interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    max_image_bytes: Annotated[int, msgspec.Meta(ge=65_536)] = 1_000_000
    models: dict[str, HostedModel] = msgspec.field(default_factory=dict)
