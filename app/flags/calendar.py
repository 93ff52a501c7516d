"""Due-time calendar: school days, working days and months, in Europe/London.

Every due time is worked out on the local (Europe/London) calendar, because that is the
calendar schools, MASH teams and partner agencies keep, and is returned as a
timezone-aware UTC ``datetime`` for storage and comparison. Pure: no clock, no globals.

Choices (each documented where a MASH manager would look for it):

- **Next school day** (Operation Encompass, docs/contract.md "Flags"; docs/research.md §5.4): the
  first school day *strictly after* the local date of the base time, at the given local time
  (08:30 by default). An incident on Monday 22:00 is due Tuesday 08:30; an incident at
  06:00 on a Tuesday is also due Wednesday 08:30, not Tuesday 08:30 (two and a half hours
  is not a deadline anyone can be held to, and the contract says "the next school day").
  A school day is Monday to Friday, not a configured non-school day (holidays, INSET
  days) and not a non-working day (bank holidays are never school days).
- **Working days**: Monday to Friday minus the configured non-working days (bank
  holidays). "Within N working days" is close of business (17:00 local by default) on the
  N-th working day strictly after the local date of the base time: a Friday 23:00 incident
  with one working day is due Monday 17:00.
- **Same day**: the given local time (23:59 by default) on the local date of the base
  time: out-of-hours cases are for the emergency duty team, which does not wait for
  office hours. A due time can never fall before the base time: if the base time is
  already past it, the flag is due at the base time itself (i.e. immediately).
- **Months**: calendar months added to the local date of the base time, with the day
  clamped to the end of a shorter month (31 Jan + 1 month = 28/29 Feb), at the given local
  time (09:00 by default); optionally rolled forward to the next working day.
- **Clock changes**: local times are resolved with ``fold=0``. An ambiguous time (the
  repeated hour in October) resolves to its first, earlier occurrence, so a deadline is
  never late; a nonexistent time (the skipped hour in March) resolves with the offset in
  force before the change, i.e. the wall clock moves forward by the gap (01:30 → 02:30
  BST). None of the default times (08:30, 09:00, 17:00, 23:59) is ever ambiguous or
  nonexistent in the UK, but configured times might be.
"""

from __future__ import annotations

import datetime as dt
from calendar import monthrange
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")

_SATURDAY = 5


class CalendarError(ValueError):
    """A calendar was configured or used wrongly (a naive time, a bad date)."""


def _require_aware(instant: dt.datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError("a due-time base must be timezone-aware")


def local_date(instant: dt.datetime) -> dt.date:
    """The Europe/London calendar date of an aware instant."""
    _require_aware(instant)
    return instant.astimezone(LONDON).date()


def local_to_utc(day: dt.date, at: dt.time) -> dt.datetime:
    """The UTC instant of local wall-clock time ``at`` on ``day`` in Europe/London.

    ``fold=0`` is explicit: an ambiguous time gives the earlier instant, a nonexistent
    time is read with the pre-transition offset (see the module docstring).
    """
    local = dt.datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=LONDON)
    return local.astimezone(dt.UTC)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole calendar months, clamping the day to the month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, monthrange(year, month)[1]))


def _parse_dates(values: Iterable[str], what: str) -> frozenset[dt.date]:
    parsed = set()
    for value in values:
        try:
            parsed.add(dt.date.fromisoformat(value))
        except ValueError as exc:
            raise CalendarError(f"{what}: {value!r} is not an ISO date (YYYY-MM-DD)") from exc
    return frozenset(parsed)


@dataclass(frozen=True, slots=True)
class Calendar:
    """School and working days for due times (weekends are never either)."""

    non_school_days: frozenset[dt.date] = frozenset()
    non_working_days: frozenset[dt.date] = frozenset()

    @classmethod
    def from_iso_dates(
        cls, non_school_days: Iterable[str] = (), non_working_days: Iterable[str] = ()
    ) -> Calendar:
        """Build from ISO date strings, as configured (``TRIAGE_NON_SCHOOL_DAYS`` etc.)."""
        return cls(
            non_school_days=_parse_dates(non_school_days, "non_school_days"),
            non_working_days=_parse_dates(non_working_days, "non_working_days"),
        )

    # -- days -------------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < _SATURDAY and day not in self.non_working_days

    def is_school_day(self, day: dt.date) -> bool:
        # A bank holiday is never a school day, even if not listed as a non-school day.
        return self.is_working_day(day) and day not in self.non_school_days

    def next_school_day(self, after: dt.date) -> dt.date:
        """The first school day strictly after ``after`` (terminates: the sets are finite)."""
        day = after + dt.timedelta(days=1)
        while not self.is_school_day(day):
            day += dt.timedelta(days=1)
        return day

    def add_working_days(self, after: dt.date, days: int) -> dt.date:
        """The ``days``-th working day strictly after ``after`` (``days`` ≥ 1)."""
        if days < 1:
            raise CalendarError("working days must be at least 1")
        day, remaining = after, days
        while remaining:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_day_on_or_after(self, day: dt.date) -> dt.date:
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day

    # -- due times (aware base in, aware UTC out) -------------------------------------

    def next_school_day_at(self, base: dt.datetime, at: dt.time) -> dt.datetime:
        """Operation Encompass: ``at`` local on the first school day after the base's date."""
        return local_to_utc(self.next_school_day(local_date(base)), at)

    def next_school_start_at(self, base: dt.datetime, at: dt.time) -> dt.datetime:
        """Rules v2: ``at`` local on the first school day whose ``at`` is strictly after the
        base (the base's own date counts when it is a school day and ``at`` is still ahead)."""
        day = local_date(base)
        if self.is_school_day(day):
            due = local_to_utc(day, at)
            if due > base:
                return due
        return local_to_utc(self.next_school_day(day), at)

    def hours_after(self, base: dt.datetime, hours: int) -> dt.datetime:
        """``hours`` elapsed hours after the base, in UTC (clock changes do not matter)."""
        _require_aware(base)
        return base.astimezone(dt.UTC) + dt.timedelta(hours=hours)

    def working_days_at(self, base: dt.datetime, days: int, at: dt.time) -> dt.datetime:
        """``at`` local on the ``days``-th working day after the base's local date."""
        return local_to_utc(self.add_working_days(local_date(base), days), at)

    def same_day_at(self, base: dt.datetime, at: dt.time) -> dt.datetime:
        """``at`` local on the base's local date, never earlier than the base itself."""
        due = local_to_utc(local_date(base), at)
        return max(due, base.astimezone(dt.UTC))

    def months_at(
        self,
        base: dt.datetime,
        months: int,
        at: dt.time,
        *,
        roll_forward_to_working_day: bool = False,
    ) -> dt.datetime:
        """``at`` local, ``months`` calendar months after the base's local date."""
        day = add_months(local_date(base), months)
        if roll_forward_to_working_day:
            day = self.working_day_on_or_after(day)
        return local_to_utc(day, at)
