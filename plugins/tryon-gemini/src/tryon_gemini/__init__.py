"""tryon-core provider plugin: ``gemini`` (Google ``gemini-2.5-flash-image``)."""

from tryon_gemini.adapter import DEFAULT_BASE_URL, GeminiAdapter, GeminiConfig
from tryon_gemini.plugin import CREDITS_PER_IMAGE, MODEL, PROVIDER
from tryon_gemini.prompt import build_instruction

__all__ = [
    "CREDITS_PER_IMAGE",
    "DEFAULT_BASE_URL",
    "MODEL",
    "PROVIDER",
    "GeminiAdapter",
    "GeminiConfig",
    "build_instruction",
]
