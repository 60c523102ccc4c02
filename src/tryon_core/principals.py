"""Who is calling, whatever the credential: an API key or a demo session's token.

:func:`authenticate` turns an ``Authorization`` header (and the request's ``Origin``, which
binds a demo session) into a :class:`~tryon_core.accounts.Principal`; :func:`ensure_live`
is the check that live work (a stream, a WebSocket, a generation about to be charged) makes
again later, so that it ends when its key or demo session does.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core import accounts, demo_sessions
from tryon_core.accounts import KeyUsage, Principal

__all__ = ["authenticate", "ensure_live"]


async def authenticate(
    conn: AsyncConnection,
    authorization: str | None,
    *,
    origin: str | None = None,
    usage: KeyUsage | None = None,
) -> Principal:
    """The caller, or 401 (403 for a demo token from an origin it does not allow). Reads only."""
    token = accounts.bearer_token(authorization)
    if token.startswith(demo_sessions.TOKEN_PREFIX):
        principal = await demo_sessions.authenticate(conn, token, origin=origin)
        if principal is not None:
            return principal
    return await accounts.key_principal(conn, token, usage=usage)


async def ensure_live(conn: AsyncConnection, principal: Principal) -> None:
    """Raise 401 if the principal's key or demo session ended since it authenticated.

    A console session has neither; the console checks its own cookie session.
    """
    if principal.demo_session_id is not None:
        await demo_sessions.ensure_live(conn, principal.demo_session_id)
    elif principal.key_id is not None:
        await accounts.ensure_key_live(conn, principal.key_id)
