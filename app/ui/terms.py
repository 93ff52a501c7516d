"""The API's codes in words, for the incident and person screens (the `term` filter).

Only the words: every code shown comes from an API answer, and a code without an entry
here is written by the shared ``words`` filter (``in_progress`` → ``In progress``).
"""

from __future__ import annotations

import re

from app.ui.web import templates, words

_CODE = re.compile(r"^[a-z][a-z0-9_]*$")

TERMS: dict[str, str] = {
    # agencies
    "marac": "MARAC",
    "idva": "IDVA",
    "csc": "Children's social care",
    "early_help": "Early help",
    "school": "School",
    "police": "Police",
    "probation": "Probation",
    "health": "Health",
    "adult_social_care": "Adult social care",
    "triage": "MASH triage",
    "housing": "Housing",
    "other": "Another agency",
    # flag types
    "marac_referral": "MARAC referral",
    "idva_referral": "IDVA referral",
    "children_social_care_referral": "Children's social care referral",
    "early_help_offer": "Early help offer",
    "operation_encompass": "Operation Encompass notification",
    "child_not_spoken_to": "Child not spoken to",
    "perpetrator_action": "Action on the perpetrator",
    "serial_perpetrator": "Serial perpetrator",
    "separation_escalation": "Separation: risk of escalation",
    "strangulation_medical": "Medical assessment after strangulation",
    "pregnancy_health": "Pregnancy: tell health services",
    "victim_responsibility_plan": "Victim responsibility plan",
    "long_term_review": "Long-term review",
    "child_recovery_support": "Recovery support for the child",
    "classifier_elevated": "Model score above threshold: review",
    "probation_notification": "Tell probation",
    "allocated_worker_notification": "Tell the allocated worker",
    "complete_risk_assessment": "Complete the risk assessment",
    "adult_safeguarding": "Adult safeguarding",
    # flag statuses
    "open": "Open",
    "acknowledged": "Acknowledged",
    "in_progress": "In progress",
    "done": "Done",
    "not_required": "Not required",
    # victim and child rules, MARAC criteria
    "score_band": "Score",
    "red_flag": "Red flags",
    "victim_perception": "The victim's own view",
    "incomplete_assessment": "Incomplete assessment",
    "professional_judgement": "Professional judgement",
    "visible_high_risk": "Visible high risk",
    "red_flag_high": "Red flags graded high",
    "potential_escalation": "Potential escalation",
    "repeat_marac": "Repeat MARAC referral",
    "vulnerability_step": "Age or vulnerability",
    # recommended responses for a child
    "universal_support": "Universal support",
    # "early_help" (the response) reads as the agency above
    "child_in_need_assessment": "Child in need assessment",
    "strategy_discussion": "Strategy discussion",
    "notify_lead_professional": "Tell the lead professional",
    "notify_allocated_social_worker": "Tell the allocated social worker",
    # perpetrator markers
    "prior_da": "Earlier domestic abuse",
    "prior_non_da_violence": "Other violence",
    "prior_custody": "Has been in custody",
    "breach_of_bail_or_orders": "Breach of bail or orders",
    "threats_to_kill": "Threats to kill",
    "weapons": "Weapons",
    "substance_or_mental_health": "Substance misuse or mental health",
    "suicidality": "Suicidal thoughts",
    # where an answer came from
    "answer": "the victim's answer",
    "observed": "seen by the officer",
    "recorded": "recorded in the incident",
    "reported": "reported by the officer",
    "stored": "earlier incidents on record",
    "checklist": "the victim's checklist",
    "incident": "this incident",
    # recorded fields
    "urn": "URN",
    "pnc": "PNC",
    # checklist answers
    "yes": "Yes",
    "no": "No",
    "unknown": "Not known",
    "not_asked": "Not asked",
    # sharing
    "shared": "Shared",
    "not_shared": "Not shared",
    "consent": "Consent",
    "safeguarding": "Safeguarding (to protect a child or an adult at risk)",
    "statutory_function": "A statutory function",
    "vital_interests": "Vital interests (to protect someone's life)",
    "administration_of_justice": "The administration of justice",
    "given": "Consent given",
    "refused": "Consent sought and refused",
    "not_sought_risk": "Not sought: asking would raise the risk",
    "not_sought_unsafe": "Not sought: not safe or practicable to ask",
    "incident_summary": "Incident summary",
    "victim_details": "The victim's details",
    "child_details": "The children's details",
    "perpetrator_details": "The perpetrator's details",
    "risk_assessment": "Risk assessment",
    "checklist_answers": "Checklist answers",
    "flags": "Flags (actions)",
    "history": "History",
}


def term(value: object) -> str:
    """An API code in words: ``csc`` → ``Children's social care``."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str) and value in TERMS:
        return TERMS[value]
    return words(value)


def say(value: object) -> str:
    """A recorded value as written, unless it is a code (then in words): free text keeps
    its own capitals."""
    if isinstance(value, bool) or (isinstance(value, str) and _CODE.match(value)):
        return term(value)
    if value is None:
        return "—"
    return str(value)


def install() -> None:
    templates.env.filters["term"] = term
    templates.env.filters["say"] = say
