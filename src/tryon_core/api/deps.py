"""Dependencies every handler can ask for by name: ``gateway`` and ``principal``."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from tryon_core.accounts import Principal
from tryon_core.gateway import Gateway

__all__ = ["GatewayDep", "PrincipalDep", "provide_gateway", "provide_principal"]

GatewayDep = NamedDependency[Gateway]
PrincipalDep = NamedDependency[Principal]


async def provide_gateway(state: State) -> Gateway:
    gateway: Gateway = state.gateway
    return gateway


async def provide_principal(request: Request[Any, Any, Any], gateway: GatewayDep) -> Principal:
    return await gateway.authenticate(request.headers.get("authorization"))
