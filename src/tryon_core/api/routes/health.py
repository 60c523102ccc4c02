"""Liveness and readiness."""

from __future__ import annotations

from litestar import get

from tryon_core.api.deps import GatewayDep
from tryon_core.api.openapi import errors


@get("/healthz", summary="Liveness: the process answers.", tags=["health"], responses=errors())
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    summary="Readiness: the database answers and can take a write (503 otherwise).",
    tags=["health"],
    responses=errors(503),
)
async def readyz(gateway: GatewayDep) -> dict[str, str]:
    await gateway.database.check_writable()
    return {"status": "ready"}
