"""Everything the engine knows beyond this incident, each figure kept with its source.

DA is a pattern, not an isolated incident (docs/brief.md): escalation, repeat-MARAC and serial
perpetration depend on history. The submitting system *reports* some of it
(``victim_history``, ``perpetrator_history``: docs/contract.md "Fields worth knowing"); the service
will also have its own *stored* incidents. Both are kept side by side here, never merged,
so that the explanation can say which source each figure came from and, for stored
figures, which incidents were counted.

``History.reported(incident)`` fills in the reported half; the persistence layer adds the
stored half with ``History.with_stored(...)`` once it can look incidents up. The engine
applies the definition's windows itself, so callers may pass more stored incidents than a
window needs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from app.contract.incident import Incident

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


@dataclass(frozen=True, slots=True)
class StoredIncident:
    """An earlier DA incident held by the service."""

    incident_id: str
    occurred_at: dt.datetime

    def __post_init__(self) -> None:
        # Windows compare instants; a time without an offset cannot be placed in one.
        if self.occurred_at.utcoffset() is None:
            raise ValueError("a stored incident's occurred_at needs an offset")


@dataclass(frozen=True, slots=True)
class StoredMaracReferral:
    """The service's record of the victim's last MARAC referral."""

    incident_id: str
    referred_on: dt.date


@dataclass(frozen=True, slots=True)
class LinkedVictim:
    """A victim the service has linked to this perpetrator, and through which incidents."""

    person_id: str
    incident_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VictimHistory:
    person_ref: str
    person_id: str | None = None
    # Stored: the service's own earlier DA incidents for this victim.
    stored_prior_incidents: tuple[StoredIncident, ...] = ()
    stored_last_marac_referral: StoredMaracReferral | None = None
    # Reported: incident.victim_history as submitted.
    reported_prior_incidents_12m: int | None = None
    reported_last_incident_at: dt.datetime | None = None
    reported_last_marac_referral: dt.date | None = None


@dataclass(frozen=True, slots=True)
class PerpetratorHistory:
    person_ref: str
    person_id: str | None = None
    # Stored: victims linked to this perpetrator in earlier stored incidents, and those
    # incidents.
    stored_victims: tuple[LinkedVictim, ...] = ()
    stored_incident_ids: tuple[str, ...] = ()
    # Reported: incident.perpetrator_history as submitted.
    reported_prior_da_incidents_total: int | None = None
    reported_prior_da_victims: int | None = None
    reported_last_incident_at: dt.datetime | None = None
    reported_prior_non_da_violence: bool | None = None
    reported_prior_custody: bool | None = None
    reported_breach_of_conditional_release: bool | None = None
    reported_warning_markers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChildHistory:
    person_ref: str
    person_id: str | None = None
    # Stored: earlier incidents in which this child was recorded.
    stored_prior_incident_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class History:
    victim: VictimHistory
    perpetrator: PerpetratorHistory
    children: tuple[ChildHistory, ...] = ()
    # False until the persistence layer has looked up its own records: an empty stored
    # history then means "not looked", and the explanation says so instead of "none".
    stored_consulted: bool = False

    @classmethod
    def reported(cls, incident: Incident) -> History:
        """History as the submitting system reported it, with nothing stored yet."""
        victim_history = incident.victim_history
        perpetrator_history = incident.perpetrator_history
        return cls(
            victim=VictimHistory(
                person_ref=incident.relationship.victim,
                reported_prior_incidents_12m=victim_history.prior_da_incidents_12m,
                reported_last_incident_at=victim_history.last_incident_at,
                reported_last_marac_referral=victim_history.last_marac_referral,
            ),
            perpetrator=PerpetratorHistory(
                person_ref=incident.relationship.perpetrator,
                reported_prior_da_incidents_total=perpetrator_history.prior_da_incidents_total,
                reported_prior_da_victims=perpetrator_history.prior_da_victims,
                reported_last_incident_at=perpetrator_history.last_incident_at,
                reported_prior_non_da_violence=perpetrator_history.prior_non_da_violence,
                reported_prior_custody=perpetrator_history.prior_custody,
                reported_breach_of_conditional_release=(
                    perpetrator_history.breach_of_conditional_release
                ),
                reported_warning_markers=tuple(perpetrator_history.warning_markers),
            ),
            children=tuple(ChildHistory(person_ref=child.ref) for child in incident.children),
        )

    def with_stored(
        self,
        *,
        victim_person_id: str | None = None,
        victim_incidents: Iterable[StoredIncident] | None = None,
        victim_last_marac_referral: StoredMaracReferral | None = None,
        perpetrator_person_id: str | None = None,
        perpetrator_victims: Iterable[LinkedVictim] | None = None,
        perpetrator_incident_ids: Iterable[str] | None = None,
        child_person_ids: Mapping[str, str] | None = None,
        child_incident_ids: Mapping[str, Iterable[str]] | None = None,
    ) -> History:
        """A copy with the service's stored history added (arguments left out are kept).

        Stored incidents are sorted so that the same records in a different order give
        the same assessment (and the same reproduction).
        """
        victim = self.victim
        victim = replace(
            victim,
            person_id=victim_person_id if victim_person_id is not None else victim.person_id,
            stored_prior_incidents=(
                tuple(sorted(victim_incidents, key=lambda i: (i.occurred_at, i.incident_id)))
                if victim_incidents is not None
                else victim.stored_prior_incidents
            ),
            stored_last_marac_referral=(
                victim_last_marac_referral
                if victim_last_marac_referral is not None
                else victim.stored_last_marac_referral
            ),
        )
        perpetrator = self.perpetrator
        perpetrator = replace(
            perpetrator,
            person_id=(
                perpetrator_person_id
                if perpetrator_person_id is not None
                else perpetrator.person_id
            ),
            stored_victims=(
                tuple(
                    sorted(
                        (
                            LinkedVictim(v.person_id, tuple(sorted(v.incident_ids)))
                            for v in perpetrator_victims
                        ),
                        key=lambda v: v.person_id,
                    )
                )
                if perpetrator_victims is not None
                else perpetrator.stored_victims
            ),
            stored_incident_ids=(
                tuple(sorted(perpetrator_incident_ids))
                if perpetrator_incident_ids is not None
                else perpetrator.stored_incident_ids
            ),
        )
        person_ids = child_person_ids or {}
        incident_ids = child_incident_ids or {}
        children = tuple(
            replace(
                child,
                person_id=person_ids.get(child.person_ref, child.person_id),
                stored_prior_incident_ids=(
                    tuple(sorted(incident_ids[child.person_ref]))
                    if child.person_ref in incident_ids
                    else child.stored_prior_incident_ids
                ),
            )
            for child in self.children
        )
        return History(
            victim=victim, perpetrator=perpetrator, children=children, stored_consulted=True
        )

    def child(self, person_ref: str) -> ChildHistory | None:
        for child in self.children:
            if child.person_ref == person_ref:
                return child
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored with the assessment so that it can be reproduced."""
        v, p = self.victim, self.perpetrator
        return {
            "stored_consulted": self.stored_consulted,
            "victim": {
                "person_ref": v.person_ref,
                "person_id": v.person_id,
                "stored_prior_incidents": [
                    {"incident_id": i.incident_id, "occurred_at": i.occurred_at.isoformat()}
                    for i in v.stored_prior_incidents
                ],
                "stored_last_marac_referral": (
                    None
                    if v.stored_last_marac_referral is None
                    else {
                        "incident_id": v.stored_last_marac_referral.incident_id,
                        "referred_on": v.stored_last_marac_referral.referred_on.isoformat(),
                    }
                ),
                "reported_prior_incidents_12m": v.reported_prior_incidents_12m,
                "reported_last_incident_at": _iso(v.reported_last_incident_at),
                "reported_last_marac_referral": _iso(v.reported_last_marac_referral),
            },
            "perpetrator": {
                "person_ref": p.person_ref,
                "person_id": p.person_id,
                "stored_victims": [
                    {"person_id": lv.person_id, "incident_ids": list(lv.incident_ids)}
                    for lv in p.stored_victims
                ],
                "stored_incident_ids": list(p.stored_incident_ids),
                "reported_prior_da_incidents_total": p.reported_prior_da_incidents_total,
                "reported_prior_da_victims": p.reported_prior_da_victims,
                "reported_last_incident_at": _iso(p.reported_last_incident_at),
                "reported_prior_non_da_violence": p.reported_prior_non_da_violence,
                "reported_prior_custody": p.reported_prior_custody,
                "reported_breach_of_conditional_release": (
                    p.reported_breach_of_conditional_release
                ),
                "reported_warning_markers": list(p.reported_warning_markers),
            },
            "children": [
                {
                    "person_ref": c.person_ref,
                    "person_id": c.person_id,
                    "stored_prior_incident_ids": list(c.stored_prior_incident_ids),
                }
                for c in self.children
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        v, p = data["victim"], data["perpetrator"]
        marac = v.get("stored_last_marac_referral")
        return cls(
            victim=VictimHistory(
                person_ref=v["person_ref"],
                person_id=v.get("person_id"),
                stored_prior_incidents=tuple(
                    StoredIncident(i["incident_id"], dt.datetime.fromisoformat(i["occurred_at"]))
                    for i in v.get("stored_prior_incidents", ())
                ),
                stored_last_marac_referral=(
                    None
                    if marac is None
                    else StoredMaracReferral(
                        marac["incident_id"], dt.date.fromisoformat(marac["referred_on"])
                    )
                ),
                reported_prior_incidents_12m=v.get("reported_prior_incidents_12m"),
                reported_last_incident_at=_datetime(v.get("reported_last_incident_at")),
                reported_last_marac_referral=_date(v.get("reported_last_marac_referral")),
            ),
            perpetrator=PerpetratorHistory(
                person_ref=p["person_ref"],
                person_id=p.get("person_id"),
                stored_victims=tuple(
                    LinkedVictim(lv["person_id"], tuple(lv["incident_ids"]))
                    for lv in p.get("stored_victims", ())
                ),
                stored_incident_ids=tuple(p.get("stored_incident_ids", ())),
                reported_prior_da_incidents_total=p.get("reported_prior_da_incidents_total"),
                reported_prior_da_victims=p.get("reported_prior_da_victims"),
                reported_last_incident_at=_datetime(p.get("reported_last_incident_at")),
                reported_prior_non_da_violence=p.get("reported_prior_non_da_violence"),
                reported_prior_custody=p.get("reported_prior_custody"),
                reported_breach_of_conditional_release=p.get(
                    "reported_breach_of_conditional_release"
                ),
                reported_warning_markers=tuple(p.get("reported_warning_markers", ())),
            ),
            children=tuple(
                ChildHistory(
                    person_ref=c["person_ref"],
                    person_id=c.get("person_id"),
                    stored_prior_incident_ids=tuple(c.get("stored_prior_incident_ids", ())),
                )
                for c in data.get("children", ())
            ),
            stored_consulted=bool(data.get("stored_consulted", False)),
        )


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _datetime(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)
