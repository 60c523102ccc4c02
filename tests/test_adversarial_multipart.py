"""Odd multipart on ``POST /api/v1/tryon``, and what any error quotes back of a client's text.

Every odd form gets a 4xx envelope (never a 500), no ERROR line in the log, no provider call and
no credit touched; a form's integers are read exactly as JSON reads them; an error quotes at
most ``ECHO_LIMIT`` characters of what the client sent, whichever route and encoding.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import SAMPLES, auth, new_key
from tryon_core.errors import ECHO_LIMIT
from tryon_core.testing import ScriptedProvider

Client = AsyncTestClient[Litestar]
TRYON = "/api/v1/tryon"
BOUNDARY = "xyz"
CREDITS = 100


def part(name: bytes | None, body: bytes, *headers: bytes, filename: bytes | None = None) -> bytes:
    disposition = b"Content-Disposition: form-data"
    if name is not None:
        disposition += b'; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    lines = [disposition, *headers] if name is not None or filename is not None else [*headers]
    return b"--xyz\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body + b"\r\n"


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--xyz--\r\n"


async def post_form(client: Client, key: str, body: bytes, content_type: str | None = None) -> Any:
    return await client.post(
        TRYON,
        content=body,
        headers={**auth(key), "Content-Type": content_type or f"multipart/form-data; "
                 f"boundary={BOUNDARY}"},
    )  # fmt: skip


def expect_refusal(response: httpx.Response) -> dict[str, Any]:
    """A 4xx with the one envelope."""
    assert 400 <= response.status_code < 500, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == response.status_code
    assert error["message"] and error["type"]
    return error


async def expect_untouched(client: Client, key: str, scripted: ScriptedProvider) -> None:
    credits = (await client.get("/api/v1/credits", headers=auth(key))).json()
    assert (credits["balance"], credits["reserved"]) == (CREDITS, 0)
    assert scripted.calls == []


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# (id, body, status, type, param): each found by the outside probe or its neighbours
ODD_FORMS = [
    ("not UTF-8", form(part(b"prompt", b"caf\xe9")), 400, "invalid_request", "prompt"),
    ("not UTF-8 in a URL field", form(part(b"person_images", b"https://x/\xff")),
     400, "invalid_request", "person_images"),
    ("charset x-bogus", form(part(b"prompt", b"hi", b"Content-Type: text/plain; charset=x-bogus")),
     400, "invalid_request", "prompt"),
    ("charset rot13", form(part(b"prompt", b"hi", b"Content-Type: text/plain; charset=rot13")),
     400, "invalid_request", "prompt"),
    ("charset base64", form(part(b"prompt", b"aGk=", b"Content-Type: text/plain; charset=base64")),
     400, "invalid_request", "prompt"),
    ("charset punycode", form(part(b"prompt", b"a" * 1000 + b"-" + b"b" * 1000,
                                   b"Content-Type: text/plain; charset=punycode")),
     400, "invalid_request", "prompt"),
    ("charset undefined",
     form(part(b"prompt", b"hi", b"Content-Type: text/plain; charset=undefined")),
     400, "invalid_request", "prompt"),
    ("charset utf-16", form(part(b"prompt", b"\xff", b"Content-Type: text/plain; charset=utf-16")),
     400, "invalid_request", "prompt"),
    ("transfer encoding base64",
     form(part(b"prompt", b"aGk=", b"Content-Transfer-Encoding: base64")),
     400, "invalid_request", "prompt"),
    ("transfer encoding rot13", form(part(b"n", b"1", b"Content-Transfer-Encoding: rot13")),
     400, "invalid_request", "n"),
    ("both base64", form(part(b"prompt", b"aGk=", b"Content-Type: text/plain; charset=base64",
                              b"Content-Transfer-Encoding: base64")),
     400, "invalid_request", "prompt"),
    ("empty filename on a text field", form(part(b"prompt", b"\x89PNG\xff", filename=b"")),
     400, "invalid_request", "prompt"),
    ("no name", form(b"--xyz\r\nContent-Disposition: form-data\r\n\r\nhi\r\n"),
     400, "invalid_request", None),
    ("empty name", form(part(b"", b"hi")), 400, "invalid_request", None),
    ("two dispositions", form(part(b"prompt", b"hi", b'Content-Disposition: form-data; name="n"')),
     400, "invalid_request", None),
    ("two content types", form(part(b"prompt", b"hi", b"Content-Type: text/plain",
                                    b"Content-Type: text/plain; charset=x-bogus")),
     400, "invalid_request", None),
    ("no headers", form(b"--xyz\r\n\r\nhi\r\n"), 400, "invalid_request", None),
    ("not form-data", form(b'--xyz\r\nContent-Disposition: attachment; name="n"\r\n\r\n1\r\n'),
     400, "invalid_request", None),
    ("header not UTF-8", form(part(b"prompt", b"hi", filename=b"\xff.png")),
     400, "invalid_request", None),
    ("empty body", b"", 400, "invalid_request", None),
    ("no closing boundary", part(b"prompt", b"hi"), 400, "invalid_request", None),
    ("other boundary", form(part(b"prompt", b"hi")).replace(b"xyz", b"abc"),
     400, "invalid_request", None),
    ("name with NUL", form(part(b"pro\x00mpt", b"hi")), 400, "invalid_request", "pro\x00mpt"),
    ("huge name", form(part(b"a" * 4000, b"hi")), 400, "invalid_request", "a" * 63 + "…"),
    ("name over the header limit", form(part(b"a" * 5000, b"hi")), 413, "payload_too_large", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "kind", "param"),
    [case[1:] for case in ODD_FORMS],
    ids=[case[0] for case in ODD_FORMS],
)
async def test_an_odd_form_is_refused_cleanly(
    client: Client,
    scripted: ScriptedProvider,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    status: int,
    kind: str,
    param: str | None,
) -> None:
    key, _ = await new_key(client, credits=CREDITS)
    response = await post_form(client, key, body)
    assert response.status_code == status, response.text
    error = expect_refusal(response)
    assert (error["type"], error["param"]) == (kind, param)
    assert errors_logged(caplog) == []
    await expect_untouched(client, key, scripted)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        'multipart/form-data; boundary=""',
        "multipart/form-data; boundary=abc",
        "multipart/form-data; boundary=" + "x" * 2000,
    ],
)
async def test_a_missing_or_wrong_boundary_is_400(
    client: Client, scripted: ScriptedProvider, caplog: pytest.LogCaptureFixture, content_type: str
) -> None:
    key, _ = await new_key(client, credits=CREDITS)
    response = await post_form(client, key, form(part(b"prompt", b"hi")), content_type)
    assert response.status_code == 400, response.text
    expect_refusal(response)
    assert errors_logged(caplog) == []
    await expect_untouched(client, key, scripted)


async def test_a_file_part_with_an_empty_filename_is_a_file(
    client: Client, scripted: ScriptedProvider
) -> None:
    """What a browser sends for a file input with no file name: the bytes are the image."""
    key, _ = await new_key(client, credits=CREDITS)
    body = form(
        part(b"person_images", (SAMPLES / "person.jpg").read_bytes(),
             b"Content-Type: image/jpeg", filename=b""),
        part(b"garment_images", (SAMPLES / "garment.png").read_bytes(),
             b"Content-Type: image/png", filename=b""),
    )  # fmt: skip
    response = await post_form(client, key, body)
    assert response.status_code == 200, response.text
    assert len(scripted.calls) == 1


async def test_a_utf8_text_part_with_a_declared_charset_is_read(client: Client) -> None:
    key, _ = await new_key(client, credits=CREDITS)
    body = form(
        part(b"prompt", "café".encode(), b"Content-Type: text/plain; charset=UTF-8"),
        part(b"n", b"7", b"Content-Type: text/plain; charset=us-ascii",
             b"Content-Transfer-Encoding: 8bit"),
    )  # fmt: skip
    error = expect_refusal(await post_form(client, key, body))
    assert error["param"] == "n"  # both parts read: the first problem is n's range
    assert "<= 4" in error["message"]


# -- integers: the same rule for both encodings ------------------------------------------------


async def outcome(client: Client, key: str, field: str, text: str) -> tuple[bool, bool]:
    """Whether ``text`` passed as ``field``, in JSON (as a raw literal) and in a form.

    No garment image is sent: a request whose options pass is refused for that instead.
    """
    as_json = f'{{"person_images": "https://x/p.png", "garment_images": [], "{field}": {text}}}'
    first = await client.post(
        TRYON, content=as_json.encode(), headers={**auth(key), "Content-Type": "application/json"}
    )
    body = form(part(b"person_images", b"https://x/p.png"), part(field.encode(), text.encode()))
    second = await post_form(client, key, body)
    passed = [expect_refusal(r)["param"] == "garment_images" for r in (first, second)]
    return passed[0], passed[1]


@pytest.mark.parametrize("text", ["1.0", "1e0", "1E0", "+1", "01", "0x1", "1_0", "\u0661"])
@pytest.mark.parametrize("field", ["n", "seed"])
async def test_a_form_integer_takes_what_json_takes(client: Client, field: str, text: str) -> None:
    key, _ = await new_key(client)
    response = await post_form(client, key, form(part(field.encode(), text.encode())))
    error = expect_refusal(response)
    assert (response.status_code, error["param"]) == (400, field)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(["n", "seed"]),
    text=st.one_of(
        st.integers(min_value=-10, max_value=2**70).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.text(alphabet="0123456789+-.eE", min_size=1, max_size=12),
    ),
)
async def test_json_and_forms_agree_on_integers(
    client: Client, scripted: ScriptedProvider, field: str, text: str
) -> None:
    key, _ = await new_key(client, credits=CREDITS)
    in_json, in_form = await outcome(client, key, field, text)
    assert in_json == in_form, text
    assert scripted.calls == []


# -- what an error quotes ----------------------------------------------------------------------

LONG = "q" * 10_000


def quoted(error: dict[str, Any]) -> None:
    """Nothing of LONG beyond ECHO_LIMIT characters, in the message or the param."""
    assert "q" * ECHO_LIMIT not in error["message"], error["message"][:200]
    assert len(error["param"] or "") <= ECHO_LIMIT
    assert len(error["message"]) < 300


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (TRYON, {"person_images": "x", "garment_images": "x", LONG: 1}),
        (TRYON, {"person_images": "x", "garment_images": "x", "category": LONG}),
        ("/api/v1/chat/completions", {"messages": [{"role": LONG, "content": "hi"}]}),
        ("/api/v1/chat/completions",
         {"messages": [{"role": "user", "content": [{"type": LONG, "text": "hi"}]}]}),
        ("/api/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                                      "tryon": {LONG: 1}}),
    ],
    ids=["tryon field", "tryon value", "chat role", "chat part type", "chat tryon field"],
)  # fmt: skip
async def test_json_errors_quote_a_client_name_or_value_briefly(
    client: Client, route: str, body: dict[str, Any]
) -> None:
    key, _ = await new_key(client)
    response = await client.post(route, json=body, headers=auth(key))
    error = expect_refusal(response)
    quoted(error)
    assert "…" in error["message"] + (error["param"] or "")


@pytest.mark.parametrize(
    "body",
    [
        form(part(LONG[:3000].encode(), b"1")),
        form(part(b"category", LONG.encode())),
        form(part(LONG[:3000].encode(), b"x", filename=b"f.png")),
        form(part(b"prompt", b"hi"), part(b"prompt", b"hi")),
        form(part(b"prompt", b"hi", b"Content-Type: text/plain; charset=" + LONG[:3000].encode())),
        form(part(b"prompt", b"hi", b"Content-Transfer-Encoding: " + LONG[:3000].encode())),
    ],
    ids=["name", "value", "file name", "twice", "charset", "transfer encoding"],
)
async def test_form_errors_quote_a_client_name_or_value_briefly(
    client: Client, body: bytes
) -> None:
    key, _ = await new_key(client)
    quoted(expect_refusal(await post_form(client, key, body)))


# -- generated forms ---------------------------------------------------------------------------

FIELDS = ["person_images", "garment_images", "person_images[]", "n", "seed", "prompt", "model",
          "models", "category", "output_format", "mode", "webhook_url"]  # fmt: skip
CHARSETS = ["utf-8", "UTF-8", "us-ascii", "latin-1", "x-bogus", "rot13", "base64", "punycode",
            "utf-16", "idna", "undefined", "unicode_escape", ""]  # fmt: skip
ENCODINGS = ["binary", "8bit", "7bit", "base64", "quoted-printable", "rot13", "x-gzip", ""]
header_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30)


@st.composite
def generated_part(draw: st.DrawFn) -> bytes:
    name = draw(st.one_of(st.none(), st.sampled_from(FIELDS), header_text))
    filename = draw(st.one_of(st.none(), st.just(""), header_text))
    headers: list[bytes] = []
    if name is not None or filename is not None or draw(st.booleans()):
        disposition = "Content-Disposition: form-data"
        disposition += f'; name="{name}"' if name is not None else ""
        disposition += f'; filename="{filename}"' if filename is not None else ""
        headers += [disposition.encode()] * draw(st.sampled_from([1, 1, 1, 2]))
    if draw(st.booleans()):
        charset = draw(st.one_of(st.sampled_from(CHARSETS), header_text))
        kind = draw(st.sampled_from(["text/plain", "image/png", "application/octet-stream"]))
        headers.append(f"Content-Type: {kind}; charset={charset}".encode())
    if draw(st.booleans()):
        encoding = draw(st.one_of(st.sampled_from(ENCODINGS), header_text))
        headers.append(f"Content-Transfer-Encoding: {encoding}".encode())
    if draw(st.integers(0, 9)) == 0:  # now and then, a header line of any bytes
        headers.append(draw(st.binary(max_size=20)))
    body = draw(
        st.one_of(
            st.binary(max_size=64),
            st.text(max_size=40).map(str.encode),
            st.sampled_from(["1", "1.0", "1e0", "https://x/p.png", "tops"]).map(str.encode),
        )
    )
    return b"--xyz\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body + b"\r\n"


@st.composite
def generated_form(draw: st.DrawFn) -> tuple[str, bytes]:
    body = b"".join(draw(st.lists(generated_part(), max_size=6)))
    body += draw(
        st.sampled_from([b"--xyz--\r\n"] * 4 + [b"--xyz--", b"", b"--abc--\r\n", b"--xyz"])
    )
    if draw(st.sampled_from([False, False, False, True])):  # cut short
        body = body[: draw(st.integers(0, len(body)))]
    boundary = draw(
        st.sampled_from(["; boundary=xyz"] * 4 + ['; boundary="xyz"', "; boundary=abc", ""])
    )
    return f"multipart/form-data{boundary}", body


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=generated_form())
async def test_a_generated_form_never_gets_a_500(
    client: Client,
    scripted: ScriptedProvider,
    caplog: pytest.LogCaptureFixture,
    request: tuple[str, bytes],
) -> None:
    content_type, body = request
    key, _ = await new_key(client, credits=CREDITS)
    response = await post_form(client, key, body, content_type)
    error = expect_refusal(response)  # no generated form carries a real image
    assert re.fullmatch(r"[a-z_]+", error["type"])
    assert errors_logged(caplog) == []
    await expect_untouched(client, key, scripted)


async def test_an_unknown_model_or_key_is_quoted_briefly(client: Client, tryon_body: Any) -> None:
    key, account = await new_key(client)
    manager, _ = await new_key(client, 0, scope="management", account=account)
    model = await client.post(TRYON, json=tryon_body(model="q" * 200), headers=auth(key))
    assert model.status_code == 404, model.text
    revoke = await client.delete(f"/api/v1/keys/{LONG}", headers=auth(manager))
    assert revoke.status_code == 404, revoke.text
    for response in (model, revoke):
        quoted(expect_refusal(response))
