"""Demo sessions: short-lived tokens a browser page may hold instead of an API key.

A management key (or the console) creates one with the exact origins allowed to use it, a
credit cap and a lifetime; the token (``tryon_demo_…``, shown once, kept as a SHA-256) then
works only from those origins, only on the routes that open themselves to demo sessions
(``opt={"demo": True}``), only for its own jobs and files, and only until it expires or is
revoked. What it spends is charged to its account and counted against ``max_credits`` in
the same transaction as the reservation (:mod:`tryon_core.billing`), so concurrent requests
never overshoot the cap.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.accounts import Principal, hash_key
from tryon_core.amounts import MAX_CREDITS, is_credits
from tryon_core.db.schema import demo_session_origins, demo_sessions
from tryon_core.errors import AuthenticationFailed, Forbidden, InvalidRequest, NotFound, echo
from tryon_core.ids import as_utc, new_id, utcnow

__all__ = [
    "MAX_ORIGINS",
    "TOKEN_PREFIX",
    "DemoSession",
    "authenticate",
    "create",
    "ensure_live",
    "get_session",
    "list_sessions",
    "origin_allowed",
    "origins_of_token",
    "revoke",
]

TOKEN_PREFIX = "tryon_demo_"
MAX_ORIGINS = 20
MAX_MODELS = 20
_MAX_ORIGIN_LENGTH = 300
EXPIRED_MESSAGE = "This demo session has expired; ask the site for a new one."
REVOKED_MESSAGE = "This demo session was revoked; nothing more is done or charged for it."


class DemoSession(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    allowed_origins: list[str]
    max_credits: int
    spent: int
    """Credits captured for this session's generations."""
    reserved: int
    """Credits held for its generations still running (they count against the cap too)."""
    models: list[str] | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def status(self, now: datetime | None = None) -> Literal["active", "expired", "revoked"]:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= (now or utcnow()) else "active"


async def create(
    conn: AsyncConnection,
    principal: Principal,
    *,
    allowed_origins: Sequence[str],
    max_credits: int,
    ttl_seconds: int,
    models: Sequence[str] | None = None,
    max_ttl_seconds: int = 3600,
    known_models: Collection[str] | None = None,
) -> tuple[DemoSession, str]:
    """A new session for ``principal``'s account, and its token (shown once).

    ``ttl_seconds`` is cut to ``max_ttl_seconds`` (``[demo_sessions] max_ttl_seconds``); with
    ``known_models``, every one of ``models`` must be among them.
    """
    origins = _origins(allowed_origins)
    if not is_credits(max_credits):
        raise InvalidRequest(
            f"max_credits is a whole number of credits from 0 to {MAX_CREDITS}.",
            param="max_credits",
        )
    if type(ttl_seconds) is not int or ttl_seconds <= 0:
        raise InvalidRequest(
            "ttl_seconds is a whole number of seconds above 0.", param="ttl_seconds"
        )
    allowed_models = _models(models, known_models)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    session = DemoSession(
        id=new_id("demo"),
        account_id=principal.account_id,
        allowed_origins=origins,
        max_credits=max_credits,
        spent=0,
        reserved=0,
        models=allowed_models,
        created_at=now,
        expires_at=now + timedelta(seconds=min(ttl_seconds, max_ttl_seconds)),
    )
    await conn.execute(
        insert(demo_sessions).values(
            id=session.id,
            account_id=session.account_id,
            hash=hash_key(token),
            allowed_origins=origins,
            models=allowed_models,
            max_credits=max_credits,
            reserved=0,
            spent=0,
            created_by=principal.key_id,
            created_at=now,
            expires_at=session.expires_at,
        )
    )
    await conn.execute(
        insert(demo_session_origins),
        [{"session_id": session.id, "origin": origin} for origin in origins],
    )
    return session, token


async def list_sessions(conn: AsyncConnection, account_id: str) -> list[DemoSession]:
    """The account's demo sessions, newest first (expired and revoked ones included)."""
    rows = await conn.execute(
        select(demo_sessions)
        .where(demo_sessions.c.account_id == account_id)
        .order_by(demo_sessions.c.created_at.desc(), demo_sessions.c.id)
    )
    return [_session(row._mapping) for row in rows]


