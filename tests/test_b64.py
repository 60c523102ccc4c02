"""tryon_core.b64: the fast codec answers exactly as the standard library's strict one does."""

from __future__ import annotations

import base64
import binascii

from hypothesis import given
from hypothesis import strategies as st

from tryon_core import b64
from tryon_core.plugin import b64decode, b64encode

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# mostly the alphabet and padding, now and then a character base64 does not have
texts = st.text(st.sampled_from(_ALPHABET + "====") | st.sampled_from(" \n-_é\x00."), max_size=40)


def _standard(text: str | bytes) -> bytes | type[Exception]:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return binascii.Error
    except ValueError:
        return ValueError


def _ours(text: str | bytes) -> bytes | type[Exception]:
    try:
        return b64.decode(text)
    except binascii.Error:
        return binascii.Error
    except ValueError:
        return ValueError


@given(texts)
def test_decode_accepts_and_refuses_what_the_standard_library_does(text: str) -> None:
    assert _ours(text) == _standard(text)
    if text.isascii():
        assert _ours(text.encode()) == _standard(text.encode())


@given(st.binary(max_size=300))
def test_encode_then_decode_is_the_standard_encoding_and_back(data: bytes) -> None:
    text = b64.encode(data)
    assert text == base64.b64encode(data).decode()
    assert b64.decode(text) == data


def test_the_cases_the_fast_codec_refuses_are_still_decoded_as_the_standard_library_does() -> None:
    # padding after a complete group: pybase64 refuses it, the standard library takes it
    assert b64.decode("QUJD=") == b"ABC"
    assert b64.decode("rD13==") == binascii.a2b_base64("rD13==", strict_mode=True)


def test_refusals_are_value_errors() -> None:
    for text in ("QQ=", "QQ==QQ==", "QU JD", "QUJD\n", "=QUJD", "QUJé"):
        try:
            b64.decode(text)
        except ValueError:
            continue
        raise AssertionError(f"{text!r} was decoded")


def test_megabytes_round_trip() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    assert b64.decode(b64.encode(data)) == data


def test_the_plugin_api_offers_the_same_codec() -> None:
    assert b64decode is b64.decode and b64encode is b64.encode
