"""Linking an incident's persons to the persons the service already knows.

Deterministic and explainable: the same stored records and the same incident always give
the same links, and every link records the rule that made it and its basis (schemes and
counts only, never an identifier value or a name). The rules, first applicable wins:

1. ``identifier:pnc``, ``identifier:nhs``, ``identifier:source`` — a strong identifier
   matches exactly after normalisation, tried in that order (PNC id, NHS number, the
   submitting system's own person id, which means nothing in another system and is kept
   per system). When two identifiers point to different persons, the earlier scheme
   wins, the conflict is written in the basis, and name and date of birth are not used.
2. ``name_dob`` — no identifier matched, and given name, family name and date of birth are
   all present (never for an unborn child, never on a name alone), and exactly one known
   person has the same normalised name and date of birth and holds no identifier of a
   scheme this person has with a different value. Weaker evidence: the link is a new
   record merged into that person (an automatic merge triage can undo with ``unmerge``).
   Two or more persons with the key means ambiguity, and nothing is linked.
3. ``revision`` — a revision of an incident keeps a person that no evidence links on the
   record the previous revision gave it, so a manual merge of that record still applies.
4. ``new`` — a new person record.

Identifiers no one holds yet are learned by the linked record (unless the person already
has a different value of that scheme), and so is the name-and-date-of-birth key. A person
is never linked to a record another person of the same incident is already linked to.

Merged records count as their survivor. Links are never rewritten by merges, so an
unmerge restores exactly what was there, and stored assessments keep the history they
were given.

How it is done: ``plan_links`` reads what it needs in a few set-wise queries (the holders
of every identifier and key at once; the merge graph and identifiers of the records they
point to, only when any do), decides every link in memory, and returns the rows to write,
which the caller inserts in batches. Intakes that could create or match the same person are
serialised by per-identifier locks taken first (``repository.lock_link_keys``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from app.contract.incident import Identifier, Incident
from app.contract.incident import Person as PersonIn
from app.db import new_id
from app.incidents import repository as incident_repository
from app.people import repository
from app.people.repository import MergeGraph

LinkRule = Literal[
    "identifier:pnc", "identifier:nhs", "identifier:source", "name_dob", "revision", "new"
]
SCHEME_PRECEDENCE = ("pnc", "nhs", "source")
RULE_OF_SCHEME: dict[str, LinkRule] = {
    "pnc": "identifier:pnc",
    "nhs": "identifier:nhs",
    "source": "identifier:source",
}
LINKING_ACTOR = "system:linking"
# Rules that join an incident's person to a record from elsewhere: each such link is a
# combination of personal data (DPA 2018 s.62), audited with its rule.
EVIDENCE_RULES: frozenset[str] = frozenset({*RULE_OF_SCHEME.values(), "name_dob"})
# Records made for one incident person: a revision may keep them (rule 3).
OWN_RECORD_RULES = frozenset({"name_dob", "revision", "new"})
MATCH_KEY_VERSION = "v1"

_PNC = re.compile(r"^(?:\d{2})?(\d{2})/0*(\d{1,7})([A-Z])$")


# --------------------------------------------------------------------------- normalising


def normalise_name(value: str) -> str:
    """Case-folded, accents stripped (NFKD), punctuation and spaces dropped.

    "Smith-Jones", "smith jones" and "SMITH JONES" give the same "smithjones";
    "Zoë" and "Zoe" the same "zoe"; "O'Brien" gives "obrien".
    """
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())


def match_key(
    given: str | None, family: str | None, date_of_birth: date | None, *, unborn: bool = False
) -> str | None:
    """SHA-256 of the normalised ``family|given|dob``, or None when any part is missing."""
    if unborn or date_of_birth is None or not given or not family:
        return None
    g, f = normalise_name(given), normalise_name(family)
    if not g or not f:
        return None
    text = f"name_dob:{MATCH_KEY_VERSION}:{f}|{g}|{date_of_birth.isoformat()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_identifier(identifier: Identifier, source_system: str) -> tuple[str, str]:
    """The stored form: no spaces, upper case, ``source`` ids prefixed with their system.

    PNC ids are also written with a two-digit year and no leading zeros in the serial
    ("2008/0552190B" is "08/552190B"); NHS numbers lose hyphens ("943-476-5919").
    """
    scheme, value = incident_repository.normalise_identifier(identifier, source_system)
    if scheme == "pnc":
        found = _PNC.match(value)
        if found is not None:
            value = f"{found.group(1)}/{int(found.group(2))}{found.group(3)}"
    elif scheme == "nhs":
        value = value.replace("-", "")
    return scheme, value


def _namespace(scheme: str, value: str) -> str:
    # A person has one PNC id and one NHS number, and one id in each source system.
    return f"source:{value.split(':', 1)[0]}" if scheme == "source" else scheme


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PreviousLink:
    """How a person of the same ref was linked in the incident's previous revision."""

    person_id: uuid.UUID
    rule: str | None


