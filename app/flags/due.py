"""Due-time policies of flag rules, and the due time each gives.

A rule's ``due`` is one of (``at`` is a local Europe/London ``"HH:MM"``, quoted in YAML):

- ``{"policy": "next_school_day", "at": "08:30"}`` — Operation Encompass (docs/contract.md "Flags";
  docs/research.md §5.4): the first school day after the base time's local date (rules v1).
- ``{"policy": "next_school_start", "at": "08:30"}`` — Operation Encompass in rules v2:
  08:30 on the first school day whose 08:30 is after the base time (Monday 01:30 → Monday
  08:30; Monday 09:00 → Tuesday 08:30; Friday 23:00 → Monday 08:30).
- ``{"policy": "hours", "hours": 4}`` — N hours after the base time, elapsed (a clock
  change in between does not stretch or shrink it). Rules v2: replaces "same day 23:59",
  which left 19 minutes for a report made at 23:40.
- ``{"policy": "working_days", "days": 1, "at": "17:00"}`` — close of business on the
  N-th working day after the base time's local date ("within one working day").
- ``{"policy": "same_day", "at": "23:59"}`` — the base time's local date (never before
  the base time itself).
- ``{"policy": "months", "months": 3, "at": "09:00", "roll_forward_to_working_day": true}``
  — long-term reviews (docs/brief.md: "review at 3 and 12 months").

The calendar choices behind each are documented in :mod:`app.flags.calendar`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from app.flags.calendar import Calendar
from app.flags.conditions import StrictModel

_HH_MM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _local_time(value: Any) -> Any:
    # YAML reads an unquoted 17:00 as the sexagesimal integer 1020: insist on a string.
    if not isinstance(value, str) or not _HH_MM.match(value):
        raise ValueError('a local time is a quoted "HH:MM" string (24-hour clock)')
    return dt.time.fromisoformat(value)


LocalTime = Annotated[dt.time, BeforeValidator(_local_time)]


class NextSchoolDay(StrictModel):
    policy: Literal["next_school_day"]
    at: LocalTime = dt.time(8, 30)

    def due_at(self, base: dt.datetime, calendar: Calendar) -> dt.datetime:
        return calendar.next_school_day_at(base, self.at)

    def describe(self) -> str:
        return f"by {self.at:%H:%M} on the next school day"


class NextSchoolStart(StrictModel):
    policy: Literal["next_school_start"]
    at: LocalTime = dt.time(8, 30)

    def due_at(self, base: dt.datetime, calendar: Calendar) -> dt.datetime:
        return calendar.next_school_start_at(base, self.at)

    def describe(self) -> str:
        return f"by {self.at:%H:%M} at the start of the next school day"


class Hours(StrictModel):
    policy: Literal["hours"]
    hours: Annotated[int, Field(ge=1, le=24 * 14)]

    def due_at(self, base: dt.datetime, calendar: Calendar) -> dt.datetime:
        return calendar.hours_after(base, self.hours)

    def describe(self) -> str:
        return f"within {self.hours} hours"


class WorkingDays(StrictModel):
    policy: Literal["working_days"]
    days: Annotated[int, Field(ge=1, le=60)]
    at: LocalTime = dt.time(17, 0)

    def due_at(self, base: dt.datetime, calendar: Calendar) -> dt.datetime:
        return calendar.working_days_at(base, self.days, self.at)

    def describe(self) -> str:
        unit = "working day" if self.days == 1 else "working days"
        return f"by {self.at:%H:%M} within {self.days} {unit}"


class SameDay(StrictModel):
    policy: Literal["same_day"]
    at: LocalTime = dt.time(23, 59)

    def due_at(self, base: dt.datetime, calendar: Calendar) -> dt.datetime:
        return calendar.same_day_at(base, self.at)

    def describe(self) -> str:
        return f"by {self.at:%H:%M} the same day"


class Months(StrictModel):
    policy: Literal["months"]
    months: Annotated[int, Field(ge=1, le=60)]
    at: LocalTime = dt.time(9, 0)
    roll_forward_to_working_day: bool = False

    def due_at(self, base: dt.datetime, calendar: Calendar) -> dt.datetime:
        return calendar.months_at(
            base,
            self.months,
            self.at,
            roll_forward_to_working_day=self.roll_forward_to_working_day,
        )

    def describe(self) -> str:
        return f"at {self.months} months"


DuePolicy = Annotated[
    NextSchoolDay | NextSchoolStart | Hours | WorkingDays | SameDay | Months,
    Field(discriminator="policy"),
]
DUE_POLICIES: tuple[str, ...] = (
    "next_school_day",
    "next_school_start",
    "hours",
    "working_days",
    "same_day",
    "months",
)
