"""The gateway's models, from the entries of ``[providers.replicate.models]``.

Each entry is checked at start (a mistake stops it with ``providers.replicate:
models."SLUG": …``) and becomes a ``ModelSpec`` whose capabilities follow from what the entry
maps: no ``category`` input, only ``auto``; no ``prompt`` input, the client's prompt is not
taken; no ``outputs`` input, one image per request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal

from tryon_core.plugin import Capabilities, ModelSpec
from tryon_replicate.config import HostedModel, ReplicateConfig
from tryon_replicate.options import options_type

__all__ = ["Role", "configured_models", "input_roles", "model_spec", "request_roles"]

Role = Literal["person", "garment", "category", "prompt", "seed", "outputs", "fixed", "option"]
"""Who fills an input: the request (person, garment, prompt, seed, option), or the operator
(category values, outputs count, fixed inputs)."""

_OWNER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$", re.IGNORECASE)
_VERSION = re.compile(r"^[a-z0-9]{16,128}$")


def configured_models(config: ReplicateConfig) -> list[ModelSpec]:
    """Every configured model, checked; ``ValueError`` names the first bad entry."""
    return [model_spec(slug, hosted) for slug, hosted in config.models.items()]


def model_spec(slug: str, hosted: HostedModel) -> ModelSpec:
    try:
        target = _target(hosted)
        input_roles(hosted)
        _check_categories(hosted)
        if hosted.outputs is None and hosted.max_outputs != 1:
            raise ValueError("max_outputs above 1 needs `outputs`, the input that takes n")
        options = options_type(slug, hosted.options)
    except ValueError as exc:
        raise ValueError(f'models."{slug}": {exc}') from None
    categories = ("auto", *(c for c in ("tops", "bottoms", "one-pieces") if c in hosted.categories))
    return ModelSpec(
        slug=slug,
        name=hosted.name or target,
        description=hosted.description or f"{target} on Replicate.",
        credits=hosted.credits,
        owned_by="replicate",
        options=options,
        capabilities=Capabilities(
            execution="submit-poll",
            max_garments=1,
            categories=categories,  # type: ignore[arg-type]
            max_outputs=hosted.max_outputs,
            uses_prompt=hosted.prompt is not None,
            supports_seed=hosted.seed is not None,
        ),
    )


def input_roles(hosted: HostedModel) -> Mapping[str, Role]:
    """Each input the entry names, with who fills it; ``ValueError`` when two roles share one."""
    roles: dict[str, Role] = {}
    mapped: list[tuple[Role, str | None]] = [
        ("person", hosted.person),
        ("garment", hosted.garment),
        ("category", hosted.category),
        ("prompt", hosted.prompt),
        ("seed", hosted.seed),
        ("outputs", hosted.outputs),
    ]
    for role, name in mapped:
        if name is None:
            continue
        if not name:
            raise ValueError(f"`{role}` names no input")
        if name in roles:
            raise ValueError(f"the input {name!r} is both `{roles[name]}` and `{role}`")
        roles[name] = role
    for name in hosted.inputs:
        if name in roles:
            raise ValueError(f"inputs.{name} is also the `{roles[name]}` input")
        roles[name] = "fixed"
    for name in hosted.options:
        if roles.get(name, "fixed") != "fixed":
            raise ValueError(f"options.{name} is also the `{roles[name]}` input")
        roles[name] = "option"  # an option overrides the fixed input of the same name
    return roles


def request_roles(hosted: HostedModel, sent_options: Iterable[str]) -> Mapping[str, Role]:
    """``input_roles`` for one request: an option the client did not send is the operator's
    fixed input again (if the entry fixes it), so a refusal of it is not the client's."""
    roles = dict(input_roles(hosted))
    sent = set(sent_options)
    for name in hosted.options:
        if name not in sent:
            if name in hosted.inputs:
                roles[name] = "fixed"
            else:
                del roles[name]
    return roles


def _target(hosted: HostedModel) -> str:
    if (hosted.model is None) == (hosted.deployment is None):
        raise ValueError("set exactly one of `model` and `deployment`")
    if hosted.deployment is not None:
        if hosted.version is not None:
            raise ValueError("a deployment runs its own version: leave `version` out")
        if not _OWNER_NAME.match(hosted.deployment):
            raise ValueError(f"deployment {hosted.deployment!r} is not owner/name")
        return hosted.deployment
    assert hosted.model is not None
    if not _OWNER_NAME.match(hosted.model):
        raise ValueError(f"model {hosted.model!r} is not owner/name (a version goes in `version`)")
    if hosted.version is not None and not _VERSION.match(hosted.version):
        raise ValueError(f"version {hosted.version!r} is not a Replicate version id")
    return hosted.model


def _check_categories(hosted: HostedModel) -> None:
    if hosted.category is None and hosted.categories:
        raise ValueError("`categories` needs `category`, the input that takes them")
    if hosted.category is not None and not set(hosted.categories) - {"auto"}:
        raise ValueError("`category` needs `categories` for tops, bottoms or one-pieces")
