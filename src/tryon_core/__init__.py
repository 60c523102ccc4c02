"""tryon-core: a self-hosted, OpenAI-compatible gateway for virtual try-on."""

from tryon_core.hookspecs import hookimpl
from tryon_core.provider import (
    Adapter,
    Capabilities,
    InputImage,
    ModelSpec,
    OutputImage,
    ProviderConfig,
    ProviderContext,
    ProviderRequest,
    ProviderSpec,
)

__all__ = [
    "Adapter",
    "Capabilities",
    "InputImage",
    "ModelSpec",
    "OutputImage",
    "ProviderConfig",
    "ProviderContext",
    "ProviderRequest",
    "ProviderSpec",
    "hookimpl",
]
__version__ = "0.1.0"
