"""Standard base64, at memory speed: images cross the gateway as base64 in both directions
(data URLs in, ``b64_json`` and ``inlineData`` from upstreams, data URLs out), megabytes at a time.

The standard library's codec goes a byte at a time (about 1.2 ms per megabyte decoded on the
build machine); pybase64's SIMD codec does the same work some thirty times faster. The rules
stay the standard library's: :func:`decode` answers exactly as
``binascii.a2b_base64(text, strict_mode=True)`` (the same as ``base64.b64decode(text,
validate=True)``) does, because pybase64 accepts a subset of what the standard library accepts
(it refuses, for one, padding after a complete group) with the same bytes, and whatever it
refuses is decoded again by the standard library, which has the last word.
"""

from __future__ import annotations

import binascii

import pybase64

__all__ = ["decode", "encode"]


def decode(text: str | bytes) -> bytes:
    """The bytes of strict standard base64 ``text`` (no spaces, no other alphabet; padding as
    the standard library allows it). Raises ``binascii.Error`` (a ``ValueError``) otherwise,
    ``ValueError`` for a ``str`` that is not ASCII."""
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return binascii.a2b_base64(text, strict_mode=True)


def encode(data: bytes | bytearray | memoryview) -> str:
    """``data`` in standard base64 with padding, as ASCII text."""
    return pybase64.b64encode_as_string(data)
