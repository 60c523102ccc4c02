"""tryon-core provider plugin: Replicate (hosted try-on models listed in TOML)."""

from tryon_replicate.adapter import ReplicateAdapter
from tryon_replicate.config import DEFAULT_BASE_URL, HostedModel, OptionSpec, ReplicateConfig
from tryon_replicate.models import configured_models

__all__ = [
    "DEFAULT_BASE_URL",
    "HostedModel",
    "OptionSpec",
    "ReplicateAdapter",
    "ReplicateConfig",
    "configured_models",
]
