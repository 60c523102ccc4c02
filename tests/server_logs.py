"""The logs of every real server the tests start, kept in one directory for the session, and
the scan that finds a secret in them.

``tests/served.py`` (and the other tests that start ``tryon`` processes) write each process's
output to :func:`session_log`; at the end of the session ``tests/log_scan.py`` scans every
file there with :func:`leaks` and fails the run if one holds a secret: a gateway key, a signed
URL's signature, a job token, a webhook secret, a console token, credentials after ``Bearer``,
or image bytes (the base64 openings of PNG, JPEG and WebP, or any long base64 run). Keys the
tests made are also looked for literally (:func:`remember`), whatever shape they appear in.
"""

from __future__ import annotations

import itertools
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PATTERNS", "leaks", "remember", "scan_directory", "session_log", "start_session"]

_directory: Path | None = None
_numbers = itertools.count(1)
_known: set[str] = set()

_NOT_BLANKED = r"(?!\[redacted\])"
PATTERNS: dict[str, re.Pattern[str]] = {
    "a gateway key": re.compile(rf"tryon_{_NOT_BLANKED}[A-Za-z0-9_-]{{16,}}"),
    "a webhook secret": re.compile(rf"whsec_{_NOT_BLANKED}[A-Za-z0-9_-]{{8,}}"),
    "a console token": re.compile(rf"\btc[sl]_{_NOT_BLANKED}[A-Za-z0-9_-]{{8,}}"),
    "a signature": re.compile(rf"[?&]sig={_NOT_BLANKED}[^&\s\"'\]]+"),
    "a job token": re.compile(rf"[?&]token={_NOT_BLANKED}[^&\s\"'\]]+"),
    "an S3 signature": re.compile(rf"X-Amz-Signature={_NOT_BLANKED}[0-9a-f]{{8,}}"),
    "credentials": re.compile(rf"\b(?:Bearer|Basic) {_NOT_BLANKED}[^\s\"',;)\]}}]+"),
    "PNG bytes": re.compile(r"iVBORw0KGgo"),
    "JPEG bytes": re.compile(r"(?<![A-Za-z0-9+])/9j/"),
    "WebP bytes": re.compile(r"UklGR"),
    "a long base64 run": re.compile(r"[A-Za-z0-9+/]{160,}={0,2}"),
}


def start_session(directory: Path | None = None) -> Path:
    """Where this session's server logs go (a fresh temporary directory by default)."""
    global _directory
    _directory = directory or Path(tempfile.mkdtemp(prefix="tryon-server-logs-"))
    _directory.mkdir(parents=True, exist_ok=True)
    return _directory


def session_log(wanted: Path) -> Path:
    """A file in the session's log directory for the process a test would have logged to
    ``wanted`` (its folder and name kept in the new name, so the report says whose it is)."""
    directory = _directory or start_session()
    return directory / f"{next(_numbers):04d}-{wanted.parent.name}-{wanted.name}"


def remember(secret: str) -> str:
    """Look for ``secret`` (a key a test made) literally in every log too."""
    _known.add(secret)
    return secret


def leaks(text: str, secrets: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(what, the excerpt) for every secret in ``text``."""
    found = []
    for what, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            found.append((what, _excerpt(text, match.start(), match.end())))
    for secret in {*_known, *secrets}:
        where = text.find(secret)
        while where != -1:
            found.append(("a key a test made", _excerpt(text, where, where + len(secret))))
            where = text.find(secret, where + len(secret))
    return found


def scan_directory() -> dict[Path, list[tuple[str, str]]]:
    """Every leak in every log of the session, by file."""
    if _directory is None or not _directory.exists():
        return {}
    found = {}
    for path in sorted(_directory.iterdir()):
        text = path.read_text(errors="replace")
        if leaked := leaks(text):
            found[path] = leaked
    return found


def _excerpt(text: str, start: int, end: int) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start : line_end if line_end != -1 else len(text)]
    return line if len(line) <= 300 else line[max(0, start - line_start - 100) :][:300]
