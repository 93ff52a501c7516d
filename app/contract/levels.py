"""The risk levels of the contract, lowest first (the index is a level's rank).

Victims are graded standard, medium or high; children on the four-level ladder after
Barnardo's matrix (docs/domain.md). MARAC's four referral criteria are named here too:
they appear in every assessment and flag rule.
"""

from __future__ import annotations

from typing import Literal, get_args

VictimLevel = Literal["standard", "medium", "high"]
ChildLevel = Literal["moderate", "moderate_to_serious", "serious", "severe"]

VICTIM_LEVELS: tuple[VictimLevel, ...] = ("standard", "medium", "high")
CHILD_LEVELS: tuple[ChildLevel, ...] = ("moderate", "moderate_to_serious", "serious", "severe")
VICTIM_RANK: dict[str, int] = {level: rank for rank, level in enumerate(VICTIM_LEVELS)}
CHILD_RANK: dict[str, int] = {level: rank for rank, level in enumerate(CHILD_LEVELS)}

MARAC_CRITERIA: tuple[str, ...] = (
    "visible_high_risk",
    "red_flag_high",  # rules v2: the red-flag rule gave high
    "professional_judgement",
    "potential_escalation",
    "repeat_marac",
)

# The perpetrator markers every assessment lists (docs/contract.md "Scoring defaults", perpetrator).
MarkerId = Literal[
    "prior_da",
    "prior_non_da_violence",
    "prior_custody",
    "breach_of_bail_or_orders",
    "threats_to_kill",
    "weapons",
    "substance_or_mental_health",
    "suicidality",
]
PERPETRATOR_MARKERS: tuple[str, ...] = get_args(MarkerId)