@dataclass(frozen=True)
class LinkedPerson:
    """One incident person, the record it is linked to, and why."""

    ref: str
    role: str
    position: int
    person_id: uuid.UUID  # the record (incident_persons.person_id)
    survivor_id: uuid.UUID  # the person that record counts as now
    rule: LinkRule
    basis: str


@dataclass
class LinkPlan:
    """Every link of one incident, and the rows that make them (not yet written)."""

    persons: list[LinkedPerson]
    graph: MergeGraph
    new_persons: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)
    identifiers: list[dict[str, Any]] = field(default_factory=list)
    match_keys: list[dict[str, Any]] = field(default_factory=list)

    def record_of(self, ref: str) -> uuid.UUID:
        return next(p.person_id for p in self.persons if p.ref == ref)

    def survivor_of(self, ref: str) -> uuid.UUID:
        return next(p.survivor_id for p in self.persons if p.ref == ref)

    def incident_person_rows(
        self, incident_id: uuid.UUID, incident: Incident
    ) -> list[dict[str, Any]]:
        by_ref = {p.ref: p for p in incident.persons}
        rows = []
        for linked in self.persons:
            data = by_ref[linked.ref]
            rows.append(
                {
                    "id": new_id(),
                    "incident_id": incident_id,
                    "person_id": linked.person_id,
                    "position": linked.position,
                    "ref": linked.ref,
                    "role": linked.role,
                    "given_name": data.name.given if data.name else None,
                    "family_name": data.name.family if data.name else None,
                    "date_of_birth": data.date_of_birth,
                    "unborn": data.unborn,
                    "link_rule": linked.rule,
                    "link_basis": linked.basis,
                }
            )
        return rows

    def write(self, session: Session) -> None:
        """Insert the new person records, merges, identifiers and keys (in FK order)."""
        repository.insert_link_rows(
            session,
            persons=self.new_persons,
            merges=self.merges,
            identifiers=self.identifiers,
            match_keys=self.match_keys,
        )


@dataclass
class _Wanted:
    person: PersonIn
    identifiers: list[tuple[str, str]]
    key: str | None


@dataclass
class _Decision:
    rule: LinkRule
    basis: list[str]
    person_id: uuid.UUID | None = None  # the record to link; None: make a new one
    merge_into: uuid.UUID | None = None  # name_dob: the survivor a new record joins
    notes: list[str] = field(default_factory=list)


@dataclass
class _State:
    """What linking knows while it works through one incident's persons."""

    holders: dict[tuple[str, str], uuid.UUID]
    key_holders: dict[str, set[uuid.UUID]]
    survivor: dict[uuid.UUID, uuid.UUID]
    graph: MergeGraph
    held: dict[uuid.UUID, list[tuple[str, str]]]  # identifiers of each known record
    used: set[uuid.UUID] = field(default_factory=set)  # survivors linked in this incident

    def cluster_identifiers(self, root: uuid.UUID) -> dict[str, set[str]]:
        """Identifier values by namespace across ``root`` and every record merged into it."""
        out: dict[str, set[str]] = {}
        members = {r for r, s in self.survivor.items() if s == root} | {root}
        for record in members:
            for scheme, value in self.held.get(record, ()):
                out.setdefault(_namespace(scheme, value), set()).add(value)
        return out


