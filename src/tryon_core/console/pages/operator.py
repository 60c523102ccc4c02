"""Operator: every account with its balance, credit grants, and the health of every provider
and model. Only for accounts the CLI marks as operator (``tryon accounts operator ID``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect

from tryon_core import billing
from tryon_core.amounts import MAX_CREDITS
from tryon_core.console import compat
from tryon_core.console.models_view import ModelRow, model_rows
from tryon_core.console.render import gateway_of, href, page
from tryon_core.console.security import form_fields
from tryon_core.console.session import SignedIn, SignedInDep
from tryon_core.errors import ClientError, InvalidRequest, NotFound
from tryon_core.reports import list_accounts

__all__ = ["ROUTES"]

PAGE = {"console_page": True}
_NOTICES = {"granted": "The credits were granted."}


class OperatorOnly(ClientError):
    status = 403
    type = "operator_only"


class ProviderHealth(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    models: int
    cooling: int

    @property
    def healthy(self) -> bool:
        return self.cooling == 0


def _require_operator(console: SignedIn) -> None:
    if not console.operator:
        raise OperatorOnly(
            "These pages are for the server's operators; the CLI marks an account as one "
            "(tryon accounts operator ACCOUNT)."
        )


def _providers(models: list[ModelRow]) -> list[ProviderHealth]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in models:
        counts[row.provider][0] += 1
        counts[row.provider][1] += 0 if row.healthy else 1
    return [ProviderHealth(name=n, models=c[0], cooling=c[1]) for n, c in sorted(counts.items())]


async def _page(
    request: Request[Any, Any, Any],
    console: SignedIn,
    *,
    status: int = 200,
    **context: Any,
) -> Response[str]:
    gateway = gateway_of(request)
    async with gateway.database.reading() as conn:
        accounts = await list_accounts(conn)
        operators = {a.id for a in accounts if await compat.is_operator(conn, a.id)}
    models = model_rows(gateway)
    context.setdefault("notice", None)
    context.setdefault("error", None)
    context.setdefault("form", {"account_id": "", "credits": "", "note": ""})
    return page(
        request,
        "operator.html",
        status=status,
        title="Operator",
        current="operator",
        accounts=accounts,
        operators=operators,
        models=models,
        providers=_providers(models),
        max_credits=MAX_CREDITS,
        **context,
    )


@get("/operator", opt=PAGE)
async def operator(
    request: Request[Any, Any, Any], console: SignedInDep, done: FromQuery[str | None] = None
) -> Response[str]:
    _require_operator(console)
    return await _page(request, console, notice=_NOTICES.get(done or ""))


@post("/operator/grant", opt=PAGE)
async def grant(request: Request[Any, Any, Any], console: SignedInDep) -> Response[Any]:
    _require_operator(console)
    fields = await form_fields(request)
    form = {k: fields.get(k, "").strip() for k in ("account_id", "credits", "note")}
    try:
        credits = _whole(form["credits"])
        note = form["note"][:200] or f"console grant by {console.account_id}"
        async with gateway_of(request).database.transaction() as conn:
            await billing.grant(conn, form["account_id"], credits, note=note)
    except (InvalidRequest, NotFound) as exc:
        return await _page(request, console, status=exc.status, error=exc.message, form=form)
    target = href(gateway_of(request).settings, "/operator") + "?done=granted"
    return Redirect(path=target, status_code=303)


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(
            f"Credits is a whole number from -{MAX_CREDITS} to {MAX_CREDITS}.", param="credits"
        ) from None


ROUTES = [operator, grant]
