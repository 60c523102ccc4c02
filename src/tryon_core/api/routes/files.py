"""``GET``/``HEAD /api/v1/files/{id}``: a stored image, by signed URL or by its owner's key
(an inference key of the account, or the demo session whose job made it)."""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Any

from litestar import Request, Response, route
from litestar.enums import HttpMethod
from litestar.params import FromPath, FromQuery
from sqlalchemy import select

from tryon_core.api.deps import GatewayDep
from tryon_core.api.openapi import AUTHED, BINARY, KEY_OR_LINK, body_operation, errors
from tryon_core.api.scopes import INFERENCE_OR_DEMO, principal_of
from tryon_core.db.schema import files, generations
from tryon_core.errors import InvalidRequest, InvalidSignature, NotFound
from tryon_core.ids import as_utc, utcnow
from tryon_core.stores import store_unavailable

log = logging.getLogger("tryon.api")

SIGNING_PARAMETERS = ("expires", "sig")

FILE_HEADERS = {
    "Cache-Control": "private, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    # Opened on its own, the file is an inert document: no script, no plugin, no form, and a
    # unique origin even if a browser took it for HTML.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    # The links are made to be shown in <img> on the client's own pages, on any origin.
    "Cross-Origin-Resource-Policy": "cross-origin",
}
"""Sent with every stored file (besides its type, length and name)."""


@route(
    "/api/v1/files/{file_id:str}",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    summary="Download a result image: with the signed URL the API returned, or with the key "
    "of the account that owns it. HEAD answers the same without the body.",
    tags=["files"],
    media_type="application/octet-stream",
    responses=errors(400, 403, 404, *AUTHED),
    security=KEY_OR_LINK,
    opt={**INFERENCE_OR_DEMO, "signed_link": True},
    operation_class=body_operation(
        {}, answers={200: dict.fromkeys(("image/png", "image/jpeg", "image/webp"), BINARY)}
    ),
)
async def download(
    request: Request[Any, Any, Any],
    gateway: GatewayDep,
    file_id: FromPath[str],
    expires: FromQuery[int | None] = None,
    sig: FromQuery[str | None] = None,
) -> Response[bytes]:
    for name in SIGNING_PARAMETERS:
        if len(request.query_params.getall(name, [])) > 1:
            raise InvalidRequest(f"The query parameter {name} is given more than once.", param=name)
    owner = principal_of(request)  # the guard authenticated the caller unless a link is given
    if owner is None and (
        sig is None or expires is None or not gateway.signer.verify(file_id, expires, sig)
    ):
        raise InvalidSignature("This file link is invalid or has expired.")
    async with gateway.database.reading() as conn:
        query = select(files).where(files.c.id == file_id)
        if owner is not None:
            query = query.where(files.c.account_id == owner.account_id)
        if owner is not None and owner.demo_session_id is not None:
            query = query.join(generations, generations.c.id == files.c.generation_id).where(
                generations.c.demo_session_id == owner.demo_session_id
            )
        row = (await conn.execute(query)).first()
    if row is None or as_utc(row.expires_at) < utcnow():
        raise NotFound("No such file.", param="file_id")
    try:
        data = await gateway.store.get(row.storage_key)
    except FileNotFoundError:
        raise NotFound("No such file.", param="file_id") from None
    except OSError as exc:  # the store is away (or its disk failed): retry later
        log.error("file store failed on download: %s", exc)
        raise store_unavailable() from None
    name = f"{file_id}{PurePosixPath(row.storage_key).suffix}"
    headers = {**FILE_HEADERS, "Content-Disposition": f'inline; filename="{name}"'}
    if request.method == HttpMethod.HEAD:  # what GET would send, but the body
        headers["Content-Length"] = str(len(data))
        return Response(b"", media_type=row.content_type, headers=headers)
    return Response(data, media_type=row.content_type, headers=headers)
