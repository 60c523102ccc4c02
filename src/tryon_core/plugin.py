"""The plugin API: everything a provider plugin uses from the core, in one import.

A plugin imports only from here (and, in its tests, from :mod:`tryon_core.testing`)::

    from tryon_core.plugin import (
        BadResponse, Capabilities, ModelSpec, OutputImage, ProviderConfig, ProviderContext,
        ProviderRequest, ProviderSpec, Registrar, classify_status, hookimpl, json_body, poll,
    )

The names below are the stable surface; the modules they come from are the core's own
business and may move. docs/plugins.md walks through them.
"""

from __future__ import annotations

from tryon_core.b64 import decode as b64decode
from tryon_core.b64 import encode as b64encode
from tryon_core.errors import (
    BadResponse,
    ContentRefused,
    InputRejected,
    NoImage,
    ProviderError,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)
from tryon_core.hookspecs import hookimpl
from tryon_core.imaging import sniff
from tryon_core.provider import (
    CATEGORIES,
    IMAGE_TYPES,
    Adapter,
    CancellableAdapter,
    Capabilities,
    Category,
    ImageType,
    InputImage,
    ModelSpec,
    OutputFormat,
    OutputImage,
    ProviderConfig,
    ProviderContext,
    ProviderRequest,
    ProviderSpec,
)
from tryon_core.registry import Registrar
from tryon_core.upstream import (
    INLINE_BYTES,
    SendOnce,
    build_for_upstream,
    classify_status,
    error_object,
    fit_image,
    fit_image_base64,
    image_fits,
    json_body,
    poll,
    retry_after,
)

__all__ = [
    "CATEGORIES",
    "IMAGE_TYPES",
    "INLINE_BYTES",
    "Adapter",
    "BadResponse",
    "CancellableAdapter",
    "Capabilities",
    "Category",
    "ContentRefused",
    "ImageType",
    "InputImage",
    "InputRejected",
    "ModelSpec",
    "NoImage",
    "OutputFormat",
    "OutputImage",
    "ProviderConfig",
    "ProviderContext",
    "ProviderError",
    "ProviderMisconfigured",
    "ProviderRequest",
    "ProviderSpec",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "Registrar",
    "SendOnce",
    "TaskFailed",
    "b64decode",
    "b64encode",
    "build_for_upstream",
    "classify_status",
    "error_object",
    "fit_image",
    "fit_image_base64",
    "hookimpl",
    "image_fits",
    "json_body",
    "poll",
    "retry_after",
    "sniff",
]
