"""Request and response shapes of information-sharing decisions."""

from __future__ import annotations

import uuid
from typing import Annotated, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.contract.bounds import NotBlank, PastTime
from app.sharing.models import Category, ConsentStatus, Decision, LawfulBasis, RecipientAgency

Text1000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Text4000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Detail = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
PersonRef = Annotated[str, StringConstraints(min_length=1, max_length=32), NotBlank]


class DisclosureIn(BaseModel):
    """A decision to share information with an agency, or not to (golden rule 7: record
    the decision and the reasons, whether or not you share)."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    recipient_agency: RecipientAgency = Field(
        description="Who received it (or would have). `other` needs `recipient_detail`."
    )
    recipient_detail: Detail | None = Field(
        default=None, description="The team or role within the agency (no personal names)."
    )
    lawful_basis: LawfulBasis | None = Field(
        default=None,
        description="Required when shared; when not shared, the basis that was considered.",
    )
    purpose: Text1000 = Field(description="Why the information is (or would be) shared.")
    categories_shared: list[Category] = Field(
        default_factory=list,
        max_length=8,
        description="What was shared; at least one when shared, none when not shared.",
    )
    subject_refs: list[PersonRef] | None = Field(
        default=None,
        max_length=50,
        description="The incident's person refs the information was about (default: all).",
    )
    consent_status: ConsentStatus = Field(
        description="given, refused, not_sought_risk (asking would raise the risk) or "
        "not_sought_unsafe (not safe or practicable to ask)."
    )
    reason_not_shared: Text4000 | None = Field(
        default=None, description="Required when not shared; not allowed when shared."
    )
    flag_id: uuid.UUID | None = Field(
        default=None,
        description="The incident's flag this disclosure answers, if any.",
    )
    decided_at: PastTime | None = Field(
        default=None, description="When the decision was made (default: now; not later)."
    )

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if len(set(self.categories_shared)) != len(self.categories_shared):
            raise ValueError("categories_shared lists a category twice")
        if self.decision == "shared":
            if self.lawful_basis is None:
                raise ValueError("sharing needs a lawful_basis")
            if not self.categories_shared:
                raise ValueError("sharing needs at least one of categories_shared")
            if self.reason_not_shared is not None:
                raise ValueError("reason_not_shared is for a decision not to share")
        else:
            if self.reason_not_shared is None:
                raise ValueError("a decision not to share needs reason_not_shared")
            if self.categories_shared:
                raise ValueError("nothing is shared when the decision is not_shared")
        # Sharing on consent needs the consent; recording that consent was sought and
        # refused (and so nothing shared on that basis) is exactly what a refusal is for.
        if (
            self.decision == "shared"
            and self.lawful_basis == "consent"
            and self.consent_status != "given"
        ):
            raise ValueError("sharing on lawful_basis consent needs consent_status given")
        if self.recipient_agency == "other" and self.recipient_detail is None:
            raise ValueError("recipient_agency other needs recipient_detail")
        return self


class DisclosureOut(BaseModel):
    id: str
    incident_id: str
    flag_id: str | None
    decision: Decision
    recipient_agency: RecipientAgency
    recipient_detail: str | None
    lawful_basis: LawfulBasis | None
    purpose: str
    categories_shared: list[Category]
    subject_refs: list[str]
    consent_status: ConsentStatus
    reason_not_shared: str | None
    decided_by: str = Field(description="The principal that recorded the decision.")
    decided_by_role: str
    decided_at: AwareDatetime
    recorded_at: AwareDatetime


class DisclosureList(BaseModel):
    incident_id: str
    disclosures: list[DisclosureOut] = Field(description="Newest decision first.")
