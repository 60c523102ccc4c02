"""Liveness and readiness."""

from __future__ import annotations

from litestar import get

from tryon_core.api.deps import GatewayDep


@get("/healthz", summary="Liveness: the process answers.", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", summary="Readiness: the database answers (503 otherwise).", tags=["health"])
async def readyz(gateway: GatewayDep) -> dict[str, str]:
    await gateway.database.ping()
    return {"status": "ready"}
