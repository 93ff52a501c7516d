"""The due-time calendar: school days, working days, months, and the UK clock changes.

Dates are real calendar dates; the holidays configured here are invented test data.
2026 clock changes in Europe/London: forward Sunday 29 March 01:00 GMT, back Sunday
25 October 02:00 BST.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.flags.calendar import LONDON, Calendar, CalendarError, add_months, local_to_utc

T0830 = dt.time(8, 30)
T1700 = dt.time(17, 0)
T2359 = dt.time(23, 59)
T0900 = dt.time(9, 0)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def london(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=LONDON)


# -- next school day (Operation Encompass) ----------------------------------------------


def test_monday_evening_incident_is_due_tuesday_0830():
    assert Calendar().next_school_day_at(london("2026-11-16T22:00"), T0830) == utc(
        "2026-11-17T08:30:00Z"
    )


def test_early_morning_incident_on_a_school_day_is_due_the_next_school_day():
    # Documented choice: strictly after the incident's local date, not 08:30 the same day.
    assert Calendar().next_school_day_at(london("2026-11-17T06:00"), T0830) == utc(
        "2026-11-18T08:30:00Z"
    )


def test_friday_2300_incident_is_due_monday_0830():
    assert Calendar().next_school_day_at(london("2026-11-20T23:00"), T0830) == utc(
        "2026-11-23T08:30:00Z"
    )


def test_late_saturday_before_clocks_go_back_is_due_monday_0830_gmt():
    # Saturday 24 Oct 2026 23:30 BST; clocks go back Sunday 25 Oct → Monday 08:30 GMT.
    base = london("2026-10-24T23:30")
    assert base.utcoffset() == dt.timedelta(hours=1)
    assert Calendar().next_school_day_at(base, T0830) == utc("2026-10-26T08:30:00Z")


def test_friday_before_clocks_go_forward_is_due_monday_0830_bst():
    # Friday 27 Mar 2026 (GMT); clocks go forward Sunday 29 Mar → Monday 08:30 BST = 07:30Z.
    assert Calendar().next_school_day_at(london("2026-03-27T21:00"), T0830) == utc(
        "2026-03-30T07:30:00Z"
    )


def test_school_day_follows_the_local_date_not_the_utc_date():
    # Sunday 14 June 2026 23:30Z is already Monday 00:30 BST: next school day is Tuesday.
    assert Calendar().next_school_day_at(utc("2026-06-14T23:30:00Z"), T0830) == utc(
        "2026-06-16T07:30:00Z"
    )
    # Friday 12 June 23:30Z is Saturday 00:30 BST: Monday.
    assert Calendar().next_school_day_at(utc("2026-06-12T23:30:00Z"), T0830) == utc(
        "2026-06-15T07:30:00Z"
    )


def test_configured_non_school_days_are_skipped():
    # Invented half-term: Monday 26 to Friday 30 October 2026.
    half_term = Calendar.from_iso_dates(non_school_days=[f"2026-10-{d}" for d in range(26, 31)])
    assert half_term.next_school_day_at(london("2026-10-23T19:00"), T0830) == utc(
        "2026-11-02T08:30:00Z"
    )


def test_bank_holidays_are_never_school_days():
    # 28 Dec 2026 is a (configured) bank holiday, not listed as a non-school day.
    calendar = Calendar.from_iso_dates(non_working_days=["2026-12-28"])
    assert not calendar.is_school_day(dt.date(2026, 12, 28))
    assert calendar.next_school_day_at(london("2026-12-25T20:00"), T0830) == utc(
        "2026-12-29T08:30:00Z"
    )


@given(
    st.datetimes(
        min_value=dt.datetime(2024, 1, 1),
        max_value=dt.datetime(2030, 12, 31),
        timezones=st.just(dt.UTC),
    )
)
def test_next_school_day_is_always_a_later_school_day_at_0830_local(base):
    due = Calendar().next_school_day_at(base, T0830)
    local = due.astimezone(LONDON)
    assert due.tzinfo is dt.UTC
    assert (local.hour, local.minute) == (8, 30)
    assert local.weekday() < 5
    assert local.date() > base.astimezone(LONDON).date()
    assert (local.date() - base.astimezone(LONDON).date()).days <= 3


# -- working days -----------------------------------------------------------------------


def test_one_working_day_from_friday_night_is_monday_close_of_business():
    assert Calendar().working_days_at(london("2026-11-20T23:00"), 1, T1700) == utc(
        "2026-11-23T17:00:00Z"
    )


def test_working_days_skip_bank_holidays():
    calendar = Calendar.from_iso_dates(non_working_days=["2026-08-31"])  # Monday
    assert calendar.working_days_at(london("2026-08-28T12:00"), 1, T1700) == utc(
        "2026-09-01T16:00:00Z"  # Tuesday 17:00 BST
    )


def test_working_days_count_across_a_weekend():
    # Wednesday + 5 working days = next Wednesday.
    assert Calendar().working_days_at(london("2026-11-18T09:00"), 5, T1700) == utc(
        "2026-11-25T17:00:00Z"
    )


def test_working_days_across_the_october_clock_change():
    # Friday 23 Oct 17:00 is BST (16:00Z); Monday 26 Oct 17:00 is GMT (17:00Z).
    assert Calendar().working_days_at(london("2026-10-22T10:00"), 1, T1700) == utc(
        "2026-10-23T16:00:00Z"
    )
    assert Calendar().working_days_at(london("2026-10-23T10:00"), 1, T1700) == utc(
        "2026-10-26T17:00:00Z"
    )


def test_zero_working_days_is_refused():
    with pytest.raises(CalendarError):
        Calendar().add_working_days(dt.date(2026, 11, 17), 0)


# -- same day ---------------------------------------------------------------------------


def test_same_day_is_2359_local_in_summer_and_winter():
    assert Calendar().same_day_at(london("2026-11-17T10:00"), T2359) == utc("2026-11-17T23:59:00Z")
    assert Calendar().same_day_at(london("2026-06-17T10:00"), T2359) == utc("2026-06-17T22:59:00Z")


def test_same_day_is_never_before_the_base_time():
    base = london("2026-11-17T23:59:30")
    assert Calendar().same_day_at(base, T2359) == base.astimezone(dt.UTC)


# -- months -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2027, 1, 31), 1, dt.date(2027, 2, 28)),
        (dt.date(2028, 1, 31), 1, dt.date(2028, 2, 29)),
        (dt.date(2026, 11, 30), 3, dt.date(2027, 2, 28)),
        (dt.date(2026, 8, 31), 3, dt.date(2026, 11, 30)),
        (dt.date(2026, 11, 20), 12, dt.date(2027, 11, 20)),
        (dt.date(2026, 12, 15), 1, dt.date(2027, 1, 15)),
    ],
)
def test_add_months_clamps_to_the_end_of_shorter_months(day, months, expected):
    assert add_months(day, months) == expected


def test_three_months_across_the_march_clock_change_keeps_0900_local():
    assert Calendar().months_at(london("2026-01-15T10:00"), 3, T0900) == utc("2026-04-15T08:00:00Z")


def test_twelve_months_keeps_0900_local_in_winter():
    assert Calendar().months_at(london("2026-11-17T10:00"), 12, T0900) == utc(
        "2027-11-17T09:00:00Z"
    )


def test_months_roll_forward_to_a_working_day_only_when_asked():
    base = london("2026-11-20T22:31")  # + 3 months = Saturday 20 Feb 2027
    assert Calendar().months_at(base, 3, T0900) == utc("2027-02-20T09:00:00Z")
    calendar = Calendar.from_iso_dates(non_working_days=["2027-02-22"])
    assert calendar.months_at(base, 3, T0900, roll_forward_to_working_day=True) == utc(
        "2027-02-23T09:00:00Z"
    )


# -- nonexistent and ambiguous local times ----------------------------------------------


def test_nonexistent_local_time_moves_forward_by_the_gap():
    # 01:30 on 29 March 2026 does not exist: read with GMT, it is 01:30Z = 02:30 BST.
    due = local_to_utc(dt.date(2026, 3, 29), dt.time(1, 30))
    assert due == utc("2026-03-29T01:30:00Z")
    assert due.astimezone(LONDON).strftime("%H:%M %Z") == "02:30 BST"


def test_ambiguous_local_time_is_its_first_earlier_occurrence():
    # 01:30 on 25 October 2026 happens twice: 00:30Z (BST) and 01:30Z (GMT).
    assert local_to_utc(dt.date(2026, 10, 25), dt.time(1, 30)) == utc("2026-10-25T00:30:00Z")
    assert local_to_utc(dt.date(2026, 10, 25), dt.time(1, 30, fold=1)) == utc(
        "2026-10-25T00:30:00Z"
    )


def test_due_time_policies_resolve_a_configured_ambiguous_time():
    # A review configured for 01:30 landing on the October change resolves to one instant.
    due = Calendar().months_at(london("2026-07-25T12:00"), 3, dt.time(1, 30))
    assert due == utc("2026-10-25T00:30:00Z")


def test_default_times_are_never_ambiguous_or_missing_on_change_days():
    for day in (dt.date(2026, 3, 29), dt.date(2026, 10, 25)):
        for at in (T0830, T0900, T1700, T2359):
            due = local_to_utc(day, at)
            assert due.astimezone(LONDON).time() == at


# -- guards -----------------------------------------------------------------------------


def test_naive_base_time_is_refused():
    with pytest.raises(CalendarError, match="timezone-aware"):
        Calendar().next_school_day_at(dt.datetime(2026, 11, 17, 10, 0), T0830)


def test_bad_configured_date_is_refused():
    with pytest.raises(CalendarError, match="non_working_days"):
        Calendar.from_iso_dates(non_working_days=["2026-13-01"])
