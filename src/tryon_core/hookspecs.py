"""The one seam between tryon-core and its provider plugins.

A plugin package declares ``[project.entry-points.tryon]`` and implements
:func:`tryon_register_providers` with ``@tryon_core.hookimpl``. Hooks run once at start-up;
the request path calls the registered adapters' plain ``async`` methods (pluggy cannot await).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tryon_core.registry import Registrar

PROJECT = "tryon"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def tryon_register_providers(registrar: Registrar) -> None:
    """Register this plugin's providers and their models.

    :param registrar: call ``registrar.add_provider(ProviderSpec(...))`` once per provider. It
        raises ``ValueError`` on a provider name or model slug that is already registered.
    """