async def get_session(conn: AsyncConnection, account_id: str, session_id: str) -> DemoSession:
    """One session of the account; another account's is as absent as one that never was."""
    row = (
        await conn.execute(
            select(demo_sessions).where(
                demo_sessions.c.id == session_id, demo_sessions.c.account_id == account_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No demo session {echo(session_id)!r}.", param="id")
    return _session(row._mapping)


async def revoke(conn: AsyncConnection, account_id: str, session_id: str) -> DemoSession:
    """Revoke at once (revoking a revoked session changes nothing)."""
    await get_session(conn, account_id, session_id)
    await conn.execute(
        update(demo_sessions)
        .where(demo_sessions.c.id == session_id, demo_sessions.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return await get_session(conn, account_id, session_id)


async def authenticate(
    conn: AsyncConnection, token: str, *, origin: str | None
) -> Principal | None:
    """The demo session holding ``token``, or None if no session has it. Reads only.

    A revoked or expired session is a 401 saying which; a request whose ``Origin`` the
    session does not list (or that has none) is a 403.
    """
    row = (
        await conn.execute(select(demo_sessions).where(demo_sessions.c.hash == hash_key(token)))
    ).first()
    if row is None:
        return None
    session = _session(row._mapping)
    _check_live(session)
    if origin is None or origin not in session.allowed_origins:
        raise Forbidden(
            "A demo session token is accepted only from the origins it allows"
            + ("; this request names no Origin." if origin is None else "."),
            type="origin_not_allowed",
            metadata={"origin": echo(origin) if origin is not None else None},
        )
    return Principal(
        kind="demo",
        key_id=None,
        account_id=session.account_id,
        scopes=frozenset(),
        demo_session_id=session.id,
        models=tuple(session.models) if session.models is not None else None,
    )


async def ensure_live(conn: AsyncConnection, session_id: str) -> None:
    """Raise 401 if the session was revoked or has expired: its live work ends with it."""
    row = (
        await conn.execute(
            select(demo_sessions.c.revoked_at, demo_sessions.c.expires_at).where(
                demo_sessions.c.id == session_id
            )
        )
    ).first()
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed(REVOKED_MESSAGE, type="demo_session_revoked")
    if as_utc(row.expires_at) <= utcnow():
        raise AuthenticationFailed(EXPIRED_MESSAGE, type="demo_session_expired")


async def origin_allowed(conn: AsyncConnection, origin: str) -> bool:
    """Whether some live demo session (neither expired nor revoked) lists ``origin``."""
    found = await conn.scalar(
        select(demo_session_origins.c.session_id)
        .join(demo_sessions, demo_sessions.c.id == demo_session_origins.c.session_id)
        .where(
            demo_session_origins.c.origin == origin,
            demo_sessions.c.revoked_at.is_(None),
            demo_sessions.c.expires_at > utcnow(),
        )
        .limit(1)
    )
    return found is not None


async def origins_of_token(conn: AsyncConnection, token: str) -> list[str]:
    """The origins the session holding ``token`` lists, whatever its state; [] if none."""
    found = await conn.scalar(
        select(demo_sessions.c.allowed_origins).where(demo_sessions.c.hash == hash_key(token))
    )
    return list(found or [])


def _check_live(session: DemoSession) -> None:
    status = session.status()
    if status == "revoked":
        raise AuthenticationFailed(REVOKED_MESSAGE, type="demo_session_revoked")
    if status == "expired":
        raise AuthenticationFailed(EXPIRED_MESSAGE, type="demo_session_expired")


def _origins(given: Sequence[str]) -> list[str]:
    """Exact origins as a browser sends them: ``scheme://host[:port]``, no path."""
    if isinstance(given, str) or not given or len(given) > MAX_ORIGINS:
        raise InvalidRequest(
            f"allowed_origins is a list of 1 to {MAX_ORIGINS} origins, such as "
            '["https://shop.example.com"].',
            param="allowed_origins",
        )
    origins: list[str] = []
    for i, origin in enumerate(given):
        if not _is_origin(origin):
            raise InvalidRequest(
                f"allowed_origins[{i}] is not an origin: write it as a browser sends it, "
                "scheme://host[:port] in lower case, without a path or a trailing slash "
                f"(got {echo(str(origin))!r}).",
                param=f"allowed_origins[{i}]",
            )
        if origin not in origins:
            origins.append(origin)
    return origins


def _is_origin(origin: object) -> bool:
    if not isinstance(origin, str) or not 0 < len(origin) <= _MAX_ORIGIN_LENGTH:
        return False
    if not origin.isascii() or origin != origin.strip() or origin != origin.lower():
        return False
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc or origin.endswith(":"):
        return False
    default = {"http": 80, "https": 443}[parts.scheme]
    return port != default and origin == f"{parts.scheme}://{parts.netloc}"


def _models(given: Sequence[str] | None, known: Collection[str] | None) -> list[str] | None:
    if given is None:
        return None
    if isinstance(given, str) or not given or len(given) > MAX_MODELS:
        raise InvalidRequest(
            f"models is a list of 1 to {MAX_MODELS} model slugs (leave it out for every model).",
            param="models",
        )
    slugs: list[str] = []
    for i, slug in enumerate(given):
        if known is not None and slug not in known:
            raise NotFound(
                f"Model {echo(str(slug))!r} is not available on this gateway; see "
                "GET /api/v1/models.",
                param=f"models[{i}]",
                type="model_not_found",
            )
        if slug not in slugs:
            slugs.append(slug)
    return slugs


def _session(row: Any) -> DemoSession:
    return DemoSession(
        id=row["id"],
        account_id=row["account_id"],
        allowed_origins=list(row["allowed_origins"]),
        max_credits=int(row["max_credits"]),
        spent=int(row["spent"]),
        reserved=int(row["reserved"]),
        models=list(row["models"]) if row["models"] is not None else None,
        created_at=as_utc(row["created_at"]),
        expires_at=as_utc(row["expires_at"]),
        revoked_at=as_utc(row["revoked_at"]) if row["revoked_at"] else None,
    )
