"""The condition vocabulary of flag rules: small, declarative, checked when a file loads.

A rule's ``when`` is one condition. Each condition is a mapping with one *primary key*
that names it; the engine (:mod:`app.flags.engine`) interprets it over the assessment and
the incident and answers either "no" or "yes, because of these pointers".

- ``{"victim_level_in": [levels]}``: the victim's assessed level is one of these.
- ``{"marac_refer": bool}``: ``victim.marac.refer`` equals this.
- ``{"victim_trigger": "red_flag"}``: a victim trigger with this rule name fired.
- ``{"child_level_in": [levels]}`` (child): this child's assessed level is one of these.
- ``{"child": {field: value | [values]}}`` (child): this child's recorded details match.
  Fields are the boolean and coded fields of ``persons[].child``, plus ``unborn`` and the
  derived ``has_school`` (a school with a URN or a name); ``null`` matches "not recorded".
- ``{"child_age_between": {"min_years", "max_years", "include_unknown_age"}}`` (child):
  age in whole years on the incident's local date, inclusive, from the date of birth (else
  the assessment's ``age_years``); ``include_unknown_age`` decides for a born child of
  unknown age; an unborn child never matches.
- ``{"answer": item_id, "is": answer}`` or ``"in": [answers]``: the victim checklist
  answer, as the assessment took it: the effective answer where the checklist definition
  has effective answers (rules v2), else the victim's (an item left out is ``not_asked``).
- ``{"incident": dotted.path, "is": value}`` or ``"in": [values]``: a boolean, coded or
  count field of the incident; ``{"incident": path, "non_empty": bool}`` for a list.
- ``{"perpetrator_serial": bool}``: ``perpetrator.serial`` equals this.
- ``{"perpetrator_recorded": true}``: the incident names a perpetrator (the contract
  requires one, so this holds for every incident; it says so in the flag's reasons).
- ``{"perpetrator_marker": [marker ids]}``: the assessment found one of these perpetrator
  markers present (``prior_da``, ``breach_of_bail_or_orders``, ...).
- ``{"victim": {field: value | [values]}}``: the victim's recorded details match
  (``care_and_support_needs``, ``interpreter_needed``); ``null`` matches "not recorded".
- ``{"victim_age_between": {"min_years", "max_years", "include_unknown_age"}}``: the
  victim's age in whole years on the incident's local date, inclusive.
- ``{"victim_figure": name, "at_least": n}``: a history figure about the victim (reported
  or stored, e.g. ``prior_da_incidents_12m``) is at least ``n``.
- ``{"victim_last_incident_within_months": n}``: the submitting system reports the
  victim's last DA incident (``victim_history.last_incident_at``) within ``n`` calendar
  months before this incident.
- ``{"classifier_elevated": bool}``: a classifier ran and said elevated (or not).
- ``{"any": [conditions]}``: at least one holds (every one that holds is cited).
- ``{"all": [conditions]}``: every one holds.
- ``{"any_child": condition}``: the child condition holds for some child.

Conditions marked (child) need a child: they are allowed only in rules whose subject is
``each_child`` or inside ``any_child``. Incident paths may only end in booleans, codes
(literals) and counts, never free text or dates, so that a pointer can quote the value
without ever quoting personal data.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from app.contract.incident import ChildDetails
from app.contract.items import DASH_POLICE_ITEMS
from app.contract.levels import PERPETRATOR_MARKERS
from app.contract.paths import resolve_incident_path, strip_optional
from app.flags.vocabulary import ChecklistAnswer, ChildLevel, VictimLevel

Scalar = bool | int | str | None
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class StrictModel(BaseModel):
    """Rules data: unknown keys are errors and nothing is coerced ("yes" is not true)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _is_scalar_leaf(annotation: Any) -> bool:
    return annotation in (bool, int) or get_origin(annotation) is Literal


def _check_values(annotation: Any, values: list[Scalar], where: str) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(annotation | None)
    for value in values:
        try:
            adapter.validate_python(value, strict=True)
        except ValidationError:
            raise ValueError(f"{where}: {value!r} is not a possible value") from None


# -- child fields ---------------------------------------------------------------------

# The child's recorded details a rule may test: the boolean and coded fields of
# `persons[].child` (never the free-text account, never the school's name), plus two
# person-level facts.
CHILD_FIELDS: dict[str, Any] = {
    name: strip_optional(info.annotation)
    for name, info in ChildDetails.model_fields.items()
    if _is_scalar_leaf(strip_optional(info.annotation))
}
CHILD_DERIVED_FIELDS: tuple[str, ...] = ("unborn", "has_school")

ChildValue = Scalar | list[Scalar]


class _Condition(StrictModel):
    tag: ClassVar[str]
    needs_child: ClassVar[bool] = False


class VictimLevelIn(_Condition):
    tag = "victim_level_in"
    victim_level_in: Annotated[list[VictimLevel], Field(min_length=1)]


class MaracRefer(_Condition):
    tag = "marac_refer"
    marac_refer: bool


class VictimTrigger(_Condition):
    tag = "victim_trigger"
    victim_trigger: Name


