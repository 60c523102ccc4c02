"""tryon-core provider plugin ``openrouter``: image models through OpenRouter's chat completions.

The operator lists the models, each under a gateway slug with OpenRouter's slug and a price
(``[providers.openrouter.models."openrouter/NAME"]``); the fake of OpenRouter's API for tests
and ``tryon fakes serve`` is :mod:`tryon_openrouter.fake`.
"""

from tryon_openrouter.adapter import OpenRouterAdapter
from tryon_openrouter.config import DEFAULT_BASE_URL, ConfiguredModel, OpenRouterConfig
from tryon_openrouter.models import models_from_config
from tryon_openrouter.plugin import PROVIDER

__all__ = [
    "DEFAULT_BASE_URL",
    "PROVIDER",
    "ConfiguredModel",
    "OpenRouterAdapter",
    "OpenRouterConfig",
    "models_from_config",
]
