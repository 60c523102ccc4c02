"""Who is signed in: the session behind the request's cookie, its account, operator or not.

Handlers ask for ``console: SignedInDep``. Without a live session that raises
:class:`SignInRequired`: a page answers with a redirect to the sign-in form, a console
endpoint for scripts with ``401``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from tryon_core.accounts import Account, Principal, get_account
from tryon_core.console import compat
from tryon_core.console.render import gateway_of
from tryon_core.console.security import SESSION_COOKIE
from tryon_core.console_sessions import ConsoleSession, find_session
from tryon_core.errors import AuthenticationFailed

__all__ = ["SignInRequired", "SignedIn", "SignedInDep", "provide_signed_in"]


class SignInRequired(AuthenticationFailed):
    type = "sign_in_required"


@dataclass(frozen=True, kw_only=True)
class SignedIn:
    session: ConsoleSession
    account: Account
    operator: bool

    @property
    def account_id(self) -> str:
        return self.account.id

    @property
    def principal(self) -> Principal:
        """The console acts for its account with both scopes."""
        return compat.console_principal(self.account.id)


SignedInDep = NamedDependency[SignedIn]


async def provide_signed_in(request: Request[Any, Any, Any]) -> SignedIn:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired("Sign in to the console first.")
    gateway = gateway_of(request)
    async with gateway.database.reading() as conn:
        session = await find_session(conn, token)
        if session is None:
            raise SignInRequired("Your console session has ended; sign in again.")
        account = await get_account(conn, session.account_id)
        operator = await compat.is_operator(conn, session.account_id)
    signed_in = SignedIn(session=session, account=account, operator=operator)
    request.state.console = signed_in
    return signed_in
