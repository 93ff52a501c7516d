"""Finding incidents and persons: by source reference, PNC id, or name and date of birth.

The MASH screens' search (triage, auditors). One criterion per search:

* ``source_reference`` (optionally with ``source_system``): the incidents with that
  reference;
* ``pnc``: the person holding that PNC id (normalised as linking normalises it), with
  every record merged into them, and their incidents;
* ``name`` with ``date_of_birth``: the persons whose name-and-date-of-birth key matches
  (app/people/linking.py: case, accents, spaces and punctuation ignored), and their
  incidents. The key is stored only as a digest, so the name is matched through it: the
  full name is split into given and family names at each space in turn ("Mary Ann Smith"
  is Mary Ann + Smith or Mary + Ann Smith), and each split's digest is looked up.

Only live incidents in the caller's scope are found (an erased incident is found by no
search), and a person only through such an incident. The values searched for are personal
data: they are never logged, never put in an audit event (which names the kind of
criterion only) and never quoted in a problem.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from app.assessments.models import Assessment
from app.auth.policy import area_filter
from app.auth.principal import Principal
from app.contract.incident import Identifier
from app.contract.levels import CHILD_RANK
from app.errors import BadRequest
from app.flags.cursor import decode_time_key, encode_cursor, query_fingerprint
from app.incidents import models
from app.incidents import repository as incident_repository
from app.people import repository
from app.people.linking import match_key, normalise_identifier
from app.people.schemas import (
    IncidentLinks,
    IncidentSearchPage,
    IncidentSummary,
    PersonLinks,
    PersonSearchResult,
    PersonSummary,
)

Kind = Literal["source_reference", "pnc", "name_dob"]
# A full name of more parts than this is refused (each split is one digest to look up).
MAX_NAME_PARTS = 10
_ONE_CRITERION = (
    "Search by one of: source_reference (optionally with source_system), pnc, or name "
    "with date_of_birth."
)


@dataclass(frozen=True)
class Criteria:
    """One search criterion, normalised; nothing here is ever logged."""

    kind: Kind
    source_reference: str | None = None
    source_system: str | None = None
    pnc: str | None = None  # normalised as stored
    digests: tuple[str, ...] = ()  # name-and-date-of-birth keys to look up

    def fingerprint(self, listing: str) -> str:
        return query_fingerprint(
            listing,
            {
                "kind": self.kind,
                "source_reference": self.source_reference,
                "source_system": self.source_system,
                "pnc": self.pnc,
                "digests": list(self.digests),
            },
        )


def _refuse(detail: str, *locations: str, msg: str) -> BadRequest:
    return BadRequest(detail, errors=[{"loc": ["query", loc], "msg": msg} for loc in locations])


def criteria(
    *,
    source_reference: str | None = None,
    source_system: str | None = None,
    pnc: str | None = None,
    name: str | None = None,
    date_of_birth: dt.date | None = None,
) -> Criteria:
    """The one criterion a search names, or a 400 that says what is missing (never what
    was sent)."""
    given = [
        loc
        for loc, value in (("source_reference", source_reference), ("pnc", pnc), ("name", name))
        if value is not None
    ]
    if source_system is not None and source_reference is None:
        raise _refuse(
            "source_system narrows a search by source_reference.",
            "source_system",
            msg="used with source_reference",
        )
    if date_of_birth is not None and name is None:
        raise _refuse(
            "date_of_birth is searched with a name.", "date_of_birth", msg="used with name"
        )
    if not given:
        raise _refuse(_ONE_CRITERION, "source_reference", "pnc", "name", msg="missing")
    if len(given) > 1:
        raise _refuse(_ONE_CRITERION, *given, msg="one criterion at a time")
    if source_reference is not None:
        return Criteria(
            "source_reference", source_reference=source_reference, source_system=source_system
        )
    if pnc is not None:
        if not pnc.strip():
            raise _refuse("pnc must hold an identifier.", "pnc", msg="blank")
        _, value = normalise_identifier(Identifier(scheme="pnc", value=pnc.strip()), "")
        return Criteria("pnc", pnc=value)
    if name is None or date_of_birth is None:
        raise _refuse(
            "A name is searched with a date of birth (date_of_birth=YYYY-MM-DD).",
            "date_of_birth",
            msg="required with name",
        )
    return Criteria("name_dob", digests=name_digests(name, date_of_birth))


def name_digests(name: str, date_of_birth: dt.date) -> tuple[str, ...]:
    """The match key of every split of ``name`` into given and family names."""
    parts = name.split()
    if len(parts) < 2:
        raise _refuse("name must hold a given name and a family name.", "name", msg="one part only")
    if len(parts) > MAX_NAME_PARTS:
        raise _refuse(
            f"name may hold at most {MAX_NAME_PARTS} parts.", "name", msg="too many parts"
        )
    keys = {
        match_key(" ".join(parts[:i]), " ".join(parts[i:]), date_of_birth)
        for i in range(1, len(parts))
    }
    return tuple(sorted(k for k in keys if k is not None))


# --------------------------------------------------------------------------- matching


def matched_clusters(session: Session, found: Criteria) -> dict[uuid.UUID, tuple[uuid.UUID, ...]]:
    """Each person (survivor) the criterion matches, with every record merged into them."""
    records: set[uuid.UUID] = set()
    if found.pnc is not None:
        records |= set(repository.identifier_holders(session, {("pnc", found.pnc)}).values())
    if found.digests:
        for holders in repository.key_holders(session, found.digests).values():
            records |= holders
    if not records:
        return {}
    roots = set(repository.survivors(session, records).values())
    roots -= repository.erased_among(session, roots)
    return repository.clusters(session, roots)


# --------------------------------------------------------------------------- incidents


@dataclass(frozen=True)
class IncidentSearch:
    page: IncidentSearchPage
    incident_ids: list[uuid.UUID]
    person_ids: list[uuid.UUID]  # every person record of the incidents returned


def search_incidents(
    session: Session,
    principal: Principal,
    found: Criteria,
    *,
    cursor: str | None,
    limit: int,
) -> IncidentSearch:
    fingerprint = found.fingerprint("incident_search")
    after = decode_time_key(cursor, fingerprint) if cursor else None
    records: set[uuid.UUID] | None = None
    if found.kind != "source_reference":
        records = {r for cluster in matched_clusters(session, found).values() for r in cluster}
    if records is not None and not records:
        rows: list[models.Incident] = []
    else:
        rows = incident_repository.search(
            session,
            areas=area_filter(principal),
            source_reference=found.source_reference,
            source_system=found.source_system,
            person_ids=records,
            after=after,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    latest = repository.latest_assessments(session, [r.id for r in rows])
    items = [_summary(row, latest.get(row.id), records) for row in rows]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = encode_cursor(fingerprint, [last.occurred_at.isoformat(), str(last.id)])
    return IncidentSearch(
        page=IncidentSearchPage(items=items, next_cursor=next_cursor),
        incident_ids=[r.id for r in rows],
        person_ids=sorted({p.person_id for r in rows for p in r.persons}),
    )


def _summary(
    row: models.Incident, assessment: Assessment | None, records: set[uuid.UUID] | None
) -> IncidentSummary:
    result: Mapping[str, Any] = (assessment.result if assessment is not None else None) or {}
    child_levels = [c.get("level") for c in result.get("children", [])]
    location = f"/v1/incidents/{row.id}"
    return IncidentSummary(
        id=str(row.id),
        source_system=row.source_system,
        source_reference=row.source_reference,
        area=row.area,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        victim_level=assessment.victim_level if assessment is not None else None,
        highest_child_level=max(
            (level for level in child_levels if level in CHILD_RANK),
            key=CHILD_RANK.__getitem__,
            default=None,
        ),
        children=sum(1 for p in row.persons if p.role == "child"),
        marac_refer=assessment.marac_refer if assessment is not None else None,
        matched_roles=sorted(
            {p.role for p in row.persons if records is not None and p.person_id in records}
        ),
        links=IncidentLinks(self_=location, assessments=f"{location}/assessments"),
    )


# --------------------------------------------------------------------------- persons


@dataclass(frozen=True)
class PersonSearch:
    result: PersonSearchResult
    person_ids: list[uuid.UUID]  # the persons returned (survivors)
    records: list[uuid.UUID]  # and every record merged into them
    incident_ids: list[uuid.UUID]  # the visible incidents they were found through


def search_persons(
    session: Session, principal: Principal, found: Criteria, *, limit: int
) -> PersonSearch:
    clusters = matched_clusters(session, found)
    root_of = {record: root for root, cluster in clusters.items() for record in cluster}
    areas = area_filter(principal)
    seen: dict[uuid.UUID, list[tuple[models.IncidentPerson, models.Incident]]] = {}
    for p, incident in repository.incident_persons_of(session, root_of):
        if incident.erased_at is None and (areas is None or incident.area in areas):
            seen.setdefault(root_of[p.person_id], []).append((p, incident))
    summaries = sorted(
        (
            PersonSummary(
                id=str(root),
                roles=sorted({p.role for p, _ in rows}),
                incident_count=len({i.id for _, i in rows}),
                last_incident_at=max(i.occurred_at for _, i in rows),
                links=PersonLinks(
                    self_=f"/v1/persons/{root}", timeline=f"/v1/persons/{root}/timeline"
                ),
            )
            for root, rows in seen.items()
        ),
        key=lambda s: (s.last_incident_at, s.id),
        reverse=True,
    )
    shown = summaries[:limit]
    roots = [uuid.UUID(s.id) for s in shown]
    return PersonSearch(
        result=PersonSearchResult(items=shown, truncated=len(summaries) > limit),
        person_ids=roots,
        records=sorted({r for root in roots for r in clusters[root]}),
        incident_ids=sorted({i.id for root in roots for _, i in seen[root]}),
    )
