"""The server's log: one stream (stderr), one format, no secrets.

Every line the process logs (uvicorn's access and WebSocket lines, tracebacks, our own and
plugins' lines) is blanked before it is written (:class:`RedactingFormatter`):

- a URL's query string keeps the values of the parameters known to be harmless
  (:data:`KEPT_PARAMETERS`: ``expires``, ``limit``, ``cursor``, ``status``); every other value,
  ``sig`` and ``token`` among them and whatever a client sent by mistake (``?api_key=``), is
  written ``[redacted]``, and so is a name that is not a short plain word;
- anything shaped like a gateway key (``tryon_…``), a webhook secret (``whsec_…``) or a console
  session or sign-in link token (``tcs_…``, ``tcl_…``), and the credentials after ``Bearer`` or
  ``Basic``, wherever they appear;
- image bytes: a data URL's payload, anything opening as base64 PNG, JPEG or WebP does, and any
  run of 120 or more base64 characters (a client may put them in a path).

Lines are readable text (:class:`RedactingFormatter`, the default) or one JSON object each
(:class:`JsonFormatter`); both carry the ids of the request or job they were logged in.

A query string ends at whitespace. In a log record's arguments (uvicorn passes the request's
path and query as one) that is exact: quotes a client put in its query cannot end it early.
In the rest of a line a quote followed by a delimiter ends it too, so that the closing quote of
``'https://host/path?key=…'`` survives.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tryon_core import request_context

__all__ = [
    "FORMATS",
    "KEPT_PARAMETERS",
    "LEVELS",
    "REDACTED",
    "ContextFilter",
    "JsonFormatter",
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
# Each pattern with a test that is true of any text it can match: a line failing the test is
# left alone without running the pattern (the same result, for a substring search or two
# instead of a regular expression's scan of the whole line).


def _holding(*literals: str) -> Callable[[str], bool]:
    return lambda text: any(literal in text for literal in literals)


def _may_hold_credentials(text: str) -> bool:
    # case-insensitive, Unicode's way (U+017F, the long s, matches "s"): only ASCII text can
    # be searched for the words themselves
    if not text.isascii():
        return True
    lowered = text.lower()
    return "bearer" in lowered or "basic" in lowered


_LONG_RUN = 120
_SECRETS: list[tuple[re.Pattern[str], str, Callable[[str], bool]]] = [
    (
        re.compile(r"(tryon|whsec|tcs|tcl)_[A-Za-z0-9_-]{16,}"),
        rf"\1_{REDACTED}",
        _holding("tryon_", "whsec_", "tcs_", "tcl_"),
    ),
    (
        re.compile(r"\b(Bearer|Basic)\s+[^\s\"',;)\]}]+", re.IGNORECASE),
        rf"\1 {REDACTED}",
        _may_hold_credentials,
    ),
    # image bytes: a data URL's, base64 PNG, JPEG and WebP openings, any long base64 run
    (
        re.compile(r"(data:[\w/+.-]*;base64,)[A-Za-z0-9+/=%]+"),
        rf"\1{REDACTED}",
        _holding("data:"),
    ),
    (
        re.compile(r"(?:iVBORw0KGgo|(?<![A-Za-z0-9+])/9j/|UklGR)[A-Za-z0-9+/=_-]*"),
        REDACTED,
        _holding("iVBORw0KGgo", "/9j/", "UklGR"),
    ),
    (
        re.compile(rf"[A-Za-z0-9+/_-]{{{_LONG_RUN},}}={{0,2}}"),
        REDACTED,
        lambda text: len(text) >= _LONG_RUN,
    ),
]


def redact(text: str) -> str:
    """``text`` with every secret-bearing query value and key-shaped string blanked."""
    return _redact(text, _QUERY_IN_TEXT)


def redact_argument(value: str) -> str:
    """:func:`redact` for one argument of a log record: its query strings end at whitespace."""
    return _redact(value, _QUERY)


def _redact(text: str, query: re.Pattern[str]) -> str:
    if "?" in text:  # both query patterns match from a "?"
        text = query.sub(lambda match: "?" + _redact_query(match.group(1)), text)
    for pattern, replacement, may_match in _SECRETS:
        if may_match(text):
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
    by :func:`redact_argument`, then the whole line by :func:`redact`.

    The ids of the request or job the line was logged in (:class:`ContextFilter`) follow the
    message as ``name=value`` pairs."""

    def format(self, record: logging.LogRecord) -> str:
        record = _with_redacted_args(record)
        line = super().format(record)
        ids = " ".join(f"{name}={value}" for name, value in _ids(record).items())
        if ids:
            head, newline, rest = line.partition("\n")  # after the message, before a traceback
            line = f"{head} [{ids}]{newline}{rest}"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``pid``
    (which process of ``tryon serve --workers N``), ``message``, the request's ids, the
    record's own fields and, after an error, ``exception``.
    Every string in it is blanked as :class:`RedactingFormatter` blanks a line."""

    def format(self, record: logging.LogRecord) -> str:
        record = _with_redacted_args(record)
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
            **_ids(record),
        }
        for name, value in (getattr(record, "fields", None) or {}).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(_redacted(line), ensure_ascii=False, default=str)


class ContextFilter(logging.Filter):
    """Copies the ids of the request or job being served (its request id, key id, generation
    id) onto every record logged while serving it."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = request_context.current()
        if context is not None and not hasattr(record, "context_ids"):
            record.context_ids = context.fields()
        return True


_ID_FIELDS = ("request_id", "key_id", "generation_id")


def _ids(record: logging.LogRecord) -> dict[str, Any]:
    """The request, key and generation ids of a record: its own fields', else its context's."""
    ids = dict(getattr(record, "context_ids", None) or {})
    fields = getattr(record, "fields", None) or {}
    ids.update({name: fields[name] for name in _ID_FIELDS if fields.get(name) is not None})
    return {name: ids[name] for name in _ID_FIELDS if ids.get(name)}


def _with_redacted_args(record: logging.LogRecord) -> logging.LogRecord:
    args = record.args
    if isinstance(args, tuple) and args:
        redacted = tuple(redact_argument(a) if isinstance(a, str) else a for a in args)
        if any(new is not old for new, old in zip(redacted, args, strict=True)):
            # a copy: other handlers see the original
            record = logging.makeLogRecord(record.__dict__)
            record.args = redacted
    return record


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
_LOGGERS = ("tryon", "uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(level: str = "info", format: str = "text") -> dict[str, Any]:
    """Send every log line of the process to stderr, blanked, as readable text (``text``) or
    one JSON object per line (``json``); ours and uvicorn's at ``level``, others' at warning
    or above.

    uvicorn's loggers keep no handlers of their own: they propagate to the root's one. Returns
    the configuration applied (``tryon serve`` passes uvicorn ``log_config=None``).
    """
    if level not in LEVELS or format not in FORMATS:
        raise ValueError(f"level must be one of {LEVELS} and format one of {FORMATS}")
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if format == "json" else {"()": RedactingFormatter, "fmt": FORMAT}
    )
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"redacting": formatter},
        "filters": {"context": {"()": ContextFilter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "redacting",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": max(level.upper(), "WARNING", key=logging.getLevelName)},
        "loggers": {
            name: {"level": level.upper(), "handlers": [], "propagate": True} for name in _LOGGERS
        },
    }
    config["root"]["handlers"] = ["stderr"]
    logging.config.dictConfig(config)
    return config
