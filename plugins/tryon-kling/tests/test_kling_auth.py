"""The JWT Kling wants: its exact shape, its signature, its claims, and when it is re-minted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from hypothesis import given
from hypothesis import strategies as st
from tryon_kling.auth import LIFETIME, RENEW_BEFORE, TokenCache, mint_token
from tryon_kling.fake import KlingFake, check_token

NOW = 1_760_000_000


def segment(text: str) -> object:
    assert "=" not in text, "JWT segments are unpadded"
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def test_the_token_is_hs256_over_the_three_claims() -> None:
    token = mint_token("AK-1", "SK-1", now=NOW)
    head, claims, signature = token.split(".")
    assert segment(head) == {"alg": "HS256", "typ": "JWT"}
    assert segment(claims) == {"iss": "AK-1", "exp": NOW + 1800, "nbf": NOW - 5}
    expected = hmac.new(b"SK-1", f"{head}.{claims}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected
    assert "SK-1" not in token


@given(
    access=st.text(min_size=1, max_size=40),
    secret=st.text(min_size=1, max_size=40),
    skew=st.integers(-10, LIFETIME - 1),
)
def test_the_fake_accepts_every_minted_token_while_it_is_valid(
    access: str, secret: str, skew: int
) -> None:
    token = mint_token(access, secret, now=NOW)
    fake = KlingFake(access, secret, processing_polls=1)
    assert check_token(f"Bearer {token}", fake, NOW + skew) is None


@given(access=st.text(min_size=1, max_size=20), secret=st.text(min_size=1, max_size=20))
def test_the_fake_refuses_a_token_signed_with_another_secret(access: str, secret: str) -> None:
    token = mint_token(access, secret + "x", now=NOW)
    assert check_token(f"Bearer {token}", KlingFake(access, secret, 1), NOW) == (
        1002,
        "authorization is invalid",
    )


def test_the_fake_reads_expiry_and_not_before_from_the_claims() -> None:
    fake = KlingFake("AK", "SK", 1)
    token = mint_token("AK", "SK", now=NOW)
    assert check_token(f"Bearer {token}", fake, NOW + LIFETIME)[0] == 1004  # type: ignore[index]
    # nbf is NOW - 5: a server clock 10 s behind is still within the 5 s of allowed skew...
    assert check_token(f"Bearer {token}", fake, NOW - 10) is None
    # ...but not 11 s behind.
    assert check_token(f"Bearer {token}", fake, NOW - 11)[0] == 1003  # type: ignore[index]


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def test_a_token_is_reused_until_five_minutes_before_it_expires() -> None:
    clock = Clock()
    cache = TokenCache(clock=clock)
    first = cache.token("AK", "SK")
    clock.now += LIFETIME - RENEW_BEFORE  # exactly five minutes left: still good
    assert cache.token("AK", "SK") == first
    clock.now += 1
    renewed = cache.token("AK", "SK")
    assert renewed != first
    assert segment(renewed.split(".")[1]) == {
        "iss": "AK",
        "exp": int(clock.now) + LIFETIME,
        "nbf": int(clock.now) - 5,
    }


def test_other_keys_get_their_own_token() -> None:
    cache = TokenCache(clock=Clock())
    first = cache.token("AK", "SK")
    other = cache.token("AK", "SK2")
    assert other != first
    assert check_token(f"Bearer {other}", KlingFake("AK", "SK2", 1), NOW) is None
