"""tryon-core provider plugin: FASHN's virtual try-on API (``fashn/tryon-v1.6``,
``fashn/tryon-v1.5``)."""

from tryon_fashn.adapter import FashnAdapter
from tryon_fashn.models import (
    CREDITS_PER_IMAGE,
    DEFAULT_BASE_URL,
    MODELS,
    TRYON_V1_5,
    TRYON_V1_6,
    FashnConfig,
    FashnOptions,
)

__all__ = [
    "CREDITS_PER_IMAGE",
    "DEFAULT_BASE_URL",
    "MODELS",
    "TRYON_V1_5",
    "TRYON_V1_6",
    "FashnAdapter",
    "FashnConfig",
    "FashnOptions",
]
