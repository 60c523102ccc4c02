"""Plan: which models may serve a request, in which order."""

from __future__ import annotations

from collections.abc import Sequence

from tryon_core.catalog import Catalog, Entry
from tryon_core.errors import Forbidden, NoCapableModel, NotFound, echo
from tryon_core.health import HealthTracker
from tryon_core.provider import InputImage
from tryon_core.request import TryOnRequest

__all__ = ["check_inputs", "plan"]


def plan(
    catalog: Catalog,
    request: TryOnRequest,
    health: HealthTracker,
    *,
    allowed: Sequence[str] | None = None,
) -> list[Entry]:
    """Ordered, capable candidates. Raises 404 for an unknown slug, 422 when none can serve.

    Order: the named model (or ``models`` list, or the ``auto`` list), each followed by its
    configured fallbacks, without repeats. Models cooling down after repeated failures are
    skipped unless nothing else is left. With ``allowed`` (a demo session's models), only
    those: naming another is a 403, and ``auto`` means them, in their order.
    """
    named = [(slug, f"models[{i}]") for i, slug in enumerate(request.models)]
    if request.model != "auto" and request.model not in request.models:
        named.insert(0, (request.model, "model"))
    ordered: list[str] = []
    for name, param in named or [("auto", "model")]:
        if name == "auto":
            chain = list(catalog.auto if allowed is None else allowed)
        elif name not in catalog:
            raise NotFound(
                f"Model {echo(name)!r} is not available on this gateway; see GET /api/v1/models.",
                param=param,
                type="model_not_found",
            )
        elif allowed is not None and name not in allowed:
            raise Forbidden(
                f"This demo session may use only {', '.join(allowed)}; not {echo(name)!r}.",
                param=param,
                type="model_not_allowed",
                metadata={"models": list(allowed)},
            )
        else:
            chain = [name, *catalog.fallbacks.get(name, [])]
        ordered += [
            s
            for s in chain
            if s in catalog and s not in ordered and (allowed is None or s in allowed)
        ]
    reasons: dict[str, str] = {}
    fields: set[str] = set()
    capable: list[Entry] = []
    for slug in ordered:
        entry = catalog.entries[slug]
        found = _incapable(entry, request)
        if found:
            fields.add(found[0])
            reasons[slug] = found[1]
        else:
            capable.append(entry)
    if not capable:
        raise NoCapableModel(
            "No available model can serve this request: "
            + "; ".join(f"{slug}: {why}" for slug, why in reasons.items()),
            param=fields.pop() if len(fields) == 1 else None,
            metadata={"reasons": reasons},
        )
    healthy = [e for e in capable if not health.is_cooling(e.slug)]
    return healthy or capable[-1:]


def _incapable(entry: Entry, request: TryOnRequest) -> tuple[str, str] | None:
    """The request field a model cannot honour, and why; None when it can serve."""
    caps = entry.model.capabilities
    if len(request.garments) > caps.max_garments:
        got = len(request.garments)
        return "garment_images", f"takes at most {caps.max_garments} garment image(s), got {got}"
    if request.category not in caps.categories:
        return "category", f"does not support category {request.category!r}"
    if request.n > caps.max_outputs:
        return "n", f"returns at most {caps.max_outputs} image(s) per request, n={request.n}"
    return None


def check_inputs(entry: Entry, images: list[tuple[str, InputImage]]) -> str | None:
    """Why this model cannot take these (already validated) images, or None."""
    caps = entry.model.capabilities
    for param, image in images:
        if image.content_type not in caps.input_formats:
            return f"{param}: {image.content_type} is not accepted"
        if len(image.data) > caps.max_input_bytes:
            return f"{param}: larger than {caps.max_input_bytes} bytes"
        if min(image.width, image.height) < caps.min_input_side:
            return f"{param}: a side is under {caps.min_input_side} px"
        if max(image.width, image.height) > caps.max_input_side:
            return f"{param}: a side is over {caps.max_input_side} px"
    return None
