"""API keys that authenticated lately, taken as they were read for ``[keys] cache_seconds``.

Authentication reads the key, its limits and its account's balance on every request: on
SQLite a connection's checkout, a statement and its return, ~7% of the CPU of a try-on with
two big uploads (measured, ``benchmarks/compare_revisions.py``); on PostgreSQL a round trip
more before anything else happens. A key that authenticated within the last
``cache_seconds`` (2 by default, 0: off) is taken as it was read then, in this process.

What may so be stale for up to ``cache_seconds``, and why that is safe:

- **A revoked key.** Revoking a key or changing its limits in this process (the API, the
  console, :func:`keys_changed`) drops what every cache of the process remembers at once;
  one revoked by another process (``tryon keys revoke``, another replica) is heard of within
  ``cache_seconds``. Meanwhile nothing is generated or charged for it: the reservation's
  UPDATE of the key holds only while the key is not revoked, and a success is recorded only
  if the key is still live (both in the write transaction).
- **The balance and key limit read with it** (:class:`~tryon_core.accounts.Seen`): they only
  let a request go on to the reservation, whose conditional UPDATEs decide. A refusal they
  would make is confirmed by a read first (``Seen.remembered``).
- **The key's own requests per minute and concurrent generations**, changed by another
  process: applied within ``cache_seconds``.

Only keys that authenticated are remembered (an unknown or revoked key is read every time),
at most ``size`` of them (the oldest goes first), by the SHA-256 of the key, not the key.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from tryon_core.accounts import Principal

__all__ = ["KeyCache", "keys_changed"]

_changes = 0
"""Keys revoked or changed by this process so far: a read that began before one is not kept."""


def keys_changed() -> None:
    """A key was revoked or its limits changed: every cache of this process forgets all."""
    global _changes
    _changes += 1


class KeyCache:
    """Principals of API keys by the SHA-256 of the key (see the module's docstring)."""

    def __init__(self, seconds: float, *, size: int = 10_000) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: dict[str, tuple[float, int, Principal]] = {}

    def get(self, digest: str) -> Principal | None:
        """The principal read for this key within ``seconds`` and since no key changed."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        expires, changes, principal = entry
        if changes != _changes or time.monotonic() >= expires:
            del self._entries[digest]
            return None
        return principal

    @staticmethod
    def mark() -> int:
        """Taken before a read: :meth:`keep` keeps what it read only if no key changed since."""
        return _changes

    def keep(self, digest: str, principal: Principal, *, read_since: int) -> None:
        """Remember ``principal`` (an API key's), read from the database after ``read_since``."""
        if self.seconds <= 0 or read_since != _changes or principal.seen is None:
            return  # a key changed since the read began: what it read may be old already
        self._entries.pop(digest, None)
        if len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        seen = msgspec.structs.replace(principal.seen, remembered=True)
        remembered = msgspec.structs.replace(principal, seen=seen)
        self._entries[digest] = (time.monotonic() + self.seconds, read_since, remembered)
