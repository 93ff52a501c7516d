"""The agencies' names as people say them (the screens' template filter ``agency_name``)."""

from __future__ import annotations

from app.ui.web import words

AGENCY_NAMES = {
    "marac": "MARAC",
    "idva": "IDVA service",
    "csc": "Children's social care",
    "early_help": "Early help",
    "school": "School",
    "police": "Police",
    "probation": "Probation",
    "health": "Health",
    "adult_social_care": "Adult social care",
    "triage": "MASH triage",
}


def agency_name(value: object) -> str:
    return AGENCY_NAMES.get(str(value)) or words(value)
