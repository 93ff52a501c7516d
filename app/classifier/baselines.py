"""The checklist baselines a classifier is compared against, computed here from the answers.

The scoring engine (``app.scoring``) is the authority on levels; this module reproduces only
the shipped defaults so that evaluation does not depend on it:

- DASH count: the number of "yes" answers over the 24 ``dash-ric`` items (SafeLives RIC).
- Checklist level: 0-9 standard, 10-13 medium, 14+ high; then the red-flag rule of the
  contract (strangulation, threat to kill or weapons = yes -> at least medium; one of them
  plus two or more aggravating items, or two of the three -> high). The MARAC history routes
  (potential escalation, repeat MARAC) are left out: they need stored history.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.contract.items import DASH_RIC_ITEMS

LEVELS: tuple[str, ...] = ("standard", "medium", "high")
MEDIUM_FROM = 10
HIGH_FROM = 14
CRITICAL_ITEMS: tuple[str, ...] = ("strangulation", "threat_to_kill", "weapons_used")
AGGRAVATING_ITEMS: tuple[str, ...] = (
    "separation_past_year",
    "stalking_harassment",
    "pregnant_or_recent_birth",
    "perpetrator_suicidal",
    "child_contact_conflict",
    "controlling_or_jealous",
    "abuse_getting_worse",
)


def dash_count(answers: Mapping[str, str]) -> int:
    """Number of "yes" answers over the 24 DASH RIC items."""
    return sum(1 for item in DASH_RIC_ITEMS if answers.get(item) == "yes")


def checklist_level(answers: Mapping[str, str]) -> str:
    """Default victim level from the count and the red-flag rule (see the module docstring)."""
    count = dash_count(answers)
    level = 2 if count >= HIGH_FROM else 1 if count >= MEDIUM_FROM else 0
    critical = sum(1 for item in CRITICAL_ITEMS if answers.get(item) == "yes")
    aggravating = sum(1 for item in AGGRAVATING_ITEMS if answers.get(item) == "yes")
    if critical >= 1:
        level = max(level, 1)
    if critical >= 2 or (critical >= 1 and aggravating >= 2):
        level = 2
    return LEVELS[level]


def level_rank(level: str) -> int:
    return LEVELS.index(level)
