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
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationInfo,
)
from pydantic_core import SchemaValidator
from pydantic_core.core_schema import CoreSchema

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


_Check = TypeVar("_Check", bound=Callable[..., object])
# The checks below that are for what comes in only: under ``STORED`` each returns the value
# it was given, unchanged, and raises nothing, so a validator for stored inputs can leave
# them out altogether (:func:`stored_validator`).
_INTAKE_ONLY: dict[int, object] = {}  # by id(): a schema may hold unhashable callables


def _intake_only(check: _Check) -> _Check:
    _INTAKE_ONLY[id(check)] = check
    return check


_ISO_START = re.compile(r"^[0-9]{4}-")


@_intake_only
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

    @_intake_only
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


@_intake_only
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


@_intake_only
def _yes_no(value: object, info: ValidationInfo) -> object:
    if not _stored(info) and not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


YesNo = Annotated[bool, BeforeValidator(_yes_no)]


@_intake_only
def _not_blank(value: str, info: ValidationInfo) -> str:
    if _stored(info):
        return value
    if not value.strip():
        raise ValueError("must hold more than spaces")
    return value


# Text that must say something: at least one character that is not a space.
NotBlank = AfterValidator(_not_blank)


def stored_validator(model: type[BaseModel]) -> SchemaValidator:
    """A validator of ``model`` for stored inputs read again in bulk (the what-if reads a
    million): the same core schema with the intake-only checks above left out, so loading
    a stored value calls no Python function per field. Under ``STORED`` those checks return
    their value unchanged, so leaving them out changes nothing that loads (the model
    validators, the rules that made it an incident at all, still run; pass ``STORED`` as
    the context all the same). The instances are of ``model``'s own classes.

    One difference remains, and it is tested (tests/test_bounds.py): without a check's
    before-validator in between, the type's own validator sees the JSON value itself
    rather than the Python value made from it, and pydantic's lax conversions are the same
    for both.

    pydantic-core builds a ``model`` node from the class's own prebuilt validator (the one
    with the checks) whenever the class is complete, so the classes are marked incomplete
    while this one is built, and restored at once. Build it once, at import, not per call.
    """
    schema = _without_intake_checks(model.__pydantic_core_schema__)
    classes = set(_model_classes(schema))
    complete = {cls: cls.__dict__.get("__pydantic_complete__", False) for cls in classes}
    try:
        for cls in classes:
            cls.__pydantic_complete__ = False
        return SchemaValidator(cast(CoreSchema, schema))
    finally:
        for cls, value in complete.items():
            cls.__pydantic_complete__ = value


def _without_intake_checks(node: Any) -> Any:
    """A copy of a core schema (nested dicts and lists) without the intake-only checks'
    function-before and function-after nodes, each replaced by the schema it wraps."""
    if isinstance(node, dict):
        if (
            node.get("type") in ("function-before", "function-after")
            and id(node["function"]["function"]) in _INTAKE_ONLY
        ):
            return _without_intake_checks(node["schema"])
        return {key: _without_intake_checks(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_without_intake_checks(value) for value in node]
    return node


def _model_classes(node: Any) -> Iterator[type[BaseModel]]:
    if isinstance(node, dict):
        if node.get("type") == "model":
            yield node["cls"]
        for value in node.values():
            yield from _model_classes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _model_classes(value)
