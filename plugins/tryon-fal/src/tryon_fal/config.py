"""``[providers.fal]``: the key, the queue's origin and the few per-app options."""

from __future__ import annotations

from typing import Literal

from tryon_core.plugin import ProviderConfig

__all__ = ["DEFAULT_BASE_URL", "FalConfig"]

DEFAULT_BASE_URL = "https://queue.fal.run"


class FalConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``api_key`` is the fal key (``key_id:key_secret``), sent as ``Authorization: Key …``.

    ``base_url`` is the queue's origin; submit, status and result paths are appended to it.
    ``fashn_mode`` is FASHN's speed/quality trade-off; ``safety_tolerance`` is FLUX Kontext's
    moderation level ("1" strictest to "6" most permissive, a string on the wire);
    ``poll_interval`` is the first wait between status polls (it grows to 5 s).
    """

    secrets = ("api_key",)

    api_key: str | None = None
    base_url: str | None = DEFAULT_BASE_URL
    fashn_mode: Literal["performance", "balanced", "quality"] = "balanced"
    safety_tolerance: Literal["1", "2", "3", "4", "5", "6"] = "2"
    poll_interval: float = 0.5
