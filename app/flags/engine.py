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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from app.contract.incident import Incident, Person
from app.contract.paths import incident_value
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
from app.flags.ruleset import FlagRule, FlagRuleSet
from app.flags.vocabulary import Agency, ChildLevel, FlagType, SubjectKind, VictimLevel

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
        """The answers as the assessment took them: the victim's ``given`` answers, with the
        effective answer where the assessment shows one (rules v2: yes from a recorded
        fact). A version-1 assessment shows none, so its rules read the victim's answers."""
        effective = {i.id: i.effective_answer for i in self.items if i.effective_answer}
        return {**given, **effective} if effective else given


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


@dataclass(frozen=True, slots=True)
class _Facts:
    incident: Incident
    assessment: AssessmentView
    children: Mapping[str, AssessedChild]
    incident_date: dt.date  # local date of occurrence: ages are taken on it
    answers: Mapping[str, str]  # as the assessment took them (effective, in rules v2)


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


def _holds(condition: Condition, facts: _Facts, child: Person | None) -> tuple[Pointer, ...] | None:
    """The pointers that make ``condition`` hold, or None when it does not."""
    victim = facts.assessment.victim
    if isinstance(condition, VictimLevelIn):
        if victim.level in condition.victim_level_in:
            return (Pointer.of("victim_level", person_ref=victim.person_ref, level=victim.level),)
        return None
    if isinstance(condition, MaracRefer):
        if victim.marac.refer != condition.marac_refer:
            return None
        criteria = victim.marac.criteria if victim.marac.refer else []
        return tuple(Pointer.of("trigger", rule=c) for c in criteria) or (
            Pointer.of("marac", refer=victim.marac.refer),
        )
    if isinstance(condition, VictimTrigger):
        if any(t.rule == condition.victim_trigger and t.fired for t in victim.triggers):
            return (Pointer.of("trigger", rule=condition.victim_trigger),)
        return None
    if isinstance(condition, PerpetratorSerial):
        perpetrator = facts.assessment.perpetrator
        if perpetrator.serial != condition.perpetrator_serial:
            return None
        return (
            Pointer.of(
                "perpetrator_serial", person_ref=perpetrator.person_ref, serial=perpetrator.serial
            ),
        )
    if isinstance(condition, ClassifierElevated):
        classifier = facts.assessment.classifier
        if classifier is None or classifier.elevated != condition.classifier_elevated:
            return None
        return (Pointer.of("classifier", elevated=classifier.elevated, band=classifier.band),)
    if isinstance(condition, AnswerIs):
        answer = facts.answers.get(condition.answer, "not_asked")
        if answer in condition.accepted():
            return (Pointer.of("item", id=condition.answer, answer=answer),)
        return None
    if isinstance(condition, IncidentField):
        value = incident_value(facts.incident, condition.incident)
        if condition.non_empty is not None:
            if bool(value) != condition.non_empty:
                return None
            return (
                Pointer.of(
                    "incident_field", path=condition.incident, non_empty=condition.non_empty
                ),
            )
        if _same(value, condition.accepted()):
            return (Pointer.of("incident_field", path=condition.incident, value=value),)
        return None
    if isinstance(condition, PerpetratorRecorded):
        return (Pointer.of("perpetrator_recorded", person_ref=facts.incident.perpetrator.ref),)
    if isinstance(condition, PerpetratorMarker):
        present = [
            Pointer.of("marker", id=m.id)
            for m in facts.assessment.perpetrator.markers
            if m.present and m.id in condition.perpetrator_marker
        ]
        return tuple(present) or None
    if isinstance(condition, VictimMatches):
        person = facts.incident.victim
        return _fields_match(
            "victim_field", person.ref, condition.expected(), lambda name: getattr(person, name)
        )
    if isinstance(condition, VictimAgeBetween):
        person = facts.incident.victim
        return _age_within(
            "victim_age", person, condition.victim_age_between, facts.incident_date, None
        )
    if isinstance(condition, VictimFigure):
        counted = [
            Pointer.of("figure", name=figure.name, source=figure.source, value=figure.value)
            for figure in facts.assessment.history
            if figure.subject == victim.person_ref
            and figure.name == condition.victim_figure
            and isinstance(figure.value, int)
            and not isinstance(figure.value, bool)
            and figure.value >= condition.at_least
        ]
        return tuple(counted) or None
    if isinstance(condition, VictimLastIncidentWithin):
        last = facts.incident.victim_history.last_incident_at
        occurred = facts.incident.occurred_at
        months = condition.victim_last_incident_within_months
        start = local_to_utc(add_months(facts.incident_date, -months), dt.time(0, 0))
        if last is None or not start <= last < occurred:
            return None
        return (Pointer.of("last_incident", within_months=months),)
    if isinstance(condition, AnyOf):
        found = [p for c in condition.any if (p := _holds(c, facts, child)) is not None]
        return _unique(p for ps in found for p in ps) if found else None
    if isinstance(condition, AllOf):
        collected: list[Pointer] = []
        for inner in condition.all:
            pointers = _holds(inner, facts, child)
            if pointers is None:
                return None
            collected += pointers
        return _unique(collected)
    if isinstance(condition, AnyChild):
        # By ref, so the explanation does not depend on the order persons were listed in.
        children = sorted(facts.incident.children, key=lambda c: c.ref)
        found = [p for c in children if (p := _holds(condition.any_child, facts, c)) is not None]
        return _unique(p for ps in found for p in ps) if found else None
    # The rest test one child; the loader guarantees there is one.
    if child is None:  # pragma: no cover - rejected when the rules file loads
        raise AssertionError(f"{condition.tag} needs a child")
    if isinstance(condition, ChildLevelIn):
        level = facts.children[child.ref].level
        if level in condition.child_level_in:
            return (Pointer.of("child_level", person_ref=child.ref, level=level),)
        return None
    if isinstance(condition, ChildMatches):
        subject = child
        return _fields_match(
            "child_field", child.ref, condition.expected(), lambda name: _child_value(subject, name)
        )
    if isinstance(condition, ChildAgeBetween):
        if child.unborn:
            return None
        recorded = facts.children[child.ref].age_years
        return _age_within(
            "child_age", child, condition.child_age_between, facts.incident_date, recorded
        )
    raise AssertionError(f"unhandled condition {condition.tag}")  # pragma: no cover


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


