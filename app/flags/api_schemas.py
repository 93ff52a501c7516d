"""Request and response shapes of the flag work routes and the MASH queue.

The flag itself is :class:`app.flags.schemas.FlagOut` (the same shape as in the intake
response); these are the shapes around it.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from app.flags.schemas import FlagOut

FlagStatus = Literal["open", "acknowledged", "in_progress", "done", "not_required"]
SubjectKind = Literal["victim", "child", "perpetrator"]

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Assignee = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
NoteText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class FlagChange(BaseModel):
    """A change to a flag: its status (forward only), the reason, and who is working it.

    Send only what changes. ``assignee: null`` clears the assignee. ``needs_review: false``
    records that a person reviewed a flag a later assessment no longer supports and kept
    it; closing a flag (``done`` or ``not_required``) clears the mark too.
    """

    model_config = ConfigDict(
        extra="forbid",
        # The rules below, in the schema too (JSON Schema 2020-12), for generated clients.
        json_schema_extra={
            "minProperties": 1,
            "dependentRequired": {"status_reason": ["status"]},
            "if": {"properties": {"status": {"const": "not_required"}}, "required": ["status"]},
            "then": {"required": ["status_reason"]},
        },
    )

    # `SkipJsonSchema[None]`: may be left out, but `null` is refused (and not documented).
    status: FlagStatus | SkipJsonSchema[None] = Field(
        default=None,
        description="open → acknowledged → in_progress → done; any open status → "
        "not_required (with a reason). Forward only; done and not_required are final. "
        "Leave it out to keep the status; `null` is refused.",
    )
    status_reason: Reason | SkipJsonSchema[None] = Field(
        default=None,
        description="Why; required with `not_required`. Free text: shown to those entitled, "
        "never logged.",
    )
    assignee: Assignee | None = Field(
        default=None, description="Who is working the flag (a person or team identifier)."
    )
    needs_review: Literal[False] | SkipJsonSchema[None] = Field(
        default=None, description="`false`: reviewed and kept (clears the review mark)."
    )

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        given = self.model_fields_set
        if not given:
            raise ValueError("send at least one of status, status_reason, assignee, needs_review")
        if self.status is None and "status" in given:
            raise ValueError("status cannot be null")
        if "status_reason" in given and self.status_reason is None:
            raise ValueError("status_reason cannot be null")
        if self.status_reason is not None and self.status is None:
            raise ValueError("status_reason is given with the status it explains")
        if self.status == "not_required" and self.status_reason is None:
            raise ValueError("not_required needs a status_reason")
        if "needs_review" in given and self.needs_review is None:
            raise ValueError("needs_review can only be set to false")
        return self


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: NoteText = Field(
        description="The note (at most 4000 characters). Sensitive free text: shown to those "
        "entitled to the flag, never logged."
    )


class FlagEventOut(BaseModel):
    """One entry in a flag's history."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    at: AwareDatetime
    principal_id: str = Field(description="Who: the API key or identity that made the change.")
    role: str = Field(description="Their role, or `system` for changes made by reassessment.")
    change: str = Field(
        description="created, status, assignee, note, review_marked, review_cleared."
    )
    from_value: str | None = Field(default=None, serialization_alias="from")
    to_value: str | None = Field(default=None, serialization_alias="to")
    note: str | None = None


class FlagHistory(BaseModel):
    flag_id: str
    events: list[FlagEventOut] = Field(description="Every change, oldest first.")


class FlagPage(BaseModel):
    items: list[FlagOut] = Field(description="Ordered by priority, then due time, then id.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
    as_of: AwareDatetime = Field(description="The time `overdue` was worked out at.")


class QueueRow(BaseModel):
    """An incident awaiting MASH triage."""

    incident_id: str
    area: str
    occurred_at: AwareDatetime
    risk_rank: int = Field(
        description="Highest risk among the victim (standard 0, medium 1, high 2) and the "
        "children (moderate 0, moderate_to_serious 1, serious 2, severe 3)."
    )
    victim_level: str
    highest_child_level: str | None = Field(description="Null when there are no children.")
    open_flags: int
    overdue_flags: int
    notification_problems: int = Field(
        description="Open flags whose notification to their agency failed, or was not "
        "acknowledged by the flag's due time (`GET /v1/flags?notification_problem=true`)."
    )
    earliest_due_at: AwareDatetime = Field(description="The earliest due open flag.")
    assessment_id: str = Field(description="The latest assessment version.")
    assessment_version: int


class QueuePage(BaseModel):
    items: list[QueueRow] = Field(
        description="Highest risk first, then the earliest due open flag, then incident id."
    )
    next_cursor: str | None
    as_of: AwareDatetime
