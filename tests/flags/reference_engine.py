"""The flag engine as it was before its rules were compiled (main at 5330d4a), kept as the
reference the compiled engine is compared against (tests/flags/test_flag_compiled.py).

A straightforward interpreter: every condition is walked, by type, on every call. It is
test code only; it must give exactly what :func:`app.flags.engine.evaluate_flags` gives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.contract.incident import Incident, Person
from app.contract.paths import incident_value
from app.flags.calendar import Calendar, add_months, local_date, local_to_utc
from app.flags.conditions import (
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
    VictimAgeBetween,
    VictimFigure,
    VictimLastIncidentWithin,
    VictimLevelIn,
    VictimMatches,
    VictimTrigger,
)
from app.flags.engine import (  # the leaf helpers the compiled engine still uses as they were
    AssessedChild,
    AssessmentView,
    FlagProposal,
    Pointer,
    _age_within,
    _child_value,
    _fields_match,
    _reason,
    _same,
    _unique,
    dedupe_key,
)
from app.flags.ruleset import FlagRule, FlagRuleSet
from app.flags.vocabulary import Agency, SubjectKind


@dataclass(frozen=True, slots=True)
class _Facts:
    incident: Incident
    assessment: AssessmentView
    children: Mapping[str, AssessedChild]
    incident_date: dt.date  # local date of occurrence: ages are taken on it
    answers: Mapping[str, str]  # as the assessment took them (effective, in rules v2)


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


def evaluate_flags_reference(
    incident: Incident,
    assessment: Mapping[str, Any],
    rules: FlagRuleSet,
    calendar: Calendar,
    now_reference: dt.datetime | None = None,
) -> list[FlagProposal]:
    """What ``evaluate_flags`` gave before compilation (main at 5330d4a)."""
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
