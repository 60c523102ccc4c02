"""The offline engine passes the plugin contract kit like any other provider."""

from __future__ import annotations

import tryon_local.plugin

from tryon_core.testing.contract import ProviderContract


class TestLocalContract(ProviderContract):
    plugin = tryon_local.plugin
    provider = "local"
