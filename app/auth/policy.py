"""The authorisation policy, in one place.

Three layers, each enforced here and nowhere else:

1. **Function level** (OWASP API5): which roles may call an action at all → 403.
2. **Object level** (OWASP API1, BOLA): which records a principal may see → records
   outside scope answer 404, never 403, so nothing reveals that they exist. Flags:
   ``flag_scope`` (the filters every listing applies in SQL) and ``flag_in_scope`` (one
   flag); a school sees only flags about the pupils of its own schools (URNs).
3. **Property level** (OWASP API3): which fields an agency sees (``agency_view``).

The same matrix is written out in the README; ``tests/auth/test_policy_matrix.py`` has a
test per cell.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from app.auth.deps import CurrentPrincipal
from app.auth.principal import ALL_AREAS, Principal, Role
from app.errors import Forbidden

# action → roles allowed to call it. Object scope is applied on top (see below).
MATRIX: dict[str, frozenset[Role]] = {
    "incident.create": frozenset({"submitter"}),
    "incident.revise": frozenset({"submitter"}),
    "incident.read": frozenset({"submitter", "triage", "agency", "auditor"}),
    # Finding incidents and persons by reference, PNC id or name and date of birth: those
    # who read whole incidents and persons across a case (a submitter has the id from its
    # intake's answer; an agency sees a case only through its flags; an admin no case data).
    "incident.search": frozenset({"triage", "auditor"}),
    "assessment.read": frozenset({"submitter", "triage", "auditor"}),
    "assessment.explain": frozenset({"triage", "auditor"}),
    "assessment.reproduce": frozenset({"triage", "auditor"}),
    "judgement.create": frozenset({"triage"}),
    "checklist.read": frozenset({"submitter", "triage", "agency", "auditor", "admin"}),
    "flag.read": frozenset({"triage", "agency", "auditor"}),
    "flag.work": frozenset({"triage", "agency"}),
    "queue.read": frozenset({"triage", "auditor"}),
    "disclosure.create": frozenset({"triage"}),
    "disclosure.read": frozenset({"triage", "auditor"}),
    "person.read": frozenset({"triage", "auditor"}),
    "person.search": frozenset({"triage", "auditor"}),
    "person.merge": frozenset({"triage"}),
    "audit.read": frozenset({"auditor"}),
    "admin.erase": frozenset({"admin"}),
    "admin.reviews": frozenset({"admin"}),
    "admin.keys": frozenset({"admin"}),
    "admin.subscriptions": frozenset({"admin"}),
    # A receipt for a notification: the subscribing agency itself.
    "notification.ack": frozenset({"agency"}),
    # Area statistics (aggregates, small numbers suppressed): an auditor for every area, a
    # partnership (DA partnership board, MASH manager) for its own areas; another is a 404.
    "report.read": frozenset({"auditor", "partnership"}),
    # Re-scoring stored incidents under a draft definition: aggregates only, suppressed.
    "report.what_if": frozenset({"auditor"}),
}


def authorize(action: str) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that admits only the roles the matrix allows for ``action``."""
    allowed = MATRIX[action]

    async def _check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"This operation is not available to the {principal.role} role.")
        return principal

    _check.__name__ = "authorize_" + action.replace(".", "_")
    return _check


# --------------------------------------------------------------------------- object scope


def incident_in_scope(
    principal: Principal, *, area: str, source_system: str, agency_subjects: set[str]
) -> bool:
    """Whether ``principal`` may see this incident at all (callers answer 404 if not).

    ``agency_subjects``: the person refs the principal's agency has flags about in this
    incident (flags are the only way an agency sees a case).
    """
    role = principal.role
    if role == "auditor":
        return True
    if role == "submitter":
        return source_system == principal.source_system
    if role == "triage":
        return principal.in_area(area)
    if role == "agency":
        return principal.in_area(area) and bool(agency_subjects)
    return False  # admins manage keys and configuration, a partnership reads aggregates


def report_in_scope(principal: Principal, area: str) -> bool:
    """Whether ``principal`` may read the reports of ``area`` (callers answer 404 if not)."""
    if principal.role == "auditor":
        return True
    return principal.role == "partnership" and principal.in_area(area)


def area_filter(principal: Principal) -> frozenset[str] | None:
    """Areas a listing must be limited to; None means every area."""
    if principal.role == "auditor" or ALL_AREAS in principal.areas:
        return None
    return principal.areas


# --------------------------------------------------------------------------- flag scope

# Agencies that see only the flags about their own pupils: the flag's ``school_urn`` (the
# URN of the school its subject child attends, stored with the flag) must be one of the
# principal's schools. A school principal without schools sees no flag at all.
SCHOOL_SCOPED_AGENCIES = frozenset({"school"})


@dataclass(frozen=True)
class FlagScope:
    """The flags a principal may see, as filters a listing applies in SQL.

    ``None`` on a field means no limit on it; an empty set means nothing matches.
    """

    areas: frozenset[str] | None
    agencies: frozenset[str] | None
    school_urns: frozenset[str] | None


def flag_scope(principal: Principal) -> FlagScope:
    """What of the flags ``principal`` may see (callers check the role first)."""
    if principal.role == "auditor":
        return FlagScope(areas=None, agencies=None, school_urns=None)
    if principal.role == "triage":
        return FlagScope(areas=area_filter(principal), agencies=None, school_urns=None)
    if principal.role == "agency" and principal.agency is not None:
        return FlagScope(
            areas=area_filter(principal),
            agencies=frozenset({principal.agency}),
            school_urns=(principal.schools if principal.agency in SCHOOL_SCOPED_AGENCIES else None),
        )
    return FlagScope(areas=frozenset(), agencies=frozenset(), school_urns=frozenset())


