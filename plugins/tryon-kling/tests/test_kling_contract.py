"""tryon-kling passes the plugin contract kit against its own fake."""

from __future__ import annotations

from typing import Any, ClassVar

import tryon_kling.plugin
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY

from tryon_core.errors import (
    BadResponse,
    ContentRefused,
    InputRejected,
    NoImage,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)
from tryon_core.testing.contract import FaultExpectation, ProviderContract


class TestKlingContract(ProviderContract):
    plugin = tryon_kling.plugin
    provider = "kling"
    config: ClassVar[dict[str, Any]] = {
        "access_key": TEST_ACCESS_KEY,
        "secret_key": TEST_SECRET_KEY,
        "poll_interval": 0.02,
    }
    faults: ClassVar[dict[str, FaultExpectation]] = {
        # Kling documents no wait hint; a Retry-After header is honoured when present.
        "rate_limit": FaultExpectation(RateLimited, hint=True),
        "quota": FaultExpectation(ProviderMisconfigured),
        "server_error": FaultExpectation(ProviderUnavailable),
        "hang": FaultExpectation(ProviderTimeout),
        "malformed": FaultExpectation(BadResponse),
        "no_image": FaultExpectation(NoImage),
        "bad_image": FaultExpectation(BadResponse),
        "content_refused": FaultExpectation(ContentRefused),
        "invalid_input": FaultExpectation(InputRejected),
        "auth": FaultExpectation(ProviderMisconfigured),
        "task_failed": FaultExpectation(TaskFailed),
        "slow_task": FaultExpectation(None),
    }
    submission = ("POST", "/v1/images/kolors-virtual-try-on")
