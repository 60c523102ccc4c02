"""Dependencies every handler can ask for by name: ``gateway`` and ``principal``.

The principal is whoever :func:`tryon_core.api.scopes.guard` let through, for the scope the
route declares in its ``opt``.
"""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency

from tryon_core.accounts import Principal
from tryon_core.api.scopes import provide_principal
from tryon_core.gateway import Gateway

__all__ = ["GatewayDep", "PrincipalDep", "provide_gateway", "provide_principal"]

GatewayDep = NamedDependency[Gateway]
PrincipalDep = NamedDependency[Principal]


async def provide_gateway(state: State) -> Gateway:
    gateway: Gateway = state.gateway
    return gateway
