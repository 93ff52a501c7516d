"""The incident screen: one incident, its latest assessment, flags and sharing decisions.

Made only from API answers, called as the signed-in principal: ``GET /v1/incidents/{id}``
(the minimised view for an agency), its assessments and explanation, ``GET /v1/flags``
for the incident and its disclosures — each call only where the policy matrix lets the
role make it, so an agency's page is the view the API gives it and nothing more. A
principal outside scope gets the API's 404 as a page. The forms post a professional
judgement (raise only, rationale required) and a sharing decision through the API's own
write routes, with the session's CSRF token and an ``Idempotency-Key`` made when the form
was drawn.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.auth.policy import MATRIX
from app.contract.levels import CHILD_LEVELS, VICTIM_LEVELS
from app.sharing.models import CATEGORIES, CONSENT_STATUSES, LAWFUL_BASES, RECIPIENT_AGENCIES
from app.ui import terms
from app.ui.api import ApiReply, ScreenApi
from app.ui.web import (
    CurrentUser,
    Form,
    ScreenError,
    api,
    form_key,
    new_token,
    redirect,
    render,
    require_purpose,
)

router = APIRouter(prefix="/ui", include_in_schema=False)
terms.install()

FLAG_STATUSES = ("open", "acknowledged", "in_progress", "done", "not_required")
FLAG_PAGE = 200
RATIONALE_MAX = 4000
PURPOSE_MAX = 1000
REASON_MAX = 4000
DETAIL_MAX = 200
# Sections of a stored incident shown in their own places on the page; any other section
# the API returns is shown as recorded, under its name.
_PLACED = ("persons", "source", "area", "occurred_at", "reported_at")


@dataclass
class Problem:
    """An error summary entry: the message (ours or the API's, never the input) and the
    id of the field it links to."""

    text: str
    field: str


@dataclass
class Judgeable:
    ref: str
    kind: str  # victim or child
    current: str
    above: Sequence[str] = ()


def may(user: CurrentUser, action: str) -> bool:
    return user.principal.role in MATRIX[action]


def incident_uuid(value: str) -> str:
    """The incident id of the path, or a 404 page (the API would answer 404 too)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ScreenError(404, "Not found", "There is no such incident.") from None


# --------------------------------------------------------------------------- reading


def _person_label(person: dict[str, Any], role: str) -> str:
    name = person.get("name") or {}
    full = " ".join(p for p in (name.get("given"), name.get("family")) if p)
    if full:
        return full
    if person.get("unborn"):
        return "Unborn child"
    return role.capitalize() if role else "Person"


def _people(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each person of the incident by ref: what the API returned of them, with their id."""
    details = {p.get("ref"): p for p in (record.get("incident") or {}).get("persons", [])}
    people: dict[str, dict[str, Any]] = {}
    for stored in record.get("persons", []):
        ref = stored["ref"]
        person = dict(details.get(ref) or {})
        person.update(ref=ref, role=stored.get("role"), person_id=stored.get("person_id"))
        person["label"] = _person_label(person, stored.get("role") or "")
        people[ref] = person
    for ref, person in details.items():  # in the incident but not linked (never expected)
        if ref not in people and isinstance(ref, str):
            people[ref] = {**person, "label": _person_label(person, person.get("role") or "")}
    return people


def _other_cases(assessment: dict[str, Any], incident_id: str) -> list[str]:
    """Other incidents the perpetrator's figures and markers counted, in first-seen order."""
    perpetrator = assessment.get("perpetrator") or {}
    ref = perpetrator.get("person_ref")
    found: list[str] = []
    for marker in perpetrator.get("markers", []):
        for evidence in marker.get("evidence", []):
            found.extend(evidence.get("incident_ids", []))
    for figure in assessment.get("history", []):
        if figure.get("subject") == ref:
            found.extend(figure.get("incident_ids", []))
    return [i for i in dict.fromkeys(found) if i != incident_id]


def _judgeable(assessment: dict[str, Any] | None) -> dict[str, Judgeable]:
    if not assessment:
        return {}
    out: dict[str, Judgeable] = {}
    victim = assessment.get("victim") or {}
    if victim.get("person_ref") and victim.get("level") in VICTIM_LEVELS:
        level = victim["level"]
        higher = VICTIM_LEVELS[VICTIM_LEVELS.index(level) + 1 :]
        out[victim["person_ref"]] = Judgeable(victim["person_ref"], "victim", level, higher)
    for child in assessment.get("children", []):
        level = child.get("level")
        if child.get("person_ref") and level in CHILD_LEVELS:
            above = CHILD_LEVELS[CHILD_LEVELS.index(level) + 1 :]
            out[child["person_ref"]] = Judgeable(child["person_ref"], "child", level, above)
    return out


async def _latest_assessment(client: ScreenApi, incident_id: str) -> dict[str, Any] | None:
    reply = await client.get(f"/v1/incidents/{incident_id}/assessments")
    if reply.status in (404, 410):
        return None
    if not reply.ok:
        raise ScreenError.of(reply)
    versions = reply.json().get("assessments") or []
    return versions[0] if versions else None


async def page_context(request: Request, user: CurrentUser, incident_id: str) -> dict[str, Any]:
    """Everything the incident page shows, from the API calls the role may make."""
    client = api(request, user)
    reply = await client.get(f"/v1/incidents/{incident_id}")
    if not reply.ok:
        raise ScreenError.of(reply)
    record = reply.json()
    incident = record.get("incident") or {}
    people = _people(record)

    assessment = None
    explanation = None
    if may(user, "assessment.read"):
        assessment = await _latest_assessment(client, incident_id)
        if assessment and may(user, "assessment.explain"):
            explained = await client.get(f"/v1/assessments/{assessment['id']}/explanation")
            explanation = explained.json() if explained.ok else None

    flags: list[dict[str, Any]] = []
    more_flags = False
    if may(user, "flag.read"):
        listed = await client.get(
            "/v1/flags",
            {"incident_id": incident_id, "status": list(FLAG_STATUSES), "limit": FLAG_PAGE},
        )
        if not listed.ok:
            raise ScreenError.of(listed)
        page = listed.json()
        flags, more_flags = page.get("items", []), bool(page.get("next_cursor"))
    else:
        flags = record.get("flags", [])

    disclosures: list[dict[str, Any]] | None = None
    if may(user, "disclosure.read"):
        shared = await client.get(f"/v1/incidents/{incident_id}/disclosures")
        if shared.ok:
            disclosures = shared.json().get("disclosures", [])

    relationship = incident.get("relationship") or {}
    victim_ref = (assessment or {}).get("victim", {}).get("person_ref") or relationship.get(
        "victim"
    )
    perpetrator_ref = (assessment or {}).get("perpetrator", {}).get(
        "person_ref"
    ) or relationship.get("perpetrator")
    children_refs = [ref for ref, p in people.items() if p.get("role") == "child"]
    child_results = {c["person_ref"]: c for c in (assessment or {}).get("children", [])}
    for ref in child_results:
        if ref not in children_refs:
            children_refs.append(ref)

    erased = bool(record.get("erased"))
    may_judge = may(user, "judgement.create") and assessment is not None and not erased
    may_disclose = may(user, "disclosure.create") and not erased
    return {
        "incident_id": incident_id,
        "record": record,
        "incident": incident,
        "people": people,
        "victim_ref": victim_ref,
        "perpetrator_ref": perpetrator_ref,
        "children_refs": children_refs,
        "child_results": child_results,
        "assessment": assessment,
        "explanation": explanation,
        "other_cases": _other_cases(assessment, incident_id) if assessment else [],
        "flags": flags,
        "more_flags": more_flags,
        "disclosures": disclosures,
        "extra_sections": [k for k in incident if k not in _PLACED],
        "may_judge": may_judge,
        "may_disclose": may_disclose,
        "may_see_persons": may(user, "person.read"),
        "judgeable": _judgeable(assessment) if may_judge else {},
        "judgement_key": new_token(),
        "disclosure_key": new_token(),
        "recipient_agencies": RECIPIENT_AGENCIES,
        "lawful_bases": LAWFUL_BASES,
        "categories": CATEGORIES,
        "consent_statuses": CONSENT_STATUSES,
        "errors": [],
        "failed_form": None,
        "values": {},
        "done": None,
        "judged_ref": None,
    }


@router.get("/incidents/{incident_id}")
async def incident_page(
    request: Request,
    user: CurrentUser,
    incident_id: str,
    judged: Annotated[str | None, Query(max_length=32)] = None,
    recorded: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    require_purpose(user, request)
    context = await page_context(request, user, incident_uuid(incident_id))
    if judged and judged in _judgeable(context["assessment"]):
        context["done"] = "judgement"
        context["judged_ref"] = judged
    elif recorded == "sharing":
        context["done"] = "sharing"
    return render(request, "incident.html", context)


# --------------------------------------------------------------------------- writing


def _api_problems(reply: ApiReply, fields: dict[str, str], fallback: str) -> list[Problem]:
    """The API's refusal as error summary entries: its title and each error's location
    and message (the API never echoes input); linked to the field it names."""
    problem = reply.problem
    out = []
    for error in problem.get("errors") or []:
        loc = [str(p) for p in error.get("loc", []) if p != "body"]
        name = loc[0] if loc else ""
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        target = fields.get(name, fallback)
        label = name.replace("_", " ") + ": " if name and name not in fields else ""
        out.append(Problem(f"{label}{message[:1].upper()}{message[1:]}", target))
    if not out:
        text = str(problem.get("title", "The service refused this"))
        if problem.get("detail"):
            text = f"{text}: {problem['detail']}"
        out.append(Problem(text, fallback))
    return out


def _screen_status(reply: ApiReply) -> int:
    return 400 if reply.status in (400, 422) else reply.status


def _refused(reply: ApiReply) -> bool:
    """A refusal shown as the page it concerns (else the whole page is an error page)."""
    return reply.status in (400, 409, 412, 422, 429)


async def _already_judged(
    client: ScreenApi, assessment_id: str, subject: Judgeable, level: str, rationale: str
) -> bool:
    reply = await client.get(f"/v1/assessments/{assessment_id}/explanation")
    if not reply.ok:
        return False
    subject_ref = subject.ref if subject.kind == "child" else None
    return any(
        j.get("level") == level
        and j.get("rationale") == rationale
        and j.get("subject_ref") == subject_ref
        for j in reply.json().get("judgements", [])
    )


@router.post("/incidents/{incident_id}/judgements")
async def record_judgement(
    request: Request, user: CurrentUser, form: Form, incident_id: str
) -> Response:
    require_purpose(user, request)
    incident_id = incident_uuid(incident_id)
    client = api(request, user)
    latest = await _latest_assessment(client, incident_id)
    subjects = _judgeable(latest)
    ref = form.get("subject_ref", "")
    level = form.get("level", "")
    rationale = form.get("rationale", "").strip()
    subject = subjects.get(ref)
    done = f"/ui/incidents/{incident_id}?judged={ref}#subject-{ref}"
    # The same form sent twice (a double click, a resubmitted page): the first one raised
    # the level; if this very judgement is recorded, show that, not an error.
    if (
        latest
        and subject
        and level == subject.current
        and rationale
        and await _already_judged(client, latest["id"], subject, level, rationale)
    ):
        return redirect(done)
    problems: list[Problem] = []
    if subject is None:
        problems.append(Problem("Choose the victim or a child whose level to raise", "judgement"))
    else:
        if level not in subject.above:
            text = (
                f"Choose a level above {subject.current.replace('_', ' ')}: a judgement "
                "raises a level and never lowers it"
                if subject.above
                else "This level is already the highest: a judgement cannot raise it"
            )
            problems.append(Problem(text, f"level-{ref}"))
        if not rationale:
            problems.append(Problem("Give the reasons for the judgement", f"rationale-{ref}"))
        elif len(rationale) > RATIONALE_MAX:
            problems.append(
                Problem(f"Reasons must be {RATIONALE_MAX} characters or fewer", f"rationale-{ref}")
            )
    status = 400
    if not problems and subject is not None:
        body: dict[str, Any] = {"level": level, "rationale": rationale}
        if subject.kind == "child":
            body["subject_ref"] = ref
        reply = await client.post(
            f"/v1/incidents/{incident_id}/judgements",
            body,
            headers=form_key(form.get("idempotency_key")),
        )
        if reply.ok:
            return redirect(done)
        if not _refused(reply):
            raise ScreenError.of(reply)
        fields = {"level": f"level-{ref}", "rationale": f"rationale-{ref}"}
        problems = _api_problems(reply, fields, f"judge-{ref}")
        status = _screen_status(reply)
    context = await page_context(request, user, incident_id)
    context.update(
        errors=problems,
        failed_form=f"judge-{ref}" if subject else "judgement",
        values={"level": level, "rationale": rationale} if subject else {},
    )
    return render(request, "incident.html", context, status_code=status)


def _disclosure_body(form: dict[str, str]) -> tuple[dict[str, Any], list[Problem]]:
    """The API body of a sharing decision, and what the form is missing."""
    decision = form.get("decision", "")
    agency = form.get("recipient_agency", "")
    detail = form.get("recipient_detail", "").strip()
    basis = form.get("lawful_basis", "")
    purpose = form.get("purpose", "").strip()
    consent = form.get("consent_status", "")
    reason = form.get("reason_not_shared", "").strip()
    flag_id = form.get("flag_id", "")
    categories = [c for c in CATEGORIES if form.get(f"category_{c}")]
    subjects = sorted(
        k.removeprefix("subject_") for k in form if k.startswith("subject_") and form[k]
    )
    problems: list[Problem] = []
    if agency not in RECIPIENT_AGENCIES:
        problems.append(Problem("Choose the agency", "recipient_agency"))
    elif agency == "other" and not detail:
        problems.append(Problem("Name the team or role in the other agency", "recipient_detail"))
    if len(detail) > DETAIL_MAX:
        problems.append(
            Problem(f"Team or role must be {DETAIL_MAX} characters or fewer", "recipient_detail")
        )
    if decision not in ("shared", "not_shared"):
        problems.append(Problem("Choose whether the information is shared", "decision-shared"))
    if basis and basis not in LAWFUL_BASES:
        basis = ""
    if decision == "shared" and not basis:
        problems.append(Problem("Choose the lawful basis for sharing", "lawful_basis-consent"))
    if not purpose:
        problems.append(Problem("Say why the information is (or would be) shared", "purpose"))
    elif len(purpose) > PURPOSE_MAX:
        problems.append(Problem(f"Purpose must be {PURPOSE_MAX} characters or fewer", "purpose"))
    if decision == "shared" and not categories:
        problems.append(Problem("Tick what is shared", f"category_{CATEGORIES[0]}"))
    if decision == "not_shared" and categories:
        problems.append(
            Problem(
                "Nothing is shared when the decision is not to share: untick what is shared",
                f"category_{CATEGORIES[0]}",
            )
        )
    if consent not in CONSENT_STATUSES:
        problems.append(
            Problem("Say whether consent was sought", f"consent_status-{CONSENT_STATUSES[0]}")
        )
    elif decision == "shared" and basis == "consent" and consent != "given":
        problems.append(
            Problem(
                "Sharing on consent needs the consent: choose another basis or record "
                "that consent was given",
                "lawful_basis-consent",
            )
        )
    if decision == "not_shared" and not reason:
        problems.append(Problem("Give the reason for not sharing", "reason_not_shared"))
    elif len(reason) > REASON_MAX:
        problems.append(
            Problem(f"Reason must be {REASON_MAX} characters or fewer", "reason_not_shared")
        )
    body: dict[str, Any] = {
        "decision": decision,
        "recipient_agency": agency,
        "purpose": purpose,
        "consent_status": consent,
        "categories_shared": categories if decision == "shared" else [],
    }
    if detail:
        body["recipient_detail"] = detail
    if basis:
        body["lawful_basis"] = basis
    if decision == "not_shared":
        body["reason_not_shared"] = reason
    if subjects:
        body["subject_refs"] = subjects
    if flag_id:
        body["flag_id"] = flag_id
    return body, problems


DISCLOSURE_FIELDS = {
    "decision": "decision-shared",
    "recipient_agency": "recipient_agency",
    "recipient_detail": "recipient_detail",
    "lawful_basis": "lawful_basis-consent",
    "purpose": "purpose",
    "categories_shared": f"category_{CATEGORIES[0]}",
    "subject_refs": "sharing-subjects",
    "consent_status": f"consent_status-{CONSENT_STATUSES[0]}",
    "reason_not_shared": "reason_not_shared",
    "flag_id": "flag_id",
    "decided_at": "sharing",
}


@router.post("/incidents/{incident_id}/disclosures")
async def record_disclosure(
    request: Request, user: CurrentUser, form: Form, incident_id: str
) -> Response:
    require_purpose(user, request)
    incident_id = incident_uuid(incident_id)
    body, problems = _disclosure_body(form)
    status = 400
    if not problems:
        reply = await api(request, user).post(
            f"/v1/incidents/{incident_id}/disclosures",
            body,
            headers=form_key(form.get("idempotency_key")),
        )
        if reply.ok:
            return redirect(f"/ui/incidents/{incident_id}?recorded=sharing#disclosures")
        if not _refused(reply):
            raise ScreenError.of(reply)
        problems = _api_problems(reply, DISCLOSURE_FIELDS, "sharing")
        status = _screen_status(reply)
    context = await page_context(request, user, incident_id)
    context.update(errors=problems, failed_form="sharing", values=form)
    return render(request, "incident.html", context, status_code=status)