def flag_in_scope(principal: Principal, *, agency: str, area: str, school_urn: str | None) -> bool:
    """Whether ``principal`` may see one flag (callers answer 404 if not, never 403)."""
    scope = flag_scope(principal)
    return (
        (scope.areas is None or area in scope.areas)
        and (scope.agencies is None or agency in scope.agencies)
        and (scope.school_urns is None or school_urn in scope.school_urns)
    )


# --------------------------------------------------------------------------- agency views

# What those who support the adult victim see of an incident (the IDVA, adult social care).
_VICTIM_SUPPORT_SECTIONS = (
    "occurred_at",
    "area",
    "relationship",
    "circumstances",
    "victim_checklist",
    "victim_history",
    "safety_plan",
    "consent",
)

# What each agency needs, and no more (information-sharing golden rule 6). Sections of the
# stored incident an agency receives; persons are limited further by `persons`.
AGENCY_VIEWS: dict[str, dict[str, Any]] = {
    # Operation Encompass: the school's lead needs the child, the fact and time of the
    # incident, and the flag with its due time — not the adults' risk answers or histories.
    "school": {"persons": "flag_subjects", "sections": ("occurred_at", "area")},
    "early_help": {"persons": "flag_subjects_and_victim", "sections": ("occurred_at", "area")},
    "health": {
        "persons": "flag_subjects_and_victim",
        "sections": ("occurred_at", "area", "circumstances"),
    },
    "csc": {
        "persons": "all",
        "sections": ("occurred_at", "area", "relationship", "circumstances", "safety_plan"),
    },
    "idva": {
        "persons": "victim_and_children",
        "sections": _VICTIM_SUPPORT_SECTIONS,
    },
    "marac": {
        "persons": "all",
        "sections": (
            "occurred_at",
            "area",
            "relationship",
            "circumstances",
            "victim_checklist",
            "victim_history",
            "perpetrator_history",
            "officer_assessment",
            "safety_plan",
            "consent",
        ),
    },
    "police": {
        "persons": "all",
        "sections": (
            "occurred_at",
            "area",
            "relationship",
            "circumstances",
            "perpetrator_history",
            "victim_history",
        ),
    },
    "probation": {
        "persons": "perpetrator_and_flag_subjects",
        "sections": ("occurred_at", "area", "perpetrator_history", "circumstances"),
    },
    # Adult safeguarding (Care Act 2014 s.42): the adult at risk is the victim, and only
    # the victim. What an enquiry into the risk to her needs is what the IDVA sees of her
    # (the relationship, what happened, her checklist and history, any safety plan, her
    # consent), never a child: no child person, whatever a flag is about, and so never a
    # child's own account; not the perpetrator's history or the officer's assessment.
    "adult_social_care": {
        "persons": "victim_only",
        "sections": _VICTIM_SUPPORT_SECTIONS,
    },
}

# Child fields kept back from agencies that do not work with the child's own account.
CHILD_ACCOUNT_AGENCIES = frozenset({"csc", "marac", "idva", "health"})


def agency_keeps_person(
    agency: str,
    *,
    ref: str | None,
    role: str | None,
    flag_subjects: Iterable[str],
    victim: str | None = None,
    perpetrator: str | None = None,
) -> bool:
    """Whether ``agency`` receives this person of an incident (by ref and role).

    ``victim`` and ``perpetrator`` are the refs the stored incident names; without a stored
    incident (erased) the role alone decides.
    """
    rule = AGENCY_VIEWS[agency]["persons"]
    is_victim = ref == victim if victim is not None else role == "victim"
    is_perpetrator = ref == perpetrator if perpetrator is not None else role == "perpetrator"
    if rule == "victim_only":
        return is_victim and role != "child"
    if rule == "all" or ref in set(flag_subjects):
        return True
    if rule == "flag_subjects_and_victim":
        return is_victim
    if rule == "victim_and_children":
        return is_victim or role == "child"
    if rule == "perpetrator_and_flag_subjects":
        return is_perpetrator
    return False


def agency_view(
    incident: dict[str, Any], agency: str, flag_subjects: Iterable[str]
) -> dict[str, Any]:
    """The minimised copy of a stored incident that ``agency`` may receive."""
    view = AGENCY_VIEWS[agency]
    subjects = set(flag_subjects)
    rel = incident.get("relationship", {})
    victim, perpetrator = rel.get("victim"), rel.get("perpetrator")

    persons = []
    for person in incident.get("persons", []):
        if not agency_keeps_person(
            agency,
            ref=person.get("ref"),
            role=person.get("role"),
            flag_subjects=subjects,
            victim=victim,
            perpetrator=perpetrator,
        ):
            continue
        p = {k: v for k, v in person.items() if k != "ethnicity"}  # fairness reporting only
        child = p.get("child")
        if child and agency not in CHILD_ACCOUNT_AGENCIES:
            p["child"] = {k: v for k, v in child.items() if k != "account"}
        persons.append(p)
    out: dict[str, Any] = {"persons": persons}
    for section in view["sections"]:
        if section in incident:
            out[section] = incident[section]
    return out
