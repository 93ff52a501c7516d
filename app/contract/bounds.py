"""Plausible dates and times, and strict numbers: what a field may hold, not just its type.

A date of birth in year 1 ("aged 2025") or 9999, or an incident at
``9999-12-31T23:59:59-12:00`` (a valid ISO string whose UTC value no ``datetime`` can
hold), is a mistake or an attack, never a record. Every date and time the service takes
in is checked here, before anything compares, stores or converts it:

- dates of birth and of a MARAC referral: from 1900-01-01 to the day after now (a clock a
  little fast, a time zone ahead); a child born later would have a negative age;
- an unborn child's expected date: at most a year ahead;
- every other date and time (an incident, an order's expiry, a planned separation, a
  filter): 1900-01-01 to 2199-12-31. An incident time in the future is implausible too,
  but refusing it would refuse the whole incident, and with it the safeguarding flags it
  raises, over the sender's clock: it is accepted as sent, within the years above.

The year is checked on the value as written, before any comparison, because comparing
an aware time converts it to UTC, and that conversion is what overflows at the edges.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    ValidationInfo,
)

EARLIEST_YEAR = 1900
LATEST_YEAR = 2199
_SLACK = dt.timedelta(days=1)
_UNBORN_AHEAD = dt.timedelta(days=366)


# Validation context for inputs the service stored earlier and reads again (reproduction,
# a judgement's re-assessment, patterns, training data): they were accepted under the
# rules of their day, were normalised when stored, and must still load exactly, so the
# plausibility checks below are for what comes in, not for what is re-read.
STORED: dict[str, bool] = {"stored": True}


def _stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


_ISO_START = re.compile(r"^[0-9]{4}-")


def _iso_text(value: object, info: ValidationInfo) -> object:
    """An ISO 8601 string (or a date already parsed): lax parsing would also take a number
    as seconds since 1970, so ``0.5`` would be an incident in 1970."""
    if isinstance(value, dt.date) or _stored(info):
        return value
    if not isinstance(value, str) or _ISO_START.match(value) is None:
        raise ValueError("must be an ISO 8601 date or time (YYYY-MM-DD...)")
    return value


def _within_years(
    latest: Callable[[], dt.date] | None = None, too_late: str = ""
) -> AfterValidator:
    """A date or time in the years 1900-2199 and, if ``latest`` is given, not after it.

    The year is read first, as written: only then is comparing an aware time (which
    converts it to UTC) safe from overflow.
    """

    def check(value: dt.date, info: ValidationInfo) -> dt.date:
        if _stored(info):
            return value
        if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise ValueError(f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
        if latest is not None and value > latest():
            raise ValueError(too_late)
        return value

    return AfterValidator(check)


def _tomorrow_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + _SLACK


def _tomorrow() -> dt.date:
    return dt.datetime.now(dt.UTC).date() + _SLACK


def _a_year_ahead() -> dt.date:
    return dt.datetime.now(dt.UTC).date() + _UNBORN_AHEAD


_ISO = BeforeValidator(_iso_text)
_NOT_AFTER_TOMORROW = "must not be later than tomorrow"
# Something that has happened: 1900 to tomorrow.
PastTime = Annotated[AwareDatetime, _ISO, _within_years(_tomorrow_now, _NOT_AFTER_TOMORROW)]
PastDate = Annotated[dt.date, _ISO, _within_years(_tomorrow, _NOT_AFTER_TOMORROW)]
# Any other date or time: 1900 to 2199.
BoundedTime = Annotated[AwareDatetime, _ISO, _within_years()]
BoundedDate = Annotated[dt.date, _ISO, _within_years()]
ExpectedDate = Annotated[
    dt.date, _ISO, _within_years(_a_year_ahead, "must be within a year from today")
]

# A sequence number or row id as the databases hold it (a signed 64-bit integer).
MAX_SEQ = 2**63 - 1


def _whole_number(value: object, info: ValidationInfo) -> object:
    """A JSON number with no fraction (``3`` or ``3.0``, as JSON Schema's ``integer``);
    never a string (``"3"``) or a boolean (``true``), which lax parsing would take."""
    if _stored(info):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


# JSON numbers and booleans only: "3" is not a count and "true" is not a yes.
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Count = Annotated[WholeNumber, Field(ge=0, le=10_000)]


def _yes_no(value: object, info: ValidationInfo) -> object:
    if not _stored(info) and not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


YesNo = Annotated[bool, BeforeValidator(_yes_no)]


def _not_blank(value: str, info: ValidationInfo) -> str:
    if _stored(info):
        return value
    if not value.strip():
        raise ValueError("must hold more than spaces")
    return value


# Text that must say something: at least one character that is not a space.
NotBlank = AfterValidator(_not_blank)
