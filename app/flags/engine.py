"""The pure flag engine: incident + assessment + rules + calendar in, flag proposals out.

docs/contract.md "Flags (who must do what, by when)": flags are created with the assessment from
versioned rules. The engine is pure (CONTRIBUTING.md "The scoring engine is pure"): no database,
no clock, no globals. The base time for due times is the incident's ``reported_at``, else
its ``occurred_at``, or an explicit ``now_reference`` (e.g. a revision's receipt time).

Each proposal carries the rule and rules version (with sha256) that raised it, a short
reason, pointers (``because``) into the assessment's explanation, the action text of the
rule, and a ``dedupe_key`` (``type:subject_ref[:discriminator]``) that stays the same
across assessment versions and rules versions, so the persistence layer can add only
newly raised flags when an incident is revised. Subject refs are the incident's own person
refs (``v1``, ``c2``): the key is unique within one incident.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from app.contract.incident import Incident, Person
from app.flags.calendar import Calendar, add_months, local_date, local_to_utc
from app.flags.conditions import (
    AgeLimits,
    AllOf,
    AnswerIs,
    AnyChild,
    AnyOf,
    ChildAgeBetween,
    ChildLevelIn,
    ChildMatches,
    ClassifierElevated,
    Condition,
    IncidentField,
    MaracRefer,
    PerpetratorMarker,
    PerpetratorRecorded,
    PerpetratorSerial,
    Scalar,
    VictimAgeBetween,
    VictimFigure,
    VictimLastIncidentWithin,
    VictimLevelIn,
    VictimMatches,
    VictimTrigger,
)
from app.flags.due import DuePolicy
from app.flags.ruleset import FlagRule, FlagRuleSet, FlagRulesFile
from app.flags.vocabulary import (
    Agency,
    ChildLevel,
    FlagType,
    RuleSubject,
    SubjectKind,
    VictimLevel,
)

# -- the assessment, as the scoring engine's `to_dict()` gives it ----------------------


class AssessmentShapeError(ValueError):
    """The assessment dict does not have the contract's shape, or is not this incident's."""


class _Read(BaseModel):
    # Only what the flag rules read; anything else in the assessment is ignored here.
    model_config = ConfigDict(extra="ignore", frozen=True)


class AssessedTrigger(_Read):
    rule: str
    fired: bool = True  # the contract lists fired triggers; the explanation may add others


class AssessedMarac(_Read):
    refer: bool
    criteria: list[str] = []


class AssessedItem(_Read):
    id: str
    answer: str
    # Rules v2: the answer every rule reads (the victim's, or yes from a recorded fact).
    effective_answer: str | None = None


class AssessedVictim(_Read):
    person_ref: str
    level: VictimLevel
    triggers: list[AssessedTrigger] = []
    marac: AssessedMarac
    items: list[AssessedItem] = []

    def answers(self, given: Mapping[str, str]) -> Mapping[str, str]:
        """The answers as the assessment took them (:func:`answers_taken`)."""
        return answers_taken(self, given)


class AssessedChild(_Read):
    person_ref: str
    level: ChildLevel
    age_years: int | None = None


class AssessedMarker(_Read):
    id: str
    present: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        # The contract's example lists present markers by name; the engine's explanation
        # gives an object per marker with its evidence.
        return {"id": value, "present": True} if isinstance(value, str) else value


class AssessedPerpetrator(_Read):
    person_ref: str
    serial: bool
    markers: list[AssessedMarker] = []


class AssessedFigure(_Read):
    subject: str
    name: str
    source: str
    value: int | str | bool | None = None


class AssessedClassifier(_Read):
    elevated: bool
    band: str | None = None


class AssessmentView(_Read):
    """The parts of an assessment (docs/contract.md "Intake", 201 body) that flag rules read."""

    victim: AssessedVictim
    children: list[AssessedChild] = []
    perpetrator: AssessedPerpetrator
    classifier: AssessedClassifier | None = None
    history: list[AssessedFigure] = []

    @classmethod
    def read(cls, assessment: Mapping[str, Any], incident: Incident) -> AssessmentView:
        try:
            view = cls.model_validate(assessment)
        except ValidationError as exc:
            locs = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            raise AssessmentShapeError(f"assessment: invalid at {', '.join(locs)}") from None
        if view.victim.person_ref != incident.victim.ref:
            raise AssessmentShapeError("assessment: victim.person_ref is not the incident's")
        if view.perpetrator.person_ref != incident.perpetrator.ref:
            raise AssessmentShapeError("assessment: perpetrator.person_ref is not the incident's")
        assessed = [c.person_ref for c in view.children]
        if sorted(assessed) != sorted(c.ref for c in incident.children):
            # Every child is assessed, unborn included (docs/contract.md "Scoring defaults").
            raise AssessmentShapeError(
                "assessment: children must be exactly the incident's children, once each"
            )
        return view


# -- what the rules read, as any object that has it ------------------------------------
#
# :class:`AssessmentView` reads it from the assessment's JSON (``evaluate_flags``); the
# scoring engine's own result objects have the same attributes, so a caller that holds
# them (the what-if, re-scoring a million stored incidents) passes them straight to
# :func:`evaluate_view` without writing and validating the JSON (some 120 µs a call).


class TriggerRead(Protocol):
    @property
    def rule(self) -> str: ...
    @property
    def fired(self) -> bool: ...


class MaracRead(Protocol):
    @property
    def refer(self) -> bool: ...
    @property
    def criteria(self) -> Sequence[str]: ...


class ItemRead(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def effective_answer(self) -> str | None: ...


class VictimRead(Protocol):
    @property
    def person_ref(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def triggers(self) -> Sequence[TriggerRead]: ...
    @property
    def marac(self) -> MaracRead: ...
    @property
    def items(self) -> Sequence[ItemRead]: ...


class ChildRead(Protocol):
    @property
    def person_ref(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def age_years(self) -> int | None: ...


class MarkerRead(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def present(self) -> bool | None: ...


class PerpetratorRead(Protocol):
    @property
    def person_ref(self) -> str: ...
    @property
    def serial(self) -> bool: ...
    @property
    def markers(self) -> Sequence[MarkerRead]: ...


class FigureRead(Protocol):
    @property
    def subject(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def value(self) -> int | str | bool | None: ...


class ClassifierRead(Protocol):
    @property
    def elevated(self) -> bool: ...
    @property
    def band(self) -> str | None: ...


class AssessmentRead(Protocol):
    """What the flag rules read of an assessment (:class:`AssessmentView`'s fields)."""

    @property
    def victim(self) -> VictimRead: ...
    @property
    def children(self) -> Sequence[ChildRead]: ...
    @property
    def perpetrator(self) -> PerpetratorRead: ...
    @property
    def classifier(self) -> ClassifierRead | None: ...
    @property
    def history(self) -> Sequence[FigureRead]: ...


def answers_taken(victim: VictimRead, given: Mapping[str, str]) -> Mapping[str, str]:
    """The answers as the assessment took them: the victim's ``given`` answers, with the
    effective answer where the assessment shows one (rules v2: yes from a recorded fact).
    A version-1 assessment shows none, so its rules read the victim's answers."""
    effective = {i.id: i.effective_answer for i in victim.items if i.effective_answer}
    return {**given, **effective} if effective else given


# -- pointers into the explanation ----------------------------------------------------


def _say(name: str, value: Scalar) -> str:
    if value is None:
        return f"{name} not recorded"
    if isinstance(value, bool):
        return f"{name} = {'yes' if value else 'no'}"
    return f"{name} = {value}"


@dataclass(frozen=True, slots=True)
class Pointer:
    """One reason a flag was raised, pointing into the assessment or the incident.

    ``to_dict()`` gives e.g. ``{"kind": "item", "id": "strangulation", "answer": "yes"}``.
    Values are levels, codes, booleans, counts and refs only: never personal data.
    """

    kind: str
    fields: tuple[tuple[str, Scalar], ...] = ()

    @classmethod
    def of(cls, kind: str, **fields: Scalar) -> Pointer:
        return cls(kind=kind, fields=tuple(fields.items()))

    def to_dict(self) -> dict[str, Scalar]:
        return {"kind": self.kind, **dict(self.fields)}

    def describe(self) -> str:
        f = dict(self.fields)
        match self.kind:
            case "trigger":
                return f"trigger {f['rule']} fired"
            case "marac":
                return "MARAC referral " + ("indicated" if f["refer"] else "not indicated")
            case "victim_level":
                return f"victim {f['person_ref']} assessed {f['level']}"
            case "child_level":
                return f"child {f['person_ref']} assessed {f['level']}"
            case "child_field" | "victim_field":
                who = self.kind.removesuffix("_field")
                return f"{who} {f['person_ref']}: " + _say(str(f["field"]), f["value"])
            case "child_age" | "victim_age":
                who = self.kind.removesuffix("_age")
                if f["age_years"] is None:
                    return f"{who} {f['person_ref']}: age not recorded"
                return f"{who} {f['person_ref']} aged {f['age_years']}"
            case "item":
                return f"answer {f['id']} = {f['answer']}"
            case "incident_field":
                if "non_empty" in f:
                    return f"{f['path']} " + ("recorded" if f["non_empty"] else "none recorded")
                return _say(str(f["path"]), f["value"])
            case "perpetrator_serial":
                serial = "linked to two or more victims" if f["serial"] else "not serial"
                return f"perpetrator {f['person_ref']} {serial}"
            case "perpetrator_recorded":
                return f"perpetrator {f['person_ref']} recorded"
            case "marker":
                return f"perpetrator marker {f['id']} present"
            case "figure":
                return f"{f['name']} = {f['value']} ({f['source']})"
            case "last_incident":
                return (
                    f"victim's last DA incident reported within {f['within_months']} months before"
                )
            case "priority_choice":
                return f"priority {f['priority']}"
            case "classifier":
                band = f" (band {f['band']})" if f.get("band") else ""
                return "classifier " + ("elevated" if f["elevated"] else "not elevated") + band
            case "agency_choice":
                return f"addressed to {f['agency']}"
        return self.kind  # pragma: no cover - every kind the engine makes is listed above


def _unique(pointers: Iterable[Pointer]) -> tuple[Pointer, ...]:
    return tuple(dict.fromkeys(pointers))


# A reason is short; with many children it is cut (``because`` always holds every pointer).
REASON_MAX_CHARS = 1000


def _reason(title: str, because: Iterable[Pointer]) -> str:
    text = f"{title}: " + "; ".join(p.describe() for p in because)
    return text if len(text) <= REASON_MAX_CHARS else text[: REASON_MAX_CHARS - 1] + "…"


# -- the proposal ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlagProposal:
    """A flag the rules raise for this assessment, before it is stored."""

    type: FlagType
    agency: Agency
    subject_ref: str
    subject_kind: SubjectKind
    priority: int
    due_at: dt.datetime  # timezone-aware, UTC
    rule_id: str
    rules_id: str
    rules_version: str
    rules_sha256: str
    reason: str
    because: tuple[Pointer, ...]
    action: str
    dedupe_key: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``due_at`` as RFC 3339 with ``Z``)."""
        return {
            "type": self.type,
            "agency": self.agency,
            "subject_ref": self.subject_ref,
            "subject_kind": self.subject_kind,
            "priority": self.priority,
            "due_at": self.due_at.isoformat().replace("+00:00", "Z"),
            "rule_id": self.rule_id,
            "rules_id": self.rules_id,
            "rules_version": self.rules_version,
            "rules_sha256": self.rules_sha256,
            "reason": self.reason,
            "because": [p.to_dict() for p in self.because],
            "action": self.action,
            "dedupe_key": self.dedupe_key,
        }


def dedupe_key(flag_type: str, subject_ref: str, discriminator: str | None) -> str:
    """``type:subject_ref`` plus the rule's discriminator (e.g. ``review_at_months=3``)."""
    return ":".join([flag_type, subject_ref, *([discriminator] if discriminator else [])])