class ChildLevelIn(_Condition):
    tag = "child_level_in"
    needs_child = True
    child_level_in: Annotated[list[ChildLevel], Field(min_length=1)]


class ChildMatches(_Condition):
    tag = "child"
    needs_child = True
    child: Annotated[dict[str, ChildValue], Field(min_length=1)]

    @field_validator("child")
    @classmethod
    def _known_fields(cls, spec: dict[str, ChildValue]) -> dict[str, ChildValue]:
        for name, value in spec.items():
            values = value if isinstance(value, list) else [value]
            if not values:
                raise ValueError(f"child field {name!r}: an empty list never matches")
            if name in CHILD_DERIVED_FIELDS:
                _check_values(bool, values, f"child field {name!r}")
                if None in values:
                    raise ValueError(f"child field {name!r} is always true or false")
            elif name in CHILD_FIELDS:
                _check_values(CHILD_FIELDS[name], values, f"child field {name!r}")
            else:
                known = ", ".join([*CHILD_FIELDS, *CHILD_DERIVED_FIELDS])
                raise ValueError(f"unknown child field {name!r} (known: {known})")
        return spec

    def expected(self) -> list[tuple[str, tuple[Scalar, ...]]]:
        """Each tested field with the values that match, in file order."""
        return _expected(self.child)


def _expected(spec: dict[str, ChildValue]) -> list[tuple[str, tuple[Scalar, ...]]]:
    return [
        (name, tuple(value) if isinstance(value, list) else (value,))
        for name, value in spec.items()
    ]


class AgeRange(StrictModel):
    min_years: Annotated[int, Field(ge=0, le=25)]
    max_years: Annotated[int, Field(ge=0, le=25)]
    include_unknown_age: bool

    @model_validator(mode="after")
    def _ordered(self) -> AgeRange:
        if self.min_years > self.max_years:
            raise ValueError("min_years is greater than max_years")
        return self


# What an age condition gives the engine: inclusive limits and the unknown-age choice.
AgeLimits = AgeRange


class ChildAgeBetween(_Condition):
    tag = "child_age_between"
    needs_child = True
    child_age_between: AgeRange


class AnswerIs(_Condition):
    tag = "answer"
    answer: str
    is_: ChecklistAnswer | None = Field(default=None, alias="is")
    in_: Annotated[list[ChecklistAnswer], Field(min_length=1)] | None = Field(
        default=None, alias="in"
    )

    @field_validator("answer")
    @classmethod
    def _known_item(cls, item: str) -> str:
        if item not in DASH_POLICE_ITEMS:
            raise ValueError(f"unknown checklist item id {item!r}")
        return item

    @model_validator(mode="after")
    def _one_operator(self) -> AnswerIs:
        if (self.is_ is None) == (self.in_ is None):
            raise ValueError("give exactly one of `is` and `in`")
        return self

    def accepted(self) -> tuple[str, ...]:
        return (self.is_,) if self.is_ is not None else tuple(self.in_ or ())


class IncidentField(_Condition):
    tag = "incident"
    incident: Annotated[str, StringConstraints(pattern=r"^[a-z_]+(\.[a-z_]+)*$")]
    is_: Scalar = Field(default=None, alias="is")
    in_: Annotated[list[Scalar], Field(min_length=1)] | None = Field(default=None, alias="in")
    non_empty: bool | None = None

    @model_validator(mode="after")
    def _valid_path_and_operator(self) -> IncidentField:
        operators = {"is_", "in_", "non_empty"} & self.model_fields_set
        if len(operators) != 1:
            raise ValueError("give exactly one of `is`, `in` and `non_empty`")
        leaf = resolve_incident_path(self.incident)
        if get_origin(leaf) is list:
            if self.non_empty is None:
                raise ValueError(f"{self.incident!r} is a list: test it with `non_empty`")
        elif _is_scalar_leaf(leaf):
            if self.non_empty is not None:
                raise ValueError(f"{self.incident!r} is not a list: `non_empty` does not apply")
            values = [self.is_] if self.in_ is None else self.in_
            _check_values(leaf, values, f"incident path {self.incident!r}")
        else:
            raise ValueError(
                f"{self.incident!r} is not a boolean, code, count or list; "
                "rules never test free text, dates or whole objects"
            )
        return self

    def accepted(self) -> tuple[Scalar, ...]:
        return (self.is_,) if self.in_ is None else tuple(self.in_)


class PerpetratorSerial(_Condition):
    tag = "perpetrator_serial"
    perpetrator_serial: bool


class PerpetratorRecorded(_Condition):
    tag = "perpetrator_recorded"
    perpetrator_recorded: Literal[True]


class PerpetratorMarker(_Condition):
    tag = "perpetrator_marker"
    perpetrator_marker: Annotated[list[Name], Field(min_length=1)]

    @field_validator("perpetrator_marker")
    @classmethod
    def _known_markers(cls, markers: list[str]) -> list[str]:
        unknown = [m for m in markers if m not in PERPETRATOR_MARKERS]
        if unknown:
            raise ValueError(
                f"unknown marker(s) {', '.join(unknown)} (known: {', '.join(PERPETRATOR_MARKERS)})"
            )
        return markers


