"""Canonical checklist item ids: part of the API contract.

Clients send answers keyed by these ids. Checklist definition files (the labels, guidance,
thresholds and rules, versioned per area) must use exactly these ids; the loader checks it.
"""

from __future__ import annotations

# The 24 items of the SafeLives-style Dash risk checklist, in form order.
DASH_RIC_ITEMS: tuple[str, ...] = (
    "current_injury",
    "very_frightened",
    "afraid_of_further_harm",
    "isolated",
    "depressed_or_suicidal",
    "separation_past_year",
    "child_contact_conflict",
    "stalking_harassment",
    "pregnant_or_recent_birth",
    "abuse_more_often",
    "abuse_getting_worse",
    "controlling_or_jealous",
    "weapons_used",
    "threat_to_kill",
    "strangulation",
    "sexual_abuse",
    "other_person_threat",
    "harmed_others",
    "animal_abuse",
    "financial_issues",
    "substance_or_mental_health",
    "perpetrator_suicidal",
    "breach_of_bail_or_order",
    "criminal_history",
)

# The police variant adds a children/dependants block.
POLICE_CHILD_ITEMS: tuple[str, ...] = (
    "children_not_perpetrators",
    "harmed_children",
    "threatened_children",
)

DASH_POLICE_ITEMS: tuple[str, ...] = DASH_RIC_ITEMS + POLICE_CHILD_ITEMS

INSTRUMENT_ITEMS: dict[str, tuple[str, ...]] = {
    "dash-ric": DASH_RIC_ITEMS,
    "dash-police": DASH_POLICE_ITEMS,
}
