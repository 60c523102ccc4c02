"""The server's log: one stream (stderr), one format, no secrets.

Every line the process logs (uvicorn's access and WebSocket lines, tracebacks, our own and
plugins' lines) passes through :func:`redact` before it is written:

- a URL's query string keeps the values of the parameters known to be harmless
  (:data:`KEPT_PARAMETERS`: ``expires``, ``limit``, ``cursor``, ``status``); every other value,
  ``sig`` and ``token`` among them and whatever a client sent by mistake (``?api_key=``), is
  written ``[redacted]``, and so is a name that is not a short plain word;
- anything shaped like a gateway key (``tryon_…``) or a webhook secret (``whsec_…``), and the
  credentials after ``Bearer`` or ``Basic``, wherever they appear.
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any

__all__ = ["KEPT_PARAMETERS", "REDACTED", "RedactingFormatter", "configure_logging", "redact"]

REDACTED = "[redacted]"
KEPT_PARAMETERS = frozenset({"cursor", "expires", "limit", "status"})
"""Query parameters whose values are logged: the API's own, none of them a secret."""

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# A query string: "?" right after a path character, up to whitespace, a quote or a fragment.
_QUERY = re.compile(r"(?<=[\w/.%~-])\?([^\s\"'<>#]+)")
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.:-]{0,128}")
_SECRETS = [
    (re.compile(r"(tryon|whsec)_[A-Za-z0-9_-]{16,}"), rf"\1_{REDACTED}"),
    (re.compile(r"\b(Bearer|Basic)\s+[^\s\"',;)\]}]+", re.IGNORECASE), rf"\1 {REDACTED}"),
]


def redact(text: str) -> str:
    """``text`` with every secret-bearing query value and key-shaped string blanked."""
    text = _QUERY.sub(lambda match: "?" + _redact_query(match.group(1)), text)
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
    """A formatter whose every output, traceback included, went through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
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