# The victim's recorded details a rule may test: codes and booleans, never identity.
VICTIM_FIELDS: dict[str, Any] = {"care_and_support_needs": bool, "interpreter_needed": bool}


class VictimMatches(_Condition):
    tag = "victim"
    victim: Annotated[dict[str, ChildValue], Field(min_length=1)]

    @field_validator("victim")
    @classmethod
    def _known_fields(cls, spec: dict[str, ChildValue]) -> dict[str, ChildValue]:
        for name, accepted in _expected(spec):
            values = list(accepted)
            if not values:
                raise ValueError(f"victim field {name!r}: an empty list never matches")
            if name not in VICTIM_FIELDS:
                raise ValueError(
                    f"unknown victim field {name!r} (known: {', '.join(VICTIM_FIELDS)})"
                )
            _check_values(VICTIM_FIELDS[name], values, f"victim field {name!r}")
        return spec

    def expected(self) -> list[tuple[str, tuple[Scalar, ...]]]:
        return _expected(self.victim)


class VictimAgeRange(AgeRange):
    """An adult's age range (the ordering check is the child range's)."""

    min_years: Annotated[int, Field(ge=16, le=130)]
    max_years: Annotated[int, Field(ge=16, le=130)]


class VictimAgeBetween(_Condition):
    tag = "victim_age_between"
    victim_age_between: VictimAgeRange


class VictimFigure(_Condition):
    tag = "victim_figure"
    victim_figure: Name
    at_least: Annotated[int, Field(ge=1)]


class VictimLastIncidentWithin(_Condition):
    tag = "victim_last_incident_within_months"
    victim_last_incident_within_months: Annotated[int, Field(ge=1, le=120)]


class ClassifierElevated(_Condition):
    tag = "classifier_elevated"
    classifier_elevated: bool


class AnyOf(_Condition):
    tag = "any"
    any: Annotated[list[Condition], Field(min_length=1)]


class AllOf(_Condition):
    tag = "all"
    all: Annotated[list[Condition], Field(min_length=1)]


class AnyChild(_Condition):
    tag = "any_child"
    any_child: Condition


CONDITION_TYPES: tuple[type[_Condition], ...] = (
    VictimLevelIn,
    MaracRefer,
    VictimTrigger,
    ChildLevelIn,
    ChildMatches,
    ChildAgeBetween,
    AnswerIs,
    IncidentField,
    PerpetratorSerial,
    ClassifierElevated,
    AnyOf,
    AllOf,
    AnyChild,
    PerpetratorRecorded,
    PerpetratorMarker,
    VictimMatches,
    VictimAgeBetween,
    VictimFigure,
    VictimLastIncidentWithin,
)
CONDITION_KEYS: tuple[str, ...] = tuple(c.tag for c in CONDITION_TYPES)


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in CONDITION_KEYS if key in value), None)
    tag = getattr(value, "tag", None)
    return tag if isinstance(tag, str) else None


Condition = Annotated[
    Annotated[VictimLevelIn, Tag("victim_level_in")]
    | Annotated[MaracRefer, Tag("marac_refer")]
    | Annotated[VictimTrigger, Tag("victim_trigger")]
    | Annotated[ChildLevelIn, Tag("child_level_in")]
    | Annotated[ChildMatches, Tag("child")]
    | Annotated[ChildAgeBetween, Tag("child_age_between")]
    | Annotated[AnswerIs, Tag("answer")]
    | Annotated[IncidentField, Tag("incident")]
    | Annotated[PerpetratorSerial, Tag("perpetrator_serial")]
    | Annotated[ClassifierElevated, Tag("classifier_elevated")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyChild, Tag("any_child")]
    | Annotated[PerpetratorRecorded, Tag("perpetrator_recorded")]
    | Annotated[PerpetratorMarker, Tag("perpetrator_marker")]
    | Annotated[VictimMatches, Tag("victim")]
    | Annotated[VictimAgeBetween, Tag("victim_age_between")]
    | Annotated[VictimFigure, Tag("victim_figure")]
    | Annotated[VictimLastIncidentWithin, Tag("victim_last_incident_within_months")],
    Discriminator(
        _condition_tag,
        custom_error_type="unknown_condition",
        custom_error_message="not a known condition; a condition is a mapping with one of "
        "the keys: " + ", ".join(CONDITION_KEYS),
    ),
]

for _model in (AnyOf, AllOf, AnyChild):
    _model.model_rebuild()


def child_conditions_outside_child(condition: Condition, *, in_child: bool) -> list[str]:
    """Names of child conditions used where there is no child to test."""
    found: list[str] = []
    if condition.needs_child and not in_child:
        found.append(condition.tag)
    if isinstance(condition, AnyOf | AllOf):
        for inner in condition.any if isinstance(condition, AnyOf) else condition.all:
            found += child_conditions_outside_child(inner, in_child=in_child)
    elif isinstance(condition, AnyChild):
        found += child_conditions_outside_child(condition.any_child, in_child=True)
    return found
