"""The fal apps this plugin serves, each described once: its model, its endpoint id, how its
input JSON is built from a request, and where its output images are.

The queue protocol is the same for all of them (``tryon_fal.queue``). Prices are in credits
per output image, 1 credit ~ US$0.01 of fal's list price, rounded up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from tryon_core.plugin import (
    Capabilities,
    Category,
    InputImage,
    ModelSpec,
    OutputFormat,
    ProviderRequest,
    fit_image_base64,
)
from tryon_fal.config import FalConfig
from tryon_fal.options import DiffusionOptions, FashnOptions, KontextOptions
from tryon_fal.prompt import instruction

__all__ = ["CLOTH_TYPES", "ENDPOINTS", "GARMENT_TYPES", "MODELS", "Endpoint", "Inputs"]

#: CatVTON's ``cloth_type``; "auto" takes ``overall``, the mask that covers any single garment.
CLOTH_TYPES: dict[Category, str] = {
    "auto": "overall",
    "tops": "upper",
    "bottoms": "lower",
    "one-pieces": "overall",
}
#: Leffa's ``garment_type``; "auto" takes ``upper_body``, Leffa's default and the commonest case.
GARMENT_TYPES: dict[Category, str] = {
    "auto": "upper_body",
    "tops": "upper_body",
    "bottoms": "lower_body",
    "one-pieces": "dresses",
}

_ACCEPTED = ("image/jpeg", "image/png")  # what we send, as data URIs; WebP inputs are re-encoded


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """The request's images as the data URIs fal takes, person first."""

    person: str
    garments: tuple[str, ...]


