"""The assessment the engine returns: frozen, slotted dataclasses, and their dict form.

The assessment *is* the explanation: every figure shown to a triage worker or an auditor is
a field set while scoring, never recomputed for display (CONTRIBUTING.md, "Shape of the code").
``to_dict`` produces the contract's ``assessment`` object (docs/contract.md, body of the 201)
without the ``id``, ``version`` and ``created_at`` that the persistence layer adds.

Many of these objects are built once per checklist definition (an item with a given answer,
a rule that did or did not fire) and shared between assessments; they are immutable, so
sharing is safe and keeps the engine fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from app.contract.incident import Incident
from app.contract.levels import ChildLevel, VictimLevel
from app.scoring.digest import inputs_digest
from app.scoring.summary import summarise

if TYPE_CHECKING:
    from app.scoring.history import History
    from app.scoring.judgement import Judgement

AnswerValue = Literal["yes", "no", "unknown", "not_asked"]

# Bumped when the engine's logic changes in a way that changes any output for the same
# inputs and definitions, so that a failed reproduction can be told apart from tampering.
ENGINE_VERSION = "1"

FactValue = bool | int | str | None


@dataclass(frozen=True, slots=True)
class DefinitionRef:
    """Which definition was used: id, version and the sha256 of its canonical JSON."""

    id: str
    version: str
    sha256: str

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class VictimItem:
    """One checklist item as answered: only a ``yes`` scores a point.

    With rules v2 (definitions with ``effective_answers``) the item also shows the
    effective answer and its ``source``: ``answer`` (the victim's), ``observed`` (the
    officer saw it at the scene) or ``recorded`` (a structured fact of the incident), with
    the incident ``fact`` looked at. ``answer`` is always what the victim said. Version-1
    items leave these out, so that their assessments reproduce byte for byte.
    """

    id: str
    answer: AnswerValue
    points: int
    label: str
    effective_answer: AnswerValue | None = None
    source: str | None = None
    fact: tuple[str, FactValue] | None = None

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "id": self.id,
            "answer": self.answer,
            "points": self.points,
            "label": self.label,
        }
        if self.source is not None:
            result["effective_answer"] = self.effective_answer
            result["source"] = self.source
            if self.fact is not None:
                result["fact"] = {"path": self.fact[0], "value": self.fact[1]}
        return result


@dataclass(frozen=True, slots=True)
class Trigger:
    """One rule evaluated, whether or not it fired.

    ``effect`` is the level the rule gives when it fired and ``"none"`` when it did not;
    ``stage`` says where in the ladder the rule sits (victim: ``score``, ``red_flag``,
    ``judgement``, ``marac``; child: ``rule``, ``step``).
    """

    rule: str
    effect: str
    detail: str
    fired: bool
    stage: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "effect": self.effect,
            "detail": self.detail,
            "fired": self.fired,
            "stage": self.stage,
        }


@dataclass(frozen=True, slots=True)
class MaracDecision:
    refer: bool
    criteria: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"refer": self.refer, "criteria": list(self.criteria)}


@dataclass(frozen=True, slots=True)
class VictimAssessment:
    person_ref: str
    level: VictimLevel
    score_level: VictimLevel
    score: int
    max_score: int
    unknown_count: int
    checklist: DefinitionRef
    items: tuple[VictimItem, ...]
    triggers: tuple[Trigger, ...]
    marac: MaracDecision

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_ref": self.person_ref,
            "level": self.level,
            "score_level": self.score_level,
            "score": self.score,
            "max_score": self.max_score,
            "unknown_count": self.unknown_count,
            "checklist": self.checklist.to_dict(),
            "items": [item.to_dict() for item in self.items],
            "triggers": [trigger.to_dict() for trigger in self.triggers],
            "marac": self.marac.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class ChildItem:
    """A fact a child rule looked at, with its value and where it came from.

    ``source``: ``child`` (the child's record in the incident), ``victim_checklist``,
    ``victim`` (the victim's final level) or ``stored`` (the service's own history).
    """

    id: str
    value: FactValue
    source: str
    incident_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "value": self.value,
            "source": self.source,
            "incident_ids": list(self.incident_ids),
        }


@dataclass(frozen=True, slots=True)
class ChildAssessment:
    person_ref: str
    level: ChildLevel
    rule_level: ChildLevel
    recommended_response: str
    unborn: bool
    age_years: int | None
    triggers: tuple[Trigger, ...]
    items: tuple[ChildItem, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_ref": self.person_ref,
            "level": self.level,
            "rule_level": self.rule_level,
            "recommended_response": self.recommended_response,
            "unborn": self.unborn,
            "age_years": self.age_years,
            "triggers": [trigger.to_dict() for trigger in self.triggers],
            "items": [item.to_dict() for item in self.items],
        }


@dataclass(frozen=True, slots=True)
class Evidence:
    """One source consulted for a perpetrator marker.

    ``source``: ``reported`` (the submitting system's history), ``stored`` (the service's
    own records; ``incident_ids`` says which), ``checklist`` (a victim checklist answer) or
    ``incident`` (this incident's circumstances).
    """

    source: str
    field: str
    value: FactValue
    incident_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "field": self.field,
            "value": self.value,
            "incident_ids": list(self.incident_ids),
        }


@dataclass(frozen=True, slots=True)
class Marker:
    """A perpetrator marker: ``present`` is None when no source says either way."""

    id: str
    present: bool | None
    evidence: tuple[Evidence, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "present": self.present,
            "evidence": [item.to_dict() for item in self.evidence],
        }


@dataclass(frozen=True, slots=True)
class PerpetratorProfile:
    person_ref: str
    markers: tuple[Marker, ...]
    serial: bool
    serial_reason: str

    def marker(self, marker_id: str) -> Marker:
        return next(m for m in self.markers if m.id == marker_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_ref": self.person_ref,
            "markers": [marker.to_dict() for marker in self.markers],
            "serial": self.serial,
            "serial_reason": self.serial_reason,
        }


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure taken from history, with its source (``reported`` or ``stored``).

    For ``stored`` figures ``incident_ids`` lists the stored incidents that were counted.
    """

    subject: str
    name: str
    source: str
    value: FactValue
    incident_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "name": self.name,
            "source": self.source,
            "value": self.value,
            "incident_ids": list(self.incident_ids),
        }


@dataclass(frozen=True, slots=True)
class AssessmentInputs:
    """References to what the assessment was computed from (kept for the inputs digest)."""

    incident: Incident
    history: History
    judgements: tuple[Judgement, ...]


@dataclass(frozen=True, slots=True)
class Assessment:
    victim: VictimAssessment
    children: tuple[ChildAssessment, ...]
    perpetrator: PerpetratorProfile
    history: tuple[Figure, ...]
    child_risk: DefinitionRef
    judgements_considered: int
    # The checklist's red-flag items (critical first): the factors the summary names first.
    red_flag_items: tuple[str, ...]
    inputs: AssessmentInputs

    @property
    def summary(self) -> str:
        """The plain-language paragraph, written from this assessment's own fields.

        A pure function of the fields above, so it cannot disagree with them; computed
        when asked for (``to_dict`` asks) rather than on every ``assess``.
        """
        return summarise(self.victim, self.children, self.perpetrator, self.red_flag_items)

    def child(self, person_ref: str) -> ChildAssessment:
        return next(c for c in self.children if c.person_ref == person_ref)

    def to_dict(self) -> dict[str, Any]:
        """The contract's ``assessment`` object, without id/version/created_at.

        Extra keys beyond the fixed names: ``definitions`` (both definitions used, with
        hashes), ``history`` (figures with their sources), ``engine_version`` and
        ``inputs_digest`` (sha256 of the canonical inputs, so that a reproduction also
        proves the stored inputs were not altered).
        """
        return {
            "victim": self.victim.to_dict(),
            "children": [child.to_dict() for child in self.children],
            "perpetrator": self.perpetrator.to_dict(),
            "classifier": None,
            "summary": self.summary,
            "definitions": {
                "victim_checklist": self.victim.checklist.to_dict(),
                "child_risk": self.child_risk.to_dict(),
            },
            "history": [figure.to_dict() for figure in self.history],
            "judgements_considered": self.judgements_considered,
            "engine_version": ENGINE_VERSION,
            "inputs_digest": inputs_digest(
                self.inputs.incident, self.inputs.history, self.inputs.judgements
            ),
        }
