"""Forms that act once: a reload or a second click never repeats what the first did.

A form that creates something carries a random ``form_id``; the first POST with it acts, a
later one with the same id is told it was already sent. Used ids are kept in this process's
memory for a day (at most 100 000), which covers a reload (the browser resends the same form)
and a double click.
"""

from __future__ import annotations

import secrets
import time

__all__ = ["OnceForms"]

_KEEP_SECONDS = 24 * 3600.0
_MAX_KEPT = 100_000


class OnceForms:
    def __init__(self) -> None:
        self._used: dict[str, float] = {}

    def new(self) -> str:
        """A fresh ``form_id`` for a form about to be shown."""
        return secrets.token_urlsafe(16)

    def first_use(self, form_id: str) -> bool:
        """False if ``form_id`` came back before; True otherwise (and it is remembered). A form
        without one acts: only a repeat is refused."""
        if not form_id:
            return True
        if form_id in self._used:
            return False
        self._forget_old()
        self._used[form_id] = time.monotonic()
        return True

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - _KEEP_SECONDS
        while self._used and (
            len(self._used) >= _MAX_KEPT or next(iter(self._used.values())) < cutoff
        ):
            del self._used[next(iter(self._used))]