def _subjects(rule: FlagRule, incident: Incident) -> list[tuple[SubjectKind, Person]]:
    if rule.subject == "victim":
        return [("victim", incident.victim)]
    if rule.subject == "perpetrator":
        return [("perpetrator", incident.perpetrator)]
    return [("child", child) for child in incident.children]


def _agency(
    rule: FlagRule, facts: _Facts, child: Person | None
) -> tuple[Agency, tuple[Pointer, ...]]:
    for choice in rule.agency_when:
        pointers = _holds(choice.when, facts, child)
        if pointers is not None:
            return choice.agency, (Pointer.of("agency_choice", agency=choice.agency), *pointers)
    return rule.agency, ()


def _priority(
    rule: FlagRule, facts: _Facts, child: Person | None
) -> tuple[int, tuple[Pointer, ...]]:
    for choice in rule.priority_when:
        pointers = _holds(choice.when, facts, child)
        if pointers is not None:
            return choice.priority, (
                Pointer.of("priority_choice", priority=choice.priority),
                *pointers,
            )
    return rule.priority, ()


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
    facts = _Facts(
        incident=incident,
        assessment=view,
        children={c.person_ref: c for c in view.children},
        incident_date=local_date(incident.occurred_at),
        answers=view.victim.answers(incident.victim_checklist.answers),
    )
    base = now_reference or incident.reported_at or incident.occurred_at
    proposals: list[FlagProposal] = []
    for rule in rules.enabled_rules:
        for subject_kind, person in _subjects(rule, incident):
            child = person if subject_kind == "child" else None
            because = _holds(rule.when, facts, child)
            if because is None:
                continue
            agency, agency_because = _agency(rule, facts, child)
            priority, priority_because = _priority(rule, facts, child)
            because = _unique((*because, *agency_because, *priority_because))
            proposals.append(
                FlagProposal(
                    type=rule.type,
                    agency=agency,
                    subject_ref=person.ref,
                    subject_kind=subject_kind,
                    priority=priority,
                    due_at=rule.due.due_at(base, calendar),
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
