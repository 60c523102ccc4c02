"""The periods of a key's credit limit: each instant lies in exactly one, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tryon_core.limit_periods import EPOCH, LIMIT_RESETS, next_period_start, period_start

instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2999, 12, 1), timezones=st.just(UTC)
)
RESETTING = [reset for reset in LIMIT_RESETS if reset != "none"]


@given(instants, st.sampled_from(RESETTING))
def test_the_period_holding_an_instant_starts_at_or_before_it_and_ends_after_it(
    at: datetime, reset: str
) -> None:
    start = period_start(reset, at)
    end = next_period_start(reset, at)
    assert end is not None
    assert start <= at < end
    assert (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0)
    assert period_start(reset, start) == start  # a start is in its own period
    assert period_start(reset, end) == end  # and the next period starts where this one ends
    assert period_start(reset, end - timedelta(microseconds=1)) == start


@given(instants)
def test_weeks_begin_on_monday_and_months_on_the_first(at: datetime) -> None:
    assert period_start("weekly", at).weekday() == 0
    assert at - period_start("weekly", at) < timedelta(days=7)
    assert period_start("monthly", at).day == 1
    assert period_start("monthly", at).month == at.month
    assert period_start("daily", at).date() == at.date()


@given(instants, st.sampled_from([timedelta(hours=h) for h in (-11, -5, 3, 9, 14)]))
def test_an_instant_in_another_zone_falls_in_its_utc_period(
    at: datetime, offset: timedelta
) -> None:

    elsewhere = at.astimezone(timezone(offset))
    for reset in LIMIT_RESETS:
        assert period_start(reset, elsewhere) == period_start(reset, at)


@given(instants)
def test_a_limit_that_never_resets_has_one_period(at: datetime) -> None:
    assert period_start("none", at) == EPOCH
    assert next_period_start("none", at) is None


def test_the_boundaries_are_utc_midnights() -> None:
    sunday_late = datetime(2026, 11, 29, 23, 59, 59, 999999, tzinfo=UTC)  # a Sunday
    assert period_start("daily", sunday_late) == datetime(2026, 11, 29, tzinfo=UTC)
    assert period_start("weekly", sunday_late) == datetime(2026, 11, 23, tzinfo=UTC)
    assert next_period_start("weekly", sunday_late) == datetime(2026, 11, 30, tzinfo=UTC)
    assert next_period_start("monthly", sunday_late) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_period_start("monthly", datetime(2026, 12, 31, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="yearly"):
        period_start("yearly", sunday_late)