# -- evaluation -----------------------------------------------------------------------
#
# A rule set is compiled once into closures (:class:`_Plan`), memoised on the rule set
# object itself (``FlagRuleSet.derived``), so it lives and dies with that version and is
# never served to another one, not even to a cut-down copy with the same hash (the
# what-if's changed rules). A closure does exactly what walking the condition would do,
# in the same order, and raises the same exceptions; what it saves is the per-call
# dispatch on the condition's type and the values a rule fixes (accepted values, paths,
# the pointers that do not depend on the incident).


@dataclass(frozen=True, slots=True)
class _Facts:
    incident: Incident
    assessment: AssessmentRead
    children: Mapping[str, ChildRead]
    incident_date: dt.date  # local date of occurrence: ages are taken on it
    victim: Person
    perpetrator: Person
    children_by_ref: tuple[Person, ...]  # by ref: explanations do not depend on list order
    # The answers, worked out when a rule first reads them (so a caller passing only the
    # parts of an assessment its rules read, ``parts_read``, need not score the victim).
    memo: dict[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def answers(self) -> Mapping[str, str]:
        """As the assessment took them (effective, in rules v2)."""
        answers = self.memo.get("answers")
        if answers is None:
            answers = answers_taken(self.assessment.victim, self.incident.victim_checklist.answers)
            self.memo["answers"] = answers
        return answers


def _same(actual: Scalar, expected: Iterable[Scalar]) -> bool:
    # Types must agree: False is not 0, None is not False.
    return any(type(actual) is type(e) and actual == e for e in expected)


def _age_years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _child_value(child: Person, name: str) -> Scalar:
    if name == "unborn":
        return child.unborn
    details = child.child
    if name == "has_school":
        school = details.school if details else None
        return bool(school and (school.urn or school.name))
    return cast(Scalar, getattr(details, name, None))


# The pointers that make a condition hold for the facts (and the child, for a child
# condition), or None when it does not.
_Check = Callable[[_Facts, Person | None], tuple[Pointer, ...] | None]


def _victim_level_in(condition: VictimLevelIn) -> _Check:
    levels = tuple(condition.victim_level_in)

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        victim = facts.assessment.victim
        if victim.level in levels:
            return (Pointer.of("victim_level", person_ref=victim.person_ref, level=victim.level),)
        return None

    return check


def _marac_refer(condition: MaracRefer) -> _Check:
    expected = condition.marac_refer

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        marac = facts.assessment.victim.marac
        if marac.refer != expected:
            return None
        criteria = marac.criteria if marac.refer else []
        return tuple(Pointer.of("trigger", rule=c) for c in criteria) or (
            Pointer.of("marac", refer=marac.refer),
        )

    return check


def _victim_trigger(condition: VictimTrigger) -> _Check:
    name = condition.victim_trigger
    found = (Pointer.of("trigger", rule=name),)

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        if any(t.rule == name and t.fired for t in facts.assessment.victim.triggers):
            return found
        return None

    return check


def _perpetrator_serial(condition: PerpetratorSerial) -> _Check:
    expected = condition.perpetrator_serial

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        perpetrator = facts.assessment.perpetrator
        if perpetrator.serial != expected:
            return None
        return (
            Pointer.of(
                "perpetrator_serial", person_ref=perpetrator.person_ref, serial=perpetrator.serial
            ),
        )

    return check


def _classifier_elevated(condition: ClassifierElevated) -> _Check:
    expected = condition.classifier_elevated

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        classifier = facts.assessment.classifier
        if classifier is None or classifier.elevated != expected:
            return None
        return (Pointer.of("classifier", elevated=classifier.elevated, band=classifier.band),)

    return check


def _answer_is(condition: AnswerIs) -> _Check:
    item, accepted = condition.answer, condition.accepted()

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        answer = facts.answers.get(item, "not_asked")
        if answer in accepted:
            return (Pointer.of("item", id=item, answer=answer),)
        return None

    return check


def _incident_field(condition: IncidentField) -> _Check:
    path, non_empty = condition.incident, condition.non_empty
    parts = tuple(path.split("."))

    def value_at(incident: Incident) -> Any:
        # app.contract.paths.incident_value, with the path split once.
        value: Any = incident
        for part in parts:
            value = getattr(value, part, None)
            if value is None:
                return None
        return value

    if non_empty is not None:
        found = (Pointer.of("incident_field", path=path, non_empty=non_empty),)

        def check_non_empty(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
            return found if bool(value_at(facts.incident)) == non_empty else None

        return check_non_empty
    accepted = condition.accepted()

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        value = value_at(facts.incident)
        if _same(value, accepted):
            return (Pointer.of("incident_field", path=path, value=value),)
        return None

    return check


def _perpetrator_recorded(_condition: PerpetratorRecorded) -> _Check:
    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        return (Pointer.of("perpetrator_recorded", person_ref=facts.perpetrator.ref),)

    return check


def _perpetrator_marker(condition: PerpetratorMarker) -> _Check:
    pointers = {m: Pointer.of("marker", id=m) for m in condition.perpetrator_marker}

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        present = [
            pointers[m.id]
            for m in facts.assessment.perpetrator.markers
            if m.present and m.id in pointers
        ]
        return tuple(present) or None

    return check


def _victim_matches(condition: VictimMatches) -> _Check:
    expected = condition.expected()

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        person = facts.victim
        return _fields_match(
            "victim_field", person.ref, expected, lambda name: getattr(person, name)
        )

    return check


def _victim_age_between(condition: VictimAgeBetween) -> _Check:
    limits = condition.victim_age_between

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        return _age_within("victim_age", facts.victim, limits, facts.incident_date, None)

    return check


def _victim_figure(condition: VictimFigure) -> _Check:
    name, at_least = condition.victim_figure, condition.at_least

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        subject = facts.assessment.victim.person_ref
        counted = [
            Pointer.of("figure", name=figure.name, source=figure.source, value=figure.value)
            for figure in facts.assessment.history
            if figure.subject == subject
            and figure.name == name
            and isinstance(figure.value, int)
            and not isinstance(figure.value, bool)
            and figure.value >= at_least
        ]
        return tuple(counted) or None

    return check


def _victim_last_incident_within(condition: VictimLastIncidentWithin) -> _Check:
    months = condition.victim_last_incident_within_months
    found = (Pointer.of("last_incident", within_months=months),)

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        last = facts.incident.victim_history.last_incident_at
        occurred = facts.incident.occurred_at
        # Worked out before `last` is looked at: a date out of range raises either way.
        start = local_to_utc(add_months(facts.incident_date, -months), dt.time(0, 0))
        if last is None or not start <= last < occurred:
            return None
        return found

    return check


def _any_of(condition: AnyOf) -> _Check:
    inner = tuple(_compile(c) for c in condition.any)

    def check(facts: _Facts, child: Person | None) -> tuple[Pointer, ...] | None:
        # Every alternative is evaluated: each one that holds is cited.
        found = [p for c in inner if (p := c(facts, child)) is not None]
        return _unique(p for ps in found for p in ps) if found else None

    return check


def _all_of(condition: AllOf) -> _Check:
    inner = tuple(_compile(c) for c in condition.all)

    def check(facts: _Facts, child: Person | None) -> tuple[Pointer, ...] | None:
        collected: list[Pointer] = []
        for c in inner:
            pointers = c(facts, child)
            if pointers is None:
                return None
            collected += pointers
        return _unique(collected)

    return check


def _any_child(condition: AnyChild) -> _Check:
    inner = _compile(condition.any_child)

    def check(facts: _Facts, _child: Person | None) -> tuple[Pointer, ...] | None:
        found = [p for c in facts.children_by_ref if (p := inner(facts, c)) is not None]
        return _unique(p for ps in found for p in ps) if found else None

    return check


def _the_child(condition: Condition, child: Person | None) -> Person:
    # The loader guarantees a child condition has a child.
    if child is None:  # pragma: no cover - rejected when the rules file loads
        raise AssertionError(f"{condition.tag} needs a child")
    return child


def _child_level_in(condition: ChildLevelIn) -> _Check:
    levels = tuple(condition.child_level_in)

    def check(facts: _Facts, child: Person | None) -> tuple[Pointer, ...] | None:
        ref = _the_child(condition, child).ref
        level = facts.children[ref].level
        if level in levels:
            return (Pointer.of("child_level", person_ref=ref, level=level),)
        return None

    return check


def _child_matches(condition: ChildMatches) -> _Check:
    expected = condition.expected()

    def check(_facts: _Facts, child: Person | None) -> tuple[Pointer, ...] | None:
        subject = _the_child(condition, child)
        return _fields_match(
            "child_field", subject.ref, expected, lambda name: _child_value(subject, name)
        )

    return check


def _child_age_between(condition: ChildAgeBetween) -> _Check:
    limits = condition.child_age_between

    def check(facts: _Facts, child: Person | None) -> tuple[Pointer, ...] | None:
        subject = _the_child(condition, child)
        if subject.unborn:
            return None
        recorded = facts.children[subject.ref].age_years
        return _age_within("child_age", subject, limits, facts.incident_date, recorded)

    return check


_COMPILERS: dict[type[Any], Callable[[Any], _Check]] = {
    VictimLevelIn: _victim_level_in,
    MaracRefer: _marac_refer,
    VictimTrigger: _victim_trigger,
    PerpetratorSerial: _perpetrator_serial,
    ClassifierElevated: _classifier_elevated,
    AnswerIs: _answer_is,
    IncidentField: _incident_field,
    PerpetratorRecorded: _perpetrator_recorded,
    PerpetratorMarker: _perpetrator_marker,
    VictimMatches: _victim_matches,
    VictimAgeBetween: _victim_age_between,
    VictimFigure: _victim_figure,
    VictimLastIncidentWithin: _victim_last_incident_within,
    AnyOf: _any_of,
    AllOf: _all_of,
    AnyChild: _any_child,
    ChildLevelIn: _child_level_in,
    ChildMatches: _child_matches,
    ChildAgeBetween: _child_age_between,
}


AssessmentPart = Literal["victim", "children", "perpetrator", "classifier"]

# The part of the assessment each condition reads (``AssessmentRead``); the others read the
# incident alone. The victim's part includes its history figures (``victim_figure``: the
# engine records the victim's figures with the victim's part) and effective answers.
_PARTS: dict[type[Any], AssessmentPart] = {
    VictimLevelIn: "victim",
    MaracRefer: "victim",
    VictimTrigger: "victim",
    AnswerIs: "victim",
    VictimFigure: "victim",
    ChildLevelIn: "children",
    ChildAgeBetween: "children",
    PerpetratorSerial: "perpetrator",
    PerpetratorMarker: "perpetrator",
    ClassifierElevated: "classifier",
}


# The conditions that read the incident alone (its persons, fields and dates); with
# ``_PARTS`` and the composites (``any``, ``all``, ``any_child``) every condition type.
INCIDENT_ONLY: frozenset[type[Any]] = frozenset(
    {
        IncidentField,
        PerpetratorRecorded,
        VictimMatches,
        VictimAgeBetween,
        VictimLastIncidentWithin,
        ChildMatches,
    }
)


def _parts_of(condition: Condition) -> frozenset[AssessmentPart]:
    if isinstance(condition, AnyOf | AllOf):
        inner = condition.any if isinstance(condition, AnyOf) else condition.all
        return frozenset().union(*(_parts_of(c) for c in inner))
    if isinstance(condition, AnyChild):
        return _parts_of(condition.any_child)
    if type(condition) in INCIDENT_ONLY:
        return frozenset()
    return frozenset({_PARTS[type(condition)]})  # KeyError: a condition type not listed


def parts_read(rules: FlagRuleSet) -> frozenset[AssessmentPart]:
    """The parts of an assessment that ``rules`` (their enabled rules' conditions, agency
    and priority choices) read: :func:`evaluate_view` given a view whose other parts are
    not there (not scored) gives the same flags. Every other condition reads the incident
    alone."""
    return frozenset().union(*(rule_parts(rule) for rule in rules.enabled_rules))


def rule_parts(rule: FlagRule) -> frozenset[AssessmentPart]:
    """The parts of an assessment one rule reads (its condition, agency and priority
    choices): on two assessments equal in those parts it raises the same flags."""
    conditions = [rule.when, *(c.when for c in rule.agency_when)]
    conditions += [c.when for c in rule.priority_when]
    return frozenset().union(*(_parts_of(c) for c in conditions))


def _compile(condition: Condition) -> _Check:
    """The check for ``condition`` (by its exact type: condition models are not subclassed)."""
    compiler = _COMPILERS.get(type(condition))
    if compiler is None:  # pragma: no cover - every condition type is listed above
        raise AssertionError(f"unhandled condition {condition.tag}")
    return compiler(condition)


def _fields_match(
    kind: str,
    ref: str,
    expected: list[tuple[str, tuple[Scalar, ...]]],
    value_of: Callable[[str], Any],
) -> tuple[Pointer, ...] | None:
    """Every named field of one person has one of its expected values (a pointer each)."""
    matched: list[Pointer] = []
    for name, accepted in expected:
        value = cast(Scalar, value_of(name))
        if not _same(value, accepted):
            return None
        matched.append(Pointer.of(kind, person_ref=ref, field=name, value=value))
    return tuple(matched)


def _age_within(
    kind: str, person: Person, limits: AgeLimits, on: dt.date, otherwise: int | None
) -> tuple[Pointer, ...] | None:
    """Age in whole years on ``on`` from the date of birth (else ``otherwise``) within the
    inclusive limits; an unknown age matches only when the limits include it."""
    born = person.date_of_birth
    age = _age_years(born, on) if born is not None else otherwise
    if age is None:
        if not limits.include_unknown_age:
            return None
    elif not limits.min_years <= age <= limits.max_years:
        return None
    return (Pointer.of(kind, person_ref=person.ref, age_years=age),)


@dataclass(frozen=True, slots=True)
class _Choice:
    """A compiled ``agency_when``/``priority_when`` entry: its check, value and pointer."""

    check: _Check
    value: Any  # an Agency or a priority
    pointer: Pointer


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: FlagRule
    subject: RuleSubject
    when: _Check
    agency_when: tuple[_Choice, ...]
    priority_when: tuple[_Choice, ...]
    due: int  # index of the rule's due policy among the set's distinct policies


@dataclass(frozen=True, slots=True)
class _Plan:
    """A rule set's enabled rules, compiled, and the distinct due policies they use."""

    spec: FlagRulesFile  # the spec compiled (a plan is used only with this very object)
    rules: tuple[_CompiledRule, ...]
    dues: tuple[DuePolicy, ...]


_PLAN_KEY = "app.flags.engine"


def _plan(rules: FlagRuleSet) -> _Plan:
    """The compiled form of ``rules``, made on first use and kept on the rule set object."""
    plan = rules.derived.get(_PLAN_KEY)
    if isinstance(plan, _Plan) and plan.spec is rules.spec:
        return plan
    dues: dict[DuePolicy, int] = {}  # equal policies give equal due times
    compiled = []
    for rule in rules.enabled_rules:
        compiled.append(
            _CompiledRule(
                rule=rule,
                subject=rule.subject,
                when=_compile(rule.when),
                agency_when=tuple(
                    _Choice(
                        _compile(c.when), c.agency, Pointer.of("agency_choice", agency=c.agency)
                    )
                    for c in rule.agency_when
                ),
                priority_when=tuple(
                    _Choice(
                        _compile(c.when),
                        c.priority,
                        Pointer.of("priority_choice", priority=c.priority),
                    )
                    for c in rule.priority_when
                ),
                due=dues.setdefault(rule.due, len(dues)),
            )
        )
    plan = _Plan(spec=rules.spec, rules=tuple(compiled), dues=tuple(dues))
    rules.derived[_PLAN_KEY] = plan
    return plan


def _choose(
    choices: tuple[_Choice, ...], default: Any, facts: _Facts, child: Person | None
) -> tuple[Any, tuple[Pointer, ...]]:
    """The first choice that holds (its value, its pointer and why), else the default."""
    for choice in choices:
        pointers = choice.check(facts, child)
        if pointers is not None:
            return choice.value, (choice.pointer, *pointers)
    return default, ()


def evaluate_flags(
    incident: Incident,
    assessment: Mapping[str, Any],
    rules: FlagRuleSet,
    calendar: Calendar,
    now_reference: dt.datetime | None = None,
) -> list[FlagProposal]:
    """The flags ``rules`` raise for this incident and its assessment.

    Source: docs/contract.md "Flags (who must do what, by when)" for the types, agencies and
    triggers; the default rules file cites each rule's own source. Due times are computed
    from ``now_reference`` if given, else ``reported_at``, else ``occurred_at`` (never the
    clock), on ``calendar`` in Europe/London, and returned in UTC.

    The result is ordered by priority, due time, type and subject ref (then dedupe key),
    so the same inputs always give the same list. Raises :class:`AssessmentShapeError`
    when the assessment lacks what the rules read or names other persons.
    """
    view = AssessmentView.read(assessment, incident)
    return evaluate_view(incident, view, rules, calendar, now_reference)


_Subjects = dict[RuleSubject, tuple[tuple[SubjectKind, Person], ...]]


def _facts(incident: Incident, view: AssessmentRead) -> tuple[_Facts, _Subjects]:
    children = incident.children
    facts = _Facts(
        incident=incident,
        assessment=view,
        children={c.person_ref: c for c in view.children},
        incident_date=local_date(incident.occurred_at),
        victim=incident.victim,
        perpetrator=incident.perpetrator,
        children_by_ref=tuple(sorted(children, key=lambda c: c.ref)),
    )
    subjects: _Subjects = {
        "victim": (("victim", facts.victim),),
        "perpetrator": (("perpetrator", facts.perpetrator),),
        "each_child": tuple(("child", child) for child in children),
    }
    return facts, subjects


def flag_keys(
    incident: Incident, view: AssessmentRead, rule_sets: Sequence[FlagRuleSet]
) -> list[dict[str, FlagType]]:
    """For each of ``rule_sets``, the flags :func:`evaluate_view` would raise, as their
    dedupe keys and types only: the same rules, conditions and subjects, without the
    agency and priority choices, due times, reasons and pointers a proposal carries (the
    what-if compares which flags appear, on a million incidents). The incident's facts are
    worked out once for all the rule sets."""
    facts, subjects = _facts(incident, view)
    found: list[dict[str, FlagType]] = []
    for rules in rule_sets:
        keys: dict[str, FlagType] = {}
        for compiled in _plan(rules).rules:
            rule = compiled.rule
            for subject_kind, person in subjects[compiled.subject]:
                child = person if subject_kind == "child" else None
                if compiled.when(facts, child) is not None:
                    keys[dedupe_key(rule.type, person.ref, rule.discriminator)] = rule.type
        found.append(keys)
    return found


def evaluate_view(
    incident: Incident,
    view: AssessmentRead,
    rules: FlagRuleSet,
    calendar: Calendar,
    now_reference: dt.datetime | None = None,
) -> list[FlagProposal]:
    """:func:`evaluate_flags` on what the rules read of an assessment, already read (an
    :class:`AssessmentView`, or the scoring engine's own result objects): the caller
    vouches that it is this incident's assessment (``AssessmentView.read``'s checks)."""
    plan = _plan(rules)
    facts, subjects = _facts(incident, view)
    base = now_reference or incident.reported_at or incident.occurred_at
    # Due times by policy, worked out when a flag first needs one (so a due time out of
    # range raises where it did when each flag worked out its own).
    due_times: list[dt.datetime | None] = [None] * len(plan.dues)
    proposals: list[FlagProposal] = []
    for compiled in plan.rules:
        rule = compiled.rule
        for subject_kind, person in subjects[compiled.subject]:
            child = person if subject_kind == "child" else None
            because = compiled.when(facts, child)
            if because is None:
                continue
            agency, agency_because = _choose(compiled.agency_when, rule.agency, facts, child)
            priority, priority_because = _choose(
                compiled.priority_when, rule.priority, facts, child
            )
            because = _unique((*because, *agency_because, *priority_because))
            due_at = due_times[compiled.due]
            if due_at is None:
                due_at = due_times[compiled.due] = plan.dues[compiled.due].due_at(base, calendar)
            proposals.append(
                FlagProposal(
                    type=rule.type,
                    agency=agency,
                    subject_ref=person.ref,
                    subject_kind=subject_kind,
                    priority=priority,
                    due_at=due_at,
                    rule_id=rule.id,
                    rules_id=rules.id,
                    rules_version=rules.version,
                    rules_sha256=rules.sha256,
                    reason=_reason(rule.title, because),
                    because=because,
                    action=rule.action,
                    dedupe_key=dedupe_key(rule.type, person.ref, rule.discriminator),
                )
            )
    proposals.sort(key=lambda p: (p.priority, p.due_at, p.type, p.subject_ref, p.dedupe_key))
    keys = [p.dedupe_key for p in proposals]
    if len(keys) != len(set(keys)):  # pragma: no cover - the loader forbids clashing rules
        raise AssertionError("two flags share a dedupe key")
    return proposals
