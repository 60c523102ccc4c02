"""tryon-core provider plugin: Kling's Kolors virtual try-on (``kling/kolors-v1-5``,
``kling/kolors-v1``)."""

from tryon_kling.adapter import KlingAdapter
from tryon_kling.auth import TokenCache, mint_token
from tryon_kling.models import (
    CREDITS_PER_IMAGE,
    DEFAULT_BASE_URL,
    KOLORS_V1,
    KOLORS_V1_5,
    MODELS,
    KlingConfig,
)

__all__ = [
    "CREDITS_PER_IMAGE",
    "DEFAULT_BASE_URL",
    "KOLORS_V1",
    "KOLORS_V1_5",
    "MODELS",
    "KlingAdapter",
    "KlingConfig",
    "TokenCache",
    "mint_token",
]
