"""The console's parts on their own: the spend chart's geometry, the bound on sign-in
attempts, the figures behind the overview, and CSV cells that stay text."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.console_helpers import Client
from tests.helpers import SAMPLES, auth, new_key, own_database
from tryon_core import accounts
from tryon_core.console.chart import bar_chart
from tryon_core.console.pages.generations import csv_record
from tryon_core.console.throttle import SignInThrottle
from tryon_core.ids import utcnow
from tryon_core.reports import DailySpend, daily_spend, list_accounts, spend_by_key

credits = st.integers(min_value=0, max_value=10**12)


@given(st.lists(credits, min_size=1, max_size=60))
def test_every_day_is_a_bar_that_fits_and_the_highest_fills_the_chart(days: list[int]) -> None:
    first = date(2025, 1, 1)
    spend = [DailySpend(day=first + timedelta(days=i), credits=c) for i, c in enumerate(days)]
    chart = bar_chart(spend, width=600, height=160)
    assert [b.credits for b in chart.bars] == days
    assert chart.total == sum(days) and chart.peak == max(days)
    previous_end = 0.0
    for bar in chart.bars:
        assert 0 <= bar.height <= 160
        assert abs(bar.y + bar.height - 160) < 0.02
        assert (bar.height == 0) == (bar.credits == 0)
        if bar.credits:
            assert bar.height >= 1  # a day with any spend shows
        if bar.credits == chart.peak and chart.peak:
            assert bar.height == 160
        assert bar.x >= previous_end - 0.02 and bar.x + bar.width <= 600.02
        previous_end = bar.x + bar.width
    labelled = [i for i, bar in enumerate(chart.bars) if bar.label]
    assert labelled[-1] == len(days) - 1
    assert all(b - a >= 4 for a, b in itertools.pairwise(labelled))


@given(
    st.integers(min_value=1, max_value=5),
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.floats(min_value=0, max_value=40)), max_size=60
    ),
)
def test_no_address_gets_more_attempts_than_allowed_in_any_window(
    attempts: int, steps: list[tuple[str, float]]
) -> None:
    now = [0.0]
    throttle = SignInThrottle(attempts=attempts, window=60, clock=lambda: now[0])
    admitted: dict[str, list[float]] = {"a": [], "b": []}
    for address, wait in steps:
        now[0] += wait
        recent = [t for t in admitted[address] if t > now[0] - 60]
        retry = throttle.attempt(address)
        if retry is None:
            admitted[address].append(now[0])
            assert len(recent) < attempts
        else:
            assert len(recent) == attempts  # refused only when the window is full
            assert 1 <= retry <= 60
            assert recent[0] + 60 - now[0] <= retry + 1e-9  # float rounding aside


def test_a_wait_never_exceeds_the_window_for_float_rounding() -> None:
    """26.872848822480243 + 60 - 26.872848822480243 is 60.00000000000001 in floats: refused
    at the very instant of its last attempt, a client still waits at most the window."""
    now = 26.872848822480243
    throttle = SignInThrottle(attempts=1, window=60, clock=lambda: now)
    assert throttle.attempt("a") is None
    assert throttle.attempt("a") == 60


def test_the_addresses_followed_are_bounded() -> None:
    throttle = SignInThrottle(attempts=1, window=60, clock=lambda: 0.0, max_addresses=3)
    for address in "abcd":
        assert throttle.attempt(address) is None
    assert throttle.attempt("a") is None  # forgotten: the longest-quiet address went first
    assert throttle.attempt("d") is not None


def test_a_csv_cell_is_never_a_formula() -> None:
    record = csv_record(("=1+1", "+1", "-1", "@SUM(A1)", "plain", "a,b", '"q"'))
    (row,) = csv.reader(io.StringIO(record.decode()))
    assert row == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "plain", "a,b", '"q"']


async def test_spend_by_day_and_by_key_and_the_accounts(client: Client) -> None:
    key, account = await new_key(client, credits=50)
    files = {
        "person_images": ("p.jpg", (SAMPLES / "person.jpg").read_bytes(), "image/jpeg"),
        "garment_images": ("g.png", (SAMPLES / "garment.png").read_bytes(), "image/png"),
    }
    for model in ["scripted/alpha", "scripted/beta"]:
        answer = await client.post(
            "/api/v1/tryon", files=files, data={"model": model}, headers=auth(key)
        )
        assert answer.status_code == 200, answer.text
    async with own_database(client) as database, database.reading() as conn:
        days = await daily_spend(conn, account, days=30)
        by_key = await spend_by_key(conn, account)
        (info,) = await accounts.list_keys(conn, account_id=account)
        found = await list_accounts(conn)
    today = utcnow().date()
    assert [d.day for d in days] == [today - timedelta(days=29 - i) for i in range(30)]
    assert [d.credits for d in days] == [0] * 29 + [5]
    assert by_key == {info.id: 5}
    (mine,) = [a for a in found if a.id == account]
    assert (mine.balance, mine.reserved) == (45, 0)
