"""The risk levels of the contract, lowest first (the index is a level's rank).

Victims are graded standard, medium or high; children on the four-level ladder after
Barnardo's matrix (docs/domain.md). MARAC's four referral criteria are named here too:
they appear in every assessment and flag rule.
"""

from __future__ import annotations

from typing import Literal

VictimLevel = Literal["standard", "medium", "high"]
ChildLevel = Literal["moderate", "moderate_to_serious", "serious", "severe"]

VICTIM_LEVELS: tuple[VictimLevel, ...] = ("standard", "medium", "high")
CHILD_LEVELS: tuple[ChildLevel, ...] = ("moderate", "moderate_to_serious", "serious", "severe")
VICTIM_RANK: dict[str, int] = {level: rank for rank, level in enumerate(VICTIM_LEVELS)}
CHILD_RANK: dict[str, int] = {level: rank for rank, level in enumerate(CHILD_LEVELS)}

MARAC_CRITERIA: tuple[str, ...] = (
    "visible_high_risk",
    "professional_judgement",
    "potential_escalation",
    "repeat_marac",
)
