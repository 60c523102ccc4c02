"""The per-request options each fal app takes (``ModelSpec.options``), with fal's own names.

A field left UNSET is not sent: the app's own default applies (or, where this plugin's config
has a key for it, the config's).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["DiffusionOptions", "FashnOptions", "KontextOptions"]

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class KontextOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of FLUX.1 Kontext on fal."""

    guidance_scale: (
        Annotated[
            float,
            msgspec.Meta(
                ge=1, le=20, description="How strictly the instruction is followed (fal: 3.5)."
            ),
        ]
        | Unset
    ) = UNSET
    aspect_ratio: (
        Annotated[
            Literal["21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"],
            msgspec.Meta(description="The output's aspect ratio (fal: the person photo's)."),
        ]
        | Unset
    ) = UNSET
    safety_tolerance: (
        Annotated[
            Literal["1", "2", "3", "4", "5", "6"],
            msgspec.Meta(
                description='Moderation, "1" strictest to "6" (default: [providers.fal] '
                "safety_tolerance)."
            ),
        ]
        | Unset
    ) = UNSET
    enhance_prompt: (
        Annotated[bool, msgspec.Meta(description="Let fal rewrite the instruction first.")] | Unset
    ) = UNSET


class FashnOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of FASHN's try-on on fal."""

    mode: (
        Annotated[
            Literal["performance", "balanced", "quality"],
            msgspec.Meta(
                description="Speed against quality (default: [providers.fal] fashn_mode)."
            ),
        ]
        | Unset
    ) = UNSET
    garment_photo_type: (
        Annotated[
            Literal["auto", "flat-lay", "model"],
            msgspec.Meta(description="What the garment photo shows (fal: auto)."),
        ]
        | Unset
    ) = UNSET
    moderation_level: (
        Annotated[
            Literal["conservative", "permissive", "none"],
            msgspec.Meta(description="FASHN's content moderation (fal: permissive)."),
        ]
        | Unset
    ) = UNSET
    segmentation_free: (
        Annotated[
            bool,
            msgspec.Meta(
                description="Skip the clothing segmentation: better for bulky garments, "
                "may keep parts of the original outfit (fal: true)."
            ),
        ]
        | Unset
    ) = UNSET


class DiffusionOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of the diffusion try-on apps on fal (CatVTON, Leffa)."""

    num_inference_steps: (
        Annotated[
            int,
            msgspec.Meta(ge=1, le=100, description="Denoising steps: more is slower, finer."),
        ]
        | Unset
    ) = UNSET
    guidance_scale: (
        Annotated[
            float,
            msgspec.Meta(ge=0, le=20, description="How strongly the garment is imposed (2.5)."),
        ]
        | Unset
    ) = UNSET