def lock_keys_of(incident: Incident) -> list[str]:
    """The lock names of every identifier and name key of ``incident`` (``app.db.lock_keys``),
    for a caller that takes them together with its own."""
    wanted = [_wanted(p, incident.source.system) for p in incident.persons]
    return [repository.LINK_LOCK_PREFIX + k for k in _link_keys(wanted)]


def _link_keys(wanted: list[_Wanted]) -> list[str]:
    pairs = {pair for w in wanted for pair in w.identifiers}
    digests = {w.key for w in wanted if w.key}
    return [f"id:{s}:{v}" for s, v in sorted(pairs)] + [f"key:{k}" for k in sorted(digests)]


def plan_links(
    session: Session,
    incident: Incident,
    *,
    previous: Mapping[str, PreviousLink] | None = None,
    now: datetime,
    locked: bool = False,
) -> LinkPlan:
    """Decide the link of every person of ``incident``; nothing is written yet.

    Takes the person-link locks first, unless the caller already holds them (``locked``:
    see ``lock_keys_of``).
    """
    previous = previous or {}
    wanted = [_wanted(p, incident.source.system) for p in incident.persons]
    pairs = {pair for w in wanted for pair in w.identifiers}
    digests = {w.key for w in wanted if w.key}
    if not locked:
        repository.lock_link_keys(session, _link_keys(wanted))
    holders, key_holders = repository.link_candidates(session, pairs, digests)
    known = {*holders.values(), *(h for hs in key_holders.values() for h in hs)}
    known |= {link.person_id for link in previous.values()}
    graph = repository.merge_graph(session, known)
    held = repository.identifiers_by_record(session, graph.records) if graph.records else {}
    state = _State(holders, key_holders, dict(graph.survivor), graph, held)

    plan = LinkPlan(persons=[], graph=graph)
    for position, w in enumerate(wanted):
        decision = _decide(w, state, previous.get(w.person.ref))
        person_id = _apply(plan, w, decision, state, now)
        survivor = state.survivor[person_id]
        state.used.add(survivor)
        plan.persons.append(
            LinkedPerson(
                ref=w.person.ref,
                role=w.person.role,
                position=position,
                person_id=person_id,
                survivor_id=survivor,
                rule=decision.rule,
                basis=_text(decision.basis + decision.notes),
            )
        )
    plan.graph = graph.with_records(state.survivor)
    return plan


def _wanted(person: PersonIn, source_system: str) -> _Wanted:
    identifiers = sorted(
        {normalise_identifier(i, source_system) for i in person.identifiers},
        key=lambda pair: (SCHEME_PRECEDENCE.index(pair[0]), pair[1]),
    )
    name = person.name
    key = match_key(
        name.given if name else None,
        name.family if name else None,
        person.date_of_birth,
        unborn=person.unborn,
    )
    return _Wanted(person, identifiers, key)


def _decide(w: _Wanted, state: _State, previous: PreviousLink | None) -> _Decision:
    # 1. Strong identifiers, in precedence order.
    found = [
        (scheme, holder)
        for scheme, value in w.identifiers
        if (holder := state.holders.get((scheme, value))) is not None
    ]
    if found:
        chosen = next(((s, h) for s, h in found if state.survivor[h] not in state.used), None)
        if chosen is None:
            return _Decision(
                "new", ["identifiers match a person already linked in this incident: not linked"]
            )
        scheme, holder = chosen
        survivor = state.survivor[holder]
        basis = [f"{scheme} matched"]
        others = sorted({s for s, h in found if state.survivor[h] != survivor})
        if others:
            basis.append(
                f"{', '.join(others)} held by another person: not linked, name and date of "
                "birth not used"
            )
        return _Decision(RULE_OF_SCHEME[scheme], basis, person_id=holder)

    # 2. Normalised name and date of birth.
    reasons: list[str] = []
    if w.key is None:
        reasons.append(
            "unborn" if w.person.unborn else "no identifier match; name or date of birth missing"
        )
    else:
        candidates = sorted({state.survivor[h] for h in state.key_holders[w.key]})
        if len(candidates) > 1:
            reasons.append(
                f"name and date of birth match {len(candidates)} different persons: ambiguous"
            )
        elif candidates and candidates[0] in state.used:
            reasons.append("name and date of birth match a person already in this incident")
        elif candidates:
            survivor = candidates[0]
            conflicts = _conflicting_schemes(state, survivor, w.identifiers)
            if conflicts:
                reasons.append(
                    "name and date of birth match a person with a different "
                    f"{', '.join(conflicts)}: not linked"
                )
            else:
                basis = ["no identifier match; name and date of birth match one person"]
                if (
                    previous is not None
                    and previous.rule in OWN_RECORD_RULES
                    and state.survivor.get(previous.person_id) == survivor
                ):
                    basis.append("same record as the previous revision")
                    return _Decision("name_dob", basis, person_id=previous.person_id)
                return _Decision("name_dob", basis, merge_into=survivor)
        else:
            reasons.append("no identifier or name and date of birth match")

    # 3. A revision keeps a record made for this incident person.
    if previous is not None and previous.rule in OWN_RECORD_RULES:
        kept = state.survivor.get(previous.person_id)
        if kept is not None and kept not in state.used:
            return _Decision(
                "revision",
                [*reasons, "kept the record of the previous revision"],
                person_id=previous.person_id,
            )
    # 4. Someone new.
    return _Decision("new", reasons)


