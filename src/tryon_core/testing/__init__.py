"""The test kit for tryon-core and for plugin authors (``pip install tryon-core[testing]``).

Everything a plugin's tests use, in one import::

    from tryon_core.testing import (
        FaultExpectation, ProviderContract, Fault, FakeState, create_fake_app, gateway,
        no_network, result_image, serve_app_in_thread,
    )

The contract kit and the gateway harness load pytest, Hypothesis and the whole app, so they
are imported when first named.
"""

from __future__ import annotations

import importlib
from typing import Any

from tryon_core.testing.fakes import (
    FAULT_KINDS,
    FakeState,
    FakeTask,
    Fault,
    RecordedRequest,
    create_fake_app,
    file_url,
    load_fake,
    mount_fakes,
    result_image,
)
from tryon_core.testing.scripted import ScriptedProvider
from tryon_core.testing.server import serve_app, serve_app_in_thread

_LAZY = {
    "ProviderContract": "tryon_core.testing.contract",
    "FaultExpectation": "tryon_core.testing.contract",
    "STANDARD_FAULTS": "tryon_core.testing.contract",
    "synthetic_garment": "tryon_core.testing.contract",
    "synthetic_person": "tryon_core.testing.contract",
    "no_network": "tryon_core.testing.network",
    # not "tryon_core.testing.gateway": once imported, a submodule of that name would be the
    # package's attribute `gateway`, hiding the function from a later `from ... import gateway`
    "RunningGateway": "tryon_core.testing.harness",
    "gateway": "tryon_core.testing.harness",
}

__all__ = [
    "FAULT_KINDS",
    "STANDARD_FAULTS",
    "FakeState",
    "FakeTask",
    "Fault",
    "FaultExpectation",
    "ProviderContract",
    "RecordedRequest",
    "RunningGateway",
    "ScriptedProvider",
    "create_fake_app",
    "file_url",
    "gateway",
    "load_fake",
    "mount_fakes",
    "no_network",
    "result_image",
    "serve_app",
    "serve_app_in_thread",
    "synthetic_garment",
    "synthetic_person",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tryon_core.testing' has no attribute {name!r}")
