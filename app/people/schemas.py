"""Request and response shapes for persons, their chronology and merges."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    into: uuid.UUID = Field(
        description="The person this record is the same as: another person (the person "
        "itself is a 422)."
    )
    reason: Reason = Field(description="Why they are the same person (kept in the history).")


class UnmergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why the merge was wrong (kept in the history).")


class MergeOut(BaseModel):
    id: str
    person_id: str = Field(description="The record that was merged.")
    into_id: str = Field(description="The survivor it was merged into.")
    requested_into_id: str = Field(description="The id the merge named (before resolving).")
    kind: Literal["manual", "name_dob"] = Field(
        description="`manual`: a triage user; `name_dob`: linking matched a new record on "
        "name and date of birth alone (undo it with unmerge if wrong)."
    )
    reason: str
    merged_by: str
    merged_at: AwareDatetime
    undone_at: AwareDatetime | None = None
    undone_by: str | None = None
    undo_reason: str | None = None


class RecordedName(BaseModel):
    given: str | None = None
    family: str | None = None


class PersonOut(BaseModel):
    id: str
    merged_into: str | None = Field(
        description="The survivor this record is merged into; null if it is not merged."
    )
    records: list[str] = Field(
        description="This record and every record merged into it: the incidents of all of "
        "them are this person's."
    )
    roles: list[str] = Field(description="Roles the person has had in stored incidents.")
    incident_count: int
    first_incident_at: AwareDatetime | None
    last_incident_at: AwareDatetime | None
    name: RecordedName | None = Field(
        description="As last recorded in an incident visible to the caller."
    )
    date_of_birth: dt.date | None = Field(
        description="As last recorded in an incident visible to the caller."
    )
    identifier_schemes: list[str] = Field(
        description="Schemes of the identifiers on record (values are not returned; they are "
        "in the incidents)."
    )
    links: dict[str, int] = Field(
        description="How the person's incident records were linked: rule → count."
    )
    merges: list[MergeOut] = Field(description="Every merge and unmerge touching the records.")


class TimelineFlag(BaseModel):
    id: str
    type: str
    agency: str
    subject_ref: str
    status: str
    priority: int
    due_at: AwareDatetime
    needs_review: bool


class TimelineChild(BaseModel):
    person_ref: str
    person_id: str
    level: str | None


class TimelineEntry(BaseModel):
    in_scope: bool = Field(
        description="False for an incident outside the caller's areas: only its date, area "
        "and the person's role are shown."
    )
    incident_id: str | None
    occurred_at: AwareDatetime
    area: str
    role: str
    person_ref: str | None = None
    record_id: str | None = Field(default=None, description="The record the incident links to.")
    link_rule: str | None = None
    erased: bool = False
    assessment_id: str | None = None
    assessment_version: int | None = None
    victim_person_id: str | None = None
    perpetrator_person_id: str | None = None
    victim_level: str | None = None
    marac_refer: bool | None = None
    marac_criteria: list[str] = []
    perpetrator_serial: bool | None = None
    children: list[TimelineChild] = []
    flags: list[TimelineFlag] = []


class DistinctVictim(BaseModel):
    person_id: str
    incident_ids: list[str] = Field(description="Incidents visible to the caller.")
    other_incidents: int = Field(description="Incidents outside the caller's areas.")
    first_incident_at: AwareDatetime
    last_incident_at: AwareDatetime


class Timeline(BaseModel):
    person_id: str
    entries: list[TimelineEntry] = Field(description="Newest first.")
    distinct_victims: list[DistinctVictim] = Field(
        description="As a perpetrator: each distinct victim (merged records count once)."
    )
    truncated: bool = Field(description="True when older entries were left out (`limit`).")


# --------------------------------------------------------------------------- search


class IncidentLinks(BaseModel):
    self_: str = Field(serialization_alias="self", description="The incident.")
    assessments: str = Field(description="Its assessment versions.")


class IncidentSummary(BaseModel):
    """One incident found by a search: enough to choose it, nothing of its narrative."""

    id: str
    source_system: str
    source_reference: str
    area: str
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    victim_level: str | None = Field(
        description="The victim's level in the latest assessment (null if none)."
    )
    highest_child_level: str | None = Field(
        description="The highest child level in the latest assessment (null without children)."
    )
    children: int = Field(description="How many children (unborn included) the incident names.")
    marac_refer: bool | None = Field(
        description="Whether the latest assessment refers the victim to MARAC."
    )
    matched_roles: list[str] = Field(
        description="The roles the person searched for has in this incident (empty for a "
        "search by source reference)."
    )
    links: IncidentLinks


class IncidentSearchPage(BaseModel):
    items: list[IncidentSummary] = Field(description="Newest first (occurred), then by id.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` with the same criteria for the next page; null on the "
        "last page."
    )


class PersonLinks(BaseModel):
    self_: str = Field(serialization_alias="self", description="The person.")
    timeline: str = Field(description="The person's chronology.")


class PersonSummary(BaseModel):
    """One person found by a search (the survivor of any merges)."""

    id: str
    roles: list[str] = Field(description="Roles in the incidents visible to the caller.")
    incident_count: int = Field(description="Incidents visible to the caller.")
    last_incident_at: AwareDatetime = Field(description="The latest visible incident.")
    links: PersonLinks


class PersonSearchResult(BaseModel):
    items: list[PersonSummary] = Field(description="Latest visible incident first.")
    truncated: bool = Field(description="True when more persons matched than `limit`.")
