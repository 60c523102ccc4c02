"""tryon-kling passes the plugin contract kit against its own fake."""

from __future__ import annotations

from typing import Any, ClassVar

import tryon_kling.plugin
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY

from tryon_core.testing import ProviderContract


class TestKlingContract(ProviderContract):
    plugin = tryon_kling.plugin
    provider = "kling"
    config: ClassVar[dict[str, Any]] = {
        "access_key": TEST_ACCESS_KEY,
        "secret_key": TEST_SECRET_KEY,
        "poll_interval": 0.02,
    }
    submission = ("POST", "/v1/images/kolors-virtual-try-on")
