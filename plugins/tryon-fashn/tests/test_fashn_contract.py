"""tryon-fashn passes the plugin contract kit against its own fake."""

from __future__ import annotations

from typing import Any, ClassVar

import tryon_fashn.plugin
from tryon_fashn.fake import TEST_API_KEY

from tryon_core.testing import ProviderContract


class TestFashnContract(ProviderContract):
    plugin = tryon_fashn.plugin
    provider = "fashn"
    config: ClassVar[dict[str, Any]] = {"api_key": TEST_API_KEY, "poll_interval": 0.01}
    submission = ("POST", "/v1/run")


class TestFashnContractWithLinks(TestFashnContract):
    """The same with ``return_base64 = false``: results come as links, fetched behind the
    egress guard."""

    config: ClassVar[dict[str, Any]] = {**TestFashnContract.config, "return_base64": False}
