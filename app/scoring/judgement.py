"""Professional judgement on the victim's risk level, or (rules v2) on a child's.

Judgement may raise the level, never lower it, and must give its reasons (docs/research.md §1.5,
§1.6 route 2; docs/contract.md "Scoring defaults" item 2: a judgement without a rationale is a 422).
The HTTP layer validates requests with ``app.scoring.schemas.JudgementIn``; this dataclass
refuses a blank rationale too, so that no code path can record an unreasoned judgement.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.contract.incident import Incident
from app.contract.levels import CHILD_RANK, VICTIM_RANK, ChildLevel, VictimLevel

if TYPE_CHECKING:
    from collections.abc import Mapping

OFFICER_ASSESSMENT = "officer_assessment"
LATER_JUDGEMENT = "judgement"


class JudgementError(ValueError):
    """A judgement that cannot be recorded (no rationale, unknown level, naive time)."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """A professional judgement of the victim's level.

    ``by`` is the pseudonymous id of whoever judged; ``at`` is when (timezone-aware);
    ``source`` is ``officer_assessment`` for the judgement submitted with the incident and
    ``judgement`` for one recorded later (e.g. by MASH triage). ``subject_ref`` is None
    for the victim and a child's ref (``c1``) for a judgement of that child's level, on
    the child ladder (rules v2, rule 7).
    """

    level: VictimLevel | ChildLevel
    rationale: str
    by: str
    at: dt.datetime
    source: str = LATER_JUDGEMENT
    subject_ref: str | None = None

    def __post_init__(self) -> None:
        levels = VICTIM_RANK if self.subject_ref is None else CHILD_RANK
        if self.level not in levels:
            raise JudgementError(f"unknown level {self.level!r}")
        if not self.rationale.strip():
            raise JudgementError("a professional judgement needs a rationale")
        if not self.by.strip():
            raise JudgementError("a professional judgement needs the id of who judged")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise JudgementError("the time of a judgement needs an offset")

    @classmethod
    def from_officer_assessment(cls, incident: Incident) -> Judgement | None:
        """The judgement submitted with the incident, if any.

        Attributed to ``source.submitted_by`` (or the submitting system) at ``reported_at``
        (or ``occurred_at`` when the report time is absent).
        """
        officer = incident.officer_assessment
        if officer.professional_judgement is None:
            return None
        return cls(
            level=officer.professional_judgement,
            rationale=officer.rationale or "",
            by=incident.source.submitted_by or incident.source.system,
            at=incident.reported_at or incident.occurred_at,
            source=OFFICER_ASSESSMENT,
        )

    def to_dict(self) -> dict[str, Any]:
        result = {
            "level": self.level,
            "rationale": self.rationale,
            "by": self.by,
            "at": self.at.isoformat(),
            "source": self.source,
        }
        # Only a child's judgement names its subject: a victim's keeps the shape it had
        # before rules v2, so that stored inputs digest and reproduce as they did.
        if self.subject_ref is not None:
            result["subject_ref"] = self.subject_ref
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Judgement:
        return cls(
            level=data["level"],
            rationale=data["rationale"],
            by=data["by"],
            at=dt.datetime.fromisoformat(data["at"]),
            source=data.get("source", LATER_JUDGEMENT),
            subject_ref=data.get("subject_ref"),
        )
