"""tryon-core provider plugin: fal (FLUX Kontext and try-on apps on fal's queue)."""

from tryon_fal.adapter import FalAdapter
from tryon_fal.config import DEFAULT_BASE_URL, FalConfig
from tryon_fal.endpoints import ENDPOINTS, MODELS, Endpoint
from tryon_fal.prompt import instruction

__all__ = [
    "DEFAULT_BASE_URL",
    "ENDPOINTS",
    "MODELS",
    "Endpoint",
    "FalAdapter",
    "FalConfig",
    "instruction",
]
