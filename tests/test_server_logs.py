"""What ``tryon serve`` writes to its log (issue 15, items 5 and 12).

- No secret: signed file links (``sig``), WebSocket job tokens (``token``) and a key sent by
  mistake in the query string (``?api_key=``) are logged as ``[redacted]``; the paths remain.
- A client that hangs up before its request body is complete is one INFO line ("client
  disconnected"), not an ERROR with a 500.

The gateway runs as ``tryon serve`` in a subprocess, with the offline engine, and the tests
read the log it writes.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from websockets.sync.client import connect

from tests.helpers import SAMPLES, auth, data_url
from tests.served import Gateway, configured, new_account
from tryon_core.api.hangups import BODY_CUT_SHORT
from tryon_core.server import RedactingFormatter, logs, redact
from tryon_core.server.logs import KEPT_PARAMETERS

MODEL = "local/overlay"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    """``tryon serve`` with the offline engine, and a key with credits."""
    directory = tmp_path_factory.mktemp("served")
    database_url = f"sqlite+aiosqlite:///{directory}/tryon.db"
    key, _ = asyncio.run(new_account(database_url, credits=100))
    gateway = configured(directory, database_url, "[providers.local]\nenabled = true")
    gateway.start()
    try:
        yield gateway, key
    finally:
        gateway.stop()


def _body(**fields: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "person_images": [data_url(SAMPLES / "person.jpg", "image/jpeg")],
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
        **fields,
    }


def _query(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query)[name][0]


def test_the_log_keeps_the_paths_and_no_secret(served: tuple[Gateway, str]) -> None:
    gateway, key = served
    start = gateway.log_size()
    with httpx.Client(base_url=gateway.url, timeout=60) as http:
        answer = http.post("/api/v1/tryon", json=_body(), headers=auth(key))
        assert answer.status_code == 200, answer.text
        link = answer.json()["images"][0]["url"]
        assert http.get(link).status_code == 200

        accepted = http.post("/api/v1/tryon", json=_body(mode="async"), headers=auth(key))
        assert accepted.status_code == 202, accepted.text
        ws_url = accepted.json()["wsUrl"]
        with connect(ws_url, open_timeout=30) as socket_:
            statuses = list(socket_)  # until the job ends and it closes
        assert '"completed"' in str(statuses[-1])

        mistakes = {"api_key": key, "access_token": key, "key": key}
        assert http.get("/api/v1/models", params=mistakes).status_code == 200
        assert http.get("/api/v1/nowhere", params={"sig": "x" * 20}, headers=auth(key)).is_error
    # a request's line is written once its answer is sent
    logged = _until_logged(gateway, start, "tryon.requests: GET /api/v1/nowhere 404 ")

    secrets = {
        "the key": key,
        "the key without its prefix": key.removeprefix("tryon_"),
        "the signature": _query(link, "sig"),
        "the job token": _query(ws_url, "token"),
    }
    for what, secret in secrets.items():
        assert secret not in logged, f"{what} is in the log:\n{logged}"
    # one line per request (the app's, in place of uvicorn's access line): paths, no query
    assert f"tryon.requests: GET {urlsplit(link).path} (/api/v1/files/{{file_id}}) 200 " in logged
    assert f'"WebSocket {urlsplit(ws_url).path}?token=[redacted]" [accepted]' in logged
    assert "tryon.requests: GET /api/v1/models 200 " in logged
    assert "tryon.requests: GET /api/v1/nowhere 404 " in logged
    assert "HTTP/1.1" not in logged


def _until_logged(gateway: Gateway, start: int, text: str) -> str:
    deadline = time.monotonic() + 30
    while text not in (logged := gateway.log_since(start)):
        assert time.monotonic() < deadline, f"never logged {text!r}:\n{logged}"
        time.sleep(0.05)
    return logged


@pytest.mark.parametrize(
    ("path", "content_type", "part"),
    [
        ("/api/v1/tryon", "application/json", b'{"model": "local/overlay", "person_images'),
        ("/api/v1/tryon", "multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: fo"),
        ("/api/v1/chat/completions", "application/json", b'{"model": "local/overlay", "mes'),
    ],
    ids=["json", "multipart", "chat"],
)
def test_a_client_that_hangs_up_mid_body_is_one_info_line(
    served: tuple[Gateway, str], path: str, content_type: str, part: bytes
) -> None:
    gateway, key = served
    start = gateway.log_size()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: 100000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gateway.port)) as client:
        client.sendall(head.encode() + part)
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):  # the gateway waits for the rest of the body
            client.recv(1)
    line = f"INFO tryon.api: client disconnected: POST {path}, {BODY_CUT_SHORT}"
    logged = _until_logged(gateway, start, line)
    with httpx.Client(base_url=gateway.url) as http:  # anything logged late is in by now
        assert http.get("/healthz").status_code == 200
    logged = _until_logged(gateway, start, "tryon.requests: GET /healthz 200 ")
    assert logged.count("client disconnected") == 1, logged
    assert " ERROR " not in logged, logged


# The redaction itself, on any query string and in any log line.

_numbers = st.from_regex(r"[0-9]{1,12}", fullmatch=True)
_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)
_secret_values = st.from_regex(r"[A-Za-z0-9_.~%-]{1,64}", fullmatch=True)


@given(
    path=st.from_regex(r"/api/v1/[a-z_]{1,12}(/[A-Za-z0-9-]{1,24})?", fullmatch=True),
    secret=st.lists(
        st.tuples(_names.filter(lambda name: name not in KEPT_PARAMETERS), _secret_values),
        min_size=1,
        max_size=4,
    ),
    kept=st.lists(
        st.tuples(st.sampled_from(sorted(KEPT_PARAMETERS)), _numbers),
        max_size=3,
    ),
    order=st.randoms(),
)
def test_only_the_values_of_harmless_parameters_are_kept(
    path: str, secret: list[tuple[str, str]], kept: list[tuple[str, str]], order: Any
) -> None:
    parameters = [(name, value, f"{name}=[redacted]") for name, value in secret]
    parameters += [(name, value, f"{name}={value}") for name, value in kept]
    order.shuffle(parameters)
    query = "&".join(f"{name}={value}" for name, value, _ in parameters)
    expected = "&".join(shown for _, _, shown in parameters)
    line = f'127.0.0.1:50000 - "GET {path}?{query} HTTP/1.1" 200'
    assert redact(line) == f'127.0.0.1:50000 - "GET {path}?{expected} HTTP/1.1" 200'


_visible = st.from_regex(r"[!-~]*", fullmatch=True)  # printable, no whitespace


def _formatted(message: str, *args: object) -> str:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 0, message, args, None)
    return RedactingFormatter("%(message)s").format(record)


@given(
    before=_visible,
    name=_names.filter(lambda name: name not in KEPT_PARAMETERS),
    secret=st.from_regex(r"[A-Za-z0-9]{20,40}", fullmatch=True),
    after=_visible,
)
def test_no_query_string_smuggles_a_value_past_the_access_log(
    before: str, name: str, secret: str, after: str
) -> None:
    """Quotes, "#", "?" or anything printable a client puts in its query (h11 lets them
    through) cannot end the query early in uvicorn's access and WebSocket lines."""
    assume(secret not in before + after)
    target = f"/api/v1/models?{before}&{name}={secret}{after}"
    access = _formatted('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", target, "1.1", 200)
    websocket = _formatted('%s - "WebSocket %s" [accepted]', "127.0.0.1:50000", target)
    assert secret not in access
    assert secret not in websocket


def test_a_quoted_url_in_a_message_keeps_its_closing_quote() -> None:
    assert (
        redact("fetch 'https://upstream.test/v1?key=AIzaSecret', then \"/f?sig=abc\": failed")
        == "fetch 'https://upstream.test/v1?key=[redacted]', then \"/f?sig=[redacted]\": failed"
    )


_keys = st.from_regex(r"(tryon|whsec|tcs|tcl)_[A-Za-z0-9_-]{43}", fullmatch=True)


@given(before=st.text(), key=_keys, after=st.text())
def test_a_key_is_blanked_wherever_it_appears(before: str, key: str, after: str) -> None:
    assert key not in redact(before + key + after)


@given(before=st.text(), credentials=st.from_regex(r"[A-Za-z0-9+/=._-]{8,64}", fullmatch=True))
def test_credentials_after_an_authorization_scheme_are_blanked(
    before: str, credentials: str
) -> None:
    for scheme in ("Bearer", "bearer", "Basic"):
        assert credentials not in redact(f"{before} Authorization: {scheme} {credentials}")


# Whole secrets of each kind the redaction blanks, and pieces close to them that it must not.
_pieces = st.sampled_from(
    [
        "/f?sig=abc&expires=1",
        "x?key=v 'y'",
        "tryon_" + "k" * 20,
        "whsec_" + "w" * 20,
        "tcs_" + "s" * 20,
        "tcl_" + "l" * 20,
        "Bearer abc.def",
        "bEaReR\txyz",
        "ba\u017fic dXNlcjpw",
        "BASIC dXNlcjpw",
        "data:;base64,QUJD",
        "data:image/png;base64,iVBORw0KGgoAAA",
        "/9j/4AAQSkZJRg",
        "UklGRiQAAABXRUJQ",
        "A" * 130,
        "Q" * 119,  # one character more, from any neighbour, makes a run to blank
        "tryon",
        "tcl-x",
        "data",
        "?",
        "_",
        " ",
        "'",
        "\n",
    ]
)


def _redacted_by_every_pattern(text: str, query: Any) -> str:
    """The redaction without its shortcuts: every pattern run on every text."""
    text = query.sub(lambda match: "?" + logs._redact_query(match.group(1)), text)
    for pattern, replacement, _ in logs._SECRETS:
        text = pattern.sub(replacement, text)
    return text


@given(st.lists(st.one_of(_pieces, st.text(max_size=4)), max_size=12).map("".join))
def test_the_redaction_shortcuts_change_nothing(text: str) -> None:
    assert redact(text) == _redacted_by_every_pattern(text, logs._QUERY_IN_TEXT)
    assert logs.redact_argument(text) == _redacted_by_every_pattern(text, logs._QUERY)


def test_a_traceback_goes_through_the_redaction_too() -> None:
    key = "tryon_" + "k" * 43
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tryon.test_server_logs")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"GET /api/v1/files/f?expires=1&sig=abcdef0123 with Bearer {key}")
        except RuntimeError:
            logger.exception("failed on /api/v1/tryon/job/ws?token=123.feedface")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "Traceback" in written and "RuntimeError" in written
    for secret in (key, "abcdef0123", "feedface"):
        assert secret not in written
    assert "/api/v1/files/f?expires=1&sig=[redacted]" in written
    assert "/api/v1/tryon/job/ws?token=[redacted]" in written
