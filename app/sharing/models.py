"""Stored information-sharing decisions (shared, or a decision not to share)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal, get_args

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, PortableJSON, UTCDateTime, new_id, utcnow

Decision = Literal["shared", "not_shared"]
# The lawful bases a safeguarding disclosure rests on (docs/reliability-research.md §1.4, §1.6):
# consent is one basis among five, and not the default for safeguarding.
LawfulBasis = Literal[
    "consent",
    "safeguarding",
    "statutory_function",
    "vital_interests",
    "administration_of_justice",
]
RecipientAgency = Literal[
    "csc",
    "health",
    "school",
    "probation",
    "idva",
    "marac",
    "early_help",
    "police",
    "adult_social_care",
    "housing",
    "other",
]
# What was shared, by category (golden rule 6: only what the recipient needs).
Category = Literal[
    "incident_summary",
    "victim_details",
    "child_details",
    "perpetrator_details",
    "risk_assessment",
    "checklist_answers",
    "flags",
    "history",
]
# Whether consent was sought and given (ICO data sharing code: with or without consent):
# not sought because seeking it would raise the risk, or because it was not safe or
# practicable to ask.
ConsentStatus = Literal["given", "refused", "not_sought_risk", "not_sought_unsafe"]

DECISIONS: tuple[str, ...] = get_args(Decision)
LAWFUL_BASES: tuple[str, ...] = get_args(LawfulBasis)
RECIPIENT_AGENCIES: tuple[str, ...] = get_args(RecipientAgency)
CATEGORIES: tuple[str, ...] = get_args(Category)
CONSENT_STATUSES: tuple[str, ...] = get_args(ConsentStatus)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Disclosure(Base):
    """One decision to share information about an incident with an agency, or not to."""

    __tablename__ = "disclosures"
    __table_args__ = (
        CheckConstraint(_in("decision", DECISIONS), name="decision"),
        CheckConstraint(_in("recipient_agency", RECIPIENT_AGENCIES), name="recipient_agency"),
        CheckConstraint(
            "lawful_basis IS NULL OR " + _in("lawful_basis", LAWFUL_BASES), name="lawful_basis"
        ),
        CheckConstraint(_in("consent_status", CONSENT_STATUSES), name="consent_status"),
        # Sharing needs a lawful basis; a decision not to share needs its reason.
        CheckConstraint(
            "decision = 'not_shared' OR lawful_basis IS NOT NULL", name="shared_has_basis"
        ),
        CheckConstraint(
            "decision = 'shared' OR reason_not_shared IS NOT NULL", name="not_shared_has_reason"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    # The flag the disclosure answers, if any (e.g. an Operation Encompass notification).
    flag_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("flags.id"))
    decision: Mapped[str] = mapped_column(String(16))
    recipient_agency: Mapped[str] = mapped_column(String(32))
    recipient_detail: Mapped[str | None] = mapped_column(String(200))
    lawful_basis: Mapped[str | None] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(1000))
    categories_shared: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    # The incident's person refs whose information the decision is about.
    subject_refs: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    consent_status: Mapped[str] = mapped_column(String(24))
    reason_not_shared: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_by_role: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
