"""The typed registrar plugins register with, and the registry the core reads."""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from tryon_core.amounts import MAX_CREDITS, is_credits
from tryon_core.provider import ModelSpec, ProviderSpec

__all__ = ["Registrar", "Registry"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$")


class Registry:
    """Every registered provider and model, keyed by provider name and model slug."""

    def __init__(self) -> None:
        self.providers: dict[str, ProviderSpec] = {}
        self.models: dict[str, tuple[ProviderSpec, ModelSpec]] = {}


class Registrar:
    """Handed to ``tryon_register_providers``; refuses anything inconsistent."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def add_provider(self, spec: ProviderSpec) -> None:
        """Register a provider and all of its models, or raise ``ValueError`` and add nothing."""
        if not _NAME.match(spec.name):
            raise ValueError(f"provider name {spec.name!r} must match {_NAME.pattern}")
        if spec.name in self._registry.providers:
            raise ValueError(f"provider {spec.name!r} is registered twice")
        if not spec.models and spec.models_from_config is None:
            raise ValueError(f"provider {spec.name!r} registers no models")
        self._check_models(spec.models)
        self._registry.providers[spec.name] = spec
        for model in spec.models:
            self._registry.models[model.slug] = (spec, model)

    def add_models(self, spec: ProviderSpec, models: Sequence[ModelSpec]) -> None:
        """Add models a registered provider derived from its config (all or none)."""
        self._check_models(models)
        for model in models:
            self._registry.models[model.slug] = (spec, model)

    def _check_models(self, models: Sequence[ModelSpec]) -> None:
        seen: set[str] = set()
        for model in models:
            if not isinstance(model, ModelSpec):
                raise TypeError(f"{model!r} is not a ModelSpec")
            if not _SLUG.match(model.slug) or model.slug == "auto":
                raise ValueError(f"model slug {model.slug!r} must look like 'vendor/model'")
            if model.slug in self._registry.models or model.slug in seen:
                raise ValueError(f"model slug {model.slug!r} is registered twice")
            if not is_credits(model.credits):
                raise ValueError(
                    f"model {model.slug!r}: credits (its price per image) must be a whole "
                    f"number from 0 to {MAX_CREDITS}"
                )
            caps = model.capabilities
            if caps.max_garments < 1 or caps.max_outputs < 1 or not caps.categories:
                raise ValueError(f"model {model.slug!r} declares impossible capabilities")
            if model.options is not None:
                _check_options(model)
            seen.add(model.slug)


def _check_options(model: ModelSpec) -> None:
    """An options type must be a Struct with a default for every field and a JSON Schema."""
    options = model.options
    if not (isinstance(options, type) and issubclass(options, msgspec.Struct)):
        raise ValueError(f"model {model.slug!r}: options must be a msgspec.Struct type")
    required = [f.encode_name for f in msgspec.structs.fields(options) if f.required]
    if required:
        raise ValueError(
            f"model {model.slug!r}: every option needs a default; {', '.join(required)} has none"
        )
    try:
        msgspec.json.schema(options)
    except TypeError as exc:
        raise ValueError(f"model {model.slug!r}: options have no JSON Schema: {exc}") from None