def _conflicting_schemes(
    state: _State, survivor: uuid.UUID, identifiers: list[tuple[str, str]]
) -> list[str]:
    """Schemes this person has in a namespace where the known person has another value."""
    if not identifiers:
        return []
    held = state.cluster_identifiers(survivor)
    return sorted(
        {
            scheme
            for scheme, value in identifiers
            if held.get(_namespace(scheme, value), {value}) - {value}
        }
    )


def _apply(
    plan: LinkPlan, w: _Wanted, decision: _Decision, state: _State, now: datetime
) -> uuid.UUID:
    """Make the record if needed, record an automatic merge, and learn identifiers and key."""
    person_id = decision.person_id
    if person_id is None:
        person_id = new_id()
        plan.new_persons.append(
            {
                "id": person_id,
                "created_at": now,
                "erased_at": None,
                "merged_into_id": decision.merge_into,
            }
        )
        state.survivor[person_id] = decision.merge_into or person_id
        if decision.merge_into is not None:
            plan.merges.append(
                {
                    "id": new_id(),
                    "person_id": person_id,
                    "into_id": decision.merge_into,
                    "requested_into_id": decision.merge_into,
                    "kind": "name_dob",
                    "reason": "linked on name and date of birth at intake",
                    "merged_by": LINKING_ACTOR,
                    "merged_at": now,
                }
            )
    _learn_identifiers(plan, w, decision, person_id, state)
    if w.key is not None and person_id not in state.key_holders[w.key]:
        plan.match_keys.append(
            {"id": new_id(), "person_id": person_id, "key_sha256": w.key, "created_at": now}
        )
        state.key_holders[w.key].add(person_id)
    return person_id


def _learn_identifiers(
    plan: LinkPlan, w: _Wanted, decision: _Decision, person_id: uuid.UUID, state: _State
) -> None:
    unheld = [pair for pair in w.identifiers if pair not in state.holders]
    if not unheld:
        return
    held: dict[str, set[str]] = {}
    if decision.person_id is not None or decision.merge_into is not None:
        held = state.cluster_identifiers(state.survivor[person_id])
    learned, refused = [], []
    for scheme, value in unheld:
        namespace = _namespace(scheme, value)
        if held.get(namespace, {value}) - {value}:
            refused.append(scheme)
            continue
        plan.identifiers.append(
            {"id": new_id(), "person_id": person_id, "scheme": scheme, "value": value}
        )
        state.holders[(scheme, value)] = person_id
        state.held.setdefault(person_id, []).append((scheme, value))
        held.setdefault(namespace, set()).add(value)
        learned.append(scheme)
    if learned and decision.person_id is not None:
        decision.notes.append(f"learned {', '.join(sorted(set(learned)))}")
    if refused:
        decision.notes.append(
            f"{', '.join(sorted(set(refused)))} differs from the one on record: not added"
        )


def _text(parts: list[str]) -> str:
    text = "; ".join(parts)
    return text if len(text) <= 300 else text[:299] + "…"
