"""Liveness and readiness."""

from __future__ import annotations

from litestar import get

from tryon_core.gateway import Gateway


@get("/healthz", summary="Liveness: the process answers.", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", summary="Readiness: the database answers (503 otherwise).", tags=["health"])
async def readyz(gateway: Gateway) -> dict[str, str]:
    await gateway.database.ping()
    return {"status": "ready"}