Arguments = Callable[[ProviderRequest, FalConfig, Inputs], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """One fal app: ``output`` is ``images`` (a list of files) or ``image`` (one file)."""

    model: ModelSpec
    endpoint_id: str
    output: Literal["images", "image"]
    arguments: Arguments

    @property
    def app(self) -> str:
        """``owner/app``: the status and result URLs drop the endpoint's sub-path."""
        return "/".join(self.endpoint_id.split("/")[:2])

    def inputs(self, request: ProviderRequest) -> Inputs:
        """The images re-encoded only as far as fal needs (CPU-bound: run it in a thread)."""
        return Inputs(
            person=self._data_uri(request.person),
            garments=tuple(self._data_uri(g) for g in request.garments),
        )

    def _data_uri(self, image: InputImage) -> str:
        caps = self.model.capabilities
        encoded, content_type = fit_image_base64(
            image,
            formats=_ACCEPTED,
            max_bytes=caps.max_input_bytes,
            max_side=caps.max_input_side,
        )
        return f"data:{content_type};base64,{encoded}"


def _format(output_format: OutputFormat) -> str:
    """fal apps make JPEG or PNG; WebP is asked as lossless PNG and converted by the core."""
    return "jpeg" if output_format == "jpeg" else "png"


def _seeded(arguments: dict[str, Any], request: ProviderRequest) -> dict[str, Any]:
    """The arguments with the request's seed, and its options over them (what it sent)."""
    if request.seed is not None:
        arguments["seed"] = request.seed
    if request.options is not None:
        arguments.update(msgspec.to_builtins(request.options))
    return arguments


def _kontext(request: ProviderRequest, config: FalConfig, inputs: Inputs) -> dict[str, Any]:
    return _seeded(
        {
            "prompt": instruction(request.category, len(inputs.garments), request.prompt),
            "image_urls": [inputs.person, *inputs.garments],
            "num_images": request.n,
            "output_format": _format(request.output_format),
            "safety_tolerance": config.safety_tolerance,
        },
        request,
    )


def _fashn(request: ProviderRequest, config: FalConfig, inputs: Inputs) -> dict[str, Any]:
    return _seeded(
        {
            "model_image": inputs.person,
            "garment_image": inputs.garments[0],
            "category": request.category,
            "garment_photo_type": "auto",
            "mode": config.fashn_mode,
            "num_samples": request.n,
            "output_format": _format(request.output_format),
        },
        request,
    )


def _kolors(request: ProviderRequest, config: FalConfig, inputs: Inputs) -> dict[str, Any]:
    return {"human_image_url": inputs.person, "garment_image_url": inputs.garments[0]}


def _cat_vton(request: ProviderRequest, config: FalConfig, inputs: Inputs) -> dict[str, Any]:
    return _seeded(
        {
            "human_image_url": inputs.person,
            "garment_image_url": inputs.garments[0],
            "cloth_type": CLOTH_TYPES[request.category],
        },
        request,
    )


def _leffa(request: ProviderRequest, config: FalConfig, inputs: Inputs) -> dict[str, Any]:
    return _seeded(
        {
            "human_image_url": inputs.person,
            "garment_image_url": inputs.garments[0],
            "garment_type": GARMENT_TYPES[request.category],
            "output_format": _format(request.output_format),
        },
        request,
    )


def _capabilities(**kwargs: Any) -> Capabilities:
    return Capabilities(
        execution="submit-poll",
        input_formats=("image/jpeg", "image/png", "image/webp"),
        **kwargs,
    )


_KONTEXT = _capabilities(max_garments=3, max_outputs=4, uses_prompt=True, supports_seed=True)

ENDPOINTS: dict[str, Endpoint] = {
    e.model.slug: e
    for e in (
        Endpoint(
            model=ModelSpec(
                slug="fal/flux-kontext-pro",
                name="FLUX.1 Kontext [pro] on fal",
                description=(
                    "Black Forest Labs' image-editing model told to dress the person in the "
                    "garments: up to 3 garments, prompt-guided, up to 4 images per request."
                ),
                credits=4,
                owned_by="fal",
                capabilities=_KONTEXT,
                options=KontextOptions,
            ),
            endpoint_id="fal-ai/flux-pro/kontext/multi",
            output="images",
            arguments=_kontext,
        ),
        Endpoint(
            model=ModelSpec(
                slug="fal/flux-kontext-max",
                name="FLUX.1 Kontext [max] on fal",
                description=(
                    "The stronger, dearer FLUX Kontext: better prompt adherence and typography; "
                    "up to 3 garments, prompt-guided, up to 4 images per request."
                ),
                credits=8,
                owned_by="fal",
                capabilities=_KONTEXT,
                options=KontextOptions,
            ),
            endpoint_id="fal-ai/flux-pro/kontext/max/multi",
            output="images",
            arguments=_kontext,
        ),
        Endpoint(
            model=ModelSpec(
                slug="fal/fashn-tryon-v1.6",
                name="FASHN Try-On v1.6 on fal",
                description=(
                    "FASHN's dedicated try-on model: one garment (tops, bottoms, one-pieces or "
                    "auto-detected), up to 4 samples per request."
                ),
                credits=8,
                owned_by="fal",
                capabilities=_capabilities(max_outputs=4, supports_seed=True),
                options=FashnOptions,
            ),
            endpoint_id="fal-ai/fashn/tryon/v1.6",
            output="images",
            arguments=_fashn,
        ),
        Endpoint(
            model=ModelSpec(
                slug="fal/kling-kolors-v1-5",
                name="Kling Kolors Virtual Try-On v1.5 on fal",
                description="Kuaishou's Kolors try-on model: one garment, one image, no seed.",
                credits=7,
                owned_by="fal",
                capabilities=_capabilities(min_input_side=300),
            ),
            endpoint_id="fal-ai/kling/v1-5/kolors-virtual-try-on",
            output="image",
            arguments=_kolors,
        ),
        Endpoint(
            model=ModelSpec(
                slug="fal/cat-vton",
                name="CatVTON on fal",
                description=(
                    "The lightweight CatVTON diffusion try-on: one garment, one image; an "
                    "'auto' category repaints the whole outfit area."
                ),
                credits=2,
                owned_by="fal",
                capabilities=_capabilities(supports_seed=True),
                options=DiffusionOptions,
            ),
            endpoint_id="fal-ai/cat-vton",
            output="image",
            arguments=_cat_vton,
        ),
        Endpoint(
            model=ModelSpec(
                slug="fal/leffa",
                name="Leffa Virtual Try-On on fal",
                description=(
                    "Leffa's flow-field try-on: one garment, one image; an 'auto' category is "
                    "treated as a top."
                ),
                credits=4,
                owned_by="fal",
                capabilities=_capabilities(supports_seed=True),
                options=DiffusionOptions,
            ),
            endpoint_id="fal-ai/leffa/virtual-tryon",
            output="image",
            arguments=_leffa,
        ),
    )
}

MODELS: tuple[ModelSpec, ...] = tuple(e.model for e in ENDPOINTS.values())
