"""The server's log: one stream (stderr), one format, no secrets.

Every line the process logs (uvicorn's access and WebSocket lines, tracebacks, our own and
plugins' lines) is blanked before it is written (:class:`RedactingFormatter`):

- a URL's query string keeps the values of the parameters known to be harmless
  (:data:`KEPT_PARAMETERS`: ``expires``, ``limit``, ``cursor``, ``status``); every other value,
  ``sig`` and ``token`` among them and whatever a client sent by mistake (``?api_key=``), is
  written ``[redacted]``, and so is a name that is not a short plain word;
- anything shaped like a gateway key (``tryon_…``), a webhook secret (``whsec_…``) or a console
  session or sign-in link token (``tcs_…``, ``tcl_…``), and the credentials after ``Bearer`` or
  ``Basic``, wherever they appear.

A query string ends at whitespace. In a log record's arguments (uvicorn passes the request's
path and query as one) that is exact: quotes a client put in its query cannot end it early.
In the rest of a line a quote followed by a delimiter ends it too, so that the closing quote of
``'https://host/path?key=…'`` survives.
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any

__all__ = [
    "KEPT_PARAMETERS",
    "REDACTED",
    "RedactingFormatter",
    "configure_logging",
    "redact",
    "redact_argument",
]

REDACTED = "[redacted]"
KEPT_PARAMETERS = frozenset({"cursor", "expires", "limit", "status"})
"""Query parameters whose values are logged: the API's own, none of them a secret."""

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# A query string: "?" right after a path character, up to whitespace (in an argument) or also
# up to a quote followed by a delimiter (in free text).
_QUERY = re.compile(r"(?<=[\w/.%~-])\?(\S+)")
_QUERY_IN_TEXT = re.compile(r"(?<=[\w/.%~-])\?((?:[^\s\"']|[\"'](?![\s,;:)\]}]|$))+)")
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.:-]{0,128}")
_SECRETS = [
    (re.compile(r"(tryon|whsec|tcs|tcl)_[A-Za-z0-9_-]{16,}"), rf"\1_{REDACTED}"),
    (re.compile(r"\b(Bearer|Basic)\s+[^\s\"',;)\]}]+", re.IGNORECASE), rf"\1 {REDACTED}"),
]


def redact(text: str) -> str:
    """``text`` with every secret-bearing query value and key-shaped string blanked."""
    return _redact(text, _QUERY_IN_TEXT)


def redact_argument(value: str) -> str:
    """:func:`redact` for one argument of a log record: its query strings end at whitespace."""
    return _redact(value, _QUERY)


def _redact(text: str, query: re.Pattern[str]) -> str:
    text = query.sub(lambda match: "?" + _redact_query(match.group(1)), text)
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _redact_query(query: str) -> str:
    return "&".join(_redact_parameter(part) for part in query.split("&"))


def _redact_parameter(part: str) -> str:
    name, equals, value = part.partition("=")
    if not equals:
        return part and REDACTED
    if not _PLAIN_NAME.fullmatch(name):
        return f"{REDACTED}={REDACTED}"
    if name in KEPT_PARAMETERS and _PLAIN_VALUE.fullmatch(value):
        return part
    return f"{name}={REDACTED}" if value else part


class RedactingFormatter(logging.Formatter):
    """A formatter whose every output, traceback included, is blanked: each string argument
    by :func:`redact_argument`, then the whole line by :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and args:
            record = logging.makeLogRecord(record.__dict__)  # other handlers see the original
            record.args = tuple(redact_argument(a) if isinstance(a, str) else a for a in args)
        return redact(super().format(record))


def configure_logging() -> dict[str, Any]:
    """Send every log line of the process to stderr through :class:`RedactingFormatter`.

    uvicorn's loggers keep no handlers of their own: they propagate to the root's one. Returns
    the configuration applied (``tryon serve`` passes uvicorn ``log_config=None``).
    """
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"redacting": {"()": RedactingFormatter, "fmt": FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "redacting",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {
            name: {"level": "INFO", "handlers": [], "propagate": True}
            for name in ("tryon", "uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
    logging.config.dictConfig(config)
    return config
